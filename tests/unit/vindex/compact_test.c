/* Compaction: recall after delete churn against a fresh build, the graph it leaves, slots and
 * memory given back and reused, the automatic trigger, and reclaimed slots across save/load. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <unistd.h>

#include "testutil.h"
#include "vindex/hnsw.h"
#include "vindex/index.h"

#define DIM 24
#define N 4000
#define EXTRA 2000
#define NQ 200
#define K 10
#define ROUNDS 5

/* base holds N + EXTRA vectors; item i has id i and vector base[i], whatever slot it gets. */
static float *base, *queries;

static void setup(void)
{
    base = tu_clustered_vectors(N + EXTRA, DIM, 40, 21);
    queries = tu_clustered_vectors(NQ, DIM, 40, 22);
}

static void teardown(void)
{
    free(base);
    free(queries);
}

static vindex_params_t params(vindex_kind_t kind, int sq8)
{
    vindex_params_t p;
    vindex_params_default(&p, kind, VINDEX_L2, DIM);
    p.capacity = 4 * (N + EXTRA);
    p.M = 12;
    p.ef_construction = 100;
    /* One thread: the same graph on every run, so recall comparisons do not flake. */
    p.threads = 1;
    p.nlist = 32;
    p.nprobe = 32;
    p.sq8 = sq8;
    p.compact_threshold = 0;
    return p;
}

static void add_range(vindex_t *ix, uint64_t from, uint64_t to)
{
    char err[256] = "";
    uint64_t *ids = malloc((to - from) * sizeof(*ids));
    for (uint64_t i = from; i < to; i++)
        ids[i - from] = i;
    cr_assert_eq(vindex_add_batch(ix, ids, base + from * DIM, to - from, err, sizeof(err)), 0, "%s", err);
    free(ids);
}

/* Recall@K over the queries against the brute-force top-K of the items with alive[i] set. */
static double recall(vindex_t *ix, const unsigned char *alive, uint32_t ef)
{
    size_t hit = 0, want = 0;
    char err[256] = "";
    for (size_t q = 0; q < NQ; q++) {
        uint64_t ids[K];
        double scores[K];
        vindex_hit_t hits[K];
        size_t nt =
            tu_brute_topk(VINDEX_L2, base, N + EXTRA, DIM, queries + q * DIM, alive, 0, K, ids, scores);
        vindex_search_params_t sp = {.k = K, .ef = ef};
        int got = vindex_search(ix, queries + q * DIM, &sp, hits, err, sizeof(err));
        cr_assert_eq(got, (int)nt, "query %zu: %d hits of %zu: %s", q, got, nt, err);
        for (int i = 0; i < got; i++)
            cr_assert(alive[hits[i].id], "query %zu returned deleted id %llu", q,
                      (unsigned long long)hits[i].id);
        hit += tu_overlap(ids, nt, hits, (size_t)got);
        want += nt;
    }
    return (double)hit / (double)want;
}

/*
 * The churn: all N items, then ROUNDS rounds that each delete N/10 random live items and add
 * EXTRA/ROUNDS new ones, so that half the original items are gone at the end. With `compact`
 * the index is compacted after every round's deletes (its inserts then reuse the slots).
 */
static void churn(vindex_t *ix, unsigned char *alive, int compact)
{
    char err[256] = "";
    memset(alive, 0, N + EXTRA);
    add_range(ix, 0, N);
    memset(alive, 1, N);
    uint64_t seed = 99;
    for (int r = 0; r < ROUNDS; r++) {
        for (int d = 0; d < N / 10;) {
            uint64_t id = tu_next(&seed) % N;
            if (!alive[id])
                continue;
            cr_assert_eq(vindex_delete(ix, id, err, sizeof(err)), 0, "%s", err);
            alive[id] = 0;
            d++;
        }
        if (compact)
            cr_assert_eq(vindex_compact(ix, err, sizeof(err)), 0, "%s", err);
        uint64_t from = N + (uint64_t)r * EXTRA / ROUNDS, to = N + (uint64_t)(r + 1) * EXTRA / ROUNDS;
        /* Half singly, half as a batch: both insert paths reuse slots. */
        uint64_t mid = from + (to - from) / 2;
        for (uint64_t i = from; i < mid; i++)
            cr_assert_eq(vindex_add(ix, i, base + i * DIM, err, sizeof(err)), 0, "%s", err);
        add_range(ix, mid, to);
        memset(alive + from, 1, to - from);
    }
}

