/*
 * Binary heaps of (distance, slot) pairs: a max-heap holding the best candidates found so far
 * (its top is the worst of them, the bound a new candidate must beat) and a min-heap of nodes
 * still to expand. Arrays are caller-owned (scratch memory), sized for the bound in use.
 * Distances are "smaller is better" everywhere inside the index (IP and cosine use -dot).
 * Pairs are ordered by (distance, slot): equal distances (duplicate vectors are common) are
 * broken by slot, so results do not depend on the order items were scanned in.
 */
#ifndef VINDEX_TOPK_H
#define VINDEX_TOPK_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float d;
    uint32_t slot;
} vindex_pair_t;

typedef struct {
    vindex_pair_t *v;
    size_t n;
} vindex_heap_t;

/* (da, sa) ranks after (db, sb). */
static inline int vindex_pair_after(float da, uint32_t sa, float db, uint32_t sb)
{
    return da > db || (da == db && sa > sb);
}

/* Max-heap (worst on top). */
static inline void vindex_maxheap_push(vindex_heap_t *h, float d, uint32_t slot)
{
    size_t i = h->n++;
    vindex_pair_t *v = h->v;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!vindex_pair_after(d, slot, v[p].d, v[p].slot))
            break;
        v[i] = v[p];
        i = p;
    }
    v[i].d = d;
    v[i].slot = slot;
}

/* Replaces the top (the worst) with (d, slot) and sifts it down: a pop and a push in one. */
static inline void vindex_maxheap_replace_top(vindex_heap_t *h, float d, uint32_t slot)
{
    vindex_pair_t *v = h->v;
    size_t n = h->n, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && vindex_pair_after(v[c + 1].d, v[c + 1].slot, v[c].d, v[c].slot))
            c++;
        if (!vindex_pair_after(v[c].d, v[c].slot, d, slot))
            break;
        v[i] = v[c];
        i = c;
    }
    v[i].d = d;
    v[i].slot = slot;
}

static inline void vindex_maxheap_pop(vindex_heap_t *h)
{
    vindex_pair_t last = h->v[--h->n];
    if (h->n)
        vindex_maxheap_replace_top(h, last.d, last.slot);
}

/* Keeps the best `cap` pairs. */
static inline void vindex_maxheap_offer(vindex_heap_t *h, size_t cap, float d, uint32_t slot)
{
    if (h->n < cap)
        vindex_maxheap_push(h, d, slot);
    else if (vindex_pair_after(h->v[0].d, h->v[0].slot, d, slot))
        vindex_maxheap_replace_top(h, d, slot);
}

/* Min-heap (best on top). */
static inline void vindex_minheap_push(vindex_heap_t *h, float d, uint32_t slot)
{
    size_t i = h->n++;
    vindex_pair_t *v = h->v;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (v[p].d <= d)
            break;
        v[i] = v[p];
        i = p;
    }
    v[i].d = d;
    v[i].slot = slot;
}

static inline void vindex_minheap_pop(vindex_heap_t *h)
{
    vindex_pair_t *v = h->v;
    vindex_pair_t last = v[--h->n];
    size_t n = h->n, i = 0;
    if (!n)
        return;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && v[c + 1].d < v[c].d)
            c++;
        if (v[c].d >= last.d)
            break;
        v[i] = v[c];
        i = c;
    }
    v[i] = last;
}

/* Empties a max-heap into out[0..n) best first; returns n. */
static inline size_t vindex_maxheap_drain_sorted(vindex_heap_t *h, vindex_pair_t *out)
{
    size_t n = h->n;
    for (size_t i = n; i > 0; i--) {
        out[i - 1] = h->v[0];
        vindex_maxheap_pop(h);
    }
    return n;
}

#endif
