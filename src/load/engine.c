/* The load engine: keep-alive client connections on one epoll loop, open- or closed-loop
 * scheduling, per-request timeouts, reconnects with backoff, statistics and downtime (design
 * in load.h). */
#include "load/load.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CONNECTIONS_MAX 10000
#define BACKOFF_MIN_MS 10.0
#define BACKOFF_MAX_MS 200.0
#define READ_CHUNK (64 * 1024)
/* Longest wait in epoll_wait, so the clock-driven parts (due requests, timeouts, the end of
 * the run) are looked at often enough. */
#define TICK_MS 50

enum { C_IDLE, C_CONNECTING, C_SENDING, C_READING, C_BACKOFF };

typedef struct {
    int fd;
    int state;
    int has_req;   /* req holds a request not yet finished */
    int resent;    /* req was already sent again after a stale keep-alive close */
    uint64_t used; /* responses read on this connection (0: freshly opened) */
    load_req_t req;
    load_buf_t scratch;
    char head[2048]; /* the request's header block */
    size_t head_len, sent;
    load_resp_t resp;
    double start_ms;    /* latency is measured from here (due time when open loop) */
    double deadline_ms; /* the request fails with a timeout past this */
    double retry_at_ms; /* C_BACKOFF: when to connect again */
    double backoff_ms;
} conn_t;

typedef struct {
    const load_opts_t *o;
    load_result_t *res;
    int ep;
    conn_t *c;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host_header[300];
    double t0;         /* start of the run, monotonic ms */
    double last_ok_ms; /* offset of the last success (0 before any) */
    size_t gaps_cap;
    uint64_t started; /* requests taken from next() */
    int stopping;     /* no new requests */
    char *rbuf;
} run_t;

static void lerr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

const char *load_err_name(load_err_t e)
{
    static const char *const names[LOAD_ERR_COUNT] = {"connect",  "timeout",  "closed", "http_4xx",
                                                      "http_5xx", "bad_body", "proto"};
    return (unsigned)e < LOAD_ERR_COUNT ? names[e] : "?";
}

/* ---- buffers ---- */

