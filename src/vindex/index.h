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
/* Slot flag: deleted or replaced (a tombstone); never returned. */
#define VINDEX_FLAG_DEAD 1u
/* Slot flag (with DEAD): a compaction is unlinking it, or has: no new link may point to it. */
#define VINDEX_FLAG_RECLAIM 2u
/* Slot flag (with DEAD and RECLAIM): reclaimed, on the free list for the next insert. */
#define VINDEX_FLAG_FREE 4u

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

    /* Compaction (compact.c drives it; all under the writer lock; NULL = nothing to do).
     * compact_begin: the slots just flagged RECLAIM are about to be unlinked (hnsw moves its
     * entry point off them). repair_units: units of repair work over slots [0, end) (hnsw:
     * slots, ivf: lists). repair: drops every reference that units [from, to) hold to RECLAIM
     * slots, on up to `threads` threads, so that no search started afterwards can reach them.
     * After the grace period (no search that could still hold such a reference is running):
     * reclaim forgets one slot, compact_end frees what repair retired. */
    void (*compact_begin)(vindex_t *ix);
    uint32_t (*repair_units)(const vindex_t *ix, uint32_t end);
    int (*repair)(vindex_t *ix, uint32_t from, uint32_t to, unsigned threads);
    void (*reclaim)(vindex_t *ix, uint32_t slot);
    void (*compact_end)(vindex_t *ix);
} vindex_kind_ops_t;

/* One table per kind; vindex.c's kind_ops() maps vindex_kind_t to it. ivf.c adds
 * vindex_ivf_flat_ops here and there when it lands. */
extern const vindex_kind_ops_t vindex_flat_ops;
/* flat: serve slots [0, n) from `vecs` (n rows of dim floats, prepared) instead of copying them;
 * vecs must outlive the index (the snapshot mapping does). Only on an empty index. */
int vindex_flat_use_mapped(vindex_t *ix, const float *vecs, uint32_t n);
extern const vindex_kind_ops_t vindex_hnsw_ops;

/* Phases of a compaction job (compact.c). */
typedef enum {
    VINDEX_COMPACT_IDLE = 0,
    VINDEX_COMPACT_REPAIR,  /* unlinking the RECLAIM slots, `cursor` units done */
    VINDEX_COMPACT_GRACE,   /* waiting for the searches that began before the repair ended */
    VINDEX_COMPACT_RECLAIM, /* putting the RECLAIM slots on the free list */
} vindex_compact_phase_t;

/* The compaction job: writer-only state, advanced under the writer lock. */
typedef struct {
    vindex_compact_phase_t phase;
    uint32_t end;    /* slots [0, end) existed when the job began */
    uint32_t units;  /* repair units over [0, end) */
    uint32_t cursor; /* next repair unit */
    uint32_t marked; /* slots the job flagged RECLAIM */
    unsigned grace;  /* parity of the searches the grace period waits for */
} vindex_compact_t;

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
    /* Reclaimed slots, reused by inserts before next_slot grows (writer only; free_n is read
     * atomically by vindex_stats). */
    uint32_t *free_slots;
    uint32_t free_n, free_cap;
    vindex_compact_t job;
    uint64_t compactions; /* jobs finished (atomic) */
    uint64_t reclaimed;   /* slots put on the free list, ever (atomic) */
    /* Grace periods: a search counts itself in readers[gen & 1] while it runs; a compaction
     * bumps gen and waits for the count of the old parity to drain (compact.c). Padded so the
     * readers' counters do not share a cache line with the writer's fields. */
    char pad_readers[64];
    uint64_t read_gen;   /* atomic */
    uint64_t readers[2]; /* atomic */
    char pad_end[64];
};

/* A search, or any read of slot data outside the writer lock, runs between these two: a slot
 * it reaches is not reclaimed and reused before it ends. Lock-free; returns the parity to pass
 * to vindex_read_end. */
static inline unsigned vindex_read_begin(vindex_t *ix)
{
    for (;;) {
        uint64_t g = __atomic_load_n(&ix->read_gen, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&ix->readers[g & 1], 1, __ATOMIC_SEQ_CST);
        /* Counted under the generation that is still current: a compaction that bumps it
         * later waits for us. Otherwise the count may already have been read as drained. */
        if (__atomic_load_n(&ix->read_gen, __ATOMIC_SEQ_CST) == g)
            return (unsigned)(g & 1);
        __atomic_fetch_sub(&ix->readers[g & 1], 1, __ATOMIC_RELEASE);
    }
}

static inline void vindex_read_end(vindex_t *ix, unsigned parity)
{
    __atomic_fetch_sub(&ix->readers[parity], 1, __ATOMIC_RELEASE);
}

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

/* May `slot` be returned: live and passing the filter. The acquire pairs with the release
 * that publishes a reused slot, so its id and vector are read as written. */
static inline int vindex_accept(const vindex_t *ix, uint32_t slot, const vindex_filter_t *f)
{
    if (__atomic_load_n(&ix->flags[slot], __ATOMIC_ACQUIRE) & VINDEX_FLAG_DEAD)
        return 0;
    return !f || vindex_filter_pass(f, __atomic_load_n(&ix->ext_ids[slot], __ATOMIC_RELAXED));
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

/* Writer: a reclaimed slot for a new item, or VINDEX_SLOT_NONE when the free list is empty
 * (compact.c). The slot stays DEAD, so no search returns it, until vindex_slot_publish; it may
 * gain links as soon as its own insert has linked it. */
uint32_t vindex_slot_pop_free(vindex_t *ix);
/* Writer: makes a reused slot returnable, once its vector is stored and its id maps to it. */
void vindex_slot_publish(vindex_t *ix, uint32_t slot);
/* Writer, under the lock, after each writing call: advances the compaction job by the work of
 * `items` items on up to `threads` threads, and starts one when the share of tombstones passes
 * params.compact_threshold. Never fails the caller's write: compaction resumes later. */
void vindex_compact_step(vindex_t *ix, size_t items, unsigned threads);
/* Slots neither live, nor free: tombstones waiting for a compaction. */
uint64_t vindex_tombstones(const vindex_t *ix);

/* Exact search over the slots that pass q->filter (filter.c). */
int vindex_exact_filtered(vindex_t *ix, const vindex_query_t *q, vindex_heap_t *res);
/* Estimated fraction of live items that pass f (filter.c). */
double vindex_filter_selectivity(const vindex_t *ix, const vindex_filter_t *f, uint32_t n_slots);

#endif
