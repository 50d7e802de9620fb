/*
 * The public calls common to every kind: creation, ids, tombstones, the writer lock, and the
 * single-query search path with its filter strategy. Kinds plug in through vindex_kind_ops_t.
 */
#include "vindex/index.h"
#include "vindex/ivf.h"
#include "vindex/store.h"
#include "vindex/wal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Below this many expected passing items a filtered search scans them exactly. */
#define EXACT_FILTER_ITEMS 2048
/* Results a query asks for beyond k when an upsert made it drop duplicates. */
#define RESULT_SPARE 4

void vindex_params_default(vindex_params_t *p, vindex_kind_t kind, vindex_metric_t metric, uint32_t dim)
{
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->metric = metric;
    p->dim = dim;
    p->capacity = 1u << 24;
    p->seed = 1;
    p->M = 16;
    p->ef_construction = 200;
    p->ef_search = 64;
    p->nlist = 1024;
    p->nprobe = 16;
}

static const vindex_kind_ops_t *kind_ops(vindex_kind_t kind)
{
    switch (kind) {
    case VINDEX_FLAT:
        return &vindex_flat_ops;
    case VINDEX_HNSW:
        return &vindex_hnsw_ops;
    case VINDEX_IVF_FLAT:
        return &vindex_ivf_ops;
    default:
        return NULL;
    }
}

static int check_params(const vindex_params_t *p, char *err, size_t errlen)
{
    if (p->dim < VINDEX_DIM_MIN || p->dim > VINDEX_DIM_MAX) {
        snprintf(err, errlen, "dim %u outside %d..%d", p->dim, VINDEX_DIM_MIN, VINDEX_DIM_MAX);
        return VINDEX_EINVAL;
    }
    if (p->metric != VINDEX_L2 && p->metric != VINDEX_IP && p->metric != VINDEX_COSINE) {
        snprintf(err, errlen, "unknown metric %d", (int)p->metric);
        return VINDEX_EINVAL;
    }
    if (!kind_ops(p->kind)) {
        snprintf(err, errlen, "index kind %d is not built", (int)p->kind);
        return VINDEX_EINVAL;
    }
    if (p->capacity < 1 || p->capacity >= VINDEX_SLOT_NONE) {
        snprintf(err, errlen, "capacity must be 1..%u", VINDEX_SLOT_NONE - 1);
        return VINDEX_EINVAL;
    }
    if (p->kind == VINDEX_HNSW && (p->M < 4 || p->M > 64 || p->ef_construction < 1 || p->ef_search < 1)) {
        snprintf(err, errlen, "hnsw needs M in 4..64 and ef_construction, ef_search >= 1");
        return VINDEX_EINVAL;
    }
    /* Each sizes a per-search array: a stray value must not become a gigabyte allocation. */
    if (p->kind == VINDEX_HNSW && (p->ef_construction > VINDEX_EF_MAX || p->ef_search > VINDEX_EF_MAX)) {
        snprintf(err, errlen, "ef_construction and ef_search too large (max %u)", VINDEX_EF_MAX);
        return VINDEX_ETOOLARGE;
    }
    if (p->sq8 && p->kind != VINDEX_IVF_FLAT) {
        snprintf(err, errlen, "sq8 is available for ivf_flat only");
        return VINDEX_EINVAL;
    }
    return 0;
}

