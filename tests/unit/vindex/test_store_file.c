/* CRC-32C and the snapshot container: round trip, and every kind of damage rejected. */
#include <criterion/criterion.h>

#include "vindex/crc32c.h"
#include "vindex/store.h"
#include "vindex/vstore_testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void make_tmpdir(void)
{
    vstore_tmpdir_make(tmpdir, sizeof(tmpdir));
}

static void remove_tmpdir(void)
{
    vstore_tmpdir_remove(tmpdir);
}

TestSuite(store, .init = make_tmpdir, .fini = remove_tmpdir);

Test(store, crc32c_known_values)
{
    cr_assert_eq(vindex_crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(vindex_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    uint8_t zeros[32] = {0};
    cr_assert_eq(vindex_crc32c(0, zeros, 32), 0x8A9136AAu);
    /* Incremental extension equals one pass. */
    cr_assert_eq(vindex_crc32c(vindex_crc32c(0, "12345", 5), "6789", 4), 0xE3069283u);
}

Test(store, crc32c_hw_matches_sw_on_every_length_and_offset)
{
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 131u + 7u);
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len + off <= sizeof(buf); len++)
            cr_assert_eq(vindex_crc32c(0x1234u, buf + off, len), vindex_crc32c_sw(0x1234u, buf + off, len),
                         "off %zu len %zu", off, len);
}

