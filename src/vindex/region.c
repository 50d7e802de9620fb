#include "vindex/region.h"
#include "vindex/vindex.h"

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t page_round(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (n + pg - 1) / pg * pg;
}

int vindex_region_init(vindex_region_t *r, size_t bytes, char *err, size_t errlen)
{
    r->base = NULL;
    r->used = 0;
    r->huge = 0;
    r->advised = 0;
    r->reserved = page_round(bytes ? bytes : 1);
    /* NORESERVE: only address space until a page is touched, so a generous capacity costs nothing. */
    void *p =
        mmap(NULL, r->reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot reserve %zu bytes of address space", r->reserved);
        r->reserved = 0;
        return VINDEX_ENOMEM;
    }
    r->base = p;
    return 0;
}

void vindex_region_want_huge(vindex_region_t *r)
{
    r->huge = 1;
}

void vindex_region_release(vindex_region_t *r)
{
    if (r->base)
        munmap(r->base, r->reserved);
    r->base = NULL;
    r->reserved = 0;
    r->used = 0;
}

int vindex_region_use(vindex_region_t *r, size_t upto, char *err, size_t errlen)
{
    if (upto > r->reserved) {
        snprintf(err, errlen, "index too large: capacity reached (%zu bytes reserved)", r->reserved);
        return VINDEX_ETOOLARGE;
    }
    /* Batch threads grow it at once and readers read it for mem_bytes: an atomic maximum. */
    size_t cur = __atomic_load_n(&r->used, __ATOMIC_RELAXED);
    while (upto > cur &&
           !__atomic_compare_exchange_n(&r->used, &cur, upto, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    /* Advice only: a kernel without THP refuses it and the region works on small pages. */
    if (r->huge && upto >= VINDEX_REGION_HUGE_MIN && !__atomic_exchange_n(&r->advised, 1, __ATOMIC_RELAXED))
        (void)madvise(r->base, r->reserved, MADV_HUGEPAGE);
    return 0;
}

size_t vindex_region_mem(const vindex_region_t *r)
{
    size_t used = __atomic_load_n(&r->used, __ATOMIC_RELAXED);
    return used ? page_round(used) : 0;
}
