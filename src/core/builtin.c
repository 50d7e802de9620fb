/* The operator's endpoints every daemon gets: /healthz, /readyz, /metrics and /debug. */
#include "http_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static const char healthz_body[] = "{\"status\":\"ok\"}";

static int healthz(core_http_req *req, void *ud)
{
    (void)ud;
    return core_http_reply_static_bytes(req, 200, "application/json", healthz_body, sizeof healthz_body - 1);
}

static int readyz(core_http_req *req, void *ud)
{
    core_http_server *s = ud;
    json_t *checks = json_object();
    bool ready = !atomic_load(&s->shutting_down);
    if (!ready)
        json_object_set_new(checks, "server", json_string("shutting down"));
    for (size_t i = 0; i < s->nready; i++) {
        char msg[256] = "";
        int rc = s->ready[i].fn(s->ready[i].ud, msg, sizeof msg);
        if (rc != 0)
            ready = false;
        json_object_set_new(checks, s->ready[i].name,
                            json_string(rc == 0 ? "ok" : (*msg ? msg : "not ready")));
    }
    json_t *body = json_pack("{s:s,s:o}", "status", ready ? "ready" : "not ready", "checks", checks);
    return core_http_reply_json(req, ready ? 200 : 503, body);
}

static double since_s(const struct timespec *t)
{
    return http_elapsed_ms(t) / 1e3;
}

static void process_figures(void *ud, core_metrics *m)
{
    core_http_server *s = ud;
    (void)m;
    core_proc_stats st;
    if (core_proc_read(&st) == 0) {
        core_metric_set(s->m_rss, (double)st.rss_bytes);
        core_metric_set(s->m_heap, (double)st.heap_bytes);
        core_metric_set(s->m_fds, (double)st.open_fds);
        core_metric_set(s->m_threads, (double)st.threads);
    }
    core_metric_set(s->m_uptime, since_s(&s->started));
}

static int metrics(core_http_req *req, void *ud)
{
    core_http_server *s = ud;
    size_t len;
    char *text = core_metrics_render(s->metrics, &len);
    if (!text)
        return core_http_reply_error(req, 500, "internal", "cannot render metrics");
    return http_reply_take(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

static bool is_loopback(core_http_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static json_t *percentiles(core_http_server *s)
{
    float *v = malloc(sizeof(float) * HTTP_LATENCY_RING);
    if (!v)
        return json_null();
    pthread_mutex_lock(&s->debug_mu);
    size_t n = s->nlatency;
    memcpy(v, s->latency_ms, n * sizeof *v);
    pthread_mutex_unlock(&s->debug_mu);
    json_t *o = json_object();
    json_object_set_new(o, "samples", json_integer((json_int_t)n));
    if (n > 0) {
        qsort(v, n, sizeof *v, cmp_float);
        static const double qs[] = {0.5, 0.9, 0.99, 0.999};
        static const char *const names[] = {"p50_ms", "p90_ms", "p99_ms", "p999_ms"};
        for (size_t i = 0; i < 4; i++) {
            size_t idx = (size_t)(qs[i] * (double)(n - 1) + 0.5);
            json_object_set_new(o, names[i], json_real(v[idx]));
        }
        json_object_set_new(o, "max_ms", json_real(v[n - 1]));
    }
    free(v);
    return o;
}

void core_http_server_stats(core_http_server *s, core_http_stats *out)
{
    float *v = malloc(sizeof(float) * HTTP_LATENCY_RING);
    memset(out, 0, sizeof *out);
    out->p50_ms = out->p99_ms = -1;
    pthread_mutex_lock(&s->debug_mu);
    out->requests = s->answered;
    size_t n = v ? s->nlatency : 0;
    if (n)
        memcpy(v, s->latency_ms, n * sizeof *v);
    pthread_mutex_unlock(&s->debug_mu);
    out->samples = n;
    if (n) {
        qsort(v, n, sizeof *v, cmp_float);
        out->p50_ms = v[(size_t)(0.5 * (double)(n - 1) + 0.5)];
        out->p99_ms = v[(size_t)(0.99 * (double)(n - 1) + 0.5)];
    }
    free(v);
}

static int debug(core_http_req *req, void *ud)
{
    core_http_server *s = ud;
    if (!is_loopback(req))
        return core_http_reply_error(req, 403, "forbidden", "/debug answers loopback clients only");
    json_t *slow = json_array();
    pthread_mutex_lock(&s->debug_mu);
    for (size_t i = 0; i < s->nslow; i++) {
        /* newest first */
        const http_slow *e = &s->slow[(s->slow_next + HTTP_SLOW_RING - 1 - i) % HTTP_SLOW_RING];
        json_t *row =
            json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:f}", "time", e->when, "request_id", e->id, "method",
                      e->method, "path", e->path, "route", e->route, "status", (int)e->status, "ms", e->ms);
        if (row)
            json_array_append_new(slow, row);
    }
    pthread_mutex_unlock(&s->debug_mu);
    core_proc_stats st = {0};
    core_proc_read(&st);
    json_t *build = json_pack("{s:s,s:s,s:s,s:s}", "service", s->cfg.service ? s->cfg.service : "", "version",
                              s->cfg.version ? s->cfg.version : "", "compiler", __VERSION__, "libmicrohttpd",
                              MHD_get_version());
    json_object_set_new(build, "jansson", json_string(jansson_version_str()));
    json_t *server =
        json_pack("{s:i,s:i,s:i,s:I,s:f,s:b}", "port", s->port, "threads", s->threads, "pool_threads",
                  s->cfg.pool_threads, "in_flight", (json_int_t)atomic_load(&s->inflight), "uptime_s",
                  since_s(&s->started), "shutting_down", atomic_load(&s->shutting_down));
    json_object_set_new(server, "pool_queued", json_integer(s->pool ? core_pool_queued(s->pool) : 0));
    json_t *proc = json_pack("{s:I,s:I,s:I,s:I}", "rss_bytes", (json_int_t)st.rss_bytes, "heap_bytes",
                             (json_int_t)st.heap_bytes, "open_fds", (json_int_t)st.open_fds, "threads",
                             (json_int_t)st.threads);
    json_t *config = s->debug_config ? json_incref(s->debug_config) : json_object();
    json_t *body = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:i}", "build", build, "config", config, "server",
                             server, "process", proc, "latency", percentiles(s), "slow_requests", slow,
                             "slow_threshold_ms", s->cfg.slow_ms);
    return core_http_reply_json(req, 200, body);
}

