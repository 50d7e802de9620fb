/* The node snapshot file: written through a temporary file with a running SHA-256, put in
 * place with fsync and rename; read back only after the checksum and the whole structure have
 * been checked (format in lookalike.h, section node snapshot). */
#include "lookalike/lookalike.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAP_MAGIC "LKNSNAP1"
#define SNAP_VERSION 1
#define SNAP_COLLECTIONS_MAX 256
#define SNAP_SHARDS_TEXT_MAX 1024
#define SNAP_HEADER 28
#define SNAP_TRAILER 32

struct lookalike_snap_writer {
    FILE *f;
    char *path, *tmp;
    lookalike_sha256_t sha;
    uint32_t colls_left;   /* collection blocks still to come */
    uint64_t records_left; /* records still to come in the current block */
    int failed;
};

static void put_u32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *b)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static uint64_t get_u64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static int w_bytes(lookalike_snap_writer_t *w, const void *p, size_t n, char *err, size_t errlen)
{
    if (w->failed || fwrite(p, 1, n, w->f) != n) {
        if (!w->failed)
            lookalike_errf(err, errlen, "%s: %s", w->tmp, strerror(errno));
        w->failed = 1;
        return LOOKALIKE_EIO;
    }
    lookalike_sha256_update(&w->sha, p, n);
    return 0;
}

void lookalike_snap_abort(lookalike_snap_writer_t *w)
{
    if (!w)
        return;
    if (w->f)
        fclose(w->f);
    if (w->tmp)
        unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w);
}

lookalike_snap_writer_t *lookalike_snap_begin(const char *path, uint64_t applied_seq, const char *shards,
                                              uint32_t ncollections, char *err, size_t errlen)
{
    size_t sl = strlen(shards);
    if (sl < 1 || sl > SNAP_SHARDS_TEXT_MAX || ncollections > SNAP_COLLECTIONS_MAX) {
        lookalike_errf(err, errlen, "snapshot: shard set text or collection count out of range");
        return NULL;
    }
    lookalike_snap_writer_t *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path)) || asprintf(&w->tmp, "%s.tmp", path) < 0) {
        if (w)
            w->tmp = NULL;
        lookalike_snap_abort(w);
        lookalike_errf(err, errlen, "out of memory");
        return NULL;
    }
    if (!(w->f = fopen(w->tmp, "wb"))) {
        lookalike_errf(err, errlen, "%s: %s", w->tmp, strerror(errno));
        lookalike_snap_abort(w);
        return NULL;
    }
    lookalike_sha256_init(&w->sha);
    uint8_t h[SNAP_HEADER];
    memcpy(h, SNAP_MAGIC, 8);
    put_u32(h + 8, SNAP_VERSION);
    put_u32(h + 12, ncollections);
    put_u64(h + 16, applied_seq);
    put_u32(h + 24, (uint32_t)sl);
    if (w_bytes(w, h, sizeof h, err, errlen) != 0 || w_bytes(w, shards, sl, err, errlen) != 0) {
        lookalike_snap_abort(w);
        return NULL;
    }
    w->colls_left = ncollections;
    return w;
}

int lookalike_snap_collection(lookalike_snap_writer_t *w, const char *name, uint32_t nshards,
                              uint32_t shard_key, uint64_t nrecords, char *err, size_t errlen)
{
    size_t n = strlen(name);
    if (w->records_left || !w->colls_left || n < 1 || n > LOOKALIKE_COLLECTION_NAME_MAX || nshards < 1 ||
        nshards > LOOKALIKE_SHARDS_MAX || shard_key > 1) {
        lookalike_errf(err, errlen, "snapshot: collection block out of order or out of range");
        w->failed = 1;
        return LOOKALIKE_EINVAL;
    }
    uint8_t b[1 + LOOKALIKE_COLLECTION_NAME_MAX + 16];
    b[0] = (uint8_t)n;
    memcpy(b + 1, name, n);
    put_u32(b + 1 + n, nshards);
    put_u32(b + 5 + n, shard_key);
    put_u64(b + 9 + n, nrecords);
    w->colls_left--;
    w->records_left = nrecords;
    return w_bytes(w, b, 17 + n, err, errlen);
}

