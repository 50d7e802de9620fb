/* The HTTP server on libmicrohttpd.
 *
 * MHD calls us at three points per request, and each owns one step:
 *   uri_logger     the request line arrived: create the request and its arena, keep the raw
 *                  target (MHD unescapes the URL it passes later, losing "%2F" vs "/");
 *   on_request     headers complete (first call): route, check the body limit; later calls
 *                  stream the body in; the last call (no more data) runs the handler, or,
 *                  for a resumed connection, sends what the worker answered;
 *   on_completed   the response went out or the connection died: access log, metrics,
 *                  arena freed.
 */
#include "http_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

void core_http_config_defaults(core_http_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->bind = "127.0.0.1";
    cfg->port = 8080;
    cfg->connection_limit = 20000;
    cfg->idle_timeout_ms = 30000;
    cfg->read_timeout_ms = 30000;
    cfg->body_limit = 1 << 20;
    cfg->header_limit = 32 << 10;
    cfg->pool_queue = 256;
    cfg->retry_after_s = 1;
    cfg->shutdown_grace_ms = 10000;
    cfg->slow_ms = 500;
    cfg->access_log = true;
    cfg->service = "core";
    cfg->version = "dev";
}

size_t core_http_config_flags(core_http_config *cfg, core_flag *out, size_t cap)
{
    /* Defaults here are the text form of core_http_config_defaults (a unit test holds the two
     * together). */
    const core_flag table[] = {
        {"bind", CORE_FLAG_STR, &cfg->bind, "127.0.0.1", 0, 0, "address to listen on (IPv4 or IPv6)"},
        {"port", CORE_FLAG_INT, &cfg->port, "8080", 0, 65535, "TCP port; 0 picks a free one"},
        {"threads", CORE_FLAG_INT, &cfg->threads, "0", 0, 1024, "HTTP event-loop threads; 0 = one per CPU"},
        {"connection-limit", CORE_FLAG_INT, &cfg->connection_limit, "20000", 1, 1000000,
         "open HTTP connections (WebSockets leave this count once their hub has them)"},
        {"per-ip-limit", CORE_FLAG_INT, &cfg->per_ip_limit, "0", 0, 1000000,
         "connections from one address; 0 = no limit"},
        {"idle-timeout", CORE_FLAG_MS, &cfg->idle_timeout_ms, "30s", 1000, 86400000,
         "close a connection silent this long (whole seconds)"},
        {"read-timeout", CORE_FLAG_MS, &cfg->read_timeout_ms, "30s", 1, 86400000,
         "a request body must have arrived this long after its request line"},
        {"body-limit", CORE_FLAG_SIZE, &cfg->body_limit, "1M", 0, 1LL << 40,
         "default request body cap (413 past it); routes may set their own"},
        {"header-limit", CORE_FLAG_SIZE, &cfg->header_limit, "32k", 4096, 1 << 24,
         "memory for the request line and headers of one connection"},
        {"pool-threads", CORE_FLAG_INT, &cfg->pool_threads, "0", 0, 1024,
         "worker threads for blocking work; 0 = one per CPU"},
        {"pool-queue", CORE_FLAG_INT, &cfg->pool_queue, "256", 1, 1000000,
         "jobs that may wait for a worker before requests get 503"},
        {"retry-after", CORE_FLAG_INT, &cfg->retry_after_s, "1", 0, 3600, "Retry-After seconds on 503"},
        {"shutdown-grace", CORE_FLAG_MS, &cfg->shutdown_grace_ms, "10s", 0, 3600000,
         "how long in-flight requests may finish after SIGTERM"},
        {"slow-ms", CORE_FLAG_INT, &cfg->slow_ms, "500", 0, 3600000,
         "requests slower than this many milliseconds are listed in /debug"},
        {"cors-origins", CORE_FLAG_STR, &cfg->cors_origins, "", 0, 0,
         "CORS: empty = off, \"*\", or comma-separated allowed origins"},
        {"access-log", CORE_FLAG_BOOL, &cfg->access_log, "true", 0, 0, "log one line per request"},
    };
    size_t n = sizeof table / sizeof table[0];
    if (n > cap)
        n = cap;
    memcpy(out, table, n * sizeof *out);
    return n;
}

