/* What server.c, reply.c, builtin.c and static.c share about a request and the server.
 * Not part of the public API. */
#ifndef CORE_HTTP_INTERNAL_H
#define CORE_HTTP_INTERNAL_H

#include "core/core.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define HTTP_MAX_READY 16
#define HTTP_MAX_HOOKS 16
#define HTTP_SLOW_RING 32
#define HTTP_LATENCY_RING 4096

/* One registered route: the router's value for a (pattern, method). */
typedef struct http_route {
    core_http_handler fn;
    void *ud;
    core_http_route_opts opts;
    size_t body_limit;
    core_metric *m_duration; /* this pattern's latency series, found once at set-up */
} http_route;

typedef struct http_header {
    struct http_header *next;
    const char *name, *value; /* arena */
} http_header;

typedef enum {
    REPLY_NONE = 0,
    REPLY_BUFFER, /* data/len, in the arena or static */
    REPLY_FD,     /* fd/fd_size: a regular file, closed by MHD with the response */
    REPLY_UPGRADE,
} reply_kind;

typedef enum {
    REQ_NEW = 0,   /* created at the request line, headers not yet seen */
    REQ_BODY,      /* routed, receiving the body */
    REQ_DRAIN,     /* answered before the body: the (small) body is read and dropped, then
                      the answer goes out and the connection stays alive */
    REQ_SUSPENDED, /* waiting for a pool worker (or for its own 503) */
    REQ_DONE,      /* a response has been queued; further body bytes are dropped */
} req_state;

struct core_http_upgrade {
    struct MHD_UpgradeResponseHandle *urh;
    core_http_upgrade_fn fn;
    void *ud;
    core_http_server *server;
};

struct core_http_req {
    core_http_server *s;
    struct MHD_Connection *conn;
    core_arena *arena;
    struct timespec start;
    req_state state;
    const char *method;
    const char *path;  /* raw */
    const char *query; /* raw, NULL when none */
    const char *id;
    const http_route *route;
    core_route_match match;
    size_t body_limit;
    char *body;
    size_t body_len, body_cap;
    size_t drained; /* body bytes dropped after an early answer */
    bool parsed_multipart;
    core_multipart_part *parts;
    size_t nparts;
    bool upgraded; /* in-flight count already released by the upgrade */
    /* the pending response */
    bool replied;
    unsigned status;
    reply_kind kind;
    const void *data;
    size_t len;
    int fd;
    uint64_t fd_size;
    const char *content_type;
    http_header *headers, *headers_tail;
    bool close_after;  /* send Connection: close (body not read in full) */
    const char *error; /* short cause for the access log */
    core_http_upgrade_fn up_fn;
    void *up_ud;
    core_http_upgrade *up; /* freed here only if the upgrade never happened */
    /* work handed to the pool */
    core_http_handler pool_fn;
    void *pool_ud;
};

typedef struct http_slow {
    char when[32];
    char id[40];
    char method[16];
    char path[160];
    char route[96];
    unsigned status;
    double ms;
} http_slow;

typedef struct http_ready_check {
    char name[48];
    core_http_ready_fn fn;
    void *ud;
} http_ready_check;

typedef struct http_hook {
    void (*fn)(void *ud);
    void *ud;
} http_hook;

struct core_http_server {
    core_http_config cfg;
    core_log *log;
    core_metrics *metrics;
    core_router *router;
    http_route **routes;
    size_t nroutes, routes_cap;
    struct MHD_Daemon *daemon;
    _Atomic int port; /* written once the daemon runs, read by /debug on MHD threads */
    int threads;
    core_pool *pool;
    core_pool *inner_pool; /* CORE_HTTP_ROUTE_INNER_POOL routes; NULL when none has the flag */
    bool want_inner;       /* a route has CORE_HTTP_ROUTE_INNER_POOL */
    http_ready_check ready[HTTP_MAX_READY];
    size_t nready;
    http_hook hooks[HTTP_MAX_HOOKS];
    size_t nhooks;
    json_t *debug_config;
    struct timespec started;
    uint64_t id_seed;
    _Atomic uint64_t id_counter;
    _Atomic long inflight;
    _Atomic bool shutting_down;
    _Atomic bool grace_over;
    _Atomic bool shutdown_requested;
    pthread_mutex_t shutdown_mu; /* serialises core_http_server_shutdown */
    bool stopped;
    /* metrics */
    core_metric_family *m_requests; /* route, method, status */
    core_metric_family *m_duration; /* route */
    core_metric *m_inflight;
    core_metric *m_pool_rejected;
    core_metric *m_pool_queued;
    core_metric *m_uptime, *m_rss, *m_heap, *m_fds, *m_threads, *m_start_time;
    /* /debug */
    pthread_mutex_t debug_mu;
    http_slow slow[HTTP_SLOW_RING];
    size_t nslow, slow_next;
    float latency_ms[HTTP_LATENCY_RING];
    size_t nlatency, latency_next;
    uint64_t answered; /* requests answered since start */
};

/* reply.c */
int http_reply_take(core_http_req *req, unsigned status, const char *content_type, char *data, size_t len);
double http_elapsed_ms(const struct timespec *since);

/* builtin.c */
int http_builtin_routes(core_http_server *s, char *err, size_t errlen);
void http_debug_record(core_http_server *s, core_http_req *req, double ms);

/* static.c */
int http_static_reply(core_http_req *req, core_static *st, const char *relpath);

#endif
