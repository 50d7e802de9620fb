/* Content-addressed image files: write to a temporary name, fsync, rename, fsync the directory. */
#include "lookalike/image_store.h"
#include "lookalike/lookalike.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 4096

int image_store_hash_valid(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[64] == '\0';
}

/* Creates one directory level; 1 if it was created now, 0 if it was there, or an error. */
static int mkdir_p1(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0755) == 0)
        return 1;
    if (errno == EEXIST)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
    return LOOKALIKE_EIO;
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int image_store_init(const char *dir, char *err, size_t errlen)
{
    char path[PATH_CAP];
    if ((size_t)snprintf(path, sizeof path, "%s/images", dir) >= sizeof path) {
        if (err && errlen)
            snprintf(err, errlen, "data directory path too large");
        return LOOKALIKE_ETOOLARGE;
    }
    int rc = mkdir_p1(path, err, errlen);
    return rc < 0 ? rc : 0;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int image_store_put(const char *dir, const void *data, size_t len, char sha256[65], char *err, size_t errlen)
{
    if (len == 0 || len > LOOKALIKE_IMAGE_MAX) {
        if (err && errlen)
            snprintf(err, errlen, len ? "image too large (%zu bytes, at most %d)" : "image is empty", len,
                     LOOKALIKE_IMAGE_MAX);
        return len ? LOOKALIKE_ETOOLARGE : LOOKALIKE_EINVAL;
    }
    lookalike_sha256_hex(data, len, sha256);
    char sub[PATH_CAP], final[PATH_CAP], tmp[PATH_CAP];
    if ((size_t)snprintf(sub, sizeof sub, "%s/images/%.2s", dir, sha256) >= sizeof sub ||
        (size_t)snprintf(final, sizeof final, "%s/%s", sub, sha256) >= sizeof final) {
        if (err && errlen)
            snprintf(err, errlen, "data directory path too large");
        return LOOKALIKE_ETOOLARGE;
    }
    struct stat st;
    /* Same name, same size: the same bytes are already stored, by construction of the name. */
    if (stat(final, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len)
        return 0;
    int rc = mkdir_p1(sub, err, errlen);
    if (rc < 0)
        return rc;
    /* A new fan-out directory must itself be durable before a file in it can be. */
    char images[PATH_CAP];
    snprintf(images, sizeof images, "%s/images", dir);
    if (rc == 1 && fsync_dir(images) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "cannot sync %s: %s", images, strerror(errno));
        return LOOKALIKE_EIO;
    }
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        r = (uint64_t)getpid();
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%016llx", sub, sha256, (unsigned long long)r) >=
        sizeof tmp) {
        if (err && errlen)
            snprintf(err, errlen, "data directory path too large");
        return LOOKALIKE_ETOOLARGE;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (err && errlen)
            snprintf(err, errlen, "cannot create image file: %s", strerror(errno));
        return LOOKALIKE_EIO;
    }
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "cannot write image file: %s", strerror(errno));
        close(fd);
        unlink(tmp);
        return LOOKALIKE_EIO;
    }
    close(fd);
    if (rename(tmp, final) != 0 || fsync_dir(sub) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "cannot store image file: %s", strerror(errno));
        unlink(tmp);
        return LOOKALIKE_EIO;
    }
    return 0;
}

int image_store_get(const char *dir, const char *sha256, void **data, size_t *len, char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    char path[PATH_CAP];
    if ((size_t)snprintf(path, sizeof path, "%s/images/%.2s/%s", dir, sha256, sha256) >= sizeof path) {
        if (err && errlen)
            snprintf(err, errlen, "data directory path too large");
        return LOOKALIKE_ETOOLARGE;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err && errlen)
            snprintf(err, errlen, errno == ENOENT ? "no image %s" : "cannot open image %s: %s", sha256,
                     strerror(errno));
        return errno == ENOENT ? LOOKALIKE_ENOTFOUND : LOOKALIKE_EIO;
    }
    int rc = LOOKALIKE_EIO;
    unsigned char *buf = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > LOOKALIKE_IMAGE_MAX) {
        if (err && errlen)
            snprintf(err, errlen, "image %s is not a regular file of at most %d bytes", sha256,
                     LOOKALIKE_IMAGE_MAX);
        goto fail;
    }
    size_t want = (size_t)st.st_size, got = 0;
    buf = malloc(want ? want : 1);
    if (!buf) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        rc = LOOKALIKE_ENOMEM;
        goto fail;
    }
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (err && errlen)
                snprintf(err, errlen, "cannot read image %s", sha256);
            goto fail;
        }
        got += (size_t)n;
    }
    close(fd);
    *data = buf;
    *len = want;
    return 0;
fail:
    close(fd);
    free(buf);
    return rc;
}
