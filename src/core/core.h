/* core: the shared C runtime under lookalike, blogd and meterd.
 *
 * What it holds, one concept per file:
 *   arena.c      per-request memory: bump allocator plus cleanup callbacks, freed in one go
 *   log.c        one JSON object per line on stderr; per-subsystem debug switched by CORE_DEBUG
 *   flags.c      a table of command-line flags, each also read from an environment variable
 *   metrics.c    counters, gauges, histograms with labels; Prometheus text rendering
 *   pool.c       worker threads with a bounded queue for blocking work
 *   router.c     path patterns with parameters, per-method handlers, 405 with Allow
 *   urlcodec.c   percent-decoding of path segments and query strings
 *   base64.c     RFC 4648 base64 (the WebSocket handshake, etcd's JSON gateway)
 *   json.c       request-body JSON parsing with an error message a client can act on
 *   multipart.c  multipart/form-data parser into size-capped parts
 *   static.c     static files beneath one directory (ETag, 304, Content-Type, no traversal)
 *   server.c     the HTTP/1.1 server on libmicrohttpd (MHD) that ties these together
 *   reply.c      the responders handlers call (JSON, bytes, errors, files, upgrade)
 *   builtin.c    /healthz, /readyz, /metrics and the loopback-only /debug
 *   proc.c       process figures (RSS, heap, open fds, threads) read from /proc and malloc
 *   ws_*.c       WebSocket: handshake, framing on wslay, the hub, the HTTP glue (see below)
 *
 * Errors: functions return 0 (or a count, or a pointer) on success and a negative CORE_E*
 * code (or NULL) on failure; where a human will read why, they take `char *err, size_t errlen`
 * and write a one-line message there. Every buffer that grows from outside input has a cap
 * and fails with CORE_ETOOLARGE and a message containing "too large".
 *
 * No global mutable state: a program builds one core_log, one core_metrics and one
 * core_http_server in main() and passes them down.
 *
 * HTTP threading model. MHD runs `threads` event-loop threads (each its own epoll set, all
 * accepting on the one listening socket). A request's handler runs on the event-loop thread
 * that owns the connection, so a handler must not block: blocking work (model inference,
 * database calls, disk scans) goes to the worker pool, either for the whole route
 * (CORE_HTTP_ROUTE_POOL, or CORE_HTTP_ROUTE_INNER_POOL for a second pool that requests other
 * servers make while they wait) or from inside a handler (core_http_req_run_on_pool). While a worker
 * runs, the connection is suspended in MHD, so event-loop threads keep serving others. When
 * the pool queue is full the request is answered 503 with Retry-After at once.
 *
 * Request lifetime and ownership. A core_http_req and everything reached from it (path and
 * query parameters, headers copied out, the body, multipart parts, parsed JSON) live in the
 * request's arena, which is freed after the response has been sent (or the connection has
 * died). Handlers never free anything they get from a getter. A handler answers exactly once
 * through one responder; a handler that returns without answering gets a 500.
 *
 * Request flow: headers arrive -> route match (404 / 405 with Allow / 400 for bad paths) ->
 * Content-Length checked against the route's body limit (413) -> body streamed into the
 * arena, capped while it streams (413) -> handler (event-loop thread or worker) -> response
 * -> one access-log line and the metrics.
 *
 * Limits and timeouts, and what MHD 0.9.75 lets us do about them:
 *   - idle_timeout: any connection silent that long is closed (MHD's per-connection timeout,
 *     whole seconds). A client that drips header bytes resets it with each byte; the header
 *     block is capped by header_limit (431), and connection_limit / per_ip_limit cap how
 *     many such clients can be held.
 *   - read_timeout: counted from the request line; checked as body chunks arrive. A body
 *     still arriving after it is cut off without an answer (MHD cannot queue one mid-body).
 *   - 413: from Content-Length before any body is read; for a chunked body, at the chunk that
 *     passes the limit; the rest of that body (up to 1 MiB more) is read and dropped so the
 *     413 can be sent, past that the connection is closed.
 *   - 404/405/400 found from the headers alone are sent after a small body (<= 64 KiB) has
 *     been read and dropped, so keep-alive survives; larger bodies close the connection.
 *
 * Upgrades. For an upgraded request, MHD reports completion (access log with status 101 and
 * the time until core_http_upgrade_close, arena freed) only after core_http_upgrade_close, so
 * memory from core_http_req_arena may back the upgrade callback's ud. An upgraded connection
 * counts against connection_limit until then, but not as a request in flight. WebSockets
 * (core_ws_http_accept) close the upgrade as soon as the hub has the socket, so they leave
 * MHD, its per-connection memory and connection_limit right after the handshake.
 */
#ifndef CORE_CORE_H
#define CORE_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Error codes (negative). */
enum {
    CORE_EINVAL = -1,    /* bad argument or malformed input */
    CORE_ENOMEM = -2,    /* allocation failed */
    CORE_ETOOLARGE = -3, /* a size cap was hit */
    CORE_EIO = -4,       /* a system call failed */
    CORE_EFULL = -5,     /* a bounded queue is full */
    CORE_ENOTFOUND = -6, /* no such thing */
    CORE_ESTATE = -7,    /* called at the wrong time (e.g. answering twice) */
};

#if defined(__GNUC__)
#define CORE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CORE_PRINTF(f, a)
#endif

/* ---- Arena ------------------------------------------------------------------------------
 * A bump allocator over a list of blocks, with a hard cap on the bytes it may hand out, and
 * a list of cleanup callbacks run (last added first) by core_arena_free. Not thread-safe: one
 * arena belongs to one request, which runs on one thread at a time. */
