/* The JSON API under /api (documented in docs/api.md). Every route runs on the core worker
 * pool, since each one may embed a photo or touch the catalogue. */
#include "lookalike/api.h"

#include <stdlib.h>
#include <string.h>

/* Largest request body: a photo plus the product JSON and multipart framing. */
#define API_BODY_MAX ((size_t)LOOKALIKE_IMAGE_MAX + LOOKALIKE_PRODUCT_JSON_MAX + 64 * 1024)

static const char *coll_of(core_http_req *req)
{
    const char *c = core_http_req_param(req, "c");
    return c ? c : LOOKALIKE_DEFAULT_COLLECTION;
}

/* Answers a lookalike error code with the matching status. */
static int reply_lk(core_http_req *req, int rc, const char *msg)
{
    switch (rc) {
    case LOOKALIKE_EINVAL:
    case LOOKALIKE_EUTF8:
        return core_http_reply_error(req, 400, "invalid", "%s", msg);
    case LOOKALIKE_ETOOLARGE:
        return core_http_reply_error(req, 413, "too_large", "%s", msg);
    case LOOKALIKE_ENOTFOUND:
        return core_http_reply_error(req, 404, "not_found", "%s", msg);
    case LOOKALIKE_EEXIST:
        return core_http_reply_error(req, 409, "conflict", "%s", msg);
    case LOOKALIKE_SVC_EIMAGE:
        return core_http_reply_error(req, 400, "not_an_image", "%s", msg);
    case LOOKALIKE_EAGAIN:
        /* The catalogue's database is failing over or restarting: the client may retry. */
        core_log_warn(core_http_req_log(req), "api", "%s %s: %s", core_http_req_method(req),
                      core_http_req_path(req), msg);
        core_http_add_header(req, "Retry-After", "1");
        return core_http_reply_error(req, 503, "unavailable", "%s", msg);
    default:
        core_log_error(core_http_req_log(req), "api", "%s %s: %s", core_http_req_method(req),
                       core_http_req_path(req), msg);
        return core_http_reply_error(req, 500, "internal", "%s", msg);
    }
}

/* 1 when the request may write; otherwise it has been answered 401. */
static int authorised(lookalike_api_t *api, core_http_req *req)
{
    if (!api->api_key || !*api->api_key)
        return 1;
    const char *got = core_http_req_header(req, "X-API-Key");
    size_t want = strlen(api->api_key);
    unsigned diff = !got || strlen(got) != want;
    for (size_t i = 0; got && !diff && i < want; i++)
        diff |= (unsigned)(got[i] ^ api->api_key[i]);
    if (diff) {
        core_http_reply_error(req, 401, "unauthorized", "this endpoint needs the X-API-Key header");
        return 0;
    }
    return 1;
}

static int collection_missing(lookalike_api_t *api, core_http_req *req, const char *coll)
{
    if (lookalike_svc_has_collection(api->svc, coll))
        return 0;
    core_http_reply_error(req, 404, "not_found", "no collection named \"%s\"", coll);
    return 1;
}

static int is_multipart(core_http_req *req)
{
    const char *ct = core_http_req_header(req, "Content-Type");
    return ct && strncasecmp(ct, "multipart/form-data", 19) == 0;
}

static const core_multipart_part *find_part(const core_multipart_part *parts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(parts[i].name, name) == 0)
            return &parts[i];
    return NULL;
}

/* ---- collections ---- */

static int collections_list(core_http_req *req, void *ud)
{
    lookalike_api_t *api = ud;
    return core_http_reply_json(req, 200,
                                json_pack("{s:o}", "collections", lookalike_svc_list_collections(api->svc)));
}

static int collections_create(core_http_req *req, void *ud)
{
    lookalike_api_t *api = ud;
    json_t *doc, *out = NULL;
    char err[512];
    if (!authorised(api, req) || core_http_req_json(req, &doc) != 0)
        return 0;
    int rc = lookalike_svc_create_collection(api->svc, doc, &out, err, sizeof err);
    if (rc != 0)
        return reply_lk(req, rc, err);
    return core_http_reply_json(req, 201, out);
}

/* ---- products ---- */

