/*
 * Readers search (plain, batched and filtered) while one writer adds (singly and in a parallel
 * batch), upserts, deletes and saves a copy, on every index kind; then while it churns (deletes
 * half, compacts, adds back into the reclaimed slots) with automatic compactions on too, the
 * readers check every hit's score against the vector its id was stored with, which a slot
 * reused under a running search would break. A plain program rather than a Criterion test so
 * that it runs under ThreadSanitizer (Criterion's sandbox arena cannot map its memory next to
 * TSan's shadow).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "../unit/vindex/testutil.h"

#define DIM 16
#define N0 1500
#define N1 3000
#define READERS 3
#define CHURN_ROUNDS 4

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                             \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fprintf(stderr, "\n");                                                                           \
            exit(1);                                                                                         \
        }                                                                                                    \
    } while (0)

typedef struct {
    vindex_t *ix;
    const float *base;
    int stop;     /* atomic */
    int verify;   /* atomic: every id's vector is fixed, scores are checked */
    int failures; /* atomic */
    long searches;
    long batch_searches;
    long verified; /* hits whose score was checked */
} shared_t;

/* The vector an id is stored with: upserted ids (every third from N0) took base[id - N0]. */
static const float *vector_of(const shared_t *s, uint64_t id)
{
    return s->base + (id >= N0 && (id - N0) % 3 == 0 ? id - N0 : id) * DIM;
}

/* Hits that do not score as their ids' vectors do: a search saw one item's id and another's
 * vector. */
static int bad_scores(const shared_t *s, int verify, const float *q, const vindex_hit_t *hits, int n,
                      long *checked)
{
    if (!verify)
        return 0;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        const float *v = vector_of(s, hits[i].id);
        double d = 0;
        for (int j = 0; j < DIM; j++)
            d += ((double)q[j] - v[j]) * ((double)q[j] - v[j]);
        bad += fabs(d - hits[i].score) > 1e-3 * (1 + d);
        (*checked)++;
    }
    return bad;
}

/* Passes one id in 7: the searches it filters take the exact-scan path on these sizes. */
static int pass_seventh(uint64_t id, void *ctx)
{
    (void)ctx;
    return id % 7 == 0;
}

static void *reader(void *arg)
{
    shared_t *s = arg;
    vindex_hit_t hits[4 * 10];
    uint32_t nh[4];
    char err[256];
    uint64_t seed = (uint64_t)(uintptr_t)&hits;
    long done = 0, batches = 0, checked = 0;
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) || done < 50) {
        /* Read before the searches: one that began before the last upsert may still see it. */
        int verify = __atomic_load_n(&s->verify, __ATOMIC_ACQUIRE);
        const float *q = s->base + (tu_next(&seed) % N1) * DIM;
        vindex_search_params_t sp = {.k = 10, .ef = 40};
        int n = vindex_search(s->ix, q, &sp, hits, err, sizeof(err));
        /* The first N0 items are never touched, so 10 results always exist. */
        int bad = n != 10;
        for (int i = 0; i < n; i++)
            bad |= hits[i].id >= N1 || (i > 0 && hits[i].score < hits[i - 1].score);
        if (bad || bad_scores(s, verify, q, hits, n, &checked))
            __atomic_fetch_add(&s->failures, 1, __ATOMIC_RELAXED);
        if (done % 16 == 0) {
            const float *qs = s->base + (tu_next(&seed) % (N1 - 4)) * DIM;
            if (vindex_search_batch(s->ix, qs, 4, &sp, hits, nh, err, sizeof(err)) || nh[0] != 10 ||
                nh[3] != 10 || bad_scores(s, verify, qs, hits, 10, &checked) ||
                bad_scores(s, verify, qs + 3 * DIM, hits + 30, 10, &checked))
                __atomic_fetch_add(&s->failures, 1, __ATOMIC_RELAXED);
            batches++;
        }
        if (done % 8 == 0) {
            vindex_filter_t f = {.fn = pass_seventh};
            vindex_search_params_t fp = {.k = 10, .ef = 40, .filter = &f};
            n = vindex_search(s->ix, q, &fp, hits, err, sizeof(err));
            bad = n != 10;
            for (int i = 0; i < n; i++)
                bad |= hits[i].id % 7 != 0 || (i > 0 && hits[i].score < hits[i - 1].score);
            if (bad || bad_scores(s, verify, q, hits, n, &checked))
                __atomic_fetch_add(&s->failures, 1, __ATOMIC_RELAXED);
        }
        (void)vindex_count(s->ix);
        (void)vindex_mem_bytes(s->ix);
        done++;
    }
    __atomic_fetch_add(&s->searches, done, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->batch_searches, batches, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->verified, checked, __ATOMIC_RELAXED);
    return NULL;
}