typedef struct core_arena core_arena;

/* cap: most bytes the arena will hand out in total (0 = no cap). */
core_arena *core_arena_new(size_t cap);
void core_arena_free(core_arena *a);
/* 16-byte aligned, uninitialised; NULL when the cap would be passed or malloc fails. */
void *core_arena_alloc(core_arena *a, size_t n);
void *core_arena_calloc(core_arena *a, size_t n);
char *core_arena_strndup(core_arena *a, const char *s, size_t n);
char *core_arena_strdup(core_arena *a, const char *s);
char *core_arena_printf(core_arena *a, const char *fmt, ...) CORE_PRINTF(2, 3);
/* Runs fn(p) when the arena is freed; returns CORE_ENOMEM if it could not be registered (fn
 * is then called at once, so the resource never leaks). */
int core_arena_defer(core_arena *a, void (*fn)(void *), void *p);
size_t core_arena_used(const core_arena *a);

/* ---- Logging -----------------------------------------------------------------------------
 * Every line is one JSON object: {"time":"2026-11-21T13:45:01.123Z","level":"info",
 * "subsystem":"http","msg":"...", ...extra fields}. Lines are written with one write(2) each,
 * so lines from different threads never interleave. Debug lines are off unless the
 * subsystem is named in the debug spec (CORE_DEBUG="http,pool" or "all"). Thread-safe. */
typedef enum {
    CORE_LOG_DEBUG = 0,
    CORE_LOG_INFO = 1,
    CORE_LOG_WARN = 2,
    CORE_LOG_ERROR = 3,
} core_log_level;

typedef struct core_log core_log;

/* fd: where lines go (2 for stderr); min: lines below this level are dropped (debug lines
 * also need their subsystem enabled); debug_spec: comma-separated subsystems or "all", NULL
 * for none (programs pass getenv("CORE_DEBUG")). */
core_log *core_log_new(int fd, core_log_level min, const char *debug_spec);
void core_log_free(core_log *log);
/* Parses "debug", "info", "warn", "error"; returns CORE_EINVAL for anything else. */
int core_log_level_parse(const char *s, core_log_level *out);
bool core_log_enabled(const core_log *log, core_log_level level, const char *subsystem);
/* extra: optional object whose fields are appended to the line (borrowed, not stolen). */
void core_log_json(core_log *log, core_log_level level, const char *subsystem, json_t *extra, const char *fmt,
                   ...) CORE_PRINTF(5, 6);
void core_log_vjson(core_log *log, core_log_level level, const char *subsystem, json_t *extra,
                    const char *fmt, va_list ap);
#define core_log_debug(log, sub, ...)                                                                        \
    do {                                                                                                     \
        if (core_log_enabled((log), CORE_LOG_DEBUG, (sub)))                                                  \
            core_log_json((log), CORE_LOG_DEBUG, (sub), NULL, __VA_ARGS__);                                  \
    } while (0)
#define core_log_info(log, sub, ...) core_log_json((log), CORE_LOG_INFO, (sub), NULL, __VA_ARGS__)
#define core_log_warn(log, sub, ...) core_log_json((log), CORE_LOG_WARN, (sub), NULL, __VA_ARGS__)
#define core_log_error(log, sub, ...) core_log_json((log), CORE_LOG_ERROR, (sub), NULL, __VA_ARGS__)

/* ---- Flags -------------------------------------------------------------------------------
 * A program describes its configuration as a constant table; core_flags_parse fills the
 * destinations from, in increasing precedence: the table's default text, the environment
 * variable <PREFIX>_<NAME> (name upper-cased, '-' -> '_'), then --name=value / --name value
 * on the command line. Defaults are parsed exactly like user input, so a table cannot hold a
 * default its own parser would refuse. Strings point into argv, the environment or the table
 * (all live for the whole process). */
typedef enum {
    CORE_FLAG_STR,  /* const char **: any text ("" allowed) */
    CORE_FLAG_INT,  /* int *: decimal, within [min, max] */
    CORE_FLAG_SIZE, /* size_t *: bytes, suffix k/K, m/M, g/G (powers of 1024), within [min, max] */
    CORE_FLAG_MS,   /* int *: a duration kept in milliseconds: "250ms", "5s", "2m", "1h"; a bare
                       number means seconds; within [min, max] milliseconds */
    CORE_FLAG_BOOL, /* bool *: --name alone, or true/false/1/0/yes/no/on/off */
} core_flag_type;

typedef struct core_flag {
    const char *name; /* "port" -> --port and <PREFIX>_PORT */
    core_flag_type type;
    void *dst;       /* see core_flag_type for the pointed-to type */
    const char *def; /* default, as text; NULL means "" for strings, false, 0 */
    long long min, max;
    const char *help;
} core_flag;

/* Returns 0 when the program should run, 1 when --help was printed to `help_out` (exit 0),
 * or CORE_EINVAL with err naming the flag, the bad value and what is expected, e.g.
 * "--port (CORE_PORT): \"70000\" is out of range 0..65535". Unknown flags and positional
 * arguments are errors. */
int core_flags_parse(const core_flag *flags, size_t n, const char *env_prefix, int argc, char **argv,
                     const char *usage, FILE *help_out, char *err, size_t errlen);