static vindex_t *fresh_build(vindex_kind_t kind, int sq8, const unsigned char *alive)
{
    vindex_params_t p = params(kind, sq8);
    char err[256] = "";
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    size_t n = 0;
    uint64_t *ids = malloc((N + EXTRA) * sizeof(*ids));
    float *vecs = malloc((size_t)(N + EXTRA) * DIM * sizeof(float));
    for (uint64_t i = 0; i < N + EXTRA; i++) {
        if (!alive[i])
            continue;
        ids[n] = i;
        memcpy(vecs + n * DIM, base + i * DIM, DIM * sizeof(float));
        n++;
    }
    cr_assert_eq(vindex_add_batch(ix, ids, vecs, n, err, sizeof(err)), 0, "%s", err);
    free(ids);
    free(vecs);
    return ix;
}

/* Every list of every slot in use names a slot in use whose level reaches the list's; every live
 * item is reachable from the entry point on level 0. Returns the live items that are not. */
static size_t check_graph(vindex_t *ix)
{
    vindex_hnsw_t *h = ix->impl;
    uint32_t n = ix->next_slot;
    for (uint32_t s = 0; s < n; s++) {
        if (ix->flags[s] & VINDEX_FLAG_FREE) {
            cr_assert_eq(vindex_hnsw_links(h, s, 0)[0], 0, "free slot %u keeps links", s);
            continue;
        }
        for (unsigned l = 0; l <= h->levels[s]; l++) {
            const uint32_t *ln = vindex_hnsw_links(h, s, l);
            for (uint32_t j = 1; j <= ln[0]; j++) {
                cr_assert_lt(ln[j], n);
                cr_assert_eq(ix->flags[ln[j]] & VINDEX_FLAG_FREE, 0, "slot %u links free slot %u", s, ln[j]);
                cr_assert_geq(h->levels[ln[j]], l, "slot %u links %u below level %u", s, ln[j], l);
            }
        }
    }
    uint8_t *seen = calloc(n, 1);
    uint32_t *queue = malloc(n * sizeof(*queue)), qn = 0;
    if (h->entry != VINDEX_HNSW_ENTRY_NONE) {
        queue[qn++] = (uint32_t)h->entry;
        seen[(uint32_t)h->entry] = 1;
    }
    for (uint32_t at = 0; at < qn; at++) {
        const uint32_t *ln = vindex_hnsw_links(h, queue[at], 0);
        for (uint32_t j = 1; j <= ln[0]; j++) {
            if (!seen[ln[j]]) {
                seen[ln[j]] = 1;
                queue[qn++] = ln[j];
            }
        }
    }
    size_t unreachable = 0;
    for (uint32_t s = 0; s < n; s++)
        unreachable += !(ix->flags[s] & VINDEX_FLAG_DEAD) && !seen[s];
    free(seen);
    free(queue);
    return unreachable;
}

TestSuite(compact, .init = setup, .fini = teardown);