static void remove_copy(const char *dir)
{
    static const char *const files[] = {"index.snap", "wal.log", "LOCK"};
    char path[512];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void run(vindex_kind_t kind, int sq8, const char *name)
{
    float *base = tu_clustered_vectors(N1, DIM, 20, 77);
    vindex_params_t p;
    char err[256] = "";
    vindex_params_default(&p, kind, VINDEX_L2, DIM);
    p.capacity = 20000;
    p.M = 8;
    p.ef_construction = 40;
    p.threads = 2;
    p.nlist = 16;
    p.nprobe = 16;
    p.sq8 = sq8;
    p.compact_threshold = 0.1f;
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    CHECK(ix, "vindex_new: %s", err);
    static uint64_t ids[N1];
    for (uint64_t i = 0; i < N1; i++)
        ids[i] = i;
    CHECK(vindex_add_batch(ix, ids, base, N0, err, sizeof(err)) == 0, "%s", err);
    shared_t s = {.ix = ix, .base = base};
    pthread_t r[READERS];
    for (int i = 0; i < READERS; i++)
        CHECK(pthread_create(&r[i], NULL, reader, &s) == 0, "pthread_create");
    for (uint64_t i = N0; i < N0 + 500; i++)
        CHECK(vindex_add(ix, i, base + i * DIM, err, sizeof(err)) == 0, "%s", err);
    CHECK(vindex_add_batch(ix, ids + N0 + 500, base + (N0 + 500) * DIM, N1 - N0 - 500, err, sizeof(err)) == 0,
          "%s", err);
    for (uint64_t i = N0; i < N1; i += 3)
        CHECK(vindex_upsert(ix, i, base + (i - N0) * DIM, err, sizeof(err)) == 0, "%s", err);
    for (uint64_t i = N0 + 1; i < N1; i += 3)
        CHECK(vindex_delete(ix, i, err, sizeof(err)) == 0, "%s", err);
    /* A save blocks writers, not readers. */
    char copy[256];
    snprintf(copy, sizeof(copy), "%s/vindex-conc-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(copy), "mkdtemp");
    CHECK(vindex_save(ix, copy, err, sizeof(err)) == 0, "save: %s", err);
    remove_copy(copy);
    CHECK(vindex_count(ix) == N1 - (N1 - N0 - 1 + 2) / 3, "count %llu", (unsigned long long)vindex_count(ix));
    vindex_hit_t hits[10];
    vindex_search_params_t sp = {.k = 10, .ef = 100};
    for (uint64_t i = N0 + 1; i < N1; i += 3 * 37) {
        CHECK(!vindex_contains(ix, i), "deleted id %llu present", (unsigned long long)i);
        int n = vindex_search(ix, base + i * DIM, &sp, hits, err, sizeof(err));
        for (int j = 0; j < n; j++)
            CHECK(hits[j].id != i, "deleted id %llu returned", (unsigned long long)i);
    }

    /* Churn: from now on an id's vector never changes (deleted ids come back with base[id]),
     * so the readers check every score while slots are reclaimed and reused under them. */
    __atomic_store_n(&s.verify, 1, __ATOMIC_RELEASE);
    static unsigned char live[N1];
    for (uint64_t i = N0; i < N1; i++)
        live[i] = (i - N0) % 3 != 1;
    uint64_t seed = 5;
    vindex_stats_t st0;
    vindex_stats(ix, &st0);
    for (int round = 0; round < CHURN_ROUNDS; round++) {
        for (uint64_t i = N0; i < N1; i++) {
            if ((i - N0) % 3 == 0 || !live[i] || tu_next(&seed) % 2)
                continue;
            CHECK(vindex_delete(ix, i, err, sizeof(err)) == 0, "%s", err);
            live[i] = 0;
        }
        CHECK(vindex_compact(ix, err, sizeof(err)) == 0, "compact: %s", err);
        size_t nb = 0;
        for (uint64_t i = N0; i < N1; i++) {
            if (live[i])
                continue;
            /* Every other one singly, the rest in one batch. */
            if (nb % 2 == 0)
                CHECK(vindex_add(ix, i, base + i * DIM, err, sizeof(err)) == 0, "%s", err);
            else
                ids[nb / 2] = i;
            live[i] = 1;
            nb++;
        }
        float *vecs = malloc((nb / 2 + 1) * DIM * sizeof(float));
        for (size_t j = 0; j < nb / 2; j++)
            memcpy(vecs + j * DIM, base + ids[j] * DIM, DIM * sizeof(float));
        CHECK(vindex_add_batch(ix, ids, vecs, nb / 2, err, sizeof(err)) == 0, "%s", err);
        free(vecs);
    }
    vindex_stats_t st;
    vindex_stats(ix, &st);
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    CHECK(s.failures == 0, "%s: %d bad searches out of %ld", name, s.failures, s.searches);
    CHECK(vindex_count(ix) == N1, "count %llu after the churn", (unsigned long long)vindex_count(ix));
    CHECK(st.compactions >= st0.compactions + CHURN_ROUNDS, "%llu compactions",
          (unsigned long long)st.compactions);
    /* Every round's deletes were reclaimed before its inserts: the slots stopped growing. */
    CHECK(st.slots <= st0.slots + st0.free + (N1 - N0) / 3, "slots %llu, from %llu",
          (unsigned long long)st.slots, (unsigned long long)st0.slots);
    /* Every item is found by its vector: all of them by the exact kinds, nearly all by the graph
     * (a few weakly linked nodes are HNSW's own, with M = 8 on tight clusters). */
    size_t asked = 0, found = 0;
    for (uint64_t i = N0; i < N1; i += 7, asked++) {
        int n = vindex_search(ix, vector_of(&s, i), &sp, hits, err, sizeof(err));
        CHECK(n == 10, "%d hits", n);
        found += hits[0].score < 1e-6f;
    }
    CHECK(kind == VINDEX_HNSW ? found * 100 >= asked * 97 : found == asked,
          "%s: %zu of %zu items found by their vectors", name, found, asked);
    printf("%s: %ld searches and %ld batch searches alongside the writer, all complete; %ld hit scores "
           "checked during %d churn rounds (%llu compactions, %llu slots reclaimed)\n",
           name, s.searches, s.batch_searches, s.verified, CHURN_ROUNDS, (unsigned long long)st.compactions,
           (unsigned long long)st.reclaimed);
    vindex_free(ix);
    free(base);
}

int main(void)
{
    run(VINDEX_HNSW, 0, "hnsw");
    run(VINDEX_FLAT, 0, "flat");
    run(VINDEX_IVF_FLAT, 0, "ivf_flat");
    run(VINDEX_IVF_FLAT, 1, "ivf_flat+sq8");
    return 0;
}
