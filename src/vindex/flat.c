/*
 * Exact index: every vector in one array of 64-byte aligned rows, searched by a full scan.
 * It is the ground truth the other kinds are tested against and the path filtered searches
 * fall back to when few items pass.
 *
 * After vindex_open the first `ext_n` slots are read in place from the mapped snapshot (rows of
 * dim floats, 4-byte aligned), so a reload copies no vector and their pages belong to the page
 * cache; slots added since live in the region as usual (its first ext_n rows stay untouched).
 */
#include "vindex/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    vindex_region_t rows;
    size_t row_bytes;
    const float *ext; /* slots [0, ext_n): dim floats each, in the snapshot mapping */
    uint32_t ext_n;
} flat_t;

static int flat_init(vindex_t *ix, char *err, size_t errlen)
{
    flat_t *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return VINDEX_ENOMEM;
    }
    f->row_bytes = (size_t)ix->row_floats * sizeof(float);
    int rc = vindex_region_init(&f->rows, f->row_bytes * ix->p.capacity, err, errlen);
    if (rc) {
        free(f);
        return rc;
    }
    vindex_region_want_huge(&f->rows);
    ix->impl = f;
    return 0;
}

static void flat_release(vindex_t *ix)
{
    flat_t *f = ix->impl;
    if (!f)
        return;
    vindex_region_release(&f->rows);
    free(f);
    ix->impl = NULL;
}

static const float *flat_vector(const vindex_t *ix, uint32_t slot)
{
    const flat_t *f = ix->impl;
    if (slot < f->ext_n)
        return f->ext + (size_t)slot * ix->p.dim;
    return (const float *)(f->rows.base + (size_t)slot * f->row_bytes);
}

int vindex_flat_use_mapped(vindex_t *ix, const float *vecs, uint32_t n)
{
    flat_t *f = ix->impl;
    if (ix->ops != &vindex_flat_ops || ix->n_slots)
        return VINDEX_ESTATE;
    f->ext = vecs;
    f->ext_n = n;
    return 0;
}

static int flat_insert(vindex_t *ix, uint32_t slot, const float *vec, char *err, size_t errlen)
{
    flat_t *f = ix->impl;
    int rc = vindex_region_use(&f->rows, ((size_t)slot + 1) * f->row_bytes, err, errlen);
    if (rc)
        return rc;
    memcpy(f->rows.base + (size_t)slot * f->row_bytes, vec, ix->p.dim * sizeof(float));
    return 0;
}

static int flat_search(vindex_t *ix, const vindex_query_t *q, vindex_scratch_t *s, vindex_heap_t *res)
{
    (void)s;
    if (q->filter)
        return vindex_exact_filtered(ix, q, res);
    const flat_t *f = ix->impl;
    uint32_t ext = f->ext_n < q->n_slots ? f->ext_n : q->n_slots;
    for (uint32_t i = 0; i < q->n_slots; i++) {
        const float *row = i < ext ? f->ext + (size_t)i * ix->p.dim
                                   : (const float *)(f->rows.base + (size_t)i * f->row_bytes);
        float d = vindex_distance(ix, q->q, row);
        if (res->n == q->k && d > res->v[0].d)
            continue;
        if (vindex_accept(ix, i, NULL))
            vindex_maxheap_offer(res, q->k, d, i);
    }
    return 0;
}

static size_t flat_mem(const vindex_t *ix)
{
    const flat_t *f = ix->impl;
    return sizeof(*f) + vindex_region_mem(&f->rows);
}

const vindex_kind_ops_t vindex_flat_ops = {
    .name = "flat",
    .init = flat_init,
    .release = flat_release,
    .insert = flat_insert,
    .parallel_insert = 1,
    .search = flat_search,
    .vector = flat_vector,
    .mem_bytes = flat_mem,
};
