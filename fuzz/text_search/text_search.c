/* Fuzz target for text analysis and the BM25 index: the input, split at NUL bytes, becomes
 * documents and then a query; folding, tokenising, indexing, updating and searching must never
 * crash and must keep their documented invariants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lookalike/lookalike.h"

static int check_token(const char *tok, size_t len, uint32_t index, void *ud)
{
    (void)index;
    (void)ud;
    if (len == 0 || len > LOOKALIKE_TOKEN_MAX || memchr(tok, '\0', len))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *buf = malloc(size + 1), *folded = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    size_t flen;
    if (lookalike_text_fold(buf, size, folded, size + 1, &flen, NULL, 0) == 0 && flen > size)
        abort();
    lookalike_text_opts_t opts = {.stop_words = 1, .max_tokens = 50};
    lookalike_text_tokenize(buf, size, NULL, check_token, NULL, NULL, 0);
    lookalike_text_tokenize(buf, size, &opts, check_token, NULL, NULL, 0);

    lookalike_bm25_params_t p;
    lookalike_bm25_params_default(&p);
    p.max_expansion = 3;
    lookalike_bm25_t *ix = lookalike_bm25_new(&p, NULL, 0);
    /* Documents are the NUL-separated pieces; the last piece is the query. */
    const char *piece = buf, *end = buf + size;
    uint64_t id = 0;
    while (piece < end) {
        const char *next = piece + strlen(piece) + 1;
        if (next >= end)
            break;
        const char *f[LOOKALIKE_FIELD_COUNT] = {piece, id % 2 ? piece : NULL, NULL, "cat", piece};
        lookalike_bm25_put(ix, id % 5, f, NULL, 0);
        if (id % 3 == 2)
            lookalike_bm25_remove(ix, id % 4);
        id++;
        piece = next;
    }
    lookalike_hit_t hits[8];
    size_t n;
    if (lookalike_bm25_search(ix, piece < end ? piece : "", 8, NULL, hits, &n, NULL, 0) == 0) {
        if (n > 8 || n > lookalike_bm25_count(ix))
            abort();
        for (size_t i = 0; i < n; i++)
            if (!(hits[i].score > 0.0f) || (i && hits[i - 1].score < hits[i].score))
                abort();
    }
    lookalike_bm25_free(ix);
    free(buf);
    free(folded);
    return 0;
}
