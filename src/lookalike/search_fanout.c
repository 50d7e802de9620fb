/* The coordinating side of a query: parse it, embed what needs embedding once, run it on the
 * shards held here and on a replica of every other shard, merge each signal's hits over the
 * shards, fuse, and fetch the products of the page (design in lookalike.h, section Service). */
#include "lookalike/service_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void lookalike_fanout_release(lookalike_fanout_t *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nanswers; i++) {
        json_decref(f->answers[i].reply);
        free(f->answers[i].shards);
    }
    free(f->answers);
    free(f->missing);
    memset(f, 0, sizeof *f);
}

/* Which shards of c are held here (held[i] = 1) and which must be asked of others. */
static void split_shards(const svc_coll_t *c, uint8_t *held, uint8_t *need)
{
    memset(held, 0, LOOKALIKE_SHARDS_MAX);
    memset(need, 0, LOOKALIKE_SHARDS_MAX);
    for (uint32_t i = 0; i < c->nshards; i++) {
        held[i] = c->shards[i] != NULL;
        need[i] = !held[i];
    }
}

/* Sends op to a replica of every shard with need[] set; shards no replica answered for are
 * set in missing[]. A replica's refusal of the request is returned as a lookalike code with
 * its message. */
static int fan(lookalike_svc_t *s, const svc_coll_t *c, const char *op, json_t *body, const uint8_t *need,
               uint64_t token, lookalike_fanout_t *out, uint8_t *missing, char *err, size_t errlen)
{
    uint32_t shards[LOOKALIKE_SHARDS_MAX];
    size_t n = 0;
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < c->nshards; i++)
        if (need[i])
            shards[n++] = i;
    if (!n)
        return 0;
    if (!s->remote.fanout) {
        for (size_t i = 0; i < n; i++)
            missing[shards[i]] = 1;
        return 0;
    }
    s->remote.fanout(s->remote.ud, c->info.name, op, body, shards, n, token, out);
    for (size_t i = 0; i < out->nmissing; i++)
        if (out->missing[i] < c->nshards)
            missing[out->missing[i]] = 1;
    if (!out->status)
        return 0;
    lookalike_errf(err, errlen, "%s", out->message);
    switch (out->status) {
    case 400:
        return LOOKALIKE_EINVAL;
    case 404:
        return LOOKALIKE_ENOTFOUND;
    case 409:
        return strcmp(out->code, "seq_not_reached") == 0 ? LOOKALIKE_EEXIST : LOOKALIKE_EINVAL;
    case 413:
        return LOOKALIKE_ETOOLARGE;
    default:
        return LOOKALIKE_EIO;
    }
}

/* 1 if an answer covers shard sh. */
static int answer_covers(const lookalike_fanout_answer_t *a, uint32_t sh)
{
    for (size_t i = 0; i < a->nshards; i++)
        if (a->shards[i] == sh)
            return 1;
    return 0;
}

static json_t *missing_json(const svc_coll_t *c, const uint8_t *missing, int *any)
{
    json_t *a = json_array();
    *any = 0;
    for (uint32_t i = 0; a && i < c->nshards; i++)
        if (missing[i]) {
            json_array_append_new(a, json_integer(i));
            *any = 1;
        }
    return a;
}

/* Adds "partial": true and "missing_shards" to a result when some shard did not answer. */
static void mark_partial(json_t *out, const svc_coll_t *c, const uint8_t *missing)
{
    int any;
    json_t *m = missing_json(c, missing, &any);
    if (any) {
        json_object_set_new(out, "partial", json_true());
        json_object_set_new(out, "missing_shards", m);
    } else {
        json_decref(m);
    }
}

int svc_wait_seq(lookalike_svc_t *s, uint64_t min_seq, char *err, size_t errlen)
{
    int rc;
    /* Read-your-writes across nodes: a write acknowledged elsewhere is committed, so catching
     * up with the change log now brings it here (one query when there is nothing new). */
    if (min_seq > lookalike_svc_applied_seq(s) && (rc = svc_catch_up(s, err, errlen)) != 0)
        return rc;
    if (min_seq > lookalike_svc_applied_seq(s)) {
        lookalike_errf(err, errlen, "min_seq %llu is ahead of this node (at %llu)",
                       (unsigned long long)min_seq, (unsigned long long)lookalike_svc_applied_seq(s));
        return LOOKALIKE_EEXIST;
    }
    return 0;
}

