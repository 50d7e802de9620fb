/*
 * ivf_flat: a k-means coarse quantiser of nlist centroids and one inverted list per centroid.
 * A query ranks the centroids, scans the nprobe nearest lists and keeps the best k; with sq8
 * the lists hold int8 codes, the best `rerank` candidates are re-scored with float vectors.
 *
 * Lists grow without moving (readers scan them while the writer appends): list storage is a
 * chain of blocks, block b holding IVF_BLOCK0 << b entries, each block laid out as the slot
 * numbers of its entries then their rows (float rows of row_floats, or sq8 codes). An entry is
 * written under the list's mutex and published by a release store of the list length, so a
 * scan that loads the length with acquire only reads complete entries.
 */
#include "vindex/ivf.h"

#include "vindex/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IVF_BLOCK0 64u
#define IVF_MAX_BLOCKS 26
/* Training sample per list (FAISS warns below 39) and Lloyd iterations. */
#define IVF_TRAIN_PER_LIST 64u
#define IVF_KMEANS_ITERS 10
/* Largest nlist, and largest centroid table in floats ("too large" past them). */
#define IVF_NLIST_MAX (1u << 16)
#define IVF_CENTROID_FLOATS_MAX (1u << 26)
/* Filters that fewer items than this pass are checked before each distance, not after. */
#define FILTER_FIRST_BELOW 0.5

typedef struct {
    pthread_mutex_t mu; /* batch threads appending to the same list */
    uint32_t n;         /* published entries (atomic) */
    uint8_t *block[IVF_MAX_BLOCKS];
} ivf_list_t;

typedef struct {
    uint32_t nlist;
    uint32_t trained;      /* atomic: centroids are set */
    float *centroids;      /* nlist rows of row_floats, 64-byte aligned */
    ivf_list_t *lists;     /* nlist */
    size_t entry_bytes;    /* bytes per entry row in a block */
    size_t block_bytes;    /* allocated list memory, for mem_bytes (atomic) */
    vindex_region_t where; /* uint64_t per slot: list << 32 | position */
    int sq8;
    vindex_sq8_t sq;
    vindex_region_t fvecs; /* sq8: float rows by slot, for vector() and re-ranking */
    const float *ext_vecs; /* sq8 after a reload: float vectors of slots < ext_n, mapped from disk */
    uint32_t ext_n;
} ivf_t;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rand_unit(uint64_t *s)
{
    return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

static size_t block_cap(uint32_t b)
{
    return (size_t)IVF_BLOCK0 << b;
}

static size_t block_slots_bytes(uint32_t b)
{
    return (block_cap(b) * sizeof(uint32_t) + 63) / 64 * 64;
}

static void pos_split(uint32_t pos, uint32_t *b, uint32_t *i)
{
    uint32_t q = pos / IVF_BLOCK0 + 1;
    uint32_t bb = 31u - (uint32_t)__builtin_clz(q);
    *b = bb;
    *i = pos - IVF_BLOCK0 * ((1u << bb) - 1u);
}

static const uint8_t *entry_row(const ivf_t *v, const ivf_list_t *l, uint32_t pos)
{
    uint32_t b, i;
    pos_split(pos, &b, &i);
    return l->block[b] + block_slots_bytes(b) + (size_t)i * v->entry_bytes;
}

static int ivf_init(vindex_t *ix, char *err, size_t errlen)
{
    const vindex_params_t *p = &ix->p;
    if (p->nlist == 0 || p->nlist > IVF_NLIST_MAX) {
        snprintf(err, errlen, "ivf_flat: nlist must be 1..%u", IVF_NLIST_MAX);
        return VINDEX_EINVAL;
    }
    if ((uint64_t)p->nlist * ix->row_floats > IVF_CENTROID_FLOATS_MAX) {
        snprintf(err, errlen, "ivf_flat: nlist * dim too large (%u * %u)", p->nlist, p->dim);
        return VINDEX_ETOOLARGE;
    }
    ivf_t *v = calloc(1, sizeof(*v));
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return VINDEX_ENOMEM;
    }
    v->nlist = p->nlist;
    v->sq8 = p->sq8 != 0;
    v->entry_bytes = v->sq8 ? ((size_t)p->dim + 15) / 16 * 16 : (size_t)ix->row_floats * sizeof(float);
    v->centroids = aligned_alloc(64, (size_t)v->nlist * ix->row_floats * sizeof(float));
    v->lists = calloc(v->nlist, sizeof(*v->lists));
    int rc = VINDEX_ENOMEM;
    if (!v->centroids || !v->lists) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memset(v->centroids, 0, (size_t)v->nlist * ix->row_floats * sizeof(float));
    for (uint32_t l = 0; l < v->nlist; l++)
        pthread_mutex_init(&v->lists[l].mu, NULL);
    rc = vindex_region_init(&v->where, sizeof(uint64_t) * p->capacity, err, errlen);
    if (rc)
        goto fail;
    if (v->sq8) {
        rc = vindex_region_init(&v->fvecs, (size_t)ix->row_floats * sizeof(float) * p->capacity, err, errlen);
        if (rc)
            goto fail;
    }
    ix->impl = v;
    return 0;
fail:
    if (v->lists)
        for (uint32_t l = 0; l < v->nlist; l++)
            pthread_mutex_destroy(&v->lists[l].mu);
    vindex_region_release(&v->where);
    free(v->lists);
    free(v->centroids);
    free(v);
    return rc;
}

