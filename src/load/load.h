/* load: an HTTP/1.1 load generator engine, the part of a stress test that does not depend on
 * the service under test (lookalike-load builds its request mix on top of it).
 *
 * Model
 * -----
 * `connections` keep-alive client connections run on one epoll event loop in the calling
 * thread. Each connection, when idle, asks the caller's next() for a request (method, path,
 * headers, body, and a `kind` number that the statistics are kept by), writes it, reads the
 * response with an incremental parser (Content-Length, chunked, or until close), and hands
 * status and body to the caller's check() to judge the body. One request per connection is in
 * flight at a time (no pipelining), as browsers and the seeds' clients do.
 *
 * Load: closed loop by default (every connection sends its next request as soon as the last
 * one is answered). With `rate` > 0 the run is open loop: request i is due at start + i/rate
 * whether or not earlier ones were answered, an idle connection takes the next due request,
 * and its latency is measured from when it was DUE, not when a connection got free (so a
 * stalled server shows up in the percentiles instead of slowing the clock: no coordinated
 * omission). The run ends after `duration_ms` or `max_requests` requests, whichever comes
 * first; requests still in flight then are finished or timed out, not dropped.
 *
 * Failures and restarts: every request ends as ok (2xx and check() accepts the body) or as one
 * error class (load_err_t): connect (refused, unreachable), timeout (no full response within
 * `timeout_ms`), closed (the server closed or reset the connection mid-request), http_4xx,
 * http_5xx (any status >= 500, and 1xx/3xx), bad_body (check() refused it), proto (an HTTP
 * response we cannot parse, or one over the body cap). A connection that fails is closed and
 * opened again after a backoff (10 ms doubling to 200 ms, reset by the next success), so the
 * run goes on through a server restart. A request that finds its kept-alive connection closed
 * by the server before any byte of the answer (the idle-close race every keep-alive client
 * meets) is sent once more on a fresh connection and not counted as an error, unless it is
 * marked `once` (an insert: the server may have done it, so it counts as closed).
 *
 * Downtime: the longest stretch of the run (from its start to its end) with no successful
 * response, and every stretch over `gap_ms`, with their offsets from the start.
 *
 * Latency histogram: log-linear buckets over microseconds (64 sub-buckets per power of two,
 * under 1.6% relative error), from 1 us to about 38 hours; merged exactly across kinds.
 *
 * Threading: load_run uses only the calling thread; next() and check() are called from it.
 * Ownership: the caller owns every buffer it hands in; a request's buffers must stay valid
 * until next() is called again for the same connection (the engine writes from them without
 * copying), and the per-connection scratch buffer passed to next() may hold them. Results are
 * written into the caller's load_result_t, released with load_result_release.
 * Errors: functions return 0 or a negative LOAD_E* code with a message in err. */
#ifndef LOAD_LOAD_H
#define LOAD_LOAD_H

#include <stddef.h>
#include <stdint.h>

enum {
    LOAD_EINVAL = -1,    /* bad argument */
    LOAD_ENOMEM = -2,    /* out of memory */
    LOAD_EPROTO = -3,    /* not an HTTP/1.x response we can read */
    LOAD_ETOOLARGE = -4, /* a response header block or body over its cap */
    LOAD_ESYS = -5,      /* a system call failed (epoll, socket, name lookup) */
};

/* ---- HTTP/1.1 response parser (http_resp.c) ---- */

/* Largest response header block, bytes. */
#define LOAD_HEADER_MAX (16 * 1024)

typedef struct {
    int state;              /* private */
    int status;             /* status code, once the status line is read */
    int close;              /* the server will close after this response (Connection: close, HTTP/1.0) */
    int chunked;            /* Transfer-Encoding: chunked */
    int64_t content_length; /* -1 when absent */
    int64_t chunk_left;     /* private: bytes left in the current chunk */
    char *head;             /* private: header bytes so far (LOAD_HEADER_MAX + 1) */
    size_t head_len;
    char *body; /* the body read so far (NUL-terminated), owned by the parser */
    size_t body_len, body_cap, body_max;
    size_t line_len; /* private: bytes of a chunk-size or trailer line so far */
    char line[128];  /* private */
} load_resp_t;

/* Feed results besides the negative errors. */
enum { LOAD_RESP_MORE = 0, LOAD_RESP_DONE = 1 };

/* A parser for responses with bodies of at most body_max bytes. Release with
 * load_resp_release. LOAD_ENOMEM on failure. */
int load_resp_init(load_resp_t *r, size_t body_max);
void load_resp_release(load_resp_t *r);
/* Ready for the next response on the same connection (keeps the buffers). */
void load_resp_reset(load_resp_t *r);
/* Parses len bytes; *used (may be NULL) gets how many belong to this response (the rest are
 * the next one's). LOAD_RESP_DONE once the response is complete, LOAD_RESP_MORE when it needs
 * more bytes, LOAD_EPROTO or LOAD_ETOOLARGE. 1xx interim responses are skipped. */