/* The vector of a product: the one its shard's vector index holds when this node holds the
 * shard, else the one the catalogue keeps, else its stored photo embedded again. *doc gets its
 * doc_id. */
static int product_vector(lookalike_svc_t *s, svc_coll_t *c, const char *id, float *vec, uint64_t *doc,
                          char *err, size_t errlen)
{
    const vindex_t *vx = NULL;
    pthread_rwlock_rdlock(&c->lock);
    svc_rec_t *r = svc_rec_find(c, id);
    if (r) {
        *doc = r->doc_id;
        vx = c->shards[r->shard] ? c->shards[r->shard]->vx : NULL;
    }
    pthread_rwlock_unlock(&c->lock);
    if (vx && vindex_get(vx, *doc, vec) == 0)
        return 0;
    lookalike_product_t p;
    char e[256];
    int rc = lookalike_catalog_get(s->cat, c->info.name, id, &p, e, sizeof e);
    if (rc == LOOKALIKE_ENOTFOUND) {
        lookalike_errf(err, errlen, "product_id: no product \"%s\" in \"%s\"", id, c->info.name);
        return rc;
    }
    if (rc != 0) {
        lookalike_errf(err, errlen, "product_id: %s", e);
        return rc;
    }
    *doc = p.doc_id;
    int has_photo = p.image_sha256[0] != '\0';
    int got = svc_stored_vector(s, &p, vec, e, sizeof e);
    lookalike_product_release(&p);
    if (got)
        return 0;
    if (!has_photo) {
        lookalike_errf(err, errlen, "product_id: product \"%s\" has neither a photo nor a vector", id);
        return LOOKALIKE_EINVAL;
    }
    lookalike_errf(err, errlen, "product_id: %s", e);
    return LOOKALIKE_EIO;
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
        lookalike_errf(err, errlen, "field \"%s\": expected an integer in %lld..%lld", key, lo, hi);
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
        lookalike_errf(err, errlen, "field \"weights\": expected an object");
        return LOOKALIKE_EINVAL;
    }
    json_object_foreach(w, key, v)
    {
        int s = 0;
        while (s < SIG_COUNT && strcmp(svc_sig_names[s], key) != 0)
            s++;
        if (s == SIG_COUNT) {
            lookalike_errf(err, errlen,
                           "weights: unknown signal \"%s\" (expected image, product, text, filters)", key);
            return LOOKALIKE_EINVAL;
        }
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1e6) {
            lookalike_errf(err, errlen, "weights.%s: expected a number in 0..1000000", key);
            return LOOKALIKE_EINVAL;
        }
        weights[s] = (float)json_number_value(v);
    }
    return 0;
}

/* The collection-wide BM25 figures of text: this node's shards, then the others'. */
static int gather_stats(lookalike_svc_t *s, svc_coll_t *c, const char *text, const uint8_t *held,
                        const uint8_t *need, long long min_seq, uint64_t token, lookalike_bm25_stats_t *g,
                        uint8_t *missing, char *err, size_t errlen)
{
    int rc = svc_text_stats_local(c, text, held, g, err, errlen);
    if (rc != 0)
        return rc;
    json_t *body = json_pack("{s:s,s:I}", "text", text, "min_seq", (json_int_t)min_seq);
    lookalike_fanout_t f = {0};
    if (!body)
        rc = LOOKALIKE_ENOMEM;
    else
        rc = fan(s, c, "stats", body, need, token, &f, missing, err, errlen);
    for (size_t i = 0; rc == 0 && i < f.nanswers; i++) {
        lookalike_bm25_stats_t st;
        char e[256];
        if ((rc = lookalike_wire_stats_decode(f.answers[i].reply, &st, e, sizeof e)) != 0) {
            lookalike_errf(err, errlen, "node %s: %s", f.answers[i].node, e);
            rc = LOOKALIKE_EIO;
            break;
        }
        rc = lookalike_bm25_stats_add(g, &st, err, errlen);
        lookalike_bm25_stats_release(&st);
    }
    lookalike_fanout_release(&f);
    json_decref(body);
    if (rc != 0)
        lookalike_bm25_stats_release(g);
    return rc;
}

