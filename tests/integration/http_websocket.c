/* WebSocket clients over real sockets against core-example's rooms (run by http_websocket.sh).
 *
 * usage: http_websocket PORT SERVER_PID
 *        http_websocket PORT SERVER_PID hub-full   (server run with --ws-max-connections 1)
 *
 * The server is expected to run with --ws-max-message 1k --ws-ping-interval 1s
 * --ws-pong-timeout 2s --idle-timeout 1s --connection-limit 8. Clients speak through Debian's
 * wslay (client side: masking, control frames, the close handshake); a few frames are written
 * raw where a test needs what a well-behaved library will not send (fragments with a ping
 * between them, an unmasked frame, a client that never answers pings). The last step sends
 * SIGTERM to the server and expects close 1001 on every open client. Prints one "ok:" or
 * "FAIL:" line per check and exits 1 if any check failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <wslay/wslay.h>

#include "core/core.h"

#define MAX_CLIENTS 40
#define CROWD 20
#define MAX_INBOX 16
#define WAIT_MS 3000

typedef struct ws_msg {
    int opcode;
    size_t len;
    uint8_t *data;
} ws_msg;

typedef struct client {
    char name[16];
    int fd;
    wslay_event_context_ptr ctx;
    uint8_t early[512]; /* bytes that came with the 101, read before the socket */
    size_t early_len, early_off;
    ws_msg inbox[MAX_INBOX];
    size_t nin;
    int pings, pongs;
    char pong[126];
    bool close_received;
    unsigned close_code;
    bool dead; /* the socket failed or the server closed it */
} client;

typedef struct world {
    int port;
    client *c[MAX_CLIENTS];
    size_t n;
    int fails;
} world;

static void check(world *w, bool cond, const char *fmt, ...) CORE_PRINTF(3, 4);
static void check(world *w, bool cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s", cond ? "ok: " : "FAIL: ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (!cond)
        w->fails++;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        s += k;
        n -= (size_t)k;
    }
    return true;
}

/* Reads an HTTP response head (and whatever follows it in the same reads) within ms. */
static ssize_t read_head(int fd, char *buf, size_t cap, int ms, size_t *head_len)
{
    size_t used = 0;
    int64_t end = now_ms() + ms;
    while (used < cap - 1) {
        int left = (int)(end - now_ms());
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        ssize_t k = recv(fd, buf + used, cap - 1 - used, 0);
        if (k <= 0)
            return -1;
        used += (size_t)k;
        buf[used] = '\0';
        char *e = strstr(buf, "\r\n\r\n");
        if (e) {
            *head_len = (size_t)(e + 4 - buf);
            return (ssize_t)used;
        }
    }
    return -1;
}

/* ---- wslay glue ---- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    client *c = ud;
    if (c->early_off < c->early_len) {
        size_t n = c->early_len - c->early_off;
        if (n > len)
            n = len;
        memcpy(buf, c->early + c->early_off, n);
        c->early_off += n;
        return (ssize_t)n;
    }
    ssize_t k;
    do
        k = recv(c->fd, buf, len, MSG_DONTWAIT);
    while (k < 0 && errno == EINTR);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (k <= 0) {
        c->dead = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return k;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)flags;
    client *c = ud;
    ssize_t k;
    do
        k = send(c->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (k < 0 && errno == EINTR);
    if (k < 0) {
        wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK ? WSLAY_ERR_WOULDBLOCK
                                                                           : WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return k;
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    (void)ctx;
    (void)ud;
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    (void)ctx;
    client *c = ud;
    switch (arg->opcode) {
    case WSLAY_PING:
        c->pings++;
        break;
    case WSLAY_PONG:
        c->pongs++;
        snprintf(c->pong, sizeof c->pong, "%.*s", (int)arg->msg_length, (const char *)arg->msg);
        break;
    case WSLAY_CONNECTION_CLOSE:
        c->close_received = true;
        c->close_code = arg->status_code;
        break;
    default:
        if (c->nin < MAX_INBOX) {
            ws_msg *m = &c->inbox[c->nin++];
            m->opcode = arg->opcode;
            m->len = arg->msg_length;
            m->data = malloc(arg->msg_length + 1);
            if (m->data) {
                memcpy(m->data, arg->msg, arg->msg_length);
                m->data[arg->msg_length] = 0;
            }
        }
    }
}

static const struct wslay_event_callbacks client_callbacks = {
    .recv_callback = on_recv,
    .send_callback = on_send,
    .genmask_callback = on_genmask,
    .on_msg_recv_callback = on_msg,
};

static void client_free(client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nin; i++)
        free(c->inbox[i].data);
    if (c->ctx)
        wslay_event_context_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* Opens a WebSocket to /ws/room (the handshake checked, accept key included). With raw set
 * the client gets no wslay context: the test speaks for it byte by byte. NULL on failure. */
