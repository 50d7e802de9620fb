/*
 * A growable array that never moves: a virtual-address reservation of `reserved` bytes whose
 * pages the kernel commits on first touch. Readers may keep pointers into it while the owner
 * appends, which is what lets searches run without a lock during inserts. `used` is the high
 * water mark the owner has written up to; it is what mem_bytes reports.
 *
 * A region that holds what a search reads at random (hnsw level-0 blocks, flat rows) can ask for
 * transparent huge pages: once it passes VINDEX_REGION_HUGE_MIN bytes it is madvise()d with
 * MADV_HUGEPAGE, so a graph walk that touches a new vector at every step misses the TLB far less
 * on systems whose THP mode is "madvise" (the mode does nothing new under "always" and is
 * refused under "never"). Small regions stay on 4 KiB pages, so a small index does not pay
 * 2 MiB per array. mem_bytes still counts 4 KiB pages: the last huge page of a region may hold
 * up to 2 MiB more.
 */
#ifndef VINDEX_REGION_H
#define VINDEX_REGION_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *base;   /* page-aligned start; NULL when the region is empty */
    size_t reserved; /* bytes of address space held */
    size_t used;     /* bytes the owner has written (rounded up to pages when reported) */
    int huge;        /* advise huge pages once used passes VINDEX_REGION_HUGE_MIN */
    int advised;     /* the advice was given (atomic: batch threads grow a region at once) */
} vindex_region_t;

#define VINDEX_REGION_HUGE_MIN ((size_t)8 << 20)

/* Reserves `bytes` (rounded up to pages) of zero-filled address space. 0 or VINDEX_ENOMEM. */
int vindex_region_init(vindex_region_t *r, size_t bytes, char *err, size_t errlen);
/* Asks for huge pages once the region grows past VINDEX_REGION_HUGE_MIN (see above). */
void vindex_region_want_huge(vindex_region_t *r);
/* Unmaps the reservation. */
void vindex_region_release(vindex_region_t *r);
/* Records that bytes [0, upto) are in use; VINDEX_ETOOLARGE past the reservation. */
int vindex_region_use(vindex_region_t *r, size_t upto, char *err, size_t errlen);
/* Touched bytes, rounded up to pages. */
size_t vindex_region_mem(const vindex_region_t *r);

#endif