static void ivf_release(vindex_t *ix)
{
    ivf_t *v = ix->impl;
    if (!v)
        return;
    for (uint32_t l = 0; l < v->nlist; l++) {
        for (int b = 0; b < IVF_MAX_BLOCKS; b++)
            free(v->lists[l].block[b]);
        pthread_mutex_destroy(&v->lists[l].mu);
    }
    free(v->lists);
    free(v->centroids);
    vindex_region_release(&v->where);
    vindex_region_release(&v->fvecs);
    vindex_sq8_release(&v->sq);
    free(v);
    ix->impl = NULL;
}

/* Distance used to pick a list: the index metric against the centroid. */
static uint32_t nearest_list(const vindex_t *ix, const ivf_t *v, const float *vec)
{
    uint32_t best = 0;
    float bd = INFINITY;
    for (uint32_t l = 0; l < v->nlist; l++) {
        float d = vindex_distance(ix, vec, v->centroids + (size_t)l * ix->row_floats);
        if (d < bd) {
            bd = d;
            best = l;
        }
    }
    return best;
}

int vindex_ivf_insert_into(vindex_t *ix, uint32_t slot, const float *vec, uint32_t list, char *err,
                           size_t errlen)
{
    ivf_t *v = ix->impl;
    int rc = vindex_region_use(&v->where, ((size_t)slot + 1) * sizeof(uint64_t), err, errlen);
    if (rc)
        return rc;
    if (v->sq8 && slot >= v->ext_n) {
        size_t row = (size_t)ix->row_floats * sizeof(float);
        rc = vindex_region_use(&v->fvecs, ((size_t)slot + 1) * row, err, errlen);
        if (rc)
            return rc;
        memcpy(v->fvecs.base + (size_t)slot * row, vec, sizeof(float) * ix->p.dim);
    }
    ivf_list_t *l = &v->lists[list];
    pthread_mutex_lock(&l->mu);
    uint32_t pos = l->n, b, i;
    pos_split(pos, &b, &i);
    if (b >= IVF_MAX_BLOCKS) {
        pthread_mutex_unlock(&l->mu);
        snprintf(err, errlen, "ivf_flat: list %u too large", list);
        return VINDEX_ETOOLARGE;
    }
    if (!l->block[b]) {
        size_t bytes = block_slots_bytes(b) + block_cap(b) * v->entry_bytes;
        uint8_t *blk = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!blk) {
            pthread_mutex_unlock(&l->mu);
            snprintf(err, errlen, "out of memory");
            return VINDEX_ENOMEM;
        }
        l->block[b] = blk;
        __atomic_fetch_add(&v->block_bytes, bytes, __ATOMIC_RELAXED);
    }
    ((uint32_t *)(void *)l->block[b])[i] = slot;
    uint8_t *row = (uint8_t *)entry_row(v, l, pos);
    if (v->sq8) {
        vindex_sq8_encode(&v->sq, vec, row);
    } else {
        memcpy(row, vec, sizeof(float) * ix->p.dim);
        memset(row + sizeof(float) * ix->p.dim, 0, v->entry_bytes - sizeof(float) * ix->p.dim);
    }
    ((uint64_t *)(void *)v->where.base)[slot] = (uint64_t)list << 32 | pos;
    __atomic_store_n(&l->n, pos + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

static int ivf_insert(vindex_t *ix, uint32_t slot, const float *vec, char *err, size_t errlen)
{
    ivf_t *v = ix->impl;
    if (!__atomic_load_n(&v->trained, __ATOMIC_ACQUIRE)) {
        snprintf(err, errlen, "ivf_flat: train the index first (vindex_train, or vindex_add_batch)");
        return VINDEX_ESTATE;
    }
    return vindex_ivf_insert_into(ix, slot, vec, nearest_list(ix, v, vec), err, errlen);
}

static const float *ivf_vector(const vindex_t *ix, uint32_t slot)
{
    const ivf_t *v = ix->impl;
    if (v->sq8) {
        if (slot < v->ext_n)
            return v->ext_vecs + (size_t)slot * ix->p.dim;
        return (const float *)(const void *)(v->fvecs.base + (size_t)slot * ix->row_floats * sizeof(float));
    }
    uint64_t w = ((const uint64_t *)(const void *)v->where.base)[slot];
    return (const float *)(const void *)entry_row(v, &v->lists[w >> 32], (uint32_t)w);
}

/* The nprobe nearest lists, nearest first, in out (a pair array of nlist). */
static uint32_t rank_lists(const vindex_t *ix, const ivf_t *v, const float *q, uint32_t nprobe,
                           vindex_pair_t *out)
{
    vindex_heap_t h = {out, 0};
    for (uint32_t l = 0; l < v->nlist; l++)
        vindex_maxheap_offer(&h, nprobe, vindex_distance(ix, q, v->centroids + (size_t)l * ix->row_floats),
                             l);
    size_t n = h.n;
    /* In-place heapsort: each popped maximum goes to the slot the heap just vacated. */
    while (h.n > 0) {
        vindex_pair_t top = h.v[0];
        vindex_maxheap_pop(&h);
        out[h.n] = top;
    }
    return (uint32_t)n;
}

/* May the entry for `slot` be returned (published, live, passing the filter)? */
static inline int entry_ok(const vindex_t *ix, const vindex_query_t *q, uint32_t slot)
{
    return slot < q->n_slots && vindex_accept(ix, slot, q->filter);
}

/* With `filter_first` the filter is asked before the distance is computed: when most items
 * fail it, that skips most distances (a vector costs far more than a bitmap probe); when most
 * pass, asking only about the few that beat the k-th best is cheaper. */
static void scan_list_float(vindex_t *ix, const ivf_t *v, const ivf_list_t *l, const vindex_query_t *q,
                            int filter_first, vindex_heap_t *res)
{
    uint32_t n = __atomic_load_n(&l->n, __ATOMIC_ACQUIRE);
    for (uint32_t b = 0, done = 0; done < n; b++) {
        uint32_t cnt = (uint32_t)(block_cap(b) < n - done ? block_cap(b) : n - done);
        const uint32_t *slots = (const uint32_t *)(const void *)l->block[b];
        const uint8_t *rows = l->block[b] + block_slots_bytes(b);
        for (uint32_t i = 0; i < cnt; i++) {
            if (i + 2 < cnt)
                __builtin_prefetch(rows + (size_t)(i + 2) * v->entry_bytes);
            if (filter_first && !entry_ok(ix, q, slots[i]))
                continue;
            float d =
                vindex_distance(ix, q->q, (const float *)(const void *)(rows + (size_t)i * v->entry_bytes));
            if (res->n == q->k && d > res->v[0].d)
                continue;
            if (filter_first || entry_ok(ix, q, slots[i]))
                vindex_maxheap_offer(res, q->k, d, slots[i]);
        }
        done += cnt;
    }
}

/* (d, slot) ordered: ties in quantised distances are common, and breaking them by slot makes
 * the candidate set independent of list order (which parallel inserts do not fix). */
static int pair_worse(float da, uint32_t sa, float db, uint32_t sb)
{
    return da > db || (da == db && sa > sb);
}

static void cand_offer(vindex_heap_t *h, size_t cap, float d, uint32_t slot)
{
    vindex_pair_t *v = h->v;
    size_t i;
    if (h->n < cap) {
        i = h->n++;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!pair_worse(d, slot, v[p].d, v[p].slot))
                break;
            v[i] = v[p];
            i = p;
        }
    } else {
        if (!pair_worse(v[0].d, v[0].slot, d, slot))
            return;
        size_t n = h->n;
        i = 0;
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= n)
                break;
            if (c + 1 < n && pair_worse(v[c + 1].d, v[c + 1].slot, v[c].d, v[c].slot))
                c++;
            if (!pair_worse(v[c].d, v[c].slot, d, slot))
                break;
            v[i] = v[c];
            i = c;
        }
    }
    v[i].d = d;
    v[i].slot = slot;
}

