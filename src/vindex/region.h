/*
 * A growable array that never moves: a virtual-address reservation of `reserved` bytes whose
 * pages the kernel commits on first touch. Readers may keep pointers into it while the owner
 * appends, which is what lets searches run without a lock during inserts. `used` is the high
 * water mark the owner has written up to; it is what mem_bytes reports.
 */
#ifndef VINDEX_REGION_H
#define VINDEX_REGION_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *base;   /* page-aligned start; NULL when the region is empty */
    size_t reserved; /* bytes of address space held */
    size_t used;     /* bytes the owner has written (rounded up to pages when reported) */
} vindex_region_t;

/* Reserves `bytes` (rounded up to pages) of zero-filled address space. 0 or VINDEX_ENOMEM. */
int vindex_region_init(vindex_region_t *r, size_t bytes, char *err, size_t errlen);
/* Unmaps the reservation. */
void vindex_region_release(vindex_region_t *r);
/* Records that bytes [0, upto) are in use; VINDEX_ETOOLARGE past the reservation. */
int vindex_region_use(vindex_region_t *r, size_t upto, char *err, size_t errlen);
/* Touched bytes, rounded up to pages. */
size_t vindex_region_mem(const vindex_region_t *r);

#endif
