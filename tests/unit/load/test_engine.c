/* The engine against a small HTTP server on a loopback port, run in a thread of the test: it
 * answers by path, so each request kind meets one behaviour (ok, 404, 500, a bad body, no
 * answer, a closed connection, bytes that are not HTTP, a chunked answer). */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "load/load.h"

enum { K_OK, K_404, K_500, K_BADBODY, K_SILENT, K_CLOSE, K_GARBAGE, K_CHUNKED, K_N };
static const char *const paths[K_N] = {"/ok",     "/404",   "/500",     "/badbody",
                                       "/silent", "/close", "/garbage", "/chunked"};

typedef struct {
    int lfd, port;
    atomic_int stop;
} server_t;

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        size_t used = (size_t)(end + 4 - buf);
        const char *cl = strcasestr(buf, "Content-Length:");
        size_t body = cl && cl < end ? (size_t)atol(cl + 15) : 0;
        while (have < used + body && (n = recv(fd, buf + have, sizeof buf - 1 - have, 0)) > 0)
            have += (size_t)n;
        const char *resp = NULL;
        if (strncmp(buf, "GET /ok ", 8) == 0 || strncmp(buf, "POST /ok ", 9) == 0)
            resp = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"good\":1}\n";
        else if (strncmp(buf, "GET /404 ", 9) == 0)
            resp = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";
        else if (strncmp(buf, "GET /500 ", 9) == 0)
            resp = "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n";
        else if (strncmp(buf, "GET /badbody ", 13) == 0)
            resp = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad";
        else if (strncmp(buf, "GET /garbage ", 13) == 0)
            resp = "SSH-2.0-nope\r\n\r\n";
        else if (strncmp(buf, "GET /chunked ", 13) == 0)
            resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                   "chunked\r\n\r\n5\r\n{\"goo\r\n6\r\nd\":2}\n\r\n0\r\n\r\n";
        else if (strncmp(buf, "GET /silent ", 12) == 0)
            resp = "";
        if (!resp)
            break; /* /close and anything else: hang up without an answer */
        if (*resp && send(fd, resp, strlen(resp), MSG_NOSIGNAL) < 0)
            break;
        memmove(buf, buf + used + body, have - used - body);
        have -= used + body;
    }
    close(fd);
    return NULL;
}

