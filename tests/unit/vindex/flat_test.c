/* The exact index against a brute-force reference, plus the id, delete and filter rules. */
#include <criterion/criterion.h>

#include "testutil.h"

static vindex_t *make(vindex_kind_t kind, vindex_metric_t m, uint32_t dim)
{
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, kind, m, dim);
    p.capacity = 100000;
    p.threads = 2;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    cr_assert_not_null(ix, "vindex_new: %s", err);
    return ix;
}

static void exact_matches_reference(vindex_metric_t m, uint32_t dim)
{
    const size_t n = 700, nq = 20, k = 10;
    float *base = tu_random_vectors(n, dim, 7 + dim);
    float *qs = tu_random_vectors(nq, dim, 99 + dim);
    vindex_t *ix = make(VINDEX_FLAT, m, dim);
    char err[256] = "";
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(vindex_add(ix, 1000 + i, base + i * dim, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_count(ix), n);
    for (size_t q = 0; q < nq; q++) {
        uint64_t ids[10];
        double scores[10];
        vindex_hit_t hits[10];
        size_t nt = tu_brute_topk(m, base, n, dim, qs + q * dim, NULL, 1000, k, ids, scores);
        vindex_search_params_t sp = {.k = k};
        int got = vindex_search(ix, qs + q * dim, &sp, hits, err, sizeof(err));
        cr_assert_eq(got, (int)nt, "%s", err);
        for (size_t i = 0; i < nt; i++) {
            double tol = 1e-4 * (fabs(scores[i]) + 1);
            cr_assert(fabs(hits[i].score - scores[i]) <= tol, "rank %zu: %g vs %g", i, hits[i].score,
                      scores[i]);
            if (i > 0)
                cr_assert(!tu_better(m, hits[i].score, hits[i - 1].score), "not sorted at %zu", i);
        }
        /* Ties aside, the ids agree; with random floats ties do not happen. */
        cr_assert_eq(tu_overlap(ids, nt, hits, (size_t)got), nt);
    }
    vindex_free(ix);
    free(base);
    free(qs);
}

Test(flat, l2_matches_reference)
{
    exact_matches_reference(VINDEX_L2, 37);
}

Test(flat, ip_matches_reference)
{
    exact_matches_reference(VINDEX_IP, 64);
}

Test(flat, cosine_matches_reference)
{
    exact_matches_reference(VINDEX_COSINE, 130);
}

Test(flat, small_and_odd_dims)
{
    exact_matches_reference(VINDEX_L2, 2);
    exact_matches_reference(VINDEX_L2, 17);
}

Test(flat, rejects_bad_params)
{
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, VINDEX_FLAT, VINDEX_L2, 1);
    cr_assert_null(vindex_new(&p, err, sizeof(err)));
    cr_assert(strstr(err, "dim") != NULL);
    vindex_params_default(&p, VINDEX_FLAT, VINDEX_L2, 4097);
    cr_assert_null(vindex_new(&p, err, sizeof(err)));
    vindex_params_default(&p, VINDEX_FLAT, (vindex_metric_t)7, 8);
    cr_assert_null(vindex_new(&p, err, sizeof(err)));
}

