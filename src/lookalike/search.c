/* Query planning and execution: filters as a doc-id bitmap passed into every signal, the
 * image / product / text / filter signals, reciprocal rank fusion with "why", and facets. */
#include "lookalike/service_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SIG_IMAGE, SIG_PRODUCT, SIG_TEXT, SIG_FILTERS, SIG_COUNT };
static const char *const sig_names[SIG_COUNT] = {"image", "product", "text", "filters"};

/* Most values in one filter list, and most attribute constraints. */
#define FILTER_VALUES_MAX 32
#define FILTER_ATTRS_MAX 16

typedef struct {
    char *v[FILTER_VALUES_MAX];
    size_t n;
} strlist_t;

typedef struct {
    int active;
    strlist_t category, brand, size;
    uint32_t colours; /* 0: no colour constraint */
    double price_min, price_max;
    int has_min, has_max;
    char *akey[FILTER_ATTRS_MAX];
    char *aval[FILTER_ATTRS_MAX];
    size_t nattrs;
} filter_t;

static void serr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void strlist_release(strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

static void filter_release(filter_t *f)
{
    strlist_release(&f->category);
    strlist_release(&f->brand);
    strlist_release(&f->size);
    for (size_t i = 0; i < f->nattrs; i++) {
        free(f->akey[i]);
        free(f->aval[i]);
    }
    f->nattrs = 0;
}

/* A string or an array of strings, folded. */
static int parse_strlist(json_t *v, const char *name, strlist_t *out, char *err, size_t errlen)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_array(v) && !json_is_string(v)) {
        serr(err, errlen, "filters.%s: expected a string or an array of strings", name);
        return LOOKALIKE_EINVAL;
    }
    if (n > FILTER_VALUES_MAX) {
        serr(err, errlen, "filters.%s: too large (at most %d values)", name, FILTER_VALUES_MAX);
        return LOOKALIKE_ETOOLARGE;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        const char *sv = json_string_value(e);
        if (!sv) {
            serr(err, errlen, "filters.%s: expected a string or an array of strings", name);
            return LOOKALIKE_EINVAL;
        }
        if (strlen(sv) > LOOKALIKE_NAME_MAX) {
            serr(err, errlen, "filters.%s: value too large (at most %d bytes)", name, LOOKALIKE_NAME_MAX);
            return LOOKALIKE_ETOOLARGE;
        }
        if (!(out->v[out->n] = svc_fold(sv))) {
            serr(err, errlen, "filters.%s: not valid UTF-8", name);
            return LOOKALIKE_EINVAL;
        }
        out->n++;
    }
    return 0;
}

