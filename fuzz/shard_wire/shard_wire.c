/* Fuzz target for the decoders of what other nodes answer in a fan-out (src/lookalike/
 * shard_wire.c): the first byte picks the decoder, the rest is the JSON text. Decoding must
 * never crash, and whatever it accepts must hold to the documented bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lookalike/lookalike.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 20)
        return 0;
    json_t *j = json_loadb((const char *)data + 1, size - 1, JSON_ALLOW_NUL, NULL);
    if (!j)
        return 0;
    char err[256];
    switch (data[0] % 5) {
    case 0: {
        lookalike_shard_hit_t *h;
        size_t n;
        if (lookalike_wire_hits_decode(j, 4, 100, &h, &n, err, sizeof err) == 0) {
            if (n > 100)
                abort();
            for (size_t i = 0; i < n; i++)
                if (h[i].shard >= 4 || h[i].score != h[i].score)
                    abort();
            free(h);
        }
        break;
    }
    case 1: {
        lookalike_bm25_stats_t st, sum;
        if (lookalike_wire_stats_decode(j, &st, err, sizeof err) == 0) {
            if (st.nwords > LOOKALIKE_BM25_QUERY_WORDS || st.nprefix > LOOKALIKE_BM25_PREFIX_MAX)
                abort();
            for (size_t i = 0; i < st.nprefix; i++)
                if (!st.prefix[i].term[0] || strlen(st.prefix[i].term) > LOOKALIKE_TOKEN_MAX)
                    abort();
            lookalike_bm25_stats_init(&sum);
            if (lookalike_bm25_stats_add(&sum, &st, err, sizeof err) == 0 &&
                lookalike_bm25_stats_add(&sum, &st, err, sizeof err) == 0 && sum.docs != 2 * st.docs)
                abort();
            lookalike_bm25_stats_release(&sum);
            lookalike_bm25_stats_release(&st);
        }
        break;
    }
    case 2: {
        float v[8];
        lookalike_wire_vector_decode(j, v, 8, err, sizeof err);
        break;
    }
    case 3: {
        json_t *acc = json_pack("{s:i,s:{},s:{},s:{},s:{},s:n}", "total", 0, "category", "brand", "colour",
                                "size", "price");
        if (acc && lookalike_wire_facets_add(acc, j, err, sizeof err) == 0 &&
            json_integer_value(json_object_get(acc, "total")) !=
                json_integer_value(json_object_get(j, "total")))
            abort();
        json_decref(acc);
        break;
    }
    default: {
        lookalike_node_info_t n;
        if (lookalike_wire_node_decode(j, &n, err, sizeof err) == 0 &&
            (!lookalike_node_name_valid(n.name) || strncmp(n.url, "http://", 7) != 0))
            abort();
        break;
    }
    }
    json_decref(j);
    return 0;
}
