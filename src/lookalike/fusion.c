/* Reciprocal rank fusion of ranked lists, keeping each signal's rank and score per result. */
#include "lookalike/lookalike.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint32_t best_rank(const lookalike_fused_t *r, size_t nsignals)
{
    uint32_t best = UINT32_MAX;
    for (size_t s = 0; s < nsignals; s++)
        if (r->rank[s] && r->rank[s] < best)
            best = r->rank[s];
    return best;
}

/* Best first: fused score, then the best single rank, then the smaller id. */
static int cmp_fused(const void *a, const void *b, void *ctx)
{
    const lookalike_fused_t *x = a, *y = b;
    size_t ns = *(const size_t *)ctx;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    uint32_t bx = best_rank(x, ns), by = best_rank(y, ns);
    if (bx != by)
        return bx < by ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id ? 1 : 0;
}

int lookalike_fuse(const lookalike_signal_t *signals, size_t nsignals, const lookalike_fuse_opts_t *opts,
                   lookalike_fused_t *out, size_t *nout, size_t *total, char *err, size_t errlen)
{
    *nout = 0;
    if (total)
        *total = 0;
    double krrf = opts && opts->k_rrf > 0.0 ? opts->k_rrf : LOOKALIKE_RRF_K;
    size_t k = opts ? opts->k : 10, offset = opts ? opts->offset : 0;
    if (nsignals > LOOKALIKE_MAX_SIGNALS) {
        if (err && errlen)
            snprintf(err, errlen, "fusion: too many signals (%zu, at most %d)", nsignals,
                     LOOKALIKE_MAX_SIGNALS);
        return LOOKALIKE_EINVAL;
    }
    if (!(krrf <= 1e6) || k > LOOKALIKE_K_MAX || offset > LOOKALIKE_FUSION_INPUT_MAX) {
        if (err && errlen)
            snprintf(err, errlen, "fusion: k_rrf must be in (0, 1e6], k at most %d, offset at most %d",
                     LOOKALIKE_K_MAX, LOOKALIKE_FUSION_INPUT_MAX);
        return LOOKALIKE_EINVAL;
    }
    size_t sum = 0;
    for (size_t s = 0; s < nsignals; s++) {
        float w = signals[s].weight;
        if (!(w >= 0.0f && w <= 1e6f)) {
            if (err && errlen)
                snprintf(err, errlen, "fusion: weight of signal %s must be in [0, 1e6]",
                         signals[s].name ? signals[s].name : "?");
            return LOOKALIKE_EINVAL;
        }
        sum += signals[s].n;
        if (sum > LOOKALIKE_FUSION_INPUT_MAX) {
            if (err && errlen)
                snprintf(err, errlen, "fusion: input too large (over %d hits in all)",
                         LOOKALIKE_FUSION_INPUT_MAX);
            return LOOKALIKE_ETOOLARGE;
        }
    }
    int rc = LOOKALIKE_ENOMEM;
    size_t cap = 16;
    while (cap < sum * 2)
        cap *= 2;
    uint32_t *table = malloc(cap * sizeof *table);
    lookalike_fused_t *res = malloc((sum ? sum : 1) * sizeof *res);
    if (!table || !res)
        goto fail;
    memset(table, 0xFF, cap * sizeof *table);
    size_t nres = 0;
    for (size_t s = 0; s < nsignals; s++) {
        for (size_t i = 0; i < signals[s].n; i++) {
            uint64_t id = signals[s].hits[i].id;
            size_t h = mix(id) & (cap - 1);
            while (table[h] != UINT32_MAX && res[table[h]].id != id)
                h = (h + 1) & (cap - 1);
            lookalike_fused_t *r;
            if (table[h] == UINT32_MAX) {
                table[h] = (uint32_t)nres;
                r = &res[nres++];
                memset(r, 0, sizeof *r);
                r->id = id;
            } else {
                r = &res[table[h]];
            }
            /* An id listed twice in one signal keeps its better (first) rank. */
            if (r->rank[s])
                continue;
            r->rank[s] = (uint32_t)(i + 1);
            r->signal_score[s] = signals[s].hits[i].score;
            r->score += signals[s].weight / (krrf + (double)(i + 1));
        }
    }
    qsort_r(res, nres, sizeof *res, cmp_fused, &nsignals);
    if (total)
        *total = nres;
    size_t n = offset < nres ? nres - offset : 0;
    if (n > k)
        n = k;
    if (n)
        memcpy(out, res + offset, n * sizeof *out);
    *nout = n;
    rc = 0;
fail:
    if (rc == LOOKALIKE_ENOMEM && err && errlen)
        snprintf(err, errlen, "fusion: out of memory");
    free(table);
    free(res);
    return rc;
}
