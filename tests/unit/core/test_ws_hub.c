/* The hub over socketpairs: rooms, relay and broadcast, sends by id, close handshakes, slow
 * consumers, liveness pings, the size cap and shutdown with 1001. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/core.h"
#include "ws_test_util.h"

#define MAXC 8

typedef struct events {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int opened, closed, released, messages;
    uint64_t ids[MAXC];
    unsigned close_codes[MAXC];
    char last_room[CORE_WS_ROOM_MAX + 1];
} events;

static events ev = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void on_open(void *ud, core_ws_hub *hub, uint64_t id, const char *room)
{
    (void)ud, (void)hub;
    pthread_mutex_lock(&ev.mu);
    if (ev.opened < MAXC)
        ev.ids[ev.opened] = id;
    ev.opened++;
    snprintf(ev.last_room, sizeof ev.last_room, "%s", room);
    pthread_cond_broadcast(&ev.cv);
    pthread_mutex_unlock(&ev.mu);
}

static void on_message(void *ud, core_ws_hub *hub, uint64_t id, const char *room, int opcode,
                       const void *data, size_t len)
{
    (void)ud, (void)hub, (void)id, (void)room, (void)opcode, (void)data, (void)len;
    pthread_mutex_lock(&ev.mu);
    ev.messages++;
    pthread_cond_broadcast(&ev.cv);
    pthread_mutex_unlock(&ev.mu);
}

static void on_close(void *ud, core_ws_hub *hub, uint64_t id, const char *room, unsigned code)
{
    (void)ud, (void)hub, (void)id, (void)room;
    pthread_mutex_lock(&ev.mu);
    if (ev.closed < MAXC)
        ev.close_codes[ev.closed] = code;
    ev.closed++;
    pthread_cond_broadcast(&ev.cv);
    pthread_mutex_unlock(&ev.mu);
}

static void release_fd(void *arg, int fd)
{
    (void)arg;
    close(fd);
    pthread_mutex_lock(&ev.mu);
    ev.released++;
    pthread_cond_broadcast(&ev.cv);
    pthread_mutex_unlock(&ev.mu);
}

/* Waits (up to 5 s) until *counter >= want. */
static void wait_count(int *counter, int want)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&ev.mu);
    while (*counter < want)
        if (pthread_cond_timedwait(&ev.cv, &ev.mu, &dl) == ETIMEDOUT)
            break;
    int got = *counter;
    pthread_mutex_unlock(&ev.mu);
    cr_assert_geq(got, want, "waited for %d events, saw %d", want, got);
}

static int get_count(int *counter)
{
    pthread_mutex_lock(&ev.mu);
    int v = *counter;
    pthread_mutex_unlock(&ev.mu);
    return v;
}

static core_ws_hub *hub;

static void reset_events(void)
{
    pthread_mutex_lock(&ev.mu);
    ev.opened = ev.closed = ev.released = ev.messages = 0;
    memset(ev.ids, 0, sizeof ev.ids);
    memset(ev.close_codes, 0, sizeof ev.close_codes);
    pthread_mutex_unlock(&ev.mu);
}

static core_ws_config test_config(void)
{
    core_ws_config cfg;
    core_ws_config_defaults(&cfg);
    cfg.cb.on_open = on_open;
    cfg.cb.on_message = on_message;
    cfg.cb.on_close = on_close;
    cfg.relay = true;
    cfg.max_message = 1000;
    return cfg;
}

static void start_hub(const core_ws_config *cfg)
{
    reset_events();
    char err[256];
    hub = core_ws_hub_new(cfg, err, sizeof err);
    cr_assert_not_null(hub, "%s", err);
}

static void setup(void)
{
    core_ws_config cfg = test_config();
    start_hub(&cfg);
}

static void teardown(void)
{
    core_ws_hub_free(hub);
    hub = NULL;
}

/* A client end: a socketpair whose other end the hub adopts. Blocking with a 5 s timeout. */
typedef struct client {
    int fd;
    uint8_t buf[1 << 16];
    size_t len, off;
} client;

static void client_open(client *c, const char *room, const void *extra, size_t extra_len)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    c->fd = sv[0];
    c->len = c->off = 0;
    char err[256];
    int rc = core_ws_hub_adopt(hub, sv[1], room, extra, extra_len, release_fd, NULL, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
}

static void client_send(client *c, bool fin, unsigned opcode, const void *data, size_t len, bool masked)
{
    uint8_t frame[8192];
    cr_assert_leq(len + 14, sizeof frame);
    size_t n = wst_frame(frame, 0, fin, 0, opcode, data, len, masked);
    cr_assert_eq(write(c->fd, frame, n), (ssize_t)n);
}

