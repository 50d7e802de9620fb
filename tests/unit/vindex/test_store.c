/* Data directories: save/open round trips for every kind and metric, log replay after a crash,
 * and damaged files rejected with a message. */
#include <criterion/criterion.h>

#include "testutil.h"
#include "vindex/store.h"
#include "vindex/vstore_testutil.h"
#include "vindex/wal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIM 24
#define N 1500
#define NQ 20
#define K 10

static char tmpdir[256];
static char datadir[300];

static void setup(void)
{
    vstore_tmpdir_make(tmpdir, sizeof(tmpdir));
    snprintf(datadir, sizeof(datadir), "%s/data", tmpdir);
}

static void teardown(void)
{
    vstore_tmpdir_remove(tmpdir);
}

TestSuite(datadir, .init = setup, .fini = teardown);

static vindex_params_t params(vindex_kind_t kind, vindex_metric_t m, int sq8)
{
    vindex_params_t p;
    vindex_params_default(&p, kind, m, DIM);
    p.capacity = 50000;
    p.threads = 2;
    p.nlist = 16;
    p.nprobe = 4;
    p.sq8 = sq8;
    return p;
}

/* Same searches, same answers: scores rank by rank, and ids wherever the score is not tied
 * (upserts copy vectors, so equal scores happen and their order is not part of the contract;
 * one extra hit shows a tie at the k-th place). */
static void assert_same_results(vindex_t *a, vindex_t *b, const float *qs)
{
    char err[256] = "";
    cr_assert_eq(vindex_count(a), vindex_count(b));
    for (size_t q = 0; q < NQ; q++) {
        vindex_hit_t ha[K + 1], hb[K + 1];
        vindex_search_params_t sp = {.k = K + 1};
        int na = vindex_search(a, qs + q * DIM, &sp, ha, err, sizeof(err));
        int nb = vindex_search(b, qs + q * DIM, &sp, hb, err, sizeof(err));
        cr_assert_eq(na, nb, "query %zu: %d vs %d hits", q, na, nb);
        for (int i = 0; i < na && i < K; i++) {
            cr_assert_float_eq(ha[i].score, hb[i].score, 1e-5, "query %zu rank %d", q, i);
            int tied = (i > 0 && fabsf(ha[i].score - ha[i - 1].score) < 1e-6f) ||
                       (i + 1 < na && fabsf(ha[i].score - ha[i + 1].score) < 1e-6f);
            if (!tied)
                cr_assert_eq(ha[i].id, hb[i].id, "query %zu rank %d", q, i);
        }
    }
}

/* The same changes on any index: a batch, single adds, deletes, upserts. */
static void apply_changes(vindex_t *ix, const float *base, size_t from, size_t to)
{
    char err[256] = "";
    size_t mid = from + (to - from) / 2;
    uint64_t *ids = malloc((mid - from) * sizeof(*ids));
    for (size_t i = from; i < mid; i++)
        ids[i - from] = i;
    cr_assert_eq(vindex_add_batch(ix, ids, base + from * DIM, mid - from, err, sizeof(err)), 0, "%s", err);
    free(ids);
    for (size_t i = mid; i < to; i++)
        cr_assert_eq(vindex_add(ix, i, base + i * DIM, err, sizeof(err)), 0, "%s", err);
    for (size_t i = from; i < to; i += 7)
        cr_assert_eq(vindex_delete(ix, i, err, sizeof(err)), 0, "%s", err);
    for (size_t i = from + 3; i < to; i += 11)
        cr_assert_eq(vindex_upsert(ix, i, base + ((i * 5) % to) * DIM, err, sizeof(err)), 0, "%s", err);
}

