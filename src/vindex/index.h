/*
 * The index object shared by every kind, and the table of operations each kind implements.
 * Kinds (flat.c, hnsw.c, ivf.c) own their vector storage; this layer owns the external ids,
 * tombstones, the id map, the writer lock, query scratch memory, filters and the batch
 * threads. See vindex.h for the concurrency model.
 */
#ifndef VINDEX_INDEX_H
#define VINDEX_INDEX_H

#include <pthread.h>
#include <stdint.h>

#include "vindex/distance.h"
#include "vindex/idmap.h"
#include "vindex/region.h"
#include "vindex/topk.h"
#include "vindex/vindex.h"

/* Largest k a search accepts ("too large" past it). */
#define VINDEX_K_MAX 100000u
/* Largest ef a caller or a snapshot may set, and a search uses after widening for a filter. */
#define VINDEX_EF_MAX 100000u
/* Query scratch areas kept for reuse; more concurrent searches allocate their own. */
#define VINDEX_SCRATCH_POOL 16
/* Slot flag: deleted or replaced (a tombstone). */
#define VINDEX_FLAG_DEAD 1u

/* Per-search memory, reused across queries by whichever thread holds it. */
typedef struct {
    int busy;            /* 1 while a search holds it (atomic) */
    int heap;            /* allocated for one search because the pool was busy: freed after */
    uint16_t *visited;   /* per-slot tag; equal to epoch = visited by this query */
    size_t visited_cap;  /* slots the tag array covers */
    uint16_t epoch;      /* tag of the current query */
    vindex_pair_t *cand; /* candidate min-heap storage */
    size_t cand_cap;
    vindex_pair_t *top; /* the kind's working max-heap (hnsw: ef best) */
    size_t top_cap;
    vindex_pair_t *res; /* the k results */
    size_t res_cap;
    float *qbuf;     /* the query, normalised for cosine, 64-byte aligned */
    void *kind_buf;  /* for the kind's own use (ivf: centroid distances) */
    size_t kind_cap; /* bytes */
} vindex_scratch_t;

/* One query as a kind sees it. */
typedef struct {
    const float *q;                /* dim floats, normalised for cosine */
    uint32_t k;                    /* results wanted */
    uint32_t ef;                   /* hnsw candidate list size (>= k, widened for filters) */
    uint32_t nprobe;               /* ivf lists to scan */
    const vindex_filter_t *filter; /* NULL = none; tombstones are always rejected */
    uint32_t n_slots;              /* slots published when the query started */
} vindex_query_t;

typedef struct vindex_kind_ops {
    const char *name;
    /* Sets up ix->impl once ix's common fields are ready. */
    int (*init)(vindex_t *ix, char *err, size_t errlen);
    void (*release)(vindex_t *ix);
    /* Stores vec (normalised for cosine) in `slot` and links it. Called by the writer; when
     * parallel_insert is set, by several batch threads at once for distinct slots. */
    int (*insert)(vindex_t *ix, uint32_t slot, const float *vec, char *err, size_t errlen);
    int parallel_insert;
    /* Puts the best q->k accepted slots into `res` (a max-heap with room for q->k). */
    int (*search)(vindex_t *ix, const vindex_query_t *q, vindex_scratch_t *s, vindex_heap_t *res);
    /* The stored float vector of a slot (for exact scans and re-ranking). */
    const float *(*vector)(const vindex_t *ix, uint32_t slot);
    size_t (*mem_bytes)(const vindex_t *ix);
} vindex_kind_ops_t;

/* One table per kind; vindex.c's kind_ops() maps vindex_kind_t to it. ivf.c adds
 * vindex_ivf_flat_ops here and there when it lands. */
extern const vindex_kind_ops_t vindex_flat_ops;
/* flat: serve slots [0, n) from `vecs` (n rows of dim floats, prepared) instead of copying them;
 * vecs must outlive the index (the snapshot mapping does). Only on an empty index. */
int vindex_flat_use_mapped(vindex_t *ix, const float *vecs, uint32_t n);
extern const vindex_kind_ops_t vindex_hnsw_ops;

