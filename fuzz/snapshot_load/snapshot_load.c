/* Fuzz target for the node snapshot reader (src/lookalike/snapshot.c). Inputs go through the
 * parser twice: as they are (most fail the checksum) and with their last 32 bytes replaced by
 * the right SHA-256, so the structure checks behind the checksum are reached too. Whatever is
 * accepted must have been walked in bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lookalike/lookalike.h"

static int on_header(void *ud, uint64_t seq, const char *shards, uint32_t n)
{
    (void)ud;
    (void)seq;
    if (!shards[0] || strlen(shards) > 1024 || n > 256)
        abort();
    return 0;
}

static int on_coll(void *ud, const char *name, uint32_t nshards, uint32_t key, uint64_t nrec)
{
    (void)ud;
    (void)nrec;
    if (!lookalike_collection_name_valid(name) || nshards < 1 || nshards > LOOKALIKE_SHARDS_MAX || key > 1)
        abort();
    return 0;
}

static int on_record(void *ud, uint64_t doc, const char *json, size_t len)
{
    (void)doc;
    size_t *total = ud;
    if (len < 1 || len > LOOKALIKE_SNAP_RECORD_MAX)
        abort();
    /* Touch every byte: out-of-bounds reads show under the sanitizers. */
    for (size_t i = 0; i < len; i++)
        *total += (unsigned char)json[i];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const lookalike_snap_visitor_t v = {on_header, on_coll, on_record};
    size_t total = 0;
    char err[256];
    lookalike_snap_parse(data, size, &v, &total, err, sizeof err);
    if (size >= 60 && size <= 1 << 20) {
        uint8_t *copy = malloc(size);
        memcpy(copy, data, size);
        lookalike_sha256_t sha;
        lookalike_sha256_init(&sha);
        lookalike_sha256_update(&sha, copy, size - 32);
        lookalike_sha256_final(&sha, copy + size - 32);
        lookalike_snap_parse(copy, size, &v, &total, err, sizeof err);
        free(copy);
    }
    return 0;
}
