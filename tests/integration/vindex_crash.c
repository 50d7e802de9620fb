/* Helper of vindex_crash.sh.
 *
 *   vindex_crash run DIR KIND MODE FIRST_ID SEED
 *     Opens (or creates) the index in DIR and changes it until killed: single adds, batches,
 *     upserts, deletes and now and then a checkpoint. After each call returns it writes a line to
 *     stdout: "I id" (inserted), "D id" (deleted); before a delete it writes "d id" (the delete
 *     may or may not have happened if the process dies before "D").
 *   vindex_crash check DIR ACKFILE
 *     Reopens DIR and checks every acknowledged change: "I" ids present unless a "d" or "D"
 *     followed, "D" ids absent. Prints counts; exit 1 on a lost change. */
#include "vindex/vindex.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIM 16
#define MAX_ACKS 2000000

static uint64_t rng(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 17;
}

static void vec_for(uint64_t id, float *v)
{
    uint64_t s = id * 2654435761u + 1;
    for (int d = 0; d < DIM; d++)
        v[d] = (float)(rng(&s) % 2000) / 1000.0f - 1.0f;
}

/* One line per acknowledged call, written with a single write() so a kill never splits it. */
static void ack(char what, uint64_t id)
{
    char line[40];
    int n = snprintf(line, sizeof(line), "%c %" PRIu64 "\n", what, id);
    if (write(1, line, (size_t)n) != n)
        _exit(3);
}