static client *client_open(world *w, const char *name, const char *room, bool raw)
{
    client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->fd = tcp_connect(w->port);
    uint8_t nonce[16];
    char key[32], want[CORE_WS_ACCEPT_LEN + 1], req[512], resp[2048];
    if (c->fd < 0 || getrandom(nonce, sizeof nonce, 0) != sizeof nonce)
        goto fail;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t k = 0;
    for (size_t i = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)nonce[i] << 16 | (uint32_t)nonce[i + 1] << 8 | nonce[i + 2];
        for (int s = 18; s >= 0; s -= 6)
            key[k++] = b64[(v >> s) & 63];
    }
    key[k++] = b64[nonce[15] >> 2];
    key[k++] = b64[(nonce[15] & 3) << 4];
    key[k++] = '=';
    key[k++] = '=';
    key[k] = 0;
    core_ws_accept_key(key, want);
    int n = snprintf(req, sizeof req,
                     "GET /ws/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     room, key);
    size_t head;
    ssize_t got;
    if (!write_all(c->fd, req, (size_t)n) || (got = read_head(c->fd, resp, sizeof resp, WAIT_MS, &head)) < 0)
        goto fail;
    char accept_line[64];
    snprintf(accept_line, sizeof accept_line, "\r\nSec-WebSocket-Accept: %s\r\n", want);
    if (strncmp(resp, "HTTP/1.1 101 ", 13) != 0 || !strcasestr(resp, "\r\nUpgrade: websocket\r\n") ||
        !strstr(resp, accept_line)) {
        printf("%s: unexpected handshake answer:\n%.*s\n", name, (int)head, resp);
        goto fail;
    }
    c->early_len = (size_t)got - head;
    if (c->early_len > sizeof c->early)
        goto fail;
    memcpy(c->early, resp + head, c->early_len);
    if (!raw && wslay_event_context_client_init(&c->ctx, &client_callbacks, c) != 0) {
        c->ctx = NULL;
        goto fail;
    }
    if (w->n == MAX_CLIENTS)
        goto fail;
    w->c[w->n++] = c;
    return c;
fail:
    client_free(c);
    return NULL;
}

/* One round of I/O for every wslay client: reads what arrived (answering pings and close
 * frames, as wslay does) and writes what is queued. */
static void pump(world *w, int ms)
{
    struct pollfd p[MAX_CLIENTS];
    client *who[MAX_CLIENTS];
    nfds_t n = 0;
    for (size_t i = 0; i < w->n; i++) {
        client *c = w->c[i];
        if (!c->ctx || c->dead)
            continue;
        short ev = 0;
        if (wslay_event_want_read(c->ctx))
            ev |= POLLIN;
        if (wslay_event_want_write(c->ctx))
            ev |= POLLOUT;
        if (c->early_off < c->early_len && wslay_event_want_read(c->ctx))
            ms = 0;
        if (!ev)
            continue;
        p[n] = (struct pollfd){c->fd, ev, 0};
        who[n++] = c;
    }
    if (n == 0) {
        nap_ms(ms);
        return;
    }
    poll(p, n, ms);
    for (nfds_t i = 0; i < n; i++) {
        client *c = who[i];
        bool pending = c->early_off < c->early_len;
        if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) || pending) {
            if (wslay_event_recv(c->ctx) != 0)
                c->dead = true;
        }
        if (!c->dead && wslay_event_want_write(c->ctx) && wslay_event_send(c->ctx) != 0)
            c->dead = true;
    }
}

typedef bool (*cond_fn)(client *c, const void *arg);

/* Pumps every client until cond(c, arg) holds or ms pass; returns whether it held. */
static bool wait_for(world *w, client *c, cond_fn cond, const void *arg, int ms)
{
    int64_t end = now_ms() + ms;
    while (!cond(c, arg)) {
        if (now_ms() >= end)
            return false;
        pump(w, 20);
    }
    return true;
}

static bool has_messages(client *c, const void *arg)
{
    return c->nin >= *(const size_t *)arg;
}

static bool has_close(client *c, const void *arg)
{
    (void)arg;
    return c->close_received;
}