/* The current values as a JSON object {name: value} (new reference), for /debug. */
json_t *core_flags_to_json(const core_flag *flags, size_t n);
/* Parsers behind the table, exposed for tests and for programs with odd flags. */
int core_parse_size(const char *s, size_t *out);
int core_parse_ms(const char *s, long long *out_ms);

/* ---- Metrics -----------------------------------------------------------------------------
 * A registry of metric families. A family has a type, a name, help text and label names; each
 * distinct tuple of label values is one series (core_metric), created on first use and never
 * freed before the registry. Updates are lock-free atomics; looking a series up by label
 * values takes the family's mutex, so hot paths keep the core_metric pointer when they can.
 * Label cardinality is capped per family (CORE_METRICS_MAX_SERIES); past it, lookups return
 * a shared overflow series labelled with every value set to "_overflow". Thread-safe. */
typedef enum {
    CORE_METRIC_COUNTER,
    CORE_METRIC_GAUGE,
    CORE_METRIC_HISTOGRAM,
} core_metric_type;

#define CORE_METRICS_MAX_LABELS 4
#define CORE_METRICS_MAX_BUCKETS 32
#define CORE_METRICS_MAX_SERIES 2000

typedef struct core_metrics core_metrics;
typedef struct core_metric_family core_metric_family;
typedef struct core_metric core_metric;

core_metrics *core_metrics_new(void);
void core_metrics_free(core_metrics *m);
/* label_names: NULL-terminated, NULL for none. buckets: ascending upper bounds for
 * histograms (+Inf is implicit), ignored otherwise; NULL picks latency buckets in seconds
 * (0.5 ms to 10 s). Registering the same name twice returns the first family if the type
 * and labels agree, else NULL with err set. */
core_metric_family *core_metrics_family(core_metrics *m, core_metric_type type, const char *name,
                                        const char *help, const char *const *label_names,
                                        const double *buckets, size_t nbuckets, char *err, size_t errlen);
/* label_values: as many as the family has label names (NULL when it has none). */
core_metric *core_metric_family_get(core_metric_family *f, const char *const *label_values);
/* Shorthands for unlabelled series; NULL on a name clash. */
core_metric *core_metrics_counter(core_metrics *m, const char *name, const char *help);
core_metric *core_metrics_gauge(core_metrics *m, const char *name, const char *help);
core_metric *core_metrics_histogram(core_metrics *m, const char *name, const char *help,
                                    const double *buckets, size_t nbuckets);
void core_metric_inc(core_metric *c);
void core_metric_add(core_metric *c, double v); /* counters: v >= 0; gauges: any */
void core_metric_set(core_metric *g, double v); /* gauges only */
void core_metric_observe(core_metric *h, double v);
double core_metric_value(const core_metric *c); /* counter/gauge value; histogram: count */
/* Called at the start of every render, to refresh gauges that are sampled (RSS, fds). */
int core_metrics_on_render(core_metrics *m, void (*fn)(void *ud, core_metrics *m), void *ud);
/* Prometheus text exposition format 0.0.4; returns a malloc'd string (caller frees), or NULL. */
char *core_metrics_render(core_metrics *m, size_t *len_out);

/* ---- Worker pool -------------------------------------------------------------------------
 * `threads` workers take jobs from a FIFO of at most `queue_cap` waiting jobs. Submitting to
 * a full queue fails at once with CORE_EFULL: callers shed load rather than queue without
 * bound. Workers block every signal. Thread-safe. */
typedef struct core_pool core_pool;
typedef void (*core_pool_fn)(void *ud);

core_pool *core_pool_new(int threads, int queue_cap, char *err, size_t errlen);
/* Stops taking jobs (submit then fails with CORE_EFULL), runs every job already queued, and
 * joins the workers. Idempotent. */
void core_pool_stop(core_pool *p);
/* Stops (as above) and frees. */
void core_pool_free(core_pool *p);
int core_pool_submit(core_pool *p, core_pool_fn fn, void *ud);
/* Jobs waiting (not running). */
int core_pool_queued(core_pool *p);

/* ---- URL codec ---------------------------------------------------------------------------
 * Decodes %XX escapes (and '+' as space when plus_is_space) from s[0..n) into a new arena
 * string. Fails with CORE_EINVAL on a truncated or non-hex escape or on an escaped NUL. */
int core_url_decode(core_arena *a, const char *s, size_t n, bool plus_is_space, char **out, size_t *out_len);

/* ---- Base64 ------------------------------------------------------------------------------
 * RFC 4648, standard alphabet, '=' padding. No allocation. */
/* Writes base64 of data and a NUL; out needs 4 * ((len + 2) / 3) + 1 bytes. Returns the length
 * written (without the NUL). */
size_t core_base64_encode(const void *data, size_t len, char *out);
/* Decodes strict padded base64 (no whitespace, no stray bits under the padding). Returns the
 * decoded length, or -1 when the text is not base64 or would not fit in outcap. */
long core_base64_decode(const char *in, size_t len, void *out, size_t outcap);

/* ---- Router ------------------------------------------------------------------------------
 * Patterns are absolute paths made of segments: a literal ("products"), a parameter
 * ("{id}", matching one non-empty segment) or, as the last segment only, a tail parameter
 * ("{path...}", matching one or more segments, joined with '/'). When several patterns match
 * a path, the one whose earliest differing segment is more specific wins (literal > parameter
 * > tail). Matching decodes each raw segment on its own, so "%2F" inside a parameter is a
 * slash in the value and never a separator. Paths with empty segments ("//"), "." or ".."
 * segments (raw or percent-encoded), or bad escapes are refused as bad paths.
 * A router is built before the server starts and read-only afterwards (matching is
 * thread-safe). */