static int run(const char *dir, const char *kind, const char *mode, uint64_t first, uint64_t seed)
{
    vindex_params_t p;
    vindex_kind_t k = strcmp(kind, "ivf") == 0    ? VINDEX_IVF_FLAT
                      : strcmp(kind, "hnsw") == 0 ? VINDEX_HNSW
                                                  : VINDEX_FLAT;
    vindex_params_default(&p, k, VINDEX_L2, DIM);
    p.capacity = 1u << 20;
    p.nlist = 8;
    p.nprobe = 8;
    p.sq8 = k == VINDEX_IVF_FLAT;
    p.M = 8;
    p.ef_construction = 40;
    p.threads = 2;
    vindex_durability_t dm = strcmp(mode, "batch") == 0 ? VINDEX_DURABILITY_BATCH : VINDEX_DURABILITY_SYNC;
    char err[512];
    vindex_t *ix = vindex_open(dir, &p, dm, err, sizeof(err));
    if (!ix) {
        fprintf(stderr, "open: %s\n", err);
        return 2;
    }
    uint64_t next = first, acked[256];
    size_t nacked = 0;
    float v[DIM], batch[64 * DIM];
    uint64_t ids[64];
    for (uint64_t step = 0;; step++) {
        uint64_t r = rng(&seed) % 100;
        if (r < 10) {
            size_t n = 1 + rng(&seed) % 64;
            for (size_t i = 0; i < n; i++) {
                ids[i] = next++;
                vec_for(ids[i], batch + i * DIM);
            }
            if (vindex_add_batch(ix, ids, batch, n, err, sizeof(err)) != 0) {
                fprintf(stderr, "add_batch: %s\n", err);
                return 2;
            }
            for (size_t i = 0; i < n; i++) {
                ack('I', ids[i]);
                if (nacked < 256)
                    acked[nacked++] = ids[i];
            }
        } else if (r < 15 && nacked > 0) {
            size_t j = rng(&seed) % nacked;
            uint64_t id = acked[j];
            acked[j] = acked[--nacked];
            ack('d', id);
            if (vindex_delete(ix, id, err, sizeof(err)) != 0) {
                fprintf(stderr, "delete %" PRIu64 ": %s\n", id, err);
                return 2;
            }
            ack('D', id);
        } else if (r < 16) {
            if (vindex_save(ix, dir, err, sizeof(err)) != 0) {
                fprintf(stderr, "save: %s\n", err);
                return 2;
            }
        } else {
            uint64_t id = next++;
            vec_for(id, v);
            /* Until an ivf index is trained (by its first batch) single adds cannot go in. */
            int rc = vindex_add(ix, id, v, err, sizeof(err));
            if (rc == VINDEX_ESTATE)
                continue;
            if (rc != 0) {
                fprintf(stderr, "add %" PRIu64 ": %s\n", id, err);
                return 2;
            }
            ack('I', id);
            if (nacked < 256)
                acked[nacked++] = id;
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int check(const char *dir, const char *ackfile)
{
    char err[512];
    vindex_t *ix = vindex_open(dir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err));
    if (!ix) {
        fprintf(stderr, "reopen failed: %s\n", err);
        return 1;
    }
    FILE *f = fopen(ackfile, "r");
    if (!f) {
        perror(ackfile);
        return 1;
    }
    /* Ids whose delete was attempted: their presence is unknown unless "D" came. */
    uint64_t *deleting = malloc(MAX_ACKS * sizeof(uint64_t));
    uint64_t *inserted = malloc(MAX_ACKS * sizeof(uint64_t));
    uint64_t *deleted = malloc(MAX_ACKS * sizeof(uint64_t));
    size_t nd = 0, ni = 0, ndel = 0;
    char what;
    uint64_t id;
    while (fscanf(f, " %c %" SCNu64, &what, &id) == 2) {
        if (ni == MAX_ACKS || nd == MAX_ACKS || ndel == MAX_ACKS) {
            fprintf(stderr, "ack file too large\n");
            return 1;
        }
        if (what == 'I')
            inserted[ni++] = id;
        else if (what == 'd')
            deleting[nd++] = id;
        else if (what == 'D')
            deleted[ndel++] = id;
    }
    fclose(f);
    qsort(deleting, nd, sizeof(uint64_t), cmp_u64);
    size_t lost = 0, resurrected = 0;
    for (size_t i = 0; i < ni; i++) {
        if (bsearch(&inserted[i], deleting, nd, sizeof(uint64_t), cmp_u64))
            continue;
        if (!vindex_contains(ix, inserted[i])) {
            if (lost++ < 5)
                fprintf(stderr, "acknowledged insert %" PRIu64 " lost\n", inserted[i]);
        }
    }
    for (size_t i = 0; i < ndel; i++) {
        if (vindex_contains(ix, deleted[i])) {
            if (resurrected++ < 5)
                fprintf(stderr, "acknowledged delete %" PRIu64 " undone\n", deleted[i]);
        }
    }
    /* Found by search too, not only by id: the vectors came back with the ids. */
    size_t misfound = 0;
    for (size_t i = 0; i < ni && i < 200; i++) {
        uint64_t want = inserted[ni - 1 - i];
        if (!vindex_contains(ix, want))
            continue;
        float v[DIM];
        vec_for(want, v);
        vindex_hit_t hit;
        /* A wide ef makes the graph's answer for a stored vector exact on these sizes. */
        vindex_search_params_t sp = {.k = 1, .nprobe = 8, .ef = 1000};
        if (vindex_search(ix, v, &sp, &hit, err, sizeof(err)) != 1 || hit.score > 1e-6f)
            misfound++;
    }
    printf("{\"dir_count\":%" PRIu64 ",\"acked_inserts\":%zu,\"acked_deletes\":%zu,\"lost\":%zu,"
           "\"undone_deletes\":%zu,\"vector_mismatch\":%zu}\n",
           vindex_count(ix), ni, ndel, lost, resurrected, misfound);
    vindex_free(ix);
    free(deleting);
    free(inserted);
    free(deleted);
    return lost || resurrected || misfound ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "run") == 0)
        return run(argv[2], argv[3], argv[4], strtoull(argv[5], NULL, 10), strtoull(argv[6], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "check") == 0)
        return check(argv[2], argv[3]);
    fprintf(stderr,
            "usage: vindex_crash run DIR flat|ivf|hnsw sync|batch FIRST_ID SEED | check DIR ACKFILE\n");
    return 2;
}