static void scan_list_sq8(vindex_t *ix, const ivf_t *v, const ivf_list_t *l, const vindex_query_t *q,
                          int filter_first, vindex_heap_t *cand, size_t ncand)
{
    uint32_t n = __atomic_load_n(&l->n, __ATOMIC_ACQUIRE);
    const vindex_kernels_t *k = ix->kern;
    for (uint32_t b = 0, done = 0; done < n; b++) {
        uint32_t cnt = (uint32_t)(block_cap(b) < n - done ? block_cap(b) : n - done);
        const uint32_t *slots = (const uint32_t *)(const void *)l->block[b];
        const uint8_t *rows = l->block[b] + block_slots_bytes(b);
        for (uint32_t i = 0; i < cnt; i++) {
            if (filter_first && !entry_ok(ix, q, slots[i]))
                continue;
            const uint8_t *c = rows + (size_t)i * v->entry_bytes;
            float d = ix->neg_dot ? -k->dot_u8(q->q, c, v->sq.scale, v->sq.bias, ix->p.dim)
                                  : k->l2sq_u8(q->q, c, v->sq.scale, v->sq.bias, ix->p.dim);
            if (cand->n == ncand && d > cand->v[0].d)
                continue;
            if (filter_first || entry_ok(ix, q, slots[i]))
                cand_offer(cand, ncand, d, slots[i]);
        }
        done += cnt;
    }
}

