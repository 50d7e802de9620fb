/* HNSW against the exact index on seeded random data. */
#include <criterion/criterion.h>

#include <stdio.h>

#include "testutil.h"

static double hnsw_recall(vindex_metric_t m, uint32_t dim, size_t n, uint32_t ef, int batch)
{
    const size_t nq = 50, k = 10;
    float *base = tu_clustered_vectors(n, dim, 50, 11 + dim);
    float *qs = tu_clustered_vectors(nq, dim, 50, 12 + dim);
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, VINDEX_HNSW, m, dim);
    p.capacity = n + 10;
    p.M = 12;
    p.ef_construction = 100;
    p.threads = 2;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    if (batch) {
        uint64_t *ids = malloc(n * sizeof(*ids));
        for (size_t i = 0; i < n; i++)
            ids[i] = i + 5;
        cr_assert_eq(vindex_add_batch(ix, ids, base, n, err, sizeof(err)), 0, "%s", err);
        free(ids);
    } else {
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(vindex_add(ix, i + 5, base + i * dim, err, sizeof(err)), 0, "%s", err);
    }
    cr_assert_eq(vindex_count(ix), n);
    size_t hit = 0;
    for (size_t q = 0; q < nq; q++) {
        uint64_t ids[10];
        double scores[10];
        vindex_hit_t hits[10];
        size_t nt = tu_brute_topk(m, base, n, dim, qs + q * dim, NULL, 5, k, ids, scores);
        vindex_search_params_t sp = {.k = k, .ef = ef};
        int got = vindex_search(ix, qs + q * dim, &sp, hits, err, sizeof(err));
        cr_assert_eq(got, (int)k, "%s", err);
        for (int i = 1; i < got; i++)
            cr_assert(!tu_better(m, hits[i].score, hits[i - 1].score), "not sorted");
        hit += tu_overlap(ids, nt, hits, (size_t)got);
    }
    vindex_free(ix);
    free(base);
    free(qs);
    return (double)hit / (double)(nq * k);
}

Test(hnsw, l2_recall_sequential_inserts)
{
    double r = hnsw_recall(VINDEX_L2, 32, 5000, 100, 0);
    cr_assert_geq(r, 0.95, "recall %.3f", r);
}

Test(hnsw, l2_recall_parallel_batch)
{
    double r = hnsw_recall(VINDEX_L2, 32, 5000, 100, 1);
    cr_assert_geq(r, 0.95, "recall %.3f", r);
}

Test(hnsw, cosine_recall)
{
    double r = hnsw_recall(VINDEX_COSINE, 48, 4000, 160, 1);
    cr_assert_geq(r, 0.95, "recall %.3f", r);
}

Test(hnsw, ip_recall)
{
    double r = hnsw_recall(VINDEX_IP, 20, 4000, 128, 1);
    cr_assert_geq(r, 0.90, "recall %.3f", r);
}

Test(hnsw, higher_ef_is_exact_on_small_sets)
{
    double r = hnsw_recall(VINDEX_L2, 7, 800, 800, 0);
    cr_assert_geq(r, 0.999, "recall %.3f", r);
}

Test(hnsw, deletes_and_upserts_are_respected)
{
    const uint32_t dim = 16;
    const size_t n = 2000;
    float *base = tu_clustered_vectors(n, dim, 20, 3);
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, VINDEX_HNSW, VINDEX_L2, dim);
    p.capacity = 5000;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    uint64_t *ids = malloc(n * sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = i;
    cr_assert_eq(vindex_add_batch(ix, ids, base, n, err, sizeof(err)), 0, "%s", err);
    /* Delete every even id: no search may return one, and the odd ones are still found. */
    for (size_t i = 0; i < n; i += 2)
        cr_assert_eq(vindex_delete(ix, i, err, sizeof(err)), 0);
    cr_assert_eq(vindex_count(ix), n / 2);
    unsigned char keep[2000];
    for (size_t i = 0; i < n; i++)
        keep[i] = i % 2;
    size_t hit = 0;
    for (size_t q = 0; q < 40; q++) {
        const float *qv = base + (q * 37 % n) * dim;
        uint64_t tids[10];
        double ts[10];
        vindex_hit_t hits[10];
        size_t nt = tu_brute_topk(VINDEX_L2, base, n, dim, qv, keep, 0, 10, tids, ts);
        vindex_search_params_t sp = {.k = 10, .ef = 100};
        int got = vindex_search(ix, qv, &sp, hits, err, sizeof(err));
        cr_assert_eq(got, 10);
        for (int i = 0; i < got; i++)
            cr_assert_eq(hits[i].id % 2, 1, "deleted id %llu returned", (unsigned long long)hits[i].id);
        hit += tu_overlap(tids, nt, hits, (size_t)got);
    }
    cr_assert_geq((double)hit / 400.0, 0.95);
    /* Upsert id 1 onto the vector of id 1001: a query there finds 1 at distance 0. */
    cr_assert_eq(vindex_upsert(ix, 1, base + 1001 * dim, err, sizeof(err)), 0);
    cr_assert_eq(vindex_count(ix), n / 2);
    vindex_hit_t hits[3];
    vindex_search_params_t sp = {.k = 3, .ef = 50};
    cr_assert_eq(vindex_search(ix, base + 1001 * dim, &sp, hits, err, sizeof(err)), 3);
    cr_assert(hits[0].id == 1 || hits[0].id == 1001);
    cr_assert(hits[1].id == 1 || hits[1].id == 1001);
    cr_assert_float_eq(hits[0].score, 0, 1e-6);
    cr_assert_float_eq(hits[1].score, 0, 1e-6);
    /* The old vector of id 1 no longer leads to id 1. */
    cr_assert_eq(vindex_search(ix, base + 1 * dim, &sp, hits, err, sizeof(err)), 3);
    for (int i = 0; i < 3; i++)
        cr_assert(hits[i].id != 1 || hits[i].score > 1e-3);
    vindex_free(ix);
    free(ids);
    free(base);
}

