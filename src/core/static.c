/* Static files beneath one root. The root is opened once; every file is opened relative to
 * it with openat2(RESOLVE_BENEATH), so the kernel itself refuses any path ("..", absolute
 * symlinks, symlinks climbing out) that resolves outside the root. */
#include "http_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct core_static {
    int rootfd;
    char *root_real; /* for the fallback check when openat2 is unavailable */
    char *cache_control;
};

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
};

const char *core_static_content_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash : name, '.');
    if (dot && dot[1])
        for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++)
            if (strcasecmp(dot + 1, content_types[i].ext) == 0)
                return content_types[i].type;
    return "application/octet-stream";
}

core_static *core_static_new(const char *root, const char *cache_control, char *err, size_t errlen)
{
    core_static *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->rootfd < 0) {
        snprintf(err, errlen, "static root \"%s\": %s", root, strerror(errno));
        goto fail;
    }
    st->root_real = realpath(root, NULL);
    st->cache_control = strdup(cache_control ? cache_control : "public, max-age=300");
    if (!st->root_real || !st->cache_control) {
        snprintf(err, errlen, "static root \"%s\": %s", root, strerror(errno));
        goto fail;
    }
    return st;
fail:
    core_static_free(st);
    return NULL;
}

void core_static_free(core_static *st)
{
    if (!st)
        return;
    if (st->rootfd >= 0)
        close(st->rootfd);
    free(st->root_real);
    free(st->cache_control);
    free(st);
}

/* Relative, '/'-separated, no empty, "." or ".." segment, no backslash. */
static bool safe_relpath(const char *p)
{
    if (*p == '/' || strchr(p, '\\'))
        return false;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

static int open_beneath(const core_static *st, const char *rel)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, st->rootfd, rel, &how, sizeof how);
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
        return (int)fd;
    /* No openat2 (old kernel or a seccomp filter): resolve, compare, then open. */
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", st->root_real, rel) >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char *real = realpath(path, NULL);
    if (!real)
        return -1;
    size_t rl = strlen(st->root_real);
    bool inside = strncmp(real, st->root_real, rl) == 0 && (real[rl] == '/' || real[rl] == '\0');
    int out = inside ? open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY) : -1;
    if (!inside)
        errno = EXDEV;
    free(real);
    return out;
}

static bool etag_matches(const char *inm, const char *etag)
{
    size_t elen = strlen(etag);
    for (const char *p = inm; *p;) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        size_t n = strcspn(p, ",");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == elen && strncmp(p, etag, n) == 0)
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

int http_static_reply(core_http_req *req, core_static *st, const char *relpath)
{
    if (!*relpath)
        relpath = "index.html";
    if (!safe_relpath(relpath))
        return core_http_reply_error(req, 400, "bad_path", "file path is not a plain relative path");
    int fd = open_beneath(st, relpath);
    struct stat sb;
    if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        char *index = core_arena_printf(req->arena, "%s/index.html", relpath);
        close(fd);
        fd = index ? open_beneath(st, index) : -1;
        relpath = index;
        if (fd >= 0 && fstat(fd, &sb) != 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0)
            close(fd);
        core_log_debug(req->s->log, "static", "refused %s: %s", relpath ? relpath : "?",
                       fd < 0 ? strerror(errno) : "not a regular file");
        return core_http_reply_error(req, 404, "not_found", "no such file");
    }
    long long mtime_ns = (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
    char *etag = core_arena_printf(req->arena, "\"%llx-%llx-%llx\"", (unsigned long long)sb.st_ino,
                                   (unsigned long long)sb.st_size, (unsigned long long)mtime_ns);
    char lm[64];
    struct tm tm;
    gmtime_r(&sb.st_mtim.tv_sec, &tm);
    strftime(lm, sizeof lm, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!etag) {
        close(fd);
        return core_http_reply_error(req, 500, "internal", "out of memory");
    }
    core_http_add_header(req, "ETag", etag);
    core_http_add_header(req, "Last-Modified", lm);
    core_http_add_header(req, "Cache-Control", st->cache_control);
    const char *inm = core_http_req_header(req, "If-None-Match");
    if (inm && etag_matches(inm, etag)) {
        close(fd);
        int rc = core_http_reply_static_bytes(req, 304, NULL, "", 0);
        req->content_type = NULL;
        return rc;
    }
    int rc = core_http_reply_static_bytes(req, 200, core_static_content_type(relpath), "", 0);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    req->kind = REPLY_FD;
    req->fd = fd;
    req->fd_size = (uint64_t)sb.st_size;
    return 0;
}

static int static_handler(core_http_req *req, void *ud)
{
    const char *p = core_http_req_param(req, "path");
    return core_http_reply_file(req, ud, p ? p : "");
}

int core_http_route_static(core_http_server *s, const char *url_prefix, core_static *st, char *err,
                           size_t errlen)
{
    size_t n = strlen(url_prefix);
    while (n > 0 && url_prefix[n - 1] == '/')
        n--;
    char tail[512], base[512];
    if ((size_t)snprintf(tail, sizeof tail, "%.*s/{path...}", (int)n, url_prefix) >= sizeof tail) {
        snprintf(err, errlen, "static prefix too long");
        return CORE_EINVAL;
    }
    snprintf(base, sizeof base, "%.*s", (int)n, url_prefix);
    int rc = core_http_route(s, "GET", tail, static_handler, st, NULL, err, errlen);
    if (rc == 0)
        rc = core_http_route(s, "GET", n ? base : "/", static_handler, st, NULL, err, errlen);
    return rc;
}
