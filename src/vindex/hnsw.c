/*
 * HNSW graph (Malkov & Yashunin). Level 0 keeps, per slot, one 64-byte aligned block:
 *   [vector: dim floats][count u32][M0 = 2M neighbour slots u32][padding to 64]
 * so a prefetch of the block start brings the vector, and the walk reads the links of the
 * node it just scored from the same block. Levels >= 1 (a node has level L with probability
 * about M^-L) are one malloc'd array per node: L lists of [count u32][M slots u32].
 *
 * Writers (the index writer, or batch threads inserting distinct slots in parallel) take a
 * per-node spinlock to change that node's lists; readers take none. A list is updated by
 * storing ids, then the count, all with release order, and readers load them with acquire,
 * so a reader sees some mix of old and new valid ids (every id ever stored names a node
 * whose vector was written before the store). The entry point and top level are one 64-bit
 * word, changed under entry_lock and read atomically.
 */
#include "vindex/hnsw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prefetches the lines of a vector after its first (which the caller fetched already). */
static inline void prefetch_rest(const float *v, size_t bytes)
{
    const char *p = (const char *)v;
    for (size_t off = 64; off < bytes; off += 64)
        __builtin_prefetch(p + off);
}

static inline void node_lock(vindex_hnsw_t *h, uint32_t slot)
{
    while (__atomic_test_and_set(&h->locks[slot], __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&h->locks[slot], __ATOMIC_RELAXED))
            __builtin_ia32_pause();
    }
}

static inline void node_unlock(vindex_hnsw_t *h, uint32_t slot)
{
    __atomic_clear(&h->locks[slot], __ATOMIC_RELEASE);
}

static int hnsw_init(vindex_t *ix, char *err, size_t errlen)
{
    vindex_hnsw_t *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return VINDEX_ENOMEM;
    }
    ix->impl = h;
    h->M = ix->p.M;
    h->M0 = 2 * ix->p.M;
    h->ef_construction = ix->p.ef_construction;
    h->link_off = (size_t)ix->p.dim * sizeof(float);
    h->stride = (h->link_off + (1 + (size_t)h->M0) * sizeof(uint32_t) + 63) / 64 * 64;
    h->level_mult = 1.0 / log((double)h->M);
    /* A kilobyte ahead covers the next vector's start; the hardware prefetcher and the
     * early exit of bounded L2 make the rest of a long vector not worth fetching early. */
    h->pf_bytes = h->link_off < 1024 ? h->link_off : 1024;
    h->entry = VINDEX_HNSW_ENTRY_NONE;
    pthread_mutex_init(&h->entry_lock, NULL);
    size_t cap = ix->p.capacity;
    int rc = vindex_region_init(&h->l0, cap * h->stride, err, errlen);
    if (rc || (rc = vindex_region_init(&h->levels_r, cap, err, errlen)) ||
        (rc = vindex_region_init(&h->upper_r, cap * sizeof(uint32_t *), err, errlen)) ||
        (rc = vindex_region_init(&h->locks_r, cap, err, errlen)))
        return rc;
    vindex_region_want_huge(&h->l0);
    h->levels = h->levels_r.base;
    h->upper = (uint32_t **)h->upper_r.base;
    h->locks = h->locks_r.base;
    return 0;
}

static void hnsw_release(vindex_t *ix)
{
    vindex_hnsw_t *h = ix->impl;
    if (!h)
        return;
    if (h->upper) {
        size_t n = vindex_region_mem(&h->upper_r) / sizeof(uint32_t *);
        for (size_t i = 0; i < n; i++)
            free(h->upper[i]);
    }
    vindex_region_release(&h->l0);
    vindex_region_release(&h->levels_r);
    vindex_region_release(&h->upper_r);
    vindex_region_release(&h->locks_r);
    pthread_mutex_destroy(&h->entry_lock);
    free(h);
    ix->impl = NULL;
}

static const float *hnsw_vector(const vindex_t *ix, uint32_t slot)
{
    return vindex_hnsw_vec(ix->impl, slot);
}

/* Level from a hash of (seed, slot): the same index for the same inserts, whatever the
 * thread interleaving. */
