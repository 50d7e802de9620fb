/* Snapshot container: the streaming writer (temp file, fsync, rename, fsync dir) and the parser
 * that validates an image before anything in it is used. Integers are little-endian; the
 * build refuses a big-endian target rather than byte-swapping. */
#include "vindex/store.h"

#include "vindex/crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the vindex file format is little-endian; add byte swapping before porting"
#endif

#define WRITER_BUF_SIZE (1u << 20)

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

static void wr32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void wr64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

int vindex_path_join(char *out, size_t outlen, const char *dir, const char *name, char *err, size_t errlen)
{
    int n = snprintf(out, outlen, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= outlen) {
        set_err(err, errlen, "path too long: %s/%s", dir, name);
        return VINDEX_EINVAL;
    }
    return 0;
}

int vindex_fsync_dir(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, "open directory %s: %s", dir, strerror(errno));
        return VINDEX_EIO;
    }
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc != 0) {
        set_err(err, errlen, "fsync directory %s: %s", dir, strerror(saved));
        return VINDEX_EIO;
    }
    return 0;
}

int vindex_snap_parse(const uint8_t *buf, size_t len, int verify_sections, vindex_snap_t *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (len < VINDEX_SNAP_HEADER_SIZE) {
        set_err(err, errlen, "snapshot truncated: %zu bytes, header needs %u", len, VINDEX_SNAP_HEADER_SIZE);
        return VINDEX_ECORRUPT;
    }
    if (memcmp(buf, VINDEX_SNAP_MAGIC, 8) != 0) {
        set_err(err, errlen, "not a vindex snapshot (bad magic)");
        return VINDEX_ECORRUPT;
    }
    uint32_t version = rd32(buf + 8);
    if (version != VINDEX_SNAP_VERSION) {
        set_err(err, errlen, "snapshot format version %u, this build reads %u", version, VINDEX_SNAP_VERSION);
        return VINDEX_ECORRUPT;
    }
    uint64_t file_size = rd64(buf + 40);
    uint32_t nsec = rd32(buf + 48);
    if (nsec > VINDEX_SNAP_MAX_SECTIONS) {
        set_err(err, errlen, "snapshot header claims %u sections (max %u)", nsec, VINDEX_SNAP_MAX_SECTIONS);
        return VINDEX_ECORRUPT;
    }
    size_t table_end = VINDEX_SNAP_HEADER_SIZE + (size_t)nsec * VINDEX_SNAP_ENTRY_SIZE;
    if (len < table_end) {
        set_err(err, errlen, "snapshot truncated inside its section table");
        return VINDEX_ECORRUPT;
    }
    uint32_t crc = vindex_crc32c(0, buf, 60);
    crc = vindex_crc32c(crc, buf + VINDEX_SNAP_HEADER_SIZE, table_end - VINDEX_SNAP_HEADER_SIZE);
    if (crc != rd32(buf + 60)) {
        set_err(err, errlen, "snapshot header checksum mismatch");
        return VINDEX_ECORRUPT;
    }
    if (file_size != len) {
        set_err(err, errlen, "snapshot is %zu bytes but its header says %llu (truncated or extended)", len,
                (unsigned long long)file_size);
        return VINDEX_ECORRUPT;
    }
    out->info.kind = rd32(buf + 12);
    out->info.metric = rd32(buf + 16);
    out->info.dim = rd32(buf + 20);
    out->info.count = rd64(buf + 24);
    out->info.wal_lsn = rd64(buf + 32);

    uint64_t prev_end = VINDEX_SNAP_DATA_START;
    for (uint32_t i = 0; i < nsec; i++) {
        const uint8_t *e = buf + VINDEX_SNAP_HEADER_SIZE + (size_t)i * VINDEX_SNAP_ENTRY_SIZE;
        uint32_t type = rd32(e);
        uint64_t off = rd64(e + 8), size = rd64(e + 16);
        uint32_t sec_crc = rd32(e + 24);
        if (type == 0 || type >= VINDEX_SEC_MAX_TYPE) {
            set_err(err, errlen, "snapshot section %u has unknown type %u", i, type);
            return VINDEX_ECORRUPT;
        }
        if (out->sec[type]) {
            set_err(err, errlen, "snapshot section type %u appears twice", type);
            return VINDEX_ECORRUPT;
        }
        if (off % VINDEX_SNAP_ALIGN != 0 || off < prev_end || off > len || size > len - off) {
            set_err(err, errlen, "snapshot section %u (type %u) lies outside the file or overlaps another", i,
                    type);
            return VINDEX_ECORRUPT;
        }
        if (verify_sections && vindex_crc32c(0, buf + off, size) != sec_crc) {
            set_err(err, errlen, "snapshot section %u (type %u) checksum mismatch", i, type);
            return VINDEX_ECORRUPT;
        }
        out->sec[type] = buf + off;
        out->sec_size[type] = size;
        prev_end = off + size;
    }
    return 0;
}

