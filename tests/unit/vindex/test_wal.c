/* Write-ahead log: replay, torn tails, corruption, group commit, reset. */
#include <criterion/criterion.h>

#include "vindex/store.h"
#include "vindex/vstore_testutil.h"
#include "vindex/wal.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIM 4
#define MAXREC 4096

static char tmpdir[256];

typedef struct {
    size_t n;
    int type[MAXREC];
    uint64_t lsn[MAXREC];
    uint64_t id[MAXREC];
    float vec[MAXREC][DIM];
} replay_t;

static int collect(void *ctx, int type, uint64_t lsn, uint64_t id, const float *vec, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    replay_t *r = ctx;
    cr_assert_lt(r->n, MAXREC);
    r->type[r->n] = type;
    r->lsn[r->n] = lsn;
    r->id[r->n] = id;
    if (vec)
        memcpy(r->vec[r->n], vec, sizeof(r->vec[0]));
    r->n++;
    return 0;
}

static void make_tmpdir(void)
{
    vstore_tmpdir_make(tmpdir, sizeof(tmpdir));
}

static void remove_tmpdir(void)
{
    vstore_tmpdir_remove(tmpdir);
}

TestSuite(wal, .init = make_tmpdir, .fini = remove_tmpdir);

static vindex_wal_t *open_wal(uint64_t snap_lsn, int mode, replay_t *r)
{
    char err[512] = "";
    if (r)
        memset(r, 0, sizeof(*r));
    vindex_wal_t *w =
        vindex_wal_open(tmpdir, DIM, snap_lsn, mode, 0, r ? collect : NULL, r, err, sizeof(err));
    cr_assert_not_null(w, "%s", err);
    return w;
}

static void write_records(vindex_wal_t *w, uint64_t first_id, int n)
{
    char err[256];
    for (int i = 0; i < n; i++) {
        float v[DIM] = {(float)i, 1, 2, 3};
        uint64_t lsn;
        int type = (i % 5 == 4) ? VINDEX_WAL_DELETE : VINDEX_WAL_INSERT;
        cr_assert_eq(vindex_wal_append(w, type, first_id + (uint64_t)i, v, &lsn, err, sizeof(err)), 0);
        cr_assert_eq(vindex_wal_commit(w, lsn, err, sizeof(err)), 0, "%s", err);
    }
}

static void wal_path(char *out, size_t len)
{
    snprintf(out, len, "%s/%s", tmpdir, VINDEX_WAL_FILE);
}

static off_t wal_file_size(void)
{
    char p[512];
    wal_path(p, sizeof(p));
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    return st.st_size;
}

static replay_t rp;

Test(wal, replay_returns_every_committed_record_in_order)
{
    vindex_wal_t *w = open_wal(0, VINDEX_WAL_SYNC_ALWAYS, &rp);
    cr_assert_eq(rp.n, 0);
    write_records(w, 100, 20);
    cr_assert_eq(vindex_wal_last_lsn(w), 20);
    vindex_wal_free(w);

    w = open_wal(0, VINDEX_WAL_SYNC_ALWAYS, &rp);
    cr_assert_eq(rp.n, 20);
    for (size_t i = 0; i < 20; i++) {
        cr_assert_eq(rp.lsn[i], i + 1);
        cr_assert_eq(rp.id[i], 100 + i);
        cr_assert_eq(rp.type[i], i % 5 == 4 ? VINDEX_WAL_DELETE : VINDEX_WAL_INSERT);
        if (rp.type[i] == VINDEX_WAL_INSERT)
            cr_assert_eq(rp.vec[i][0], (float)i);
    }
    /* Appends continue the sequence after a reopen. */
    write_records(w, 500, 1);
    cr_assert_eq(vindex_wal_last_lsn(w), 21);
    vindex_wal_free(w);

    /* Records already in the snapshot are skipped. */
    w = open_wal(15, VINDEX_WAL_SYNC_ALWAYS, &rp);
    cr_assert_eq(rp.n, 6);
    cr_assert_eq(rp.lsn[0], 16);
    vindex_wal_free(w);
}

Test(wal, torn_tail_at_every_byte_is_ignored_and_cut)
{
    vindex_wal_t *w = open_wal(0, VINDEX_WAL_SYNC_BATCH, NULL);
    write_records(w, 1, 4);
    off_t four = wal_file_size();
    write_records(w, 5, 1);
    vindex_wal_free(w);
    off_t five = wal_file_size();
    char p[512];
    wal_path(p, sizeof(p));
    int fd = open(p, O_RDONLY);
    uint8_t full[4096];
    cr_assert_eq(read(fd, full, (size_t)five), five);
    close(fd);

    for (off_t cut = four; cut < five; cut++) {
        fd = open(p, O_WRONLY | O_TRUNC);
        cr_assert_eq(write(fd, full, (size_t)cut), cut);
        close(fd);
        w = open_wal(0, VINDEX_WAL_SYNC_BATCH, &rp);
        cr_assert_eq(rp.n, 4, "cut at %lld", (long long)cut);
        cr_assert_eq(wal_file_size(), four, "torn tail not cut at %lld", (long long)cut);
        /* New records go after the last good one and survive the next replay. */
        write_records(w, 99, 1);
        vindex_wal_free(w);
        w = open_wal(0, VINDEX_WAL_SYNC_BATCH, &rp);
        cr_assert_eq(rp.n, 5);
        cr_assert_eq(rp.id[4], 99);
        cr_assert_eq(rp.lsn[4], 5);
        vindex_wal_free(w);
    }
}

