/* Filters (bitmap and callback) and batch calls, on every index kind, against brute force. */
#include <criterion/criterion.h>

#include "testutil.h"

#define N 3000
#define DIM 24
#define NQ 30
#define K 10

typedef struct {
    uint64_t modulus; /* id passes when id % modulus == 0 */
} mod_ctx_t;

static int pass_mod(uint64_t id, void *ctx)
{
    return id % ((mod_ctx_t *)ctx)->modulus == 0;
}

static vindex_t *build(vindex_kind_t kind, const float *base)
{
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, kind, VINDEX_L2, DIM);
    p.capacity = 10000;
    p.threads = 2;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    uint64_t *ids = malloc(N * sizeof(*ids));
    for (size_t i = 0; i < N; i++)
        ids[i] = i;
    cr_assert_eq(vindex_add_batch(ix, ids, base, N, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_count(ix), N);
    free(ids);
    return ix;
}

/* Mean recall@K of filtered searches; every returned id must pass. */
static double filtered_recall(vindex_t *ix, const float *base, const float *qs, uint64_t modulus,
                              int use_bitmap, uint32_t ef)
{
    uint64_t bitmap[(N + 63) / 64] = {0};
    unsigned char keep[N];
    size_t passing = 0;
    for (uint64_t i = 0; i < N; i++) {
        keep[i] = i % modulus == 0;
        passing += keep[i];
        if (keep[i])
            bitmap[i / 64] |= 1ull << (i % 64);
    }
    mod_ctx_t ctx = {modulus};
    vindex_filter_t f = {0};
    if (use_bitmap) {
        f.bitmap = bitmap;
        f.bitmap_bits = N;
    } else {
        f.fn = pass_mod;
        f.ctx = &ctx;
    }
    vindex_search_params_t sp = {.k = K, .ef = ef, .filter = &f};
    size_t hit = 0, want = 0;
    char err[256] = "";
    for (size_t q = 0; q < NQ; q++) {
        uint64_t ids[K];
        double scores[K];
        vindex_hit_t hits[K];
        size_t nt = tu_brute_topk(VINDEX_L2, base, N, DIM, qs + q * DIM, keep, 0, K, ids, scores);
        int got = vindex_search(ix, qs + q * DIM, &sp, hits, err, sizeof(err));
        cr_assert_geq(got, 0, "%s", err);
        cr_assert_eq((size_t)got, nt < K ? nt : K, "passing %zu, got %d", passing, got);
        for (int i = 0; i < got; i++)
            cr_assert_eq(hits[i].id % modulus, 0, "id %llu fails the filter", (unsigned long long)hits[i].id);
        hit += tu_overlap(ids, nt, hits, (size_t)got);
        want += nt;
    }
    return (double)hit / (double)want;
}

static void check_filters(vindex_kind_t kind, double min_recall)
{
    float *base = tu_clustered_vectors(N, DIM, 30, 5);
    float *qs = tu_clustered_vectors(NQ, DIM, 30, 6);
    vindex_t *ix = build(kind, base);
    const uint64_t moduli[] = {2, 10, 100, 1000, 5000};
    for (size_t m = 0; m < sizeof(moduli) / sizeof(moduli[0]); m++) {
        for (int bm = 0; bm <= 1; bm++) {
            double r = filtered_recall(ix, base, qs, moduli[m], bm, 64);
            cr_assert_geq(r, min_recall, "kind %d modulus %llu bitmap %d: recall %.3f", (int)kind,
                          (unsigned long long)moduli[m], bm, r);
        }
    }
    vindex_free(ix);
    free(base);
    free(qs);
}

Test(filter, flat_exact_under_every_selectivity)
{
    check_filters(VINDEX_FLAT, 1.0);
}

Test(filter, hnsw_keeps_recall_under_every_selectivity)
{
    check_filters(VINDEX_HNSW, 0.95);
}

/* Past 2048 passing items the hnsw search walks the graph with the filter inside (the 3000-item
 * indexes above always take the exact path): only passing ids, at high recall. */
