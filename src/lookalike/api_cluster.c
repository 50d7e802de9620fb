/* GET /api/cluster (this node's view of the cluster as JSON; ?view=self: only this node, what
 * peers probe) and GET /status (the same view as a small HTML page that refreshes itself).
 * Both answer from memory on the event-loop thread, so a busy worker pool never makes a node
 * look dead to its peers. */
#include "lookalike/api.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static lookalike_cluster_t *slot_get(void *ud)
{
    lookalike_cluster_slot_t *slot = ud;
    return atomic_load(&slot->cluster);
}

static int starting(core_http_req *req)
{
    core_http_add_header(req, "Retry-After", "1");
    return core_http_reply_error(req, 503, "starting", "this node is still starting");
}

static int cluster_json(core_http_req *req, void *ud)
{
    lookalike_cluster_t *c = slot_get(ud);
    if (!c)
        return starting(req);
    const char *view = core_http_req_query(req, "view");
    if (view && *view && strcmp(view, "self") != 0)
        return core_http_reply_error(req, 400, "invalid", "view must be \"self\" or absent");
    return core_http_reply_json(req, 200, lookalike_cluster_view(c, view && *view));
}

/* An HTML page under construction, growing as needed. */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} page_t;

static void put(page_t *p, const char *s, size_t n)
{
    if (p->oom)
        return;
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8192;
        while (cap < p->len + n + 1)
            cap *= 2;
        char *b = realloc(p->s, cap);
        if (!b) {
            p->oom = 1;
            return;
        }
        p->s = b;
        p->cap = cap;
    }
    memcpy(p->s + p->len, s, n);
    p->len += n;
    p->s[p->len] = '\0';
}

static void lit(page_t *p, const char *s)
{
    put(p, s, strlen(s));
}

/* Text from a node or a catalogue, as text. */
static void text(page_t *p, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            lit(p, "&lt;");
            break;
        case '>':
            lit(p, "&gt;");
            break;
        case '&':
            lit(p, "&amp;");
            break;
        case '"':
            lit(p, "&quot;");
            break;
        case '\'':
            lit(p, "&#39;");
            break;
        default:
            put(p, s, 1);
        }
    }
}

/* A JSON value of o as text ("" when absent). */
static void field(page_t *p, json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    char buf[64] = "";
    if (json_is_string(v))
        text(p, json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, sizeof buf, "%.1f", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, sizeof buf, "%s", json_is_true(v) ? "yes" : "no");
    lit(p, buf);
}

static void node_row(page_t *p, json_t *n, const char *state)
{
    lit(p, "<tr><td>");
    field(p, n, "name");
    lit(p, "</td><td>");
    field(p, n, "url");
    lit(p, "</td><td class=\"");
    text(p, state);
    lit(p, "\">");
    text(p, state);
    if (json_is_string(json_object_get(n, "error"))) {
        lit(p, ": ");
        field(p, n, "error");
    }
    lit(p, "</td><td>");
    field(p, n, "shards");
    lit(p, "</td><td>");
    field(p, n, "applied_seq");
    lit(p, "</td><td>");
    field(p, n, "lag");
    lit(p, "</td><td>");
    field(p, n, "ready");
    lit(p, "</td><td>");
    field(p, n, "requests_per_s");
    lit(p, "</td><td>");
    field(p, n, "p50_ms");
    lit(p, "</td><td>");
    field(p, n, "p99_ms");
    lit(p, "</td></tr>\n");
}