const uint8_t *vindex_snap_section(const vindex_snap_t *s, uint32_t type, uint64_t size, char *err,
                                   size_t errlen)
{
    if (type >= VINDEX_SEC_MAX_TYPE || !s->sec[type]) {
        set_err(err, errlen, "snapshot lacks section type %u", type);
        return NULL;
    }
    if (s->sec_size[type] != size) {
        set_err(err, errlen, "snapshot section type %u is %llu bytes, expected %llu", type,
                (unsigned long long)s->sec_size[type], (unsigned long long)size);
        return NULL;
    }
    /* An empty section is present but has no bytes to point at; callers only test for NULL. */
    return s->sec[type];
}

struct vindex_snap_writer {
    int fd;
    char tmp_path[4096];
    char final_path[4096];
    char dir[4096];
    uint8_t *buf; /* write-behind buffer */
    size_t buf_len;
    uint64_t pos; /* file offset of buf[0] + buf_len */
    int error;    /* sticky errno of the first failed write */
    uint32_t nsec;
    int in_section;
    uint8_t table[VINDEX_SNAP_MAX_SECTIONS * VINDEX_SNAP_ENTRY_SIZE];
    uint64_t sec_start;
    uint32_t sec_crc;
};

static void writer_flush(vindex_snap_writer_t *w)
{
    size_t done = 0;
    while (!w->error && done < w->buf_len) {
        ssize_t n = write(w->fd, w->buf + done, w->buf_len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            w->error = errno;
            break;
        }
        done += (size_t)n;
    }
    w->buf_len = 0;
}

static void writer_put(vindex_snap_writer_t *w, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        size_t room = WRITER_BUF_SIZE - w->buf_len;
        size_t n = len < room ? len : room;
        memcpy(w->buf + w->buf_len, p, n);
        w->buf_len += n;
        w->pos += n;
        p += n;
        len -= n;
        if (w->buf_len == WRITER_BUF_SIZE)
            writer_flush(w);
    }
}

static void writer_pad(vindex_snap_writer_t *w, uint64_t to)
{
    static const uint8_t zeros[VINDEX_SNAP_DATA_START];
    while (w->pos < to) {
        uint64_t n = to - w->pos;
        writer_put(w, zeros, n < sizeof(zeros) ? (size_t)n : sizeof(zeros));
    }
}

vindex_snap_writer_t *vindex_snap_writer_begin(const char *dir, char *err, size_t errlen)
{
    vindex_snap_writer_t *w = calloc(1, sizeof(*w));
    if (!w) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    w->fd = -1;
    if (vindex_path_join(w->tmp_path, sizeof(w->tmp_path), dir, VINDEX_SNAP_TMP, err, errlen) != 0 ||
        vindex_path_join(w->final_path, sizeof(w->final_path), dir, VINDEX_SNAP_FILE, err, errlen) != 0)
        goto fail;
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    w->buf = malloc(WRITER_BUF_SIZE);
    if (!w->buf) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        set_err(err, errlen, "create %s: %s", w->tmp_path, strerror(errno));
        goto fail;
    }
    /* Header and table are written last, with pwrite, once sizes and checksums are known. */
    writer_pad(w, VINDEX_SNAP_DATA_START);
    return w;
fail:
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->tmp_path);
    }
    free(w->buf);
    free(w);
    return NULL;
}

int vindex_snap_writer_section_begin(vindex_snap_writer_t *w, uint32_t type)
{
    if (w->in_section || w->nsec == VINDEX_SNAP_MAX_SECTIONS || type == 0 || type >= VINDEX_SEC_MAX_TYPE)
        return VINDEX_EINVAL;
    writer_pad(w, (w->pos + VINDEX_SNAP_ALIGN - 1) / VINDEX_SNAP_ALIGN * VINDEX_SNAP_ALIGN);
    wr32(w->table + w->nsec * VINDEX_SNAP_ENTRY_SIZE, type);
    w->sec_start = w->pos;
    w->sec_crc = 0;
    w->in_section = 1;
    return 0;
}

int vindex_snap_writer_write(vindex_snap_writer_t *w, const void *buf, size_t len)
{
    if (!w->in_section)
        return VINDEX_EINVAL;
    w->sec_crc = vindex_crc32c(w->sec_crc, buf, len);
    writer_put(w, buf, len);
    return w->error ? VINDEX_EIO : 0;
}

