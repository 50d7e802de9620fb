/* core-example: the runtime's example server. It shows how a service is put together (flags,
 * log, metrics, routes, worker pool, static files, graceful shutdown) and is what the HTTP
 * integration tests and bench/http run against.
 *
 * Routes:
 *   GET  /api/hello                            small JSON
 *   GET  /bench/1k                             a fixed 1 KiB JSON body (bench/http)
 *   POST /api/echo                             echoes a JSON body
 *   POST /api/upload                           multipart/form-data: describes the parts
 *   GET  /api/collections/{c}/products/{id}    path parameters
 *   GET  /api/sleep?ms=N                       sleeps on the worker pool (blocking work)
 *   GET  /api/upgrade-echo                     Upgrade: x-echo, raw echo (upgrade hook)
 *   GET  /static/{path...}                     files under --static-dir, when given
 *   plus /healthz, /readyz, /metrics, /debug from the runtime.
 */
#include "core/core.h"
#include "example.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENCH_BODY_SIZE 1024

typedef struct example {
    char bench_body[BENCH_BODY_SIZE];
} example;

static int hello(core_http_req *req, void *ud)
{
    (void)ud;
    return core_http_reply_json(
        req, 200, json_pack("{s:s,s:s}", "hello", "world", "request_id", core_http_req_id(req)));
}

static int bench_1k(core_http_req *req, void *ud)
{
    example *ex = ud;
    return core_http_reply_static_bytes(req, 200, "application/json", ex->bench_body, BENCH_BODY_SIZE);
}

static int echo(core_http_req *req, void *ud)
{
    (void)ud;
    json_t *doc;
    if (core_http_req_json(req, &doc) != 0)
        return 0;
    return core_http_reply_json(req, 200, json_pack("{s:O}", "echo", doc));
}

static int upload(core_http_req *req, void *ud)
{
    (void)ud;
    core_multipart_part *parts;
    size_t n;
    if (core_http_req_multipart(req, &parts, &n) != 0)
        return 0;
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_pack("{s:s,s:s,s:I}", "name", parts[i].name, "content_type", parts[i].content_type,
                              "size", (json_int_t)parts[i].len);
        if (parts[i].filename)
            json_object_set_new(p, "filename", json_string(parts[i].filename));
        json_t *text = parts[i].len <= 65536 ? json_stringn(parts[i].data, parts[i].len) : NULL;
        if (text)
            json_object_set_new(p, "text", text);
        json_array_append_new(list, p);
    }
    return core_http_reply_json(req, 200, json_pack("{s:o}", "parts", list));
}

static int product(core_http_req *req, void *ud)
{
    (void)ud;
    return core_http_reply_json(req, 200,
                                json_pack("{s:s,s:s}", "collection", core_http_req_param(req, "c"), "id",
                                          core_http_req_param(req, "id")));
}

/* Readiness: the static directory must still be there (it may sit on a mount that goes away). */
static int static_dir_ready(void *ud, char *msg, size_t msglen)
{
    const char *dir = ud;
    struct stat st;
    errno = 0;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(msg, msglen, "static directory %s: %s", dir, errno ? strerror(errno) : "not a directory");
        return CORE_ENOTFOUND;
    }
    return 0;
}

static int sleep_on_pool(core_http_req *req, void *ud)
{
    (void)ud;
    const char *ms_text = core_http_req_query(req, "ms");
    long ms = ms_text ? strtol(ms_text, NULL, 10) : 100;
    if (ms < 0 || ms > 60000)
        return core_http_reply_error(req, 400, "bad_ms", "ms must be within 0..60000");
    usleep((useconds_t)ms * 1000);
    return core_http_reply_json(req, 200, json_pack("{s:i}", "slept_ms", (int)ms));
}