static bool has_pongs(client *c, const void *arg)
{
    return c->pongs >= *(const int *)arg;
}

static bool has_pings(client *c, const void *arg)
{
    return c->pings >= *(const int *)arg;
}

/* Reads a raw client's socket for up to ms while the wslay clients keep being served (they
 * must answer the server's pings meanwhile). Returns the bytes read, 0 at EOF, -1 on timeout. */
static ssize_t raw_read(world *w, client *c, void *buf, size_t cap, int ms)
{
    int64_t end = now_ms() + ms;
    while (now_ms() < end) {
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, 20) == 1) {
            ssize_t k = recv(c->fd, buf, cap, 0);
            if (k >= 0)
                return k;
            if (errno != EINTR && errno != EAGAIN)
                return 0;
        }
        pump(w, 0);
    }
    return -1;
}

/* true when the server has closed c's TCP connection within ms (bytes before EOF are read and
 * dropped). */
static bool wait_eof(world *w, client *c, int ms)
{
    int64_t end = now_ms() + ms;
    char buf[4096];
    ssize_t k;
    do
        k = raw_read(w, c, buf, sizeof buf, (int)(end - now_ms()));
    while (k > 0);
    if (k == 0)
        c->dead = true;
    return k == 0;
}

/* Reads a raw client's frames until a close frame and returns its code; -1 on timeout, EOF or
 * a frame other than a ping (pings from the server may come first on a slow machine). */
static int raw_close_code(world *w, client *c, int ms)
{
    uint8_t buf[1024];
    size_t n = c->early_len - c->early_off;
    memcpy(buf, c->early + c->early_off, n);
    c->early_off = c->early_len;
    int64_t end = now_ms() + ms;
    for (;;) {
        size_t off = 0;
        while (n - off >= 2) {
            size_t plen = buf[off + 1] & 0x7F;
            unsigned op = buf[off] & 0x0F;
            if (plen > 125 || (op != 0x8 && op != 0x9))
                return -1;
            if (n - off < 2 + plen)
                break;
            if (op == 0x8)
                return plen >= 2 ? buf[off + 2] << 8 | buf[off + 3] : 1005;
            off += 2 + plen;
        }
        memmove(buf, buf + off, n - off);
        n -= off;
        int left = (int)(end - now_ms());
        ssize_t k = left > 0 ? raw_read(w, c, buf + n, sizeof buf - n, left) : -1;
        if (k <= 0)
            return -1;
        n += (size_t)k;
    }
}

static bool queue_msg(world *w, client *c, uint8_t opcode, const void *data, size_t len)
{
    struct wslay_event_msg m = {opcode, data, len};
    if (wslay_event_queue_msg(c->ctx, &m) != 0)
        return false;
    pump(w, 0);
    return true;
}

/* Appends one masked client frame to buf (room for len + 14 bytes); returns its size. */
static size_t frame(uint8_t *buf, bool fin, unsigned opcode, const void *payload, size_t len, bool masked)
{
    static const uint8_t mask[4] = {0x5a, 0x13, 0xc7, 0x02};
    size_t h = 0;
    buf[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    uint8_t m = masked ? 0x80 : 0;
    if (len < 126) {
        buf[h++] = (uint8_t)(m | len);
    } else {
        buf[h++] = (uint8_t)(m | 126);
        buf[h++] = (uint8_t)(len >> 8);
        buf[h++] = (uint8_t)len;
    }
    if (masked) {
        memcpy(buf + h, mask, 4);
        h += 4;
    }
    const uint8_t *src = payload;
    for (size_t i = 0; i < len; i++)
        buf[h + i] = masked ? (uint8_t)(src[i] ^ mask[i % 4]) : src[i];
    return h + len;
}

/* POST body to path over a fresh connection; returns the status code, or -1. */
static int http_post(int port, const char *path, const char *ctype, const void *body, size_t len)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        return -1;
    char req[512], resp[2048];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     path, ctype, len);
    size_t head;
    int status = -1;
    if (write_all(fd, req, (size_t)n) && write_all(fd, body, len) &&
        read_head(fd, resp, sizeof resp, WAIT_MS, &head) > 0)
        sscanf(resp, "HTTP/1.1 %d", &status);
    close(fd);
    return status;
}

static bool msg_is(const client *c, size_t i, int opcode, const void *data, size_t len)
{
    return c->nin > i && c->inbox[i].opcode == opcode && c->inbox[i].len == len &&
           memcmp(c->inbox[i].data, data, len) == 0;
}