int load_buf_add(load_buf_t *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return LOAD_ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int load_buf_printf(load_buf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return LOAD_EINVAL;
    if ((size_t)n < sizeof small)
        return load_buf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return LOAD_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = load_buf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

void load_buf_release(load_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- results ---- */

void load_result_release(load_result_t *res)
{
    free(res->gaps);
    res->gaps = NULL;
    res->ngaps = 0;
}

/* Notes the stretch [r->last_ok_ms, t) without a success. */
static void note_gap(run_t *r, double t)
{
    load_result_t *res = r->res;
    double len = t - r->last_ok_ms;
    if (len > res->longest_gap.end_ms - res->longest_gap.start_ms)
        res->longest_gap = (load_gap_t){r->last_ok_ms, t};
    if (len > r->o->gap_ms) {
        if (res->ngaps == r->gaps_cap) {
            size_t cap = r->gaps_cap ? r->gaps_cap * 2 : 16;
            load_gap_t *g = realloc(res->gaps, cap * sizeof *g);
            if (!g)
                return; /* the longest gap is still right; the list is short by one */
            res->gaps = g;
            r->gaps_cap = cap;
        }
        res->gaps[res->ngaps++] = (load_gap_t){r->last_ok_ms, t};
    }
}

static void finish(run_t *r, conn_t *c, int ok, load_err_t e)
{
    double t = now_ms();
    load_kind_stats_t *k = &r->res->kinds[c->req.kind];
    if (ok) {
        double off = t - r->t0;
        uint64_t us = (uint64_t)((t - c->start_ms) * 1000.0 + 0.5);
        k->ok++;
        load_hist_add(&k->latency, us);
        note_gap(r, off);
        r->last_ok_ms = off;
        if (r->res->first_ok_ms < 0)
            r->res->first_ok_ms = off;
        r->res->last_ok_ms = off;
        c->backoff_ms = 0;
    } else {
        k->errors[e]++;
    }
    c->has_req = 0;
    c->resent = 0;
}

/* ---- connections ---- */

static void conn_close(run_t *r, conn_t *c)
{
    if (c->fd >= 0) {
        epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->used = 0;
    c->state = C_IDLE;
    load_resp_reset(&c->resp);
}

/* Closes after a failure and waits a backoff before the next connect. */
static void conn_fail(run_t *r, conn_t *c, load_err_t e)
{
    if (c->has_req)
        finish(r, c, 0, e);
    conn_close(r, c);
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    c->retry_at_ms = now_ms() + c->backoff_ms;
    c->state = C_BACKOFF;
}

static int watch(run_t *r, conn_t *c, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)(c - r->c)};
    return epoll_ctl(r->ep, op, c->fd, &ev);
}

static void conn_open(run_t *r, conn_t *c)
{
    c->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_fail(r, c, LOAD_ERR_CONNECT);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    r->res->connects++;
    c->used = 0;
    if (connect(c->fd, (struct sockaddr *)&r->addr, r->addrlen) != 0 && errno != EINPROGRESS) {
        conn_fail(r, c, LOAD_ERR_CONNECT);
        return;
    }
    if (watch(r, c, EPOLL_CTL_ADD, EPOLLOUT) != 0) {
        conn_fail(r, c, LOAD_ERR_CONNECT);
        return;
    }
    c->state = C_CONNECTING;
}

/* Writes what is left of the request; moves to reading once it is all out. */
static void conn_send(run_t *r, conn_t *c)
{
    size_t total = c->head_len + c->req.body_len;
    while (c->sent < total) {
        struct iovec iov[2];
        int n = 0;
        if (c->sent < c->head_len)
            iov[n++] = (struct iovec){c->head + c->sent, c->head_len - c->sent};
        size_t boff = c->sent > c->head_len ? c->sent - c->head_len : 0;
        if (c->req.body_len > boff)
            iov[n++] = (struct iovec){(char *)c->req.body + boff, c->req.body_len - boff};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (c->state != C_SENDING) {
                c->state = C_SENDING;
                watch(r, c, EPOLL_CTL_MOD, EPOLLOUT);
            }
            return;
        }
        if (w <= 0) {
            /* The server closed a kept-alive connection before reading this request. */
            if (c->used && !c->resent && !c->req.once) {
                c->resent = 1;
                r->res->retried++;
                conn_close(r, c);
                c->state = C_IDLE;
                return;
            }
            conn_fail(r, c, LOAD_ERR_CLOSED);
            return;
        }
        c->sent += (size_t)w;
    }
    c->state = C_READING;
    watch(r, c, EPOLL_CTL_MOD, EPOLLIN);
}

/* Starts c's request: on its open connection, or by connecting first. */
static void conn_start(run_t *r, conn_t *c)
{
    c->sent = 0;
    load_resp_reset(&c->resp);
    c->deadline_ms = now_ms() + r->o->timeout_ms;
    if (c->fd < 0) {
        conn_open(r, c);
        return;
    }
    c->state = C_SENDING;
    conn_send(r, c);
}

static void conn_response(run_t *r, conn_t *c)
{
    load_resp_t *rs = &c->resp;
    int ok = 0;
    load_err_t e = LOAD_ERR_HTTP_5XX;
    if (rs->status >= 200 && rs->status < 300) {
        ok = !r->o->check || r->o->check(r->o->ud, &c->req, rs->status, rs->body, rs->body_len) == 0;
        e = LOAD_ERR_BAD_BODY;
    } else if (rs->status >= 400 && rs->status < 500) {
        e = LOAD_ERR_HTTP_4XX;
    }
    finish(r, c, ok, e);
    c->used++;
    int close_it = rs->close;
    load_resp_reset(rs);
    if (close_it)
        conn_close(r, c);
    else
        c->state = C_IDLE;
}

static void conn_readable(run_t *r, conn_t *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, r->rbuf, READ_CHUNK, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            if (n == 0 && load_resp_eof(&c->resp) == LOAD_RESP_DONE) {
                conn_response(r, c);
                conn_close(r, c);
                return;
            }
            if (c->used && !c->resent && !c->req.once && load_resp_empty(&c->resp)) {
                c->resent = 1;
                r->res->retried++;
                conn_close(r, c);
                c->state = C_IDLE;
                return;
            }
            conn_fail(r, c, LOAD_ERR_CLOSED);
            return;
        }
        size_t used = 0;
        int rc = load_resp_feed(&c->resp, r->rbuf, (size_t)n, &used);
        if (rc < 0 || (rc == LOAD_RESP_DONE && used < (size_t)n)) {
            conn_fail(r, c, LOAD_ERR_PROTO); /* bad HTTP, or bytes nobody asked for */
            return;
        }
        if (rc == LOAD_RESP_DONE) {
            conn_response(r, c);
            return;
        }
    }
}

