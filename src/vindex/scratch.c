/* Query scratch memory: growable arrays kept between queries by the pool in vindex_t. */
#include "vindex/index.h"

#include <stdlib.h>
#include <string.h>

int vindex_scratch_reserve(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < n)
        c *= 2;
    void *p = realloc(*arr, c * size);
    if (!p)
        return VINDEX_ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

int vindex_scratch_visit_begin(vindex_scratch_t *s, size_t n, uint16_t *tag)
{
    if (n > s->visited_cap) {
        /* Grown tags start at 0, which no query uses, so they read as "not visited". */
        size_t c = s->visited_cap ? s->visited_cap : 1024;
        while (c < n)
            c *= 2;
        uint16_t *v = realloc(s->visited, c * sizeof(*v));
        if (!v)
            return VINDEX_ENOMEM;
        memset(v + s->visited_cap, 0, (c - s->visited_cap) * sizeof(*v));
        s->visited = v;
        s->visited_cap = c;
    }
    if (++s->epoch == 0) {
        memset(s->visited, 0, s->visited_cap * sizeof(*s->visited));
        s->epoch = 1;
    }
    *tag = s->epoch;
    return 0;
}