/* The signals of the other shards' replicas, appended to lists. */
static int remote_signals(lookalike_svc_t *s, svc_coll_t *c, json_t *body, const uint8_t *need,
                          uint64_t token, size_t cand, svc_hits_t lists[SIG_COUNT], uint8_t *missing,
                          char *err, size_t errlen)
{
    lookalike_fanout_t f = {0};
    int rc = fan(s, c, "search", body, need, token, &f, missing, err, errlen);
    for (size_t i = 0; rc == 0 && i < f.nanswers; i++) {
        const lookalike_fanout_answer_t *a = &f.answers[i];
        json_t *sig = json_object_get(a->reply, "signals");
        if (!json_is_object(sig)) {
            lookalike_errf(err, errlen, "node %s: a search answer without \"signals\"", a->node);
            rc = LOOKALIKE_EIO;
            break;
        }
        for (int k = 0; rc == 0 && k < SIG_COUNT; k++) {
            json_t *arr = json_object_get(sig, svc_sig_names[k]);
            lookalike_shard_hit_t *hits = NULL;
            size_t n = 0;
            char e[256];
            if (!arr)
                continue;
            if (lookalike_wire_hits_decode(arr, c->nshards, cand * a->nshards, &hits, &n, e, sizeof e) != 0) {
                lookalike_errf(err, errlen, "node %s: %s", a->node, e);
                rc = LOOKALIKE_EIO;
                break;
            }
            for (size_t h = 0; rc == 0 && h < n; h++)
                if (answer_covers(a, hits[h].shard))
                    rc = svc_hits_push(&lists[k], hits[h]);
            free(hits);
        }
    }
    lookalike_fanout_release(&f);
    return rc;
}

/* The shard a merged hit came from. */
static int hit_shard(svc_hits_t lists[SIG_COUNT], uint64_t doc, uint32_t *shard)
{
    for (int k = 0; k < SIG_COUNT; k++)
        for (size_t i = 0; i < lists[k].n; i++)
            if (lists[k].hits[i].doc == doc) {
                *shard = lists[k].hits[i].shard;
                return 1;
            }
    return 0;
}

/* The products of the page: from memory when held here, else fetched from a replica of their
 * shard. prods[i] gets a new reference, or NULL when the product is gone. */
static int fetch_page(lookalike_svc_t *s, svc_coll_t *c, const lookalike_fused_t *fused, size_t nf,
                      svc_hits_t lists[SIG_COUNT], long long min_seq, uint64_t token, json_t **prods,
                      uint8_t *missing, char *err, size_t errlen)
{
    uint8_t need[LOOKALIKE_SHARDS_MAX] = {0};
    json_t *docs = json_array();
    int rc = 0;
    pthread_rwlock_rdlock(&c->lock);
    for (size_t i = 0; i < nf; i++) {
        svc_rec_t *r = fused[i].id < c->by_doc_cap ? c->by_doc[fused[i].id] : NULL;
        uint32_t sh = 0;
        if (r) {
            prods[i] = json_loads(r->json, 0, NULL);
        } else if (hit_shard(lists, fused[i].id, &sh) && !svc_holds(c, sh)) {
            need[sh] = 1;
            json_array_append_new(docs, json_integer((json_int_t)fused[i].id));
        }
    }
    pthread_rwlock_unlock(&c->lock);
    if (!docs)
        return LOOKALIKE_ENOMEM;
    if (!json_array_size(docs)) {
        json_decref(docs);
        return 0;
    }
    json_t *body = json_pack("{s:o,s:I}", "docs", docs, "min_seq", (json_int_t)min_seq);
    lookalike_fanout_t f = {0};
    if (!body)
        return LOOKALIKE_ENOMEM;
    rc = fan(s, c, "fetch", body, need, token, &f, missing, err, errlen);
    for (size_t a = 0; rc == 0 && a < f.nanswers; a++) {
        json_t *items = json_object_get(f.answers[a].reply, "products"), *it;
        size_t j;
        if (!json_is_array(items)) {
            lookalike_errf(err, errlen, "node %s: a fetch answer without \"products\"", f.answers[a].node);
            rc = LOOKALIKE_EIO;
            break;
        }
        json_array_foreach(items, j, it)
        {
            json_t *d = json_object_get(it, "doc"), *p = json_object_get(it, "product");
            if (!json_is_integer(d) || !json_is_object(p) || !json_is_string(json_object_get(p, "id")))
                continue;
            for (size_t i = 0; i < nf; i++)
                if (!prods[i] && fused[i].id == (uint64_t)json_integer_value(d))
                    prods[i] = json_incref(p);
        }
    }
    lookalike_fanout_release(&f);
    json_decref(body);
    return rc;
}

