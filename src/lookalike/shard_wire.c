/* The JSON messages of a search fanned out over shards: encoders, and decoders that check
 * every field of what another node sent (design in lookalike.h, section fan-out messages). */
#include "lookalike/lookalike.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A JSON integer in 0..max into *out. */
static int get_u64(json_t *v, uint64_t max, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* A finite JSON number that fits a float into *out. */
static int get_float(json_t *v, float *out)
{
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!isfinite(d) || fabs(d) > 3.0e38)
        return -1;
    *out = (float)d;
    return 0;
}

int lookalike_wire_hits_decode(json_t *arr, uint32_t nshards, size_t cap, lookalike_shard_hit_t **out,
                               size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr)) {
        lookalike_errf(err, errlen, "hits: expected an array");
        return LOOKALIKE_EINVAL;
    }
    size_t len = json_array_size(arr);
    if (len > cap) {
        lookalike_errf(err, errlen, "hits: too large (%zu, at most %zu)", len, cap);
        return LOOKALIKE_ETOOLARGE;
    }
    if (!len)
        return 0;
    lookalike_shard_hit_t *h = malloc(len * sizeof *h);
    if (!h) {
        lookalike_errf(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(arr, i);
        uint64_t shard = 0;
        if (!json_is_array(e) || json_array_size(e) != 3 ||
            get_u64(json_array_get(e, 0), INT64_MAX, &h[i].doc) ||
            get_float(json_array_get(e, 1), &h[i].score) ||
            get_u64(json_array_get(e, 2), nshards ? nshards - 1 : 0, &shard)) {
            free(h);
            lookalike_errf(err, errlen, "hits[%zu]: expected [doc_id, score, shard] with shard < %u", i,
                           nshards);
            return LOOKALIKE_EINVAL;
        }
        h[i].shard = (uint32_t)shard;
    }
    *out = h;
    *n = len;
    return 0;
}

