/*
 * Readers search (plain, batched and filtered) while one writer adds (singly and in a parallel
 * batch), upserts, deletes and saves a copy, on every index kind. A plain program rather than a
 * Criterion test so that it runs under ThreadSanitizer (Criterion's sandbox arena cannot map
 * its memory next to TSan's shadow).
 */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "../unit/vindex/testutil.h"

#define DIM 16
#define N0 1500
#define N1 3000
#define READERS 3

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
    int failures; /* atomic */
    long searches;
    long batch_searches;
} shared_t;

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
    long done = 0, batches = 0;
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) || done < 50) {
        const float *q = s->base + (tu_next(&seed) % N1) * DIM;
        vindex_search_params_t sp = {.k = 10, .ef = 40};
        int n = vindex_search(s->ix, q, &sp, hits, err, sizeof(err));
        /* The first N0 items are never touched, so 10 results always exist. */
        int bad = n != 10;
        for (int i = 0; i < n; i++)
            bad |= hits[i].id >= N1 || (i > 0 && hits[i].score < hits[i - 1].score);
        if (bad)
            __atomic_fetch_add(&s->failures, 1, __ATOMIC_RELAXED);
        if (done % 16 == 0) {
            const float *qs = s->base + (tu_next(&seed) % (N1 - 4)) * DIM;
            if (vindex_search_batch(s->ix, qs, 4, &sp, hits, nh, err, sizeof(err)) || nh[0] != 10 ||
                nh[3] != 10)
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
            if (bad)
                __atomic_fetch_add(&s->failures, 1, __ATOMIC_RELAXED);
        }
        (void)vindex_count(s->ix);
        (void)vindex_mem_bytes(s->ix);
        done++;
    }
    __atomic_fetch_add(&s->searches, done, __ATOMIC_RELAXED);
    __atomic_fetch_add(&s->batch_searches, batches, __ATOMIC_RELAXED);
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
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    CHECK(s.failures == 0, "%s: %d bad searches out of %ld", name, s.failures, s.searches);
    CHECK(vindex_count(ix) == N1 - (N1 - N0 - 1 + 2) / 3, "count %llu", (unsigned long long)vindex_count(ix));
    vindex_hit_t hits[10];
    vindex_search_params_t sp = {.k = 10, .ef = 100};
    for (uint64_t i = N0 + 1; i < N1; i += 3 * 37) {
        CHECK(!vindex_contains(ix, i), "deleted id %llu present", (unsigned long long)i);
        int n = vindex_search(ix, base + i * DIM, &sp, hits, err, sizeof(err));
        for (int j = 0; j < n; j++)
            CHECK(hits[j].id != i, "deleted id %llu returned", (unsigned long long)i);
    }
    printf("%s: %ld searches and %ld batch searches alongside the writer, all complete\n", name, s.searches,
           s.batch_searches);
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
