/* Request getters and responders. A responder only records the answer in the request; the
 * server turns it into an MHD response on the connection's own thread (a worker thread may
 * not touch MHD's connection), so every handler, pooled or not, answers the same way. */
#include "http_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

double http_elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) * 1e3 + (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

const char *core_http_req_method(core_http_req *req)
{
    return req->method;
}

const char *core_http_req_path(core_http_req *req)
{
    return req->path;
}

const char *core_http_req_route(core_http_req *req)
{
    return req->match.pattern;
}

const char *core_http_req_id(core_http_req *req)
{
    return req->id;
}

const char *core_http_req_param(core_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->match.nparams; i++)
        if (strcmp(req->match.param_names[i], name) == 0)
            return req->match.param_values[i];
    return NULL;
}

const char *core_http_req_query(core_http_req *req, const char *name)
{
    size_t nlen = strlen(name);
    for (const char *p = req->query; p && *p;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        size_t klen = eq ? (size_t)(eq - p) : n;
        char *key;
        size_t key_len;
        if (core_url_decode(req->arena, p, klen, true, &key, &key_len) == 0 && key_len == nlen &&
            memcmp(key, name, nlen) == 0) {
            char *value;
            if (!eq)
                return "";
            if (core_url_decode(req->arena, eq + 1, n - klen - 1, true, &value, NULL) != 0)
                return NULL;
            return value;
        }
        p += n;
        if (*p == '&')
            p++;
    }
    return NULL;
}

const char *core_http_req_header(core_http_req *req, const char *name)
{
    if (!req->conn)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *core_http_req_body(core_http_req *req, size_t *len)
{
    *len = req->body_len;
    return req->body ? req->body : "";
}

core_arena *core_http_req_arena(core_http_req *req)
{
    return req->arena;
}

core_log *core_http_req_log(core_http_req *req)
{
    return req->s->log;
}

const char *core_http_req_peer(core_http_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return "unknown";
    char buf[INET6_ADDRSTRLEN] = "unknown";
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, sizeof buf);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, sizeof buf);
    const char *p = core_arena_strdup(req->arena, buf);
    return p ? p : "unknown";
}

static void decref_json(void *p)
{
    json_decref(p);
}