Test(wal, damaged_or_zero_filled_last_record_is_a_torn_tail)
{
    vindex_wal_t *w = open_wal(0, VINDEX_WAL_SYNC_BATCH, NULL);
    write_records(w, 1, 3);
    vindex_wal_free(w);
    off_t size = wal_file_size();
    char p[512];
    wal_path(p, sizeof(p));
    int fd = open(p, O_WRONLY);
    cr_assert_eq(pwrite(fd, "\xff", 1, size - 2), 1);
    close(fd);
    w = open_wal(0, VINDEX_WAL_SYNC_BATCH, &rp);
    cr_assert_eq(rp.n, 2);
    vindex_wal_free(w);

    size = wal_file_size();
    fd = open(p, O_WRONLY | O_APPEND);
    uint8_t zeros[300] = {0};
    cr_assert_eq(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
    close(fd);
    w = open_wal(0, VINDEX_WAL_SYNC_BATCH, &rp);
    cr_assert_eq(rp.n, 2);
    cr_assert_eq(wal_file_size(), size);
    vindex_wal_free(w);
}

Test(wal, damaged_middle_record_is_an_error)
{
    vindex_wal_t *w = open_wal(0, VINDEX_WAL_SYNC_BATCH, NULL);
    write_records(w, 1, 2);
    off_t second_end = wal_file_size();
    write_records(w, 3, 3);
    vindex_wal_free(w);
    off_t size = wal_file_size();
    char p[512];
    wal_path(p, sizeof(p));
    /* Damage the length field, the checksum and the payload of the third record in turn. */
    off_t targets[] = {second_end, second_end + 5, second_end + 20};
    for (size_t i = 0; i < 3; i++) {
        int fd = open(p, O_RDWR);
        uint8_t b;
        cr_assert_eq(pread(fd, &b, 1, targets[i]), 1);
        b ^= 0x40;
        cr_assert_eq(pwrite(fd, &b, 1, targets[i]), 1);
        close(fd);
        char err[512] = "";
        vindex_wal_t *bad =
            vindex_wal_open(tmpdir, DIM, 0, VINDEX_WAL_SYNC_BATCH, 0, collect, &rp, err, sizeof(err));
        cr_assert_null(bad, "damage at %lld accepted", (long long)targets[i]);
        cr_assert_not_null(strstr(err, "corrupt"), "%s", err);
        cr_assert_not_null(strstr(err, "offset"), "%s", err);
        cr_assert_eq(wal_file_size(), size, "a corrupt log must not be truncated");
        fd = open(p, O_RDWR);
        b ^= 0x40;
        cr_assert_eq(pwrite(fd, &b, 1, targets[i]), 1);
        close(fd);
    }
    w = open_wal(0, VINDEX_WAL_SYNC_BATCH, &rp);
    cr_assert_eq(rp.n, 5);
    vindex_wal_free(w);
}

Test(wal, header_damage_and_dimension_mismatch_are_errors)
{
    vindex_wal_t *w = open_wal(0, VINDEX_WAL_SYNC_BATCH, NULL);
    write_records(w, 1, 2);
    vindex_wal_free(w);
    char err[512] = "";
    cr_assert_null(
        vindex_wal_open(tmpdir, DIM + 1, 0, VINDEX_WAL_SYNC_BATCH, 0, NULL, NULL, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "dimension"), "%s", err);
    char p[512];
    wal_path(p, sizeof(p));
    int fd = open(p, O_WRONLY);
    cr_assert_eq(pwrite(fd, "\x07", 1, 17), 1);
    close(fd);
    cr_assert_null(vindex_wal_open(tmpdir, DIM, 0, VINDEX_WAL_SYNC_BATCH, 0, NULL, NULL, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "header"), "%s", err);
}

Test(wal, second_open_of_a_directory_is_refused)
{
    vindex_wal_t *w = open_wal(0, VINDEX_WAL_SYNC_BATCH, NULL);
    char err[512] = "";
    cr_assert_null(vindex_wal_open(tmpdir, DIM, 0, VINDEX_WAL_SYNC_BATCH, 0, NULL, NULL, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "in use"), "%s", err);
    vindex_wal_free(w);
}

Test(wal, reset_after_checkpoint)
{
    vindex_wal_t *w = open_wal(0, VINDEX_WAL_SYNC_ALWAYS, NULL);
    write_records(w, 1, 7);
    char err[512] = "";
    cr_assert_eq(vindex_wal_reset(w, 7, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(wal_file_size(), VINDEX_WAL_HEADER_SIZE);
    write_records(w, 50, 2);
    vindex_wal_free(w);
    w = open_wal(7, VINDEX_WAL_SYNC_ALWAYS, &rp);
    cr_assert_eq(rp.n, 2);
    cr_assert_eq(rp.lsn[0], 8);
    cr_assert_eq(rp.id[0], 50);
    vindex_wal_free(w);
    /* A snapshot older than the log's base means lost records. */
    cr_assert_null(vindex_wal_open(tmpdir, DIM, 3, VINDEX_WAL_SYNC_BATCH, 0, NULL, NULL, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "missing"), "%s", err);
}

Test(wal, log_older_than_snapshot_is_restarted)
{
    /* A crash between the snapshot rename and the log reset leaves records the snapshot holds. */
    vindex_wal_t *w = open_wal(0, VINDEX_WAL_SYNC_ALWAYS, NULL);
    write_records(w, 1, 3);
    vindex_wal_free(w);
    w = open_wal(10, VINDEX_WAL_SYNC_ALWAYS, &rp);
    cr_assert_eq(rp.n, 0);
    write_records(w, 1, 1);
    cr_assert_eq(vindex_wal_last_lsn(w), 11);
    vindex_wal_free(w);
    w = open_wal(10, VINDEX_WAL_SYNC_ALWAYS, &rp);
    cr_assert_eq(rp.n, 1);
    cr_assert_eq(rp.lsn[0], 11);
    vindex_wal_free(w);
}

typedef struct {
    vindex_wal_t *w;
    int thread;
    pthread_mutex_t *order; /* the index writer lock: appends in apply order */
} writer_arg_t;

#define THREADS 4
#define PER_THREAD 150

static void *writer_main(void *p)
{
    writer_arg_t *a = p;
    char err[256];
    for (int i = 0; i < PER_THREAD; i++) {
        float v[DIM] = {(float)a->thread, (float)i, 0, 0};
        uint64_t lsn;
        pthread_mutex_lock(a->order);
        int rc = vindex_wal_append(a->w, VINDEX_WAL_INSERT, (uint64_t)a->thread * 1000 + (uint64_t)i, v, &lsn,
                                   err, sizeof(err));
        pthread_mutex_unlock(a->order);
        if (rc != 0 || vindex_wal_commit(a->w, lsn, err, sizeof(err)) != 0)
            return (void *)1;
    }
    return NULL;
}

static void group_commit_case(int mode, uint32_t window_us)
{
    char err[512] = "";
    vindex_wal_t *w = vindex_wal_open(tmpdir, DIM, 0, mode, window_us, NULL, NULL, err, sizeof(err));
    cr_assert_not_null(w, "%s", err);
    pthread_mutex_t order = PTHREAD_MUTEX_INITIALIZER;
    pthread_t th[THREADS];
    writer_arg_t args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (writer_arg_t){w, t, &order};
        cr_assert_eq(pthread_create(&th[t], NULL, writer_main, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        void *res;
        pthread_join(th[t], &res);
        cr_assert_null(res);
    }
    vindex_wal_free(w);
    w = open_wal(0, mode, &rp);
    cr_assert_eq(rp.n, THREADS * PER_THREAD);
    int seen[THREADS][PER_THREAD] = {{0}};
    for (size_t i = 0; i < rp.n; i++) {
        cr_assert_eq(rp.lsn[i], i + 1);
        seen[rp.id[i] / 1000][rp.id[i] % 1000]++;
        cr_assert_eq(rp.vec[i][0], (float)(rp.id[i] / 1000));
    }
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++)
            cr_assert_eq(seen[t][i], 1);
    vindex_wal_free(w);
}

Test(wal, group_commit_batch_mode_keeps_every_record)
{
    group_commit_case(VINDEX_WAL_SYNC_BATCH, 200);
}

Test(wal, group_commit_always_mode_keeps_every_record)
{
    group_commit_case(VINDEX_WAL_SYNC_ALWAYS, 0);
}

Test(wal, sync_flushes_batch_mode_records)
{
    char err[512] = "";
    /* An interval no test outlasts: only vindex_wal_sync fsyncs. */
    vindex_wal_t *w = vindex_wal_open(tmpdir, DIM, 0, VINDEX_WAL_SYNC_BATCH, 3600u * 1000000u, NULL, NULL,
                                      err, sizeof(err));
    cr_assert_not_null(w, "%s", err);
    write_records(w, 1, 10);
    cr_assert_eq(vindex_wal_sync(w, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(vindex_wal_sync(w, err, sizeof(err)), 0, "%s", err);
    vindex_wal_free(w);
    w = open_wal(0, VINDEX_WAL_SYNC_BATCH, &rp);
    cr_assert_eq(rp.n, 10);
    vindex_wal_free(w);
}
