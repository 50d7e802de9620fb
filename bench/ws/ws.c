/* bench/ws: idle WebSocket connections held by the runtime's hub (core-example) against Node's
 * `ws` package (bench/ws/peer.js), same machine, same run, one server after the other.
 *
 * For each server: start it on a free loopback port; read its resident set (VmRSS from
 * /proc/PID/status, the same way for both) and heap (ours: process_heap_bytes from /metrics,
 * malloc's bytes in use; Node: heapUsed + external from process.memoryUsage() after a full
 * GC); open N WebSockets to /ws/bench (non-blocking connects, at most --batch handshakes in
 * flight, each 101 checked for its Sec-WebSocket-Accept); check that the server itself counts
 * N; read memory again; then POST --broadcasts messages to /api/rooms/bench/broadcast one at a
 * time, each waited for on all N sockets (latency to the last socket, and the server's CPU
 * time from /proc/PID/stat); finally SIGTERM with every socket open, expecting close 1001 on
 * each (answered) and a clean exit.
 *
 * This program raises its own RLIMIT_NOFILE (N sockets); core-example raises its own; Node
 * does not, so it inherits ours. Prints one JSON line per server and a summary
 *   {"bench":"ws","ratio_rss_per_conn_vs_node":<ours / Node's>, ...}
 * (below 1 means we use less memory per connection). Exits 1 if any check fails. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

extern char **environ;

#define MAX_BROADCASTS 50
#define CONN_BUF 256

typedef struct opts {
    int connections, batch, broadcasts;
    const char *server, *node, *peer;
    bool with_peer;
} opts;

enum { C_CONNECTING, C_HEAD, C_OPEN, C_CLOSING, C_DONE };

typedef struct conn {
    int fd;
    int state;
    int round;     /* last broadcast round received */
    unsigned code; /* close code received */
    size_t len;
    uint8_t buf[CONN_BUF];
} conn;

typedef struct target {
    const char *name;
    bool ours;
    pid_t pid;
    int port;
} target;

typedef struct result {
    int opened, failed;
    long long server_count;
    double connect_s;
    long long rss_before, rss_after, heap_before, heap_after;
    double rss_per_conn, heap_per_conn;
    long long received;
    double broadcast_ms_median, broadcast_cpu_ms;
    int closed_1001;
    double shutdown_ms;
    int exit_status;
} result;

static const char ws_key[] = "YmVuY2gtd3Mta2V5LTAwMQ=="; /* one key for all: the server cannot tell */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("bench/ws: free port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t spawn(char *const argv[], const char *out_path, char *const envp[])
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "bench/ws: cannot start %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    return pid;
}

static int tcp_connect(int port, bool nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 || (nonblock && errno == EINPROGRESS))
        return fd;
    close(fd);
    return -1;
}

/* One HTTP request over a fresh connection; returns the status and the body (malloc'd). */
static int http_call(int port, const char *method, const char *path, const char *body, char **out)
{
    *out = NULL;
    int fd = tcp_connect(port, false);
    if (fd < 0)
        return -1;
    char req[512];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     method, path, blen, body ? body : "");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t cap = 1 << 20, used = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while (buf && used < cap - 1 && (r = read(fd, buf + used, cap - 1 - used)) > 0)
        used += (size_t)r;
    close(fd);
    if (!buf)
        return -1;
    buf[used] = '\0';
    int status = -1;
    char *b = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1 || !b) {
        free(buf);
        return -1;
    }
    memmove(buf, b + 4, strlen(b + 4) + 1);
    *out = buf;
    return status;
}

/* A number after `key` in text (a Prometheus line "name value" or a JSON "name":value). */
static long long find_number(const char *text, const char *key)
{
    const char *p = text;
    size_t klen = strlen(key);
    while ((p = strstr(p, key)) != NULL) {
        bool line_start = p == text || p[-1] == '\n' || p[-1] == '"';
        const char *v = p + klen;
        if (line_start && (*v == ' ' || *v == '"')) {
            v += strspn(v, "\": ");
            return (long long)strtod(v, NULL);
        }
        p += klen;
    }
    return -1;
}

