/* Readers search while one writer adds, upserts and deletes (run it under SAN=thread too). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>

#include "testutil.h"

#define DIM 16
#define N0 1500
#define N1 3000
#define READERS 3

typedef struct {
    vindex_t *ix;
    const float *base;
    int stop;     /* atomic */
    int failures; /* atomic */
    long searches;
} shared_t;

static void *reader(void *arg)
{
    shared_t *s = arg;
    vindex_hit_t hits[10];
    char err[256];
    uint64_t seed = (uint64_t)(uintptr_t)&hits;
    long done = 0;
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) || done < 50) {
        const float *q = s->base + (tu_next(&seed) % N1) * DIM;
        vindex_search_params_t sp = {.k = 10, .ef = 40};
        int n = vindex_search(s->ix, q, &sp, hits, err, sizeof(err));
        /* At least the first N0 items are always live; every id is one that was ever added. */
        int bad = n != 10;
        for (int i = 0; i < n; i++)
            bad |= hits[i].id >= N1 || (i > 0 && hits[i].score < hits[i - 1].score);
        if (bad) {
            if (__atomic_fetch_add(&s->failures, 1, __ATOMIC_RELAXED) < 5) {
                fprintf(stderr, "n=%d:", n);
                for (int i = 0; i < n; i++)
                    fprintf(stderr, " %llu/%g", (unsigned long long)hits[i].id, hits[i].score);
                fprintf(stderr, "\n");
            }
        }
        (void)vindex_count(s->ix);
        (void)vindex_mem_bytes(s->ix);
        done++;
    }
    __atomic_fetch_add(&s->searches, done, __ATOMIC_RELAXED);
    return NULL;
}

static void run(vindex_kind_t kind)
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
    vindex_t *ix = vindex_new(&p, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    uint64_t ids[N1];
    for (uint64_t i = 0; i < N1; i++)
        ids[i] = i;
    cr_assert_eq(vindex_add_batch(ix, ids, base, N0, err, sizeof(err)), 0, "%s", err);
    shared_t s = {.ix = ix, .base = base};
    pthread_t r[READERS];
    for (int i = 0; i < READERS; i++)
        cr_assert_eq(pthread_create(&r[i], NULL, reader, &s), 0);
    /* The writer: single adds, a parallel batch, upserts and deletes of the newer items. */
    for (uint64_t i = N0; i < N0 + 500; i++)
        cr_assert_eq(vindex_add(ix, i, base + i * DIM, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(
        vindex_add_batch(ix, ids + N0 + 500, base + (N0 + 500) * DIM, N1 - N0 - 500, err, sizeof(err)), 0,
        "%s", err);
    for (uint64_t i = N0; i < N1; i += 3)
        cr_assert_eq(vindex_upsert(ix, i, base + (i - N0) * DIM, err, sizeof(err)), 0, "%s", err);
    for (uint64_t i = N0 + 1; i < N1; i += 3)
        cr_assert_eq(vindex_delete(ix, i, err, sizeof(err)), 0, "%s", err);
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    cr_assert_eq(s.failures, 0, "%d bad searches out of %ld", s.failures, s.searches);
    cr_assert_eq(vindex_count(ix), N1 - (N1 - N0 - 1 + 2) / 3);
    /* After the dust settles: deleted ids are gone, upserted ids sit at their new vectors. */
    vindex_hit_t hits[10];
    vindex_search_params_t sp = {.k = 10, .ef = 100};
    for (uint64_t i = N0 + 1; i < N1; i += 3 * 37) {
        cr_assert_not(vindex_contains(ix, i));
        int n = vindex_search(ix, base + i * DIM, &sp, hits, err, sizeof(err));
        for (int j = 0; j < n; j++)
            cr_assert_neq(hits[j].id, i);
    }
    vindex_free(ix);
    free(base);
}

Test(concurrency, hnsw_readers_and_writer)
{
    run(VINDEX_HNSW);
}

Test(concurrency, flat_readers_and_writer)
{
    run(VINDEX_FLAT);
}

Test(concurrency, ivf_readers_and_writer)
{
    run(VINDEX_IVF_FLAT);
}