void http_debug_record(core_http_server *s, core_http_req *req, double ms)
{
    pthread_mutex_lock(&s->debug_mu);
    s->answered++;
    s->latency_ms[s->latency_next] = (float)ms;
    s->latency_next = (s->latency_next + 1) % HTTP_LATENCY_RING;
    if (s->nlatency < HTTP_LATENCY_RING)
        s->nlatency++;
    if (ms >= s->cfg.slow_ms) {
        http_slow *e = &s->slow[s->slow_next];
        s->slow_next = (s->slow_next + 1) % HTTP_SLOW_RING;
        if (s->nslow < HTTP_SLOW_RING)
            s->nslow++;
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(e->when, sizeof e->when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(e->id, sizeof e->id, "%s", req->id ? req->id : "");
        snprintf(e->method, sizeof e->method, "%s", req->method ? req->method : "");
        /* Truncation may split a UTF-8 sequence; keep the field ASCII so it always renders. */
        size_t j = 0;
        for (const char *p = req->path ? req->path : ""; *p && j + 1 < sizeof e->path; p++)
            e->path[j++] = (unsigned char)*p < 0x80 ? *p : '?';
        e->path[j] = '\0';
        snprintf(e->route, sizeof e->route, "%s", req->match.pattern ? req->match.pattern : "unmatched");
        e->status = req->status;
        e->ms = ms;
    }
    pthread_mutex_unlock(&s->debug_mu);
}

int http_builtin_routes(core_http_server *s, char *err, size_t errlen)
{
    s->m_uptime =
        core_metrics_gauge(s->metrics, "process_uptime_seconds", "Seconds since the server was created");
    s->m_rss = core_metrics_gauge(s->metrics, "process_resident_memory_bytes", "Resident set size");
    s->m_heap =
        core_metrics_gauge(s->metrics, "process_heap_bytes", "Bytes allocated with malloc and not freed");
    s->m_fds = core_metrics_gauge(s->metrics, "process_open_fds", "Open file descriptors");
    s->m_threads = core_metrics_gauge(s->metrics, "process_threads", "Threads in the process");
    s->m_start_time = core_metrics_gauge(s->metrics, "process_start_time_seconds",
                                         "Start time of the server since the Unix epoch");
    if (!s->m_uptime || !s->m_rss || !s->m_heap || !s->m_fds || !s->m_threads || !s->m_start_time) {
        snprintf(err, errlen, "cannot register the process metrics");
        return CORE_EINVAL;
    }
    core_metric_set(s->m_start_time, (double)time(NULL));
    if (core_metrics_on_render(s->metrics, process_figures, s) != 0) {
        snprintf(err, errlen, "too many metrics render hooks");
        return CORE_EFULL;
    }
    int rc = core_http_route(s, "GET", "/healthz", healthz, s, NULL, err, errlen);
    if (rc == 0)
        rc = core_http_route(s, "GET", "/readyz", readyz, s, NULL, err, errlen);
    if (rc == 0)
        rc = core_http_route(s, "GET", "/metrics", metrics, s, NULL, err, errlen);
    if (rc == 0)
        rc = core_http_route(s, "GET", "/debug", debug, s, NULL, err, errlen);
    return rc;
}
