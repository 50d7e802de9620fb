/* The catalogue interface: argument checks every backend shares, then a call through the
 * backend's function table. */
#include "lookalike/catalog_internal.h"
#include "lookalike/image_store.h"
#include "lookalike/lookalike.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void cerr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int lookalike_collection_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > LOOKALIKE_COLLECTION_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static int check_collection_name(const char *name, char *err, size_t errlen)
{
    if (!name || !lookalike_collection_name_valid(name)) {
        cerr(err, errlen, "collection name must be 1 to %d characters from A-Z a-z 0-9 _ -",
             LOOKALIKE_COLLECTION_NAME_MAX);
        return LOOKALIKE_EINVAL;
    }
    return 0;
}

static int check_id(const char *id, char *err, size_t errlen)
{
    if (!id || !lookalike_product_id_valid(id)) {
        cerr(err, errlen, "product id must be 1 to %d characters from A-Z a-z 0-9 . _ -", LOOKALIKE_ID_MAX);
        return LOOKALIKE_EINVAL;
    }
    return 0;
}

void lookalike_catalog_close(lookalike_catalog_t *c)
{
    if (c)
        c->ops->close(c);
}

int lookalike_store_is_pg(const char *store)
{
    return store && (strncmp(store, "postgresql://", 13) == 0 || strncmp(store, "postgres://", 11) == 0 ||
                     strchr(store, '=') != NULL);
}

lookalike_catalog_t *lookalike_catalog_open(const char *store, const char *data_dir, char *err, size_t errlen)
{
    if (!store || !*store)
        return lookalike_catalog_open_sqlite(data_dir, err, errlen);
    if (lookalike_store_is_pg(store))
        return lookalike_catalog_open_pg(store, err, errlen);
    cerr(err, errlen,
         "unknown store (expected a PostgreSQL connection string: postgresql://..., or nothing for SQLite in "
         "the data directory)");
    return NULL;
}

const char *lookalike_catalog_backend(const lookalike_catalog_t *c)
{
    return c->ops->backend;
}

int64_t catalog_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int catalog_same_product(const char *body, size_t len, const lookalike_product_t *p)
{
    lookalike_product_t stored;
    if (lookalike_product_parse(body, len, LOOKALIKE_PRODUCT_STORED, &stored, NULL, 0) != 0)
        return 0;
    char *a = lookalike_product_to_json(&stored, LOOKALIKE_PRODUCT_INPUT);
    char *b = lookalike_product_to_json(p, LOOKALIKE_PRODUCT_INPUT);
    int same = a && b && strcmp(a, b) == 0 && strcmp(stored.image_sha256, p->image_sha256) == 0;
    free(a);
    free(b);
    lookalike_product_release(&stored);
    return same;
}

int lookalike_catalog_create_collection(lookalike_catalog_t *c, lookalike_collection_t *col, char *err,
                                        size_t errlen)
{
    int rc = check_collection_name(col->name, err, errlen);
    if (rc)
        return rc;
    if (!col->model[0] || memchr(col->model, '\0', sizeof col->model) == NULL) {
        cerr(err, errlen, "collection %s: model must be 1 to %d bytes", col->name, LOOKALIKE_MODEL_MAX);
        return LOOKALIKE_EINVAL;
    }
    size_t mlen = strlen(col->model), pos = 0;
    uint32_t cp;
    while (pos < mlen)
        if (lookalike_utf8_decode(col->model, mlen, &pos, &cp) != 0) {
            cerr(err, errlen, "collection %s: model is not valid UTF-8", col->name);
            return LOOKALIKE_EUTF8;
        }
    if (strcmp(col->metric, "cosine") != 0 && strcmp(col->metric, "l2") != 0 &&
        strcmp(col->metric, "ip") != 0) {
        cerr(err, errlen, "collection %s: metric must be \"cosine\", \"l2\" or \"ip\"", col->name);
        return LOOKALIKE_EINVAL;
    }
    if (col->dim == 0 || col->dim > LOOKALIKE_DIM_MAX) {
        cerr(err, errlen, "collection %s: dim must be 1 to %d", col->name, LOOKALIKE_DIM_MAX);
        return LOOKALIKE_EINVAL;
    }
    if (!col->index_params[0])
        memcpy(col->index_params, "{}", 3);
    if (!memchr(col->index_params, '\0', sizeof col->index_params)) {
        cerr(err, errlen, "collection %s: index_params too large", col->name);
        return LOOKALIKE_ETOOLARGE;
    }
    json_error_t je;
    json_t *ip = json_loads(col->index_params, JSON_REJECT_DUPLICATES, &je);
    int is_obj = ip && json_is_object(ip);
    json_decref(ip);
    if (!is_obj) {
        cerr(err, errlen, "collection %s: index_params must be a JSON object", col->name);
        return LOOKALIKE_EINVAL;
    }
    return c->ops->collection_create(c, col, err, errlen);
}