Test(hnsw, save_and_open_restore_the_same_graph)
{
    const uint32_t dim = 24;
    const size_t n = 3000, nq = 30;
    float *base = tu_clustered_vectors(n, dim, 30, 21);
    float *qs = tu_clustered_vectors(nq, dim, 30, 22);
    char dir[] = "/tmp/vindex-hnsw-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    vindex_params_t p;
    char err[512] = "";
    vindex_params_default(&p, VINDEX_HNSW, VINDEX_COSINE, dim);
    p.capacity = 10000;
    vindex_t *ix = vindex_open(dir, &p, VINDEX_DURABILITY_NONE, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    uint64_t *ids = malloc(n * sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = 7 * i + 1;
    cr_assert_eq(vindex_add_batch(ix, ids, base, n, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < n; i += 10)
        cr_assert_eq(vindex_delete(ix, ids[i], err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_save(ix, dir, err, sizeof(err)), 0, "%s", err);
    vindex_hit_t before[30][10], after[10];
    int nb[30];
    vindex_search_params_t sp = {.k = 10, .ef = 50};
    for (size_t q = 0; q < nq; q++)
        nb[q] = vindex_search(ix, qs + q * dim, &sp, before[q], err, sizeof(err));
    vindex_free(ix);

    ix = vindex_open(dir, NULL, VINDEX_DURABILITY_NONE, err, sizeof(err));
    cr_assert_not_null(ix, "reopen: %s", err);
    cr_assert_eq(vindex_params(ix)->kind, VINDEX_HNSW);
    cr_assert_eq(vindex_count(ix), n - n / 10);
    /* The graph itself is restored, so the same walk gives exactly the same answers. */
    for (size_t q = 0; q < nq; q++) {
        int got = vindex_search(ix, qs + q * dim, &sp, after, err, sizeof(err));
        cr_assert_eq(got, nb[q]);
        for (int i = 0; i < got; i++) {
            cr_assert_eq(after[i].id, before[q][i].id, "query %zu rank %d", q, i);
            cr_assert_float_eq(after[i].score, before[q][i].score, 1e-6);
        }
    }
    /* And it keeps growing after the reload. */
    float extra[24];
    memcpy(extra, base, sizeof(extra));
    cr_assert_eq(vindex_add(ix, 999999, extra, err, sizeof(err)), 0, "%s", err);
    vindex_hit_t one[1];
    sp.k = 1;
    cr_assert_eq(vindex_search(ix, extra, &sp, one, err, sizeof(err)), 1);
    cr_assert_eq(one[0].id, 999999);
    vindex_free(ix);
    free(ids);
    free(base);
    free(qs);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ef sizes per-search arrays: a value past the cap is refused, from the caller or a file. */
Test(hnsw, oversized_ef_is_refused)
{
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, VINDEX_HNSW, VINDEX_L2, 8);
    p.ef_search = 100001;
    cr_assert_null(vindex_new(&p, err, sizeof(err)));
    cr_assert(strstr(err, "too large") != NULL, "%s", err);
    vindex_params_default(&p, VINDEX_HNSW, VINDEX_L2, 8);
    p.ef_construction = 1u << 30;
    cr_assert_null(vindex_new(&p, err, sizeof(err)));
    vindex_params_default(&p, VINDEX_HNSW, VINDEX_L2, 8);
    p.capacity = 16;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    cr_assert_eq(vindex_add(ix, 1, v, err, sizeof(err)), 0, "%s", err);
    vindex_hit_t hit;
    vindex_search_params_t sp = {.k = 1, .ef = 1u << 28};
    cr_assert_eq(vindex_search(ix, v, &sp, &hit, err, sizeof(err)), VINDEX_ETOOLARGE);
    cr_assert(strstr(err, "ef too large") != NULL, "%s", err);
    sp.ef = 100000;
    cr_assert_eq(vindex_search(ix, v, &sp, &hit, err, sizeof(err)), 1, "%s", err);
    vindex_free(ix);
}