typedef struct core_router core_router;

#define CORE_ROUTER_MAX_SEGMENTS 32
#define CORE_ROUTER_MAX_PARAMS 8

typedef enum {
    CORE_ROUTE_FOUND = 0,
    CORE_ROUTE_NOT_FOUND = 1,
    CORE_ROUTE_METHOD_NOT_ALLOWED = 2,
    CORE_ROUTE_BAD_PATH = 3,
} core_route_status;

typedef struct core_route_match {
    void *value;         /* what core_router_add stored for this method, when FOUND */
    const char *pattern; /* the matched pattern (owned by the router), FOUND or 405 */
    const char *allow;   /* "GET, HEAD, POST" for the matched pattern (owned by the router) */
    size_t nparams;
    const char *param_names[CORE_ROUTER_MAX_PARAMS];  /* owned by the router */
    const char *param_values[CORE_ROUTER_MAX_PARAMS]; /* decoded, in the arena */
} core_route_match;

core_router *core_router_new(void);
void core_router_free(core_router *r);
/* methods: comma-separated ("GET,POST"); GET also answers HEAD. Adding a method twice to the
 * same pattern, or a malformed pattern, fails with CORE_EINVAL and a message. */
int core_router_add(core_router *r, const char *methods, const char *pattern, void *value, char *err,
                    size_t errlen);
/* raw_path: the request target's path, still percent-encoded, without the query. */
core_route_status core_router_match(const core_router *r, const char *method, const char *raw_path,
                                    core_arena *a, core_route_match *m);
/* The Allow value for the pattern that raw_path matches, or NULL (used for CORS preflight). */
const char *core_router_allow(const core_router *r, const char *raw_path, core_arena *a);

/* ---- JSON --------------------------------------------------------------------------------
 * Request bodies are parsed with duplicate keys refused and a top-level object or array
 * required. On failure err gets a message naming the problem and where, e.g.
 * "invalid JSON at line 1, column 9: string or '}' expected near ','". */
json_t *core_json_parse(const char *body, size_t len, char *err, size_t errlen);
/* Typed field readers: 0 and *out set when present and of the type; CORE_ENOTFOUND when
 * absent (and not required: *out untouched); CORE_EINVAL with a message
 * ("field \"limit\" must be an integer") when of another type or absent but required. The
 * string stays owned by obj. */
int core_json_get_str(json_t *obj, const char *key, bool required, const char **out, char *err,
                      size_t errlen);
int core_json_get_int(json_t *obj, const char *key, bool required, long long *out, char *err, size_t errlen);
int core_json_get_num(json_t *obj, const char *key, bool required, double *out, char *err, size_t errlen);
int core_json_get_bool(json_t *obj, const char *key, bool required, bool *out, char *err, size_t errlen);

/* ---- Multipart ---------------------------------------------------------------------------
 * multipart/form-data (RFC 7578) over a body already in memory (the route's body limit caps
 * it before it gets here). Parts point into the body: no copies. Each part may carry
 * Content-Disposition (name required, filename optional) and Content-Type headers; other part
 * headers are ignored. Malformed input fails with CORE_EINVAL (answered 400); a cap fails with
 * CORE_ETOOLARGE (answered 413). */
typedef struct core_multipart_limits {
    size_t max_parts;       /* 0 = 64 */
    size_t max_part_size;   /* bytes of one part's data; 0 = no cap beyond max_total */
    size_t max_field_size;  /* bytes of a part without filename; 0 = 64 KiB */
    size_t max_total;       /* bytes of all parts' data; 0 = no cap beyond the body */
    size_t max_header_size; /* bytes of one part's header block; 0 = 8 KiB */
} core_multipart_limits;

typedef struct core_multipart_part {
    const char *name;         /* form field name (arena) */
    const char *filename;     /* NULL for plain fields (arena) */
    const char *content_type; /* "text/plain" when the part has none (arena) */
    const char *data;         /* points into the body; not NUL-terminated */
    size_t len;
} core_multipart_part;

/* Pulls the boundary out of a Content-Type value ("multipart/form-data; boundary=..."). */
int core_multipart_boundary(const char *content_type, core_arena *a, const char **boundary, char *err,
                            size_t errlen);
int core_multipart_parse(const char *boundary, const char *body, size_t len, const core_multipart_limits *lim,
                         core_arena *a, core_multipart_part **parts, size_t *nparts, char *err,
                         size_t errlen);

/* ---- Static files ------------------------------------------------------------------------
 * Serves regular files beneath one root directory. Traversal is refused three ways: the
 * router rejects "." and ".." segments (raw and encoded), the relative path is checked again
 * here, and the file is opened with openat2(RESOLVE_BENEATH), so a symlink that leads out of
 * the root fails (where openat2 is missing, the resolved path is compared with the root's).
 * Replies carry ETag (inode, size, mtime), Last-Modified, Cache-Control and a Content-Type
 * from the extension; If-None-Match gives 304. Directories serve their index.html. */
typedef struct core_static core_static;

/* cache_control: value for Cache-Control, NULL for "public, max-age=300". */
core_static *core_static_new(const char *root, const char *cache_control, char *err, size_t errlen);
void core_static_free(core_static *st);
/* Content-Type for a file name, by extension ("application/octet-stream" when unknown). */
const char *core_static_content_type(const char *name);