int lookalike_catalog_get_collection(lookalike_catalog_t *c, const char *name, lookalike_collection_t *out,
                                     char *err, size_t errlen)
{
    int rc = check_collection_name(name, err, errlen);
    return rc ? rc : c->ops->collection_get(c, name, out, err, errlen);
}

int lookalike_catalog_list_collections(lookalike_catalog_t *c, lookalike_collection_t **out, size_t *n,
                                       char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    return c->ops->collection_list(c, out, n, err, errlen);
}

/* 16 random hex digits: 64 bits make a collision within one catalogue vanishingly unlikely,
 * and an insert that meets one fails with LOOKALIKE_EEXIST rather than overwrite. */
static int generate_id(char **out, char *err, size_t errlen)
{
    uint64_t r;
    if (getrandom(&r, sizeof r, 0) != sizeof r) {
        cerr(err, errlen, "cannot generate a product id: no randomness");
        return LOOKALIKE_EIO;
    }
    char *id = malloc(17);
    if (!id) {
        cerr(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    snprintf(id, 17, "%016llx", (unsigned long long)r);
    *out = id;
    return 0;
}

/* Vectors are stored as little-endian float32 whatever the host's byte order. */
static void vec_encode(const float *v, uint32_t dim, uint8_t *out)
{
    for (uint32_t i = 0; i < dim; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        out[4 * i] = (uint8_t)u;
        out[4 * i + 1] = (uint8_t)(u >> 8);
        out[4 * i + 2] = (uint8_t)(u >> 16);
        out[4 * i + 3] = (uint8_t)(u >> 24);
    }
}

static void vec_decode(const uint8_t *in, uint32_t dim, float *v)
{
    for (uint32_t i = 0; i < dim; i++) {
        uint32_t u = (uint32_t)in[4 * i] | (uint32_t)in[4 * i + 1] << 8 | (uint32_t)in[4 * i + 2] << 16 |
                     (uint32_t)in[4 * i + 3] << 24;
        memcpy(&v[i], &u, 4);
    }
}

static int check_dim(uint32_t dim, char *err, size_t errlen)
{
    if (dim == 0 || dim > LOOKALIKE_DIM_MAX) {
        cerr(err, errlen, "vector dimension must be 1 to %d", LOOKALIKE_DIM_MAX);
        return LOOKALIKE_EINVAL;
    }
    return 0;
}

int lookalike_catalog_put(lookalike_catalog_t *c, const char *collection, lookalike_product_t *p, int mode,
                          const void *image, size_t image_len, const float *vec, uint32_t dim, char *err,
                          size_t errlen)
{
    int rc = check_collection_name(collection, err, errlen);
    if (rc)
        return rc;
    if (mode != LOOKALIKE_PUT_INSERT && mode != LOOKALIKE_PUT_UPSERT) {
        cerr(err, errlen, "unknown write mode %d", mode);
        return LOOKALIKE_EINVAL;
    }
    if (!p->id && mode == LOOKALIKE_PUT_UPSERT) {
        cerr(err, errlen, "an upsert needs a product id");
        return LOOKALIKE_EINVAL;
    }
    if ((rc = lookalike_product_validate(p, err, errlen)) != 0)
        return rc;
    if (vec) {
        if ((rc = check_dim(dim, err, errlen)) != 0)
            return rc;
        for (uint32_t i = 0; i < dim; i++)
            if (!isfinite(vec[i])) {
                cerr(err, errlen, "vector value %u is not a finite number", i);
                return LOOKALIKE_EINVAL;
            }
    }
    if (image) {
        char sha[65];
        if ((rc = c->ops->image_put(c, image, image_len, sha, err, errlen)) != 0)
            return rc;
        memcpy(p->image_sha256, sha, sizeof sha);
    } else if (p->image_sha256[0] && !image_store_hash_valid(p->image_sha256)) {
        cerr(err, errlen, "field \"image_sha256\": expected 64 lowercase hex digits");
        return LOOKALIKE_EINVAL;
    }
    uint8_t *enc = NULL;
    if (vec) {
        if (!(enc = malloc((size_t)dim * 4))) {
            cerr(err, errlen, "out of memory");
            return LOOKALIKE_ENOMEM;
        }
        vec_encode(vec, dim, enc);
    }
    int generated = 0;
    if (!p->id) {
        if ((rc = generate_id(&p->id, err, errlen)) != 0) {
            free(enc);
            return rc;
        }
        generated = 1;
    }
    rc = c->ops->product_put(c, collection, p, mode, enc, enc ? dim : 0, err, errlen);
    free(enc);
    if (rc != 0 && generated) {
        free(p->id);
        p->id = NULL;
    }
    return rc;
}

int lookalike_catalog_get_vector(lookalike_catalog_t *c, uint64_t doc_id, float *out, uint32_t dim, char *err,
                                 size_t errlen)
{
    int rc = check_dim(dim, err, errlen);
    if (rc)
        return rc;
    uint8_t *buf = malloc((size_t)dim * 4);
    if (!buf) {
        cerr(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    rc = c->ops->vector_get(c, doc_id, buf, dim, err, errlen);
    if (rc == 0)
        vec_decode(buf, dim, out);
    free(buf);
    return rc;
}

int lookalike_catalog_get(lookalike_catalog_t *c, const char *collection, const char *id,
                          lookalike_product_t *out, char *err, size_t errlen)
{
    lookalike_product_init(out);
    int rc = check_collection_name(collection, err, errlen);
    if (rc || (rc = check_id(id, err, errlen)))
        return rc;
    return c->ops->product_get(c, collection, id, out, err, errlen);
}

int lookalike_catalog_get_by_doc(lookalike_catalog_t *c, uint64_t doc_id,
                                 char collection[LOOKALIKE_COLLECTION_NAME_MAX + 1], lookalike_product_t *out,
                                 char *err, size_t errlen)
{
    lookalike_product_init(out);
    return c->ops->product_get_by_doc(c, doc_id, collection, out, err, errlen);
}

int lookalike_catalog_delete(lookalike_catalog_t *c, const char *collection, const char *id, uint64_t *seq,
                             char *err, size_t errlen)
{
    uint64_t s = 0;
    int rc = check_collection_name(collection, err, errlen);
    if (rc || (rc = check_id(id, err, errlen)))
        return rc;
    rc = c->ops->product_delete(c, collection, id, &s, err, errlen);
    if (rc == 0 && seq)
        *seq = s;
    return rc;
}

int lookalike_catalog_list(lookalike_catalog_t *c, const char *collection, const char *cursor, size_t limit,
                           lookalike_product_t *out, size_t *n, char next_cursor[LOOKALIKE_ID_MAX + 1],
                           uint64_t *total, char *err, size_t errlen)
{
    *n = 0;
    next_cursor[0] = '\0';
    int rc = check_collection_name(collection, err, errlen);
    if (rc)
        return rc;
    if (limit == 0 || limit > LOOKALIKE_PAGE_MAX) {
        cerr(err, errlen, "limit must be 1 to %d", LOOKALIKE_PAGE_MAX);
        return LOOKALIKE_EINVAL;
    }
    if (cursor && cursor[0] && !lookalike_product_id_valid(cursor)) {
        cerr(err, errlen, "invalid cursor");
        return LOOKALIKE_EINVAL;
    }
    int more = 0;
    uint64_t t = 0;
    rc = c->ops->product_list(c, collection, cursor ? cursor : "", limit, out, n, &more, &t, err, errlen);
    if (rc)
        return rc;
    if (more && *n)
        snprintf(next_cursor, LOOKALIKE_ID_MAX + 1, "%s", out[*n - 1].id);
    if (total)
        *total = t;
    return 0;
}

int lookalike_catalog_changes(lookalike_catalog_t *c, uint64_t since, size_t limit, lookalike_change_t *out,
                              size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (limit == 0 || limit > LOOKALIKE_PAGE_MAX) {
        cerr(err, errlen, "limit must be 1 to %d", LOOKALIKE_PAGE_MAX);
        return LOOKALIKE_EINVAL;
    }
    return c->ops->changes(c, since, limit, out, n, err, errlen);
}

int lookalike_catalog_max_seq(lookalike_catalog_t *c, uint64_t *seq, char *err, size_t errlen)
{
    *seq = 0;
    return c->ops->max_seq(c, seq, err, errlen);
}

int lookalike_catalog_changes_wait(lookalike_catalog_t *c, uint64_t since, int timeout_ms, char *err,
                                   size_t errlen)
{
    if (timeout_ms < 0 || timeout_ms > 60000) {
        cerr(err, errlen, "timeout must be 0 to 60000 ms");
        return LOOKALIKE_EINVAL;
    }
    return c->ops->changes_wait(c, since, timeout_ms, err, errlen);
}

int lookalike_catalog_put_image(lookalike_catalog_t *c, const void *data, size_t len, char sha256[65],
                                char *err, size_t errlen)
{
    return c->ops->image_put(c, data, len, sha256, err, errlen);
}

int lookalike_catalog_get_image(lookalike_catalog_t *c, const char *sha256, void **data, size_t *len,
                                char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    if (!sha256 || strnlen(sha256, 65) != 64 || !image_store_hash_valid(sha256)) {
        cerr(err, errlen, "image hash must be 64 lowercase hex digits");
        return LOOKALIKE_EINVAL;
    }
    return c->ops->image_get(c, sha256, data, len, err, errlen);
}
