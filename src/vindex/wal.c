/* Write-ahead log: record framing, replay with torn-tail detection, and group commit.
 *
 * Appends go to an in-memory buffer under w->mu. A committer whose record is not yet durable
 * either becomes the leader (takes the whole buffer, writes and fsyncs it without the lock,
 * then publishes how far the file is written and synced) or waits for the current leader; so N concurrent
 * commits cost about one fsync. */
#include "vindex/wal.h"

#include "vindex/crc32c.h"
#include "vindex/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Largest log image replayed in one mapping; a log this big means checkpoints are not running. */
#define WAL_MAX_REPLAY ((uint64_t)64 << 30)

struct vindex_wal {
    int fd;
    int lock_fd; /* dir/LOCK, flocked for the log's lifetime: one process per directory */
    uint32_t dim;
    int sync_mode;
    uint64_t sync_interval_ns;
    char dir[4096];
    pthread_mutex_t mu;
    pthread_cond_t cv_durable; /* a leader finished */
    uint8_t *buf;              /* records appended, not yet handed to a leader */
    size_t buf_len, buf_cap;
    uint64_t last_lsn;    /* last appended */
    uint64_t written_lsn; /* every record <= this is written to the file */
    uint64_t synced_lsn;  /* every record <= this is fsynced */
    uint64_t last_sync_ns;
    uint64_t file_size;
    bool leader_active;
    int io_error; /* errno of a failed write or fsync; sticky */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void wal_header_build(uint8_t hdr[VINDEX_WAL_HEADER_SIZE], uint32_t dim, uint64_t base_lsn)
{
    memset(hdr, 0, VINDEX_WAL_HEADER_SIZE);
    memcpy(hdr, VINDEX_WAL_MAGIC, 8);
    uint32_t version = VINDEX_WAL_VERSION;
    memcpy(hdr + 8, &version, 4);
    memcpy(hdr + 12, &dim, 4);
    memcpy(hdr + 16, &base_lsn, 8);
    uint32_t crc = vindex_crc32c(0, hdr, 28);
    memcpy(hdr + 28, &crc, 4);
}

/* A record starting at off, fully inside buf, with a matching checksum and a legal length. */
static bool record_valid(const uint8_t *buf, size_t len, size_t off, uint32_t dim, uint32_t *plen_out)
{
    if (len - off < VINDEX_WAL_FRAME_SIZE)
        return false;
    uint32_t plen = rd32(buf + off);
    if (plen != VINDEX_WAL_PAYLOAD_FIXED && plen != VINDEX_WAL_PAYLOAD_FIXED + 4u * dim)
        return false;
    if (len - off - VINDEX_WAL_FRAME_SIZE < plen)
        return false;
    uint32_t crc = vindex_crc32c(0, buf + off, 4);
    crc = vindex_crc32c(crc, buf + off + VINDEX_WAL_FRAME_SIZE, plen);
    if (crc != rd32(buf + off + 4))
        return false;
    *plen_out = plen;
    return true;
}

int vindex_wal_scan(const uint8_t *buf, size_t len, uint32_t dim, uint64_t after_lsn,
                    vindex_wal_apply_fn apply, void *ctx, size_t *valid_len, uint64_t *last_lsn, char *err,
                    size_t errlen)
{
    *valid_len = 0;
    if (len < VINDEX_WAL_HEADER_SIZE) {
        set_err(err, errlen, "WAL truncated inside its header (%zu bytes)", len);
        return VINDEX_ECORRUPT;
    }
    if (memcmp(buf, VINDEX_WAL_MAGIC, 8) != 0 || rd32(buf + 28) != vindex_crc32c(0, buf, 28)) {
        set_err(err, errlen, "WAL header is damaged (bad magic or checksum)");
        return VINDEX_ECORRUPT;
    }
    if (rd32(buf + 8) != VINDEX_WAL_VERSION) {
        set_err(err, errlen, "WAL format version %u, this build reads %u", rd32(buf + 8), VINDEX_WAL_VERSION);
        return VINDEX_ECORRUPT;
    }
    if (rd32(buf + 12) != dim) {
        set_err(err, errlen, "WAL is for dimension %u, the index has %u", rd32(buf + 12), dim);
        return VINDEX_ECORRUPT;
    }
    uint64_t base = rd64(buf + 16);
    if (base > after_lsn) {
        set_err(err, errlen,
                "WAL starts after lsn %llu but the snapshot ends at lsn %llu: records are missing",
                (unsigned long long)base, (unsigned long long)after_lsn);
        return VINDEX_ECORRUPT;
    }
    uint64_t expect = base + 1;
    size_t off = VINDEX_WAL_HEADER_SIZE;
    uint64_t max_plen = VINDEX_WAL_PAYLOAD_FIXED + 4ull * dim;
    while (off < len) {
        uint32_t plen;
        if (!record_valid(buf, len, off, dim, &plen)) {
            /* Torn tail or corruption: the difference is whether a valid record comes later.
             * Records are multiples of 4 bytes, so candidates sit at 4-aligned offsets. */
            for (size_t probe = off + 4; probe + VINDEX_WAL_FRAME_SIZE <= len; probe += 4) {
                uint32_t pl;
                if (record_valid(buf, len, probe, dim, &pl) &&
                    rd64(buf + probe + VINDEX_WAL_FRAME_SIZE + 8) >= expect) {
                    set_err(err, errlen,
                            "WAL record at offset %zu (lsn %llu) is damaged but a valid record follows at "
                            "offset %zu: the log is corrupt, refusing to drop acknowledged writes",
                            off, (unsigned long long)expect, probe);
                    return VINDEX_ECORRUPT;
                }
            }
            break;
        }
        const uint8_t *p = buf + off + VINDEX_WAL_FRAME_SIZE;
        int type = p[0];
        uint64_t lsn = rd64(p + 8), id = rd64(p + 16);
        bool len_ok = (type == VINDEX_WAL_INSERT && plen == max_plen) ||
                      (type == VINDEX_WAL_DELETE && plen == VINDEX_WAL_PAYLOAD_FIXED);
        if (!len_ok || lsn != expect) {
            set_err(err, errlen, "WAL record at offset %zu: %s (type %d, lsn %llu, expected lsn %llu)", off,
                    len_ok ? "out of sequence" : "bad type or length", type, (unsigned long long)lsn,
                    (unsigned long long)expect);
            return VINDEX_ECORRUPT;
        }
        if (lsn > after_lsn && apply) {
            const float *vec = NULL;
            float *tmp = NULL;
            if (type == VINDEX_WAL_INSERT) {
                /* The payload is only 4-aligned relative to the mapping; copy to be safe on
                 * any alignment the caller's buffer has. */
                if (((uintptr_t)(p + VINDEX_WAL_PAYLOAD_FIXED) & 3u) == 0) {
                    vec = (const float *)(const void *)(p + VINDEX_WAL_PAYLOAD_FIXED);
                } else {
                    tmp = malloc(4ull * dim);
                    if (!tmp) {
                        set_err(err, errlen, "out of memory");
                        return VINDEX_ENOMEM;
                    }
                    memcpy(tmp, p + VINDEX_WAL_PAYLOAD_FIXED, 4ull * dim);
                    vec = tmp;
                }
            }
            int rc = apply(ctx, type, lsn, id, vec, err, errlen);
            free(tmp);
            if (rc != 0)
                return rc;
        }
        expect++;
        off += VINDEX_WAL_FRAME_SIZE + plen;
    }
    *valid_len = off;
    *last_lsn = expect - 1;
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Creates dir/wal.log holding only a header, atomically; returns an fd open for appending. */
static int wal_create(const char *dir, uint32_t dim, uint64_t base_lsn, char *err, size_t errlen)
{
    char tmp[4096], path[4096];
    if (vindex_path_join(tmp, sizeof(tmp), dir, VINDEX_WAL_TMP, err, errlen) != 0 ||
        vindex_path_join(path, sizeof(path), dir, VINDEX_WAL_FILE, err, errlen) != 0)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        set_err(err, errlen, "create %s: %s", tmp, strerror(errno));
        return -1;
    }
    uint8_t hdr[VINDEX_WAL_HEADER_SIZE];
    wal_header_build(hdr, dim, base_lsn);
    if (write_all(fd, hdr, sizeof(hdr)) != 0 || fsync(fd) != 0) {
        set_err(err, errlen, "write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        set_err(err, errlen, "rename %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (vindex_fsync_dir(dir, err, errlen) != 0) {
        close(fd);
        return -1;
    }
    return fd;
fail:
    close(fd);
    unlink(tmp);
    return -1;
}

int vindex_wal_create_empty(const char *dir, uint32_t dim, uint64_t base_lsn, char *err, size_t errlen)
{
    int fd = wal_create(dir, dim, base_lsn, err, errlen);
    if (fd < 0)
        return VINDEX_EIO;
    close(fd);
    return 0;
}

vindex_wal_t *vindex_wal_open(const char *dir, uint32_t dim, uint64_t snap_lsn, int sync_mode,
                              uint32_t sync_interval_us, vindex_wal_apply_fn apply, void *ctx, char *err,
                              size_t errlen)
{
    vindex_wal_t *w = calloc(1, sizeof(*w));
    if (!w) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    w->fd = w->lock_fd = -1;
    w->dim = dim;
    w->sync_mode = sync_mode;
    w->sync_interval_ns = (uint64_t)sync_interval_us * 1000u;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv_durable, NULL);
    if (strlen(dir) >= sizeof(w->dir)) {
        set_err(err, errlen, "path too long: %s", dir);
        goto fail;
    }
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    char path[4096];
    if (vindex_path_join(path, sizeof(path), dir, VINDEX_WAL_LOCK, err, errlen) != 0)
        goto fail;
    w->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (w->lock_fd < 0) {
        set_err(err, errlen, "open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        set_err(err, errlen, "%s is in use by another process", dir);
        goto fail;
    }
    if (vindex_path_join(path, sizeof(path), dir, VINDEX_WAL_FILE, err, errlen) != 0)
        goto fail;

    w->fd = open(path, O_RDWR | O_CLOEXEC);
    if (w->fd < 0 && errno != ENOENT) {
        set_err(err, errlen, "open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (w->fd < 0) {
        w->fd = wal_create(dir, dim, snap_lsn, err, errlen);
        if (w->fd < 0)
            goto fail;
        w->file_size = VINDEX_WAL_HEADER_SIZE;
        w->last_lsn = w->written_lsn = w->synced_lsn = snap_lsn;
    } else {
        struct stat st;
        if (fstat(w->fd, &st) != 0) {
            set_err(err, errlen, "stat %s: %s", path, strerror(errno));
            goto fail;
        }
        if ((uint64_t)st.st_size > WAL_MAX_REPLAY) {
            set_err(err, errlen, "%s: log too large to replay (%lld bytes)", path, (long long)st.st_size);
            goto fail;
        }
        size_t valid = 0;
        uint64_t last = snap_lsn;
        char serr[256];
        int rc;
        if (st.st_size == 0) {
            rc = VINDEX_ECORRUPT;
            snprintf(serr, sizeof(serr), "empty file (no header)");
        } else {
            void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, w->fd, 0);
            if (map == MAP_FAILED) {
                set_err(err, errlen, "mmap %s: %s", path, strerror(errno));
                goto fail;
            }
            rc = vindex_wal_scan(map, (size_t)st.st_size, dim, snap_lsn, apply, ctx, &valid, &last, serr,
                                 sizeof(serr));
            munmap(map, (size_t)st.st_size);
        }
        if (rc != 0) {
            set_err(err, errlen, "%s: %s", path, serr);
            goto fail;
        }
        if (valid < (size_t)st.st_size) {
            /* Cut the torn tail so new records do not follow garbage. */
            if (ftruncate(w->fd, (off_t)valid) != 0 || fsync(w->fd) != 0) {
                set_err(err, errlen, "truncate torn tail of %s: %s", path, strerror(errno));
                goto fail;
            }
        }
        if (lseek(w->fd, (off_t)valid, SEEK_SET) < 0) {
            set_err(err, errlen, "seek %s: %s", path, strerror(errno));
            goto fail;
        }
        w->file_size = valid;
        /* A log that ends before the snapshot (possible right after a checkpoint) continues
         * from the snapshot's lsn; the next reset rewrites its base. */
        w->last_lsn = w->written_lsn = w->synced_lsn = last > snap_lsn ? last : snap_lsn;
        if (last < snap_lsn) {
            close(w->fd);
            w->fd = wal_create(dir, dim, snap_lsn, err, errlen);
            if (w->fd < 0)
                goto fail;
            w->file_size = VINDEX_WAL_HEADER_SIZE;
        }
    }
    return w;
fail:
    vindex_wal_free(w);
    return NULL;
}

int vindex_wal_append(vindex_wal_t *w, int type, uint64_t id, const float *vec, uint64_t *lsn, char *err,
                      size_t errlen)
{
    uint32_t plen = VINDEX_WAL_PAYLOAD_FIXED + (type == VINDEX_WAL_INSERT ? 4u * w->dim : 0u);
    size_t rec = VINDEX_WAL_FRAME_SIZE + plen;
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    if (w->io_error) {
        set_err(err, errlen, "WAL unusable after an earlier I/O error: %s", strerror(w->io_error));
        rc = VINDEX_EIO;
        goto out;
    }
    if (w->buf_len + rec > VINDEX_WAL_MAX_PENDING) {
        set_err(err, errlen, "WAL pending buffer too large (commit more often)");
        rc = VINDEX_EINVAL;
        goto out;
    }
    if (w->buf_len + rec > w->buf_cap) {
        size_t cap = w->buf_cap ? w->buf_cap : 65536;
        while (cap < w->buf_len + rec)
            cap *= 2;
        uint8_t *nb = realloc(w->buf, cap);
        if (!nb) {
            set_err(err, errlen, "out of memory");
            rc = VINDEX_ENOMEM;
            goto out;
        }
        w->buf = nb;
        w->buf_cap = cap;
    }
    uint8_t *r = w->buf + w->buf_len;
    uint64_t l = w->last_lsn + 1;
    memcpy(r, &plen, 4);
    uint8_t *p = r + VINDEX_WAL_FRAME_SIZE;
    memset(p, 0, 8);
    p[0] = (uint8_t)type;
    memcpy(p + 8, &l, 8);
    memcpy(p + 16, &id, 8);
    if (type == VINDEX_WAL_INSERT)
        memcpy(p + VINDEX_WAL_PAYLOAD_FIXED, vec, 4ull * w->dim);
    uint32_t crc = vindex_crc32c(0, r, 4);
    crc = vindex_crc32c(crc, p, plen);
    memcpy(r + 4, &crc, 4);
    w->buf_len += rec;
    w->last_lsn = l;
    *lsn = l;
out:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Leader/follower: the first committer that finds its record not yet done takes every buffered
 * record, writes (and maybe fsyncs) them without the lock; the others wait for it. */
static int wal_commit(vindex_wal_t *w, uint64_t lsn, bool want_sync, char *err, size_t errlen)
{
    if (w->sync_mode == VINDEX_WAL_SYNC_ALWAYS)
        want_sync = true;
    pthread_mutex_lock(&w->mu);
    while (!w->io_error && (want_sync ? w->synced_lsn : w->written_lsn) < lsn) {
        if (w->leader_active) {
            pthread_cond_wait(&w->cv_durable, &w->mu);
            continue;
        }
        w->leader_active = true;
        uint8_t *data = w->buf;
        size_t n = w->buf_len, cap = w->buf_cap;
        uint64_t upto = w->last_lsn, start = now_ns();
        bool do_sync = want_sync || start - w->last_sync_ns >= w->sync_interval_ns;
        w->buf = NULL;
        w->buf_len = w->buf_cap = 0;
        pthread_mutex_unlock(&w->mu);

        int e = 0;
        if (write_all(w->fd, data, n) != 0)
            e = errno ? errno : EIO;
        else if (do_sync && fdatasync(w->fd) != 0)
            e = errno ? errno : EIO;

        pthread_mutex_lock(&w->mu);
        /* Reuse this batch's buffer unless appends during the write already started another. */
        if (!w->buf) {
            w->buf = data;
            w->buf_cap = cap;
        } else {
            free(data);
        }
        if (e) {
            w->io_error = e;
        } else {
            w->written_lsn = upto;
            w->file_size += n;
            if (do_sync) {
                w->synced_lsn = upto;
                w->last_sync_ns = start;
            }
        }
        w->leader_active = false;
        pthread_cond_broadcast(&w->cv_durable);
    }
    int rc = 0;
    if (w->io_error) {
        set_err(err, errlen, "WAL write failed: %s", strerror(w->io_error));
        rc = VINDEX_EIO;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int vindex_wal_commit(vindex_wal_t *w, uint64_t lsn, char *err, size_t errlen)
{
    return wal_commit(w, lsn, false, err, errlen);
}

int vindex_wal_sync(vindex_wal_t *w, char *err, size_t errlen)
{
    return wal_commit(w, vindex_wal_last_lsn(w), true, err, errlen);
}

uint64_t vindex_wal_last_lsn(vindex_wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t l = w->last_lsn;
    pthread_mutex_unlock(&w->mu);
    return l;
}

uint64_t vindex_wal_size(vindex_wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t s = w->file_size + w->buf_len;
    pthread_mutex_unlock(&w->mu);
    return s;
}

int vindex_wal_reset(vindex_wal_t *w, uint64_t base_lsn, char *err, size_t errlen)
{
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    if (w->leader_active || w->buf_len > 0 || base_lsn != w->last_lsn) {
        set_err(err, errlen, "WAL reset with uncommitted records");
        rc = VINDEX_EINVAL;
        goto out;
    }
    int fd = wal_create(w->dir, w->dim, base_lsn, err, errlen);
    if (fd < 0) {
        rc = VINDEX_EIO;
        goto out;
    }
    close(w->fd);
    w->fd = fd;
    w->file_size = VINDEX_WAL_HEADER_SIZE;
    w->written_lsn = w->synced_lsn = base_lsn;
    w->io_error = 0;
out:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void vindex_wal_free(vindex_wal_t *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->lock_fd >= 0)
        close(w->lock_fd);
    free(w->buf);
    pthread_cond_destroy(&w->cv_durable);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