static unsigned random_level(const vindex_t *ix, const vindex_hnsw_t *h, uint32_t slot)
{
    uint64_t x = ix->p.seed * 0x9e3779b97f4a7c15ull + slot + 1;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    double u = ((double)(x >> 11) + 1.0) / 9007199254740992.0; /* (0, 1] */
    double l = -log(u) * h->level_mult;
    return l >= VINDEX_HNSW_MAX_LEVEL ? VINDEX_HNSW_MAX_LEVEL : (unsigned)l;
}

/* Greedy descent on one level: moves to the closest neighbour until none is closer. */
static void greedy(const vindex_t *ix, const vindex_hnsw_t *h, const float *q, unsigned level, uint32_t limit,
                   uint32_t *cur, float *cur_d)
{
    vindex_dist_f32_fn dist = ix->dist;
    size_t dim = ix->p.dim;
    for (int changed = 1; changed;) {
        changed = 0;
        const uint32_t *ln = vindex_hnsw_links(h, *cur, level);
        uint32_t cnt = __atomic_load_n(&ln[0], __ATOMIC_ACQUIRE);
        if (cnt > (level ? h->M : h->M0))
            cnt = level ? h->M : h->M0;
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t nb = __atomic_load_n(&ln[j], __ATOMIC_ACQUIRE);
            if (nb >= limit)
                continue;
            float d = dist(q, vindex_hnsw_vec(h, nb), dim);
            if (d < *cur_d) {
                *cur_d = d;
                *cur = nb;
                changed = 1;
            }
        }
    }
}

/*
 * Best-first search of one level from the entries in `top` (a max-heap on entry, the ef best
 * on return). With `check`, only published slots that vindex_accept()s go into `top`; the
 * others still extend the walk, so a filter narrows the results without cutting the graph.
 */
static int search_level(const vindex_t *ix, const vindex_hnsw_t *h, const float *q, unsigned level,
                        uint32_t ef, int check, const vindex_filter_t *filter, uint32_t published,
                        vindex_scratch_t *s, vindex_heap_t *top, uint32_t limit)
{
    uint16_t tag;
    if (vindex_scratch_visit_begin(s, limit, &tag))
        return VINDEX_ENOMEM;
    if (vindex_scratch_reserve((void **)&s->cand, &s->cand_cap, (size_t)ef + h->M0 + 1,
                               sizeof(vindex_pair_t)))
        return VINDEX_ENOMEM;
    uint16_t *vis = s->visited;
    vindex_heap_t cand = {.v = s->cand, .n = 0};
    for (size_t i = 0; i < top->n; i++) {
        vis[top->v[i].slot] = tag;
        vindex_minheap_push(&cand, top->v[i].d, top->v[i].slot);
    }
    if (check) {
        /* The entries were scored but not yet judged: keep only those that may be returned. */
        size_t kept = 0;
        for (size_t i = 0; i < top->n; i++) {
            if (top->v[i].slot < published && vindex_accept(ix, top->v[i].slot, filter))
                top->v[kept++] = top->v[i];
        }
        vindex_heap_t rebuilt = {.v = top->v, .n = 0};
        for (size_t i = 0; i < kept; i++)
            vindex_maxheap_push(&rebuilt, top->v[i].d, top->v[i].slot);
        top->n = rebuilt.n;
    }
    vindex_dist_f32_fn dist = ix->dist;
    vindex_dist_bounded_fn bounded = ix->neg_dot ? NULL : ix->kern->l2sq_bounded;
    size_t dim = ix->p.dim;
    uint32_t cap = level ? h->M : h->M0;
    while (cand.n) {
        vindex_pair_t c = cand.v[0];
        if (top->n >= ef && c.d > top->v[0].d)
            break;
        vindex_minheap_pop(&cand);
        /* The next candidate's links sit at the end of its block, past what a vector read
         * streams in: fetch them while this node is expanded. */
        if (cand.n && level == 0)
            __builtin_prefetch(vindex_hnsw_links(h, cand.v[0].slot, 0));
        const uint32_t *ln = vindex_hnsw_links(h, c.slot, level);
        uint32_t cnt = __atomic_load_n(&ln[0], __ATOMIC_ACQUIRE);
        if (cnt > cap)
            cnt = cap;
        /* First the unvisited neighbours, each block's first line prefetched, so their
         * memory loads overlap; then their distances, the next vector streamed in meanwhile. */
        uint32_t todo[129], m = 0;
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t nb = __atomic_load_n(&ln[j], __ATOMIC_ACQUIRE);
            if (nb >= limit || vis[nb] == tag)
                continue;
            vis[nb] = tag;
            todo[m++] = nb;
            __builtin_prefetch(vindex_hnsw_vec(h, nb));
        }
        for (uint32_t i = 0; i < m; i++) {
            uint32_t nb = todo[i];
            if (i + 1 < m)
                prefetch_rest(vindex_hnsw_vec(h, todo[i + 1]), h->pf_bytes);
            /* L2 may stop early: past the bound the candidate is rejected whatever its rest. */
            float d = bounded ? bounded(q, vindex_hnsw_vec(h, nb), dim, top->n < ef ? INFINITY : top->v[0].d)
                              : dist(q, vindex_hnsw_vec(h, nb), dim);
            if (top->n < ef || d < top->v[0].d) {
                if (cand.n == s->cand_cap) {
                    if (vindex_scratch_reserve((void **)&s->cand, &s->cand_cap, cand.n + 1,
                                               sizeof(vindex_pair_t)))
                        return VINDEX_ENOMEM;
                    cand.v = s->cand;
                }
                vindex_minheap_push(&cand, d, nb);
                if (!check || (nb < published && vindex_accept(ix, nb, filter)))
                    vindex_maxheap_offer(top, ef, d, nb);
            }
        }
    }
    return 0;
}