Test(filter, hnsw_filtered_walk_on_a_larger_index)
{
    enum { BIG = 20000, BDIM = 16 };
    float *base = tu_clustered_vectors(BIG, BDIM, 50, 11);
    float *qs = tu_clustered_vectors(NQ, BDIM, 50, 12);
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, VINDEX_HNSW, VINDEX_L2, BDIM);
    p.capacity = BIG;
    p.threads = 2;
    p.ef_construction = 100;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    uint64_t *ids = malloc(BIG * sizeof(*ids));
    for (size_t i = 0; i < BIG; i++)
        ids[i] = i;
    cr_assert_eq(vindex_add_batch(ix, ids, base, BIG, err, sizeof(err)), 0, "%s", err);
    unsigned char *keep = malloc(BIG);
    /* 10000 or 4000 ids pass, so every search walks the graph (ef widened to 141, 35, 223). */
    const uint64_t moduli[] = {2, 5, 5};
    const uint32_t efs[] = {100, 16, 100};
    for (size_t c = 0; c < 3; c++) {
        mod_ctx_t ctx = {moduli[c]};
        vindex_filter_t f = {.fn = pass_mod, .ctx = &ctx};
        vindex_search_params_t sp = {.k = K, .ef = efs[c], .filter = &f};
        for (size_t i = 0; i < BIG; i++)
            keep[i] = i % moduli[c] == 0;
        size_t hit = 0, want = 0;
        for (size_t q = 0; q < NQ; q++) {
            uint64_t truth[K];
            double scores[K];
            vindex_hit_t hits[K];
            size_t nt = tu_brute_topk(VINDEX_L2, base, BIG, BDIM, qs + q * BDIM, keep, 0, K, truth, scores);
            int got = vindex_search(ix, qs + q * BDIM, &sp, hits, err, sizeof(err));
            cr_assert_eq(got, K, "%s", err);
            for (int i = 0; i < got; i++)
                cr_assert_eq(hits[i].id % moduli[c], 0);
            hit += tu_overlap(truth, nt, hits, (size_t)got);
            want += nt;
        }
        double r = (double)hit / (double)want;
        cr_log_info("modulus %llu ef %u: recall %.3f", (unsigned long long)moduli[c], efs[c], r);
        cr_assert_geq(r, 0.9, "modulus %llu ef %u: recall %.3f", (unsigned long long)moduli[c], efs[c], r);
    }
    vindex_free(ix);
    free(keep);
    free(ids);
    free(base);
    free(qs);
}

Test(filter, rejects_ambiguous_filter)
{
    float *base = tu_random_vectors(N, DIM, 1);
    vindex_t *ix = build(VINDEX_FLAT, base);
    uint64_t bm = 1;
    mod_ctx_t ctx = {2};
    vindex_filter_t f = {.bitmap = &bm, .bitmap_bits = 1, .fn = pass_mod, .ctx = &ctx};
    vindex_search_params_t sp = {.k = 3, .filter = &f};
    vindex_hit_t hits[3];
    char err[256] = "";
    cr_assert_eq(vindex_search(ix, base, &sp, hits, err, sizeof(err)), VINDEX_EINVAL);
    f.fn = NULL;
    cr_assert_eq(vindex_search(ix, base, &sp, hits, err, sizeof(err)), 1);
    cr_assert_eq(hits[0].id, 0);
    vindex_free(ix);
    free(base);
}

static void batch_matches_single(vindex_kind_t kind)
{
    float *base = tu_clustered_vectors(N, DIM, 30, 8);
    float *qs = tu_clustered_vectors(NQ, DIM, 30, 9);
    vindex_t *ix = build(kind, base);
    vindex_search_params_t sp = {.k = K};
    vindex_hit_t *bhits = calloc(NQ * K, sizeof(*bhits));
    uint32_t nh[NQ];
    char err[256] = "";
    cr_assert_eq(vindex_search_batch(ix, qs, NQ, &sp, bhits, nh, err, sizeof(err)), 0, "%s", err);
    for (size_t q = 0; q < NQ; q++) {
        vindex_hit_t hits[K];
        int got = vindex_search(ix, qs + q * DIM, &sp, hits, err, sizeof(err));
        cr_assert_eq((uint32_t)got, nh[q]);
        for (int i = 0; i < got; i++)
            cr_assert_eq(hits[i].id, bhits[q * K + i].id, "query %zu rank %d", q, i);
    }
    /* Batch validation happens before anything is inserted. */
    uint64_t dup[3] = {N + 1, N + 2, N + 1};
    cr_assert_eq(vindex_add_batch(ix, dup, base, 3, err, sizeof(err)), VINDEX_EINVAL);
    uint64_t live[2] = {N + 5, 7};
    cr_assert_eq(vindex_add_batch(ix, live, base, 2, err, sizeof(err)), VINDEX_EEXIST);
    cr_assert_eq(vindex_count(ix), N);
    cr_assert_not(vindex_contains(ix, N + 5));
    vindex_free(ix);
    free(bhits);
    free(base);
    free(qs);
}

Test(batch, flat_batch_matches_single)
{
    batch_matches_single(VINDEX_FLAT);
}

Test(batch, hnsw_batch_matches_single)
{
    batch_matches_single(VINDEX_HNSW);
}