vindex_t *vindex_new(const vindex_params_t *p, char *err, size_t errlen)
{
    if (!p || check_params(p, err, errlen))
        return NULL;
    vindex_t *ix = calloc(1, sizeof(*ix));
    if (!ix) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ix->p = *p;
    ix->kern = vindex_kernels();
    ix->neg_dot = p->metric != VINDEX_L2;
    ix->dist = ix->neg_dot ? ix->kern->ndot : ix->kern->l2sq;
    ix->row_floats = (p->dim + 15) / 16 * 16;
    ix->ops = kind_ops(p->kind);
    pthread_mutex_init(&ix->write_lock, NULL);
    if (vindex_idmap_init(&ix->ids, p->capacity, err, errlen))
        goto fail;
    if (vindex_region_init(&ix->ext_ids_region, p->capacity * sizeof(uint64_t), err, errlen))
        goto fail;
    ix->ext_ids = (uint64_t *)ix->ext_ids_region.base;
    if (vindex_region_init(&ix->flags_region, p->capacity, err, errlen))
        goto fail;
    ix->flags = ix->flags_region.base;
    ix->wbuf = aligned_alloc(64, ix->row_floats * sizeof(float));
    if (!ix->wbuf) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (ix->ops->init(ix, err, errlen))
        goto fail;
    return ix;
fail:
    vindex_free(ix);
    return NULL;
}

static void scratch_free_buffers(vindex_scratch_t *s)
{
    free(s->visited);
    free(s->cand);
    free(s->top);
    free(s->res);
    free(s->qbuf);
    free(s->kind_buf);
}

void vindex_free(vindex_t *ix)
{
    if (!ix)
        return;
    if (ix->impl)
        ix->ops->release(ix);
    vindex_store_close(ix);
    for (int i = 0; i < VINDEX_SCRATCH_POOL; i++)
        scratch_free_buffers(&ix->scratch[i]);
    free(ix->wbuf);
    vindex_region_release(&ix->flags_region);
    vindex_region_release(&ix->ext_ids_region);
    if (ix->ids.cur)
        vindex_idmap_release(&ix->ids);
    pthread_mutex_destroy(&ix->write_lock);
    free(ix);
}

const vindex_params_t *vindex_params(const vindex_t *ix)
{
    return &ix->p;
}

uint64_t vindex_count(const vindex_t *ix)
{
    return __atomic_load_n(&ix->n_live, __ATOMIC_ACQUIRE);
}

int vindex_contains(const vindex_t *ix, uint64_t id)
{
    return id != VINDEX_ID_NONE && vindex_idmap_get(&ix->ids, id) != VINDEX_SLOT_NONE;
}

size_t vindex_mem_bytes(const vindex_t *ix)
{
    size_t total = sizeof(*ix) + ix->row_floats * sizeof(float);
    total += vindex_region_mem(&ix->ext_ids_region) + vindex_region_mem(&ix->flags_region);
    total += vindex_idmap_mem(&ix->ids);
    total += ix->ops->mem_bytes(ix);
    return total;
}

int vindex_prepare_vector(const vindex_t *ix, const float *vec, float *out, int allow_zero, char *err,
                          size_t errlen)
{
    uint32_t dim = ix->p.dim;
    for (uint32_t i = 0; i < dim; i++) {
        if (!isfinite(vec[i])) {
            snprintf(err, errlen, "vector has a non-finite value at %u", i);
            return VINDEX_EINVAL;
        }
    }
    memcpy(out, vec, dim * sizeof(float));
    memset(out + dim, 0, (ix->row_floats - dim) * sizeof(float));
    if (ix->p.metric == VINDEX_COSINE) {
        float norm = sqrtf(ix->kern->dot(out, out, dim));
        if (!(norm > 0)) {
            if (allow_zero)
                return 0;
            snprintf(err, errlen, "cosine needs a non-zero vector");
            return VINDEX_EINVAL;
        }
        for (uint32_t i = 0; i < dim; i++)
            out[i] /= norm;
    }
    return 0;
}