/* Keeps a diverse subset of the candidates (sorted nearest first, distances to the base
 * node): one is dropped when it is closer to an already kept one than to the base. */
static size_t select_neighbours(const vindex_t *ix, const vindex_hnsw_t *h, vindex_pair_t *c, size_t n,
                                size_t max)
{
    if (n <= max)
        return n;
    vindex_dist_bounded_fn bounded = ix->neg_dot ? NULL : ix->kern->l2sq_bounded;
    size_t kept = 0;
    for (size_t i = 0; i < n && kept < max; i++) {
        const float *v = vindex_hnsw_vec(h, c[i].slot);
        int good = 1;
        for (size_t j = 0; j < kept && good; j++)
            good = (bounded ? bounded(v, vindex_hnsw_vec(h, c[j].slot), ix->p.dim, c[i].d)
                            : ix->dist(v, vindex_hnsw_vec(h, c[j].slot), ix->p.dim)) >= c[i].d;
        if (good)
            c[kept++] = c[i];
    }
    return kept;
}

static int cmp_pair(const void *a, const void *b)
{
    const vindex_pair_t *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : (x->slot > y->slot) - (x->slot < y->slot);
}

static void store_list(uint32_t *ln, const vindex_pair_t *sel, size_t n)
{
    for (size_t i = 0; i < n; i++)
        __atomic_store_n(&ln[1 + i], sel[i].slot, __ATOMIC_RELEASE);
    __atomic_store_n(&ln[0], (uint32_t)n, __ATOMIC_RELEASE);
}

/* Links slot to its selected neighbours at level, and each of them back to slot. `tmp` has
 * room for M0 + 1 pairs. */
static void connect(const vindex_t *ix, vindex_hnsw_t *h, uint32_t slot, unsigned level,
                    const vindex_pair_t *sel, size_t nsel, vindex_pair_t *tmp)
{
    uint32_t cap = level ? h->M : h->M0;
    node_lock(h, slot);
    store_list(vindex_hnsw_links(h, slot, level), sel, nsel);
    node_unlock(h, slot);
    const float *v = vindex_hnsw_vec(h, slot);
    for (size_t i = 0; i < nsel; i++) {
        uint32_t e = sel[i].slot;
        node_lock(h, e);
        uint32_t *ln = vindex_hnsw_links(h, e, level);
        uint32_t cnt = ln[0];
        if (cnt < cap) {
            __atomic_store_n(&ln[1 + cnt], slot, __ATOMIC_RELEASE);
            __atomic_store_n(&ln[0], cnt + 1, __ATOMIC_RELEASE);
        } else {
            const float *ev = vindex_hnsw_vec(h, e);
            for (uint32_t j = 0; j < cnt; j++) {
                tmp[j].slot = ln[1 + j];
                tmp[j].d = ix->dist(ev, vindex_hnsw_vec(h, tmp[j].slot), ix->p.dim);
            }
            tmp[cnt].slot = slot;
            tmp[cnt].d = ix->dist(ev, v, ix->p.dim);
            qsort(tmp, cnt + 1, sizeof(*tmp), cmp_pair);
            store_list(ln, tmp, select_neighbours(ix, h, tmp, cnt + 1, cap));
        }
        node_unlock(h, e);
    }
}