Test(compact, hnsw_recall_after_half_deleted_stays_near_a_fresh_build)
{
    unsigned char *alive = malloc(N + EXTRA);
    vindex_params_t p = params(VINDEX_HNSW, 0);
    char err[256] = "";
    vindex_t *kept = vindex_new(&p, err, sizeof(err)), *compacted = vindex_new(&p, err, sizeof(err));
    cr_assert(kept && compacted, "%s", err);
    churn(kept, alive, 0);
    churn(compacted, alive, 1);
    vindex_t *fresh = fresh_build(VINDEX_HNSW, 0, alive);
    const uint32_t efs[] = {16, 40, 100};
    for (size_t e = 0; e < 3; e++) {
        double r_fresh = recall(fresh, alive, efs[e]), r_kept = recall(kept, alive, efs[e]),
               r_comp = recall(compacted, alive, efs[e]);
        cr_log_info("ef %u: recall fresh %.4f, tombstones kept %.4f, compacted %.4f", efs[e], r_fresh, r_kept,
                    r_comp);
        cr_assert_geq(r_comp, r_fresh - 0.02, "ef %u: compacted %.4f vs fresh %.4f", efs[e], r_comp, r_fresh);
    }
    size_t lost = check_graph(compacted);
    cr_log_info("live items unreachable on level 0 after compaction: %zu", lost);
    cr_assert_leq(lost, (size_t)vindex_count(compacted) / 1000, "%zu live items unreachable", lost);

    /* Slots: the compacted index reused what it reclaimed; the other one grew by every insert. */
    vindex_stats_t sk, sc;
    vindex_stats(kept, &sk);
    vindex_stats(compacted, &sc);
    cr_log_info("slots: kept %llu (tombstones %llu, %zu bytes), compacted %llu (free %llu, %zu bytes)",
                (unsigned long long)sk.slots, (unsigned long long)sk.tombstones, sk.mem_bytes,
                (unsigned long long)sc.slots, (unsigned long long)sc.free, sc.mem_bytes);
    cr_assert_eq(sk.slots, N + EXTRA);
    cr_assert_eq(sk.tombstones, N / 2);
    cr_assert_eq(sc.live, N);
    cr_assert_eq(sc.slots, N, "every insert reused a reclaimed slot");
    cr_assert_eq(sc.tombstones, 0);
    cr_assert_eq(sc.compactions, ROUNDS);
    cr_assert_eq(sc.reclaimed, N / 2);
    cr_assert_lt(sc.mem_bytes, sk.mem_bytes * 8 / 10, "compacted %zu bytes vs %zu", sc.mem_bytes,
                 sk.mem_bytes);
    vindex_free(kept);
    vindex_free(compacted);
    vindex_free(fresh);
    free(alive);
}

/* flat and ivf_flat (float rows and sq8 codes): exact answers through the churn, list memory
 * given back by the compaction. */
static void churn_exact(vindex_kind_t kind, int sq8)
{
    unsigned char *alive = malloc(N + EXTRA);
    vindex_params_t p = params(kind, sq8);
    char err[256] = "";
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    churn(ix, alive, 1);
    cr_assert_float_eq(recall(ix, alive, 0), 1.0, 1e-9);
    vindex_stats_t st;
    vindex_stats(ix, &st);
    cr_assert_eq(st.slots, N);
    cr_assert_eq(st.reclaimed, N / 2);
    /* Delete half of what is live; the compaction gives the rows back. */
    size_t before = vindex_mem_bytes(ix);
    for (uint64_t i = 0; i < N + EXTRA; i += 2) {
        if (alive[i]) {
            cr_assert_eq(vindex_delete(ix, i, err, sizeof(err)), 0, "%s", err);
            alive[i] = 0;
        }
    }
    cr_assert_eq(vindex_compact(ix, err, sizeof(err)), 0, "%s", err);
    size_t after = vindex_mem_bytes(ix);
    cr_log_info("%s%s: %zu bytes before deleting half, %zu after the compaction",
                kind == VINDEX_FLAT ? "flat" : "ivf", sq8 ? "+sq8" : "", before, after);
    if (kind == VINDEX_IVF_FLAT && !sq8)
        cr_assert_lt(after, before * 8 / 10, "%zu bytes vs %zu", after, before);
    cr_assert_float_eq(recall(ix, alive, 0), 1.0, 1e-9);
    vindex_free(ix);
    free(alive);
}

Test(compact, flat_exact_through_churn)
{
    churn_exact(VINDEX_FLAT, 0);
}

Test(compact, ivf_exact_through_churn)
{
    churn_exact(VINDEX_IVF_FLAT, 0);
}

Test(compact, ivf_sq8_exact_through_churn)
{
    churn_exact(VINDEX_IVF_FLAT, 1);
}

/* With a threshold, deletes start a job and later writes finish it; nothing is returned twice
 * or lost meanwhile. */