static int ivf_search(vindex_t *ix, const vindex_query_t *q, vindex_scratch_t *s, vindex_heap_t *res)
{
    ivf_t *v = ix->impl;
    if (!__atomic_load_n(&v->trained, __ATOMIC_ACQUIRE) || q->n_slots == 0)
        return 0;
    uint32_t nprobe = q->nprobe ? q->nprobe : ix->p.nprobe;
    if (nprobe == 0)
        nprobe = 1;
    int filter_first = 0;
    if (q->filter) {
        /* Probe enough lists to meet about 2k passing items; past half the lists an exact scan
         * of the passing items is cheaper and always complete. */
        double sel = vindex_filter_selectivity(ix, q->filter, q->n_slots);
        filter_first = sel < FILTER_FIRST_BELOW;
        double per_list = (double)q->n_slots / v->nlist;
        double want = 2.0 * q->k / (sel * per_list + 1e-12);
        if (want > nprobe)
            nprobe = want >= v->nlist ? v->nlist : (uint32_t)ceil(want);
        if ((uint64_t)nprobe * 2 > v->nlist)
            return vindex_exact_filtered(ix, q, res);
    }
    if (nprobe > v->nlist)
        nprobe = v->nlist;
    int rc = vindex_scratch_reserve(&s->kind_buf, &s->kind_cap, (size_t)v->nlist * sizeof(vindex_pair_t), 1);
    if (rc)
        return rc;
    vindex_pair_t *order = s->kind_buf;
    uint32_t np = rank_lists(ix, v, q->q, nprobe, order);

    if (!v->sq8) {
        for (uint32_t i = 0; i < np; i++)
            scan_list_float(ix, v, &v->lists[order[i].slot], q, filter_first, res);
    } else {
        size_t ncand = ix->p.rerank ? ix->p.rerank : 4u * q->k;
        if (ncand < q->k)
            ncand = q->k;
        /* More candidates than slots cannot exist: that also bounds a huge rerank setting. */
        if (ncand > q->n_slots)
            ncand = q->n_slots;
        rc = vindex_scratch_reserve((void **)&s->cand, &s->cand_cap, ncand, sizeof(vindex_pair_t));
        if (rc)
            return rc;
        vindex_heap_t cand = {s->cand, 0};
        for (uint32_t i = 0; i < np; i++)
            scan_list_sq8(ix, v, &v->lists[order[i].slot], q, filter_first, &cand, ncand);
        for (size_t i = 0; i < cand.n; i++) {
            uint32_t slot = cand.v[i].slot;
            vindex_maxheap_offer(res, q->k, vindex_distance(ix, q->q, ivf_vector(ix, slot)), slot);
        }
    }
    /* Fewer than k found in the probed lists (small index, or a filter that few pass there):
     * the exact scan is the only way to return every item that qualifies. */
    if (res->n < q->k && np < v->nlist) {
        res->n = 0;
        return vindex_exact_filtered(ix, q, res);
    }
    return 0;
}