/* ---- HTTP server -------------------------------------------------------------------------- */
typedef struct core_http_server core_http_server;
typedef struct core_http_req core_http_req;

/* A handler answers through exactly one responder and returns 0. A negative return without an
 * answer becomes a 500 "internal" error (logged with the code). */
typedef int (*core_http_handler)(core_http_req *req, void *ud);

typedef struct core_http_config {
    const char *bind;         /* address to listen on ("127.0.0.1", "0.0.0.0", "::") */
    int port;                 /* 0 picks a free port: see core_http_server_port */
    int threads;              /* event-loop threads; 0 = number of online CPUs */
    int connection_limit;     /* open connections (upgraded ones included) */
    int per_ip_limit;         /* connections from one address; 0 = no limit */
    int idle_timeout_ms;      /* a connection silent this long is closed (whole seconds) */
    int read_timeout_ms;      /* a request must arrive in full (headers + body) within this */
    size_t body_limit;        /* default per-route request-body cap */
    size_t header_limit;      /* request line + headers per connection (MHD memory limit) */
    int pool_threads;         /* worker pool threads; 0 = number of online CPUs */
    int pool_queue;           /* jobs that may wait for a worker before 503 */
    int retry_after_s;        /* Retry-After on 503 when the pool is full */
    int shutdown_grace_ms;    /* how long in-flight requests may run after a signal */
    int slow_ms;              /* requests slower than this are kept for /debug */
    const char *cors_origins; /* NULL or "" = CORS off; "*" or comma-separated origins */
    bool access_log;          /* one log line per request */
    const char *service;      /* name in logs, metrics and /debug ("core-example") */
    const char *version;      /* the program's version, shown in /debug */
} core_http_config;

/* Production defaults: bind 127.0.0.1, port 8080, connection_limit 20000, idle 30 s, read
 * 30 s, body 1 MiB, headers 32 KiB, pool queue 256, retry-after 1 s, grace 10 s, slow 500 ms,
 * CORS off. */
void core_http_config_defaults(core_http_config *cfg);

/* Writes into out (room for cap) the flags for the server config (--bind, --port,
 * --threads, ...), pointing at cfg's fields, with defaults equal to core_http_config_defaults;
 * returns how many it wrote (CORE_HTTP_CONFIG_NFLAGS when cap allows). A program appends its
 * own flags and calls core_flags_parse once. */
#define CORE_HTTP_CONFIG_NFLAGS 16
size_t core_http_config_flags(core_http_config *cfg, core_flag *out, size_t cap);

/* Route options; NULL means all defaults. */
enum {
    CORE_HTTP_ROUTE_POOL = 1 << 0, /* run the handler on the worker pool */
    /* Run it on a second pool of its own (as many threads, as long a queue): for requests that
     * handlers on the first pool may be waiting for, such as one server of a cluster asking
     * another while that one asks back. Those then never queue behind their own waiters,
     * which would hold every worker of every server until the waits time out. */
    CORE_HTTP_ROUTE_INNER_POOL = 1 << 1,
};
typedef struct core_http_route_opts {
    size_t body_limit;               /* 0 = the server's body_limit */
    unsigned flags;                  /* CORE_HTTP_ROUTE_* */
    core_multipart_limits multipart; /* caps for core_http_req_multipart */
} core_http_route_opts;

/* Creates the server (not listening yet) with /healthz, /readyz, /metrics and /debug already
 * routed. log and metrics are borrowed and must outlive the server. */
core_http_server *core_http_server_new(const core_http_config *cfg, core_log *log, core_metrics *metrics,
                                       char *err, size_t errlen);
/* Stops (gracefully if still running) and frees. */
void core_http_server_free(core_http_server *s);
/* Only before core_http_server_start. pattern syntax: see Router. ud is passed to fn. */
int core_http_route(core_http_server *s, const char *methods, const char *pattern, core_http_handler fn,
                    void *ud, const core_http_route_opts *opts, char *err, size_t errlen);
/* Routes GET url_prefix/{path...} (and url_prefix itself -> index.html) to files under st. */
int core_http_route_static(core_http_server *s, const char *url_prefix, core_static *st, char *err,
                           size_t errlen);
/* /readyz answers 200 only when every check returns 0; a failing check writes why into msg. */
typedef int (*core_http_ready_fn)(void *ud, char *msg, size_t msglen);
int core_http_add_ready_check(core_http_server *s, const char *name, core_http_ready_fn fn, void *ud);
/* Shutdown hooks run, in the order added, after the server stops accepting and in-flight
 * requests have finished (or the grace period ran out), before connections are torn down:
 * the WebSocket hub closes its connections with 1001 here. */
int core_http_on_shutdown(core_http_server *s, void (*fn)(void *ud), void *ud);
/* The configuration shown by /debug (stolen reference); e.g. core_flags_to_json(...). */
void core_http_set_debug_config(core_http_server *s, json_t *config);

/* Starts listening. Blocks SIGINT, SIGTERM and SIGPIPE in the calling thread first, so every
 * thread created afterwards (MHD's, the pool's, a WebSocket hub's) inherits the mask and only
 * core_http_server_wait receives them. */
int core_http_server_start(core_http_server *s, char *err, size_t errlen);
/* The bound port (useful with port 0). */
int core_http_server_port(const core_http_server *s);
/* Sleeps until SIGINT or SIGTERM (or core_http_server_shutdown from another thread), then
 * shuts down gracefully; returns the signal number (0 when shut down programmatically). */