Test(compact, automatic_when_tombstones_pass_the_threshold)
{
    vindex_kind_t kinds[] = {VINDEX_HNSW, VINDEX_IVF_FLAT, VINDEX_FLAT};
    for (size_t k = 0; k < 3; k++) {
        vindex_params_t p = params(kinds[k], 0);
        p.compact_threshold = 0.25f;
        char err[256] = "";
        vindex_t *ix = vindex_new(&p, err, sizeof(err));
        cr_assert_not_null(ix, "%s", err);
        add_range(ix, 0, N);
        vindex_stats_t st;
        /* 24% of the slots are tombstones: under the threshold. */
        for (uint64_t i = 0; i < N * 24 / 100; i++)
            cr_assert_eq(vindex_delete(ix, i, err, sizeof(err)), 0, "%s", err);
        vindex_stats(ix, &st);
        cr_assert_eq(st.compacting, 0);
        cr_assert_eq(st.compactions, 0);
        for (uint64_t i = N * 24 / 100; i < N * 30 / 100; i++)
            cr_assert_eq(vindex_delete(ix, i, err, sizeof(err)), 0, "%s", err);
        vindex_stats(ix, &st);
        cr_assert(st.compacting || st.compactions == 1, "no job after passing the threshold");
        /* Each write does its share: the job ends within half as many writes as it marked. */
        for (uint64_t i = N; i < N + N * 15 / 100; i++)
            cr_assert_eq(vindex_add(ix, i, base + i * DIM, err, sizeof(err)), 0, "%s", err);
        vindex_stats(ix, &st);
        cr_assert_eq(st.compactions, 1, "%s: %llu jobs",
                     vindex_params(ix)->kind == VINDEX_HNSW ? "hnsw" : "other",
                     (unsigned long long)st.compactions);
        cr_assert_eq(st.compacting, 0);
        /* The job reclaimed what was dead when it began; later deletes wait for the next. */
        cr_assert_eq(st.reclaimed, N / 4 + 1);
        cr_assert_eq(st.tombstones, N * 30 / 100 - (N / 4 + 1));
        cr_assert_lt(st.slots, N + N * 15 / 100, "no insert reused a slot");
        cr_assert_eq(st.live, N - N * 30 / 100 + N * 15 / 100);
        unsigned char *alive = calloc(N + EXTRA, 1);
        memset(alive + N * 30 / 100, 1, N + N * 15 / 100 - N * 30 / 100);
        cr_assert_geq(recall(ix, alive, 64), 0.95);
        free(alive);
        vindex_free(ix);
    }
}