static void conn_event(run_t *r, conn_t *c, uint32_t ev)
{
    if (c->state == C_CONNECTING) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
            conn_fail(r, c, LOAD_ERR_CONNECT);
            return;
        }
        c->state = C_SENDING;
        conn_send(r, c);
    } else if (c->state == C_SENDING) {
        if (ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLOUT)) {
            conn_fail(r, c, LOAD_ERR_CLOSED);
            return;
        }
        conn_send(r, c);
    } else if (c->state == C_READING) {
        conn_readable(r, c);
    }
}

/* ---- scheduling ---- */

/* The next request for c from the caller, or 0 when the run takes no more. */
static int take_request(run_t *r, conn_t *c, double t)
{
    const load_opts_t *o = r->o;
    if (r->stopping)
        return 0;
    if (o->max_requests && r->started >= o->max_requests) {
        r->stopping = 1;
        return 0;
    }
    double due = t;
    if (o->rate > 0) {
        due = r->t0 + (double)r->started * 1000.0 / o->rate;
        if (due > t)
            return 0;
    }
    c->scratch.len = 0;
    if (c->scratch.data)
        c->scratch.data[0] = 0;
    memset(&c->req, 0, sizeof c->req);
    if (o->next(o->ud, (int)(c - r->c), &c->scratch, &c->req) != 0) {
        r->stopping = 1;
        return 0;
    }
    if (c->req.kind < 0 || c->req.kind >= o->nkinds)
        c->req.kind = 0;
    int n =
        snprintf(c->head, sizeof c->head, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: lookalike-load\r\n%s",
                 c->req.method, c->req.path, r->host_header, c->req.headers ? c->req.headers : "");
    if (c->req.content_type && n > 0 && (size_t)n < sizeof c->head)
        n += snprintf(c->head + n, sizeof c->head - (size_t)n, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                      c->req.content_type, c->req.body_len);
    if (n > 0 && (size_t)n < sizeof c->head)
        n += snprintf(c->head + n, sizeof c->head - (size_t)n, "\r\n");
    if (n <= 0 || (size_t)n >= sizeof c->head) {
        /* A request line this long is the caller's bug; count it and stop asking. */
        r->res->kinds[c->req.kind].sent++;
        r->res->kinds[c->req.kind].errors[LOAD_ERR_PROTO]++;
        r->stopping = 1;
        return 0;
    }
    c->head_len = (size_t)n;
    c->has_req = 1;
    c->resent = 0;
    c->start_ms = due;
    r->started++;
    r->res->kinds[c->req.kind].sent++;
    return 1;
}

static int resolve(run_t *r, char *err, size_t errlen)
{
    const load_opts_t *o = r->o;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    int rc = getaddrinfo(o->host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        lerr(err, errlen, "%s: %s", o->host, gai_strerror(rc));
        return LOAD_ESYS;
    }
    memcpy(&r->addr, ai->ai_addr, ai->ai_addrlen);
    r->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    if (strchr(o->host, ':'))
        snprintf(r->host_header, sizeof r->host_header, "[%.256s]:%d", o->host, o->port);
    else
        snprintf(r->host_header, sizeof r->host_header, "%.256s:%d", o->host, o->port);
    return 0;
}

static int check_opts(const load_opts_t *o, char *err, size_t errlen)
{
    if (!o->host || !*o->host || o->port < 1 || o->port > 65535) {
        lerr(err, errlen, "a host and a port in 1..65535 are needed");
        return LOAD_EINVAL;
    }
    if (o->connections < 1 || o->connections > CONNECTIONS_MAX) {
        lerr(err, errlen, "connections must be in 1..%d", CONNECTIONS_MAX);
        return LOAD_EINVAL;
    }
    if (o->duration_ms <= 0 && !o->max_requests) {
        lerr(err, errlen, "give a duration or a request count");
        return LOAD_EINVAL;
    }
    if (o->rate < 0 || o->timeout_ms < 1 || o->gap_ms < 0 || o->nkinds < 1 || o->nkinds > LOAD_KINDS_MAX ||
        !o->next) {
        lerr(err, errlen, "bad rate, timeout, gap, kinds or callback");
        return LOAD_EINVAL;
    }
    return 0;
}