/* ---- the scenarios ---- */

static void rooms_and_broadcast(world *w, client *a, client *b, client *other)
{
    static const char hello[] = "hello from a";
    size_t one = 1, two = 2;
    check(w, queue_msg(w, a, WSLAY_TEXT_FRAME, hello, sizeof hello - 1), "a sends a text message");
    check(w,
          wait_for(w, b, has_messages, &one, WAIT_MS) &&
              msg_is(b, 0, WSLAY_TEXT_FRAME, hello, sizeof hello - 1),
          "b, in the same room, receives a's message");
    static const char shout[] = "to everyone in lobby";
    check(w, http_post(w->port, "/api/rooms/lobby/broadcast", "text/plain", shout, sizeof shout - 1) == 202,
          "POST /api/rooms/lobby/broadcast answers 202");
    check(w,
          wait_for(w, a, has_messages, &one, WAIT_MS) &&
              msg_is(a, 0, WSLAY_TEXT_FRAME, shout, sizeof shout - 1),
          "a receives the HTTP broadcast (and not its own message)");
    check(w,
          wait_for(w, b, has_messages, &two, WAIT_MS) &&
              msg_is(b, 1, WSLAY_TEXT_FRAME, shout, sizeof shout - 1),
          "b receives the HTTP broadcast");
    static const uint8_t bin[] = {0, 1, 2, 0xff, 0xfe};
    check(w,
          http_post(w->port, "/api/rooms/lobby/broadcast", "application/octet-stream", bin, sizeof bin) ==
              202,
          "binary broadcast answers 202");
    check(w,
          wait_for(w, b, has_messages, &(size_t){3}, WAIT_MS) &&
              msg_is(b, 2, WSLAY_BINARY_FRAME, bin, sizeof bin),
          "b receives the binary broadcast as a binary message");
    pump(w, 200);
    check(w, a->nin == 2, "a got exactly the two broadcasts (%zu messages)", a->nin);
    check(w, other->nin == 0, "a client in another room got nothing (%zu messages)", other->nin);
}

static void ping_pong(world *w, client *a)
{
    static const char payload[] = "are you there";
    int one = 1;
    check(w, queue_msg(w, a, WSLAY_PING, payload, sizeof payload - 1), "a sends a ping");
    check(w, wait_for(w, a, has_pongs, &one, WAIT_MS) && strcmp(a->pong, payload) == 0,
          "a gets a pong with the ping's payload");
}

/* The server pings a silent client every --ws-ping-interval (1 s) and, since the client
 * answers, keeps it; MHD's --idle-timeout (1 s) does not apply to upgraded connections. */
static void server_pings(world *w, client *quiet)
{
    int two = 2;
    bool pinged = wait_for(w, quiet, has_pings, &two, 3500);
    check(w, pinged, "a silent client is pinged by the server (%d pings)", quiet->pings);
    int pongs = quiet->pongs + 1;
    check(w,
          !quiet->dead && queue_msg(w, quiet, WSLAY_PING, "x", 1) &&
              wait_for(w, quiet, has_pongs, &pongs, WAIT_MS),
          "a client that answers pings outlives the ping interval and the HTTP idle timeout");
}

static void unanswered_pings(world *w)
{
    client *mute = client_open(w, "mute", "lobby", true);
    check(w, mute != NULL, "a client that will never answer pings connects");
    if (!mute)
        return;
    /* Ping after 1 s of silence, drop 2 s after that if nothing came back; plus a hub tick. */
    int64_t t0 = now_ms();
    uint8_t buf[64];
    ssize_t k = raw_read(w, mute, buf, sizeof buf, 3000);
    check(w, k >= 2 && buf[0] == 0x89, "the silent raw client is pinged");
    bool dropped = wait_eof(w, mute, 6000);
    check(w, dropped, "the server drops a client that never answers its ping (%lld ms after connecting)",
          (long long)(now_ms() - t0));
}

