/* Query execution on the shards this node holds: filters as a doc-id bitmap passed into every
 * signal, the image / product / text / filter signals of each shard, their BM25 statistics,
 * facets, and the fan-out operations other nodes send (design in lookalike.h, section
 * Service; the coordinating side is in search_fanout.c). */
#include "lookalike/service_internal.h"

#include <stdlib.h>
#include <string.h>

const char *const svc_sig_names[SIG_COUNT] = {"image", "product", "text", "filters"};

static void strlist_release(strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

void svc_filter_release(svc_filter_t *f)
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
        lookalike_errf(err, errlen, "filters.%s: expected a string or an array of strings", name);
        return LOOKALIKE_EINVAL;
    }
    if (n > FILTER_VALUES_MAX) {
        lookalike_errf(err, errlen, "filters.%s: too large (at most %d values)", name, FILTER_VALUES_MAX);
        return LOOKALIKE_ETOOLARGE;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        const char *sv = json_string_value(e);
        if (!sv) {
            lookalike_errf(err, errlen, "filters.%s: expected a string or an array of strings", name);
            return LOOKALIKE_EINVAL;
        }
        if (strlen(sv) > LOOKALIKE_NAME_MAX) {
            lookalike_errf(err, errlen, "filters.%s: value too large (at most %d bytes)", name,
                           LOOKALIKE_NAME_MAX);
            return LOOKALIKE_ETOOLARGE;
        }
        if (!(out->v[out->n] = svc_fold(sv))) {
            lookalike_errf(err, errlen, "filters.%s: not valid UTF-8", name);
            return LOOKALIKE_EINVAL;
        }
        out->n++;
    }
    return 0;
}

int svc_filter_parse(json_t *o, svc_filter_t *f, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    int rc;
    if (!json_is_object(o)) {
        lookalike_errf(err, errlen, "field \"filters\": expected an object");
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
                    lookalike_errf(err, errlen, "filters.%s: \"%s\" is not a palette colour", key, l.v[i]);
                    rc = LOOKALIKE_EINVAL;
                } else {
                    f->colours |= 1u << c;
                }
            }
            strlist_release(&l);
        } else if (strcmp(key, "price_min") == 0 || strcmp(key, "price_max") == 0) {
            if (!json_is_number(v)) {
                lookalike_errf(err, errlen, "filters.%s: expected a number", key);
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
                lookalike_errf(err, errlen, "filters.attributes: expected an object");
                return LOOKALIKE_EINVAL;
            }
            if (json_object_size(v) > FILTER_ATTRS_MAX) {
                lookalike_errf(err, errlen, "filters.attributes: too large (at most %d keys)",
                               FILTER_ATTRS_MAX);
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
                    lookalike_errf(err, errlen, "filters.attributes.%s: expected a string, number or boolean",
                                   ak);
                    return LOOKALIKE_EINVAL;
                }
                f->aval[f->nattrs] = text;
                if (!(f->akey[f->nattrs++] = strdup(ak)))
                    return LOOKALIKE_ENOMEM;
            }
        } else {
            lookalike_errf(
                err, errlen,
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

typedef struct {
    uint64_t *bits;
    uint64_t nbits;
} bitmap_t;

int svc_hits_push(svc_hits_t *l, lookalike_shard_hit_t h)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        lookalike_shard_hit_t *n = realloc(l->hits, cap * sizeof *n);
        if (!n)
            return LOOKALIKE_ENOMEM;
        l->hits = n;
        l->cap = cap;
    }
    l->hits[l->n++] = h;
    return 0;
}

void svc_hits_release(svc_hits_t *l)
{
    free(l->hits);
    memset(l, 0, sizeof *l);
}