json_t *lookalike_wire_hits_encode(const lookalike_shard_hit_t *hits, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *e = json_pack("[I,f,i]", (json_int_t)hits[i].doc, (double)hits[i].score, (int)hits[i].shard);
        if (!e || json_array_append_new(a, e) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

int lookalike_wire_stats_decode(json_t *o, lookalike_bm25_stats_t *out, char *err, size_t errlen)
{
    lookalike_bm25_stats_init(out);
    json_t *len = json_object_get(o, "total_len"), *df = json_object_get(o, "df"),
           *prefix = json_object_get(o, "prefix");
    if (!json_is_object(o) || get_u64(json_object_get(o, "docs"), UINT32_MAX, &out->docs) ||
        !json_is_array(len) || json_array_size(len) != LOOKALIKE_FIELD_COUNT || !json_is_array(df) ||
        json_array_size(df) > LOOKALIKE_BM25_QUERY_WORDS || !json_is_array(prefix)) {
        lookalike_errf(err, errlen,
                       "text statistics: expected {\"docs\", \"total_len\": [%d], \"df\": [at most %d], "
                       "\"prefix\": [...]}",
                       LOOKALIKE_FIELD_COUNT, LOOKALIKE_BM25_QUERY_WORDS);
        return LOOKALIKE_EINVAL;
    }
    for (int f = 0; f < LOOKALIKE_FIELD_COUNT; f++)
        if (get_u64(json_array_get(len, (size_t)f), INT64_MAX, &out->total_len[f])) {
            lookalike_errf(err, errlen, "text statistics: total_len[%d] is not a count", f);
            return LOOKALIKE_EINVAL;
        }
    out->nwords = (uint32_t)json_array_size(df);
    for (uint32_t i = 0; i < out->nwords; i++)
        if (get_u64(json_array_get(df, i), out->docs, &out->df[i])) {
            lookalike_errf(err, errlen, "text statistics: df[%u] is not a count of at most docs", i);
            return LOOKALIKE_EINVAL;
        }
    size_t np = json_array_size(prefix);
    if (np > LOOKALIKE_BM25_PREFIX_MAX) {
        lookalike_errf(err, errlen, "text statistics: prefix too large (at most %d)",
                       LOOKALIKE_BM25_PREFIX_MAX);
        return LOOKALIKE_ETOOLARGE;
    }
    if (np && !(out->prefix = calloc(np, sizeof *out->prefix))) {
        lookalike_errf(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    for (size_t i = 0; i < np; i++) {
        json_t *e = json_array_get(prefix, i);
        const char *term = json_string_value(json_array_get(e, 0));
        if (!json_is_array(e) || json_array_size(e) != 2 || !term || !*term ||
            json_string_length(json_array_get(e, 0)) > LOOKALIKE_TOKEN_MAX ||
            strlen(term) != json_string_length(json_array_get(e, 0)) ||
            get_u64(json_array_get(e, 1), out->docs, &out->prefix[i].df)) {
            lookalike_bm25_stats_release(out);
            lookalike_errf(err, errlen, "text statistics: prefix[%zu]: expected [\"term\" (1..%d bytes), df]",
                           i, LOOKALIKE_TOKEN_MAX);
            return LOOKALIKE_EINVAL;
        }
        memcpy(out->prefix[i].term, term, strlen(term) + 1);
    }
    out->nprefix = np;
    return 0;
}

json_t *lookalike_wire_stats_encode(const lookalike_bm25_stats_t *st)
{
    json_t *len = json_array(), *df = json_array(), *prefix = json_array();
    for (int f = 0; len && f < LOOKALIKE_FIELD_COUNT; f++)
        json_array_append_new(len, json_integer((json_int_t)st->total_len[f]));
    for (uint32_t i = 0; df && i < st->nwords; i++)
        json_array_append_new(df, json_integer((json_int_t)st->df[i]));
    for (size_t i = 0; prefix && i < st->nprefix; i++)
        json_array_append_new(prefix, json_pack("[s,I]", st->prefix[i].term, (json_int_t)st->prefix[i].df));
    return json_pack("{s:I,s:o*,s:o*,s:o*}", "docs", (json_int_t)st->docs, "total_len", len, "df", df,
                     "prefix", prefix);
}

int lookalike_wire_vector_decode(json_t *arr, float *out, uint32_t dim, char *err, size_t errlen)
{
    if (!json_is_array(arr) || json_array_size(arr) != dim) {
        lookalike_errf(err, errlen, "vector: expected an array of %u numbers", dim);
        return LOOKALIKE_EINVAL;
    }
    for (uint32_t i = 0; i < dim; i++)
        if (get_float(json_array_get(arr, i), &out[i])) {
            lookalike_errf(err, errlen, "vector[%u]: expected a finite number", i);
            return LOOKALIKE_EINVAL;
        }
    return 0;
}

json_t *lookalike_wire_vector_encode(const float *v, uint32_t dim)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < dim; i++)
        if (json_array_append_new(a, json_real((double)v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static const char *const facet_groups[] = {"category", "brand", "colour", "size"};
#define NGROUPS (sizeof facet_groups / sizeof *facet_groups)
/* Most distinct names in one facet group of an answer. */
#define FACET_NAMES_MAX 100000

static int facets_check(json_t *o, char *err, size_t errlen)
{
    uint64_t n;
    if (!json_is_object(o) || get_u64(json_object_get(o, "total"), INT64_MAX / 2, &n)) {
        lookalike_errf(err, errlen, "facets: expected an object with a \"total\" count");
        return LOOKALIKE_EINVAL;
    }
    for (size_t g = 0; g < NGROUPS; g++) {
        json_t *grp = json_object_get(o, facet_groups[g]), *v;
        const char *k;
        if (!json_is_object(grp) || json_object_size(grp) > FACET_NAMES_MAX) {
            lookalike_errf(err, errlen, "facets.%s: expected an object of at most %d counts", facet_groups[g],
                           FACET_NAMES_MAX);
            return LOOKALIKE_EINVAL;
        }
        json_object_foreach(grp, k, v)
        {
            if (get_u64(v, INT64_MAX / 2, &n)) {
                lookalike_errf(err, errlen, "facets.%s: the count of \"%.64s\" is not a count",
                               facet_groups[g], k);
                return LOOKALIKE_EINVAL;
            }
        }
    }
    json_t *price = json_object_get(o, "price");
    float lo, hi;
    if (!json_is_null(price) && (!json_is_object(price) || get_float(json_object_get(price, "min"), &lo) ||
                                 get_float(json_object_get(price, "max"), &hi))) {
        lookalike_errf(err, errlen, "facets.price: expected null or {\"min\", \"max\"}");
        return LOOKALIKE_EINVAL;
    }
    return 0;
}

int lookalike_wire_facets_add(json_t *into, json_t *from, char *err, size_t errlen)
{
    int rc;
    if ((rc = facets_check(from, err, errlen)) != 0 || (rc = facets_check(into, err, errlen)) != 0)
        return rc;
    json_object_set_new(into, "total",
                        json_integer(json_integer_value(json_object_get(into, "total")) +
                                     json_integer_value(json_object_get(from, "total"))));
    for (size_t g = 0; g < NGROUPS; g++) {
        json_t *dst = json_object_get(into, facet_groups[g]), *v;
        const char *k;
        json_object_foreach(json_object_get(from, facet_groups[g]), k, v)
        {
            json_t *have = json_object_get(dst, k);
            json_int_t sum = json_integer_value(v) + (have ? json_integer_value(have) : 0);
            if (json_object_set_new(dst, k, json_integer(sum)) != 0) {
                lookalike_errf(err, errlen, "out of memory");
                return LOOKALIKE_ENOMEM;
            }
        }
    }
    json_t *fp = json_object_get(from, "price"), *ip = json_object_get(into, "price");
    if (json_is_object(fp)) {
        double lo = json_number_value(json_object_get(fp, "min")),
               hi = json_number_value(json_object_get(fp, "max"));
        if (json_is_object(ip)) {
            double ilo = json_number_value(json_object_get(ip, "min")),
                   ihi = json_number_value(json_object_get(ip, "max"));
            lo = ilo < lo ? ilo : lo;
            hi = ihi > hi ? ihi : hi;
        }
        json_object_set_new(into, "price", json_pack("{s:f,s:f}", "min", lo, "max", hi));
    }
    return 0;
}

int lookalike_node_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > LOOKALIKE_NODE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* An optional finite number (absent or null: dflt). */
static int opt_number(json_t *o, const char *key, double dflt, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return -1;
    *out = json_number_value(v);
    return 0;
}

int lookalike_wire_node_decode(json_t *o, lookalike_node_info_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *url = json_string_value(json_object_get(o, "url"));
    const char *shards = json_string_value(json_object_get(o, "shards"));
    json_t *ready = json_object_get(o, "ready");
    if (!json_is_object(o) || !lookalike_node_name_valid(name)) {
        lookalike_errf(err, errlen, "node: \"name\" must be 1..%d of A-Z a-z 0-9 . _ -",
                       LOOKALIKE_NODE_NAME_MAX);
        return LOOKALIKE_EINVAL;
    }
    if (!url || strlen(url) > LOOKALIKE_NODE_URL_MAX || strncmp(url, "http://", 7) != 0) {
        lookalike_errf(err, errlen, "node %s: \"url\" must be an http:// URL of at most %d bytes", name,
                       LOOKALIKE_NODE_URL_MAX);
        return LOOKALIKE_EINVAL;
    }
    char e[128];
    if (!shards || lookalike_shard_set_parse(shards, &out->shards, e, sizeof e) != 0) {
        lookalike_errf(err, errlen, "node %s: \"shards\": %s", name, shards ? e : "expected a string");
        return LOOKALIKE_EINVAL;
    }
    if (get_u64(json_object_get(o, "applied_seq"), INT64_MAX, &out->applied_seq) ||
        get_u64(json_object_get(o, "catalog_seq"), INT64_MAX, &out->catalog_seq) || !json_is_boolean(ready)) {
        lookalike_errf(err, errlen,
                       "node %s: expected \"applied_seq\" and \"catalog_seq\" counts and a \"ready\" boolean",
                       name);
        return LOOKALIKE_EINVAL;
    }
    if (opt_number(o, "requests_per_s", 0, &out->requests_per_s) ||
        opt_number(o, "p50_ms", -1, &out->p50_ms) || opt_number(o, "p99_ms", -1, &out->p99_ms)) {
        lookalike_errf(err, errlen, "node %s: requests_per_s, p50_ms and p99_ms must be numbers", name);
        return LOOKALIKE_EINVAL;
    }
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->url, sizeof out->url, "%s", url);
    out->ready = json_is_true(ready);
    return 0;
}

json_t *lookalike_wire_node_encode(const lookalike_node_info_t *n)
{
    char shards[1024];
    lookalike_shard_set_format(&n->shards, shards, sizeof shards);
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:b,s:f}", "name", n->name, "url", n->url, "shards", shards,
                          "applied_seq", (json_int_t)n->applied_seq, "catalog_seq",
                          (json_int_t)n->catalog_seq, "ready", n->ready, "requests_per_s", n->requests_per_s);
    if (o && n->p50_ms >= 0)
        json_object_set_new(o, "p50_ms", json_real(n->p50_ms));
    if (o && n->p99_ms >= 0)
        json_object_set_new(o, "p99_ms", json_real(n->p99_ms));
    return o;
}