int load_run(const load_opts_t *o, load_result_t *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    res->first_ok_ms = res->last_ok_ms = -1;
    for (int k = 0; k < LOAD_KINDS_MAX; k++)
        load_hist_init(&res->kinds[k].latency);
    load_hist_init(&res->all.latency);
    int rc = check_opts(o, err, errlen);
    if (rc)
        return rc;
    run_t r = {.o = o, .res = res, .ep = -1};
    if ((rc = resolve(&r, err, errlen)) != 0)
        return rc;
    size_t body_max = o->body_max ? o->body_max : 8u << 20;
    int nconn = o->connections;
    struct epoll_event *evs = NULL;
    if (!(r.c = calloc((size_t)nconn, sizeof *r.c)) || !(r.rbuf = malloc(READ_CHUNK)) ||
        !(evs = calloc((size_t)nconn, sizeof *evs))) {
        lerr(err, errlen, "out of memory");
        rc = LOAD_ENOMEM;
        goto out;
    }
    for (int i = 0; i < nconn; i++) {
        r.c[i].fd = -1;
        if (load_resp_init(&r.c[i].resp, body_max) != 0) {
            lerr(err, errlen, "out of memory");
            rc = LOAD_ENOMEM;
            goto out;
        }
    }
    if ((r.ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        lerr(err, errlen, "epoll_create1: %s", strerror(errno));
        rc = LOAD_ESYS;
        goto out;
    }
    r.t0 = now_ms();
    for (;;) {
        double t = now_ms();
        if (o->duration_ms > 0 && t - r.t0 >= (double)o->duration_ms)
            r.stopping = 1;
        int busy = 0;
        double wake = t + TICK_MS;
        for (int i = 0; i < nconn; i++) {
            conn_t *c = &r.c[i];
            if (c->has_req && c->state != C_IDLE && c->state != C_BACKOFF && t >= c->deadline_ms) {
                /* Half a response on this connection would confuse the next one: close it. */
                finish(&r, c, 0, LOAD_ERR_TIMEOUT);
                conn_close(&r, c);
            }
            if (c->state == C_BACKOFF) {
                if (t < c->retry_at_ms) {
                    if (c->retry_at_ms < wake)
                        wake = c->retry_at_ms;
                    continue;
                }
                c->state = C_IDLE;
            }
            if (c->state == C_IDLE && (c->has_req || take_request(&r, c, t)))
                conn_start(&r, c);
            if (c->has_req) {
                busy = 1;
                if (c->deadline_ms < wake)
                    wake = c->deadline_ms;
            }
        }
        if (r.stopping && !busy)
            break;
        if (o->rate > 0 && !r.stopping) {
            double due = r.t0 + (double)r.started * 1000.0 / o->rate;
            if (due < wake)
                wake = due;
        }
        int timeout = (int)(wake - now_ms() + 0.999);
        if (timeout < 0)
            timeout = 0;
        int n = epoll_wait(r.ep, evs, nconn, timeout);
        if (n < 0 && errno != EINTR) {
            lerr(err, errlen, "epoll_wait: %s", strerror(errno));
            rc = LOAD_ESYS;
            goto out;
        }
        for (int i = 0; i < n; i++) {
            uint32_t ci = evs[i].data.u32;
            if (ci < (uint32_t)nconn && r.c[ci].fd >= 0)
                conn_event(&r, &r.c[ci], evs[i].events);
        }
    }
    res->elapsed_ms = now_ms() - r.t0;
    note_gap(&r, res->elapsed_ms);
    for (int k = 0; k < o->nkinds; k++) {
        load_kind_stats_t *ks = &res->kinds[k];
        res->all.sent += ks->sent;
        res->all.ok += ks->ok;
        for (int e = 0; e < LOAD_ERR_COUNT; e++)
            res->all.errors[e] += ks->errors[e];
        load_hist_merge(&res->all.latency, &ks->latency);
    }
out:
    for (int i = 0; r.c && i < nconn; i++) {
        if (r.c[i].fd >= 0)
            close(r.c[i].fd);
        load_resp_release(&r.c[i].resp);
        load_buf_release(&r.c[i].scratch);
    }
    if (r.ep >= 0)
        close(r.ep);
    free(r.c);
    free(r.rbuf);
    free(evs);
    return rc;
}