int core_http_server_wait(core_http_server *s);
/* Graceful shutdown: stop accepting; wait up to shutdown_grace_ms for in-flight requests
 * (responses sent meanwhile carry Connection: close; /readyz answers 503); once the grace
 * period is over, pool jobs that have not started are answered 503 and running ones are
 * waited for; run shutdown hooks; close everything. Safe to call from any thread (not from a
 * handler), more than once. */
void core_http_server_shutdown(core_http_server *s);
core_log *core_http_server_log(core_http_server *s);
/* Requests answered since start, and latency percentiles over the last ones (the window /debug
 * shows); -1 when there are none yet. Any thread. */
typedef struct core_http_stats {
    uint64_t requests;
    size_t samples;
    double p50_ms, p99_ms;
} core_http_stats;
void core_http_server_stats(core_http_server *s, core_http_stats *out);
core_metrics *core_http_server_metrics(core_http_server *s);

/* ---- Request getters (any thread running the handler; results live in the arena) ---- */
const char *core_http_req_method(core_http_req *req);
const char *core_http_req_path(core_http_req *req);  /* raw, still percent-encoded */
const char *core_http_req_route(core_http_req *req); /* matched pattern, or NULL */
const char *core_http_req_id(core_http_req *req);    /* X-Request-Id: the client's or generated */
/* Path parameter by name (decoded), NULL if the pattern has no such parameter. */
const char *core_http_req_param(core_http_req *req, const char *name);
/* First query parameter with this name (decoded, '+' as space); NULL if absent. */
const char *core_http_req_query(core_http_req *req, const char *name);
/* Request header (case-insensitive name); NULL if absent. */
const char *core_http_req_header(core_http_req *req, const char *name);
/* The request body (not NUL-terminated; empty: len 0). */
const char *core_http_req_body(core_http_req *req, size_t *len);
core_arena *core_http_req_arena(core_http_req *req);
core_log *core_http_req_log(core_http_req *req);
/* "127.0.0.1" etc. (arena). */
const char *core_http_req_peer(core_http_req *req);

/* Body parsers that answer on failure: they return 0 on success, or a negative code after
 * having already sent the error reply (400 bad_json / 415 unsupported_media_type / 413), so a
 * handler does `if (core_http_req_json(req, &doc) != 0) return 0;`. The JSON document is
 * released with the arena. */
int core_http_req_json(core_http_req *req, json_t **out);
int core_http_req_multipart(core_http_req *req, core_multipart_part **parts, size_t *nparts);

/* Runs fn(req, ud) on the worker pool and keeps the connection suspended until it answers.
 * The calling handler must then return 0 without answering. If the queue is full it answers
 * 503 with Retry-After itself and returns CORE_EFULL (the handler still just returns 0). */
int core_http_req_run_on_pool(core_http_req *req, core_http_handler fn, void *ud);

/* ---- Responders (exactly one per request; a second one returns CORE_ESTATE) ---- */
/* Adds a response header (copied). Call before the responder. */
int core_http_add_header(core_http_req *req, const char *name, const char *value);
/* Serialises body compactly and answers with Content-Type application/json. Steals body. */
int core_http_reply_json(core_http_req *req, unsigned status, json_t *body);
/* {"error":{"code":code,"message":<formatted>}} */
int core_http_reply_error(core_http_req *req, unsigned status, const char *code, const char *fmt, ...)
    CORE_PRINTF(4, 5);
/* Copies data (it may be a stack buffer). content_type NULL = application/octet-stream. */
int core_http_reply_bytes(core_http_req *req, unsigned status, const char *content_type, const void *data,
                          size_t len);
/* Answers with data that outlives the server (a constant): no copy. */
int core_http_reply_static_bytes(core_http_req *req, unsigned status, const char *content_type,
                                 const void *data, size_t len);
/* Serves relpath (decoded, '/'-separated, relative) from st: 200, 304 or a JSON 404. */
int core_http_reply_file(core_http_req *req, core_static *st, const char *relpath);

/* ---- Upgrade (used by the WebSocket module) ----
 * core_http_respond_upgrade answers with 101 Switching Protocols plus the given headers
 * (NULL-terminated array: name, value, name, value, ..., NULL). Once MHD has sent the 101, fn
 * is called once on an MHD thread with the raw socket; setting it non-blocking is up to the
 * callee; extra/extra_len are bytes the client sent past the request headers (valid only
 * during the call). The socket stays open and owned by MHD until core_http_upgrade_close(up),
 * which must be called exactly once, from any thread; `up` is freed by that call. */
typedef struct core_http_upgrade core_http_upgrade; /* one upgraded connection */
typedef void (*core_http_upgrade_fn)(void *ud, int fd, const char *extra, size_t extra_len,
                                     core_http_upgrade *up);
int core_http_respond_upgrade(core_http_req *req, const char *const *headers, core_http_upgrade_fn fn,
                              void *ud);
void core_http_upgrade_close(core_http_upgrade *up);

/* ---- Process figures (from /proc/self) ---- */
typedef struct core_proc_stats {
    long long rss_bytes;
    long long heap_bytes; /* bytes malloc has handed out and not had back (glibc mallinfo2) */
    long long open_fds;
    long long threads;
} core_proc_stats;
int core_proc_read(core_proc_stats *st);
/* Raises RLIMIT_NOFILE's soft limit to min(want, hard); returns the new soft limit. */
long long core_proc_raise_nofile(long long want);