static int nprocs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* ---- request ids ---- */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static bool acceptable_id(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++) {
        unsigned char c = (unsigned char)id[n];
        if (n >= 128 || c <= 32 || c >= 127 || c == '"' || c == '\\')
            return false;
    }
    return n > 0;
}

/* ---- MHD callbacks ---- */
static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *conn)
{
    core_http_server *s = cls;
    (void)conn;
    /* No arena cap: what grows from the client (the body) is capped by the route's limit. */
    core_arena *a = core_arena_new(0);
    core_http_req *req = a ? core_arena_calloc(a, sizeof *req) : NULL;
    if (!req) {
        core_arena_free(a);
        return NULL;
    }
    req->s = s;
    req->arena = a;
    req->fd = -1;
    clock_gettime(CLOCK_MONOTONIC, &req->start);
    const char *q = strchr(uri, '?');
    req->path = q ? core_arena_strndup(a, uri, (size_t)(q - uri)) : core_arena_strdup(a, uri);
    req->query = q ? core_arena_strdup(a, q + 1) : NULL;
    atomic_fetch_add(&s->inflight, 1);
    core_metric_add(s->m_inflight, 1);
    return req;
}

static const char *status_label(unsigned status, char *buf, size_t len)
{
    snprintf(buf, len, "%u", status);
    return buf;
}

static const char *method_label(const char *m)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (m && strcmp(m, known[i]) == 0)
            return known[i];
    return "OTHER";
}

static const char *termination_text(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK:
        return NULL;
    case MHD_REQUEST_TERMINATED_WITH_ERROR:
        return "connection error";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
        return "idle timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
        return "server shut down";
    case MHD_REQUEST_TERMINATED_READ_ERROR:
        return "client closed the connection";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
        return "client aborted";
    }
    return "unknown";
}

static void release_inflight(core_http_server *s)
{
    atomic_fetch_sub(&s->inflight, 1);
    core_metric_add(s->m_inflight, -1);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    core_http_server *s = cls;
    core_http_req *req = *con_cls;
    (void)conn;
    if (!req)
        return;
    *con_cls = NULL;
    double ms = http_elapsed_ms(&req->start);
    const char *route = req->match.pattern ? req->match.pattern : "unmatched";
    unsigned status = req->replied && req->state == REQ_DONE ? req->status : 0;
    const char *cause = termination_text(toe);
    if (status > 0) {
        char sbuf[16];
        const char *labels[] = {route, method_label(req->method), status_label(status, sbuf, sizeof sbuf)};
        core_metric_inc(core_metric_family_get(s->m_requests, labels));
        const char *dl[] = {route};
        core_metric *dur = req->route ? req->route->m_duration : core_metric_family_get(s->m_duration, dl);
        core_metric_observe(dur, ms / 1e3);
        http_debug_record(s, req, ms);
    }
    if (s->cfg.access_log || (cause && core_log_enabled(s->log, CORE_LOG_DEBUG, "http"))) {
        json_t *f = json_object();
        if (f) {
            json_object_set_new(f, "request_id", json_string(req->id ? req->id : ""));
            json_object_set_new(f, "method", json_string(req->method ? req->method : ""));
            json_t *path = json_string(req->path ? req->path : "");
            json_object_set_new(f, "path", path ? path : json_string("(not UTF-8)"));
            json_object_set_new(f, "route", json_string(route));
            json_object_set_new(f, "status", json_integer(status));
            json_object_set_new(f, "duration_ms", json_real((double)(long long)(ms * 1000) / 1000));
            json_object_set_new(
                f, "bytes",
                json_integer(req->kind == REPLY_FD ? (json_int_t)req->fd_size : (json_int_t)req->len));
            const char *e = req->error ? req->error : cause;
            if (e) {
                json_t *ej = json_string(e);
                json_object_set_new(f, "error", ej ? ej : json_string("(not UTF-8)"));
            }
            core_log_level lvl = status >= 500 || (status == 0 && cause) ? CORE_LOG_WARN : CORE_LOG_INFO;
            core_log_json(s->log, lvl, "http", f, "request");
            json_decref(f);
        }
    }
    if (req->fd >= 0)
        close(req->fd); /* a file that was never handed to MHD */
    if (req->up && !req->upgraded)
        free(req->up); /* the 101 never went out */
    if (!req->upgraded)
        release_inflight(s);
    core_arena_free(req->arena);
}

