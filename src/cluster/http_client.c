/* A blocking HTTP/1.1 client for one JSON request per connection: the server closes the
 * connection after its answer (we ask for that), so the response is everything read until EOF,
 * parsed once at the end. Small and dependency-free because etcd's gateway is all it talks to. */
#include "cluster/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The header block: from after the status line to the blank line; finds one header's value. */
static const char *header_value(const char *headers, size_t len, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = headers, *end = headers + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

/* Removes the chunked transfer coding from src into a new buffer. */
static int dechunk(const char *src, size_t len, char **out, size_t *out_len, char *err, size_t errlen)
{
    char *buf = malloc(len + 1);
    size_t n = 0, i = 0;
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return CORE_ENOMEM;
    }
    for (;;) {
        size_t size = 0, digits = 0;
        while (i < len) {
            char c = src[i];
            int v = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (v < 0)
                break;
            if (size > (len >> 4)) {
                snprintf(err, errlen, "chunk size larger than the response");
                goto fail;
            }
            size = size * 16 + (size_t)v;
            digits++;
            i++;
        }
        if (digits == 0) {
            snprintf(err, errlen, "malformed chunk size");
            goto fail;
        }
        /* Chunk extensions (";name=value") are allowed and ignored. */
        const char *eol = memchr(src + i, '\n', len - i);
        if (!eol) {
            snprintf(err, errlen, "truncated chunk header");
            goto fail;
        }
        i = (size_t)(eol - src) + 1;
        if (size == 0)
            break;
        if (size > len - i) {
            snprintf(err, errlen, "truncated chunk");
            goto fail;
        }
        memcpy(buf + n, src + i, size);
        n += size;
        i += size;
        if (i < len && src[i] == '\r')
            i++;
        if (i >= len || src[i] != '\n') {
            snprintf(err, errlen, "chunk not followed by CRLF");
            goto fail;
        }
        i++;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
fail:
    free(buf);
    return CORE_EINVAL;
}

int cluster_http_parse_response(const char *buf, size_t len, int *status, char **body, size_t *body_len,
                                char *err, size_t errlen)
{
    *body = NULL;
    *body_len = 0;
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ') {
        snprintf(err, errlen, "not an HTTP/1.x response");
        return CORE_EINVAL;
    }
    if (buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9') {
        snprintf(err, errlen, "malformed status code");
        return CORE_EINVAL;
    }
    *status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    const char *line_end = memchr(buf, '\n', len);
    if (!line_end) {
        snprintf(err, errlen, "truncated status line");
        return CORE_EINVAL;
    }
    const char *headers = line_end + 1, *end = buf + len, *p = headers, *body_start = NULL;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if (eol == p || (eol == p + 1 && *p == '\r')) {
            body_start = eol + 1;
            break;
        }
        p = eol + 1;
    }
    if (!body_start) {
        snprintf(err, errlen, "truncated headers");
        return CORE_EINVAL;
    }
    size_t hlen = (size_t)(body_start - headers), rest = (size_t)(end - body_start), vlen;
    const char *te = header_value(headers, hlen, "Transfer-Encoding", &vlen);
    if (te && vlen == 7 && strncasecmp(te, "chunked", 7) == 0)
        return dechunk(body_start, rest, body, body_len, err, errlen);
    const char *cl = header_value(headers, hlen, "Content-Length", &vlen);
    size_t n = rest;
    if (cl) {
        size_t v = 0;
        if (vlen == 0 || vlen > 12) {
            snprintf(err, errlen, "malformed Content-Length");
            return CORE_EINVAL;
        }
        for (size_t i = 0; i < vlen; i++) {
            if (cl[i] < '0' || cl[i] > '9') {
                snprintf(err, errlen, "malformed Content-Length");
                return CORE_EINVAL;
            }
            v = v * 10 + (size_t)(cl[i] - '0');
        }
        if (v > rest) {
            snprintf(err, errlen, "body shorter than its Content-Length (%zu of %zu bytes)", rest, v);
            return CORE_EINVAL;
        }
        n = v;
    }
    char *b = malloc(n + 1);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return CORE_ENOMEM;
    }
    memcpy(b, body_start, n);
    b[n] = '\0';
    *body = b;
    *body_len = n;
    return 0;
}

