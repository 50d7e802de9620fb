/* vindex_get: the stored vector of a live id, on every kind, through upsert and delete. */
#include <criterion/criterion.h>
#include <math.h>

#include "testutil.h"

#define N 500
#define DIM 20

static void check_get(vindex_kind_t kind, vindex_metric_t metric)
{
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, kind, metric, DIM);
    p.capacity = 4096;
    p.nlist = 8;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    float *base = tu_random_vectors(N + 1, DIM, 3);
    if (kind == VINDEX_IVF_FLAT)
        cr_assert_eq(vindex_train(ix, base, N, err, sizeof(err)), 0, "%s", err);
    for (uint64_t i = 0; i < N; i++)
        cr_assert_eq(vindex_add(ix, i * 3, base + i * DIM, err, sizeof(err)), 0, "%s", err);
    float got[DIM];
    for (uint64_t i = 0; i < N; i++) {
        cr_assert_eq(vindex_get(ix, i * 3, got), 0);
        double norm = 0;
        for (int d = 0; d < DIM; d++)
            norm += (double)base[i * DIM + d] * base[i * DIM + d];
        /* Cosine stores unit vectors: the stored one is the given one over its length. */
        double scale = metric == VINDEX_COSINE ? 1 / sqrt(norm) : 1;
        for (int d = 0; d < DIM; d++)
            cr_assert_float_eq(got[d], base[i * DIM + d] * scale, 1e-5, "id %llu dim %d",
                               (unsigned long long)(i * 3), d);
    }
    cr_assert_eq(vindex_get(ix, 1, got), VINDEX_ENOTFOUND);
    cr_assert_eq(vindex_get(ix, VINDEX_ID_NONE, got), VINDEX_ENOTFOUND);
    /* An upsert gives the id its new vector; a delete makes it unknown. */
    cr_assert_eq(vindex_upsert(ix, 0, base + N * DIM, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_get(ix, 0, got), 0);
    double dot = 0, nn = 0;
    for (int d = 0; d < DIM; d++) {
        dot += (double)got[d] * base[N * DIM + d];
        nn += (double)base[N * DIM + d] * base[N * DIM + d];
    }
    cr_assert_float_eq(dot, metric == VINDEX_COSINE ? sqrt(nn) : nn, 1e-4);
    cr_assert_eq(vindex_delete(ix, 3, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_get(ix, 3, got), VINDEX_ENOTFOUND);
    vindex_free(ix);
    free(base);
}

Test(get, flat_l2)
{
    check_get(VINDEX_FLAT, VINDEX_L2);
}

Test(get, hnsw_cosine)
{
    check_get(VINDEX_HNSW, VINDEX_COSINE);
}

Test(get, ivf_ip)
{
    check_get(VINDEX_IVF_FLAT, VINDEX_IP);
}