Test(compact, nothing_to_do_and_bad_threshold)
{
    vindex_params_t p = params(VINDEX_HNSW, 0);
    char err[256] = "";
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    cr_assert_eq(vindex_compact(ix, err, sizeof(err)), 0, "%s", err);
    add_range(ix, 0, 100);
    cr_assert_eq(vindex_compact(ix, err, sizeof(err)), 0, "%s", err);
    vindex_stats_t st;
    vindex_stats(ix, &st);
    cr_assert_eq(st.compactions, 0);
    cr_assert_eq(st.slots, 100);
    /* Everything deleted: the graph empties, then fills again from its reclaimed slots. */
    for (uint64_t i = 0; i < 100; i++)
        cr_assert_eq(vindex_delete(ix, i, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_compact(ix, err, sizeof(err)), 0, "%s", err);
    vindex_stats(ix, &st);
    cr_assert_eq(st.free, 100);
    vindex_hit_t hit;
    vindex_search_params_t sp = {.k = 1};
    cr_assert_eq(vindex_search(ix, base, &sp, &hit, err, sizeof(err)), 0);
    add_range(ix, 100, 200);
    vindex_stats(ix, &st);
    cr_assert_eq(st.slots, 100);
    cr_assert_eq(vindex_search(ix, base + 150 * DIM, &sp, &hit, err, sizeof(err)), 1);
    cr_assert_eq(hit.id, 150);
    vindex_free(ix);

    p.compact_threshold = 1.0f;
    cr_assert_null(vindex_new(&p, err, sizeof(err)));
    cr_assert(strstr(err, "compact_threshold"), "%s", err);
}

/* A snapshot leaves reclaimed slots out: the reopened index holds only slots in use and answers
 * as the compacted one did; slots reused below a reopened flat or sq8 index's mapped rows read
 * their new vectors. */
static void save_compacted(vindex_kind_t kind, int sq8)
{
    char dir[] = "/tmp/vindex-compact-XXXXXX", err[512] = "";
    cr_assert_not_null(mkdtemp(dir));
    unsigned char *alive = malloc(N + EXTRA);
    vindex_params_t p = params(kind, sq8);
    vindex_t *ix = vindex_open(dir, &p, VINDEX_DURABILITY_BATCH, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    churn(ix, alive, 1);
    for (uint64_t i = 1; i < N; i += 3) {
        if (alive[i]) {
            cr_assert_eq(vindex_delete(ix, i, err, sizeof(err)), 0, "%s", err);
            alive[i] = 0;
        }
    }
    cr_assert_eq(vindex_compact(ix, err, sizeof(err)), 0, "%s", err);
    double before = recall(ix, alive, 64);
    vindex_stats_t st;
    vindex_stats(ix, &st);
    cr_assert_gt(st.free, 0);
    cr_assert_eq(vindex_save(ix, dir, err, sizeof(err)), 0, "%s", err);
    vindex_free(ix);

    ix = vindex_open(dir, NULL, VINDEX_DURABILITY_BATCH, err, sizeof(err));
    cr_assert_not_null(ix, "reopen: %s", err);
    vindex_stats_t re;
    vindex_stats(ix, &re);
    cr_assert_eq(re.live, st.live);
    cr_assert_eq(re.slots, st.slots - st.free);
    cr_assert_eq(re.free, 0);
    double after = recall(ix, alive, 64);
    cr_log_info("kind %d sq8 %d: recall %.4f before the save, %.4f reopened", (int)kind, sq8, before, after);
    if (kind == VINDEX_HNSW)
        cr_assert_float_eq(after, before, 1e-9);
    else
        cr_assert_float_eq(after, 1.0, 1e-9);

    /* Reclaim low slots of the reopened index and fill them from the log's point of view too. */
    for (uint64_t i = 0; i < N; i += 2) {
        if (alive[i]) {
            cr_assert_eq(vindex_delete(ix, i, err, sizeof(err)), 0, "%s", err);
            alive[i] = 0;
        }
    }
    cr_assert_eq(vindex_compact(ix, err, sizeof(err)), 0, "%s", err);
    for (uint64_t i = 0; i < N; i += 2) {
        cr_assert_eq(vindex_add(ix, i, base + (N + EXTRA - 1 - i) * DIM, err, sizeof(err)), 0, "%s", err);
    }
    vindex_hit_t hit;
    vindex_search_params_t sp = {.k = 1, .ef = 200};
    for (uint64_t i = 0; i < N; i += 2 * 37) {
        cr_assert_eq(vindex_search(ix, base + (N + EXTRA - 1 - i) * DIM, &sp, &hit, err, sizeof(err)), 1);
        cr_assert_lt(hit.score, 1e-6, "id %llu: best %llu at %g", (unsigned long long)i,
                     (unsigned long long)hit.id, hit.score);
    }
    vindex_free(ix);
    /* The log replays onto the reopened snapshot: the same vectors come back. */
    ix = vindex_open(dir, NULL, VINDEX_DURABILITY_BATCH, err, sizeof(err));
    cr_assert_not_null(ix, "second reopen: %s", err);
    for (uint64_t i = 0; i < N; i += 2 * 37) {
        cr_assert_eq(vindex_search(ix, base + (N + EXTRA - 1 - i) * DIM, &sp, &hit, err, sizeof(err)), 1);
        cr_assert_lt(hit.score, 1e-6);
    }
    vindex_free(ix);
    free(alive);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(compact, hnsw_save_and_reopen)
{
    save_compacted(VINDEX_HNSW, 0);
}

Test(compact, flat_save_and_reopen)
{
    save_compacted(VINDEX_FLAT, 0);
}

Test(compact, ivf_save_and_reopen)
{
    save_compacted(VINDEX_IVF_FLAT, 0);
}

Test(compact, ivf_sq8_save_and_reopen)
{
    save_compacted(VINDEX_IVF_FLAT, 1);
}