static void round_trip_mode(vindex_kind_t kind, vindex_metric_t m, int sq8, vindex_durability_t mode)
{
    float *base = tu_clustered_vectors(N, DIM, 20, 3);
    float *qs = tu_clustered_vectors(NQ, DIM, 20, 4);
    vindex_params_t p = params(kind, m, sq8);
    char err[512] = "";
    vindex_t *ref = vindex_new(&p, err, sizeof(err));
    cr_assert_not_null(ref, "%s", err);
    vindex_t *ix = vindex_open(datadir, &p, mode, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    /* Half before the save (in the snapshot), half after it (only in the log). */
    apply_changes(ref, base, 0, N / 2);
    apply_changes(ix, base, 0, N / 2);
    cr_assert_eq(vindex_save(ix, datadir, err, sizeof(err)), 0, "%s", err);
    apply_changes(ref, base, N / 2, N);
    apply_changes(ix, base, N / 2, N);
    assert_same_results(ref, ix, qs);
    vindex_free(ix);

    ix = vindex_open(datadir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err));
    cr_assert_not_null(ix, "reopen: %s", err);
    cr_assert_eq(vindex_params(ix)->kind, kind);
    cr_assert_eq(vindex_params(ix)->metric, m);
    cr_assert_eq(vindex_params(ix)->sq8, sq8);
    assert_same_results(ref, ix, qs);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(vindex_contains(ix, i), vindex_contains(ref, i), "id %zu", i);

    /* A checkpoint folds the log into the snapshot; the reopened index is unchanged. */
    cr_assert_eq(vindex_save(ix, datadir, err, sizeof(err)), 0, "%s", err);
    vindex_free(ix);
    ix = vindex_open(datadir, NULL, VINDEX_DURABILITY_BATCH, err, sizeof(err));
    cr_assert_not_null(ix, "reopen after checkpoint: %s", err);
    assert_same_results(ref, ix, qs);

    /* Saving into another directory gives a self-contained copy. */
    char other[400];
    snprintf(other, sizeof(other), "%s/copy", tmpdir);
    cr_assert_eq(vindex_save(ref, other, err, sizeof(err)), 0, "%s", err);
    vindex_t *copy = vindex_open(other, NULL, VINDEX_DURABILITY_NONE, err, sizeof(err));
    cr_assert_not_null(copy, "%s", err);
    assert_same_results(ref, copy, qs);
    vindex_free(copy);
    vindex_free(ix);
    vindex_free(ref);
    free(base);
    free(qs);
}

/* BATCH mode keeps these fast (one fsync per 100 ms); SYNC mode is covered once. */
static void round_trip(vindex_kind_t kind, vindex_metric_t m, int sq8)
{
    round_trip_mode(kind, m, sq8, VINDEX_DURABILITY_BATCH);
}

Test(datadir, round_trip_flat_l2)
{
    round_trip_mode(VINDEX_FLAT, VINDEX_L2, 0, VINDEX_DURABILITY_SYNC);
}

Test(datadir, round_trip_flat_ip)
{
    round_trip(VINDEX_FLAT, VINDEX_IP, 0);
}

Test(datadir, round_trip_flat_cosine)
{
    round_trip(VINDEX_FLAT, VINDEX_COSINE, 0);
}

Test(datadir, round_trip_ivf_l2)
{
    round_trip(VINDEX_IVF_FLAT, VINDEX_L2, 0);
}

Test(datadir, round_trip_ivf_ip)
{
    round_trip(VINDEX_IVF_FLAT, VINDEX_IP, 0);
}

Test(datadir, round_trip_ivf_cosine)
{
    round_trip(VINDEX_IVF_FLAT, VINDEX_COSINE, 0);
}

Test(datadir, round_trip_ivf_sq8_l2)
{
    round_trip(VINDEX_IVF_FLAT, VINDEX_L2, 1);
}

Test(datadir, round_trip_ivf_sq8_cosine)
{
    round_trip(VINDEX_IVF_FLAT, VINDEX_COSINE, 1);
}

Test(datadir, round_trip_ivf_sq8_ip)
{
    round_trip(VINDEX_IVF_FLAT, VINDEX_IP, 1);
}