/* Reads a product write: multipart (image + product parts) or, for PUT, a JSON body. */
static int product_write(lookalike_api_t *api, core_http_req *req, int mode)
{
    const char *coll = coll_of(req), *path_id = core_http_req_param(req, "id");
    const char *json = NULL;
    size_t json_len = 0;
    const core_multipart_part *img = NULL;
    char err[512];
    if (!authorised(api, req) || collection_missing(api, req, coll))
        return 0;
    if (is_multipart(req)) {
        core_multipart_part *parts;
        size_t n;
        if (core_http_req_multipart(req, &parts, &n) != 0)
            return 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(parts[i].name, "image") != 0 && strcmp(parts[i].name, "product") != 0)
                return core_http_reply_error(req, 400, "invalid",
                                             "unknown part \"%s\" (expected \"image\" and \"product\")",
                                             parts[i].name);
        img = find_part(parts, n, "image");
        const core_multipart_part *pp = find_part(parts, n, "product");
        if (pp) {
            json = pp->data;
            json_len = pp->len;
        }
    } else if (mode == LOOKALIKE_PUT_UPSERT) {
        json = core_http_req_body(req, &json_len);
    } else {
        return core_http_reply_error(req, 415, "unsupported_media_type",
                                     "send multipart/form-data with an \"image\" file part and a \"product\" "
                                     "JSON part");
    }
    if (img && !img->len)
        return core_http_reply_error(req, 400, "missing_image", "the \"image\" part is empty");
    lookalike_product_t p;
    int rc;
    if (json && json_len) {
        if ((rc = lookalike_product_parse(json, json_len, LOOKALIKE_PRODUCT_INPUT, &p, err, sizeof err)) != 0)
            return reply_lk(req, rc, err);
    } else {
        lookalike_product_init(&p);
    }
    if (mode == LOOKALIKE_PUT_INSERT && !img && !p.vector) {
        lookalike_product_release(&p);
        return core_http_reply_error(req, 400, "missing_image",
                                     "a new product needs an \"image\" part or a \"vector\" in its JSON");
    }
    if (path_id) {
        if (p.id && strcmp(p.id, path_id) != 0) {
            lookalike_product_release(&p);
            return core_http_reply_error(req, 400, "invalid", "the body's id \"%s\" differs from the path's",
                                         p.id);
        }
        if (!p.id && !(p.id = strdup(path_id))) {
            lookalike_product_release(&p);
            return reply_lk(req, LOOKALIKE_ENOMEM, "out of memory");
        }
    }
    rc = lookalike_svc_put(api->svc, coll, &p, mode, img && img->len ? img->data : NULL, img ? img->len : 0,
                           err, sizeof err);
    if (rc != 0) {
        lookalike_product_release(&p);
        return reply_lk(req, rc, err);
    }
    json_t *body = json_pack("{s:s,s:I}", "id", p.id, "seq", (json_int_t)p.seq);
    lookalike_product_release(&p);
    return core_http_reply_json(req, mode == LOOKALIKE_PUT_INSERT ? 201 : 200, body);
}

static int products_post(core_http_req *req, void *ud)
{
    return product_write(ud, req, LOOKALIKE_PUT_INSERT);
}

static int product_put(core_http_req *req, void *ud)
{
    return product_write(ud, req, LOOKALIKE_PUT_UPSERT);
}

static int products_list(core_http_req *req, void *ud)
{
    lookalike_api_t *api = ud;
    const char *coll = coll_of(req), *ls = core_http_req_query(req, "limit"),
               *cursor = core_http_req_query(req, "cursor");
    long limit = 50;
    char err[512], *end;
    if (ls) {
        limit = strtol(ls, &end, 10);
        if (!*ls || *end || limit < 1 || limit > LOOKALIKE_PAGE_MAX)
            return core_http_reply_error(req, 400, "invalid", "limit must be an integer in 1..%d",
                                         LOOKALIKE_PAGE_MAX);
    }
    if (cursor && *cursor && !lookalike_product_id_valid(cursor))
        return core_http_reply_error(req, 400, "invalid", "cursor must be a product id");
    json_t *out;
    int rc = lookalike_svc_list(api->svc, coll, cursor, (size_t)limit, &out, err, sizeof err);
    return rc ? reply_lk(req, rc, err) : core_http_reply_json(req, 200, out);
}

static int product_get(core_http_req *req, void *ud)
{
    lookalike_api_t *api = ud;
    const char *coll = coll_of(req), *id = core_http_req_param(req, "id");
    char err[512];
    json_t *p;
    if (collection_missing(api, req, coll))
        return 0;
    if (!lookalike_product_id_valid(id))
        return core_http_reply_error(req, 404, "not_found", "no product with that id");
    int rc = lookalike_svc_find(api->svc, coll, id, &p, err, sizeof err);
    return rc ? reply_lk(req, rc, err) : core_http_reply_json(req, 200, p);
}

