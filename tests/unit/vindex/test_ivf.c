/* ivf_flat (float and sq8 lists) against the exact reference: recall, determinism, filters. */
#include <criterion/criterion.h>

#include "testutil.h"

#define N 6000
#define DIM 32
#define NQ 40
#define K 10

static vindex_t *make_ivf_dim(vindex_metric_t m, uint32_t dim, uint32_t nlist, int sq8, uint64_t seed)
{
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, VINDEX_IVF_FLAT, m, dim);
    p.capacity = 100000;
    p.threads = 2;
    p.nlist = nlist;
    p.nprobe = 8;
    p.sq8 = sq8;
    p.seed = seed;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    cr_assert_not_null(ix, "vindex_new: %s", err);
    return ix;
}

static vindex_t *make_ivf(vindex_metric_t m, uint32_t nlist, int sq8, uint64_t seed)
{
    return make_ivf_dim(m, DIM, nlist, sq8, seed);
}

static uint64_t *seq_ids(size_t n, uint64_t base)
{
    uint64_t *ids = malloc(n * sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = base + i;
    return ids;
}

/* Mean recall@K of ix over the queries, against brute force on base (ids 0..n). */
static double recall_n(vindex_t *ix, vindex_metric_t m, const float *base, size_t n, uint32_t dim,
                       const float *qs, uint32_t nprobe, const unsigned char *keep, const vindex_filter_t *f)
{
    size_t hit = 0, total = 0;
    char err[256] = "";
    for (size_t q = 0; q < NQ; q++) {
        uint64_t ids[K];
        double scores[K];
        vindex_hit_t hits[K];
        size_t nt = tu_brute_topk(m, base, n, dim, qs + q * dim, keep, 0, K, ids, scores);
        vindex_search_params_t sp = {.k = K, .nprobe = nprobe, .filter = f};
        int got = vindex_search(ix, qs + q * dim, &sp, hits, err, sizeof(err));
        cr_assert_eq(got, (int)nt, "query %zu: %d hits, %zu expected (%s)", q, got, nt, err);
        for (int i = 0; i < got; i++) {
            if (keep)
                cr_assert(keep[hits[i].id], "filtered-out id %llu returned", (unsigned long long)hits[i].id);
            /* Whatever the lists hold, scores reported are exact float scores. */
            double s = tu_score(m, qs + q * dim, base + hits[i].id * dim, dim);
            cr_assert(fabs(hits[i].score - s) <= 1e-3 * (fabs(s) + 1), "score %g vs %g", hits[i].score, s);
            if (i > 0)
                cr_assert(!tu_better(m, hits[i].score, hits[i - 1].score), "not sorted");
        }
        hit += tu_overlap(ids, nt, hits, (size_t)got);
        total += nt;
    }
    return (double)hit / (double)total;
}

static double recall(vindex_t *ix, vindex_metric_t m, const float *base, const float *qs, uint32_t nprobe,
                     const unsigned char *keep, const vindex_filter_t *f)
{
    return recall_n(ix, m, base, N, DIM, qs, nprobe, keep, f);
}

static void ivf_recall_case(vindex_metric_t m, int sq8)
{
    float *base = tu_clustered_vectors(N, DIM, 50, 11);
    float *qs = tu_clustered_vectors(NQ, DIM, 50, 12);
    uint64_t *ids = seq_ids(N, 0);
    vindex_t *ix = make_ivf(m, 64, sq8, 5);
    char err[256] = "";
    cr_assert_eq(vindex_add_batch(ix, ids, base, N, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_count(ix), N);
    double r1 = recall(ix, m, base, qs, 1, NULL, NULL);
    double r8 = recall(ix, m, base, qs, 8, NULL, NULL);
    double rall = recall(ix, m, base, qs, 64, NULL, NULL);
    cr_log_info("metric %d sq8 %d: recall nprobe=1 %.3f, 8 %.3f, 64 %.3f", m, sq8, r1, r8, rall);
    cr_assert_geq(r8, 0.90, "nprobe 8 recall %.3f", r8);
    cr_assert_geq(r8, r1, "more lists cannot lower recall");
    /* All lists scanned: exact for floats; sq8 re-ranks 4k candidates, nearly exact. */
    cr_assert_geq(rall, sq8 ? 0.97 : 0.999, "full-probe recall %.3f", rall);
    vindex_free(ix);
    free(base);
    free(qs);
    free(ids);
}

Test(ivf, l2_recall_against_flat)
{
    ivf_recall_case(VINDEX_L2, 0);
}

Test(ivf, ip_recall_against_flat)
{
    ivf_recall_case(VINDEX_IP, 0);
}

Test(ivf, cosine_recall_against_flat)
{
    ivf_recall_case(VINDEX_COSINE, 0);
}

Test(ivf, sq8_l2_rerank_recall)
{
    ivf_recall_case(VINDEX_L2, 1);
}

Test(ivf, sq8_cosine_rerank_recall)
{
    ivf_recall_case(VINDEX_COSINE, 1);
}

Test(ivf, sq8_ip_rerank_recall)
{
    ivf_recall_case(VINDEX_IP, 1);
}

Test(ivf, same_seed_same_index)
{
    float *base = tu_clustered_vectors(N, DIM, 50, 21);
    float *qs = tu_random_vectors(NQ, DIM, 22);
    uint64_t *ids = seq_ids(N, 0);
    char err[256] = "";
    vindex_t *a = make_ivf(VINDEX_L2, 32, 0, 9), *b = make_ivf(VINDEX_L2, 32, 0, 9);
    cr_assert_eq(vindex_add_batch(a, ids, base, N, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_add_batch(b, ids, base, N, err, sizeof(err)), 0, "%s", err);
    for (size_t q = 0; q < NQ; q++) {
        vindex_hit_t ha[K], hb[K];
        vindex_search_params_t sp = {.k = K, .nprobe = 2};
        int na = vindex_search(a, qs + q * DIM, &sp, ha, err, sizeof(err));
        int nb = vindex_search(b, qs + q * DIM, &sp, hb, err, sizeof(err));
        cr_assert_eq(na, nb);
        for (int i = 0; i < na; i++)
            cr_assert_eq(ha[i].id, hb[i].id);
    }
    vindex_free(a);
    vindex_free(b);
    free(base);
    free(qs);
    free(ids);
}

Test(ivf, training_rules)
{
    float *base = tu_random_vectors(200, DIM, 31);
    char err[256] = "";
    vindex_t *ix = make_ivf(VINDEX_L2, 64, 0, 1);
    cr_assert_eq(vindex_add(ix, 1, base, err, sizeof(err)), VINDEX_ESTATE);
    cr_assert(strstr(err, "train") != NULL, "%s", err);
    cr_assert_eq(vindex_train(ix, base, 10, err, sizeof(err)), VINDEX_EINVAL);
    cr_assert_eq(vindex_train(ix, base, 200, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_train(ix, base, 200, err, sizeof(err)), VINDEX_ESTATE);
    for (size_t i = 0; i < 200; i++)
        cr_assert_eq(vindex_add(ix, i, base + i * DIM, err, sizeof(err)), 0, "%s", err);
    /* Fewer items than k in the probed lists: the search still returns k. */
    vindex_hit_t hits[K];
    vindex_search_params_t sp = {.k = K, .nprobe = 1};
    cr_assert_eq(vindex_search(ix, base, &sp, hits, err, sizeof(err)), K);
    cr_assert_eq(hits[0].id, 0);
    vindex_free(ix);

    vindex_params_t p;
    vindex_params_default(&p, VINDEX_FLAT, VINDEX_L2, DIM);
    vindex_t *flat = vindex_new(&p, err, sizeof(err));
    cr_assert_eq(vindex_train(flat, base, 200, err, sizeof(err)), VINDEX_EINVAL);
    vindex_free(flat);
    free(base);
}

/* n items of dim; the core scans the passing items exactly when few pass, so only a large n
 * with a loose filter reaches the lists' own filtered scan. */
static void filtered_case_n(int sq8, double selectivity, size_t n, uint32_t dim, uint32_t nprobe)
{
    float *base = tu_clustered_vectors(n, dim, 50, 41);
    float *qs = tu_clustered_vectors(NQ, dim, 50, 42);
    uint64_t *ids = seq_ids(n, 0);
    vindex_t *ix = make_ivf_dim(VINDEX_L2, dim, 64, sq8, 3);
    char err[256] = "";
    cr_assert_eq(vindex_add_batch(ix, ids, base, n, err, sizeof(err)), 0, "%s", err);
    unsigned char *keep = calloc(n, 1);
    uint64_t *bitmap = calloc((n + 63) / 64, sizeof(uint64_t));
    uint64_t s = 77;
    size_t passing = 0;
    for (size_t i = 0; i < n; i++) {
        if ((double)tu_next(&s) / 9007199254740992.0 < selectivity) {
            keep[i] = 1;
            bitmap[i / 64] |= 1ull << (i % 64);
            passing++;
        }
    }
    cr_assert_gt(passing, 0);
    vindex_filter_t f = {.bitmap = bitmap, .bitmap_bits = n};
    double r = recall_n(ix, VINDEX_L2, base, n, dim, qs, nprobe, keep, &f);
    cr_log_info("sq8 %d selectivity %.3f (%zu pass): recall %.3f", sq8, selectivity, passing, r);
    cr_assert_geq(r, 0.95, "filtered recall %.3f at selectivity %.3f", r, selectivity);
    vindex_free(ix);
    free(keep);
    free(bitmap);
    free(base);
    free(qs);
    free(ids);
}

static void filtered_case(int sq8, double selectivity)
{
    filtered_case_n(sq8, selectivity, N, DIM, 4);
}

Test(ivf, filtered_scan_inside_the_lists)
{
    filtered_case_n(0, 0.5, 30000, 16, 16);
    filtered_case_n(0, 0.2, 30000, 16, 16);
    filtered_case_n(1, 0.2, 30000, 16, 16);
}

Test(ivf, filtered_search_keeps_recall_at_every_selectivity)
{
    filtered_case(0, 0.5);
    filtered_case(0, 0.1);
    filtered_case(0, 0.01);
    filtered_case(0, 0.001);
}

Test(ivf, sq8_filtered_search)
{
    filtered_case(1, 0.3);
    filtered_case(1, 0.005);
}

Test(ivf, deleted_and_replaced_items_are_not_returned)
{
    float *base = tu_clustered_vectors(N, DIM, 50, 51);
    uint64_t *ids = seq_ids(N, 0);
    vindex_t *ix = make_ivf(VINDEX_L2, 32, 0, 3);
    char err[256] = "";
    cr_assert_eq(vindex_add_batch(ix, ids, base, N, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < 100; i++)
        cr_assert_eq(vindex_delete(ix, i, err, sizeof(err)), 0, "%s", err);
    float far[DIM];
    for (int d = 0; d < DIM; d++)
        far[d] = 50.0f;
    cr_assert_eq(vindex_upsert(ix, 200, far, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_count(ix), N - 100);
    for (size_t q = 0; q < 100; q++) {
        vindex_hit_t hits[K];
        vindex_search_params_t sp = {.k = K, .nprobe = 32};
        int got = vindex_search(ix, base + q * DIM, &sp, hits, err, sizeof(err));
        cr_assert_eq(got, K);
        for (int i = 0; i < got; i++) {
            cr_assert_geq(hits[i].id, 100, "deleted id %llu returned", (unsigned long long)hits[i].id);
            cr_assert(hits[i].id != 200 || hits[i].score > 1000, "old vector of a replaced id returned");
        }
    }
    vindex_hit_t hits[1];
    vindex_search_params_t sp = {.k = 1, .nprobe = 1};
    cr_assert_eq(vindex_search(ix, far, &sp, hits, err, sizeof(err)), 1);
    cr_assert_eq(hits[0].id, 200);
    cr_assert_lt(hits[0].score, 1e-6);
    vindex_free(ix);
    free(base);
    free(ids);
}