Test(flat, add_delete_upsert_count)
{
    vindex_t *ix = make(VINDEX_FLAT, VINDEX_L2, 4);
    char err[256] = "";
    float a[4] = {0, 0, 0, 0}, b[4] = {1, 0, 0, 0}, c[4] = {5, 5, 5, 5};
    cr_assert_eq(vindex_add(ix, 1, a, err, sizeof(err)), 0);
    cr_assert_eq(vindex_add(ix, 2, b, err, sizeof(err)), 0);
    cr_assert_eq(vindex_add(ix, 1, c, err, sizeof(err)), VINDEX_EEXIST);
    cr_assert_eq(vindex_add(ix, VINDEX_ID_NONE, c, err, sizeof(err)), VINDEX_EINVAL);
    cr_assert_eq(vindex_count(ix), 2);
    vindex_hit_t hits[4];
    vindex_search_params_t sp = {.k = 4};
    cr_assert_eq(vindex_search(ix, a, &sp, hits, err, sizeof(err)), 2);
    cr_assert_eq(hits[0].id, 1);
    cr_assert_float_eq(hits[0].score, 0, 1e-6);
    cr_assert_eq(hits[1].id, 2);
    cr_assert_float_eq(hits[1].score, 1, 1e-6);

    /* Upsert moves id 1 far away: it now ranks last, and appears once. */
    cr_assert_eq(vindex_upsert(ix, 1, c, err, sizeof(err)), 0);
    cr_assert_eq(vindex_count(ix), 2);
    cr_assert_eq(vindex_search(ix, a, &sp, hits, err, sizeof(err)), 2);
    cr_assert_eq(hits[0].id, 2);
    cr_assert_eq(hits[1].id, 1);
    cr_assert_float_eq(hits[1].score, 100, 1e-4);

    cr_assert_eq(vindex_delete(ix, 2, err, sizeof(err)), 0);
    cr_assert_eq(vindex_delete(ix, 2, err, sizeof(err)), VINDEX_ENOTFOUND);
    cr_assert_eq(vindex_count(ix), 1);
    cr_assert_not(vindex_contains(ix, 2));
    cr_assert(vindex_contains(ix, 1));
    cr_assert_eq(vindex_search(ix, a, &sp, hits, err, sizeof(err)), 1);
    cr_assert_eq(hits[0].id, 1);

    /* A deleted id can come back; upsert of an absent id inserts. */
    cr_assert_eq(vindex_add(ix, 2, b, err, sizeof(err)), 0);
    cr_assert_eq(vindex_upsert(ix, 3, a, err, sizeof(err)), 0);
    cr_assert_eq(vindex_count(ix), 3);
    cr_assert_eq(vindex_search(ix, a, &sp, hits, err, sizeof(err)), 3);
    cr_assert_eq(hits[0].id, 3);
    cr_assert_eq(hits[1].id, 2);
    cr_assert_eq(hits[2].id, 1);
    vindex_free(ix);
}

Test(flat, rejects_bad_vectors_and_queries)
{
    vindex_t *ix = make(VINDEX_FLAT, VINDEX_COSINE, 3);
    char err[256] = "";
    float zero[3] = {0, 0, 0}, nan[3] = {1, NAN, 0}, ok[3] = {1, 2, 3};
    cr_assert_eq(vindex_add(ix, 1, zero, err, sizeof(err)), VINDEX_EINVAL);
    cr_assert_eq(vindex_add(ix, 1, nan, err, sizeof(err)), VINDEX_EINVAL);
    cr_assert_eq(vindex_add(ix, 1, ok, err, sizeof(err)), 0);
    vindex_hit_t hits[2];
    vindex_search_params_t sp = {.k = 2};
    cr_assert_eq(vindex_search(ix, nan, &sp, hits, err, sizeof(err)), VINDEX_EINVAL);
    cr_assert_eq(vindex_search(ix, zero, &sp, hits, err, sizeof(err)), 1);
    cr_assert_float_eq(hits[0].score, 0, 1e-6);
    sp.k = 0;
    cr_assert_eq(vindex_search(ix, ok, &sp, hits, err, sizeof(err)), VINDEX_EINVAL);
    vindex_free(ix);
}

Test(flat, capacity_is_enforced)
{
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, VINDEX_FLAT, VINDEX_L2, 8);
    p.capacity = 3;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    cr_assert_not_null(ix);
    float v[8] = {1};
    for (uint64_t i = 0; i < 3; i++)
        cr_assert_eq(vindex_add(ix, i, v, err, sizeof(err)), 0);
    cr_assert_eq(vindex_add(ix, 9, v, err, sizeof(err)), VINDEX_ETOOLARGE);
    cr_assert(strstr(err, "too large") != NULL);
    uint64_t ids[2] = {10, 11};
    float vs[16] = {0};
    cr_assert_eq(vindex_add_batch(ix, ids, vs, 2, err, sizeof(err)), VINDEX_ETOOLARGE);
    vindex_free(ix);
}