static int product_delete(core_http_req *req, void *ud)
{
    lookalike_api_t *api = ud;
    const char *coll = coll_of(req), *id = core_http_req_param(req, "id");
    char err[512];
    uint64_t seq = 0;
    if (!authorised(api, req) || collection_missing(api, req, coll))
        return 0;
    if (!lookalike_product_id_valid(id))
        return core_http_reply_error(req, 404, "not_found", "no product with that id");
    int rc = lookalike_svc_delete(api->svc, coll, id, &seq, err, sizeof err);
    if (rc != 0)
        return reply_lk(req, rc, err);
    return core_http_reply_json(req, 200,
                                json_pack("{s:s,s:I,s:b}", "id", id, "seq", (json_int_t)seq, "deleted", 1));
}

static const char *image_type(const unsigned char *b, size_t n)
{
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return "image/jpeg";
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "image/png";
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return "image/webp";
    if (n >= 4 && memcmp(b, "GIF8", 4) == 0)
        return "image/gif";
    if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0))
        return "image/tiff";
    return "application/octet-stream";
}

static int product_image(core_http_req *req, void *ud)
{
    lookalike_api_t *api = ud;
    const char *coll = coll_of(req), *id = core_http_req_param(req, "id");
    void *data = NULL;
    size_t len = 0;
    char err[512];
    int rc = lookalike_svc_image(api->svc, coll, id, &data, &len, err, sizeof err);
    if (rc != 0)
        return reply_lk(req, rc, err);
    core_http_add_header(req, "Cache-Control", "public, max-age=3600");
    rc = core_http_reply_bytes(req, 200, image_type(data, len), data, len);
    free(data);
    return rc;
}

/* ---- search ---- */

static int search_run(lookalike_api_t *api, core_http_req *req, const char *coll, json_t *query,
                      const void *img, size_t img_len)
{
    json_t *out;
    char err[512];
    int rc = lookalike_svc_search(api->svc, coll, query, img, img_len, &out, err, sizeof err);
    if (rc == LOOKALIKE_EEXIST)
        return core_http_reply_error(req, 409, "seq_not_reached", "%s", err);
    return rc ? reply_lk(req, rc, err) : core_http_reply_json(req, 200, out);
}