static int hnsw_insert(vindex_t *ix, uint32_t slot, const float *vec, char *err, size_t errlen)
{
    vindex_hnsw_t *h = ix->impl;
    size_t end = (size_t)slot + 1;
    int rc = vindex_region_use(&h->l0, end * h->stride, err, errlen);
    if (rc || (rc = vindex_region_use(&h->levels_r, end, err, errlen)) ||
        (rc = vindex_region_use(&h->upper_r, end * sizeof(uint32_t *), err, errlen)) ||
        (rc = vindex_region_use(&h->locks_r, end, err, errlen)))
        return rc;
    unsigned level = random_level(ix, h, slot);
    memcpy(h->l0.base + (size_t)slot * h->stride, vec, ix->p.dim * sizeof(float));
    h->levels[slot] = (uint8_t)level;
    if (level > 0) {
        size_t bytes = (size_t)level * (h->M + 1) * sizeof(uint32_t);
        uint32_t *u = calloc(1, bytes);
        if (!u) {
            snprintf(err, errlen, "out of memory for hnsw links");
            return VINDEX_ENOMEM;
        }
        __atomic_store_n(&h->upper[slot], u, __ATOMIC_RELEASE);
        __atomic_fetch_add(&h->upper_bytes, bytes, __ATOMIC_RELAXED);
    }
    uint32_t hw = __atomic_load_n(&h->slots_hw, __ATOMIC_RELAXED);
    while (hw < slot + 1 &&
           !__atomic_compare_exchange_n(&h->slots_hw, &hw, slot + 1, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;

    pthread_mutex_lock(&h->entry_lock);
    uint64_t entry = __atomic_load_n(&h->entry, __ATOMIC_ACQUIRE);
    if (entry == VINDEX_HNSW_ENTRY_NONE) {
        __atomic_store_n(&h->entry, ((uint64_t)level << 32) | slot, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&h->entry_lock);
        return 0;
    }
    unsigned top_level = (unsigned)(entry >> 32);
    /* A new top node keeps the lock so no other insert sees an entry point that is not linked. */
    int raise = level > top_level;
    if (!raise)
        pthread_mutex_unlock(&h->entry_lock);

    vindex_scratch_t *s = vindex_scratch_acquire(ix);
    if (!s) {
        rc = VINDEX_ENOMEM;
        goto fail;
    }
    uint32_t limit = __atomic_load_n(&h->slots_hw, __ATOMIC_ACQUIRE);
    uint32_t ef = h->ef_construction;
    if ((rc = vindex_scratch_reserve((void **)&s->top, &s->top_cap, (size_t)ef + 1, sizeof(vindex_pair_t))) ||
        (rc = vindex_scratch_reserve((void **)&s->res, &s->res_cap, (size_t)ef + h->M0 + 2,
                                     sizeof(vindex_pair_t))))
        goto fail;
    uint32_t cur = (uint32_t)entry;
    float cur_d = ix->dist(vec, vindex_hnsw_vec(h, cur), ix->p.dim);
    for (unsigned l = top_level; l > level; l--)
        greedy(ix, h, vec, l, limit, &cur, &cur_d);
    /* Neighbours are chosen top-down but linked bottom-up, so a reader that reaches the new
     * node on an upper level always finds its level-0 links in place. */
    unsigned link_top = level < top_level ? level : top_level;
    if ((rc = vindex_scratch_reserve(&s->kind_buf, &s->kind_cap,
                                     ((size_t)link_top + 1) * h->M * sizeof(vindex_pair_t), 1)))
        goto fail;
    vindex_pair_t *plan = s->kind_buf;
    size_t nplan[VINDEX_HNSW_MAX_LEVEL + 1];
    vindex_heap_t top = {.v = s->top, .n = 0};
    vindex_maxheap_push(&top, cur_d, cur);
    for (int l = (int)link_top; l >= 0; l--) {
        rc = search_level(ix, h, vec, (unsigned)l, ef, 0, NULL, UINT32_MAX, s, &top, limit);
        if (rc)
            goto fail;
        /* Nearest first, without the node itself (a parallel insert cannot find it yet). */
        vindex_pair_t *sorted = s->res;
        size_t n = vindex_maxheap_drain_sorted(&top, sorted), m = 0;
        for (size_t i = 0; i < n; i++) {
            if (sorted[i].slot != slot)
                sorted[m++] = sorted[i];
        }
        vindex_pair_t *sel = plan + (size_t)l * h->M;
        nplan[l] = select_neighbours(ix, h, sorted, m, h->M);
        memcpy(sel, sorted, nplan[l] * sizeof(*sel));
        /* The next level starts from every kept neighbour. */
        top.n = 0;
        for (size_t i = 0; i < nplan[l]; i++)
            vindex_maxheap_push(&top, sel[i].d, sel[i].slot);
    }
    for (unsigned l = 0; l <= link_top; l++)
        connect(ix, h, slot, l, plan + (size_t)l * h->M, nplan[l], s->res);
    if (raise)
        __atomic_store_n(&h->entry, ((uint64_t)level << 32) | slot, __ATOMIC_RELEASE);
fail:
    if (raise)
        pthread_mutex_unlock(&h->entry_lock);
    if (s)
        vindex_scratch_release(ix, s);
    if (rc)
        snprintf(err, errlen, "out of memory in hnsw insert");
    return rc;
}

static int hnsw_search(vindex_t *ix, const vindex_query_t *q, vindex_scratch_t *s, vindex_heap_t *res)
{
    vindex_hnsw_t *h = ix->impl;
    uint64_t entry = __atomic_load_n(&h->entry, __ATOMIC_ACQUIRE);
    if (entry == VINDEX_HNSW_ENTRY_NONE)
        return 0;
    uint32_t limit = __atomic_load_n(&h->slots_hw, __ATOMIC_ACQUIRE);
    uint32_t cur = (uint32_t)entry;
    float cur_d = ix->dist(q->q, vindex_hnsw_vec(h, cur), ix->p.dim);
    for (unsigned l = (unsigned)(entry >> 32); l > 0; l--)
        greedy(ix, h, q->q, l, limit, &cur, &cur_d);
    if (vindex_scratch_reserve((void **)&s->top, &s->top_cap, (size_t)q->ef + 1, sizeof(vindex_pair_t)))
        return VINDEX_ENOMEM;
    vindex_heap_t top = {.v = s->top, .n = 0};
    vindex_maxheap_push(&top, cur_d, cur);
    /* Tombstones exist when fewer items are live than slots were published; slots past the
     * published ones belong to an insert in progress and are not returned yet. */
    int check =
        q->filter || __atomic_load_n(&ix->n_live, __ATOMIC_RELAXED) < q->n_slots || limit > q->n_slots;
    int rc = search_level(ix, h, q->q, 0, q->ef, check, q->filter, q->n_slots, s, &top, limit);
    if (rc)
        return rc;
    while (top.n > q->k)
        vindex_maxheap_pop(&top);
    memcpy(res->v, top.v, top.n * sizeof(*top.v));
    res->n = top.n;
    return 0;
}

static size_t hnsw_mem(const vindex_t *ix)
{
    const vindex_hnsw_t *h = ix->impl;
    return sizeof(*h) + vindex_region_mem(&h->l0) + vindex_region_mem(&h->levels_r) +
           vindex_region_mem(&h->upper_r) + vindex_region_mem(&h->locks_r) +
           __atomic_load_n(&h->upper_bytes, __ATOMIC_RELAXED);
}

const vindex_kind_ops_t vindex_hnsw_ops = {
    .name = "hnsw",
    .init = hnsw_init,
    .release = hnsw_release,
    .insert = hnsw_insert,
    .parallel_insert = 1,
    .search = hnsw_search,
    .vector = hnsw_vector,
    .mem_bytes = hnsw_mem,
};
