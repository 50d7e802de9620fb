/*
 * Filters: estimating how many items pass, and the exact scan over the passing items that
 * a filtered search switches to when that number is small (a graph walk would have to visit
 * most of the graph to find k of them).
 */
#include "vindex/index.h"

double vindex_filter_selectivity(const vindex_t *ix, const vindex_filter_t *f, uint32_t n_slots)
{
    if (f->selectivity_hint > 0)
        return f->selectivity_hint > 1 ? 1 : f->selectivity_hint;
    uint64_t live = __atomic_load_n(&ix->n_live, __ATOMIC_RELAXED);
    if (!live || !n_slots)
        return 1;
    if (f->bitmap) {
        /* Counts set bits, i.e. ids the caller allows; ids not in the index make this an
         * over-estimate, which only errs towards the graph walk with a wide ef. */
        uint64_t words = (f->bitmap_bits + 63) / 64, pass = 0;
        for (uint64_t w = 0; w < words; w++) {
            uint64_t x = f->bitmap[w];
            if (w == words - 1 && (f->bitmap_bits & 63))
                x &= (1ull << (f->bitmap_bits & 63)) - 1;
            pass += (uint64_t)__builtin_popcountll(x);
        }
        double s = (double)pass / (double)live;
        return s > 1 ? 1 : s;
    }
    /* Callback: ask it about up to 256 slots spread evenly over the index. */
    uint32_t samples = n_slots < 256 ? n_slots : 256, seen = 0, pass = 0;
    for (uint32_t i = 0; i < samples; i++) {
        uint32_t slot = (uint32_t)(((uint64_t)i * n_slots) / samples);
        if (__atomic_load_n(&ix->flags[slot], __ATOMIC_ACQUIRE) & VINDEX_FLAG_DEAD)
            continue;
        seen++;
        pass += vindex_filter_pass(f, ix->ext_ids[slot]) ? 1 : 0;
    }
    if (!seen)
        return 1;
    /* Never report zero from a sample: one passing item in the rest is still possible. */
    return pass ? (double)pass / seen : 0.5 / seen;
}

static void offer(vindex_t *ix, const vindex_query_t *q, vindex_heap_t *res, uint32_t slot)
{
    float d = vindex_distance(ix, q->q, ix->ops->vector(ix, slot));
    vindex_maxheap_offer(res, q->k, d, slot);
}

int vindex_exact_filtered(vindex_t *ix, const vindex_query_t *q, vindex_heap_t *res)
{
    const vindex_filter_t *f = q->filter;
    /* A sparse bitmap is cheaper to walk by its set bits, looking each id up (a cache miss
     * each); past about one id in 64 slots, reading every slot's id in order costs less. */
    uint64_t words = f && f->bitmap ? (f->bitmap_bits + 63) / 64 : 0, pass = 0;
    for (uint64_t w = 0; w < words && pass <= q->n_slots / 64; w++)
        pass += (uint64_t)__builtin_popcountll(f->bitmap[w]);
    if (f && f->bitmap && pass <= q->n_slots / 64) {
        for (uint64_t w = 0; w < words; w++) {
            uint64_t x = f->bitmap[w];
            while (x) {
                uint64_t id = w * 64 + (uint64_t)__builtin_ctzll(x);
                x &= x - 1;
                if (id >= f->bitmap_bits)
                    break;
                uint32_t slot = vindex_idmap_get(&ix->ids, id);
                if (slot == VINDEX_SLOT_NONE || slot >= q->n_slots || !vindex_accept(ix, slot, NULL))
                    continue;
                offer(ix, q, res, slot);
            }
        }
        return 0;
    }
    for (uint32_t slot = 0; slot < q->n_slots; slot++) {
        if (vindex_accept(ix, slot, f))
            offer(ix, q, res, slot);
    }
    return 0;
}