/* ---- WebSocket ----
 * RFC 6455 server side: the handshake (core_ws_handshake_check, core_ws_accept_key), framing
 * through Debian's wslay, and a hub that keeps every WebSocket connection of the process on
 * ONE epoll thread and broadcasts to named rooms.
 *
 * Handshake. core_ws_handshake_check() validates `Upgrade: websocket`, a `Connection` list
 * holding `upgrade`, `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key` that is base64 of
 * 16 bytes, and computes `Sec-WebSocket-Accept` = base64(SHA-1(key +
 * 258EAFA5-E914-47DA-95CA-C5AB0DC85B11)). SHA-1 and base64 are our own (ws_handshake.c),
 * tested against the RFC 3174 / RFC 4648 / RFC 6455 vectors.
 *
 * Framing. Frames from a client must be masked (else close 1002); reserved bits, unknown
 * opcodes, fragmented or oversize (>125) control frames close with 1002; text that is not
 * UTF-8 closes with 1007 (checked across fragments); a message past max_message bytes
 * (fragments summed) closes with 1009 before its payload is buffered. Pings are answered
 * with pongs, also between the fragments of a message. A close frame is echoed with its code
 * and the TCP connection is closed once the echo is written. Frames we send are unmasked,
 * one frame per message; a broadcast is encoded once and the same bytes are queued on every
 * connection of the room (reference counted, never copied per connection).
 *
 * Memory per connection. An idle connection costs one small struct (~200 bytes) plus its
 * slot. wslay's parser state (about 8.8 KiB) is allocated when bytes arrive and freed again
 * as soon as the input ends on a frame boundary outside a fragmented message, so 10,000 idle
 * connections hold no parser. The read buffer (64 KiB) is the hub's, shared by all. Through
 * core_ws_http_accept, the hub holds a duplicate of the socket and MHD lets its own
 * connection go (memory pool and request arena freed) right after the 101, so the handshake's
 * memory is transient. bench/ws measures the whole: docs/benchmarks.md has the figures.
 *
 * Bounds. Per connection: max_message (inbound message), max_send_queue (bytes queued for a
 * client that does not read: past it the connection is dropped, on_close sees 1008);
 * per hub: max_connections, max_inbox (bytes of broadcasts/sends waiting for the hub thread:
 * past it core_ws_hub_broadcast returns CORE_EFULL). Rooms: names of 1..CORE_WS_ROOM_MAX
 * bytes from [A-Za-z0-9._~-]; a room exists while it has members.
 *
 * Liveness. A connection silent for ping_interval_ms gets a ping; if nothing (a pong or any
 * frame) arrives within pong_timeout_ms it is dropped (on_close sees 1006). A close we start
 * waits close_timeout_ms for the client's echo, then the TCP connection is closed anyway.
 *
 * Threads. The hub thread owns every connection, room and wslay context; nothing else
 * touches them. core_ws_hub_adopt, _broadcast, _send, _close_conn and _shutdown may be called
 * from any thread (including from inside a callback): they copy what they are given into a
 * mutex-protected inbox and wake the hub thread through an eventfd. Callbacks run on the hub
 * thread, one at a time, and must not block.
 *
 * Ownership. The hub owns a connection from core_ws_hub_adopt until it calls the release
 * function given there, exactly once, on the hub thread, after the fd is out of its epoll set
 * (the MHD glue closes the upgrade there; a plain owner close()s the fd). Callback arguments
 * (room, data) are borrowed for the duration of the call. The hub's creator frees it with
 * core_ws_hub_free after core_ws_hub_shutdown.
 *
 * Shutdown. core_ws_hub_shutdown stops adopting, sends close 1001 to every connection, waits
 * up to its timeout for the clients' echoes, then releases whatever is left and joins the
 * thread; it is bounded by the timeout plus one epoll tick.
 *
 * Process limits. core_ws_hub_new raises RLIMIT_NOFILE's soft limit to the hard limit, since
 * a hub exists to hold many sockets. */
#define CORE_WS_ROOM_MAX 64
#define CORE_WS_ACCEPT_LEN 28 /* base64 of a 20-byte SHA-1 */

typedef struct core_ws_hub core_ws_hub;

enum {
    CORE_WS_TEXT = 1,   /* opcode of a UTF-8 text message */
    CORE_WS_BINARY = 2, /* opcode of a binary message */
};

/* Callbacks, all on the hub thread. id identifies the connection for _send/_close_conn; it is
 * never reused within a hub's life. room is the connection's room name. */
typedef struct core_ws_callbacks {
    void (*on_open)(void *ud, core_ws_hub *hub, uint64_t id, const char *room);
    /* A whole (reassembled) message; data is valid during the call only. */
    void (*on_message)(void *ud, core_ws_hub *hub, uint64_t id, const char *room, int opcode,
                       const void *data, size_t len);
    /* code: the close code received or sent (1000..4999), 1006 when the connection died without
     * a close handshake, 1008 when it was dropped as a slow consumer. */
    void (*on_close)(void *ud, core_ws_hub *hub, uint64_t id, const char *room, unsigned code);
} core_ws_callbacks;