/* Writer: stores a prepared vector in the next slot and publishes it under id. */
static int insert_locked(vindex_t *ix, uint64_t id, const float *prepared, char *err, size_t errlen)
{
    uint32_t slot = ix->next_slot;
    int rc = vindex_region_use(&ix->ext_ids_region, ((size_t)slot + 1) * sizeof(uint64_t), err, errlen);
    if (rc || (rc = vindex_region_use(&ix->flags_region, (size_t)slot + 1, err, errlen)))
        return rc;
    ix->ext_ids[slot] = id;
    rc = ix->ops->insert(ix, slot, prepared, err, errlen);
    if (rc)
        return rc;
    ix->next_slot = slot + 1;
    uint32_t old = vindex_idmap_get(&ix->ids, id);
    rc = vindex_idmap_set(&ix->ids, id, slot, err, errlen);
    if (rc) {
        /* The slot is linked but cannot be named: bury it. */
        __atomic_store_n(&ix->flags[slot], VINDEX_FLAG_DEAD, __ATOMIC_RELAXED);
        __atomic_store_n(&ix->n_slots, slot + 1, __ATOMIC_RELEASE);
        return rc;
    }
    __atomic_store_n(&ix->n_slots, slot + 1, __ATOMIC_RELEASE);
    if (old != VINDEX_SLOT_NONE)
        __atomic_fetch_or(&ix->flags[old], VINDEX_FLAG_DEAD, __ATOMIC_RELEASE);
    else
        __atomic_fetch_add(&ix->n_live, 1, __ATOMIC_RELEASE);
    return 0;
}

static int write_one(vindex_t *ix, uint64_t id, const float *vec, int replace, char *err, size_t errlen)
{
    if (!vec || id == VINDEX_ID_NONE) {
        snprintf(err, errlen, "%s", vec ? "id UINT64_MAX is reserved" : "vector is NULL");
        return VINDEX_EINVAL;
    }
    pthread_mutex_lock(&ix->write_lock);
    int rc = 0;
    if (!replace && vindex_idmap_get(&ix->ids, id) != VINDEX_SLOT_NONE) {
        snprintf(err, errlen, "id %llu exists", (unsigned long long)id);
        rc = VINDEX_EEXIST;
        goto fail;
    }
    rc = vindex_prepare_vector(ix, vec, ix->wbuf, 0, err, errlen);
    if (rc)
        goto fail;
    if (ix->next_slot >= ix->p.capacity) {
        snprintf(err, errlen, "index too large: capacity %llu reached", (unsigned long long)ix->p.capacity);
        rc = VINDEX_ETOOLARGE;
        goto fail;
    }
    rc = insert_locked(ix, id, ix->wbuf, err, errlen);
    uint64_t lsn = 0;
    if (!rc)
        rc = vindex_store_log(ix, VINDEX_WAL_INSERT, id, vec, &lsn, err, errlen);
fail:
    pthread_mutex_unlock(&ix->write_lock);
    /* Outside the lock, so concurrent writers share one log fsync. */
    if (!rc && lsn)
        rc = vindex_store_commit(ix, lsn, err, errlen);
    return rc;
}

int vindex_add(vindex_t *ix, uint64_t id, const float *vec, char *err, size_t errlen)
{
    return write_one(ix, id, vec, 0, err, errlen);
}

int vindex_upsert(vindex_t *ix, uint64_t id, const float *vec, char *err, size_t errlen)
{
    return write_one(ix, id, vec, 1, err, errlen);
}

int vindex_delete(vindex_t *ix, uint64_t id, char *err, size_t errlen)
{
    pthread_mutex_lock(&ix->write_lock);
    int rc = 0;
    uint32_t slot = id == VINDEX_ID_NONE ? VINDEX_SLOT_NONE : vindex_idmap_get(&ix->ids, id);
    if (slot == VINDEX_SLOT_NONE) {
        snprintf(err, errlen, "id %llu not found", (unsigned long long)id);
        rc = VINDEX_ENOTFOUND;
        goto fail;
    }
    __atomic_fetch_or(&ix->flags[slot], VINDEX_FLAG_DEAD, __ATOMIC_RELEASE);
    rc = vindex_idmap_set(&ix->ids, id, VINDEX_SLOT_NONE, err, errlen);
    __atomic_fetch_sub(&ix->n_live, 1, __ATOMIC_RELEASE);
    uint64_t lsn = 0;
    if (!rc)
        rc = vindex_store_log(ix, VINDEX_WAL_DELETE, id, NULL, &lsn, err, errlen);
fail:
    pthread_mutex_unlock(&ix->write_lock);
    if (!rc && lsn)
        rc = vindex_store_commit(ix, lsn, err, errlen);
    return rc;
}

