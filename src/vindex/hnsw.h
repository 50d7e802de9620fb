/*
 * The HNSW graph's state, shared by hnsw.c (build and search) and hnsw_store.c (snapshot
 * sections). Layout and concurrency rules: see hnsw.c's header comment.
 */
#ifndef VINDEX_HNSW_H
#define VINDEX_HNSW_H

#include "vindex/index.h"
#include "vindex/store.h"

#define VINDEX_HNSW_MAX_LEVEL 31
#define VINDEX_HNSW_ENTRY_NONE UINT64_MAX

typedef struct {
    uint32_t M, M0; /* list caps on levels >= 1 and on level 0 */
    uint32_t ef_construction;
    size_t stride;            /* bytes per level-0 block */
    size_t link_off;          /* offset of the level-0 count within a block */
    size_t pf_bytes;          /* bytes of a vector worth prefetching ahead */
    double level_mult;        /* 1 / ln(M) */
    vindex_region_t l0;       /* level-0 blocks */
    vindex_region_t levels_r; /* uint8_t level per slot */
    uint8_t *levels;
    vindex_region_t upper_r; /* uint32_t * per slot: lists of levels 1..level, or NULL */
    uint32_t **upper;
    vindex_region_t locks_r; /* uint8_t spinlock per slot (writers only) */
    uint8_t *locks;
    uint64_t entry; /* (top level << 32) | entry slot, or VINDEX_HNSW_ENTRY_NONE (atomic) */
    pthread_mutex_t entry_lock;
    uint32_t slots_hw;  /* 1 + highest slot whose insert has started (atomic) */
    size_t upper_bytes; /* bytes of upper-level arrays (atomic) */
} vindex_hnsw_t;

static inline const float *vindex_hnsw_vec(const vindex_hnsw_t *h, uint32_t slot)
{
    return (const float *)(h->l0.base + (size_t)slot * h->stride);
}

/* [count][ids...] of slot at level. */
static inline uint32_t *vindex_hnsw_links(const vindex_hnsw_t *h, uint32_t slot, unsigned level)
{
    if (level == 0)
        return (uint32_t *)(h->l0.base + (size_t)slot * h->stride + h->link_off);
    uint32_t *u = __atomic_load_n(&h->upper[slot], __ATOMIC_ACQUIRE);
    return u + (size_t)(level - 1) * (h->M + 1);
}

/* Snapshot sections VINDEX_SEC_HNSW_LEVELS and VINDEX_SEC_HNSW_LINKS (layout in hnsw_store.c).
 * Write: the caller holds the write lock; n = slots in the index, remap (NULL = identity) maps
 * each to its number in the file, UINT32_MAX for a reclaimed slot left out. Load: into a fresh index made by
 * vindex_new from the snapshot's parameters, with vecs the n stored vectors; every count, id
 * and level is checked, so a damaged file fails with VINDEX_ECORRUPT, never a bad pointer. */
int vindex_hnsw_snapshot_write(vindex_t *ix, vindex_snap_writer_t *w, uint32_t n, const uint32_t *remap);
int vindex_hnsw_snapshot_load(vindex_t *ix, const vindex_snap_t *s, const float *vecs, uint32_t n, char *err,
                              size_t errlen);

#endif