struct vindex {
    vindex_params_t p;
    const vindex_kernels_t *kern;
    int neg_dot;             /* ip/cosine: distance is -dot */
    vindex_dist_f32_fn dist; /* kern->l2sq or kern->ndot */
    uint32_t row_floats;     /* dim rounded up to 16 floats (64 bytes) */
    const vindex_kind_ops_t *ops;
    void *impl;                     /* the kind's state */
    pthread_mutex_t write_lock;     /* serialises writers */
    vindex_idmap_t ids;             /* external id -> live slot */
    vindex_region_t ext_ids_region; /* uint64_t per slot */
    uint64_t *ext_ids;
    vindex_region_t flags_region; /* uint8_t per slot, VINDEX_FLAG_* (atomic) */
    uint8_t *flags;
    uint32_t next_slot; /* writer only: first unused slot */
    uint32_t n_slots;   /* published slots (atomic, release) */
    uint64_t n_live;    /* live items (atomic) */
    float *wbuf;        /* writer's normalisation buffer, row_floats */
    vindex_scratch_t scratch[VINDEX_SCRATCH_POOL];
    void *store; /* persistence state (store.c); NULL when in memory only */
};

/* Smaller is better: squared L2, or -dot for ip/cosine. */
static inline float vindex_distance(const vindex_t *ix, const float *a, const float *b)
{
    return ix->dist(a, b, ix->p.dim);
}

static inline int vindex_filter_pass(const vindex_filter_t *f, uint64_t id)
{
    if (f->bitmap)
        return id < f->bitmap_bits && ((f->bitmap[id >> 6] >> (id & 63)) & 1u);
    return f->fn(id, f->ctx) != 0;
}

/* May `slot` be returned: live and passing the filter. */
static inline int vindex_accept(const vindex_t *ix, uint32_t slot, const vindex_filter_t *f)
{
    if (__atomic_load_n(&ix->flags[slot], __ATOMIC_RELAXED) & VINDEX_FLAG_DEAD)
        return 0;
    return !f || vindex_filter_pass(f, ix->ext_ids[slot]);
}

/* Copies vec into out (row_floats, zero padded), normalised for cosine. Rejects non-finite
 * values, and zero vectors under cosine unless allow_zero. */
int vindex_prepare_vector(const vindex_t *ix, const float *vec, float *out, int allow_zero, char *err,
                          size_t errlen);
/* Validates search parameters once per call. */
int vindex_check_search_params(const vindex_t *ix, const vindex_search_params_t *sp, char *err,
                               size_t errlen);
/* One validated query with the caller's scratch: the number of hits or a negative code. */
int vindex_search_scratch(vindex_t *ix, vindex_scratch_t *s, const float *query,
                          const vindex_search_params_t *sp, vindex_hit_t *hits);
/* A scratch area from the pool (or a fresh one when all are busy); NULL when out of memory. */
vindex_scratch_t *vindex_scratch_acquire(vindex_t *ix);
void vindex_scratch_release(vindex_t *ix, vindex_scratch_t *s);

/* Grows a scratch array (elements of `size` bytes) to hold `n`; 0 or VINDEX_ENOMEM. */
int vindex_scratch_reserve(void **arr, size_t *cap, size_t n, size_t size);
/* Visited tags for n slots, cleared when the 16-bit epoch wraps; returns the tag to use. */
int vindex_scratch_visit_begin(vindex_scratch_t *s, size_t n, uint16_t *tag);

/* Runs fn(ctx, i) for i in [0, n) on up to `threads` threads, with dynamic chunks; stops
 * handing out work once a call returns non-zero and returns the first such code. */
typedef int (*vindex_task_fn)(void *ctx, size_t i, unsigned thread);
int vindex_parallel_for(unsigned threads, size_t n, vindex_task_fn fn, void *ctx);
/* Threads a batch call uses. */
unsigned vindex_threads(const vindex_t *ix);

/* Exact search over the slots that pass q->filter (filter.c). */
int vindex_exact_filtered(vindex_t *ix, const vindex_query_t *q, vindex_heap_t *res);
/* Estimated fraction of live items that pass f (filter.c). */
double vindex_filter_selectivity(const vindex_t *ix, const vindex_filter_t *f, uint32_t n_slots);

#endif