vindex_scratch_t *vindex_scratch_acquire(vindex_t *ix)
{
    for (int i = 0; i < VINDEX_SCRATCH_POOL; i++) {
        if (!__atomic_exchange_n(&ix->scratch[i].busy, 1, __ATOMIC_ACQUIRE))
            return &ix->scratch[i];
    }
    vindex_scratch_t *s = calloc(1, sizeof(*s));
    if (s)
        s->heap = 1;
    return s;
}

void vindex_scratch_release(vindex_t *ix, vindex_scratch_t *s)
{
    (void)ix;
    if (s->heap) {
        scratch_free_buffers(s);
        free(s);
        return;
    }
    __atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
}

int vindex_check_search_params(const vindex_t *ix, const vindex_search_params_t *sp, char *err, size_t errlen)
{
    (void)ix;
    if (!sp || sp->k < 1) {
        snprintf(err, errlen, "k must be >= 1");
        return VINDEX_EINVAL;
    }
    if (sp->ef > VINDEX_EF_MAX) {
        snprintf(err, errlen, "ef too large (max %u)", VINDEX_EF_MAX);
        return VINDEX_ETOOLARGE;
    }
    if (sp->k > VINDEX_K_MAX) {
        snprintf(err, errlen, "k too large (max %u)", VINDEX_K_MAX);
        return VINDEX_ETOOLARGE;
    }
    const vindex_filter_t *f = sp->filter;
    if (f && !f->bitmap == !f->fn) {
        snprintf(err, errlen, "a filter needs exactly one of bitmap and fn");
        return VINDEX_EINVAL;
    }
    return 0;
}

/* ef for a filtered graph walk. The walk already goes on until ef passing items are found,
 * which visits about 1/sel times more nodes; widening ef by 1/sqrt(sel) more makes up for the
 * sparser passing neighbourhoods without paying 1/sel twice. */
static uint32_t widen_ef(uint32_t ef, double sel)
{
    double w = (double)ef / sqrt(sel > 0.001 ? sel : 0.001);
    return w > VINDEX_EF_MAX ? VINDEX_EF_MAX : (uint32_t)w;
}

/* Runs the kind's search, or the exact scan when a filter lets few items through. */
static int run_query(vindex_t *ix, vindex_scratch_t *s, vindex_query_t *q, vindex_heap_t *res)
{
    if (q->ef < q->k)
        q->ef = q->k;
    if (q->filter && ix->p.kind != VINDEX_FLAT) {
        double sel = vindex_filter_selectivity(ix, q->filter, q->n_slots);
        double expect = sel * (double)__atomic_load_n(&ix->n_live, __ATOMIC_RELAXED);
        if (expect <= EXACT_FILTER_ITEMS)
            return vindex_exact_filtered(ix, q, res);
        q->ef = widen_ef(q->ef, sel);
    }
    return ix->ops->search(ix, q, s, res);
}

/*
 * Turns the kind's slots into hits. A slot whose id now names another slot was replaced by an
 * upsert while the query ran: the id is scored again at its current vector and returned once
 * (the old and the new slot can both be reachable for a moment). An id deleted meanwhile is
 * returned as of the query's start. Returns the hit count; *dropped counts duplicates skipped.
 */