static size_t ivf_mem(const vindex_t *ix)
{
    const ivf_t *v = ix->impl;
    size_t m = sizeof(*v) + (size_t)v->nlist * (ix->row_floats * sizeof(float) + sizeof(ivf_list_t));
    m += __atomic_load_n(&v->block_bytes, __ATOMIC_RELAXED);
    m += vindex_region_mem(&v->where) + vindex_region_mem(&v->fvecs);
    if (v->sq8)
        m += 2 * sizeof(float) * ix->p.dim;
    return m;
}

const vindex_kind_ops_t vindex_ivf_ops = {
    .name = "ivf_flat",
    .init = ivf_init,
    .release = ivf_release,
    .insert = ivf_insert,
    .parallel_insert = 1,
    .search = ivf_search,
    .vector = ivf_vector,
    .mem_bytes = ivf_mem,
};

/* ---- training ---------------------------------------------------------------------------- */

typedef struct {
    const vindex_t *ix;
    const float *x;   /* m rows of dim */
    const float *cen; /* nlist rows of row_floats */
    uint32_t nlist, dim, row;
    int spherical;
    uint32_t *assign;
} assign_ctx_t;

static float train_dist(const assign_ctx_t *c, const float *a, const float *b)
{
    return c->spherical ? -c->ix->kern->dot(a, b, c->dim) : c->ix->kern->l2sq(a, b, c->dim);
}

static int assign_one(void *ctx, size_t i, unsigned thread)
{
    (void)thread;
    assign_ctx_t *c = ctx;
    const float *x = c->x + i * c->dim;
    uint32_t best = 0;
    float bd = INFINITY;
    for (uint32_t l = 0; l < c->nlist; l++) {
        float d = train_dist(c, x, c->cen + (size_t)l * c->row);
        if (d < bd) {
            bd = d;
            best = l;
        }
    }
    c->assign[i] = best;
    return 0;
}

static void normalise(float *x, uint32_t dim)
{
    double s = 0;
    for (uint32_t d = 0; d < dim; d++)
        s += (double)x[d] * x[d];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (uint32_t d = 0; d < dim; d++)
            x[d] *= inv;
    }
}

/* k-means++: each next centre drawn with probability proportional to the squared distance to
 * the nearest centre chosen so far. */