/* Orders of the merged lists: better first, then the smaller doc_id. */
static int cmp_desc(const void *a, const void *b)
{
    const lookalike_shard_hit_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

static int cmp_asc(const void *a, const void *b)
{
    const lookalike_shard_hit_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

static int cmp_newest(const void *a, const void *b)
{
    const lookalike_shard_hit_t *x = a, *y = b;
    return x->doc > y->doc ? -1 : x->doc < y->doc;
}

void svc_hits_merge(svc_hits_t *l, int sig, vindex_metric_t metric, size_t cand)
{
    /* Vector scores of an L2 index are distances: smaller is better. */
    int (*cmp)(const void *, const void *) = sig == SIG_FILTERS ? cmp_newest
                                             : (sig == SIG_IMAGE || sig == SIG_PRODUCT) && metric == VINDEX_L2
                                                 ? cmp_asc
                                                 : cmp_desc;
    if (l->n > 1)
        qsort(l->hits, l->n, sizeof *l->hits, cmp);
    if (l->n > cand)
        l->n = cand;
}

void svc_plan_release(svc_plan_t *p)
{
    svc_filter_release(&p->f);
    free(p->qvec);
    free(p->pvec);
    memset(p, 0, sizeof *p);
    p->exclude = UINT64_MAX;
}

int svc_text_stats_local(svc_coll_t *c, const char *text, const uint8_t *want, lookalike_bm25_stats_t *out,
                         char *err, size_t errlen)
{
    lookalike_bm25_stats_init(out);
    for (uint32_t i = 0; i < c->nshards; i++) {
        if (!want[i] || !c->shards[i])
            continue;
        lookalike_bm25_stats_t st;
        int rc = lookalike_bm25_stats(c->shards[i]->bm, text, &st, err, errlen);
        if (rc == 0)
            rc = lookalike_bm25_stats_add(out, &st, err, errlen);
        lookalike_bm25_stats_release(&st);
        if (rc != 0) {
            lookalike_bm25_stats_release(out);
            return rc;
        }
    }
    return 0;
}

static int vector_search(svc_shard_t *u, const float *q, size_t k, bitmap_t *bm, svc_hits_t *out, char *err,
                         size_t errlen)
{
    vindex_filter_t vf = {0};
    if (bm) {
        vf.bitmap = bm->bits;
        vf.bitmap_bits = bm->nbits;
    }
    vindex_search_params_t sp = {
        .k = (uint32_t)k, .ef = (uint32_t)(k < 64 ? 64 : k), .filter = bm ? &vf : NULL};
    lookalike_hit_t *hits = malloc(k * sizeof *hits);
    if (!hits)
        return LOOKALIKE_ENOMEM;
    char verr[512];
    int got = vindex_search(u->vx, q, &sp, hits, verr, sizeof verr);
    if (got < 0) {
        free(hits);
        lookalike_errf(err, errlen, "vector search: %s", verr);
        return LOOKALIKE_EIO;
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < got; i++)
        rc = svc_hits_push(out, (lookalike_shard_hit_t){hits[i].id, hits[i].score, u->no});
    free(hits);
    return rc;
}

static int text_search(svc_shard_t *u, const char *text, const lookalike_bm25_stats_t *g, size_t k,
                       bitmap_t *bm, svc_hits_t *out, char *err, size_t errlen)
{
    lookalike_filter_t f = {0};
    if (bm) {
        f.bitmap = bm->bits;
        f.bitmap_bits = bm->nbits;
    }
    lookalike_hit_t *hits = malloc(k * sizeof *hits);
    size_t n = 0;
    if (!hits)
        return LOOKALIKE_ENOMEM;
    int rc = g ? lookalike_bm25_search_global(u->bm, text, g, k, bm ? &f : NULL, hits, &n, err, errlen)
               : lookalike_bm25_search(u->bm, text, k, bm ? &f : NULL, hits, &n, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = svc_hits_push(out, (lookalike_shard_hit_t){hits[i].id, hits[i].score, u->no});
    free(hits);
    return rc;
}

int svc_run_local(lookalike_svc_t *s, svc_coll_t *c, const svc_plan_t *p, const lookalike_bm25_stats_t *g,
                  const uint8_t *want, svc_hits_t lists[SIG_COUNT], char *err, size_t errlen)
{
    (void)s;
    bitmap_t bm = {0};
    int filters_only = !p->qvec && !p->text && !p->pvec;
    int use_bitmap = p->f.active || p->exclude != UINT64_MAX;
    int rc = 0;
    pthread_rwlock_rdlock(&c->lock);
    /* The filter's postings give the passing doc ids (the excluded product left out); they span
     * every shard held here, and each shard's index only holds its own. */
    if (use_bitmap)
        rc = svc_findex_eval(c->fx, &p->f, p->exclude, c->by_doc_cap, &bm.bits, &bm.nbits);
    if (rc == 0 && filters_only && bm.bits) {
        /* Filters alone: the passing products of the wanted shards, newest first (doc_id order,
         * the same on every shard, so the lists merge into the one-index order). */
        size_t n = 0;
        for (uint64_t w = (bm.nbits + 63) / 64; rc == 0 && w-- > 0 && n < p->cand;)
            for (uint64_t x = bm.bits[w]; rc == 0 && x && n < p->cand;) {
                uint64_t bit = 63 - (uint64_t)__builtin_clzll(x);
                x &= ~(1ull << bit);
                svc_rec_t *r = c->by_doc[w * 64 + bit];
                if (!r || !want[r->shard])
                    continue;
                rc = svc_hits_push(&lists[SIG_FILTERS], (lookalike_shard_hit_t){r->doc_id, 1.0f, r->shard});
                n++;
            }
    }
    pthread_rwlock_unlock(&c->lock);
    bitmap_t *bmp = use_bitmap ? &bm : NULL;
    for (uint32_t i = 0; rc == 0 && i < c->nshards; i++) {
        svc_shard_t *u = c->shards[i];
        if (!u || !want[i])
            continue;
        if ((p->qvec && (rc = vector_search(u, p->qvec, p->cand, bmp, &lists[SIG_IMAGE], err, errlen))) ||
            (p->pvec && (rc = vector_search(u, p->pvec, p->cand, bmp, &lists[SIG_PRODUCT], err, errlen))) ||
            (p->text && (rc = text_search(u, p->text, g, p->cand, bmp, &lists[SIG_TEXT], err, errlen))))
            break;
    }
    free(bm.bits);
    if (rc == LOOKALIKE_ENOMEM)
        lookalike_errf(err, errlen, "out of memory");
    return rc;
}

static void count_in(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    json_object_set_new(o, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

json_t *svc_facets_local(svc_coll_t *c, const uint8_t *want)
{
    json_t *cat = json_object(), *brand = json_object(), *colour = json_object(), *size = json_object();
    double pmin = 0, pmax = 0;
    int has_price = 0;
    uint64_t total = 0;
    pthread_rwlock_rdlock(&c->lock);
    for (size_t d = 0; d < c->by_doc_cap; d++) {
        svc_rec_t *r = c->by_doc[d];
        if (!r || !want[r->shard])
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
    return json_pack("{s:I,s:o*,s:o*,s:o*,s:o*,s:o*}", "total", (json_int_t)total, "category", cat, "brand",
                     brand, "colour", colour, "size", size, "price",
                     has_price ? json_pack("{s:f,s:f}", "min", pmin, "max", pmax) : json_null());
}

/* ---- the operations other nodes send (lookalike_svc_shard_op) ---- */

/* req["shards"] into want[]: each a shard of c held here. */
static int op_shards(svc_coll_t *c, json_t *req, uint8_t *want, char *err, size_t errlen)
{
    json_t *a = json_object_get(req, "shards"), *v;
    size_t i;
    memset(want, 0, LOOKALIKE_SHARDS_MAX);
    if (!json_is_array(a) || json_array_size(a) < 1 || json_array_size(a) > c->nshards) {
        lookalike_errf(err, errlen, "field \"shards\": expected an array of 1..%u shard numbers", c->nshards);
        return LOOKALIKE_EINVAL;
    }
    json_array_foreach(a, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= c->nshards) {
            lookalike_errf(err, errlen, "field \"shards\": expected shard numbers 0..%u", c->nshards - 1);
            return LOOKALIKE_EINVAL;
        }
        uint32_t sh = (uint32_t)json_integer_value(v);
        if (!c->shards[sh]) {
            lookalike_errf(err, errlen, "this node does not hold shard %u of \"%s\"", sh, c->info.name);
            return LOOKALIKE_SVC_ENOTHELD;
        }
        want[sh] = 1;
    }
    return 0;
}

static int op_search(lookalike_svc_t *s, svc_coll_t *c, json_t *req, const uint8_t *want, json_t **out,
                     char *err, size_t errlen)
{
    svc_plan_t p = {.exclude = UINT64_MAX};
    svc_hits_t lists[SIG_COUNT] = {{0}};
    lookalike_bm25_stats_t g;
    int have_g = 0, rc = 0;
    json_t *v;
    long long cand = 0;
    if (!json_is_integer(v = json_object_get(req, "cand")) || (cand = json_integer_value(v)) < 1 ||
        cand > LOOKALIKE_SVC_CANDIDATES_MAX) {
        lookalike_errf(err, errlen, "field \"cand\": expected an integer in 1..%d",
                       LOOKALIKE_SVC_CANDIDATES_MAX);
        return LOOKALIKE_EINVAL;
    }
    p.cand = (size_t)cand;
    if ((v = json_object_get(req, "text")) && !(p.text = json_string_value(v))) {
        lookalike_errf(err, errlen, "field \"text\": expected a string");
        return LOOKALIKE_EINVAL;
    }
    if (p.text && strlen(p.text) > LOOKALIKE_QUERY_MAX) {
        lookalike_errf(err, errlen, "field \"text\": too large (at most %d bytes)", LOOKALIKE_QUERY_MAX);
        return LOOKALIKE_ETOOLARGE;
    }
    if ((v = json_object_get(req, "exclude"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            lookalike_errf(err, errlen, "field \"exclude\": expected a doc_id");
            return LOOKALIKE_EINVAL;
        }
        p.exclude = (uint64_t)json_integer_value(v);
    }
    static const char *const vecs[2] = {"image", "product"};
    for (int i = 0; i < 2; i++) {
        if (!(v = json_object_get(req, vecs[i])))
            continue;
        float **dst = i ? &p.pvec : &p.qvec;
        if (!(*dst = malloc(s->dim * sizeof **dst))) {
            rc = LOOKALIKE_ENOMEM;
            goto out;
        }
        if ((rc = lookalike_wire_vector_decode(v, *dst, s->dim, err, errlen)) != 0)
            goto out;
    }
    if ((v = json_object_get(req, "filters")) && !json_is_null(v) &&
        (rc = svc_filter_parse(v, &p.f, err, errlen)) != 0)
        goto out;
    if (!p.qvec && !p.pvec && !p.text && !p.f.active) {
        lookalike_errf(err, errlen, "empty query: give an image, text, product or filters");
        rc = LOOKALIKE_EINVAL;
        goto out;
    }
    if (p.text && (v = json_object_get(req, "text_stats"))) {
        if ((rc = lookalike_wire_stats_decode(v, &g, err, errlen)) != 0)
            goto out;
        have_g = 1;
    }
    if ((rc = svc_run_local(s, c, &p, have_g ? &g : NULL, want, lists, err, errlen)) != 0)
        goto out;
    json_t *sig = json_object();
    for (int i = 0; sig && i < SIG_COUNT; i++)
        if (lists[i].n)
            json_object_set_new(sig, svc_sig_names[i], lookalike_wire_hits_encode(lists[i].hits, lists[i].n));
    *out = json_pack("{s:o*,s:I}", "signals", sig, "applied_seq", (json_int_t)lookalike_svc_applied_seq(s));
    rc = *out ? 0 : LOOKALIKE_ENOMEM;
out:
    if (have_g)
        lookalike_bm25_stats_release(&g);
    for (int i = 0; i < SIG_COUNT; i++)
        svc_hits_release(&lists[i]);
    svc_plan_release(&p);
    return rc;
}

/* Most products one fetch may ask for. */
#define FETCH_MAX LOOKALIKE_SVC_K_MAX

static int op_fetch(svc_coll_t *c, json_t *req, const uint8_t *want, json_t **out, char *err, size_t errlen)
{
    json_t *docs = json_object_get(req, "docs"), *v;
    size_t i;
    if (!json_is_array(docs) || json_array_size(docs) > FETCH_MAX) {
        lookalike_errf(err, errlen, "field \"docs\": expected an array of at most %d doc_ids", FETCH_MAX);
        return LOOKALIKE_EINVAL;
    }
    json_t *items = json_array();
    pthread_rwlock_rdlock(&c->lock);
    json_array_foreach(docs, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            continue;
        uint64_t d = (uint64_t)json_integer_value(v);
        svc_rec_t *r = d < c->by_doc_cap ? c->by_doc[d] : NULL;
        if (!r || !want[r->shard])
            continue;
        json_t *prod = json_loads(r->json, 0, NULL);
        if (prod)
            json_array_append_new(items, json_pack("{s:I,s:o}", "doc", (json_int_t)d, "product", prod));
    }
    pthread_rwlock_unlock(&c->lock);
    *out = json_pack("{s:o*}", "products", items);
    return *out ? 0 : LOOKALIKE_ENOMEM;
}

static int op_get(svc_coll_t *c, json_t *req, const uint8_t *want, json_t **out, char *err, size_t errlen)
{
    const char *id = json_string_value(json_object_get(req, "id"));
    if (!id || !lookalike_product_id_valid(id)) {
        lookalike_errf(err, errlen, "field \"id\": expected a product id");
        return LOOKALIKE_EINVAL;
    }
    json_t *prod = NULL;
    pthread_rwlock_rdlock(&c->lock);
    svc_rec_t *r = svc_rec_find(c, id);
    if (r && want[r->shard])
        prod = json_loads(r->json, 0, NULL);
    pthread_rwlock_unlock(&c->lock);
    *out = json_pack("{s:o}", "product", prod ? prod : json_null());
    return *out ? 0 : LOOKALIKE_ENOMEM;
}

int lookalike_svc_shard_op(lookalike_svc_t *s, const char *coll, const char *op, json_t *req, json_t **out,
                           char *err, size_t errlen)
{
    svc_coll_t *c = svc_coll_find(s, coll);
    uint8_t want[LOOKALIKE_SHARDS_MAX];
    int rc;
    if (!c) {
        lookalike_errf(err, errlen, "no collection named \"%s\"", coll);
        return LOOKALIKE_ENOTFOUND;
    }
    if (!json_is_object(req)) {
        lookalike_errf(err, errlen, "the request body must be a JSON object");
        return LOOKALIKE_EINVAL;
    }
    if ((rc = op_shards(c, req, want, err, errlen)) != 0)
        return rc;
    json_t *v = json_object_get(req, "min_seq");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
        lookalike_errf(err, errlen, "field \"min_seq\": expected a sequence number");
        return LOOKALIKE_EINVAL;
    }
    if (v && (rc = svc_wait_seq(s, (uint64_t)json_integer_value(v), err, errlen)) != 0)
        return rc;
    if (strcmp(op, "search") == 0)
        return op_search(s, c, req, want, out, err, errlen);
    if (strcmp(op, "fetch") == 0)
        return op_fetch(c, req, want, out, err, errlen);
    if (strcmp(op, "get") == 0)
        return op_get(c, req, want, out, err, errlen);
    if (strcmp(op, "facets") == 0)
        return (*out = svc_facets_local(c, want)) ? 0 : LOOKALIKE_ENOMEM;
    if (strcmp(op, "stats") == 0) {
        const char *text = json_string_value(json_object_get(req, "text"));
        lookalike_bm25_stats_t st;
        if (!text || strlen(text) > LOOKALIKE_QUERY_MAX) {
            lookalike_errf(err, errlen, "field \"text\": expected a string of at most %d bytes",
                           LOOKALIKE_QUERY_MAX);
            return LOOKALIKE_EINVAL;
        }
        if ((rc = svc_text_stats_local(c, text, want, &st, err, errlen)) != 0)
            return rc;
        *out = lookalike_wire_stats_encode(&st);
        lookalike_bm25_stats_release(&st);
        return *out ? 0 : LOOKALIKE_ENOMEM;
    }
    lookalike_errf(err, errlen, "unknown operation \"%s\" (expected stats, search, fetch, facets, get)", op);
    return LOOKALIKE_ENOTFOUND;
}