/* Reads the next frame; false on EOF. Fails the test on timeout. */
static bool client_read(client *c, wst_frame_view *f)
{
    for (;;) {
        size_t off = c->off;
        if (wst_next(c->buf, c->len, &off, f)) {
            c->off = off;
            return true;
        }
        if (c->off > 0) {
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        cr_assert_lt(c->len, sizeof c->buf);
        ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (n == 0)
            return false;
        cr_assert_gt(n, 0, "client read: %s", strerror(errno));
        c->len += (size_t)n;
    }
}

static void expect_text(client *c, const char *text)
{
    wst_frame_view f;
    cr_assert(client_read(c, &f), "EOF while waiting for \"%s\"", text);
    cr_assert_eq(f.opcode, 1);
    cr_assert_not(f.masked);
    cr_assert_eq(f.len, strlen(text));
    cr_assert(memcmp(f.payload, text, f.len) == 0);
}

static unsigned expect_close(client *c)
{
    wst_frame_view f;
    for (;;) {
        cr_assert(client_read(c, &f), "EOF before a close frame");
        if (f.opcode == 8)
            return wst_close_code(&f);
        cr_assert(f.opcode == 9 || f.opcode == 1 || f.opcode == 2, "unexpected opcode %u", f.opcode);
    }
}

static void expect_eof(client *c)
{
    wst_frame_view f;
    while (client_read(c, &f))
        ;
}

TestSuite(ws_hub, .init = setup, .fini = teardown, .timeout = 30);

Test(ws_hub, relay_reaches_room_but_not_sender_or_other_rooms)
{
    client a, b, other;
    client_open(&a, "room1", NULL, 0);
    client_open(&b, "room1", NULL, 0);
    client_open(&other, "room2", NULL, 0);
    wait_count(&ev.opened, 3);
    client_send(&a, true, 1, "hello", 5, true);
    expect_text(&b, "hello");
    cr_assert_eq(core_ws_hub_broadcast(hub, "room2", CORE_WS_TEXT, "for room2", 9, 0), 0);
    expect_text(&other, "for room2");
    cr_assert_eq(core_ws_hub_broadcast(hub, "room1", CORE_WS_TEXT, "everyone", 8, 0), 0);
    /* The sender's first frame is the broadcast: its own message never came back. */
    expect_text(&a, "everyone");
    expect_text(&b, "everyone");
    core_ws_stats st;
    core_ws_hub_stats(hub, &st);
    cr_assert_eq(st.connections, 3);
    cr_assert_eq(st.rooms, 2);
    cr_assert_eq(st.messages_in, 1);
    cr_assert_eq(st.parsers, 0, "idle connections still hold a parser");
    close(a.fd);
    close(b.fd);
    close(other.fd);
    wait_count(&ev.released, 3);
    cr_assert_eq(ev.close_codes[0], 1006);
}

Test(ws_hub, broadcast_except_and_send_by_id)
{
    client a, b;
    client_open(&a, "r", NULL, 0);
    wait_count(&ev.opened, 1);
    client_open(&b, "r", NULL, 0);
    wait_count(&ev.opened, 2);
    uint64_t ida = ev.ids[0], idb = ev.ids[1];
    cr_assert_neq(ida, idb);
    cr_assert_eq(core_ws_hub_broadcast(hub, "r", CORE_WS_BINARY, "x", 1, ida), 0);
    cr_assert_eq(core_ws_hub_send(hub, ida, CORE_WS_TEXT, "just a", 6), 0);
    expect_text(&a, "just a");
    wst_frame_view f;
    cr_assert(client_read(&b, &f));
    cr_assert_eq(f.opcode, 2);
    cr_assert_eq(f.len, 1);
    cr_assert_eq(core_ws_hub_send(hub, 0xdeadbeef, CORE_WS_TEXT, "nobody", 6), 0);
    cr_assert_eq(core_ws_hub_send(hub, ida, 9, "ping?", 5), CORE_EINVAL);
    cr_assert_eq(core_ws_hub_broadcast(hub, "bad/room", CORE_WS_TEXT, "x", 1, 0), CORE_EINVAL);
    cr_assert_eq(core_ws_hub_broadcast(hub, "empty", CORE_WS_TEXT, "x", 1, 0), 0);
    close(a.fd);
    close(b.fd);
}

Test(ws_hub, close_by_id_completes_handshake)
{
    client a;
    client_open(&a, "r", NULL, 0);
    wait_count(&ev.opened, 1);
    cr_assert_eq(core_ws_hub_close_conn(hub, ev.ids[0], 4000, "bye"), 0);
    cr_assert_eq(expect_close(&a), 4000);
    uint8_t code[2] = {0x0F, 0xA0};
    client_send(&a, true, 8, code, 2, true);
    expect_eof(&a);
    wait_count(&ev.released, 1);
    cr_assert_eq(ev.close_codes[0], 4000);
    cr_assert_eq(core_ws_hub_close_conn(hub, 1, 999, NULL), CORE_EINVAL);
    close(a.fd);
}

Test(ws_hub, client_close_is_echoed_then_released)
{
    client a;
    client_open(&a, "r", NULL, 0);
    wait_count(&ev.opened, 1);
    uint8_t code[2] = {0x03, 0xE8};
    client_send(&a, true, 8, code, 2, true);
    cr_assert_eq(expect_close(&a), 1000);
    expect_eof(&a);
    wait_count(&ev.released, 1);
    cr_assert_eq(ev.close_codes[0], 1000);
    close(a.fd);
}

Test(ws_hub, early_data_is_parsed_first)
{
    client a, b;
    client_open(&a, "r", NULL, 0);
    wait_count(&ev.opened, 1);
    uint8_t frame[64];
    size_t n = wst_frame(frame, 0, true, 0, 1, "early", 5, true);
    client_open(&b, "r", frame, n);
    expect_text(&a, "early");
    close(a.fd);
    close(b.fd);
}

Test(ws_hub, unmasked_frame_gets_1002_and_eof)
{
    client a;
    client_open(&a, "r", NULL, 0);
    client_send(&a, true, 1, "bare", 4, false);
    cr_assert_eq(expect_close(&a), 1002);
    expect_eof(&a);
    close(a.fd);
    wait_count(&ev.released, 1);
    cr_assert_eq(ev.close_codes[0], 1002);
}

Test(ws_hub, oversize_message_gets_1009)
{
    client a;
    client_open(&a, "r", NULL, 0);
    uint8_t big[4000];
    memset(big, 'z', sizeof big);
    client_send(&a, true, 2, big, sizeof big, true);
    cr_assert_eq(expect_close(&a), 1009);
    expect_eof(&a);
    close(a.fd);
    wait_count(&ev.released, 1);
    cr_assert_eq(ev.messages, 0);
}

Test(ws_hub, slow_consumer_is_dropped)
{
    core_ws_hub_free(hub);
    core_ws_config cfg = test_config();
    cfg.max_send_queue = 64 * 1024;
    start_hub(&cfg);
    client a;
    client_open(&a, "r", NULL, 0);
    wait_count(&ev.opened, 1);
    static uint8_t chunk[16 * 1024];
    memset(chunk, 's', sizeof chunk);
    /* The client never reads: the socket buffers fill, then the hub's queue passes its cap. */
    for (int i = 0; i < 400 && get_count(&ev.closed) == 0; i++) {
        int rc = core_ws_hub_broadcast(hub, "r", CORE_WS_BINARY, chunk, sizeof chunk, 0);
        cr_assert(rc == 0 || rc == CORE_EFULL);
    }
    wait_count(&ev.closed, 1);
    cr_assert_eq(ev.close_codes[0], 1008);
    core_ws_stats st;
    core_ws_hub_stats(hub, &st);
    cr_assert_eq(st.slow_dropped, 1);
    cr_assert_eq(st.connections, 0);
    close(a.fd);
}

Test(ws_hub, silent_client_is_pinged_then_dropped)
{
    core_ws_hub_free(hub);
    core_ws_config cfg = test_config();
    cfg.ping_interval_ms = 50;
    cfg.pong_timeout_ms = 100;
    start_hub(&cfg);
    client a, b;
    client_open(&a, "r", NULL, 0);
    client_open(&b, "r", NULL, 0);
    wst_frame_view f;
    cr_assert(client_read(&a, &f));
    cr_assert_eq(f.opcode, 9);
    /* b answers every ping and so outlives a, which never does. */
    for (int i = 0; i < 3; i++) {
        cr_assert(client_read(&b, &f));
        cr_assert_eq(f.opcode, 9);
        client_send(&b, true, 0xA, f.payload, f.len, true);
    }
    expect_eof(&a);
    wait_count(&ev.closed, 1);
    cr_assert_eq(ev.close_codes[0], 1006);
    core_ws_stats st;
    core_ws_hub_stats(hub, &st);
    cr_assert_eq(st.connections, 1);
    close(a.fd);
    close(b.fd);
}

typedef struct shut_arg {
    core_ws_hub *hub;
} shut_arg;

static void *shutdown_thread(void *p)
{
    shut_arg *a = p;
    core_ws_hub_shutdown(a->hub, 5000);
    return NULL;
}

Test(ws_hub, shutdown_closes_with_1001)
{
    client a, b;
    client_open(&a, "r", NULL, 0);
    client_open(&b, "s", NULL, 0);
    wait_count(&ev.opened, 2);
    pthread_t t;
    shut_arg arg = {hub};
    cr_assert_eq(pthread_create(&t, NULL, shutdown_thread, &arg), 0);
    cr_assert_eq(expect_close(&a), 1001);
    cr_assert_eq(expect_close(&b), 1001);
    uint8_t code[2] = {0x03, 0xE9};
    client_send(&a, true, 8, code, 2, true);
    client_send(&b, true, 8, code, 2, true);
    pthread_join(t, NULL);
    cr_assert_eq(ev.released, 2);
    cr_assert_eq(ev.close_codes[0], 1001);
    cr_assert_eq(ev.close_codes[1], 1001);
    expect_eof(&a);
    expect_eof(&b);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char err[128];
    cr_assert_eq(core_ws_hub_adopt(hub, sv[1], "r", NULL, 0, release_fd, NULL, err, sizeof err), CORE_ESTATE);
    cr_assert_eq(core_ws_hub_broadcast(hub, "r", CORE_WS_TEXT, "x", 1, 0), CORE_ESTATE);
    close(sv[0]);
    close(sv[1]);
    close(a.fd);
    close(b.fd);
}

Test(ws_hub, shutdown_is_bounded_when_clients_do_not_answer)
{
    client a;
    client_open(&a, "r", NULL, 0);
    wait_count(&ev.opened, 1);
    core_ws_hub_shutdown(hub, 100);
    cr_assert_eq(ev.released, 1);
    cr_assert_eq(expect_close(&a), 1001);
    expect_eof(&a);
    close(a.fd);
}

Test(ws_hub, adopt_limits)
{
    core_ws_hub_free(hub);
    core_ws_config cfg = test_config();
    cfg.max_connections = 1;
    start_hub(&cfg);
    char err[128];
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(core_ws_hub_adopt(hub, sv[1], "no/slash", NULL, 0, release_fd, NULL, err, sizeof err),
                 CORE_EINVAL);
    cr_assert_eq(core_ws_hub_adopt(hub, sv[1], "", NULL, 0, release_fd, NULL, err, sizeof err), CORE_EINVAL);
    cr_assert_eq(core_ws_hub_adopt(hub, sv[1], "ok", NULL, 0, release_fd, NULL, err, sizeof err), 0);
    int sv2[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
    cr_assert_eq(core_ws_hub_adopt(hub, sv2[1], "ok", NULL, 0, release_fd, NULL, err, sizeof err),
                 CORE_EFULL);
    cr_assert(strstr(err, "full") != NULL);
    close(sv2[0]);
    close(sv2[1]);
    close(sv[0]);
    wait_count(&ev.released, 1);
    /* The slot is free again once the first connection is gone. */
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
    cr_assert_eq(core_ws_hub_adopt(hub, sv2[1], "ok", NULL, 0, release_fd, NULL, err, sizeof err), 0);
    close(sv2[0]);
}

Test(ws_hub, config_is_validated)
{
    core_ws_config cfg = test_config();
    cfg.max_message = 0;
    char err[128];
    cr_assert_null(core_ws_hub_new(&cfg, err, sizeof err));
    cr_assert(strstr(err, "positive") != NULL);
}

/* The hub thread publishes its counters once per loop iteration: poll the rendering. */
static bool metrics_show(core_metrics *m, const char *line)
{
    for (int i = 0; i < 250; i++) {
        char *text = core_metrics_render(m, NULL);
        bool found = text && strstr(text, line);
        free(text);
        if (found)
            return true;
        usleep(20 * 1000);
    }
    return false;
}

Test(ws_hub, metrics_follow_connections_and_messages)
{
    core_ws_hub_free(hub);
    core_metrics *m = core_metrics_new();
    core_ws_config cfg = test_config();
    cfg.metrics = m;
    start_hub(&cfg);
    client a, b;
    client_open(&a, "r", NULL, 0);
    client_open(&b, "r", NULL, 0);
    wait_count(&ev.opened, 2);
    client_send(&a, true, 1, "hi", 2, true);
    expect_text(&b, "hi");
    cr_assert(metrics_show(m, "\nwebsocket_connections 2\n"));
    cr_assert(metrics_show(m, "\nwebsocket_rooms 1\n"));
    cr_assert(metrics_show(m, "\nwebsocket_connections_opened_total 2\n"));
    cr_assert(metrics_show(m, "\nwebsocket_messages_received_total 1\n"));
    cr_assert(metrics_show(m, "\nwebsocket_frames_sent_total 1\n"));
    close(a.fd);
    close(b.fd);
    wait_count(&ev.released, 2);
    cr_assert(metrics_show(m, "\nwebsocket_connections 0\n"));
    cr_assert(metrics_show(m, "\nwebsocket_rooms 0\n"));
    cr_assert(metrics_show(m, "\nwebsocket_connections_opened_total 2\n"), "a counter never goes down");
    core_ws_hub_free(hub);
    hub = NULL;
    core_metrics_free(m);
}