static int parse_filters(json_t *o, filter_t *f, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    int rc;
    if (!json_is_object(o)) {
        serr(err, errlen, "field \"filters\": expected an object");
        return LOOKALIKE_EINVAL;
    }
    json_object_foreach(o, key, v)
    {
        if (json_is_null(v))
            continue;
        f->active = 1;
        if (strcmp(key, "category") == 0)
            rc = parse_strlist(v, key, &f->category, err, errlen);
        else if (strcmp(key, "brand") == 0)
            rc = parse_strlist(v, key, &f->brand, err, errlen);
        else if (strcmp(key, "size") == 0)
            rc = parse_strlist(v, key, &f->size, err, errlen);
        else if (strcmp(key, "colour") == 0 || strcmp(key, "color") == 0) {
            strlist_t l = {0};
            rc = parse_strlist(v, key, &l, err, errlen);
            for (size_t i = 0; rc == 0 && i < l.n; i++) {
                int c = lookalike_colour_lookup(l.v[i]);
                if (c < 0) {
                    serr(err, errlen, "filters.%s: \"%s\" is not a palette colour", key, l.v[i]);
                    rc = LOOKALIKE_EINVAL;
                } else {
                    f->colours |= 1u << c;
                }
            }
            strlist_release(&l);
        } else if (strcmp(key, "price_min") == 0 || strcmp(key, "price_max") == 0) {
            if (!json_is_number(v)) {
                serr(err, errlen, "filters.%s: expected a number", key);
                return LOOKALIKE_EINVAL;
            }
            if (key[6] == 'i') {
                f->price_min = json_number_value(v);
                f->has_min = 1;
            } else {
                f->price_max = json_number_value(v);
                f->has_max = 1;
            }
            rc = 0;
        } else if (strcmp(key, "attributes") == 0) {
            const char *ak;
            json_t *av;
            rc = 0;
            if (!json_is_object(v)) {
                serr(err, errlen, "filters.attributes: expected an object");
                return LOOKALIKE_EINVAL;
            }
            if (json_object_size(v) > FILTER_ATTRS_MAX) {
                serr(err, errlen, "filters.attributes: too large (at most %d keys)", FILTER_ATTRS_MAX);
                return LOOKALIKE_ETOOLARGE;
            }
            json_object_foreach(v, ak, av)
            {
                char buf[64];
                char *text = NULL;
                if (json_is_string(av))
                    text = strlen(json_string_value(av)) <= LOOKALIKE_ATTR_VALUE_MAX
                               ? svc_fold(json_string_value(av))
                               : NULL;
                else if (json_is_number(av)) {
                    snprintf(buf, sizeof buf, "%.17g", json_number_value(av));
                    text = strdup(buf);
                } else if (json_is_boolean(av))
                    text = strdup(json_is_true(av) ? "true" : "false");
                if (!text) {
                    serr(err, errlen, "filters.attributes.%s: expected a string, number or boolean", ak);
                    return LOOKALIKE_EINVAL;
                }
                f->aval[f->nattrs] = text;
                if (!(f->akey[f->nattrs++] = strdup(ak)))
                    return LOOKALIKE_ENOMEM;
            }
        } else {
            serr(err, errlen,
                 "filters: unknown field \"%s\" (expected category, colour, size, brand, price_min, "
                 "price_max, attributes)",
                 key);
            return LOOKALIKE_EINVAL;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int in_list(const strlist_t *l, const char *v)
{
    for (size_t i = 0; v && i < l->n; i++)
        if (strcmp(l->v[i], v) == 0)
            return 1;
    return 0;
}

static int rec_pass(const svc_rec_t *r, const filter_t *f)
{
    if (f->category.n && !in_list(&f->category, r->category))
        return 0;
    if (f->brand.n && !in_list(&f->brand, r->brand))
        return 0;
    if (f->size.n) {
        size_t i = 0;
        while (i < r->nsizes && !in_list(&f->size, r->sizes[i]))
            i++;
        if (i == r->nsizes)
            return 0;
    }
    if (f->colours && !(r->colours & f->colours))
        return 0;
    if ((f->has_min || f->has_max) &&
        (!r->has_price || (f->has_min && r->price < f->price_min) || (f->has_max && r->price > f->price_max)))
        return 0;
    for (size_t a = 0; a < f->nattrs; a++) {
        size_t i = 0;
        while (i < r->nattrs &&
               !(strcmp(r->attr_keys[i], f->akey[a]) == 0 && strcmp(r->attr_vals[i], f->aval[a]) == 0))
            i++;
        if (i == r->nattrs)
            return 0;
    }
    return 1;
}

typedef struct {
    uint64_t *bits;
    uint64_t nbits;
} bitmap_t;

static int bitmap_test(uint64_t id, void *ud)
{
    const bitmap_t *b = ud;
    return id < b->nbits && (b->bits[id >> 6] >> (id & 63)) & 1;
}

/* The text signal through BM25, filtered by the same bitmap as the vector signal. */
static int text_search(svc_coll_t *c, const char *text, size_t k, bitmap_t *bm, lookalike_hit_t *out,
                       size_t *n, char *err, size_t errlen)
{
    lookalike_filter_t f = {0};
    if (bm) {
        f.bitmap = bm->bits;
        f.bitmap_bits = bm->nbits;
    }
    return lookalike_bm25_search(c->bm, text, k, bm ? &f : NULL, out, n, err, errlen);
}

static int vector_search(svc_coll_t *c, const float *q, size_t k, bitmap_t *bm, lookalike_hit_t *out,
                         size_t *n, char *err, size_t errlen)
{
    vindex_filter_t vf = {0};
    if (bm) {
        vf.bitmap = bm->bits;
        vf.bitmap_bits = bm->nbits;
    }
    vindex_search_params_t sp = {
        .k = (uint32_t)k, .ef = (uint32_t)(k < 64 ? 64 : k), .filter = bm ? &vf : NULL};
    char verr[512];
    int got = vindex_search(c->vx, q, &sp, out, verr, sizeof verr);
    if (got < 0) {
        serr(err, errlen, "vector search: %s", verr);
        return LOOKALIKE_EIO;
    }
    *n = (size_t)got;
    return 0;
}

/* The vector of a product: the one the catalogue keeps (its photo's embedding or the vector it
 * was given), else its stored photo embedded again; read once and cached in its record. */
static int product_vector(lookalike_svc_t *s, svc_coll_t *c, const char *id, float *vec, uint64_t *doc,
                          char *err, size_t errlen)
{
    char sha[65] = "";
    int cached = 0;
    uint64_t seq = 0;
    pthread_rwlock_rdlock(&c->lock);
    svc_rec_t *r = svc_rec_find(c, id);
    if (r) {
        *doc = r->doc_id;
        seq = r->seq;
        memcpy(sha, r->image_sha256, sizeof sha);
        pthread_mutex_lock(&s->vec_mu);
        if (r->vec) {
            memcpy(vec, r->vec, s->dim * sizeof *vec);
            cached = 1;
        }
        pthread_mutex_unlock(&s->vec_mu);
    }
    pthread_rwlock_unlock(&c->lock);
    if (!r) {
        serr(err, errlen, "product_id: no product \"%s\" in \"%s\"", id, c->info.name);
        return LOOKALIKE_ENOTFOUND;
    }
    if (cached)
        return 0;
    int rc = lookalike_catalog_get_vector(s->cat, *doc, vec, s->dim, err, errlen);
    if (rc != 0 && !sha[0]) {
        serr(err, errlen, "product_id: product \"%s\" has neither a photo nor a vector", id);
        return LOOKALIKE_EINVAL;
    }
    if (rc != 0) {
        /* Written before the catalogue kept vectors: embed its stored photo again. */
        void *img = NULL;
        size_t len = 0;
        rc = lookalike_catalog_get_image(s->cat, sha, &img, &len, err, errlen);
        if (rc == 0)
            rc = svc_embed(s, img, len, vec, err, errlen);
        free(img);
    }
    if (rc != 0)
        return rc == LOOKALIKE_SVC_EIMAGE ? LOOKALIKE_EIO : rc;
    float *copy = malloc(s->dim * sizeof *copy);
    if (!copy)
        return 0;
    memcpy(copy, vec, s->dim * sizeof *copy);
    pthread_rwlock_rdlock(&c->lock);
    r = svc_rec_find(c, id);
    pthread_mutex_lock(&s->vec_mu);
    /* Only into the version it was read for: a write since then may have brought another. */
    if (r && !r->vec && r->seq == seq) {
        r->vec = copy;
        copy = NULL;
    }
    pthread_mutex_unlock(&s->vec_mu);
    pthread_rwlock_unlock(&c->lock);
    free(copy);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int parse_int(json_t *q, const char *key, long long lo, long long hi, long long *out, char *err,
                     size_t errlen)
{
    json_t *v = json_object_get(q, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        serr(err, errlen, "field \"%s\": expected an integer in %lld..%lld", key, lo, hi);
        return LOOKALIKE_EINVAL;
    }
    *out = json_integer_value(v);
    return 0;
}

static int parse_weights(json_t *w, float weights[SIG_COUNT], char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    if (!json_is_object(w)) {
        serr(err, errlen, "field \"weights\": expected an object");
        return LOOKALIKE_EINVAL;
    }
    json_object_foreach(w, key, v)
    {
        int s = 0;
        while (s < SIG_COUNT && strcmp(sig_names[s], key) != 0)
            s++;
        if (s == SIG_COUNT) {
            serr(err, errlen, "weights: unknown signal \"%s\" (expected image, product, text, filters)", key);
            return LOOKALIKE_EINVAL;
        }
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1e6) {
            serr(err, errlen, "weights.%s: expected a number in 0..1000000", key);
            return LOOKALIKE_EINVAL;
        }
        weights[s] = (float)json_number_value(v);
    }
    return 0;
}

int lookalike_svc_search(lookalike_svc_t *s, const char *coll, json_t *query, const void *image,
                         size_t image_len, json_t **out, char *err, size_t errlen)
{
    static const char *const allowed[] = {"text",   "product_id", "filters", "k",
                                          "offset", "weights",    "min_seq"};
    double t0 = now_ms();
    filter_t f = {0};
    bitmap_t bm = {0};
    float *qvec = NULL, *pvec = NULL;
    lookalike_hit_t *hits[SIG_COUNT] = {0};
    size_t nhits[SIG_COUNT] = {0};
    lookalike_fused_t *fused = NULL;
    float weights[SIG_COUNT] = {1, 1, 1, 1};
    long long k = 10, offset = 0, min_seq = 0;
    const char *text = NULL, *product_id = NULL, *key;
    json_t *v;
    int rc = 0;
    svc_coll_t *c = svc_coll_find(s, coll);
    if (!c) {
        serr(err, errlen, "no collection named \"%s\"", coll);
        return LOOKALIKE_ENOTFOUND;
    }
    if (!json_is_object(query)) {
        serr(err, errlen, "the query must be a JSON object");
        return LOOKALIKE_EINVAL;
    }
    json_object_foreach(query, key, v)
    {
        size_t i = 0;
        while (i < sizeof allowed / sizeof *allowed && strcmp(allowed[i], key) != 0)
            i++;
        if (i == sizeof allowed / sizeof *allowed) {
            serr(err, errlen, "unknown field \"%s\"", key);
            return LOOKALIKE_EINVAL;
        }
    }
    if ((v = json_object_get(query, "text")) && !json_is_null(v)) {
        if (!(text = json_string_value(v))) {
            serr(err, errlen, "field \"text\": expected a string");
            return LOOKALIKE_EINVAL;
        }
        if (strlen(text) > LOOKALIKE_QUERY_MAX) {
            serr(err, errlen, "field \"text\": too large (at most %d bytes)", LOOKALIKE_QUERY_MAX);
            return LOOKALIKE_ETOOLARGE;
        }
        if (!text[strspn(text, " \t\r\n")])
            text = NULL;
    }
    if ((v = json_object_get(query, "product_id")) && !json_is_null(v)) {
        if (!(product_id = json_string_value(v)) || !lookalike_product_id_valid(product_id)) {
            serr(err, errlen, "field \"product_id\": expected a product id string");
            return LOOKALIKE_EINVAL;
        }
    }
    if ((rc = parse_int(query, "k", 1, LOOKALIKE_SVC_K_MAX, &k, err, errlen)) ||
        (rc = parse_int(query, "offset", 0, LOOKALIKE_SVC_OFFSET_MAX, &offset, err, errlen)) ||
        (rc = parse_int(query, "min_seq", 0, INT64_MAX, &min_seq, err, errlen)))
        return rc;
    if ((v = json_object_get(query, "weights")) && !json_is_null(v) &&
        (rc = parse_weights(v, weights, err, errlen)) != 0)
        return rc;
    /* Read-your-writes across nodes: a write acknowledged elsewhere is committed, so catching
     * up with the change log now brings it here (one query when there is nothing new). */
    if ((uint64_t)min_seq > lookalike_svc_applied_seq(s) && (rc = svc_catch_up(s, err, errlen)) != 0)
        return rc;
    if ((uint64_t)min_seq > lookalike_svc_applied_seq(s)) {
        serr(err, errlen, "min_seq %lld is ahead of this node (at %llu)", min_seq,
             (unsigned long long)lookalike_svc_applied_seq(s));
        return LOOKALIKE_EEXIST;
    }
    if ((v = json_object_get(query, "filters")) && !json_is_null(v) &&
        (rc = parse_filters(v, &f, err, errlen)) != 0)
        goto out;
    if (!image && !text && !product_id && !f.active) {
        serr(err, errlen, "empty query: give an image, text, product_id or filters");
        rc = LOOKALIKE_EINVAL;
        goto out;
    }
    size_t cand = (size_t)(offset + k);
    if (cand < 100)
        cand = 100;
    if (cand > LOOKALIKE_SVC_CANDIDATES_MAX)
        cand = LOOKALIKE_SVC_CANDIDATES_MAX;
    for (int i = 0; i < SIG_COUNT; i++)
        if (!(hits[i] = malloc(cand * sizeof *hits[i]))) {
            rc = LOOKALIKE_ENOMEM;
            goto out;
        }
    if (image) {
        if (!(qvec = malloc(s->dim * sizeof *qvec))) {
            rc = LOOKALIKE_ENOMEM;
            goto out;
        }
        if ((rc = svc_embed(s, image, image_len, qvec, err, errlen)) != 0)
            goto out;
    }
    uint64_t self = UINT64_MAX;
    if (product_id) {
        if (!(pvec = malloc(s->dim * sizeof *pvec))) {
            rc = LOOKALIKE_ENOMEM;
            goto out;
        }
        if ((rc = product_vector(s, c, product_id, pvec, &self, err, errlen)) != 0)
            goto out;
    }
    int use_bitmap = f.active || product_id;
    pthread_rwlock_rdlock(&c->lock);
    if (use_bitmap) {
        bm.nbits = c->by_doc_cap;
        bm.bits = calloc((bm.nbits + 63) / 64 + 1, sizeof *bm.bits);
        for (uint64_t d = 0; bm.bits && d < bm.nbits; d++)
            if (c->by_doc[d] && d != self && (!f.active || rec_pass(c->by_doc[d], &f)))
                bm.bits[d >> 6] |= 1ull << (d & 63);
    }
    if (!image && !text && !product_id && bm.bits) {
        /* Filters alone: the passing products, newest first. */
        for (uint64_t d = bm.nbits; d-- > 0 && nhits[SIG_FILTERS] < cand;)
            if (bitmap_test(d, &bm))
                hits[SIG_FILTERS][nhits[SIG_FILTERS]++] = (lookalike_hit_t){.id = d, .score = 1};
    }
    pthread_rwlock_unlock(&c->lock);
    if (use_bitmap && !bm.bits) {
        rc = LOOKALIKE_ENOMEM;
        goto out;
    }
    bitmap_t *bmp = use_bitmap ? &bm : NULL;
    if ((qvec && (rc = vector_search(c, qvec, cand, bmp, hits[SIG_IMAGE], &nhits[SIG_IMAGE], err, errlen))) ||
        (pvec &&
         (rc = vector_search(c, pvec, cand, bmp, hits[SIG_PRODUCT], &nhits[SIG_PRODUCT], err, errlen))) ||
        (text && (rc = text_search(c, text, cand, bmp, hits[SIG_TEXT], &nhits[SIG_TEXT], err, errlen))))
        goto out;
    lookalike_signal_t sigs[SIG_COUNT];
    int sig_of[SIG_COUNT];
    size_t nsig = 0;
    int present[SIG_COUNT] = {qvec != NULL, pvec != NULL, text != NULL, !image && !text && !product_id};
    for (int i = 0; i < SIG_COUNT; i++) {
        if (!present[i])
            continue;
        sigs[nsig] = (lookalike_signal_t){sig_names[i], hits[i], nhits[i], weights[i]};
        sig_of[nsig++] = i;
    }
    if (!(fused = calloc((size_t)k, sizeof *fused))) {
        rc = LOOKALIKE_ENOMEM;
        goto out;
    }
    size_t nf = 0, total = 0;
    lookalike_fuse_opts_t fo = {.k_rrf = LOOKALIKE_RRF_K, .k = (size_t)k, .offset = (size_t)offset};
    if ((rc = lookalike_fuse(sigs, nsig, &fo, fused, &nf, &total, err, errlen)) != 0)
        goto out;
    json_t *results = json_array();
    pthread_rwlock_rdlock(&c->lock);
    for (size_t i = 0; results && i < nf; i++) {
        svc_rec_t *r = fused[i].id < c->by_doc_cap ? c->by_doc[fused[i].id] : NULL;
        if (!r)
            continue; /* deleted since the signals ran */
        json_t *why = json_object();
        for (size_t si = 0; why && si < nsig; si++)
            if (fused[i].rank[si])
                json_object_set_new(why, sig_names[sig_of[si]],
                                    json_pack("{s:i,s:f}", "rank", (int)fused[i].rank[si], "score",
                                              (double)fused[i].signal_score[si]));
        json_t *prod = json_loads(r->json, 0, NULL);
        json_array_append_new(results,
                              json_pack("{s:s,s:f,s:o,s:o}", "id", r->id, "score", fused[i].score, "why",
                                        why ? why : json_object(), "product", prod ? prod : json_null()));
    }
    pthread_rwlock_unlock(&c->lock);
    *out = json_pack("{s:o,s:I,s:f}", "results", results ? results : json_array(), "total", (json_int_t)total,
                     "took_ms", now_ms() - t0);
    if (!*out)
        rc = LOOKALIKE_ENOMEM;
out:
    filter_release(&f);
    free(bm.bits);
    free(qvec);
    free(pvec);
    for (int i = 0; i < SIG_COUNT; i++)
        free(hits[i]);
    free(fused);
    return rc;
}

static void count_in(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    json_object_set_new(o, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

int lookalike_svc_facets(lookalike_svc_t *s, const char *coll, json_t **out, char *err, size_t errlen)
{
    svc_coll_t *c = svc_coll_find(s, coll);
    if (!c) {
        serr(err, errlen, "no collection named \"%s\"", coll);
        return LOOKALIKE_ENOTFOUND;
    }
    json_t *cat = json_object(), *brand = json_object(), *colour = json_object(), *size = json_object();
    double pmin = 0, pmax = 0;
    int has_price = 0;
    uint64_t total = 0;
    pthread_rwlock_rdlock(&c->lock);
    for (size_t d = 0; d < c->by_doc_cap; d++) {
        svc_rec_t *r = c->by_doc[d];
        if (!r)
            continue;
        total++;
        if (r->category)
            count_in(cat, r->category);
        if (r->brand)
            count_in(brand, r->brand);
        for (size_t i = 0; i < r->nsizes; i++)
            count_in(size, r->sizes[i]);
        for (int i = 0; i < LOOKALIKE_COLOUR_COUNT; i++)
            if (r->colours & (1u << i))
                count_in(colour, lookalike_colour_name(i, 0));
        if (r->has_price) {
            if (!has_price || r->price < pmin)
                pmin = r->price;
            if (!has_price || r->price > pmax)
                pmax = r->price;
            has_price = 1;
        }
    }
    pthread_rwlock_unlock(&c->lock);
    *out = json_pack("{s:I,s:o,s:o,s:o,s:o,s:o}", "total", (json_int_t)total, "category", cat, "brand", brand,
                     "colour", colour, "size", size, "price",
                     has_price ? json_pack("{s:f,s:f}", "min", pmin, "max", pmax) : json_null());
    return *out ? 0 : LOOKALIKE_ENOMEM;
}