static size_t collect_hits(vindex_t *ix, const float *query, const vindex_pair_t *sorted, size_t n,
                           uint32_t k, vindex_hit_t *hits, size_t *dropped)
{
    size_t out = 0;
    int rescored = 0;
    *dropped = 0;
    for (size_t i = 0; i < n && out < k; i++) {
        uint32_t slot = sorted[i].slot;
        uint64_t id = ix->ext_ids[slot];
        uint32_t now = vindex_idmap_get(&ix->ids, id);
        float d = sorted[i].d;
        int moved = now != slot && now != VINDEX_SLOT_NONE;
        if (moved || rescored) {
            int seen = 0;
            for (size_t j = 0; j < out && !seen; j++)
                seen = hits[j].id == id;
            if (seen) {
                (*dropped)++;
                continue;
            }
        }
        if (moved) {
            d = vindex_distance(ix, query, ix->ops->vector(ix, now));
            rescored = 1;
        }
        /* Insertion keeps hits sorted when a rescored id moves. */
        size_t j = out++;
        float score = ix->neg_dot ? -d : d;
        while (j > 0 && (ix->neg_dot ? hits[j - 1].score < score : hits[j - 1].score > score)) {
            hits[j] = hits[j - 1];
            j--;
        }
        hits[j].id = id;
        hits[j].score = score;
    }
    return out;
}

int vindex_search_scratch(vindex_t *ix, vindex_scratch_t *s, const float *query,
                          const vindex_search_params_t *sp, vindex_hit_t *hits)
{
    char err[8];
    uint32_t n_slots = __atomic_load_n(&ix->n_slots, __ATOMIC_ACQUIRE);
    if (n_slots == 0 || __atomic_load_n(&ix->n_live, __ATOMIC_ACQUIRE) == 0)
        return 0;
    if (!s->qbuf) {
        s->qbuf = aligned_alloc(64, ix->row_floats * sizeof(float));
        if (!s->qbuf)
            return VINDEX_ENOMEM;
    }
    /* A zero query under cosine has no direction: it stays zero and scores 0 everywhere. */
    if (vindex_prepare_vector(ix, query, s->qbuf, 1, err, sizeof(err)))
        return VINDEX_EINVAL;
    size_t out = 0;
    /* Duplicates dropped during an upsert leave fewer than k hits: ask once more for spares. */
    for (uint32_t spare = 0;; spare = RESULT_SPARE) {
        vindex_query_t q = {
            .q = s->qbuf,
            .k = sp->k + spare,
            .ef = sp->ef ? sp->ef : ix->p.ef_search,
            .nprobe = sp->nprobe ? sp->nprobe : ix->p.nprobe,
            .filter = sp->filter,
            .n_slots = n_slots,
        };
        if (vindex_scratch_reserve((void **)&s->res, &s->res_cap, q.k, sizeof(vindex_pair_t)))
            return VINDEX_ENOMEM;
        vindex_heap_t res = {.v = s->res, .n = 0};
        int rc = run_query(ix, s, &q, &res);
        if (rc)
            return rc;
        if (vindex_scratch_reserve((void **)&s->top, &s->top_cap, res.n, sizeof(vindex_pair_t)))
            return VINDEX_ENOMEM;
        size_t full = res.n == q.k, dropped;
        size_t n = vindex_maxheap_drain_sorted(&res, s->top);
        out = collect_hits(ix, s->qbuf, s->top, n, sp->k, hits, &dropped);
        if (spare || !dropped || out == sp->k || !full)
            break;
    }
    return (int)out;
}

int vindex_search(vindex_t *ix, const float *query, const vindex_search_params_t *sp, vindex_hit_t *hits,
                  char *err, size_t errlen)
{
    int rc = vindex_check_search_params(ix, sp, err, errlen);
    if (rc)
        return rc;
    if (!query || !hits) {
        snprintf(err, errlen, "query and hits must not be NULL");
        return VINDEX_EINVAL;
    }
    vindex_scratch_t *s = vindex_scratch_acquire(ix);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return VINDEX_ENOMEM;
    }
    rc = vindex_search_scratch(ix, s, query, sp, hits);
    vindex_scratch_release(ix, s);
    if (rc < 0)
        snprintf(err, errlen, "%s", rc == VINDEX_EINVAL ? "query has a non-finite value" : "out of memory");
    return rc;
}
