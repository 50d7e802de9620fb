/* Fuzz target for the vindex loaders: snapshot images (index.snap) and log images (wal.log).
 *
 * A random mutation almost never keeps a CRC-32C right, so every input is tried twice: as is
 * (the checksums must reject it) and with its checksums recomputed, which lets the fuzzer reach
 * the structural checks behind them (section sizes, ids, lists, parameters). Either way the
 * loader must return an error or a usable index, never crash or read out of bounds. */
#include "vindex/crc32c.h"
#include "vindex/index.h"
#include "vindex/store.h"
#include "vindex/wal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int count_record(void *ctx, int type, uint64_t lsn, uint64_t id, const float *vec, char *err,
                        size_t errlen)
{
    (void)type;
    (void)lsn;
    (void)id;
    (void)err;
    (void)errlen;
    volatile float sink = vec ? vec[0] : 0;
    (void)sink;
    (*(size_t *)ctx)++;
    return 0;
}

static void try_snapshot(const uint8_t *buf, size_t len)
{
    vindex_snap_t s;
    char err[256];
    if (vindex_snap_parse(buf, len, 1, &s, err, sizeof(err)) != 0)
        return;
    vindex_t *ix = vindex_store_load_snapshot(&s, NULL, 0, err, sizeof(err));
    if (!ix)
        return;
    /* A loaded index must answer a query. */
    float *q = calloc(ix->p.dim, sizeof(float));
    vindex_hit_t hits[4];
    vindex_search_params_t sp = {.k = 4};
    if (q) {
        q[0] = 1;
        vindex_search(ix, q, &sp, hits, err, sizeof(err));
    }
    free(q);
    vindex_free(ix);
}

/* Rewrites the header and section checksums of a snapshot image in place. */
static void fix_snapshot_crcs(uint8_t *buf, size_t len)
{
    if (len < VINDEX_SNAP_HEADER_SIZE)
        return;
    uint32_t nsec;
    memcpy(&nsec, buf + 48, 4);
    if (nsec > VINDEX_SNAP_MAX_SECTIONS ||
        VINDEX_SNAP_HEADER_SIZE + (size_t)nsec * VINDEX_SNAP_ENTRY_SIZE > len)
        return;
    for (uint32_t i = 0; i < nsec; i++) {
        uint8_t *e = buf + VINDEX_SNAP_HEADER_SIZE + (size_t)i * VINDEX_SNAP_ENTRY_SIZE;
        uint64_t off, size;
        memcpy(&off, e + 8, 8);
        memcpy(&size, e + 16, 8);
        if (off <= len && size <= len - off) {
            uint32_t c = vindex_crc32c(0, buf + off, size);
            memcpy(e + 24, &c, 4);
        }
    }
    uint32_t crc = vindex_crc32c(0, buf, 60);
    crc = vindex_crc32c(crc, buf + VINDEX_SNAP_HEADER_SIZE, (size_t)nsec * VINDEX_SNAP_ENTRY_SIZE);
    memcpy(buf + 60, &crc, 4);
}

static void try_wal(const uint8_t *buf, size_t len)
{
    if (len < VINDEX_WAL_HEADER_SIZE)
        return;
    uint32_t dim;
    memcpy(&dim, buf + 12, 4);
    if (dim > VINDEX_DIM_MAX)
        return;
    size_t valid, n = 0;
    uint64_t last;
    char err[256];
    vindex_wal_scan(buf, len, dim, 0, count_record, &n, &valid, &last, err, sizeof(err));
}

/* Rewrites the log header checksum and each record's checksum where its length fits. */
static void fix_wal_crcs(uint8_t *buf, size_t len)
{
    if (len < VINDEX_WAL_HEADER_SIZE)
        return;
    uint32_t crc = vindex_crc32c(0, buf, 28);
    memcpy(buf + 28, &crc, 4);
    size_t off = VINDEX_WAL_HEADER_SIZE;
    while (len - off >= VINDEX_WAL_FRAME_SIZE) {
        uint32_t plen;
        memcpy(&plen, buf + off, 4);
        if (plen > len - off - VINDEX_WAL_FRAME_SIZE)
            break;
        uint32_t c = vindex_crc32c(0, buf + off, 4);
        c = vindex_crc32c(c, buf + off + VINDEX_WAL_FRAME_SIZE, plen);
        memcpy(buf + off + 4, &c, 4);
        off += VINDEX_WAL_FRAME_SIZE + plen;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (8u << 20))
        return 0;
    /* A private, 64-byte aligned copy: the loader reads floats in place, as from a mapping. */
    uint8_t *buf = aligned_alloc(64, (size + 63) / 64 * 64 + 64);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    int is_wal = size >= 8 && memcmp(buf, VINDEX_WAL_MAGIC, 8) == 0;
    if (is_wal) {
        try_wal(buf, size);
        fix_wal_crcs(buf, size);
        try_wal(buf, size);
    } else {
        try_snapshot(buf, size);
        fix_snapshot_crcs(buf, size);
        try_snapshot(buf, size);
    }
    free(buf);
    return 0;
}