static void kmeanspp(const assign_ctx_t *c, float *cen, size_t m, uint64_t *rng, float *mind)
{
    size_t first = (size_t)(splitmix64(rng) % m);
    memcpy(cen, c->x + first * c->dim, sizeof(float) * c->dim);
    for (size_t i = 0; i < m; i++)
        mind[i] = INFINITY;
    for (uint32_t l = 1; l < c->nlist; l++) {
        const float *last = cen + (size_t)(l - 1) * c->row;
        double total = 0;
        for (size_t i = 0; i < m; i++) {
            float d = c->ix->kern->l2sq(c->x + i * c->dim, last, c->dim);
            if (d < mind[i])
                mind[i] = d;
            total += mind[i];
        }
        size_t pick = (size_t)(splitmix64(rng) % m);
        if (total > 0) {
            double r = rand_unit(rng) * total, acc = 0;
            for (size_t i = 0; i < m; i++) {
                acc += mind[i];
                if (acc >= r) {
                    pick = i;
                    break;
                }
            }
        }
        memcpy(cen + (size_t)l * c->row, c->x + pick * c->dim, sizeof(float) * c->dim);
    }
}

int vindex_ivf_train_locked(vindex_t *ix, const float *vecs, size_t n, char *err, size_t errlen)
{
    if (ix->ops != &vindex_ivf_ops) {
        snprintf(err, errlen, "vindex_train: only ivf_flat indexes are trained");
        return VINDEX_EINVAL;
    }
    ivf_t *v = ix->impl;
    if (__atomic_load_n(&v->trained, __ATOMIC_ACQUIRE)) {
        snprintf(err, errlen, "ivf_flat: already trained");
        return VINDEX_ESTATE;
    }
    if (n < v->nlist) {
        snprintf(err, errlen, "ivf_flat: %zu training vectors for %u lists (need at least nlist)", n,
                 v->nlist);
        return VINDEX_EINVAL;
    }
    uint32_t dim = ix->p.dim, row = ix->row_floats, nlist = v->nlist;
    uint64_t rng = ix->p.seed ^ 0x1f0c4a5e2b3d6978ull;
    size_t m = n < (size_t)nlist * IVF_TRAIN_PER_LIST ? n : (size_t)nlist * IVF_TRAIN_PER_LIST;
    int rc = VINDEX_ENOMEM;
    float *x = malloc(sizeof(float) * m * dim);
    size_t *idx = malloc(sizeof(size_t) * n);
    float *cen = aligned_alloc(64, sizeof(float) * (size_t)nlist * row);
    uint32_t *assign = malloc(sizeof(uint32_t) * m);
    uint32_t *counts = malloc(sizeof(uint32_t) * nlist);
    double *sums = malloc(sizeof(double) * (size_t)nlist * dim);
    float *mind = malloc(sizeof(float) * m);
    if (!x || !idx || !cen || !assign || !counts || !sums || !mind) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* A seeded partial Fisher-Yates shuffle picks the sample: same seed, same centroids. */
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t i = 0; i < m; i++) {
        size_t j = i + (size_t)(splitmix64(&rng) % (n - i));
        size_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        memcpy(x + i * dim, vecs + idx[i] * dim, sizeof(float) * dim);
        if (ix->p.metric == VINDEX_COSINE)
            normalise(x + i * dim, dim);
    }
    memset(cen, 0, sizeof(float) * (size_t)nlist * row);
    assign_ctx_t c = {ix, x, cen, nlist, dim, row, ix->p.metric == VINDEX_COSINE, assign};
    kmeanspp(&c, cen, m, &rng, mind);
    for (int it = 0; it < IVF_KMEANS_ITERS; it++) {
        rc = vindex_parallel_for(vindex_threads(ix), m, assign_one, &c);
        if (rc) {
            snprintf(err, errlen, "ivf_flat: training failed");
            goto fail;
        }
        memset(counts, 0, sizeof(uint32_t) * nlist);
        memset(sums, 0, sizeof(double) * (size_t)nlist * dim);
        for (size_t i = 0; i < m; i++) {
            counts[assign[i]]++;
            double *s = sums + (size_t)assign[i] * dim;
            const float *xi = x + i * dim;
            for (uint32_t d = 0; d < dim; d++)
                s[d] += xi[d];
        }
        for (uint32_t l = 0; l < nlist; l++) {
            float *cl = cen + (size_t)l * row;
            if (counts[l] == 0) {
                /* An empty list restarts at a random sample point rather than staying dead. */
                memcpy(cl, x + (size_t)(splitmix64(&rng) % m) * dim, sizeof(float) * dim);
                continue;
            }
            for (uint32_t d = 0; d < dim; d++)
                cl[d] = (float)(sums[(size_t)l * dim + d] / counts[l]);
            if (c.spherical)
                normalise(cl, dim);
        }
    }
    if (v->sq8) {
        rc = vindex_sq8_train(&v->sq, dim, x, m, dim, err, errlen);
        if (rc)
            goto fail;
    }
    memcpy(v->centroids, cen, sizeof(float) * (size_t)nlist * row);
    __atomic_store_n(&v->trained, 1, __ATOMIC_RELEASE);
    /* The log holds inserts, not training: a durable index snapshots its centroids now, so
     * replaying later inserts never meets an untrained index. */
    rc = vindex_store_checkpoint_locked(ix, err, errlen);