static int search(core_http_req *req, void *ud)
{
    lookalike_api_t *api = ud;
    const char *coll = coll_of(req);
    if (collection_missing(api, req, coll))
        return 0;
    if (!is_multipart(req)) {
        json_t *doc;
        if (core_http_req_json(req, &doc) != 0)
            return 0;
        return search_run(api, req, coll, doc, NULL, 0);
    }
    core_multipart_part *parts;
    size_t n;
    char err[512];
    if (core_http_req_multipart(req, &parts, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(parts[i].name, "image") != 0 && strcmp(parts[i].name, "query") != 0)
            return core_http_reply_error(
                req, 400, "invalid", "unknown part \"%s\" (expected \"image\", \"query\")", parts[i].name);
    const core_multipart_part *img = find_part(parts, n, "image"), *q = find_part(parts, n, "query");
    if (img && !img->len)
        return core_http_reply_error(req, 400, "missing_image", "the \"image\" part is empty");
    json_t *query = NULL;
    if (q && q->len) {
        if (!(query = core_json_parse(q->data, q->len, err, sizeof err)))
            return core_http_reply_error(req, 400, "bad_json", "query part: %s", err);
        core_arena_defer(core_http_req_arena(req), (void (*)(void *))json_decref, query);
    } else {
        query = json_object();
        core_arena_defer(core_http_req_arena(req), (void (*)(void *))json_decref, query);
    }
    return search_run(api, req, coll, query, img ? img->data : NULL, img ? img->len : 0);
}

static int similar(core_http_req *req, void *ud)
{
    lookalike_api_t *api = ud;
    const char *coll = coll_of(req), *id = core_http_req_param(req, "id");
    const char *ks = core_http_req_query(req, "k"), *sc = core_http_req_query(req, "same_category");
    long k = 10;
    char *end;
    if (collection_missing(api, req, coll))
        return 0;
    if (ks) {
        k = strtol(ks, &end, 10);
        if (!*ks || *end || k < 1 || k > LOOKALIKE_SVC_K_MAX)
            return core_http_reply_error(req, 400, "invalid", "k must be an integer in 1..%d",
                                         LOOKALIKE_SVC_K_MAX);
    }
    int same = 0;
    if (sc) {
        if (!strcmp(sc, "true") || !strcmp(sc, "1"))
            same = 1;
        else if (strcmp(sc, "false") && strcmp(sc, "0"))
            return core_http_reply_error(req, 400, "invalid", "same_category must be true or false");
    }
    json_t *prod;
    char err[512];
    if (!lookalike_product_id_valid(id))
        return core_http_reply_error(req, 404, "not_found", "no product with that id");
    int rc = lookalike_svc_find(api->svc, coll, id, &prod, err, sizeof err);
    if (rc != 0)
        return reply_lk(req, rc, err);
    json_t *query = json_pack("{s:s,s:i}", "product_id", id, "k", (int)k);
    json_t *cat = json_object_get(prod, "category");
    if (same && json_is_string(cat))
        json_object_set_new(query, "filters", json_pack("{s:O}", "category", cat));
    json_decref(prod);
    core_arena_defer(core_http_req_arena(req), (void (*)(void *))json_decref, query);
    return search_run(api, req, coll, query, NULL, 0);
}

/* POST /api/collections/{c}/shards/{op}: this node's part of a search another node fans out. */
static int shard_op(core_http_req *req, void *ud)
{
    lookalike_api_t *api = ud;
    const char *coll = core_http_req_param(req, "c"), *op = core_http_req_param(req, "op");
    json_t *doc, *out;
    char err[512];
    if (core_http_req_json(req, &doc) != 0)
        return 0;
    int rc = lookalike_svc_shard_op(api->svc, coll, op, doc, &out, err, sizeof err);
    if (rc == LOOKALIKE_SVC_ENOTHELD)
        return core_http_reply_error(req, 409, "shard_not_held", "%s", err);
    if (rc == LOOKALIKE_EEXIST)
        return core_http_reply_error(req, 409, "seq_not_reached", "%s", err);
    return rc ? reply_lk(req, rc, err) : core_http_reply_json(req, 200, out);
}

static int facets(core_http_req *req, void *ud)
{
    lookalike_api_t *api = ud;
    json_t *out;
    char err[512];
    int rc = lookalike_svc_facets(api->svc, coll_of(req), &out, err, sizeof err);
    return rc ? reply_lk(req, rc, err) : core_http_reply_json(req, 200, out);
}

int lookalike_api_routes(lookalike_api_t *api, core_http_server *srv, char *err, size_t errlen)
{
    core_http_route_opts small = {.flags = CORE_HTTP_ROUTE_POOL};
    core_http_route_opts big = {
        .flags = CORE_HTTP_ROUTE_POOL,
        .body_limit = API_BODY_MAX,
        .multipart = {.max_parts = 8,
                      .max_part_size = LOOKALIKE_IMAGE_MAX,
                      .max_field_size = LOOKALIKE_PRODUCT_JSON_MAX,
                      .max_total = API_BODY_MAX},
    };
    static const char *const prefixes[] = {"/api/collections/{c}", "/api"};
    /* Fan-out bodies carry up to two vectors and a few thousand hits. Other nodes' searches
     * wait for these answers: they run on the inner pool, never behind those searches. */
    core_http_route_opts shard = {.flags = CORE_HTTP_ROUTE_INNER_POOL, .body_limit = 4u << 20};
    if (core_http_route(srv, "GET", "/api/openapi.json", lookalike_api_openapi, NULL, NULL, err, errlen) ||
        core_http_route(srv, "POST", "/api/collections/{c}/shards/{op}", shard_op, api, &shard, err,
                        errlen) ||
        core_http_route(srv, "GET", "/api/collections", collections_list, api, &small, err, errlen) ||
        core_http_route(srv, "POST", "/api/collections", collections_create, api, &small, err, errlen))
        return -1;
    for (size_t i = 0; i < 2; i++) {
        char pat[128];
        const char *p = prefixes[i];
#define ROUTE(methods, suffix, fn, opts)                                                                     \
    (snprintf(pat, sizeof pat, "%s%s", p, suffix),                                                           \
     core_http_route(srv, methods, pat, fn, api, opts, err, errlen))
        if (ROUTE("POST", "/products", products_post, &big) ||
            ROUTE("GET", "/products", products_list, &small) ||
            ROUTE("GET", "/products/{id}", product_get, &small) ||
            ROUTE("PUT", "/products/{id}", product_put, &big) ||
            ROUTE("DELETE", "/products/{id}", product_delete, &small) ||
            ROUTE("GET", "/products/{id}/image", product_image, &small) ||
            ROUTE("GET", "/products/{id}/similar", similar, &small) ||
            ROUTE("POST", "/search", search, &big) || ROUTE("GET", "/facets", facets, &small))
            return -1;
#undef ROUTE
    }
    return 0;
}