static long long proc_rss(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* utime + stime of the process, in milliseconds. */
static double proc_cpu_ms(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* Server-side figures: our /metrics or the peer's /stats. */
static int server_figures(const target *t, long long *heap, long long *count)
{
    char *body;
    int st = http_call(t->port, "GET", t->ours ? "/metrics" : "/stats", NULL, &body);
    if (st != 200) {
        free(body);
        return -1;
    }
    if (t->ours) {
        *heap = find_number(body, "process_heap_bytes");
        *count = find_number(body, "websocket_connections");
    } else {
        *heap = find_number(body, "heap_used") + find_number(body, "external");
        *count = find_number(body, "connections");
    }
    free(body);
    return 0;
}

static bool wait_ready(const target *t)
{
    for (int i = 0; i < 200; i++) {
        char *b;
        int st = http_call(t->port, "GET", "/healthz", NULL, &b);
        free(b);
        if (st == 200)
            return true;
        if (waitpid(t->pid, NULL, WNOHANG) == t->pid)
            return false;
        nap_ms(50);
    }
    return false;
}

/* A masked client frame (RFC 6455 5.3); payloads here are at most 125 bytes. */
static size_t client_frame(uint8_t *out, unsigned opcode, const uint8_t *payload, size_t len)
{
    static const uint8_t mask[4] = {1, 2, 3, 4};
    out[0] = (uint8_t)(0x80 | opcode);
    out[1] = (uint8_t)(0x80 | len);
    memcpy(out + 2, mask, 4);
    for (size_t i = 0; i < len; i++)
        out[6 + i] = payload[i] ^ mask[i % 4];
    return 6 + len;
}

/* Parses the frames in c->buf. Text frames equal to `expect` set c->round = round; pings are
 * answered; a close is answered and remembered. Returns false on a protocol surprise. */
static bool conn_frames(conn *c, const char *expect, int round)
{
    size_t off = 0;
    while (c->len - off >= 2) {
        uint8_t *f = c->buf + off;
        size_t plen = f[1] & 0x7F, h = 2;
        if (f[1] & 0x80 || plen > 125)
            return false; /* the server never masks, and our messages are short */
        if (c->len - off < h + plen)
            break;
        unsigned op = f[0] & 0x0F;
        uint8_t reply[6 + 125];
        if (op == 0x1 && plen == strlen(expect) && memcmp(f + h, expect, plen) == 0) {
            c->round = round;
        } else if (op == 0x9) {
            size_t n = client_frame(reply, 0xA, f + h, plen);
            (void)!send(c->fd, reply, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else if (op == 0x8) {
            c->code = plen >= 2 ? (unsigned)(f[h] << 8 | f[h + 1]) : 1005;
            size_t n = client_frame(reply, 0x8, f + h, plen >= 2 ? 2 : 0);
            (void)!send(c->fd, reply, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            c->state = C_CLOSING;
        } else if (op != 0x1 && op != 0xA) {
            return false;
        }
        off += h + plen;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return true;
}

static void conn_end(int ep, conn *c)
{
    if (c->fd < 0)
        return;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    /* No TIME_WAIT left behind: the next server's run needs the ephemeral ports. */
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c->fd);
    c->fd = -1;
    c->state = C_DONE;
}

/* Reads what c's socket has; returns false when the connection ended. */
static bool conn_read(int ep, conn *c, const char *expect, int round)
{
    for (;;) {
        ssize_t k = recv(c->fd, c->buf + c->len, CONN_BUF - c->len, MSG_DONTWAIT);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            return true;
        if (k <= 0) {
            conn_end(ep, c);
            return false;
        }
        c->len += (size_t)k;
        if (!conn_frames(c, expect, round) || c->len == CONN_BUF) {
            conn_end(ep, c);
            return false;
        }
    }
}

/* Opens o->connections WebSockets to /ws/bench; returns how many are open. */
static int open_all(const opts *o, const target *t, int ep, conn *conns, const char *accept, result *r)
{
    char req[512];
    int reqlen = snprintf(req, sizeof req,
                          "GET /ws/bench HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                          ws_key);
    char want[96];
    snprintf(want, sizeof want, "\r\nSec-WebSocket-Accept: %s\r\n", accept);
    int started = 0, inflight = 0, opened = 0, failed = 0;
    double t0 = now_s(), last_progress = t0;
    struct epoll_event evs[512];
    while (opened + failed < o->connections) {
        while (inflight < o->batch && started < o->connections) {
            conn *c = &conns[started++];
            memset(c, 0, sizeof *c);
            c->fd = tcp_connect(t->port, true);
            struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
            if (c->fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
                if (failed++ == 0)
                    fprintf(stderr, "bench/ws: %s: connect: %s\n", t->name, strerror(errno));
                if (c->fd >= 0)
                    close(c->fd);
                c->fd = -1;
                c->state = C_DONE;
                continue;
            }
            c->state = C_CONNECTING;
            inflight++;
        }
        int n = epoll_wait(ep, evs, 512, 1000);
        if (n <= 0 && now_s() - last_progress > 10) {
            fprintf(stderr, "bench/ws: %s: no progress for 10 s (%d open, %d failed)\n", t->name, opened,
                    failed);
            break;
        }
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            bool bad = false;
            if (c->state == C_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                bad = err != 0 || send(c->fd, req, (size_t)reqlen, MSG_NOSIGNAL) != reqlen ||
                      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0;
                c->state = C_HEAD;
            } else if (c->state == C_HEAD) {
                ssize_t k = recv(c->fd, c->buf + c->len, CONN_BUF - 1 - c->len, MSG_DONTWAIT);
                if (k < 0 && errno == EAGAIN)
                    continue;
                bad = k <= 0;
                if (!bad) {
                    c->len += (size_t)k;
                    c->buf[c->len] = 0;
                    char *end = strstr((char *)c->buf, "\r\n\r\n");
                    if (end) {
                        bad = strncmp((char *)c->buf, "HTTP/1.1 101 ", 13) != 0 ||
                              !strstr((char *)c->buf, want);
                        size_t head = (size_t)(end + 4 - (char *)c->buf);
                        memmove(c->buf, c->buf + head, c->len - head);
                        c->len -= head;
                        if (!bad) {
                            c->state = C_OPEN;
                            opened++;
                            inflight--;
                            last_progress = now_s();
                        }
                    } else {
                        bad = c->len >= CONN_BUF - 1;
                    }
                }
            }
            if (bad) {
                if (failed++ == 0)
                    fprintf(stderr, "bench/ws: %s: handshake failed: %.*s\n", t->name, (int)c->len,
                            (char *)c->buf);
                inflight--;
                conn_end(ep, c);
            }
        }
    }
    r->connect_s = now_s() - t0;
    r->opened = opened;
    r->failed = o->connections - opened;
    return opened;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run_target(const opts *o, target *t, conn *conns, const char *dir, result *r)
{
    memset(r, 0, sizeof *r);
    r->exit_status = -1;
    char log[4200], port_arg[16];
    snprintf(log, sizeof log, "%s/%s.log", dir, t->name);
    t->port = free_port();
    snprintf(port_arg, sizeof port_arg, "%d", t->port);
    if (t->ours) {
        char *argv[] = {(char *)o->server, "--port", port_arg, "--access-log=false",
                        "--log-level",     "warn",   NULL};
        t->pid = spawn(argv, log, environ);
    } else {
        char *argv[] = {(char *)o->node, "--expose-gc", (char *)o->peer, port_arg, NULL};
        char *envp[] = {"NODE_PATH=/usr/share/nodejs", NULL};
        t->pid = spawn(argv, log, envp);
    }
    if (t->pid < 0 || !wait_ready(t)) {
        fprintf(stderr, "bench/ws: %s did not start (log in %s)\n", t->name, log);
        return -1;
    }
    long long count;
    nap_ms(300);
    if (server_figures(t, &r->heap_before, &count) != 0)
        return -1;
    r->rss_before = proc_rss(t->pid);

    char accept[CORE_WS_ACCEPT_LEN + 1];
    core_ws_accept_key(ws_key, accept);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -1;
    int rc = -1;
    int opened = open_all(o, t, ep, conns, accept, r);
    /* The hub adopts sockets asynchronously: wait for its count to settle. */
    for (int i = 0; i < 100; i++) {
        if (server_figures(t, &r->heap_after, &r->server_count) != 0)
            goto done;
        if (r->server_count >= opened)
            break;
        nap_ms(50);
    }
    nap_ms(500);
    if (server_figures(t, &r->heap_after, &r->server_count) != 0)
        goto done;
    r->rss_after = proc_rss(t->pid);
    if (opened > 0) {
        r->rss_per_conn = (double)(r->rss_after - r->rss_before) / opened;
        r->heap_per_conn = (double)(r->heap_after - r->heap_before) / opened;
    }

    double lat[MAX_BROADCASTS];
    double cpu0 = proc_cpu_ms(t->pid);
    struct epoll_event evs[512];
    for (int round = 1; round <= o->broadcasts; round++) {
        char msg[64], *body;
        snprintf(msg, sizeof msg, "bench broadcast %d", round);
        double b0 = now_s();
        int st = http_call(t->port, "POST", "/api/rooms/bench/broadcast", msg, &body);
        free(body);
        if (st != 202) {
            fprintf(stderr, "bench/ws: %s: broadcast answered %d\n", t->name, st);
            goto done;
        }
        int got = 0;
        for (int i = 0; i < o->connections; i++)
            if (conns[i].state == C_OPEN && conns[i].round == round)
                got++;
        while (got < opened && now_s() - b0 < 30) {
            int n = epoll_wait(ep, evs, 512, 1000);
            for (int i = 0; i < n; i++) {
                conn *c = evs[i].data.ptr;
                int before = c->round;
                conn_read(ep, c, msg, round);
                if (before != round && c->round == round)
                    got++;
            }
        }
        lat[round - 1] = (now_s() - b0) * 1000;
        r->received += got;
        if (got < opened) {
            fprintf(stderr, "bench/ws: %s: broadcast %d reached %d of %d\n", t->name, round, got, opened);
            goto done;
        }
    }
    r->broadcast_cpu_ms = (proc_cpu_ms(t->pid) - cpu0) / o->broadcasts;
    qsort(lat, (size_t)o->broadcasts, sizeof *lat, cmp_double);
    r->broadcast_ms_median = lat[o->broadcasts / 2];

    /* Graceful shutdown with every socket open: each should get close 1001. */
    double s0 = now_s();
    kill(t->pid, SIGTERM);
    int live = opened;
    while (live > 0 && now_s() - s0 < 15) {
        int n = epoll_wait(ep, evs, 512, 500);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!conn_read(ep, c, "", 0)) {
                live--;
                if (c->code == 1001)
                    r->closed_1001++;
            }
        }
    }
    int status = 0;
    bool reaped = false;
    for (int i = 0; i < 300 && !(reaped = waitpid(t->pid, &status, WNOHANG) == t->pid); i++)
        nap_ms(50);
    if (!reaped) {
        fprintf(stderr, "bench/ws: %s did not exit within 15 s of SIGTERM\n", t->name);
        kill(t->pid, SIGKILL);
        waitpid(t->pid, &status, 0);
    }
    t->pid = -1;
    r->shutdown_ms = (now_s() - s0) * 1000;
    r->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    rc = 0;
done:
    for (int i = 0; i < o->connections; i++)
        conn_end(ep, &conns[i]);
    close(ep);
    if (t->pid > 0) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
        t->pid = -1;
    }
    return rc;
}

static void print_result(const opts *o, const target *t, const result *r)
{
    printf("{\"bench\":\"ws\",\"server\":\"%s\",\"connections\":%d,\"open\":%d,\"failed\":%d,"
           "\"server_reported\":%lld,\"connect_s\":%.2f,\"rss_before_bytes\":%lld,\"rss_after_bytes\":%lld,"
           "\"rss_per_conn_bytes\":%.0f,\"heap_before_bytes\":%lld,\"heap_after_bytes\":%lld,"
           "\"heap_per_conn_bytes\":%.0f,\"broadcasts\":%d,\"broadcast_received\":%lld,"
           "\"broadcast_ms_median\":%.2f,\"broadcast_server_cpu_ms\":%.2f,\"closed_1001\":%d,"
           "\"shutdown_ms\":%.0f,\"exit_status\":%d}\n",
           t->name, o->connections, r->opened, r->failed, r->server_count, r->connect_s, r->rss_before,
           r->rss_after, r->rss_per_conn, r->heap_before, r->heap_after, r->heap_per_conn, o->broadcasts,
           r->received, r->broadcast_ms_median, r->broadcast_cpu_ms, r->closed_1001, r->shutdown_ms,
           r->exit_status);
    fflush(stdout);
}

static bool passed(const opts *o, const result *r)
{
    return r->opened == o->connections && r->server_count == o->connections &&
           r->received == (long long)o->connections * o->broadcasts && r->closed_1001 == o->connections &&
           r->exit_status == 0;
}

static void usage(void)
{
    printf(
        "usage: bench/ws [--connections N] [--batch N] [--broadcasts N] [--server PATH] [--node PATH]\n"
        "                [--peer PATH | --no-peer]\n"
        "  --connections  idle WebSockets to hold (default 10000)\n"
        "  --batch        handshakes in flight at once (default 256)\n"
        "  --broadcasts   messages broadcast to all of them, one at a time (default 5)\n"
        "  --server       core-example binary (default: ../core-example next to this program)\n"
        "  --node         Node.js (default /usr/bin/node); --peer its script (default bench/ws/peer.js)\n");
}

int main(int argc, char **argv)
{
    opts o = {.connections = 10000,
              .batch = 256,
              .broadcasts = 5,
              .node = "/usr/bin/node",
              .peer = "bench/ws/peer.js",
              .with_peer = true};
    char default_server[4096];
    snprintf(default_server, sizeof default_server, "%s", argv[0]);
    char *slash = strrchr(default_server, '/');
    if (slash)
        snprintf(slash, sizeof default_server - (size_t)(slash - default_server), "/../core-example");
    else
        snprintf(default_server, sizeof default_server, "../core-example");
    o.server = default_server;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--help") == 0) {
            usage();
            return 0;
        } else if (strcmp(argv[i], "--no-peer") == 0) {
            o.with_peer = false;
            continue;
        } else if (v && strcmp(argv[i], "--connections") == 0) {
            o.connections = atoi(v);
        } else if (v && strcmp(argv[i], "--batch") == 0) {
            o.batch = atoi(v);
        } else if (v && strcmp(argv[i], "--broadcasts") == 0) {
            o.broadcasts = atoi(v);
        } else if (v && strcmp(argv[i], "--server") == 0) {
            o.server = v;
        } else if (v && strcmp(argv[i], "--node") == 0) {
            o.node = v;
        } else if (v && strcmp(argv[i], "--peer") == 0) {
            o.peer = v;
        } else {
            fprintf(stderr, "bench/ws: bad argument %s (see --help)\n", argv[i]);
            return 2;
        }
        i++;
    }
    if (o.connections < 1 || o.connections > 200000 || o.batch < 1 || o.broadcasts < 1 ||
        o.broadcasts > MAX_BROADCASTS) {
        fprintf(stderr, "bench/ws: --connections in 1..200000, --batch >= 1, --broadcasts in 1..%d\n",
                MAX_BROADCASTS);
        return 2;
    }
    if (o.with_peer && (access(o.node, X_OK) != 0 || access(o.peer, R_OK) != 0 ||
                        access("/usr/share/nodejs/ws/package.json", R_OK) != 0)) {
        fprintf(stderr,
                "bench/ws: the peer needs %s, %s and Debian's node-ws (make deps installs them); "
                "--no-peer measures ours alone\n",
                o.node, o.peer);
        return 2;
    }
    /* Our N client sockets, and Node's N server sockets, which it inherits this limit for. */
    long long want = (long long)o.connections + 256;
    if (core_proc_raise_nofile(want) < want) {
        struct rlimit rl = {(rlim_t)want, (rlim_t)want};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "bench/ws: RLIMIT_NOFILE is below %lld and cannot be raised: %s\n", want,
                    strerror(errno));
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    conn *conns = calloc((size_t)o.connections, sizeof *conns);
    const char *tmp = getenv("TMPDIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/bench-ws-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    if (!conns || !mkdtemp(dir)) {
        perror("bench/ws");
        return 1;
    }
    for (int i = 0; i < o.connections; i++)
        conns[i].fd = -1;

    target targets[2] = {{.name = "core", .ours = true, .pid = -1}, {.name = "node-ws", .pid = -1}};
    result res[2];
    int ntargets = o.with_peer ? 2 : 1, ok = 1;
    for (int i = 0; i < ntargets; i++) {
        if (run_target(&o, &targets[i], conns, dir, &res[i]) != 0)
            ok = 0;
        print_result(&o, &targets[i], &res[i]);
        if (!passed(&o, &res[i])) {
            fprintf(stderr, "bench/ws: %s did not pass every check (log in %s/%s.log)\n", targets[i].name,
                    dir, targets[i].name);
            ok = 0;
        }
    }
    if (ntargets == 2)
        printf("{\"bench\":\"ws\",\"connections\":%d,\"core_rss_per_conn_bytes\":%.0f,"
               "\"node_rss_per_conn_bytes\":%.0f,\"ratio_rss_per_conn_vs_node\":%.3f,"
               "\"core_heap_per_conn_bytes\":%.0f,\"node_heap_per_conn_bytes\":%.0f,"
               "\"ratio_heap_per_conn_vs_node\":%.3f,\"core_broadcast_ms\":%.2f,\"node_broadcast_ms\":%.2f,"
               "\"ratio_broadcast_ms_vs_node\":%.3f,\"core_broadcast_cpu_ms\":%.2f,"
               "\"node_broadcast_cpu_ms\":%.2f}\n",
               o.connections, res[0].rss_per_conn, res[1].rss_per_conn,
               res[0].rss_per_conn / res[1].rss_per_conn, res[0].heap_per_conn, res[1].heap_per_conn,
               res[0].heap_per_conn / res[1].heap_per_conn, res[0].broadcast_ms_median,
               res[1].broadcast_ms_median, res[0].broadcast_ms_median / res[1].broadcast_ms_median,
               res[0].broadcast_cpu_ms, res[1].broadcast_cpu_ms);
    else
        printf("{\"bench\":\"ws\",\"connections\":%d,\"peer\":null,\"core_rss_per_conn_bytes\":%.0f,"
               "\"core_heap_per_conn_bytes\":%.0f}\n",
               o.connections, res[0].rss_per_conn, res[0].heap_per_conn);
    free(conns);
    if (ok) {
        char path[1100];
        for (int i = 0; i < ntargets; i++) {
            snprintf(path, sizeof path, "%s/%s.log", dir, targets[i].name);
            unlink(path);
        }
        rmdir(dir);
    }
    return ok ? 0 : 1;
}
