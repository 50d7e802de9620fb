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
 *   GET  /ws/{room}                            WebSocket into a room; each message is relayed
 *                                              to the room's other members
 *   POST /api/rooms/{room}/broadcast           the body, as one message to every member (text
 *                                              unless Content-Type is application/octet-stream)
 *   GET  /static/{path...}                     files under --static-dir, when given
 *   plus /healthz, /readyz, /metrics, /debug from the runtime.
 */
#include "core/core.h"
#include "example.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENCH_BODY_SIZE 1024

typedef struct example {
    char bench_body[BENCH_BODY_SIZE];
    core_ws_hub *hub;
    int retry_after_s;
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

static int ws_join(core_http_req *req, void *ud)
{
    example *ex = ud;
    return core_ws_http_accept(req, ex->hub, core_http_req_param(req, "room"));
}

static int ws_broadcast(core_http_req *req, void *ud)
{
    example *ex = ud;
    const char *room = core_http_req_param(req, "room");
    size_t len;
    const char *body = core_http_req_body(req, &len);
    const char *ct = core_http_req_header(req, "Content-Type");
    int opcode = CORE_WS_TEXT;
    if (ct && strncasecmp(ct, "application/octet-stream", 24) == 0) {
        opcode = CORE_WS_BINARY;
    } else {
        /* A text frame must carry UTF-8; jansson's check is the one at hand. */
        json_t *text = json_stringn(body ? body : "", len);
        if (!text)
            return core_http_reply_error(
                req, 400, "not_utf8",
                "a text message must be UTF-8; send binary as application/octet-stream");
        json_decref(text);
    }
    int rc = core_ws_hub_broadcast(ex->hub, room, opcode, body ? body : "", len, 0);
    switch (rc) {
    case 0:
        return core_http_reply_json(req, 202, json_pack("{s:s,s:I}", "room", room, "bytes", (json_int_t)len));
    case CORE_EINVAL:
        return core_http_reply_error(req, 400, "bad_room",
                                     "room names are 1 to %d characters from A-Z, a-z, 0-9 and . _ ~ -",
                                     CORE_WS_ROOM_MAX);
    case CORE_ETOOLARGE:
        return core_http_reply_error(req, 413, "too_large",
                                     "a message of %zu bytes does not fit a send queue", len);
    case CORE_ESTATE:
        return core_http_reply_error(req, 503, "shutting_down", "the server is shutting down");
    default: {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", ex->retry_after_s);
        core_http_add_header(req, "Retry-After", ra);
        return core_http_reply_error(req, 503, "overloaded",
                                     "the WebSocket hub's inbox is full; retry later");
    }
    }
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
    core_ws_config ws_cfg;
    core_ws_config_defaults(&ws_cfg);
    ws_cfg.relay = true;
    core_flag flags[CORE_HTTP_CONFIG_NFLAGS + 6];
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
    flags[nflags++] = (core_flag){"ws-max-message",
                                  CORE_FLAG_SIZE,
                                  &ws_cfg.max_message,
                                  "1M",
                                  1,
                                  1LL << 30,
                                  "largest WebSocket message accepted (close 1009 past it)"};
    flags[nflags++] = (core_flag){"ws-ping-interval",
                                  CORE_FLAG_MS,
                                  &ws_cfg.ping_interval_ms,
                                  "30s",
                                  0,
                                  86400000,
                                  "ping a WebSocket silent this long; 0 = never"};
    flags[nflags++] = (core_flag){"ws-pong-timeout",
                                  CORE_FLAG_MS,
                                  &ws_cfg.pong_timeout_ms,
                                  "10s",
                                  1,
                                  3600000,
                                  "drop a WebSocket that sends nothing this long after a ping"};
    int ws_max_connections = 0;
    flags[nflags++] = (core_flag){"ws-max-connections",
                                  CORE_FLAG_INT,
                                  &ws_max_connections,
                                  "100000",
                                  1,
                                  10000000,
                                  "WebSockets held at once (past it a new one gets close 1013)"};
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

    ex.retry_after_s = cfg.retry_after_s;
    core_log *log = core_log_new(2, level, getenv("CORE_DEBUG"));
    core_metrics *metrics = core_metrics_new();
    example_echo *echo_conns = example_echo_new();
    core_static *st = NULL;
    core_http_server *srv = NULL;
    ex.hub = NULL;
    if (!log || !metrics || !echo_conns) {
        fprintf(stderr, "core-example: out of memory\n");
        goto done;
    }
    ws_cfg.metrics = metrics;
    ws_cfg.max_connections = (size_t)ws_max_connections;
    ex.hub = core_ws_hub_new(&ws_cfg, err, sizeof err);
    if (!ex.hub)
        goto fail;
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
                        sizeof err) != 0 ||
        core_http_route(srv, "GET", "/ws/{room}", ws_join, &ex, NULL, err, sizeof err) != 0 ||
        core_http_route(srv, "POST", "/api/rooms/{room}/broadcast", ws_broadcast, &ex, NULL, err,
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
    core_http_on_shutdown(srv, core_ws_hub_shutdown_hook, ex.hub);
    if (core_http_server_start(srv, err, sizeof err) != 0)
        goto fail;
    core_http_server_wait(srv);
    exit_code = 0;
    goto done;
fail:
    core_log_error(log, "main", "%s", err);
done:
    core_http_server_free(srv);
    core_ws_hub_free(ex.hub);
    core_static_free(st);
    example_echo_free(echo_conns);
    core_metrics_free(metrics);
    core_log_free(log);
    return exit_code;
}