/* allowed: "*" or a comma/space-separated list of exact origins. */
static bool origin_allowed(const char *allowed, const char *origin)
{
    if (strcmp(allowed, "*") == 0)
        return true;
    size_t olen = strlen(origin);
    for (const char *p = allowed; *p;) {
        size_t n = strcspn(p, ", ");
        if (n == olen && strncmp(p, origin, n) == 0)
            return true;
        p += n;
        p += strspn(p, ", ");
    }
    return false;
}

static void add_cors_headers(core_http_req *req, struct MHD_Response *r)
{
    const char *allowed = req->s->cfg.cors_origins;
    if (!*allowed)
        return;
    const char *origin = core_http_req_header(req, "Origin");
    if (!origin || !origin_allowed(allowed, origin))
        return;
    if (strcmp(allowed, "*") == 0) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    } else {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
    MHD_add_response_header(r, "Access-Control-Expose-Headers", "X-Request-Id");
}

static void upgrade_trampoline(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                               size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    core_http_upgrade *up = cls;
    core_http_req *req = con_cls;
    (void)conn;
    up->urh = urh;
    /* An upgraded connection is no longer a request in flight: graceful shutdown hands it to
     * the shutdown hooks instead of waiting for it. */
    if (req && !req->upgraded) {
        req->upgraded = true;
        release_inflight(up->server);
    }
    up->fn(up->ud, sock, extra_in, extra_in_size, up);
}

void core_http_upgrade_close(core_http_upgrade *up)
{
    if (!up)
        return;
    MHD_upgrade_action(up->urh, MHD_UPGRADE_ACTION_CLOSE);
    free(up);
}

/* Turns the recorded answer into an MHD response and queues it (MHD thread only). */
static enum MHD_Result send_reply(core_http_req *req)
{
    core_http_server *s = req->s;
    struct MHD_Response *r = NULL;
    core_http_upgrade *up = NULL;
    if (!req->replied)
        core_http_reply_error(req, 500, "internal", "handler returned without answering");
    switch (req->kind) {
    case REPLY_FD:
        r = MHD_create_response_from_fd64(req->fd_size, req->fd);
        if (r)
            req->fd = -1; /* MHD closes it with the response */
        break;
    case REPLY_UPGRADE:
        up = calloc(1, sizeof *up);
        req->up = up;
        if (up) {
            up->fn = req->up_fn;
            up->ud = req->up_ud;
            up->server = s;
            r = MHD_create_response_for_upgrade(upgrade_trampoline, up);
        }
        break;
    default:
        r = MHD_create_response_from_buffer(req->len, (void *)req->data, MHD_RESPMEM_PERSISTENT);
        break;
    }
    req->state = REQ_DONE;
    if (!r) {
        core_log_error(s->log, "http", "cannot build a response for %s %s", req->method, req->path);
        return MHD_NO;
    }
    if (req->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, req->content_type);
    for (http_header *h = req->headers; h; h = h->next)
        MHD_add_response_header(r, h->name, h->value);
    if (req->id)
        MHD_add_response_header(r, "X-Request-Id", req->id);
    add_cors_headers(req, r);
    if (req->kind != REPLY_UPGRADE && (req->close_after || atomic_load(&s->shutting_down)))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(req->conn, req->status, r);
    MHD_destroy_response(r);
    if (ok != MHD_YES) {
        core_log_error(s->log, "http", "MHD refused the response for %s %s", req->method, req->path);
    }
    return ok;
}