typedef struct core_ws_config {
    size_t max_connections; /* adopted connections at once (default 100000) */
    size_t max_message;     /* largest inbound message in bytes, fragments summed (default 1 MiB) */
    size_t max_send_queue;  /* bytes queued for one connection before it is dropped (default 4 MiB) */
    size_t max_inbox;       /* bytes of commands waiting for the hub thread (default 64 MiB) */
    int ping_interval_ms;   /* silence before a ping; 0 = no pings (default 30000) */
    int pong_timeout_ms;    /* wait for any frame after a ping (default 10000) */
    int close_timeout_ms;   /* wait for the client's close echo (default 2000) */
    core_ws_callbacks cb;   /* any member may be NULL */
    void *ud;               /* passed to every callback */
    bool relay;             /* also broadcast each received message to the rest of its room */
    /* Optional: the hub thread keeps websocket_* series here (connections, rooms, parsers,
     * opened, messages received, frames sent, slow consumers dropped). Borrowed; it must
     * outlive the hub. */
    core_metrics *metrics;
} core_ws_config;

/* Fills cfg with the defaults above (no callbacks, relay off). */
void core_ws_config_defaults(core_ws_config *cfg);

/* Starts the hub thread. cfg is copied. NULL on failure with a message in err. */
core_ws_hub *core_ws_hub_new(const core_ws_config *cfg, char *err, size_t errlen);
/* Closes every connection with 1001, waits up to timeout_ms for the echoes, releases all
 * connections, joins the thread. Later adopts fail with CORE_ESTATE. Idempotent. */
void core_ws_hub_shutdown(core_ws_hub *hub, int timeout_ms);
/* Shuts down (timeout 0 if not done yet) and frees. NULL is fine. */
void core_ws_hub_free(core_ws_hub *hub);
/* For core_http_on_shutdown(server, core_ws_hub_shutdown_hook, hub): core_ws_hub_shutdown with
 * the hub's close_timeout_ms, so clients get 1001 while the HTTP server still runs. */
void core_ws_hub_shutdown_hook(void *hub);

/* Called when the hub is done with an adopted fd (hub thread, exactly once). */
typedef void (*core_ws_release_fn)(void *arg, int fd);
/* Hands an upgraded socket to the hub: it joins `room` and its first input is `extra` (bytes
 * read past the handshake, copied). On failure (bad room, hub full or shut down, inbox full)
 * returns a negative code and does NOT call release: the caller still owns fd. */
int core_ws_hub_adopt(core_ws_hub *hub, int fd, const char *room, const void *extra, size_t extra_len,
                      core_ws_release_fn release, void *release_arg, char *err, size_t errlen);
/* Queues one message to every open connection in room except `except` (0 = none). The data is
 * copied. Returns 0, CORE_EINVAL (bad opcode or room name), CORE_ETOOLARGE (longer than
 * max_send_queue), CORE_EFULL (inbox full), CORE_ESTATE (shut down). A missing room is not an
 * error (nobody receives it). */
int core_ws_hub_broadcast(core_ws_hub *hub, const char *room, int opcode, const void *data, size_t len,
                          uint64_t except);
/* Queues one message to one connection; same returns as broadcast (an unknown id is ignored). */
int core_ws_hub_send(core_ws_hub *hub, uint64_t id, int opcode, const void *data, size_t len);
/* Starts the close handshake with code (1000..4999) and a reason of at most 123 bytes. */
int core_ws_hub_close_conn(core_ws_hub *hub, uint64_t id, unsigned code, const char *reason);

/* Counters, read from any thread (relaxed atomics). */
typedef struct core_ws_stats {
    uint64_t connections;  /* open now */
    uint64_t rooms;        /* existing now */
    uint64_t opened;       /* adopted since start */
    uint64_t messages_in;  /* data messages received */
    uint64_t frames_out;   /* data frames queued to connections */
    uint64_t slow_dropped; /* connections dropped for a full send queue */
    uint64_t parsers;      /* wslay contexts alive now (connections mid-frame) */
} core_ws_stats;
void core_ws_hub_stats(core_ws_hub *hub, core_ws_stats *out);

/* Sec-WebSocket-Accept for a client key: out receives CORE_WS_ACCEPT_LEN chars plus NUL. */
void core_ws_accept_key(const char *key, char out[CORE_WS_ACCEPT_LEN + 1]);
/* Checks the handshake headers (any may be NULL = absent). Returns 0 and fills accept, or
 * CORE_EINVAL with what is wrong in err; *version_bad is set when only the version is wrong
 * (the answer is then 426 with Sec-WebSocket-Version: 13). */
int core_ws_handshake_check(const char *upgrade, const char *connection, const char *version, const char *key,
                            char accept[CORE_WS_ACCEPT_LEN + 1], bool *version_bad, char *err, size_t errlen);
/* true if name is a valid room name. */
bool core_ws_room_valid(const char *name);

/* The HTTP side (ws_http.c). A handler answers a WebSocket handshake with
 * `return core_ws_http_accept(req, hub, room);`: on a valid GET handshake it answers 101 with
 * Sec-WebSocket-Accept, and once MHD has sent it the socket (with any bytes the client sent
 * early) goes to the hub in `room` (copied); the hub gives it back through
 * core_http_upgrade_close. Refusals are JSON errors: 400 bad_room, 400 bad_handshake (what is
 * missing or wrong), 426 upgrade_required with Sec-WebSocket-Version: 13. If the hub cannot
 * take the socket after the 101 (full, or shutting down) the client gets a close frame, 1013
 * or 1001, and the connection is closed. Nothing is sent as a WebSocket subprotocol or
 * extension: both are declined by omission, as RFC 6455 allows. The hub owns the socket
 * from then on (MHD's side of the upgrade is closed at once); register
 * core_ws_hub_shutdown_hook on the server so that clients get 1001 on SIGTERM. */
int core_ws_http_accept(core_http_req *req, core_ws_hub *hub, const char *room);
/* ---- end WebSocket ---- */

#endif
