/*
 * The HNSW graph in a snapshot, so vindex_open restores it instead of rebuilding it.
 *
 * Section VINDEX_SEC_HNSW_LEVELS (little-endian):
 *   off  size  field
 *   0    4     M
 *   4    4     entry slot (UINT32_MAX when the graph is empty)
 *   8    4     top level (the entry slot's level)
 *   12   4     reserved, 0
 *   16   n     level of each slot (0..31)
 * Section VINDEX_SEC_HNSW_LINKS: for each slot in order, its level-0 list as u32 count then
 * u32[2M] neighbour slots (entries past count are 0), then for each level 1..level of that
 * slot, u32 count then u32[M]. Its size follows from the levels, and must match exactly.
 * On load every count is <= its cap and every neighbour is a stored slot whose own level
 * reaches the list's level, so a walk can never index past a node's arrays.
 */
#include "vindex/hnsw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEVELS_HEADER 16u

static uint32_t stored(const uint32_t *remap, uint32_t slot)
{
    return remap ? remap[slot] : slot;
}

int vindex_hnsw_snapshot_write(vindex_t *ix, vindex_snap_writer_t *w, uint32_t n, const uint32_t *remap)
{
    vindex_hnsw_t *h = ix->impl;
    uint64_t entry = __atomic_load_n(&h->entry, __ATOMIC_ACQUIRE);
    uint32_t head[4] = {h->M, entry == VINDEX_HNSW_ENTRY_NONE ? UINT32_MAX : stored(remap, (uint32_t)entry),
                        entry == VINDEX_HNSW_ENTRY_NONE ? 0 : (uint32_t)(entry >> 32), 0};
    int rc = vindex_snap_writer_section_begin(w, VINDEX_SEC_HNSW_LEVELS);
    if (!rc)
        rc = vindex_snap_writer_write(w, head, sizeof(head));
    if (!rc && n && !remap)
        rc = vindex_snap_writer_write(w, h->levels, n);
    for (uint32_t i = 0; remap && i < n && !rc; i++)
        if (remap[i] != UINT32_MAX)
            rc = vindex_snap_writer_write(w, &h->levels[i], 1);
    if (!rc)
        rc = vindex_snap_writer_section_end(w);
    if (rc || (rc = vindex_snap_writer_section_begin(w, VINDEX_SEC_HNSW_LINKS)))
        return rc;
    uint32_t buf[1 + 2 * 64];
    for (uint32_t i = 0; i < n && !rc; i++) {
        if (stored(remap, i) == UINT32_MAX)
            continue;
        for (unsigned l = 0; l <= h->levels[i] && !rc; l++) {
            uint32_t cap = l ? h->M : h->M0;
            const uint32_t *ln = vindex_hnsw_links(h, i, l);
            memset(buf, 0, (1 + cap) * sizeof(uint32_t));
            buf[0] = ln[0] <= cap ? ln[0] : cap;
            /* Reclaimed slots have no in-links, so every neighbour has a stored number. */
            for (uint32_t j = 1; j <= buf[0]; j++)
                buf[j] = stored(remap, ln[j]);
            rc = vindex_snap_writer_write(w, buf, (1 + cap) * sizeof(uint32_t));
        }
    }
    return rc ? rc : vindex_snap_writer_section_end(w);
}

static int corrupt(char *err, size_t errlen, const char *what, uint32_t slot)
{
    snprintf(err, errlen, "snapshot hnsw graph: %s at slot %u", what, slot);
    return VINDEX_ECORRUPT;
}

int vindex_hnsw_snapshot_load(vindex_t *ix, const vindex_snap_t *s, const float *vecs, uint32_t n, char *err,
                              size_t errlen)
{
    vindex_hnsw_t *h = ix->impl;
    const uint8_t *lv =
        vindex_snap_section(s, VINDEX_SEC_HNSW_LEVELS, LEVELS_HEADER + (uint64_t)n, err, errlen);
    if (!lv)
        return VINDEX_ECORRUPT;
    uint32_t head[4];
    memcpy(head, lv, sizeof(head));
    const uint8_t *levels = lv + LEVELS_HEADER;
    if (head[0] != h->M)
        return corrupt(err, errlen, "M differs from the parameters", 0);
    uint64_t words = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (levels[i] > VINDEX_HNSW_MAX_LEVEL)
            return corrupt(err, errlen, "level out of range", i);
        words += (1 + (uint64_t)h->M0) + (uint64_t)levels[i] * (1 + h->M);
    }
    if (n ? head[1] >= n || head[2] != levels[head[1]] : head[1] != UINT32_MAX)
        return corrupt(err, errlen, "bad entry point", head[1]);
    const uint8_t *raw = vindex_snap_section(s, VINDEX_SEC_HNSW_LINKS, words * sizeof(uint32_t), err, errlen);
    if (!raw)
        return VINDEX_ECORRUPT;
    /* Check the whole graph before building anything from it. */
    const uint8_t *p = raw;
    for (uint32_t i = 0; i < n; i++) {
        for (unsigned l = 0; l <= levels[i]; l++) {
            uint32_t cap = l ? h->M : h->M0, cnt, nb;
            memcpy(&cnt, p, 4);
            if (cnt > cap)
                return corrupt(err, errlen, "neighbour count over its cap", i);
            for (uint32_t j = 0; j < cnt; j++) {
                memcpy(&nb, p + 4 + 4 * (size_t)j, 4);
                if (nb >= n || levels[nb] < l)
                    return corrupt(err, errlen, "neighbour that is not on the list's level", i);
            }
            p += 4 * (size_t)(1 + cap);
        }
    }
    size_t end = n;
    int rc = vindex_region_use(&h->l0, end * h->stride, err, errlen);
    if (rc || (rc = vindex_region_use(&h->levels_r, end, err, errlen)) ||
        (rc = vindex_region_use(&h->upper_r, end * sizeof(uint32_t *), err, errlen)) ||
        (rc = vindex_region_use(&h->locks_r, end, err, errlen)))
        return rc;
    p = raw;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *block = h->l0.base + (size_t)i * h->stride;
        memcpy(block, vecs + (size_t)i * ix->p.dim, ix->p.dim * sizeof(float));
        memcpy(block + h->link_off, p, 4 * (size_t)(1 + h->M0));
        p += 4 * (size_t)(1 + h->M0);
        h->levels[i] = levels[i];
        if (levels[i]) {
            size_t bytes = (size_t)levels[i] * (1 + h->M) * sizeof(uint32_t);
            uint32_t *u = malloc(bytes);
            if (!u) {
                snprintf(err, errlen, "out of memory for hnsw links");
                return VINDEX_ENOMEM;
            }
            memcpy(u, p, bytes);
            p += bytes;
            h->upper[i] = u;
            h->upper_bytes += bytes;
        }
    }
    h->slots_hw = n;
    h->entry = n ? ((uint64_t)head[2] << 32) | head[1] : VINDEX_HNSW_ENTRY_NONE;
    return 0;
}