/* Answers at once from the MHD thread, for errors found before the handler runs. */
static enum MHD_Result early_error(core_http_req *req, unsigned status, const char *code, const char *msg)
{
    core_http_reply_error(req, status, code, "%s", msg);
    return send_reply(req);
}

/* Bodies up to this size are read and dropped after an early 404/405/400, so the connection
 * can stay alive; past it (or when chunked) the answer goes out at once and MHD closes. */
#define DRAIN_LIMIT (64 * 1024)

/* Like early_error, but for routing errors: MHD closes the connection when a response is
 * queued before the body has been read, so wait for the end of a small or absent body. */
static enum MHD_Result routing_error(core_http_req *req, unsigned status, const char *code, const char *msg)
{
    const char *cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te || (cl && strtoull(cl, NULL, 10) > DRAIN_LIMIT))
        return early_error(req, status, code, msg);
    core_http_reply_error(req, status, code, "%s", msg);
    req->state = REQ_DRAIN;
    return MHD_YES;
}

/* ---- the worker pool path ---- */
static void pool_job(void *ud)
{
    core_http_req *req = ud;
    core_http_server *s = req->s;
    if (atomic_load(&s->grace_over)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", s->cfg.retry_after_s);
        core_http_add_header(req, "Retry-After", ra);
        core_http_reply_error(req, 503, "shutting_down", "the server is shutting down");
    } else {
        int rc = req->pool_fn(req, req->pool_ud);
        if (!req->replied)
            core_http_reply_error(req, 500, "internal", "handler failed (code %d) without answering", rc);
    }
    core_metric_set(s->m_pool_queued, core_pool_queued(s->pool));
    MHD_resume_connection(req->conn);
}

/* The pool a request's work goes to. */
static core_pool *pool_of(core_http_req *req)
{
    core_http_server *s = req->s;
    if (s->inner_pool && req->route && (req->route->opts.flags & CORE_HTTP_ROUTE_INNER_POOL))
        return s->inner_pool;
    return s->pool;
}

int core_http_req_run_on_pool(core_http_req *req, core_http_handler fn, void *ud)
{
    core_http_server *s = req->s;
    if (req->replied || req->state == REQ_SUSPENDED)
        return CORE_ESTATE;
    req->pool_fn = fn;
    req->pool_ud = ud;
    req->state = REQ_SUSPENDED;
    /* Suspend before submitting: a worker may finish and resume before we return. */
    MHD_suspend_connection(req->conn);
    int rc = core_pool_submit(pool_of(req), pool_job, req);
    if (rc != 0) {
        core_metric_inc(s->m_pool_rejected);
        char ra[16];
        snprintf(ra, sizeof ra, "%d", s->cfg.retry_after_s);
        core_http_add_header(req, "Retry-After", ra);
        core_http_reply_error(req, 503, "overloaded", "the work queue is full (%d waiting); retry later",
                              s->cfg.pool_queue);
        MHD_resume_connection(req->conn);
        return CORE_EFULL;
    }
    core_metric_set(s->m_pool_queued, core_pool_queued(s->pool));
    return 0;
}

static enum MHD_Result dispatch(core_http_req *req)
{
    const http_route *rt = req->route;
    if (rt->opts.flags & (CORE_HTTP_ROUTE_POOL | CORE_HTTP_ROUTE_INNER_POOL)) {
        core_http_req_run_on_pool(req, rt->fn, rt->ud);
        return MHD_YES;
    }
    int rc = rt->fn(req, rt->ud);
    if (req->state == REQ_SUSPENDED)
        return MHD_YES;
    if (!req->replied)
        core_http_reply_error(req, 500, "internal", "handler failed (code %d) without answering", rc);
    return send_reply(req);
}

