/*
 * External id -> slot: an open-addressing hash table (linear probing) that one writer updates
 * and any number of readers probe without a lock. Keys are never removed: deleting an id sets
 * its slot to VINDEX_SLOT_NONE, so a probe sequence never breaks. A bucket is published by
 * storing its slot, then its key with release order; readers load the key with acquire.
 * Growing copies into a table twice the size and publishes it; the old tables stay allocated
 * (a reader may still be probing them) until vindex_idmap_release.
 */
#ifndef VINDEX_IDMAP_H
#define VINDEX_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#define VINDEX_SLOT_NONE UINT32_MAX

typedef struct {
    uint64_t id;   /* VINDEX_ID_NONE = empty */
    uint32_t slot; /* VINDEX_SLOT_NONE = deleted */
    uint32_t pad;
} vindex_idmap_bucket_t;

typedef struct vindex_idmap_table {
    uint64_t mask; /* buckets - 1 (a power of two minus one) */
    vindex_idmap_bucket_t *b;
    struct vindex_idmap_table *retired; /* the smaller table this one replaced */
    int mapped;                         /* b is its own mapping (big tables), not malloc'd */
} vindex_idmap_table_t;

typedef struct {
    vindex_idmap_table_t *cur; /* accessed atomically */
    uint64_t keys;             /* writer only */
    uint64_t max_keys;         /* cap: "too large" past it */
} vindex_idmap_t;

int vindex_idmap_init(vindex_idmap_t *m, uint64_t max_keys, char *err, size_t errlen);
void vindex_idmap_release(vindex_idmap_t *m);
/* Slot of id, or VINDEX_SLOT_NONE. Lock-free. */
uint32_t vindex_idmap_get(const vindex_idmap_t *m, uint64_t id);
/* Starts loading the bucket where a probe for id begins (bulk loads call it some ids ahead). */
void vindex_idmap_prefetch(const vindex_idmap_t *m, uint64_t id);
/* Writer only: sets id -> slot (slot may be VINDEX_SLOT_NONE to delete). */
int vindex_idmap_set(vindex_idmap_t *m, uint64_t id, uint32_t slot, char *err, size_t errlen);
/* Writer only: grows the table now so that `keys` ids fit without a copy later. */
int vindex_idmap_reserve(vindex_idmap_t *m, uint64_t keys, char *err, size_t errlen);
size_t vindex_idmap_mem(const vindex_idmap_t *m);

#endif
