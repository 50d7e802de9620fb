/*
 * Batch calls: a parallel loop over short-lived threads (a batch is long enough that creating
 * two threads is noise), vindex_add_batch and vindex_search_batch.
 */
#include "vindex/index.h"
#include "vindex/ivf.h"
#include "vindex/store.h"
#include "vindex/wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 64
/* Items handed to a thread at a time. */
#define CHUNK 16

typedef struct {
    vindex_task_fn fn;
    void *ctx;
    size_t n;
    size_t next; /* atomic */
    int rc;      /* atomic: first failure */
    unsigned thread;
} loop_t;

typedef struct {
    loop_t *loop;
    unsigned thread;
} worker_arg_t;

static void *worker(void *arg)
{
    worker_arg_t *w = arg;
    loop_t *l = w->loop;
    for (;;) {
        if (__atomic_load_n(&l->rc, __ATOMIC_RELAXED))
            break;
        size_t b = __atomic_fetch_add(&l->next, CHUNK, __ATOMIC_RELAXED);
        if (b >= l->n)
            break;
        size_t e = b + CHUNK < l->n ? b + CHUNK : l->n;
        for (size_t i = b; i < e; i++) {
            int rc = l->fn(l->ctx, i, w->thread);
            if (rc) {
                int zero = 0;
                __atomic_compare_exchange_n(&l->rc, &zero, rc, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
                break;
            }
        }
    }
    return NULL;
}

int vindex_parallel_for(unsigned threads, size_t n, vindex_task_fn fn, void *ctx)
{
    loop_t l = {.fn = fn, .ctx = ctx, .n = n};
    pthread_t tid[MAX_THREADS];
    worker_arg_t args[MAX_THREADS];
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if ((size_t)threads > (n + CHUNK - 1) / CHUNK)
        threads = (unsigned)((n + CHUNK - 1) / CHUNK);
    unsigned started = 0;
    for (unsigned t = 1; t < threads; t++) {
        args[t].loop = &l;
        args[t].thread = t;
        if (pthread_create(&tid[t], NULL, worker, &args[t]) != 0)
            break;
        started = t;
    }
    args[0].loop = &l;
    args[0].thread = 0;
    worker(&args[0]);
    for (unsigned t = 1; t <= started; t++)
        pthread_join(tid[t], NULL);
    return l.rc;
}

unsigned vindex_threads(const vindex_t *ix)
{
    if (ix->p.threads)
        return ix->p.threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Items published (made visible by id and to scans) at a time during vindex_add_batch. */
#define PUBLISH_CHUNK 4096

typedef struct {
    vindex_t *ix;
    const float *vecs;
    uint32_t *slots; /* slot of each item of this chunk: reclaimed ones first, then fresh */
    size_t first;    /* batch index of item 0 of this chunk */
    float *bufs;     /* one row_floats buffer per thread */
    char *errs;      /* one message per thread */
} add_ctx_t;

#define ERR_LEN 160

static int add_task(void *arg, size_t i, unsigned thread)
{
    add_ctx_t *c = arg;
    vindex_t *ix = c->ix;
    float *buf = c->bufs + (size_t)thread * ix->row_floats;
    char *err = c->errs + (size_t)thread * ERR_LEN;
    size_t item = c->first + i;
    int rc = vindex_prepare_vector(ix, c->vecs + item * ix->p.dim, buf, 0, err, ERR_LEN);
    if (rc)
        return rc;
    return ix->ops->insert(ix, c->slots[i], buf, err, ERR_LEN);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Rejects the whole batch before anything is inserted: bad ids, duplicates, bad vectors. */
static int check_batch(vindex_t *ix, const uint64_t *ids, const float *vecs, size_t n, char *err,
                       size_t errlen)
{
    if (n > ix->p.capacity - ix->next_slot + ix->free_n) {
        snprintf(err, errlen, "index too large: %zu more items exceed capacity %llu", n,
                 (unsigned long long)ix->p.capacity);
        return VINDEX_ETOOLARGE;
    }
    uint64_t *sorted = malloc(n * sizeof(*sorted));
    if (!sorted) {
        snprintf(err, errlen, "out of memory");
        return VINDEX_ENOMEM;
    }
    memcpy(sorted, ids, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_u64);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (sorted[i] == VINDEX_ID_NONE) {
            snprintf(err, errlen, "id UINT64_MAX is reserved");
            rc = VINDEX_EINVAL;
        } else if (i > 0 && sorted[i] == sorted[i - 1]) {
            snprintf(err, errlen, "id %llu appears twice in the batch", (unsigned long long)sorted[i]);
            rc = VINDEX_EINVAL;
        } else if (vindex_idmap_get(&ix->ids, sorted[i]) != VINDEX_SLOT_NONE) {
            snprintf(err, errlen, "id %llu exists", (unsigned long long)sorted[i]);
            rc = VINDEX_EEXIST;
        }
    }
    free(sorted);
    for (size_t i = 0; i < n && !rc; i++)
        rc = vindex_prepare_vector(ix, vecs + i * ix->p.dim, ix->wbuf, 0, err, errlen);
    return rc;
}

int vindex_add_batch(vindex_t *ix, const uint64_t *ids, const float *vecs, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    if (!ids || !vecs) {
        snprintf(err, errlen, "ids and vecs must not be NULL");
        return VINDEX_EINVAL;
    }
    unsigned threads = ix->ops->parallel_insert ? vindex_threads(ix) : 1;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    add_ctx_t c = {.ix = ix, .vecs = vecs};
    uint64_t lsn = 0;
    pthread_mutex_lock(&ix->write_lock);
    int rc = check_batch(ix, ids, vecs, n, err, errlen);
    if (rc)
        goto fail;
    if (ix->p.kind == VINDEX_IVF_FLAT && !vindex_ivf_trained(ix) &&
        (rc = vindex_ivf_train_locked(ix, vecs, n, err, errlen)))
        goto fail;
    /* A compaction under way advances by the batch's share of work, and what it frees is
     * taken first. */
    vindex_compact_step(ix, n, threads);
    size_t end = (size_t)ix->next_slot + n;
    if ((rc = vindex_idmap_reserve(&ix->ids, ix->ids.keys + n, err, errlen)) ||
        (rc = vindex_region_use(&ix->ext_ids_region, end * sizeof(uint64_t), err, errlen)) ||
        (rc = vindex_region_use(&ix->flags_region, end, err, errlen)))
        goto fail;
    c.bufs = aligned_alloc(64, (size_t)threads * ix->row_floats * sizeof(float));
    c.errs = calloc(threads, ERR_LEN);
    c.slots = malloc((n < PUBLISH_CHUNK ? n : PUBLISH_CHUNK) * sizeof(uint32_t));
    if (!c.bufs || !c.errs || !c.slots) {
        snprintf(err, errlen, "out of memory");
        rc = VINDEX_ENOMEM;
        goto fail;
    }
    for (size_t first = 0; first < n; first += PUBLISH_CHUNK) {
        size_t m = n - first < PUBLISH_CHUNK ? n - first : PUBLISH_CHUNK, reused = 0;
        c.first = first;
        for (uint32_t s; reused < m && (s = vindex_slot_pop_free(ix)) != VINDEX_SLOT_NONE;)
            c.slots[reused++] = s;
        for (size_t i = reused; i < m; i++)
            c.slots[i] = ix->next_slot + (uint32_t)(i - reused);
        for (size_t i = 0; i < m; i++)
            ix->ext_ids[c.slots[i]] = ids[first + i];
        rc = vindex_parallel_for(threads, m, add_task, &c);
        ix->next_slot += (uint32_t)(m - reused);
        if (rc) {
            /* Which items of the chunk got linked is unknown: bury the whole chunk. */
            for (size_t i = 0; i < m; i++)
                __atomic_store_n(&ix->flags[c.slots[i]], VINDEX_FLAG_DEAD, __ATOMIC_RELAXED);
            __atomic_store_n(&ix->n_slots, ix->next_slot, __ATOMIC_RELEASE);
            for (unsigned t = 0; t < threads; t++) {
                if (c.errs[t * ERR_LEN]) {
                    snprintf(err, errlen, "%s", c.errs + t * ERR_LEN);
                    break;
                }
            }
            goto fail;
        }
        __atomic_store_n(&ix->n_slots, ix->next_slot, __ATOMIC_RELEASE);
        for (size_t i = 0; i < m; i++) {
            rc = vindex_idmap_set(&ix->ids, ids[first + i], c.slots[i], err, errlen);
            if (rc)
                goto fail;
            if (i < reused)
                vindex_slot_publish(ix, c.slots[i]);
            __atomic_fetch_add(&ix->n_live, 1, __ATOMIC_RELEASE);
            rc = vindex_store_log(ix, VINDEX_WAL_INSERT, ids[first + i], vecs + (first + i) * ix->p.dim, &lsn,
                                  err, errlen);
            if (rc)
                goto fail;
        }
    }
fail:
    pthread_mutex_unlock(&ix->write_lock);
    /* One commit (one fsync) for the whole batch, outside the lock. */
    if (!rc && lsn)
        rc = vindex_store_commit(ix, lsn, err, errlen);
    free(c.bufs);
    free(c.errs);
    free(c.slots);
    return rc;
}

typedef struct {
    vindex_t *ix;
    const float *queries;
    const vindex_search_params_t *sp;
    vindex_hit_t *hits;
    uint32_t *nhits;
    vindex_scratch_t *scratch[MAX_THREADS];
} search_ctx_t;

static int search_task(void *arg, size_t i, unsigned thread)
{
    search_ctx_t *c = arg;
    if (!c->scratch[thread]) {
        c->scratch[thread] = vindex_scratch_acquire(c->ix);
        if (!c->scratch[thread])
            return VINDEX_ENOMEM;
    }
    unsigned rd = vindex_read_begin(c->ix);
    int n = vindex_search_scratch(c->ix, c->scratch[thread], c->queries + i * c->ix->p.dim, c->sp,
                                  c->hits + i * c->sp->k);
    vindex_read_end(c->ix, rd);
    if (n < 0)
        return n;
    c->nhits[i] = (uint32_t)n;
    return 0;
}

int vindex_search_batch(vindex_t *ix, const float *queries, size_t nq, const vindex_search_params_t *sp,
                        vindex_hit_t *hits, uint32_t *nhits, char *err, size_t errlen)
{
    int rc = vindex_check_search_params(ix, sp, err, errlen);
    if (rc)
        return rc;
    if (nq == 0)
        return 0;
    if (!queries || !hits || !nhits) {
        snprintf(err, errlen, "queries, hits and nhits must not be NULL");
        return VINDEX_EINVAL;
    }
    search_ctx_t c = {.ix = ix, .queries = queries, .sp = sp, .hits = hits, .nhits = nhits};
    unsigned threads = vindex_threads(ix);
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    rc = vindex_parallel_for(threads, nq, search_task, &c);
    for (unsigned t = 0; t < MAX_THREADS; t++) {
        if (c.scratch[t])
            vindex_scratch_release(ix, c.scratch[t]);
    }
    if (rc)
        snprintf(err, errlen, "%s", rc == VINDEX_EINVAL ? "a query has a non-finite value" : "out of memory");
    return rc;
}