static bool is_json_type(const char *ct)
{
    if (!ct)
        return true;
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

int core_http_req_json(core_http_req *req, json_t **out)
{
    const char *ct = core_http_req_header(req, "Content-Type");
    if (!is_json_type(ct)) {
        core_http_reply_error(req, 415, "unsupported_media_type",
                              "Content-Type is \"%.80s\"; application/json is expected", ct);
        return CORE_EINVAL;
    }
    char err[256];
    json_t *doc = core_json_parse(req->body ? req->body : "", req->body_len, err, sizeof err);
    if (!doc) {
        core_http_reply_error(req, 400, "bad_json", "%s", err);
        return CORE_EINVAL;
    }
    core_arena_defer(req->arena, decref_json, doc);
    *out = doc;
    return 0;
}

int core_http_req_multipart(core_http_req *req, core_multipart_part **parts, size_t *nparts)
{
    if (!req->parsed_multipart) {
        char err[256];
        const char *boundary;
        int rc = core_multipart_boundary(core_http_req_header(req, "Content-Type"), req->arena, &boundary,
                                         err, sizeof err);
        if (rc == 0) {
            const core_multipart_limits *lim = req->route ? &req->route->opts.multipart : NULL;
            rc = core_multipart_parse(boundary, req->body ? req->body : "", req->body_len, lim, req->arena,
                                      &req->parts, &req->nparts, err, sizeof err);
        }
        if (rc != 0) {
            if (rc == CORE_ETOOLARGE)
                core_http_reply_error(req, 413, "too_large", "%s", err);
            else if (rc == CORE_ENOMEM)
                core_http_reply_error(req, 500, "internal", "%s", err);
            else
                core_http_reply_error(req, 400, "bad_multipart", "%s", err);
            return rc;
        }
        req->parsed_multipart = true;
    }
    *parts = req->parts;
    *nparts = req->nparts;
    return 0;
}

int core_http_add_header(core_http_req *req, const char *name, const char *value)
{
    if (req->replied)
        return CORE_ESTATE;
    http_header *h = core_arena_alloc(req->arena, sizeof *h);
    if (!h)
        return CORE_ENOMEM;
    h->name = core_arena_strdup(req->arena, name);
    h->value = core_arena_strdup(req->arena, value);
    if (!h->name || !h->value)
        return CORE_ENOMEM;
    h->next = NULL;
    if (req->headers_tail)
        req->headers_tail->next = h;
    else
        req->headers = h;
    req->headers_tail = h;
    return 0;
}

static int set_reply(core_http_req *req, unsigned status, reply_kind kind, const char *content_type)
{
    if (req->replied)
        return CORE_ESTATE;
    if (status < 100 || status > 599)
        status = 500;
    req->replied = true;
    req->status = status;
    req->kind = kind;
    req->content_type = content_type;
    return 0;
}

static void free_ptr(void *p)
{
    free(p);
}

int http_reply_take(core_http_req *req, unsigned status, const char *content_type, char *data, size_t len)
{
    if (core_arena_defer(req->arena, free_ptr, data) != 0)
        return CORE_ENOMEM;
    int rc = set_reply(req, status, REPLY_BUFFER, content_type);
    if (rc != 0)
        return rc;
    req->data = data;
    req->len = len;
    return 0;
}

int core_http_reply_json(core_http_req *req, unsigned status, json_t *body)
{
    if (!body)
        return core_http_reply_error(req, 500, "internal", "could not build the JSON reply");
    size_t n = json_dumpb(body, NULL, 0, JSON_COMPACT);
    char *buf = n ? core_arena_alloc(req->arena, n) : NULL;
    if (!buf) {
        json_decref(body);
        return core_http_reply_error(req, 500, "internal", "could not serialise the JSON reply");
    }
    json_dumpb(body, buf, n, JSON_COMPACT);
    json_decref(body);
    int rc = set_reply(req, status, REPLY_BUFFER, "application/json");
    if (rc != 0)
        return rc;
    req->data = buf;
    req->len = n;
    return 0;
}

/* jansson refuses invalid UTF-8; a message quoting client bytes must still get out. */
static json_t *safe_string(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (!copy)
        return json_string("(unprintable)");
    for (size_t i = 0; i <= n; i++)
        copy[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    j = json_string(copy);
    free(copy);
    return j;
}

int core_http_reply_error(core_http_req *req, unsigned status, const char *code, const char *fmt, ...)
{
    if (req->replied)
        return CORE_ESTATE;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!req->error)
        req->error = core_arena_strdup(req->arena, msg);
    json_t *body = json_pack("{s:{s:s,s:o}}", "error", "code", code, "message", safe_string(msg));
    if (!body) {
        static const char fallback[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        return core_http_reply_static_bytes(req, 500, "application/json", fallback, sizeof fallback - 1);
    }
    return core_http_reply_json(req, status, body);
}

int core_http_reply_bytes(core_http_req *req, unsigned status, const char *content_type, const void *data,
                          size_t len)
{
    if (req->replied)
        return CORE_ESTATE;
    void *copy = core_arena_alloc(req->arena, len ? len : 1);
    if (!copy)
        return core_http_reply_error(req, 500, "internal",
                                     "reply of %zu bytes too large for the request arena", len);
    memcpy(copy, data, len);
    return core_http_reply_static_bytes(req, status, content_type, copy, len);
}

int core_http_reply_static_bytes(core_http_req *req, unsigned status, const char *content_type,
                                 const void *data, size_t len)
{
    int rc = set_reply(req, status, REPLY_BUFFER, content_type ? content_type : "application/octet-stream");
    if (rc != 0)
        return rc;
    req->data = data;
    req->len = len;
    return 0;
}

int core_http_reply_file(core_http_req *req, core_static *st, const char *relpath)
{
    if (req->replied)
        return CORE_ESTATE;
    return http_static_reply(req, st, relpath);
}

int core_http_respond_upgrade(core_http_req *req, const char *const *headers, core_http_upgrade_fn fn,
                              void *ud)
{
    if (req->replied)
        return CORE_ESTATE;
    if (!fn)
        return CORE_EINVAL;
    for (size_t i = 0; headers && headers[i]; i += 2) {
        if (!headers[i + 1])
            return CORE_EINVAL;
        int rc = core_http_add_header(req, headers[i], headers[i + 1]);
        if (rc != 0)
            return rc;
    }
    int rc = set_reply(req, 101, REPLY_UPGRADE, NULL);
    if (rc != 0)
        return rc;
    req->up_fn = fn;
    req->up_ud = ud;
    return 0;
}