/* Waits for fd to be ready for events until deadline; 0, or CORE_EIO on timeout or error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return CORE_EIO;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return CORE_EIO;
    }
}

static int connect_to(const char *host, int port, int timeout_ms, char *err, size_t errlen)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
        return CORE_EIO;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, now_ms() + timeout_ms) == 0) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                break;
            errno = soerr ? soerr : ETIMEDOUT;
        } else if (errno == EINPROGRESS) {
            errno = ETIMEDOUT;
        }
        snprintf(err, errlen, "connect to %s:%d: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0 && !*err)
        snprintf(err, errlen, "connect to %s:%d: no usable address", host, port);
    return fd < 0 ? CORE_EIO : fd;
}

int cluster_http_post(const char *host, int port, const char *path, const char *body, size_t body_len,
                      int timeout_ms, int *status, char **resp_body, size_t *resp_len, char *err,
                      size_t errlen)
{
    *resp_body = NULL;
    *resp_len = 0;
    err[0] = '\0';
    char *req = NULL, *resp = NULL;
    int fd = connect_to(host, port, timeout_ms, err, errlen), rc = CORE_EIO;
    if (fd < 0)
        return fd;
    int64_t deadline = now_ms() + timeout_ms;
    int hlen = asprintf(&req,
                        "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                        path, host, port, body_len);
    if (hlen < 0) {
        req = NULL;
        snprintf(err, errlen, "out of memory");
        rc = CORE_ENOMEM;
        goto fail;
    }
    const struct {
        const char *p;
        size_t n;
    } parts[2] = {{req, (size_t)hlen}, {body, body_len}};
    for (int i = 0; i < 2; i++) {
        size_t off = 0;
        while (off < parts[i].n) {
            ssize_t w = send(fd, parts[i].p + off, parts[i].n - off, MSG_NOSIGNAL);
            if (w > 0) {
                off += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                snprintf(err, errlen, "send to %s:%d: %s", host, port, strerror(errno));
                goto fail;
            } else if (wait_fd(fd, POLLOUT, deadline) != 0) {
                snprintf(err, errlen, "send to %s:%d: timed out", host, port);
                goto fail;
            }
        }
    }
    size_t cap = 4096, n = 0;
    if (!(resp = malloc(cap))) {
        snprintf(err, errlen, "out of memory");
        rc = CORE_ENOMEM;
        goto fail;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= CLUSTER_HTTP_MAX_RESPONSE) {
                snprintf(err, errlen, "response from %s:%d too large (over %u bytes)", host, port,
                         CLUSTER_HTTP_MAX_RESPONSE);
                rc = CORE_ETOOLARGE;
                goto fail;
            }
            char *bigger = realloc(resp, cap * 2);
            if (!bigger) {
                snprintf(err, errlen, "out of memory");
                rc = CORE_ENOMEM;
                goto fail;
            }
            resp = bigger;
            cap *= 2;
        }
        ssize_t r = recv(fd, resp + n, cap - n, 0);
        if (r > 0) {
            n += (size_t)r;
        } else if (r == 0) {
            break;
        } else if (errno != EAGAIN && errno != EINTR) {
            snprintf(err, errlen, "read from %s:%d: %s", host, port, strerror(errno));
            goto fail;
        } else if (wait_fd(fd, POLLIN, deadline) != 0) {
            snprintf(err, errlen, "read from %s:%d: timed out", host, port);
            goto fail;
        }
    }
    rc = cluster_http_parse_response(resp, n, status, resp_body, resp_len, err, errlen);
    if (rc != 0)
        rc = CORE_EIO;
fail:
    close(fd);
    free(req);
    free(resp);
    return rc;
}