static void *serve(void *arg)
{
    server_t *s = arg;
    while (!atomic_load(&s->stop)) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            break;
        pthread_t t;
        if (pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
    return NULL;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 64) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

typedef struct {
    int kinds[K_N];
    int nkinds;
    atomic_int turn;
} mix_t;

static int next(void *ud, int conn, load_buf_t *scratch, load_req_t *req)
{
    mix_t *m = ud;
    (void)conn;
    (void)scratch;
    int k = m->kinds[atomic_fetch_add(&m->turn, 1) % m->nkinds];
    req->kind = k;
    req->method = "GET";
    req->path = paths[k];
    return 0;
}

static int check(void *ud, const load_req_t *req, int status, const char *body, size_t len)
{
    (void)ud;
    (void)req;
    (void)status;
    return len > 2 && body[0] == '{' && strstr(body, "goo") ? 0 : -1;
}

static void run_mix(int port, const int *kinds, int nk, uint64_t requests, int timeout_ms, load_result_t *res)
{
    mix_t m = {.nkinds = nk};
    memcpy(m.kinds, kinds, (size_t)nk * sizeof *kinds);
    load_opts_t o = {.host = "127.0.0.1",
                     .port = port,
                     .connections = 4,
                     .max_requests = requests,
                     .timeout_ms = timeout_ms,
                     .gap_ms = 1000,
                     .nkinds = K_N,
                     .next = next,
                     .check = check,
                     .ud = &m};
    char err[256];
    cr_assert_eq(load_run(&o, res, err, sizeof err), 0, "%s", err);
}

Test(engine, every_outcome_lands_in_its_class)
{
    server_t s = {0};
    s.lfd = listen_any(&s.port);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, serve, &s), 0);
    static load_result_t r;
    int kinds[] = {K_OK, K_404, K_500, K_BADBODY, K_CHUNKED, K_GARBAGE, K_CLOSE};
    run_mix(s.port, kinds, 7, 140, 5000, &r);
    cr_assert_eq(r.all.sent, 140);
    cr_assert_eq(r.kinds[K_OK].ok, 20);
    cr_assert_eq(r.kinds[K_CHUNKED].ok, 20, "chunked answers are read whole");
    cr_assert_eq(r.kinds[K_404].errors[LOAD_ERR_HTTP_4XX], 20);
    cr_assert_eq(r.kinds[K_500].errors[LOAD_ERR_HTTP_5XX], 20);
    cr_assert_eq(r.kinds[K_BADBODY].errors[LOAD_ERR_BAD_BODY], 20);
    cr_assert_eq(r.kinds[K_GARBAGE].errors[LOAD_ERR_PROTO], 20);
    /* A hang-up on a fresh connection is an error; on a kept-alive one the request is sent
     * once more first, and fails the same way. */
    cr_assert_eq(r.kinds[K_CLOSE].errors[LOAD_ERR_CLOSED], 20);
    cr_assert_eq(r.all.ok, 40);
    cr_assert_eq(r.all.latency.n, 40, "latency is kept for successes only");
    load_result_release(&r);

    int silent[] = {K_SILENT};
    run_mix(s.port, silent, 1, 4, 200, &r);
    cr_assert_eq(r.kinds[K_SILENT].errors[LOAD_ERR_TIMEOUT], 4);
    cr_assert_eq(r.first_ok_ms, -1);
    cr_assert_eq(r.ngaps, 0, "no stretch longer than the 1 s gap threshold");
    cr_assert_float_eq(r.longest_gap.end_ms - r.longest_gap.start_ms, r.elapsed_ms, 1e-6,
                       "without a success the whole run is one gap");
    load_result_release(&r);

    atomic_store(&s.stop, 1);
    shutdown(s.lfd, SHUT_RDWR);
    close(s.lfd);
    pthread_join(t, NULL);
}

Test(engine, nobody_listening_is_connect_errors_and_downtime)
{
    int port;
    int fd = listen_any(&port);
    close(fd); /* the port is free again: connections are refused */
    static load_result_t r;
    int kinds[] = {K_OK};
    mix_t m = {.nkinds = 1};
    memcpy(m.kinds, kinds, sizeof kinds);
    load_opts_t o = {.host = "127.0.0.1",
                     .port = port,
                     .connections = 2,
                     .duration_ms = 300,
                     .timeout_ms = 1000,
                     .gap_ms = 100,
                     .nkinds = K_N,
                     .next = next,
                     .ud = &m};
    char err[256];
    cr_assert_eq(load_run(&o, &r, err, sizeof err), 0, "%s", err);
    cr_assert_gt(r.all.sent, 0);
    cr_assert_eq(r.all.errors[LOAD_ERR_CONNECT], r.all.sent);
    cr_assert_eq(r.ngaps, 1);
    cr_assert_float_eq(r.gaps[0].end_ms, r.elapsed_ms, 1e-6);
    load_result_release(&r);
}

Test(engine, bad_options)
{
    load_result_t r;
    char err[256];
    load_opts_t o = {.host = "127.0.0.1",
                     .port = 80,
                     .connections = 0,
                     .max_requests = 1,
                     .timeout_ms = 1,
                     .nkinds = 1,
                     .next = next};
    cr_assert_eq(load_run(&o, &r, err, sizeof err), LOAD_EINVAL);
    o.connections = 1;
    o.max_requests = 0;
    cr_assert_eq(load_run(&o, &r, err, sizeof err), LOAD_EINVAL);
    cr_assert(strstr(err, "duration"), "%s", err);
    o.max_requests = 1;
    o.host = "no-such-host.invalid";
    cr_assert_eq(load_run(&o, &r, err, sizeof err), LOAD_ESYS);
    load_result_release(&r);
}