/* A child that never closes the index: what it acknowledged must be there on reopen. */
static void crash_after_changes(vindex_kind_t kind, vindex_durability_t mode)
{
    float *base = tu_clustered_vectors(N, DIM, 20, 8);
    vindex_params_t p = params(kind, VINDEX_L2, 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char err[256];
        vindex_t *ix = vindex_open(datadir, &p, mode, err, sizeof(err));
        if (!ix)
            _exit(2);
        uint64_t ids[200];
        for (int i = 0; i < 200; i++)
            ids[i] = (uint64_t)i;
        if (vindex_add_batch(ix, ids, base, 200, err, sizeof(err)))
            _exit(3);
        for (int i = 200; i < 260; i++)
            if (vindex_add(ix, (uint64_t)i, base + i * DIM, err, sizeof(err)))
                _exit(4);
        if (vindex_delete(ix, 5, err, sizeof(err)))
            _exit(5);
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %d", status);
    char err[512] = "";
    vindex_t *ix = vindex_open(datadir, NULL, mode, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    cr_assert_eq(vindex_count(ix), 259);
    cr_assert(!vindex_contains(ix, 5));
    for (uint64_t i = 0; i < 260; i++)
        cr_assert(i == 5 || vindex_contains(ix, i), "id %llu lost", (unsigned long long)i);
    vindex_hit_t hit;
    vindex_search_params_t sp = {.k = 1, .nprobe = 16};
    cr_assert_eq(vindex_search(ix, base + 250 * DIM, &sp, &hit, err, sizeof(err)), 1);
    cr_assert_eq(hit.id, 250);
    vindex_free(ix);
    free(base);
}

Test(datadir, unclosed_flat_index_replays_its_log)
{
    crash_after_changes(VINDEX_FLAT, VINDEX_DURABILITY_SYNC);
}

Test(datadir, unclosed_ivf_index_replays_its_log)
{
    crash_after_changes(VINDEX_IVF_FLAT, VINDEX_DURABILITY_SYNC);
}

Test(datadir, batch_mode_survives_a_process_exit)
{
    crash_after_changes(VINDEX_FLAT, VINDEX_DURABILITY_BATCH);
}

Test(datadir, durability_none_keeps_only_saved_changes)
{
    float *base = tu_random_vectors(10, DIM, 1);
    vindex_params_t p = params(VINDEX_FLAT, VINDEX_L2, 0);
    char err[512] = "";
    vindex_t *ix = vindex_open(datadir, &p, VINDEX_DURABILITY_NONE, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    cr_assert_eq(vindex_add(ix, 1, base, err, sizeof(err)), 0);
    cr_assert_eq(vindex_save(ix, datadir, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_add(ix, 2, base + DIM, err, sizeof(err)), 0);
    vindex_free(ix);
    ix = vindex_open(datadir, NULL, VINDEX_DURABILITY_NONE, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    cr_assert(vindex_contains(ix, 1));
    cr_assert(!vindex_contains(ix, 2));
    vindex_free(ix);
    free(base);
}

Test(datadir, open_rules)
{
    char err[512] = "";
    cr_assert_null(vindex_open(datadir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err)));
    vindex_params_t p = params(VINDEX_FLAT, VINDEX_L2, 0);
    vindex_t *ix = vindex_open(datadir, &p, VINDEX_DURABILITY_SYNC, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    /* One owner per directory. */
    cr_assert_null(vindex_open(datadir, &p, VINDEX_DURABILITY_SYNC, err, sizeof(err)));
    cr_assert(strstr(err, "in use") != NULL, "%s", err);
    vindex_free(ix);
    /* A directory created but never saved still describes itself. */
    ix = vindex_open(datadir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    vindex_free(ix);
    vindex_params_t other = params(VINDEX_FLAT, VINDEX_L2, 0);
    other.dim = DIM + 1;
    cr_assert_null(vindex_open(datadir, &other, VINDEX_DURABILITY_SYNC, err, sizeof(err)));
    cr_assert(strstr(err, "different index") != NULL, "%s", err);
}

Test(datadir, sq8_reload_keeps_floats_on_disk)
{
    const size_t n = 4000;
    const uint32_t dim = 128;
    float *base = tu_clustered_vectors(n, dim, 20, 5);
    uint64_t *ids = malloc(n * sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = i;
    size_t mem[2];
    for (int sq8 = 0; sq8 < 2; sq8++) {
        vindex_params_t p;
        vindex_params_default(&p, VINDEX_IVF_FLAT, VINDEX_L2, dim);
        p.capacity = n;
        p.nlist = 16;
        p.sq8 = sq8;
        char err[512] = "", dir[400];
        snprintf(dir, sizeof(dir), "%s/sq%d", tmpdir, sq8);
        vindex_t *ix = vindex_new(&p, err, sizeof(err));
        cr_assert_eq(vindex_add_batch(ix, ids, base, n, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(vindex_save(ix, dir, err, sizeof(err)), 0, "%s", err);
        vindex_free(ix);
        ix = vindex_open(dir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err));
        cr_assert_not_null(ix, "%s", err);
        mem[sq8] = vindex_mem_bytes(ix);
        vindex_hit_t hit;
        vindex_search_params_t sp = {.k = 1};
        cr_assert_eq(vindex_search(ix, base + 77 * dim, &sp, &hit, err, sizeof(err)), 1);
        cr_assert_eq(hit.id, 77);
        cr_assert_lt(hit.score, 1e-6, "re-ranked score is exact");
        vindex_free(ix);
    }
    cr_log_info("reloaded ivf memory: float %zu bytes, sq8 %zu bytes", mem[0], mem[1]);
    cr_assert_lt(mem[1] * 2, mem[0], "sq8 %zu bytes vs float %zu", mem[1], mem[0]);
    free(base);
    free(ids);
}

/* A reopened flat index reads its rows from the mapped snapshot: no copy on the heap, exact
 * answers, and adds after the reopen (rows on the heap) mix with the mapped ones. */
Test(datadir, flat_reload_reads_rows_in_place)
{
    const size_t n = 4000;
    const uint32_t dim = 128;
    float *base = tu_clustered_vectors(n + 100, dim, 20, 6);
    uint64_t *ids = malloc(n * sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = i;
    vindex_params_t p;
    vindex_params_default(&p, VINDEX_FLAT, VINDEX_L2, dim);
    p.capacity = 2 * n;
    char err[512] = "";
    vindex_t *ix = vindex_open(datadir, &p, VINDEX_DURABILITY_BATCH, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    cr_assert_eq(vindex_add_batch(ix, ids, base, n, err, sizeof(err)), 0, "%s", err);
    size_t built = vindex_mem_bytes(ix);
    cr_assert_eq(vindex_save(ix, datadir, err, sizeof(err)), 0, "%s", err);
    vindex_free(ix);
    ix = vindex_open(datadir, NULL, VINDEX_DURABILITY_BATCH, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    size_t reopened = vindex_mem_bytes(ix);
    cr_log_info("flat memory: built %zu bytes, reopened %zu bytes", built, reopened);
    cr_assert_lt(reopened * 4, built, "reopened %zu bytes vs built %zu", reopened, built);
    for (size_t i = n; i < n + 100; i++)
        cr_assert_eq(vindex_add(ix, i, base + i * dim, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_delete(ix, 5, err, sizeof(err)), 0, "%s", err);
    vindex_search_params_t sp = {.k = 1};
    for (size_t i = 0; i < n + 100; i += 97) {
        vindex_hit_t hit;
        cr_assert_eq(vindex_search(ix, base + i * dim, &sp, &hit, err, sizeof(err)), 1);
        cr_assert_eq(hit.id, i);
        cr_assert_lt(hit.score, 1e-6);
    }
    /* A checkpoint rewrites the snapshot the rows are mapped from: they stay readable. */
    cr_assert_eq(vindex_save(ix, datadir, err, sizeof(err)), 0, "%s", err);
    vindex_hit_t hit;
    cr_assert_eq(vindex_search(ix, base + 1234 * dim, &sp, &hit, err, sizeof(err)), 1);
    cr_assert_eq(hit.id, 1234);
    vindex_free(ix);
    ix = vindex_open(datadir, NULL, VINDEX_DURABILITY_BATCH, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    cr_assert_eq(vindex_count(ix), n + 99);
    cr_assert_not(vindex_contains(ix, 5));
    cr_assert_eq(vindex_search(ix, base + (n + 50) * dim, &sp, &hit, err, sizeof(err)), 1);
    cr_assert_eq(hit.id, n + 50);
    vindex_free(ix);
    free(base);
    free(ids);
}

static void snap_path(char *out, size_t len)
{
    snprintf(out, len, "%s/%s", datadir, VINDEX_SNAP_FILE);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*len + 1);
    cr_assert_eq(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void spit(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static void saved_ivf(void)
{
    float *base = tu_clustered_vectors(300, DIM, 20, 9);
    vindex_params_t p = params(VINDEX_IVF_FLAT, VINDEX_COSINE, 1);
    char err[512] = "";
    vindex_t *ix = vindex_open(datadir, &p, VINDEX_DURABILITY_SYNC, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    apply_changes(ix, base, 0, 300);
    cr_assert_eq(vindex_save(ix, datadir, err, sizeof(err)), 0, "%s", err);
    vindex_free(ix);
    free(base);
}

Test(datadir, damaged_snapshot_is_rejected_with_a_message)
{
    saved_ivf();
    char path[512];
    snap_path(path, sizeof(path));
    size_t len;
    uint8_t *orig = slurp(path, &len);
    vindex_snap_t s;
    char err[512] = "";
    cr_assert_eq(vindex_snap_parse(orig, len, 1, &s, err, sizeof(err)), 0, "%s", err);
    /* Truncation at and around every section boundary. */
    for (int t = 1; t < VINDEX_SEC_MAX_TYPE; t++) {
        if (!s.sec[t])
            continue;
        size_t start = (size_t)(s.sec[t] - orig), end = start + s.sec_size[t];
        size_t cuts[] = {start, start + 1, end > 0 ? end - 1 : 0, end};
        for (size_t c = 0; c < 4; c++) {
            if (cuts[c] >= len)
                continue;
            spit(path, orig, cuts[c]);
            vindex_t *ix = vindex_open(datadir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err));
            cr_assert_null(ix, "truncated at %zu (section %d) accepted", cuts[c], t);
            cr_assert(strstr(err, VINDEX_SNAP_FILE) != NULL, "%s", err);
        }
    }
    /* Flipped bytes spread over the file. */
    for (size_t i = 0; i < len; i += 97) {
        orig[i] ^= 0x21;
        spit(path, orig, len);
        orig[i] ^= 0x21;
        vindex_t *ix = vindex_open(datadir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err));
        if (ix) {
            /* Only padding outside every section may change without notice. */
            uint32_t nsec;
            memcpy(&nsec, orig + 48, 4);
            int in_section = i < VINDEX_SNAP_HEADER_SIZE + nsec * VINDEX_SNAP_ENTRY_SIZE;
            for (int t = 1; t < VINDEX_SEC_MAX_TYPE; t++)
                if (s.sec[t] && i >= (size_t)(s.sec[t] - orig) &&
                    i < (size_t)(s.sec[t] - orig) + s.sec_size[t])
                    in_section = 1;
            cr_assert(!in_section, "flip at %zu accepted", i);
            vindex_free(ix);
        }
    }
    spit(path, orig, len);
    vindex_t *ix = vindex_open(datadir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    vindex_free(ix);
    free(orig);
}

Test(datadir, log_torn_tail_is_dropped_corrupt_log_is_refused)
{
    saved_ivf();
    float v[DIM] = {1, 2, 3};
    char err[512] = "";
    vindex_t *ix = vindex_open(datadir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    for (int i = 0; i < 3; i++) {
        v[3] = (float)i;
        cr_assert_eq(vindex_add(ix, 10000 + (uint64_t)i, v, err, sizeof(err)), 0, "%s", err);
    }
    vindex_free(ix);
    char wal[512];
    snprintf(wal, sizeof(wal), "%s/%s", datadir, VINDEX_WAL_FILE);
    size_t len;
    uint8_t *orig = slurp(wal, &len);
    size_t rec = len - VINDEX_WAL_HEADER_SIZE;
    cr_assert_eq(rec % 3, 0);
    rec /= 3;
    /* Half of the last record missing: the first two survive. */
    spit(wal, orig, len - rec / 2);
    ix = vindex_open(datadir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err));
    cr_assert_not_null(ix, "%s", err);
    cr_assert(vindex_contains(ix, 10001));
    cr_assert(!vindex_contains(ix, 10002));
    vindex_free(ix);
    /* A damaged first record with intact ones after it is corruption, not a torn tail. */
    orig[VINDEX_WAL_HEADER_SIZE + 40] ^= 0xff;
    spit(wal, orig, len);
    ix = vindex_open(datadir, NULL, VINDEX_DURABILITY_SYNC, err, sizeof(err));
    cr_assert_null(ix);
    cr_assert(strstr(err, "corrupt") != NULL, "%s", err);
    free(orig);
}