static int status_page(core_http_req *req, void *ud)
{
    lookalike_cluster_t *c = slot_get(ud);
    if (!c)
        return starting(req);
    json_t *v = lookalike_cluster_view(c, 0), *self = json_object_get(v, "self"), *e;
    page_t p = {0};
    size_t i;
    lit(&p, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"refresh\" content=\"2\"><title>lookalike: ");
    field(&p, self, "name");
    lit(&p, "</title><style>body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;"
            "margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
            ".up,.self{color:#0a6b2a}.down{color:#b00020}.unknown{color:#8a6d00}</style></head><body>\n<h1>");
    field(&p, self, "name");
    lit(&p, "</h1>\n<p>This node's view of the cluster (membership: ");
    field(&p, v, "membership");
    lit(&p, "; snapshot at seq ");
    field(&p, self, "snapshot_seq");
    lit(&p,
        "). JSON: <a href=\"/api/cluster\">/api/cluster</a>.</p>\n<h2>Nodes</h2>\n<table><tr><th>name</th>"
        "<th>url</th><th>state</th><th>shards</th><th>applied seq</th><th>lag</th><th>ready</th>"
        "<th>requests/s</th><th>p50 ms</th><th>p99 ms</th></tr>\n");
    node_row(&p, self, "self");
    json_array_foreach(json_object_get(v, "peers"), i, e)
    {
        node_row(&p, e, json_string_value(json_object_get(e, "state")));
    }
    lit(&p, "</table>\n<h2>Collections</h2>\n<table><tr><th>collection</th><th>shard key</th><th>shard</th>"
            "<th>replicas</th></tr>\n");
    json_array_foreach(json_object_get(v, "collections"), i, e)
    {
        json_t *reps = json_object_get(e, "replicas"), *r;
        size_t sh;
        json_array_foreach(reps, sh, r)
        {
            char buf[64];
            lit(&p, "<tr><td>");
            field(&p, e, "name");
            lit(&p, "</td><td>");
            field(&p, e, "shard_key");
            snprintf(buf, sizeof buf, "</td><td>%zu</td><td>", sh);
            lit(&p, buf);
            json_t *node;
            size_t j;
            if (!json_array_size(r))
                lit(&p, "<span class=\"down\">no replica</span>");
            json_array_foreach(r, j, node)
            {
                const char *st = json_string_value(json_object_get(node, "state"));
                lit(&p, j ? ", <span class=\"" : "<span class=\"");
                text(&p, st);
                lit(&p, "\">");
                field(&p, node, "node");
                lit(&p, " (");
                text(&p, st);
                lit(&p, ")</span>");
            }
            lit(&p, "</td></tr>\n");
        }
    }
    lit(&p, "</table>\n</body></html>\n");
    json_decref(v);
    if (p.oom) {
        free(p.s);
        return core_http_reply_error(req, 500, "internal", "out of memory");
    }
    core_http_add_header(req, "Cache-Control", "no-store");
    int rc = core_http_reply_bytes(req, 200, "text/html; charset=utf-8", p.s, p.len);
    free(p.s);
    return rc;
}

int lookalike_cluster_routes(lookalike_cluster_slot_t *slot, core_http_server *srv, char *err, size_t errlen)
{
    if (core_http_route(srv, "GET", "/api/cluster", cluster_json, slot, NULL, err, errlen) ||
        core_http_route(srv, "GET", "/status", status_page, slot, NULL, err, errlen))
        return -1;
    return 0;
}

static void slot_fanout(void *ud, const char *coll, const char *op, json_t *body, const uint32_t *shards,
                        size_t n, uint64_t token, lookalike_fanout_t *out)
{
    lookalike_cluster_t *c = slot_get(ud);
    lookalike_svc_remote_t r;
    if (c) {
        lookalike_cluster_remote(c, &r);
        r.fanout(r.ud, coll, op, body, shards, n, token, out);
        return;
    }
    memset(out, 0, sizeof *out);
    if ((out->missing = malloc((n ? n : 1) * sizeof *out->missing))) {
        memcpy(out->missing, shards, n * sizeof *shards);
        out->nmissing = n;
    }
}

void lookalike_cluster_slot_remote(lookalike_cluster_slot_t *slot, lookalike_svc_remote_t *out)
{
    out->fanout = slot_fanout;
    out->ud = slot;
}

int lookalike_cluster_slot_ready(void *ud, char *msg, size_t msglen)
{
    lookalike_cluster_t *c = slot_get(ud);
    if (!c) {
        snprintf(msg, msglen, "starting");
        return 1;
    }
    return lookalike_cluster_ready(c, msg, msglen);
}