int load_resp_feed(load_resp_t *r, const char *data, size_t len, size_t *used);
/* The connection reached EOF: LOAD_RESP_DONE when that ends a body delimited by close,
 * LOAD_EPROTO when the response is cut short. */
int load_resp_eof(load_resp_t *r);
/* 1 when no byte of the current response has been fed yet. */
int load_resp_empty(const load_resp_t *r);

/* ---- latency histogram (hist.c) ---- */

#define LOAD_HIST_SUB 64
#define LOAD_HIST_BUCKETS (32 * LOAD_HIST_SUB)

typedef struct {
    uint64_t counts[LOAD_HIST_BUCKETS];
    uint64_t n;
    uint64_t max_us;
    double sum_us;
} load_hist_t;

void load_hist_init(load_hist_t *h);
/* Records one value in microseconds (values past the top bucket land in it). */
void load_hist_add(load_hist_t *h, uint64_t us);
/* Adds every value of src to dst. */
void load_hist_merge(load_hist_t *dst, const load_hist_t *src);
/* The q-quantile (0 <= q <= 1) in microseconds: the upper edge of the bucket holding it,
 * capped at the largest value seen; 0 when empty. */
uint64_t load_hist_quantile(const load_hist_t *h, double q);

/* ---- the engine (engine.c) ---- */

typedef enum {
    LOAD_ERR_CONNECT,
    LOAD_ERR_TIMEOUT,
    LOAD_ERR_CLOSED,
    LOAD_ERR_HTTP_4XX,
    LOAD_ERR_HTTP_5XX,
    LOAD_ERR_BAD_BODY,
    LOAD_ERR_PROTO,
    LOAD_ERR_COUNT
} load_err_t;

/* "connect", "timeout", "closed", "http_4xx", "http_5xx", "bad_body", "proto". */
const char *load_err_name(load_err_t e);

/* Most request kinds statistics are kept for. */
#define LOAD_KINDS_MAX 16

/* A growable byte buffer (one per connection, for next() to build bodies in). */
typedef struct {
    char *data;
    size_t len, cap;
} load_buf_t;

/* Appends n bytes; LOAD_ENOMEM on failure. */
int load_buf_add(load_buf_t *b, const void *data, size_t n);
/* Appends printf-style text. */
int load_buf_printf(load_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void load_buf_release(load_buf_t *b);

/* One request, filled by next(). Strings are NUL-terminated; all borrowed (see Ownership). */
typedef struct {
    int kind;                 /* 0..nkinds-1 */
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* "/api/search?..." */
    const char *content_type; /* NULL: no body */
    const char *headers;      /* extra header lines, each ending in "\r\n", or NULL */
    const void *body;
    size_t body_len;
    uint64_t tag; /* passed back to check() (e.g. which insert this was) */
    int once;     /* never send it twice (not idempotent, e.g. an insert) */
} load_req_t;

/* Fills *req for connection conn (0..connections-1), using scratch as it likes (cleared before
 * each call). 0, or < 0 to stop the run (no further requests are started). */
typedef int (*load_next_fn)(void *ud, int conn, load_buf_t *scratch, load_req_t *req);
/* Judges a 2xx response: 0 ok, < 0 bad body. */
typedef int (*load_check_fn)(void *ud, const load_req_t *req, int status, const char *body, size_t len);

typedef struct {
    const char *host; /* name or address */
    int port;
    int connections;       /* 1..10000 */
    int64_t duration_ms;   /* 0: until max_requests */
    uint64_t max_requests; /* 0: until duration_ms */
    double rate;           /* requests per second over all connections; 0: closed loop */
    int timeout_ms;        /* per request, connect included */
    int gap_ms;            /* stretches without a success longer than this are listed */
    size_t body_max;       /* largest response body read (default 8 MiB) */
    int nkinds;
    const char *kind_names[LOAD_KINDS_MAX];
    load_next_fn next;
    load_check_fn check; /* NULL: any 2xx is ok */
    void *ud;
} load_opts_t;

typedef struct {
    uint64_t sent, ok;
    uint64_t errors[LOAD_ERR_COUNT];
    load_hist_t latency; /* successful requests only */
} load_kind_stats_t;

/* A stretch without a successful response: offsets from the start of the run, ms. */
typedef struct {
    double start_ms, end_ms;
} load_gap_t;

typedef struct {
    double elapsed_ms;
    load_kind_stats_t kinds[LOAD_KINDS_MAX];
    load_kind_stats_t all;
    uint64_t retried;       /* requests sent again after a kept-alive connection was found closed */
    uint64_t connects;      /* connections opened (first ones included) */
    load_gap_t longest_gap; /* the longest stretch without a success */
    load_gap_t *gaps;       /* those over gap_ms, in time order (malloc'd) */
    size_t ngaps;
    double first_ok_ms, last_ok_ms; /* -1 when there was none */
} load_result_t;

/* Runs the load and fills *res (released with load_result_release even after a failure).
 * Fails only when the run cannot start (bad options, name lookup, epoll); failing requests
 * are results, not errors. */
int load_run(const load_opts_t *o, load_result_t *res, char *err, size_t errlen);
void load_result_release(load_result_t *res);

#endif