int vindex_snap_writer_section_end(vindex_snap_writer_t *w)
{
    if (!w->in_section)
        return VINDEX_EINVAL;
    uint8_t *e = w->table + w->nsec * VINDEX_SNAP_ENTRY_SIZE;
    wr64(e + 8, w->sec_start);
    wr64(e + 16, w->pos - w->sec_start);
    wr32(e + 24, w->sec_crc);
    w->nsec++;
    w->in_section = 0;
    return w->error ? VINDEX_EIO : 0;
}

void vindex_snap_writer_abort(vindex_snap_writer_t *w)
{
    if (!w)
        return;
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->tmp_path);
    }
    free(w->buf);
    free(w);
}

int vindex_snap_writer_commit(vindex_snap_writer_t *w, const vindex_snap_info_t *info, char *err,
                              size_t errlen)
{
    int rc = VINDEX_EIO;
    if (w->in_section) {
        set_err(err, errlen, "snapshot writer: section still open at commit");
        rc = VINDEX_EINVAL;
        goto fail;
    }
    writer_flush(w);
    if (w->error) {
        set_err(err, errlen, "write %s: %s", w->tmp_path, strerror(w->error));
        goto fail;
    }
    uint8_t hdr[VINDEX_SNAP_HEADER_SIZE + sizeof(w->table)];
    memset(hdr, 0, VINDEX_SNAP_HEADER_SIZE);
    memcpy(hdr, VINDEX_SNAP_MAGIC, 8);
    wr32(hdr + 8, VINDEX_SNAP_VERSION);
    wr32(hdr + 12, info->kind);
    wr32(hdr + 16, info->metric);
    wr32(hdr + 20, info->dim);
    wr64(hdr + 24, info->count);
    wr64(hdr + 32, info->wal_lsn);
    wr64(hdr + 40, w->pos);
    wr32(hdr + 48, w->nsec);
    size_t table_len = (size_t)w->nsec * VINDEX_SNAP_ENTRY_SIZE;
    memcpy(hdr + VINDEX_SNAP_HEADER_SIZE, w->table, table_len);
    uint32_t crc = vindex_crc32c(0, hdr, 60);
    crc = vindex_crc32c(crc, hdr + VINDEX_SNAP_HEADER_SIZE, table_len);
    wr32(hdr + 60, crc);
    size_t hlen = VINDEX_SNAP_HEADER_SIZE + table_len;
    if (pwrite(w->fd, hdr, hlen, 0) != (ssize_t)hlen) {
        set_err(err, errlen, "write %s header: %s", w->tmp_path, strerror(errno));
        goto fail;
    }
    if (fsync(w->fd) != 0) {
        set_err(err, errlen, "fsync %s: %s", w->tmp_path, strerror(errno));
        goto fail;
    }
    if (close(w->fd) != 0) {
        w->fd = -1;
        set_err(err, errlen, "close %s: %s", w->tmp_path, strerror(errno));
        unlink(w->tmp_path);
        goto fail;
    }
    w->fd = -1;
    if (rename(w->tmp_path, w->final_path) != 0) {
        set_err(err, errlen, "rename %s: %s", w->tmp_path, strerror(errno));
        unlink(w->tmp_path);
        goto fail;
    }
    rc = vindex_fsync_dir(w->dir, err, errlen);
fail:
    vindex_snap_writer_abort(w);
    return rc;
}

int vindex_snap_file_open(const char *dir, vindex_snap_file_t *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    char path[4096];
    int rc = vindex_path_join(path, sizeof(path), dir, VINDEX_SNAP_FILE, err, errlen);
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        set_err(err, errlen, "open %s: %s", path, strerror(errno));
        return VINDEX_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, "stat %s: %s", path, strerror(errno));
        close(fd);
        return VINDEX_EIO;
    }
    if (st.st_size == 0) {
        close(fd);
        set_err(err, errlen, "%s: empty snapshot file", path);
        return VINDEX_ECORRUPT;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    int saved = errno;
    close(fd);
    if (map == MAP_FAILED) {
        set_err(err, errlen, "mmap %s: %s", path, strerror(saved));
        return VINDEX_EIO;
    }
    f->map = map;
    f->len = (size_t)st.st_size;
    char perr[256];
    rc = vindex_snap_parse(map, f->len, 1, &f->snap, perr, sizeof(perr));
    if (rc != 0) {
        set_err(err, errlen, "%s: %s", path, perr);
        vindex_snap_file_release(f);
        return rc;
    }
    return 0;
}

void vindex_snap_file_release(vindex_snap_file_t *f)
{
    if (f->map)
        munmap(f->map, f->len);
    memset(f, 0, sizeof(*f));
}