int lookalike_svc_search(lookalike_svc_t *s, const char *coll, json_t *query, const void *image,
                         size_t image_len, json_t **out, char *err, size_t errlen)
{
    static const char *const allowed[] = {"text",   "product_id", "filters", "k",
                                          "offset", "weights",    "min_seq"};
    double t0 = now_ms();
    svc_plan_t p = {.exclude = UINT64_MAX};
    svc_hits_t lists[SIG_COUNT] = {{0}};
    lookalike_bm25_stats_t g;
    int have_g = 0;
    lookalike_fused_t *fused = NULL;
    json_t **prods = NULL, *body = NULL;
    float weights[SIG_COUNT] = {1, 1, 1, 1};
    long long k = 10, offset = 0, min_seq = 0;
    const char *product_id = NULL;
    uint8_t held[LOOKALIKE_SHARDS_MAX], need[LOOKALIKE_SHARDS_MAX], missing[LOOKALIKE_SHARDS_MAX] = {0};
    json_t *v, *filters = NULL;
    int rc = 0;
    svc_coll_t *c = svc_coll_find(s, coll);
    if (!c) {
        lookalike_errf(err, errlen, "no collection named \"%s\"", coll);
        return LOOKALIKE_ENOTFOUND;
    }
    if (!json_is_object(query)) {
        lookalike_errf(err, errlen, "the query must be a JSON object");
        return LOOKALIKE_EINVAL;
    }
    if (lookalike_json_only_keys(query, allowed, sizeof allowed / sizeof *allowed, err, errlen) != 0)
        return LOOKALIKE_EINVAL;
    if ((v = json_object_get(query, "text")) && !json_is_null(v)) {
        if (!(p.text = json_string_value(v))) {
            lookalike_errf(err, errlen, "field \"text\": expected a string");
            return LOOKALIKE_EINVAL;
        }
        if (strlen(p.text) > LOOKALIKE_QUERY_MAX) {
            lookalike_errf(err, errlen, "field \"text\": too large (at most %d bytes)", LOOKALIKE_QUERY_MAX);
            return LOOKALIKE_ETOOLARGE;
        }
        if (!p.text[strspn(p.text, " \t\r\n")])
            p.text = NULL;
    }
    if ((v = json_object_get(query, "product_id")) && !json_is_null(v)) {
        if (!(product_id = json_string_value(v)) || !lookalike_product_id_valid(product_id)) {
            lookalike_errf(err, errlen, "field \"product_id\": expected a product id string");
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
    if ((rc = svc_wait_seq(s, (uint64_t)min_seq, err, errlen)) != 0)
        return rc;
    if ((v = json_object_get(query, "filters")) && !json_is_null(v)) {
        filters = v;
        if ((rc = svc_filter_parse(v, &p.f, err, errlen)) != 0)
            goto out;
    }
    if (!image && !p.text && !product_id && !p.f.active) {
        lookalike_errf(err, errlen, "empty query: give an image, text, product_id or filters");
        rc = LOOKALIKE_EINVAL;
        goto out;
    }
    p.cand = (size_t)(offset + k);
    if (p.cand < 100)
        p.cand = 100;
    if (p.cand > LOOKALIKE_SVC_CANDIDATES_MAX)
        p.cand = LOOKALIKE_SVC_CANDIDATES_MAX;
    if (image) {
        if (!(p.qvec = malloc(s->dim * sizeof *p.qvec))) {
            rc = LOOKALIKE_ENOMEM;
            goto out;
        }
        if ((rc = svc_embed(s, image, image_len, p.qvec, err, errlen)) != 0)
            goto out;
    }
    if (product_id) {
        if (!(p.pvec = malloc(s->dim * sizeof *p.pvec))) {
            rc = LOOKALIKE_ENOMEM;
            goto out;
        }
        if ((rc = product_vector(s, c, product_id, p.pvec, &p.exclude, err, errlen)) != 0)
            goto out;
    }
    split_shards(c, held, need);
    int remote = 0;
    for (uint32_t i = 0; i < c->nshards; i++)
        remote |= need[i];
    uint64_t token = atomic_fetch_add(&s->fanout_token, 1);
    /* Text scores are comparable across shards only when every shard scores with the same
     * collection-wide figures (see lookalike_bm25_stats). */
    if (p.text && c->nshards > 1) {
        if ((rc = gather_stats(s, c, p.text, held, need, min_seq, token, &g, missing, err, errlen)) != 0)
            goto out;
        have_g = 1;
    }
    if ((rc = svc_run_local(s, c, &p, have_g ? &g : NULL, held, lists, err, errlen)) != 0)
        goto out;
    if (remote) {
        body = json_pack("{s:I,s:I}", "cand", (json_int_t)p.cand, "min_seq", (json_int_t)min_seq);
        if (body && p.text)
            json_object_set_new(body, "text", json_string(p.text));
        if (body && have_g)
            json_object_set_new(body, "text_stats", lookalike_wire_stats_encode(&g));
        if (body && p.qvec)
            json_object_set_new(body, "image", lookalike_wire_vector_encode(p.qvec, s->dim));
        if (body && p.pvec)
            json_object_set_new(body, "product", lookalike_wire_vector_encode(p.pvec, s->dim));
        if (body && p.exclude != UINT64_MAX)
            json_object_set_new(body, "exclude", json_integer((json_int_t)p.exclude));
        if (body && filters)
            json_object_set(body, "filters", filters);
        if (!body) {
            rc = LOOKALIKE_ENOMEM;
            goto out;
        }
        if ((rc = remote_signals(s, c, body, need, token, p.cand, lists, missing, err, errlen)) != 0)
            goto out;
    }
    lookalike_signal_t sigs[SIG_COUNT];
    int sig_of[SIG_COUNT];
    size_t nsig = 0;
    int present[SIG_COUNT] = {p.qvec != NULL, p.pvec != NULL, p.text != NULL,
                              !image && !p.text && !product_id};
    lookalike_hit_t *flat[SIG_COUNT] = {0};
    for (int i = 0; i < SIG_COUNT; i++) {
        if (!present[i])
            continue;
        svc_hits_merge(&lists[i], i, c->metric, p.cand);
        if (lists[i].n && !(flat[i] = malloc(lists[i].n * sizeof *flat[i]))) {
            rc = LOOKALIKE_ENOMEM;
            break;
        }
        for (size_t h = 0; h < lists[i].n; h++)
            flat[i][h] = (lookalike_hit_t){.id = lists[i].hits[h].doc, .score = lists[i].hits[h].score};
        sigs[nsig] = (lookalike_signal_t){svc_sig_names[i], flat[i], lists[i].n, weights[i]};
        sig_of[nsig++] = i;
    }
    size_t nf = 0, total = 0;
    if (rc == 0 && !(fused = calloc((size_t)k, sizeof *fused)))
        rc = LOOKALIKE_ENOMEM;
    lookalike_fuse_opts_t fo = {.k_rrf = LOOKALIKE_RRF_K, .k = (size_t)k, .offset = (size_t)offset};
    if (rc == 0)
        rc = lookalike_fuse(sigs, nsig, &fo, fused, &nf, &total, err, errlen);
    for (int i = 0; i < SIG_COUNT; i++)
        free(flat[i]);
    if (rc != 0)
        goto out;
    if (nf && !(prods = calloc(nf, sizeof *prods))) {
        rc = LOOKALIKE_ENOMEM;
        goto out;
    }
    if ((rc = fetch_page(s, c, fused, nf, lists, min_seq, token, prods, missing, err, errlen)) != 0)
        goto out;
    json_t *results = json_array();
    for (size_t i = 0; results && i < nf; i++) {
        const char *id = json_string_value(json_object_get(prods[i], "id"));
        if (!id)
            continue; /* deleted since the signals ran */
        json_t *why = json_object();
        for (size_t si = 0; why && si < nsig; si++)
            if (fused[i].rank[si])
                json_object_set_new(why, svc_sig_names[sig_of[si]],
                                    json_pack("{s:i,s:f}", "rank", (int)fused[i].rank[si], "score",
                                              (double)fused[i].signal_score[si]));
        json_array_append_new(results, json_pack("{s:s,s:f,s:o,s:O}", "id", id, "score", fused[i].score,
                                                 "why", why ? why : json_object(), "product", prods[i]));
    }
    *out = json_pack("{s:o,s:I,s:f}", "results", results ? results : json_array(), "total", (json_int_t)total,
                     "took_ms", now_ms() - t0);
    if (!*out)
        rc = LOOKALIKE_ENOMEM;
    else
        mark_partial(*out, c, missing);
out:
    for (size_t i = 0; prods && i < nf; i++)
        json_decref(prods[i]);
    free(prods);
    json_decref(body);
    if (have_g)
        lookalike_bm25_stats_release(&g);
    for (int i = 0; i < SIG_COUNT; i++)
        svc_hits_release(&lists[i]);
    svc_plan_release(&p);
    free(fused);
    return rc;
}

int lookalike_svc_facets(lookalike_svc_t *s, const char *coll, json_t **out, char *err, size_t errlen)
{
    svc_coll_t *c = svc_coll_find(s, coll);
    uint8_t held[LOOKALIKE_SHARDS_MAX], need[LOOKALIKE_SHARDS_MAX], missing[LOOKALIKE_SHARDS_MAX] = {0};
    if (!c) {
        lookalike_errf(err, errlen, "no collection named \"%s\"", coll);
        return LOOKALIKE_ENOTFOUND;
    }
    split_shards(c, held, need);
    json_t *acc = svc_facets_local(c, held), *body = json_object();
    lookalike_fanout_t f = {0};
    int rc = acc && body ? 0 : LOOKALIKE_ENOMEM;
    if (rc == 0)
        rc = fan(s, c, "facets", body, need, atomic_fetch_add(&s->fanout_token, 1), &f, missing, err, errlen);
    for (size_t i = 0; rc == 0 && i < f.nanswers; i++) {
        char e[256];
        if (lookalike_wire_facets_add(acc, f.answers[i].reply, e, sizeof e) != 0) {
            lookalike_errf(err, errlen, "node %s: %s", f.answers[i].node, e);
            rc = LOOKALIKE_EIO;
        }
    }
    lookalike_fanout_release(&f);
    json_decref(body);
    if (rc != 0) {
        json_decref(acc);
        return rc;
    }
    mark_partial(acc, c, missing);
    *out = acc;
    return 0;
}

int lookalike_svc_find(lookalike_svc_t *s, const char *coll, const char *id, json_t **out, char *err,
                       size_t errlen)
{
    svc_coll_t *c = svc_coll_find(s, coll);
    uint8_t held[LOOKALIKE_SHARDS_MAX], need[LOOKALIKE_SHARDS_MAX], missing[LOOKALIKE_SHARDS_MAX] = {0};
    *out = NULL;
    if (!c) {
        lookalike_errf(err, errlen, "no collection named \"%s\"", coll);
        return LOOKALIKE_ENOTFOUND;
    }
    if ((*out = lookalike_svc_get(s, coll, id)))
        return 0;
    split_shards(c, held, need);
    if (c->shard_key == LOOKALIKE_SHARD_KEY_ID) {
        /* The id names its shard: ask there only (nothing to ask when it is held here). */
        uint32_t sh = lookalike_shard_of(LOOKALIKE_SHARD_KEY_ID, c->nshards, id, NULL);
        int ask = need[sh];
        memset(need, 0, sizeof need);
        need[sh] = (uint8_t)ask;
    }
    json_t *body = json_pack("{s:s}", "id", id);
    lookalike_fanout_t f = {0};
    int rc =
        body ? fan(s, c, "get", body, need, atomic_fetch_add(&s->fanout_token, 1), &f, missing, err, errlen)
             : LOOKALIKE_ENOMEM;
    for (size_t i = 0; rc == 0 && !*out && i < f.nanswers; i++) {
        json_t *p = json_object_get(f.answers[i].reply, "product");
        if (json_is_object(p) && json_is_string(json_object_get(p, "id")))
            *out = json_incref(p);
    }
    lookalike_fanout_release(&f);
    json_decref(body);
    if (rc != 0 || *out)
        return rc;
    int any;
    json_t *m = missing_json(c, missing, &any);
    json_decref(m);
    if (any) {
        lookalike_errf(err, errlen, "product \"%s\" may be in a shard that no replica answered for; retry",
                       id);
        return LOOKALIKE_EAGAIN;
    }
    lookalike_errf(err, errlen, "no product \"%s\" in \"%s\"", id, coll);
    return LOOKALIKE_ENOTFOUND;
}