int lookalike_snap_record(lookalike_snap_writer_t *w, uint64_t doc_id, const char *json, size_t len,
                          char *err, size_t errlen)
{
    if (!w->records_left || len < 1 || len > LOOKALIKE_SNAP_RECORD_MAX) {
        lookalike_errf(err, errlen, "snapshot: record out of order or out of range");
        w->failed = 1;
        return LOOKALIKE_EINVAL;
    }
    uint8_t b[12];
    put_u64(b, doc_id);
    put_u32(b + 8, (uint32_t)len);
    w->records_left--;
    int rc = w_bytes(w, b, sizeof b, err, errlen);
    return rc ? rc : w_bytes(w, json, len, err, errlen);
}

static int fsync_dir_of(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return -1;
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int lookalike_snap_commit(lookalike_snap_writer_t *w, char *err, size_t errlen)
{
    int rc = 0;
    if (!w->failed && (w->colls_left || w->records_left)) {
        lookalike_errf(err, errlen,
                       "snapshot: %u collection blocks and %llu records announced but not written",
                       w->colls_left, (unsigned long long)w->records_left);
        rc = LOOKALIKE_EINVAL;
        goto out;
    }
    uint8_t digest[SNAP_TRAILER];
    lookalike_sha256_final(&w->sha, digest);
    if (w->failed || fwrite(digest, 1, sizeof digest, w->f) != sizeof digest || fflush(w->f) != 0 ||
        fsync(fileno(w->f)) != 0) {
        if (!w->failed)
            lookalike_errf(err, errlen, "%s: %s", w->tmp, strerror(errno));
        rc = LOOKALIKE_EIO;
        goto out;
    }
    FILE *f = w->f;
    w->f = NULL;
    if (fclose(f) != 0 || rename(w->tmp, w->path) != 0 || fsync_dir_of(w->path) != 0) {
        lookalike_errf(err, errlen, "%s: %s", w->path, strerror(errno));
        rc = LOOKALIKE_EIO;
        goto out;
    }
    free(w->tmp);
    w->tmp = NULL; /* in place: nothing to remove */
out:
    lookalike_snap_abort(w);
    return rc;
}

/* Walks the structure; with v == NULL it only checks. Returns 0, a visitor's non-zero return,
 * or LOOKALIKE_EINVAL with the failed check in err. */
static int walk(const uint8_t *buf, size_t len, const lookalike_snap_visitor_t *v, void *ud, char *err,
                size_t errlen)
{
    size_t end = len - SNAP_TRAILER, at = SNAP_HEADER;
    uint32_t ncoll = get_u32(buf + 12), sl = get_u32(buf + 24);
    char shards[SNAP_SHARDS_TEXT_MAX + 1];
    if (get_u32(buf + 8) != SNAP_VERSION) {
        lookalike_errf(err, errlen, "snapshot corrupt: unknown version %u", get_u32(buf + 8));
        return LOOKALIKE_EINVAL;
    }
    if (ncoll > SNAP_COLLECTIONS_MAX || sl < 1 || sl > SNAP_SHARDS_TEXT_MAX || sl > end - at ||
        memchr(buf + at, '\0', sl)) {
        lookalike_errf(err, errlen, "snapshot corrupt: header out of range");
        return LOOKALIKE_EINVAL;
    }
    memcpy(shards, buf + at, sl);
    shards[sl] = '\0';
    at += sl;
    int rc;
    if (v && v->header && (rc = v->header(ud, get_u64(buf + 16), shards, ncoll)) != 0)
        return rc;
    for (uint32_t c = 0; c < ncoll; c++) {
        char name[LOOKALIKE_COLLECTION_NAME_MAX + 1];
        size_t n = at < end ? buf[at] : 0;
        if (n < 1 || n > LOOKALIKE_COLLECTION_NAME_MAX || 17 + n > end - at) {
            lookalike_errf(err, errlen, "snapshot corrupt: collection block %u at offset %zu", c, at);
            return LOOKALIKE_EINVAL;
        }
        memcpy(name, buf + at + 1, n);
        name[n] = '\0';
        uint32_t nshards = get_u32(buf + at + 1 + n), key = get_u32(buf + at + 5 + n);
        uint64_t nrec = get_u64(buf + at + 9 + n);
        if (!lookalike_collection_name_valid(name) || nshards < 1 || nshards > LOOKALIKE_SHARDS_MAX ||
            key > 1 || nrec > (end - at) / 12) {
            lookalike_errf(err, errlen, "snapshot corrupt: collection block %u at offset %zu", c, at);
            return LOOKALIKE_EINVAL;
        }
        at += 17 + n;
        if (v && v->collection && (rc = v->collection(ud, name, nshards, key, nrec)) != 0)
            return rc;
        for (uint64_t r = 0; r < nrec; r++) {
            if (end - at < 12) {
                lookalike_errf(err, errlen, "snapshot corrupt: record %llu of %s at offset %zu",
                               (unsigned long long)r, name, at);
                return LOOKALIKE_EINVAL;
            }
            uint64_t doc = get_u64(buf + at);
            uint32_t jl = get_u32(buf + at + 8);
            if (jl < 1 || jl > LOOKALIKE_SNAP_RECORD_MAX || jl > end - at - 12) {
                lookalike_errf(err, errlen, "snapshot corrupt: record %llu of %s at offset %zu",
                               (unsigned long long)r, name, at);
                return LOOKALIKE_EINVAL;
            }
            if (v && v->record && (rc = v->record(ud, doc, (const char *)buf + at + 12, jl)) != 0)
                return rc;
            at += 12 + (size_t)jl;
        }
    }
    if (at != end) {
        lookalike_errf(err, errlen, "snapshot corrupt: %zu bytes after the last block", end - at);
        return LOOKALIKE_EINVAL;
    }
    return 0;
}

int lookalike_snap_parse(const uint8_t *buf, size_t len, const lookalike_snap_visitor_t *v, void *ud,
                         char *err, size_t errlen)
{
    if (len < SNAP_HEADER + SNAP_TRAILER || memcmp(buf, SNAP_MAGIC, 8) != 0) {
        lookalike_errf(err, errlen, "snapshot corrupt: not a node snapshot (magic or size)");
        return LOOKALIKE_EINVAL;
    }
    uint8_t digest[32];
    lookalike_sha256_t sha;
    lookalike_sha256_init(&sha);
    lookalike_sha256_update(&sha, buf, len - SNAP_TRAILER);
    lookalike_sha256_final(&sha, digest);
    if (memcmp(digest, buf + len - SNAP_TRAILER, SNAP_TRAILER) != 0) {
        lookalike_errf(err, errlen, "snapshot corrupt: checksum mismatch (a torn or damaged file)");
        return LOOKALIKE_EINVAL;
    }
    int rc = walk(buf, len, NULL, NULL, err, errlen);
    return rc ? rc : walk(buf, len, v, ud, err, errlen);
}

int lookalike_snap_load(const char *path, const lookalike_snap_visitor_t *v, void *ud, char *err,
                        size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        lookalike_errf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? LOOKALIKE_ENOTFOUND : LOOKALIKE_EIO;
    }
    struct stat st;
    uint8_t *buf = NULL;
    int rc = LOOKALIKE_EIO;
    if (fstat(fd, &st) != 0 || st.st_size < 0) {
        lookalike_errf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    size_t len = (size_t)st.st_size, got = 0;
    if (!(buf = malloc(len ? len : 1))) {
        lookalike_errf(err, errlen, "%s: out of memory", path);
        rc = LOOKALIKE_ENOMEM;
        goto out;
    }
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0) {
            lookalike_errf(err, errlen, "%s: %s", path, r < 0 ? strerror(errno) : "shorter than its size");
            goto out;
        }
        got += (size_t)r;
    }
    rc = lookalike_snap_parse(buf, len, v, ud, err, errlen);
out:
    free(buf);
    close(fd);
    return rc;
}