static enum MHD_Result cors_preflight(core_http_req *req)
{
    const char *allow = core_router_allow(req->s->router, req->path, req->arena);
    if (!allow)
        return early_error(req, 404, "not_found", "no route for this path");
    if (!origin_allowed(req->s->cfg.cors_origins, core_http_req_header(req, "Origin")))
        return early_error(req, 403, "cors_origin", "origin not allowed");
    core_http_add_header(req, "Access-Control-Allow-Methods", allow);
    const char *rh = core_http_req_header(req, "Access-Control-Request-Headers");
    if (rh)
        core_http_add_header(req, "Access-Control-Allow-Headers", rh);
    core_http_add_header(req, "Access-Control-Max-Age", "600");
    core_http_reply_static_bytes(req, 204, NULL, "", 0);
    req->content_type = NULL;
    return send_reply(req);
}

/* First call for a request: headers are complete. */
static enum MHD_Result start_request(core_http_req *req, struct MHD_Connection *conn, const char *method)
{
    core_http_server *s = req->s;
    req->conn = conn;
    req->method = core_arena_strdup(req->arena, method);
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (rid && acceptable_id(rid)) {
        req->id = core_arena_strdup(req->arena, rid);
    } else {
        uint64_t v = mix64(s->id_seed ^ atomic_fetch_add(&s->id_counter, 1));
        req->id = core_arena_printf(req->arena, "%016llx", (unsigned long long)v);
    }
    if (!req->method || !req->path || !req->id)
        return MHD_NO;
    core_log_debug(s->log, "http", "%s %s (request %s)", req->method, req->path, req->id);

    const char *cors = s->cfg.cors_origins;
    if (cors && *cors && strcmp(method, "OPTIONS") == 0 && core_http_req_header(req, "Origin") &&
        core_http_req_header(req, "Access-Control-Request-Method"))
        return cors_preflight(req);

    core_route_status st = core_router_match(s->router, method, req->path, req->arena, &req->match);
    switch (st) {
    case CORE_ROUTE_FOUND:
        break;
    case CORE_ROUTE_NOT_FOUND:
        return routing_error(req, 404, "not_found", "no route for this path");
    case CORE_ROUTE_METHOD_NOT_ALLOWED: {
        core_http_add_header(req, "Allow", req->match.allow);
        char msg[160];
        snprintf(msg, sizeof msg, "method %.16s not allowed here; allowed: %s", method, req->match.allow);
        return routing_error(req, 405, "method_not_allowed", msg);
    }
    case CORE_ROUTE_BAD_PATH:
        return routing_error(req, 400, "bad_path",
                             "the path has a bad escape, a dot segment or too many segments");
    }
    req->route = req->match.value;
    req->body_limit = req->route->body_limit;

    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end == cl || *end || errno) {
            req->close_after = true;
            return early_error(req, 400, "bad_request", "Content-Length is not a number");
        }
        if (n > req->body_limit) {
            char msg[128];
            snprintf(msg, sizeof msg, "request body too large: %llu bytes, limit %zu", n, req->body_limit);
            req->close_after = true;
            return early_error(req, 413, "too_large", msg);
        }
        if (n > 0) {
            req->body = core_arena_alloc(req->arena, (size_t)n);
            if (!req->body)
                return early_error(req, 500, "internal", "out of memory for the request body");
            req->body_cap = (size_t)n;
        }
    }
    req->state = REQ_BODY;
    return MHD_YES;
}

/* How far past its limit a streamed (chunked) body is read and dropped so that the client
 * still gets its 413: MHD 0.9.75 cannot queue a response while a body is arriving. Past this,
 * the connection is closed without an answer. */
#define OVERSHOOT_LIMIT (1024 * 1024)