static void fragments(world *w, client *a, client *b)
{
    uint8_t buf[256];
    size_t n = 0;
    n += frame(buf + n, false, 0x1, "frag", 4, true);
    n += frame(buf + n, true, 0x9, "mid", 3, true); /* a ping between fragments */
    n += frame(buf + n, false, 0x0, "men", 3, true);
    n += frame(buf + n, true, 0x0, "ted", 3, true);
    size_t before_b = b->nin;
    int pongs = a->pongs + 1;
    check(w, write_all(a->fd, buf, n),
          "a sends one text message in three fragments with a ping between them");
    size_t want = before_b + 1;
    check(w,
          wait_for(w, b, has_messages, &want, WAIT_MS) &&
              msg_is(b, before_b, WSLAY_TEXT_FRAME, "fragmented", 10),
          "b receives the fragments as one message");
    check(w, wait_for(w, a, has_pongs, &pongs, WAIT_MS) && strcmp(a->pong, "mid") == 0,
          "the ping between fragments is answered");

    /* One frame split across two TCP writes. */
    n = frame(buf, true, 0x1, "split frame", 11, true);
    want = b->nin + 1;
    check(w, write_all(a->fd, buf, 5), "a sends the first 5 bytes of a frame");
    pump(w, 150);
    check(w, write_all(a->fd, buf + 5, n - 5), "then the rest");
    check(w,
          wait_for(w, b, has_messages, &want, WAIT_MS) &&
              msg_is(b, want - 1, WSLAY_TEXT_FRAME, "split frame", 11),
          "b receives the frame that arrived in two pieces");
}

static void size_cap(world *w, client *b)
{
    client *big = client_open(w, "big", "lobby", false);
    client *frag = client_open(w, "frag", "lobby", true);
    check(w, big && frag, "two more clients join the lobby");
    if (!big || !frag)
        return;
    size_t before_b = b->nin;
    char *payload = malloc(2000);
    memset(payload, 'x', 2000);
    check(w, queue_msg(w, big, WSLAY_TEXT_FRAME, payload, 2000),
          "a client sends a 2000-byte message (cap 1 KiB)");
    bool closed = wait_for(w, big, has_close, NULL, WAIT_MS);
    check(w, closed && big->close_code == 1009, "it is closed with 1009 (code %u)", big->close_code);
    check(w, wait_eof(w, big, WAIT_MS), "and its connection is closed");

    /* Three fragments of 400 bytes: each under the cap, together over it. */
    uint8_t buf[3 * 420];
    size_t n = 0;
    n += frame(buf + n, false, 0x1, payload, 400, true);
    n += frame(buf + n, false, 0x0, payload, 400, true);
    n += frame(buf + n, true, 0x0, payload, 400, true);
    free(payload);
    check(w, write_all(frag->fd, buf, n), "a client sends 3 x 400-byte fragments");
    check(w, raw_close_code(w, frag, WAIT_MS) == 1009, "the cap counts fragments together: close 1009");
    check(w, wait_eof(w, frag, WAIT_MS), "and that connection is closed too");
    pump(w, 200);
    check(w, b->nin == before_b, "nothing of the oversize messages reached the room");
}

static void masking(world *w)
{
    client *bare = client_open(w, "bare", "lobby", true);
    check(w, bare != NULL, "a client that will send an unmasked frame connects");
    if (!bare)
        return;
    uint8_t buf[32];
    size_t n = frame(buf, true, 0x1, "naked", 5, false);
    check(w, write_all(bare->fd, buf, n), "it sends an unmasked frame");
    check(w, raw_close_code(w, bare, WAIT_MS) == 1002, "an unmasked frame gets close 1002");
    check(w, wait_eof(w, bare, WAIT_MS), "and the connection is closed");
}

static void client_close(world *w)
{
    client *leaving = client_open(w, "leaving", "lobby", false);
    check(w, leaving != NULL, "a client that will close connects");
    if (!leaving)
        return;
    check(w, wslay_event_queue_close(leaving->ctx, 1000, (const uint8_t *)"bye", 3) == 0,
          "it starts the close handshake with 1000");
    pump(w, 0);
    bool echoed = wait_for(w, leaving, has_close, NULL, WAIT_MS);
    check(w, echoed && leaving->close_code == 1000, "the server echoes close 1000 (code %u)",
          leaving->close_code);
    check(w, wait_eof(w, leaving, WAIT_MS), "and closes the TCP connection");
}