fail:
    free(x);
    free(idx);
    free(cen);
    free(assign);
    free(counts);
    free(sums);
    free(mind);
    return rc;
}

int vindex_train(vindex_t *ix, const float *vecs, size_t n, char *err, size_t errlen)
{
    pthread_mutex_lock(&ix->write_lock);
    int rc = vindex_ivf_train_locked(ix, vecs, n, err, errlen);
    pthread_mutex_unlock(&ix->write_lock);
    return rc;
}

int vindex_ivf_trained(const vindex_t *ix)
{
    const ivf_t *v = ix->impl;
    return ix->ops == &vindex_ivf_ops && __atomic_load_n(&v->trained, __ATOMIC_ACQUIRE);
}

uint32_t vindex_ivf_nlist(const vindex_t *ix)
{
    return ((const ivf_t *)ix->impl)->nlist;
}

const float *vindex_ivf_centroid(const vindex_t *ix, uint32_t list)
{
    const ivf_t *v = ix->impl;
    return v->centroids + (size_t)list * ix->row_floats;
}

uint32_t vindex_ivf_list_of(const vindex_t *ix, uint32_t slot)
{
    const ivf_t *v = ix->impl;
    return (uint32_t)(((const uint64_t *)(const void *)v->where.base)[slot] >> 32);
}

const vindex_sq8_t *vindex_ivf_sq8(const vindex_t *ix)
{
    const ivf_t *v = ix->impl;
    return v->sq8 ? &v->sq : NULL;
}

int vindex_ivf_load_trained(vindex_t *ix, const float *centroids, const float *sq_bias, const float *sq_scale,
                            const float *vecs, uint32_t n_vecs, char *err, size_t errlen)
{
    ivf_t *v = ix->impl;
    if (v->trained) {
        snprintf(err, errlen, "ivf_flat: already trained");
        return VINDEX_ESTATE;
    }
    for (size_t i = 0; i < (size_t)v->nlist * ix->p.dim; i++) {
        if (!isfinite(centroids[i])) {
            snprintf(err, errlen, "ivf_flat: non-finite centroid value");
            return VINDEX_ECORRUPT;
        }
    }
    if (v->sq8) {
        int rc = vindex_sq8_init_from(&v->sq, ix->p.dim, sq_bias, sq_scale, err, errlen);
        if (rc)
            return rc;
        v->ext_vecs = vecs;
        v->ext_n = vecs ? n_vecs : 0;
    }
    for (uint32_t l = 0; l < v->nlist; l++)
        memcpy(v->centroids + (size_t)l * ix->row_floats, centroids + (size_t)l * ix->p.dim,
               sizeof(float) * ix->p.dim);
    __atomic_store_n(&v->trained, 1, __ATOMIC_RELEASE);
    return 0;
}