static enum MHD_Result take_body(core_http_req *req, const char *data, size_t n)
{
    if (http_elapsed_ms(&req->start) > req->s->cfg.read_timeout_ms) {
        /* A client this slow gets no answer: MHD cannot send one mid-body, and waiting for
         * the rest of the body is what the timeout exists to prevent. */
        req->error = "read timeout: the request body took too long";
        return MHD_NO;
    }
    if (n > req->body_limit - req->body_len) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body too large: more than %zu bytes", req->body_limit);
        core_http_reply_error(req, 413, "too_large", "%s", msg);
        req->close_after = true;
        req->state = REQ_DRAIN;
        req->drained = n;
        return MHD_YES;
    }
    if (req->body_len + n > req->body_cap) {
        /* Chunked bodies grow by doubling; the old copy stays in the arena until the end. */
        size_t cap = req->body_cap ? req->body_cap * 2 : 4096;
        while (cap < req->body_len + n)
            cap *= 2;
        if (cap > req->body_limit)
            cap = req->body_limit;
        char *nb = core_arena_alloc(req->arena, cap);
        if (!nb) {
            req->error = "out of memory for the request body";
            return MHD_NO;
        }
        if (req->body_len)
            memcpy(nb, req->body, req->body_len);
        req->body = nb;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    core_http_server *s = cls;
    core_http_req *req = *con_cls;
    (void)version;
    if (!req) {
        req = uri_logger(s, url, conn);
        if (!req)
            return MHD_NO;
        *con_cls = req;
    }
    switch (req->state) {
    case REQ_NEW:
        return start_request(req, conn, method);
    case REQ_BODY:
        if (*upload_data_size > 0) {
            size_t n = *upload_data_size;
            *upload_data_size = 0;
            return take_body(req, upload_data, n);
        }
        return dispatch(req);
    case REQ_DRAIN:
        if (*upload_data_size > 0) {
            req->drained += *upload_data_size;
            *upload_data_size = 0;
            return req->drained <= OVERSHOOT_LIMIT ? MHD_YES : MHD_NO;
        }
        return send_reply(req);
    case REQ_SUSPENDED:
        /* Resumed: the worker (or the full queue) has answered. */
        *upload_data_size = 0;
        return send_reply(req);
    case REQ_DONE:
        *upload_data_size = 0;
        return MHD_YES;
    }
    return MHD_NO;
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    core_http_server *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    core_log_json(s->log, CORE_LOG_WARN, "mhd", NULL, "%s", msg);
}

/* ---- set-up ---- */
core_http_server *core_http_server_new(const core_http_config *cfg, core_log *log, core_metrics *metrics,
                                       char *err, size_t errlen)
{
    core_http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->log = log;
    s->metrics = metrics;
    s->threads = cfg->threads > 0 ? cfg->threads : nprocs();
    if (s->cfg.pool_threads <= 0)
        s->cfg.pool_threads = nprocs();
    if (s->cfg.pool_queue <= 0)
        s->cfg.pool_queue = 1;
    if (!s->cfg.cors_origins)
        s->cfg.cors_origins = "";
    pthread_mutex_init(&s->shutdown_mu, NULL);
    pthread_mutex_init(&s->debug_mu, NULL);
    clock_gettime(CLOCK_MONOTONIC, &s->started);
    if (getrandom(&s->id_seed, sizeof s->id_seed, 0) != sizeof s->id_seed)
        s->id_seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
    s->router = core_router_new();
    if (!s->router) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    static const char *const req_labels[] = {"route", "method", "status", NULL};
    static const char *const dur_labels[] = {"route", NULL};
    s->m_requests = core_metrics_family(metrics, CORE_METRIC_COUNTER, "http_requests_total",
                                        "HTTP requests answered, by route pattern, method and status",
                                        req_labels, NULL, 0, err, errlen);
    s->m_duration = core_metrics_family(metrics, CORE_METRIC_HISTOGRAM, "http_request_duration_seconds",
                                        "Time from request line to response queued, by route pattern",
                                        dur_labels, NULL, 0, err, errlen);
    s->m_inflight =
        core_metrics_gauge(metrics, "http_requests_in_flight", "Requests being received or handled");
    s->m_pool_rejected = core_metrics_counter(metrics, "worker_pool_rejected_total",
                                              "Requests answered 503 because the work queue was full");
    s->m_pool_queued = core_metrics_gauge(metrics, "worker_pool_queued", "Jobs waiting for a worker");
    if (!s->m_requests || !s->m_duration || !s->m_inflight || !s->m_pool_rejected || !s->m_pool_queued) {
        if (!*err)
            snprintf(err, errlen, "cannot register the HTTP metrics");
        goto fail;
    }
    if (http_builtin_routes(s, err, errlen) != 0)
        goto fail;
    return s;
fail:
    core_http_server_free(s);
    return NULL;
}