static const uint64_t ids[5] = {10, 20, 30, 40, 50};
static const float vecs[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static void write_sample(void)
{
    char err[256] = "";
    vindex_snap_writer_t *w = vindex_snap_writer_begin(tmpdir, err, sizeof(err));
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(vindex_snap_writer_section_begin(w, VINDEX_SEC_IDS), 0);
    cr_assert_eq(vindex_snap_writer_write(w, ids, sizeof(ids)), 0);
    cr_assert_eq(vindex_snap_writer_section_end(w), 0);
    cr_assert_eq(vindex_snap_writer_section_begin(w, VINDEX_SEC_VECTORS), 0);
    /* Written in two pieces: the checksum must cover both. */
    cr_assert_eq(vindex_snap_writer_write(w, vecs, 12), 0);
    cr_assert_eq(vindex_snap_writer_write(w, vecs + 3, sizeof(vecs) - 12), 0);
    cr_assert_eq(vindex_snap_writer_section_end(w), 0);
    cr_assert_eq(vindex_snap_writer_section_begin(w, VINDEX_SEC_DELETED), 0);
    cr_assert_eq(vindex_snap_writer_section_end(w), 0);
    vindex_snap_info_t info = {.kind = 2, .metric = 1, .dim = 2, .count = 5, .wal_lsn = 77};
    cr_assert_eq(vindex_snap_writer_commit(w, &info, err, sizeof(err)), 0, "%s", err);
}

static uint8_t *read_snap(size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, VINDEX_SNAP_FILE);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*len);
    cr_assert_eq(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

Test(store, round_trip)
{
    write_sample();
    vindex_snap_file_t f;
    char err[256] = "";
    cr_assert_eq(vindex_snap_file_open(tmpdir, &f, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(f.snap.info.kind, 2);
    cr_assert_eq(f.snap.info.metric, 1);
    cr_assert_eq(f.snap.info.dim, 2);
    cr_assert_eq(f.snap.info.count, 5);
    cr_assert_eq(f.snap.info.wal_lsn, 77);
    const uint8_t *p = vindex_snap_section(&f.snap, VINDEX_SEC_IDS, sizeof(ids), err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(memcmp(p, ids, sizeof(ids)), 0);
    p = vindex_snap_section(&f.snap, VINDEX_SEC_VECTORS, sizeof(vecs), err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq((uintptr_t)p % VINDEX_SNAP_ALIGN, 0);
    cr_assert_eq(memcmp(p, vecs, sizeof(vecs)), 0);
    cr_assert_not_null(vindex_snap_section(&f.snap, VINDEX_SEC_DELETED, 0, err, sizeof(err)));
    cr_assert_null(vindex_snap_section(&f.snap, VINDEX_SEC_IDS, 8, err, sizeof(err)));
    cr_assert_null(vindex_snap_section(&f.snap, VINDEX_SEC_HNSW_LINKS, 0, err, sizeof(err)));
    vindex_snap_file_release(&f);
    /* No temp file left behind. */
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s/%s", tmpdir, VINDEX_SNAP_TMP);
    cr_assert_neq(access(tmp, F_OK), 0);
}

Test(store, missing_snapshot_is_not_an_error)
{
    vindex_snap_file_t f;
    char err[256];
    cr_assert_eq(vindex_snap_file_open(tmpdir, &f, err, sizeof(err)), 1);
}

Test(store, every_flipped_byte_is_rejected_or_harmless)
{
    write_sample();
    size_t len;
    uint8_t *buf = read_snap(&len);
    vindex_snap_t s;
    char err[256];
    cr_assert_eq(vindex_snap_parse(buf, len, 1, &s, err, sizeof(err)), 0, "%s", err);
    /* Padding between sections is not covered by any checksum; everything else is. */
    size_t rejected = 0, covered = 0;
    for (size_t i = 0; i < len; i++) {
        int in_section = 0;
        for (int t = 1; t < VINDEX_SEC_MAX_TYPE; t++)
            if (s.sec[t] && i >= (size_t)(s.sec[t] - buf) && i < (size_t)(s.sec[t] - buf) + s.sec_size[t])
                in_section = 1;
        uint32_t nsec = 3;
        int in_header = i < VINDEX_SNAP_HEADER_SIZE + nsec * VINDEX_SNAP_ENTRY_SIZE;
        buf[i] ^= 0x5a;
        vindex_snap_t s2;
        int rc = vindex_snap_parse(buf, len, 1, &s2, err, sizeof(err));
        buf[i] ^= 0x5a;
        if (in_section || in_header) {
            covered++;
            cr_assert_eq(rc, VINDEX_ECORRUPT, "flip at %zu accepted", i);
            cr_assert_neq(err[0], 0);
            rejected++;
        }
    }
    cr_assert_eq(rejected, covered);
    cr_assert_gt(covered, 100);
    free(buf);
}

Test(store, truncation_at_every_boundary_is_rejected)
{
    write_sample();
    size_t len;
    uint8_t *buf = read_snap(&len);
    vindex_snap_t s;
    char err[256];
    cr_assert_eq(vindex_snap_parse(buf, len, 1, &s, err, sizeof(err)), 0);
    size_t cuts[] = {0, 1, 8, 63, 64, 95, 96, 160, VINDEX_SNAP_DATA_START, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        cr_assert_eq(vindex_snap_parse(buf, cuts[i], 1, &s, err, sizeof(err)), VINDEX_ECORRUPT,
                     "cut at %zu accepted", cuts[i]);
    for (int t = 1; t < VINDEX_SEC_MAX_TYPE; t++) {
        vindex_snap_t full;
        cr_assert_eq(vindex_snap_parse(buf, len, 1, &full, err, sizeof(err)), 0);
        if (!full.sec[t])
            continue;
        size_t start = (size_t)(full.sec[t] - buf), end = start + full.sec_size[t];
        if (start < len)
            cr_assert_eq(vindex_snap_parse(buf, start, 1, &s, err, sizeof(err)), VINDEX_ECORRUPT);
        if (end < len)
            cr_assert_eq(vindex_snap_parse(buf, end, 1, &s, err, sizeof(err)), VINDEX_ECORRUPT);
    }
    /* An appended byte is caught too (file size is in the header). */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    cr_assert_eq(vindex_snap_parse(longer, len + 1, 1, &s, err, sizeof(err)), VINDEX_ECORRUPT);
    free(longer);
    free(buf);
}

Test(store, corrupt_file_on_disk_reports_path)
{
    write_sample();
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, VINDEX_SNAP_FILE);
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, "X", 1, VINDEX_SNAP_DATA_START + 3), 1);
    close(fd);
    vindex_snap_file_t f;
    char err[256] = "";
    cr_assert_eq(vindex_snap_file_open(tmpdir, &f, err, sizeof(err)), VINDEX_ECORRUPT);
    cr_assert_not_null(strstr(err, "checksum"), "%s", err);
    cr_assert_not_null(strstr(err, VINDEX_SNAP_FILE), "%s", err);
}

Test(store, aborted_writer_leaves_old_snapshot)
{
    write_sample();
    char err[256];
    vindex_snap_writer_t *w = vindex_snap_writer_begin(tmpdir, err, sizeof(err));
    cr_assert_not_null(w);
    cr_assert_eq(vindex_snap_writer_section_begin(w, VINDEX_SEC_IDS), 0);
    cr_assert_eq(vindex_snap_writer_write(w, "xx", 2), 0);
    vindex_snap_writer_abort(w);
    vindex_snap_file_t f;
    cr_assert_eq(vindex_snap_file_open(tmpdir, &f, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(f.snap.info.wal_lsn, 77);
    vindex_snap_file_release(&f);
}