/* More WebSockets than --connection-limit: the hub, not MHD, holds them after the handshake. */
static void crowd(world *w)
{
    client *c[CROWD];
    size_t n = 0;
    for (; n < CROWD; n++) {
        char name[16];
        snprintf(name, sizeof name, "crowd%zu", n);
        if (!(c[n] = client_open(w, name, "crowd", false)))
            break;
        /* Answer the server's pings while the crowd opens: on a slow (sanitized, loaded)
         * machine opening 20 sockets can outlast --ws-pong-timeout. */
        pump(w, 0);
    }
    check(w, n == CROWD, "%zu of %d WebSockets open with --connection-limit 8", n, CROWD);
    /* The 101 goes out before the hub adopts the socket and joins it to its room; a pong comes
     * from the hub, so once each has one, every member is in the room the broadcast goes to. */
    size_t ponged = 0;
    for (size_t i = 0; i < n; i++) {
        int pongs = c[i]->pongs + 1;
        ponged += queue_msg(w, c[i], WSLAY_PING, "in?", 3) && wait_for(w, c[i], has_pongs, &pongs, WAIT_MS);
    }
    check(w, ponged == n, "%zu of %zu answer a ping through the hub", ponged, n);
    static const char hi[] = "hello crowd";
    check(w, http_post(w->port, "/api/rooms/crowd/broadcast", "text/plain", hi, sizeof hi - 1) == 202,
          "HTTP still answers with them open");
    size_t got = 0, one = 1;
    for (size_t i = 0; i < n; i++)
        if (wait_for(w, c[i], has_messages, &one, WAIT_MS) &&
            msg_is(c[i], 0, WSLAY_TEXT_FRAME, hi, sizeof hi - 1))
            got++;
    check(w, got == CROWD, "the broadcast reached %zu of %d", got, CROWD);
}

static void graceful_shutdown(world *w, pid_t server)
{
    client *open[MAX_CLIENTS];
    size_t nopen = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->c[i]->ctx && !w->c[i]->dead && !w->c[i]->close_received)
            open[nopen++] = w->c[i];
    check(w, nopen >= 3, "%zu clients are open before SIGTERM", nopen);
    check(w, kill(server, SIGTERM) == 0, "SIGTERM sent to the server");
    for (size_t i = 0; i < nopen; i++) {
        client *c = open[i];
        bool closed = wait_for(w, c, has_close, NULL, 5000);
        check(w, closed && c->close_code == 1001, "%s gets close 1001 on shutdown (code %u)", c->name,
              c->close_code);
        pump(w, 0); /* wslay echoes the close */
        check(w, wait_eof(w, c, 5000), "%s: the server closes the TCP connection after the echo", c->name);
    }
}

/* A hub that is full still completes the handshake (the 101 is out before the hub is asked),
 * then says why in WebSocket terms: close 1013, "try again later" (IANA-registered after RFC
 * 6455; wslay 1.1 refuses to parse it, so this client reads raw bytes). */
static void hub_full(world *w)
{
    client *first = client_open(w, "first", "lobby", false);
    client *second = client_open(w, "second", "lobby", true);
    check(w, first && second, "two handshakes complete");
    if (!first || !second)
        return;
    check(w, raw_close_code(w, second, WAIT_MS) == 1013, "the one past --ws-max-connections gets close 1013");
    check(w, wait_eof(w, second, WAIT_MS), "and its connection is closed");
    int pongs = first->pongs + 1;
    check(w, queue_msg(w, first, WSLAY_PING, "still", 5) && wait_for(w, first, has_pongs, &pongs, WAIT_MS),
          "the first one is still served");
}

int main(int argc, char **argv)
{
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "hub-full") == 0)) {
        fprintf(stderr, "usage: http_websocket PORT SERVER_PID [hub-full]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    world w = {.port = atoi(argv[1])};
    pid_t server = (pid_t)atoi(argv[2]);
    if (argc == 4) {
        hub_full(&w);
        for (size_t i = 0; i < w.n; i++)
            client_free(w.c[i]);
        printf("%d check(s) failed\n", w.fails);
        return w.fails ? 1 : 0;
    }
    client *a = client_open(&w, "a", "lobby", false);
    client *b = client_open(&w, "b", "lobby", false);
    client *other = client_open(&w, "other", "kitchen", false);
    check(&w, a && b && other, "three clients complete the handshake (101, Sec-WebSocket-Accept checked)");
    if (a && b && other) {
        rooms_and_broadcast(&w, a, b, other);
        ping_pong(&w, a);
        server_pings(&w, other);
        unanswered_pings(&w);
        fragments(&w, a, b);
        size_cap(&w, b);
        masking(&w);
        client_close(&w);
        crowd(&w);
        graceful_shutdown(&w, server);
    }
    for (size_t i = 0; i < w.n; i++)
        client_free(w.c[i]);
    printf("%d check(s) failed\n", w.fails);
    return w.fails ? 1 : 0;
}