int main(int argc, char **argv)
{
    core_http_config cfg;
    core_http_config_defaults(&cfg);
    cfg.service = "core-example";
    const char *static_dir = NULL, *log_level = NULL;
    core_flag flags[CORE_HTTP_CONFIG_NFLAGS + 2];
    size_t nflags = core_http_config_flags(&cfg, flags, CORE_HTTP_CONFIG_NFLAGS);
    flags[nflags++] = (core_flag){"static-dir",
                                  CORE_FLAG_STR,
                                  &static_dir,
                                  "",
                                  0,
                                  0,
                                  "serve this directory under /static (empty = off)"};
    flags[nflags++] = (core_flag){"log-level",
                                  CORE_FLAG_STR,
                                  &log_level,
                                  "info",
                                  0,
                                  0,
                                  "debug, info, warn or error (CORE_DEBUG=http,static enables debug lines)"};
    char err[512] = "";
    int rc = core_flags_parse(flags, nflags, "CORE", argc, argv,
                              "core-example: the runtime's example HTTP server\n"
                              "usage: core-example [--flag value]...",
                              stdout, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "core-example: %s\n", err);
        return 2;
    }
    core_log_level level;
    if (core_log_level_parse(log_level, &level) != 0) {
        fprintf(stderr,
                "core-example: --log-level (CORE_LOG_LEVEL): \"%s\" is not debug, info, warn or error\n",
                log_level);
        return 2;
    }

    int exit_code = 1;
    example ex;
    memset(ex.bench_body, ' ', sizeof ex.bench_body);
    static const char head[] = "{\"data\":\"";
    memcpy(ex.bench_body, head, sizeof head - 1);
    for (size_t i = sizeof head - 1; i < BENCH_BODY_SIZE - 2; i++)
        ex.bench_body[i] = (char)('a' + i % 26);
    memcpy(ex.bench_body + BENCH_BODY_SIZE - 2, "\"}", 2);

    core_log *log = core_log_new(2, level, getenv("CORE_DEBUG"));
    core_metrics *metrics = core_metrics_new();
    example_echo *echo_conns = example_echo_new();
    core_static *st = NULL;
    core_http_server *srv = NULL;
    if (!log || !metrics || !echo_conns) {
        fprintf(stderr, "core-example: out of memory\n");
        goto done;
    }
    srv = core_http_server_new(&cfg, log, metrics, err, sizeof err);
    if (!srv)
        goto fail;
    core_http_set_debug_config(srv, core_flags_to_json(flags, nflags));
    core_http_route_opts upload_opts = {.body_limit = 8 << 20, .multipart = {.max_part_size = 8 << 20}};
    core_http_route_opts pool_opts = {.flags = CORE_HTTP_ROUTE_POOL};
    if (core_http_route(srv, "GET", "/api/hello", hello, NULL, NULL, err, sizeof err) != 0 ||
        core_http_route(srv, "GET", "/bench/1k", bench_1k, &ex, NULL, err, sizeof err) != 0 ||
        core_http_route(srv, "POST", "/api/echo", echo, NULL, NULL, err, sizeof err) != 0 ||
        core_http_route(srv, "POST", "/api/upload", upload, NULL, &upload_opts, err, sizeof err) != 0 ||
        core_http_route(srv, "GET", "/api/collections/{c}/products/{id}", product, NULL, NULL, err,
                        sizeof err) != 0 ||
        core_http_route(srv, "GET", "/api/sleep", sleep_on_pool, NULL, &pool_opts, err, sizeof err) != 0 ||
        core_http_route(srv, "GET", "/api/upgrade-echo", example_echo_handler, echo_conns, NULL, err,
                        sizeof err) != 0)
        goto fail;
    if (*static_dir) {
        st = core_static_new(static_dir, NULL, err, sizeof err);
        if (!st || core_http_route_static(srv, "/static", st, err, sizeof err) != 0)
            goto fail;
        core_http_add_ready_check(srv, "static_dir", static_dir_ready, (void *)static_dir);
    }
    /* Shutdown hooks run in the order added, once in-flight requests are done; long-lived
     * upgraded connections (echo here, WebSocket rooms under /ws/{room}) close in them. */
    core_http_on_shutdown(srv, example_echo_shutdown, echo_conns);
    if (core_http_server_start(srv, err, sizeof err) != 0)
        goto fail;
    core_http_server_wait(srv);
    exit_code = 0;
    goto done;
fail:
    core_log_error(log, "main", "%s", err);
done:
    core_http_server_free(srv);
    core_static_free(st);
    example_echo_free(echo_conns);
    core_metrics_free(metrics);
    core_log_free(log);
    return exit_code;
}
