/* Shared by the vindex unit tests: seeded random data and a brute-force reference. */
#ifndef VINDEX_TESTUTIL_H
#define VINDEX_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vindex/vindex.h"

static inline uint64_t tu_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

/* n*dim floats in [-1, 1), from seed. Caller frees. */
static inline float *tu_random_vectors(size_t n, uint32_t dim, uint64_t seed)
{
    float *v = malloc(n * dim * sizeof(float));
    for (size_t i = 0; i < n * dim; i++)
        v[i] = (float)((double)tu_next(&seed) / 9007199254740992.0 * 2 - 1);
    return v;
}

/* Clustered data (closer to real embeddings than uniform noise): `clusters` centres. */
static inline float *tu_clustered_vectors(size_t n, uint32_t dim, uint32_t clusters, uint64_t seed)
{
    float *centres = tu_random_vectors(clusters, dim, seed ^ 0x9e3779b97f4a7c15ull);
    float *v = tu_random_vectors(n, dim, seed);
    for (size_t i = 0; i < n; i++) {
        const float *c = centres + (i % clusters) * dim;
        for (uint32_t j = 0; j < dim; j++)
            v[i * dim + j] = c[j] + 0.3f * v[i * dim + j];
    }
    free(centres);
    return v;
}

/* Reference score in double: the same definitions as vindex.h. */
static inline double tu_score(vindex_metric_t m, const float *a, const float *b, uint32_t dim)
{
    double s = 0, na = 0, nb = 0;
    for (uint32_t i = 0; i < dim; i++) {
        if (m == VINDEX_L2)
            s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        else
            s += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    if (m == VINDEX_COSINE)
        s /= sqrt(na) * sqrt(nb);
    return s;
}

static inline int tu_better(vindex_metric_t m, double x, double y)
{
    return m == VINDEX_L2 ? x < y : x > y;
}

/* Exact top-k ids (ids[i] = i + id_base) among items with keep[i] != 0 (keep may be NULL).
 * Returns how many were found. */
static inline size_t tu_brute_topk(vindex_metric_t m, const float *base, size_t n, uint32_t dim,
                                   const float *q, const unsigned char *keep, uint64_t id_base, size_t k,
                                   uint64_t *out_ids, double *out_scores)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        if (keep && !keep[i])
            continue;
        double s = tu_score(m, q, base + i * dim, dim);
        if (found == k && !tu_better(m, s, out_scores[k - 1]))
            continue;
        size_t j = found < k ? found++ : k - 1;
        while (j > 0 && tu_better(m, s, out_scores[j - 1])) {
            out_scores[j] = out_scores[j - 1];
            out_ids[j] = out_ids[j - 1];
            j--;
        }
        out_scores[j] = s;
        out_ids[j] = i + id_base;
    }
    return found;
}

/* |truth ∩ got| over the first k of each. */
static inline size_t tu_overlap(const uint64_t *truth, size_t nt, const vindex_hit_t *got, size_t ng)
{
    size_t hit = 0;
    for (size_t i = 0; i < nt; i++) {
        for (size_t j = 0; j < ng; j++) {
            if (got[j].id == truth[i]) {
                hit++;
                break;
            }
        }
    }
    return hit;
}

#endif