int core_http_route(core_http_server *s, const char *methods, const char *pattern, core_http_handler fn,
                    void *ud, const core_http_route_opts *opts, char *err, size_t errlen)
{
    if (s->daemon) {
        snprintf(err, errlen, "routes must be added before the server starts");
        return CORE_ESTATE;
    }
    http_route *rt = calloc(1, sizeof *rt);
    if (!rt) {
        snprintf(err, errlen, "out of memory");
        return CORE_ENOMEM;
    }
    rt->fn = fn;
    rt->ud = ud;
    if (opts)
        rt->opts = *opts;
    if (rt->opts.flags & CORE_HTTP_ROUTE_INNER_POOL)
        s->want_inner = true;
    rt->body_limit = rt->opts.body_limit ? rt->opts.body_limit : s->cfg.body_limit;
    if (s->nroutes == s->routes_cap) {
        size_t cap = s->routes_cap ? s->routes_cap * 2 : 16;
        http_route **nr = realloc(s->routes, cap * sizeof *nr);
        if (!nr) {
            free(rt);
            snprintf(err, errlen, "out of memory");
            return CORE_ENOMEM;
        }
        s->routes = nr;
        s->routes_cap = cap;
    }
    int rc = core_router_add(s->router, methods, pattern, rt, err, errlen);
    if (rc != 0) {
        free(rt);
        return rc;
    }
    const char *dl[] = {pattern};
    rt->m_duration = core_metric_family_get(s->m_duration, dl);
    s->routes[s->nroutes++] = rt;
    return 0;
}

int core_http_add_ready_check(core_http_server *s, const char *name, core_http_ready_fn fn, void *ud)
{
    if (s->nready == HTTP_MAX_READY)
        return CORE_EFULL;
    http_ready_check *c = &s->ready[s->nready++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->fn = fn;
    c->ud = ud;
    return 0;
}

int core_http_on_shutdown(core_http_server *s, void (*fn)(void *ud), void *ud)
{
    if (s->nhooks == HTTP_MAX_HOOKS)
        return CORE_EFULL;
    s->hooks[s->nhooks++] = (http_hook){fn, ud};
    return 0;
}

void core_http_set_debug_config(core_http_server *s, json_t *config)
{
    json_decref(s->debug_config);
    s->debug_config = config;
}

core_log *core_http_server_log(core_http_server *s)
{
    return s->log;
}

core_metrics *core_http_server_metrics(core_http_server *s)
{
    return s->metrics;
}

int core_http_server_port(const core_http_server *s)
{
    return s->port;
}

static int parse_bind(const char *bind, int port, struct sockaddr_storage *ss, bool *v6)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, bind, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *v6 = false;
        return 0;
    }
    if (inet_pton(AF_INET6, bind, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return 0;
    }
    return CORE_EINVAL;
}

int core_http_server_start(core_http_server *s, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    bool v6;
    if (parse_bind(s->cfg.bind, s->cfg.port, &ss, &v6) != 0) {
        snprintf(err, errlen, "--bind: \"%s\" is not an IPv4 or IPv6 address", s->cfg.bind);
        return CORE_EINVAL;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    /* Every connection is a descriptor (a WebSocket hub raises the limit further for its own). */
    core_proc_raise_nofile((long long)s->cfg.connection_limit + 1024);

    s->pool = core_pool_new(s->cfg.pool_threads, s->cfg.pool_queue, err, errlen);
    if (!s->pool)
        return CORE_EIO;
    if (s->want_inner &&
        !(s->inner_pool = core_pool_new(s->cfg.pool_threads, s->cfg.pool_queue, err, errlen))) {
        core_pool_free(s->pool);
        s->pool = NULL;
        return CORE_EIO;
    }
    /* MHD_USE_TURBO also keeps MHD from shutdown()ing a socket when it closes it, which the
     * WebSocket hand-over (ws_http.c) relies on: the hub keeps a duplicate of the socket. */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    if (v6)
        flags |= MHD_USE_IPv6;
    unsigned timeout_s = (unsigned)((s->cfg.idle_timeout_ms + 999) / 1000);
    struct MHD_OptionItem ops[16];
    size_t n = 0;
    /* The logger goes first, or MHD prints what it meets before it to stderr as plain text. */
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, s};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, s->cfg.connection_limit, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, NULL};
    ops[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)s->cfg.header_limit, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_logger, s};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, NULL};
    if (s->threads > 1)
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, s->threads, NULL};
    if (s->cfg.per_ip_limit > 0)
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->cfg.per_ip_limit, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->daemon = MHD_start_daemon(flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s, MHD_OPTION_ARRAY,
                                 ops, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on %s port %d (address in use, or not allowed?)", s->cfg.bind,
                 s->cfg.port);
        core_pool_free(s->pool);
        core_pool_free(s->inner_pool);
        s->pool = s->inner_pool = NULL;
        return CORE_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    json_t *f = json_pack("{s:s,s:i,s:i,s:i}", "bind", s->cfg.bind, "port", s->port, "threads", s->threads,
                          "pool_threads", s->cfg.pool_threads);
    core_log_json(s->log, CORE_LOG_INFO, "http", f, "listening");
    json_decref(f);
    return 0;
}

int core_http_server_wait(core_http_server *s)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    int sig = 0;
    /* A short timeout lets core_http_server_shutdown from another thread end the wait. */
    while (!atomic_load(&s->shutdown_requested)) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        int got = sigtimedwait(&sigs, NULL, &ts);
        if (got > 0) {
            sig = got;
            break;
        }
    }
    if (sig)
        core_log_info(s->log, "http", "signal %d: shutting down gracefully", sig);
    core_http_server_shutdown(s);
    return sig;
}

static void wait_inflight(core_http_server *s, double budget_ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&s->inflight) > 0 && http_elapsed_ms(&t0) < budget_ms) {
        struct timespec nap = {0, 10 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

void core_http_server_shutdown(core_http_server *s)
{
    atomic_store(&s->shutdown_requested, true);
    pthread_mutex_lock(&s->shutdown_mu);
    if (s->stopped || !s->daemon) {
        pthread_mutex_unlock(&s->shutdown_mu);
        return;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    atomic_store(&s->shutting_down, true);
    MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    long before = atomic_load(&s->inflight);
    wait_inflight(s, s->cfg.shutdown_grace_ms);
    atomic_store(&s->grace_over, true);
    /* Jobs still queued now answer 503 at once; running ones are waited for. */
    core_pool_stop(s->pool);
    if (s->inner_pool)
        core_pool_stop(s->inner_pool);
    /* Resumed connections still have to write what the workers answered. */
    wait_inflight(s, 1000);
    long left = atomic_load(&s->inflight);
    for (size_t i = 0; i < s->nhooks; i++)
        s->hooks[i].fn(s->hooks[i].ud);
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    s->stopped = true;
    json_t *f = json_pack("{s:I,s:I,s:f}", "in_flight_at_signal", (json_int_t)before, "cut_off",
                          (json_int_t)left, "took_ms", http_elapsed_ms(&t0));
    core_log_json(s->log, left ? CORE_LOG_WARN : CORE_LOG_INFO, "http", f, "stopped");
    json_decref(f);
    pthread_mutex_unlock(&s->shutdown_mu);
}

void core_http_server_free(core_http_server *s)
{
    if (!s)
        return;
    if (s->daemon)
        core_http_server_shutdown(s);
    core_pool_free(s->pool);
    core_pool_free(s->inner_pool);
    core_router_free(s->router);
    for (size_t i = 0; i < s->nroutes; i++)
        free(s->routes[i]);
    free(s->routes);
    json_decref(s->debug_config);
    pthread_mutex_destroy(&s->shutdown_mu);
    pthread_mutex_destroy(&s->debug_mu);
    free(s);
}
