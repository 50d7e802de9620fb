/* The WebSocket hub: every connection on one epoll thread, rooms, and a mutex-protected inbox
 * that other threads fill (adopt, broadcast, send, close) and an eventfd that wakes the hub.
 * The design (threads, ownership, bounds) is in core.h's WebSocket section. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "core/ws_codec.h"
#include "core/ws_session.h"

#define HUB_READ_BUF (64 * 1024)
#define HUB_READ_ROUNDS 4 /* reads per connection per wake-up, so one sender cannot starve others */
#define HUB_MAX_EVENTS 256
#define HUB_TICK_MS 1000 /* longest epoll wait: a bound on how late a timer can fire */
#define HUB_IOV 16

/* Encoded frame bytes, shared by every connection queue that holds them. Reference counts
 * are touched on the hub thread only. */
typedef struct ws_frame {
    uint32_t refs;
    size_t len;
    uint8_t data[];
} ws_frame;

typedef struct ws_out {
    struct ws_out *next;
    ws_frame *frame;
} ws_out;

typedef struct ws_room ws_room;
typedef struct ws_conn ws_conn;

/* Timer lists; a connection is on exactly one, ordered by t_at since every entry on a list
 * waits the same duration. */
enum { TL_LIVE, TL_PING, TL_CLOSING, TL_COUNT };

typedef struct ws_list {
    ws_conn *head, *tail;
} ws_list;

struct ws_conn {
    core_ws_hub *hub;
    uint64_t id;
    int fd;
    bool dead;      /* released; memory freed at the end of the loop iteration */
    bool epollout;  /* EPOLLOUT is armed */
    bool wr_shut;   /* shutdown(SHUT_WR) done after an error close */
    uint8_t t_list; /* TL_* */
    uint16_t code;  /* close code reported to on_close when not from the session */
    int64_t t_at;   /* when the connection entered its timer list (ms) */
    ws_conn *t_prev, *t_next;
    ws_room *room;
    ws_conn *r_prev, *r_next;
    ws_out *out_head, *out_tail;
    size_t out_off;   /* bytes of out_head already written */
    size_t out_bytes; /* unwritten bytes queued */
    core_ws_release_fn release;
    void *release_arg;
    ws_conn *grave_next;
    ws_session sess;
};

struct ws_room {
    ws_room *next; /* hash chain */
    ws_conn *members;
    size_t count;
    char name[CORE_WS_ROOM_MAX + 1];
};

enum { CMD_ADOPT, CMD_BROADCAST, CMD_SEND, CMD_CLOSE };

typedef struct ws_cmd {
    struct ws_cmd *next;
    int kind;
    size_t cost; /* bytes charged to the inbox */
    uint64_t id; /* SEND/CLOSE: target; BROADCAST: the one left out */
    int fd;
    core_ws_release_fn release;
    void *release_arg;
    unsigned code;
    ws_frame *frame;
    char room[CORE_WS_ROOM_MAX + 1];
    size_t extra_len;
    uint8_t extra[]; /* ADOPT: bytes past the handshake; CLOSE: the reason (NUL-terminated) */
} ws_cmd;

struct core_ws_hub {
    core_ws_config cfg;
    int epfd;
    int evfd;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t lock; /* guards the fields down to `stop_deadline` */
    ws_cmd *inbox_head, *inbox_tail;
    size_t inbox_bytes;
    bool accepting;
    bool stop_requested;
    int64_t stop_deadline;

    pthread_mutex_t shutdown_lock; /* serialises core_ws_hub_shutdown callers */
    bool shut_down;

    atomic_size_t reserved; /* adopted connections plus adopts waiting in the inbox */
    struct {
        core_metric *connections, *rooms, *parsers, *opened, *messages_in, *frames_out, *slow_dropped;
    } m; /* all NULL without cfg.metrics */
    struct {
        atomic_uint_least64_t connections, rooms, opened, messages_in, frames_out, slow_dropped, parsers;
    } stats;

    /* Hub thread only from here. */
    bool stopping;
    ws_conn **slots;
    uint32_t *gens;
    uint32_t *free_slots;
    uint32_t nslots, nfree, cap_slots;
    size_t nconns;
    ws_room **buckets;
    size_t nbuckets, nrooms;
    ws_list lists[TL_COUNT];
    ws_conn *grave;
    size_t parsers;
    uint64_t published[4]; /* opened, messages_in, frames_out, slow_dropped as last published */
    uint8_t rbuf[HUB_READ_BUF];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void core_ws_config_defaults(core_ws_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_connections = 100000;
    cfg->max_message = 1 << 20;
    cfg->max_send_queue = 4 << 20;
    cfg->max_inbox = 64 << 20;
    cfg->ping_interval_ms = 30000;
    cfg->pong_timeout_ms = 10000;
    cfg->close_timeout_ms = 2000;
}

/* ---- frames ---- */

static ws_frame *frame_new(unsigned opcode, const void *payload, size_t len)
{
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    size_t h = ws_frame_header(hdr, opcode, len);
    ws_frame *f = malloc(sizeof *f + h + len);
    if (!f)
        return NULL;
    f->refs = 1;
    f->len = h + len;
    memcpy(f->data, hdr, h);
    if (len)
        memcpy(f->data + h, payload, len);
    return f;
}

static ws_frame *frame_raw(const uint8_t *bytes, size_t len)
{
    ws_frame *f = malloc(sizeof *f + len);
    if (!f)
        return NULL;
    f->refs = 1;
    f->len = len;
    memcpy(f->data, bytes, len);
    return f;
}

static void frame_unref(ws_frame *f)
{
    if (f && --f->refs == 0)
        free(f);
}

/* ---- timer lists ---- */

static void list_remove(core_ws_hub *hub, ws_conn *c)
{
    ws_list *l = &hub->lists[c->t_list];
    if (c->t_prev)
        c->t_prev->t_next = c->t_next;
    else
        l->head = c->t_next;
    if (c->t_next)
        c->t_next->t_prev = c->t_prev;
    else
        l->tail = c->t_prev;
    c->t_prev = c->t_next = NULL;
}

static void list_append(core_ws_hub *hub, ws_conn *c, int which, int64_t now)
{
    ws_list *l = &hub->lists[which];
    c->t_list = (uint8_t)which;
    c->t_at = now;
    c->t_prev = l->tail;
    c->t_next = NULL;
    if (l->tail)
        l->tail->t_next = c;
    else
        l->head = c;
    l->tail = c;
}

static void list_move(core_ws_hub *hub, ws_conn *c, int which, int64_t now)
{
    list_remove(hub, c);
    list_append(hub, c, which, now);
}

/* ---- rooms ---- */

static size_t room_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (size_t)h;
}

static ws_room *room_find(core_ws_hub *hub, const char *name)
{
    for (ws_room *r = hub->buckets[room_hash(name) & (hub->nbuckets - 1)]; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

static void rooms_grow(core_ws_hub *hub)
{
    size_t n = hub->nbuckets * 2;
    ws_room **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < hub->nbuckets; i++) {
        ws_room *r = hub->buckets[i];
        while (r) {
            ws_room *next = r->next;
            size_t k = room_hash(r->name) & (n - 1);
            r->next = b[k];
            b[k] = r;
            r = next;
        }
    }
    free(hub->buckets);
    hub->buckets = b;
    hub->nbuckets = n;
}

static int room_join(core_ws_hub *hub, ws_conn *c, const char *name)
{
    ws_room *r = room_find(hub, name);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return CORE_ENOMEM;
        snprintf(r->name, sizeof r->name, "%s", name);
        if (hub->nrooms >= hub->nbuckets)
            rooms_grow(hub);
        size_t k = room_hash(name) & (hub->nbuckets - 1);
        r->next = hub->buckets[k];
        hub->buckets[k] = r;
        hub->nrooms++;
        atomic_store_explicit(&hub->stats.rooms, hub->nrooms, memory_order_relaxed);
    }
    c->room = r;
    c->r_prev = NULL;
    c->r_next = r->members;
    if (r->members)
        r->members->r_prev = c;
    r->members = c;
    r->count++;
    return 0;
}

static void room_leave(core_ws_hub *hub, ws_conn *c)
{
    ws_room *r = c->room;
    if (!r)
        return;
    if (c->r_prev)
        c->r_prev->r_next = c->r_next;
    else
        r->members = c->r_next;
    if (c->r_next)
        c->r_next->r_prev = c->r_prev;
    c->room = NULL;
    if (--r->count > 0)
        return;
    ws_room **pp = &hub->buckets[room_hash(r->name) & (hub->nbuckets - 1)];
    while (*pp != r)
        pp = &(*pp)->next;
    *pp = r->next;
    free(r);
    hub->nrooms--;
    atomic_store_explicit(&hub->stats.rooms, hub->nrooms, memory_order_relaxed);
}

/* ---- connection slots: id = generation << 32 | slot, so ids are not reused ---- */

static int slot_alloc(core_ws_hub *hub, ws_conn *c)
{
    if (hub->nfree == 0) {
        if (hub->nslots == hub->cap_slots) {
            uint32_t n = hub->cap_slots ? hub->cap_slots * 2 : 1024;
            ws_conn **s = realloc(hub->slots, n * sizeof *s);
            if (!s)
                return CORE_ENOMEM;
            hub->slots = s;
            uint32_t *g = realloc(hub->gens, n * sizeof *g);
            if (!g)
                return CORE_ENOMEM;
            hub->gens = g;
            uint32_t *f = realloc(hub->free_slots, n * sizeof *f);
            if (!f)
                return CORE_ENOMEM;
            hub->free_slots = f;
            hub->cap_slots = n;
        }
        hub->gens[hub->nslots] = 0;
        hub->free_slots[hub->nfree++] = hub->nslots++;
    }
    uint32_t slot = hub->free_slots[--hub->nfree];
    hub->gens[slot]++;
    hub->slots[slot] = c;
    c->id = (uint64_t)hub->gens[slot] << 32 | slot;
    return 0;
}

static void slot_free(core_ws_hub *hub, ws_conn *c)
{
    uint32_t slot = (uint32_t)c->id;
    hub->slots[slot] = NULL;
    hub->free_slots[hub->nfree++] = slot;
}

static ws_conn *conn_lookup(core_ws_hub *hub, uint64_t id)
{
    uint32_t slot = (uint32_t)id;
    if (slot >= hub->nslots || !hub->slots[slot] || hub->gens[slot] != (uint32_t)(id >> 32))
        return NULL;
    return hub->slots[slot];
}

/* ---- connection lifetime ---- */

static unsigned conn_close_code(const ws_conn *c)
{
    if (c->code)
        return c->code;
    if (c->sess.close_received)
        return c->sess.code_received;
    if (c->sess.close_sent)
        return c->sess.code_sent;
    return 1006;
}

/* Takes the connection out of everything and hands the fd back; the memory is freed at the end
 * of the loop iteration, since events or a parser further up the stack may still point at it. */
static void conn_drop(ws_conn *c, unsigned code)
{
    if (c->dead)
        return;
    core_ws_hub *hub = c->hub;
    c->dead = true;
    if (code && !c->code)
        c->code = (uint16_t)code;
    epoll_ctl(hub->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    list_remove(hub, c);
    slot_free(hub, c);
    while (c->out_head) {
        ws_out *o = c->out_head;
        c->out_head = o->next;
        frame_unref(o->frame);
        free(o);
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
    hub->nconns--;
    atomic_fetch_sub(&hub->reserved, 1);
    atomic_store_explicit(&hub->stats.connections, hub->nconns, memory_order_relaxed);
    if (hub->cfg.cb.on_close)
        hub->cfg.cb.on_close(hub->cfg.ud, hub, c->id, c->room->name, conn_close_code(c));
    room_leave(hub, c);
    c->release(c->release_arg, c->fd);
    c->fd = -1;
    c->grave_next = hub->grave;
    hub->grave = c;
}

static void bury(core_ws_hub *hub)
{
    while (hub->grave) {
        ws_conn *c = hub->grave;
        hub->grave = c->grave_next;
        ws_session_release(&c->sess);
        free(c);
    }
}

static void conn_set_epollout(ws_conn *c, bool on)
{
    if (c->epollout == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(c->hub->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->epollout = on;
}

/* What to do once the send queue is empty, given where the close handshake stands. */
static void conn_after_flush(ws_conn *c)
{
    if (c->dead || c->out_head || !c->sess.close_sent)
        return;
    if (c->sess.close_received) {
        conn_drop(c, 0);
    } else if (c->sess.read_closed && !c->wr_shut) {
        /* After an error close the client may still be sending: closing now could reset the
         * connection before it reads our close frame, so half-close and wait for its EOF. */
        shutdown(c->fd, SHUT_WR);
        c->wr_shut = true;
    }
}

static void conn_flush(ws_conn *c)
{
    while (c->out_head) {
        struct iovec iov[HUB_IOV];
        int n = 0;
        size_t off = c->out_off;
        for (ws_out *o = c->out_head; o && n < HUB_IOV; o = o->next, n++) {
            iov[n].iov_base = o->frame->data + off;
            iov[n].iov_len = o->frame->len - off;
            off = 0;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_set_epollout(c, true);
                return;
            }
            conn_drop(c, 1006);
            return;
        }
        size_t left = (size_t)w;
        c->out_bytes -= left;
        while (left > 0) {
            ws_out *o = c->out_head;
            size_t rest = o->frame->len - c->out_off;
            if (left < rest) {
                c->out_off += left;
                break;
            }
            left -= rest;
            c->out_off = 0;
            c->out_head = o->next;
            frame_unref(o->frame);
            free(o);
        }
        if (!c->out_head)
            c->out_tail = NULL;
    }
    conn_set_epollout(c, false);
    conn_after_flush(c);
}

/* Queues f (borrowed; a reference is taken if it has to wait) and writes what the socket
 * takes now. Returns 0, or -1 when the connection was dropped. */
static int conn_queue(ws_conn *c, ws_frame *f)
{
    core_ws_hub *hub = c->hub;
    if (c->dead)
        return -1;
    if (c->out_bytes + f->len > hub->cfg.max_send_queue) {
        atomic_fetch_add_explicit(&hub->stats.slow_dropped, 1, memory_order_relaxed);
        conn_drop(c, 1008);
        return -1;
    }
    size_t done = 0;
    if (!c->out_head) {
        ssize_t w;
        do
            w = send(c->fd, f->data, f->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            conn_drop(c, 1006);
            return -1;
        }
        done = w > 0 ? (size_t)w : 0;
        if (done == f->len)
            return 0;
    }
    ws_out *o = malloc(sizeof *o);
    if (!o) {
        conn_drop(c, 1011);
        return -1;
    }
    o->next = NULL;
    o->frame = f;
    f->refs++;
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    if (done)
        c->out_off = done;
    c->out_bytes += f->len - done;
    conn_set_epollout(c, true);
    return 0;
}

/* ws_session's write: control frames (pongs, close frames) from the parser. */
static int session_write(void *ud, const uint8_t *data, size_t len)
{
    ws_conn *c = ud;
    ws_frame *f = frame_raw(data, len);
    if (!f) {
        conn_drop(c, 1011);
        return -1;
    }
    int rc = conn_queue(c, f);
    frame_unref(f);
    return rc;
}

static void broadcast_frame(core_ws_hub *hub, ws_room *r, ws_frame *f, uint64_t except)
{
    ws_conn *c = r->members;
    while (c) {
        /* Saved first: queueing may drop c (slow consumer), which unlinks it from the room. */
        ws_conn *next = c->r_next;
        if (c->id != except && !c->sess.close_sent && conn_queue(c, f) == 0)
            atomic_fetch_add_explicit(&hub->stats.frames_out, 1, memory_order_relaxed);
        c = next;
    }
}

static void session_message(void *ud, unsigned opcode, const uint8_t *data, size_t len)
{
    ws_conn *c = ud;
    core_ws_hub *hub = c->hub;
    atomic_fetch_add_explicit(&hub->stats.messages_in, 1, memory_order_relaxed);
    if (hub->cfg.cb.on_message)
        hub->cfg.cb.on_message(hub->cfg.ud, hub, c->id, c->room->name, (int)opcode, data, len);
    if (hub->cfg.relay && !c->dead && c->room->count > 1) {
        ws_frame *f = frame_new(opcode, data, len);
        if (f) {
            broadcast_frame(hub, c->room, f, c->id);
            frame_unref(f);
        }
    }
}

static const ws_session_ops conn_session_ops = {
    .write = session_write,
    .message = session_message,
};

/* Starts our side of the close handshake; the connection waits on TL_CLOSING. */
static void conn_start_close(ws_conn *c, unsigned code, const char *reason, int64_t now)
{
    if (c->dead || c->sess.close_sent)
        return;
    if (ws_session_close(&c->sess, (uint16_t)code, reason) != 0 || c->dead)
        return;
    list_move(c->hub, c, TL_CLOSING, now);
    if (!c->out_head)
        conn_after_flush(c);
}

static void conn_input(ws_conn *c, const uint8_t *data, size_t len, int64_t now)
{
    if (c->t_list != TL_CLOSING)
        list_move(c->hub, c, TL_LIVE, now);
    bool was_closing = c->sess.close_sent;
    int rc = ws_session_feed(&c->sess, data, len);
    if (c->dead)
        return;
    if (rc != 0) {
        conn_drop(c, 1011);
        return;
    }
    if (c->sess.close_sent && !was_closing)
        list_move(c->hub, c, TL_CLOSING, now);
    if (!c->out_head)
        conn_after_flush(c);
}

static void conn_read(ws_conn *c, int64_t now)
{
    core_ws_hub *hub = c->hub;
    for (int round = 0; round < HUB_READ_ROUNDS && !c->dead; round++) {
        ssize_t n = recv(c->fd, hub->rbuf, sizeof hub->rbuf, 0);
        if (n > 0) {
            conn_input(c, hub->rbuf, (size_t)n, now);
            if ((size_t)n < sizeof hub->rbuf)
                return;
        } else if (n == 0) {
            conn_drop(c, 0);
            return;
        } else if (errno == EINTR) {
            round--;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else {
            conn_drop(c, 1006);
            return;
        }
    }
}

static void hub_adopt(core_ws_hub *hub, ws_cmd *cmd, int64_t now)
{
    ws_conn *c = calloc(1, sizeof *c);
    if (!c)
        goto fail;
    c->hub = hub;
    c->fd = cmd->fd;
    c->release = cmd->release;
    c->release_arg = cmd->release_arg;
    ws_session_init(&c->sess, &conn_session_ops, c, hub->cfg.max_message);
    c->sess.parsers = &hub->parsers;
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        goto fail;
    if (slot_alloc(hub, c) != 0)
        goto fail;
    if (room_join(hub, c, cmd->room) != 0) {
        slot_free(hub, c);
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(hub->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        room_leave(hub, c);
        slot_free(hub, c);
        goto fail;
    }
    list_append(hub, c, TL_LIVE, now);
    hub->nconns++;
    atomic_store_explicit(&hub->stats.connections, hub->nconns, memory_order_relaxed);
    atomic_fetch_add_explicit(&hub->stats.opened, 1, memory_order_relaxed);
    if (hub->cfg.cb.on_open)
        hub->cfg.cb.on_open(hub->cfg.ud, hub, c->id, c->room->name);
    if (cmd->extra_len && !c->dead)
        conn_input(c, cmd->extra, cmd->extra_len, now);
    if (hub->stopping && !c->dead)
        conn_start_close(c, 1001, "server shutting down", now);
    return;
fail:
    free(c);
    cmd->release(cmd->release_arg, cmd->fd);
    atomic_fetch_sub(&hub->reserved, 1);
}

static void cmd_free(ws_cmd *cmd)
{
    frame_unref(cmd->frame);
    free(cmd);
}

static void hub_run_cmd(core_ws_hub *hub, ws_cmd *cmd, int64_t now)
{
    ws_conn *c;
    ws_room *r;
    switch (cmd->kind) {
    case CMD_ADOPT:
        hub_adopt(hub, cmd, now);
        break;
    case CMD_BROADCAST:
        r = room_find(hub, cmd->room);
        if (r)
            broadcast_frame(hub, r, cmd->frame, cmd->id);
        break;
    case CMD_SEND:
        c = conn_lookup(hub, cmd->id);
        if (c && !c->sess.close_sent && conn_queue(c, cmd->frame) == 0)
            atomic_fetch_add_explicit(&hub->stats.frames_out, 1, memory_order_relaxed);
        break;
    case CMD_CLOSE:
        c = conn_lookup(hub, cmd->id);
        if (c)
            conn_start_close(c, cmd->code, (const char *)cmd->extra, now);
        break;
    }
    cmd_free(cmd);
}

static void hub_drain_inbox(core_ws_hub *hub, int64_t now)
{
    uint64_t v;
    while (read(hub->evfd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&hub->lock);
    ws_cmd *cmd = hub->inbox_head;
    hub->inbox_head = hub->inbox_tail = NULL;
    hub->inbox_bytes = 0;
    bool stop = hub->stop_requested && !hub->stopping;
    pthread_mutex_unlock(&hub->lock);
    while (cmd) {
        ws_cmd *next = cmd->next;
        hub_run_cmd(hub, cmd, now);
        cmd = next;
    }
    if (stop) {
        hub->stopping = true;
        for (uint32_t i = 0; i < hub->nslots; i++)
            if (hub->slots[i])
                conn_start_close(hub->slots[i], 1001, "server shutting down", now);
    }
}

static void hub_run_timers(core_ws_hub *hub, int64_t now)
{
    static const uint8_t ping_payload[] = "hub";
    ws_list *live = &hub->lists[TL_LIVE];
    if (hub->cfg.ping_interval_ms > 0) {
        while (live->head && now - live->head->t_at >= hub->cfg.ping_interval_ms) {
            ws_conn *c = live->head;
            list_move(hub, c, TL_PING, now);
            if (ws_session_ping(&c->sess, ping_payload, sizeof ping_payload - 1) != 0 && !c->dead)
                conn_drop(c, 1006);
        }
        ws_list *ping = &hub->lists[TL_PING];
        while (ping->head && now - ping->head->t_at >= hub->cfg.pong_timeout_ms)
            conn_drop(ping->head, 1006);
    }
    ws_list *closing = &hub->lists[TL_CLOSING];
    while (closing->head && now - closing->head->t_at >= hub->cfg.close_timeout_ms)
        conn_drop(closing->head, 0);
}

static int hub_wait_ms(core_ws_hub *hub, int64_t now)
{
    int64_t due = now + HUB_TICK_MS;
    if (hub->cfg.ping_interval_ms > 0) {
        if (hub->lists[TL_LIVE].head && hub->lists[TL_LIVE].head->t_at + hub->cfg.ping_interval_ms < due)
            due = hub->lists[TL_LIVE].head->t_at + hub->cfg.ping_interval_ms;
        if (hub->lists[TL_PING].head && hub->lists[TL_PING].head->t_at + hub->cfg.pong_timeout_ms < due)
            due = hub->lists[TL_PING].head->t_at + hub->cfg.pong_timeout_ms;
    }
    if (hub->lists[TL_CLOSING].head && hub->lists[TL_CLOSING].head->t_at + hub->cfg.close_timeout_ms < due)
        due = hub->lists[TL_CLOSING].head->t_at + hub->cfg.close_timeout_ms;
    if (hub->stopping && hub->stop_deadline < due)
        due = hub->stop_deadline;
    return due <= now ? 0 : (int)(due - now);
}

/* Copies the counters into the metrics registry (hub thread, once per loop iteration). */
static void hub_publish(core_ws_hub *hub)
{
    if (!hub->m.connections)
        return;
    core_metric_set(hub->m.connections, (double)hub->nconns);
    core_metric_set(hub->m.rooms, (double)hub->nrooms);
    core_metric_set(hub->m.parsers, (double)hub->parsers);
    core_metric *counters[4] = {hub->m.opened, hub->m.messages_in, hub->m.frames_out, hub->m.slow_dropped};
    atomic_uint_least64_t *now[4] = {&hub->stats.opened, &hub->stats.messages_in, &hub->stats.frames_out,
                                     &hub->stats.slow_dropped};
    for (int i = 0; i < 4; i++) {
        uint64_t v = atomic_load_explicit(now[i], memory_order_relaxed);
        if (v != hub->published[i])
            core_metric_add(counters[i], (double)(v - hub->published[i]));
        hub->published[i] = v;
    }
}

static void *hub_main(void *arg)
{
    core_ws_hub *hub = arg;
    struct epoll_event evs[HUB_MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(hub->epfd, evs, HUB_MAX_EVENTS, hub_wait_ms(hub, now_ms()));
        int64_t now = now_ms();
        bool wake = false;
        for (int i = 0; i < n; i++) {
            ws_conn *c = evs[i].data.ptr;
            if (!c) {
                wake = true;
                continue;
            }
            if (c->dead)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(c, now);
            if (!c->dead && (evs[i].events & EPOLLOUT))
                conn_flush(c);
        }
        if (wake)
            hub_drain_inbox(hub, now);
        hub_run_timers(hub, now);
        atomic_store_explicit(&hub->stats.parsers, hub->parsers, memory_order_relaxed);
        hub_publish(hub);
        if (hub->stopping && (hub->nconns == 0 || now >= hub->stop_deadline)) {
            for (uint32_t i = 0; i < hub->nslots; i++)
                if (hub->slots[i])
                    conn_drop(hub->slots[i], 1001);
            bury(hub);
            break;
        }
        bury(hub);
    }
    atomic_store_explicit(&hub->stats.parsers, hub->parsers, memory_order_relaxed);
    hub_publish(hub);
    return NULL;
}

/* ---- public API ---- */

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int register_metrics(core_ws_hub *hub, core_metrics *m, char *err, size_t errlen)
{
    hub->m.connections = core_metrics_gauge(m, "websocket_connections", "WebSocket connections open");
    hub->m.rooms = core_metrics_gauge(m, "websocket_rooms", "WebSocket rooms with at least one member");
    hub->m.parsers = core_metrics_gauge(m, "websocket_parsers",
                                        "WebSocket connections holding a frame parser (mid-frame)");
    hub->m.opened =
        core_metrics_counter(m, "websocket_connections_opened_total", "WebSocket connections adopted");
    hub->m.messages_in =
        core_metrics_counter(m, "websocket_messages_received_total", "WebSocket data messages received");
    hub->m.frames_out =
        core_metrics_counter(m, "websocket_frames_sent_total", "WebSocket data frames queued to clients");
    hub->m.slow_dropped = core_metrics_counter(m, "websocket_slow_consumers_dropped_total",
                                               "WebSocket connections dropped for a full send queue");
    if (!hub->m.connections || !hub->m.rooms || !hub->m.parsers || !hub->m.opened || !hub->m.messages_in ||
        !hub->m.frames_out || !hub->m.slow_dropped) {
        memset(&hub->m, 0, sizeof hub->m);
        snprintf(err, errlen, "websocket hub: cannot register its metrics (name clash)");
        return CORE_EINVAL;
    }
    return 0;
}

core_ws_hub *core_ws_hub_new(const core_ws_config *cfg, char *err, size_t errlen)
{
    if (cfg->max_connections == 0 || cfg->max_message == 0 || cfg->max_send_queue == 0 ||
        cfg->max_inbox == 0 || cfg->ping_interval_ms < 0 || cfg->pong_timeout_ms < 0 ||
        cfg->close_timeout_ms < 0 || cfg->max_connections > UINT32_MAX) {
        snprintf(err, errlen, "websocket hub: limits must be positive");
        return NULL;
    }
    core_ws_hub *hub = calloc(1, sizeof *hub);
    if (!hub) {
        snprintf(err, errlen, "websocket hub: out of memory");
        return NULL;
    }
    hub->cfg = *cfg;
    hub->epfd = hub->evfd = -1;
    hub->accepting = true;
    pthread_mutex_init(&hub->lock, NULL);
    pthread_mutex_init(&hub->shutdown_lock, NULL);
    hub->nbuckets = 64;
    hub->buckets = calloc(hub->nbuckets, sizeof *hub->buckets);
    if (!hub->buckets) {
        snprintf(err, errlen, "websocket hub: out of memory");
        goto fail;
    }
    hub->epfd = epoll_create1(EPOLL_CLOEXEC);
    hub->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (hub->epfd < 0 || hub->evfd < 0) {
        snprintf(err, errlen, "websocket hub: epoll/eventfd: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(hub->epfd, EPOLL_CTL_ADD, hub->evfd, &ev) != 0) {
        snprintf(err, errlen, "websocket hub: epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    if (cfg->metrics && register_metrics(hub, cfg->metrics, err, errlen) != 0)
        goto fail;
    raise_nofile();
    /* The hub thread takes no signals: they belong to whoever waits for SIGTERM. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&hub->thread, NULL, hub_main, hub);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "websocket hub: pthread_create: %s", strerror(rc));
        goto fail;
    }
    hub->thread_started = true;
    return hub;
fail:
    if (hub->epfd >= 0)
        close(hub->epfd);
    if (hub->evfd >= 0)
        close(hub->evfd);
    free(hub->buckets);
    pthread_mutex_destroy(&hub->lock);
    pthread_mutex_destroy(&hub->shutdown_lock);
    free(hub);
    return NULL;
}

/* Appends cmd to the inbox; on failure the caller still owns cmd. */
static int hub_post(core_ws_hub *hub, ws_cmd *cmd)
{
    pthread_mutex_lock(&hub->lock);
    if (!hub->accepting) {
        pthread_mutex_unlock(&hub->lock);
        return CORE_ESTATE;
    }
    if (hub->inbox_bytes + cmd->cost > hub->cfg.max_inbox) {
        pthread_mutex_unlock(&hub->lock);
        return CORE_EFULL;
    }
    bool was_empty = hub->inbox_head == NULL;
    cmd->next = NULL;
    if (hub->inbox_tail)
        hub->inbox_tail->next = cmd;
    else
        hub->inbox_head = cmd;
    hub->inbox_tail = cmd;
    hub->inbox_bytes += cmd->cost;
    pthread_mutex_unlock(&hub->lock);
    if (was_empty) {
        uint64_t one = 1;
        while (write(hub->evfd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
    return 0;
}

int core_ws_hub_adopt(core_ws_hub *hub, int fd, const char *room, const void *extra, size_t extra_len,
                      core_ws_release_fn release, void *release_arg, char *err, size_t errlen)
{
    if (fd < 0 || !release || !room || !core_ws_room_valid(room)) {
        snprintf(err, errlen, "websocket: bad room name or fd");
        return CORE_EINVAL;
    }
    if (extra_len > hub->cfg.max_message + 14) {
        snprintf(err, errlen, "websocket: early data too large");
        return CORE_ETOOLARGE;
    }
    if (atomic_fetch_add(&hub->reserved, 1) >= hub->cfg.max_connections) {
        atomic_fetch_sub(&hub->reserved, 1);
        snprintf(err, errlen, "websocket: hub full (%zu connections)", hub->cfg.max_connections);
        return CORE_EFULL;
    }
    ws_cmd *cmd = calloc(1, sizeof *cmd + extra_len + 1);
    if (!cmd) {
        atomic_fetch_sub(&hub->reserved, 1);
        snprintf(err, errlen, "websocket: out of memory");
        return CORE_ENOMEM;
    }
    cmd->kind = CMD_ADOPT;
    cmd->cost = sizeof *cmd + extra_len;
    cmd->fd = fd;
    cmd->release = release;
    cmd->release_arg = release_arg;
    snprintf(cmd->room, sizeof cmd->room, "%s", room);
    if (extra_len)
        memcpy(cmd->extra, extra, extra_len);
    cmd->extra_len = extra_len;
    int rc = hub_post(hub, cmd);
    if (rc != 0) {
        free(cmd);
        atomic_fetch_sub(&hub->reserved, 1);
        snprintf(err, errlen,
                 rc == CORE_EFULL ? "websocket: hub inbox full" : "websocket: hub is shutting down");
    }
    return rc;
}

static int post_message(core_ws_hub *hub, int kind, const char *room, uint64_t id, int opcode,
                        const void *data, size_t len)
{
    if (opcode != CORE_WS_TEXT && opcode != CORE_WS_BINARY)
        return CORE_EINVAL;
    if (room && !core_ws_room_valid(room))
        return CORE_EINVAL;
    if (len + WS_FRAME_HEADER_MAX > hub->cfg.max_send_queue)
        return CORE_ETOOLARGE;
    ws_cmd *cmd = calloc(1, sizeof *cmd);
    if (!cmd)
        return CORE_ENOMEM;
    cmd->frame = frame_new((unsigned)opcode, data, len);
    if (!cmd->frame) {
        free(cmd);
        return CORE_ENOMEM;
    }
    cmd->kind = kind;
    cmd->id = id;
    cmd->cost = sizeof *cmd + cmd->frame->len;
    if (room)
        snprintf(cmd->room, sizeof cmd->room, "%s", room);
    int rc = hub_post(hub, cmd);
    if (rc != 0)
        cmd_free(cmd);
    return rc;
}

int core_ws_hub_broadcast(core_ws_hub *hub, const char *room, int opcode, const void *data, size_t len,
                          uint64_t except)
{
    if (!room)
        return CORE_EINVAL;
    return post_message(hub, CMD_BROADCAST, room, except, opcode, data, len);
}

int core_ws_hub_send(core_ws_hub *hub, uint64_t id, int opcode, const void *data, size_t len)
{
    return post_message(hub, CMD_SEND, NULL, id, opcode, data, len);
}

int core_ws_hub_close_conn(core_ws_hub *hub, uint64_t id, unsigned code, const char *reason)
{
    size_t rlen = reason ? strlen(reason) : 0;
    if (code < 1000 || code > 4999 || rlen > 123)
        return CORE_EINVAL;
    ws_cmd *cmd = calloc(1, sizeof *cmd + rlen + 1);
    if (!cmd)
        return CORE_ENOMEM;
    cmd->kind = CMD_CLOSE;
    cmd->id = id;
    cmd->code = code;
    cmd->cost = sizeof *cmd + rlen;
    if (rlen)
        memcpy(cmd->extra, reason, rlen);
    int rc = hub_post(hub, cmd);
    if (rc != 0)
        free(cmd);
    return rc;
}

void core_ws_hub_shutdown(core_ws_hub *hub, int timeout_ms)
{
    pthread_mutex_lock(&hub->shutdown_lock);
    if (hub->shut_down) {
        pthread_mutex_unlock(&hub->shutdown_lock);
        return;
    }
    pthread_mutex_lock(&hub->lock);
    hub->accepting = false;
    hub->stop_requested = true;
    hub->stop_deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_unlock(&hub->lock);
    uint64_t one = 1;
    while (write(hub->evfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    if (hub->thread_started)
        pthread_join(hub->thread, NULL);
    /* Commands posted before `accepting` went false but after the thread's last drain. */
    ws_cmd *cmd = hub->inbox_head;
    hub->inbox_head = hub->inbox_tail = NULL;
    while (cmd) {
        ws_cmd *next = cmd->next;
        if (cmd->kind == CMD_ADOPT) {
            cmd->release(cmd->release_arg, cmd->fd);
            atomic_fetch_sub(&hub->reserved, 1);
        }
        cmd_free(cmd);
        cmd = next;
    }
    hub->shut_down = true;
    pthread_mutex_unlock(&hub->shutdown_lock);
}

void core_ws_hub_shutdown_hook(void *ud)
{
    core_ws_hub *hub = ud;
    core_ws_hub_shutdown(hub, hub->cfg.close_timeout_ms);
}

void core_ws_hub_free(core_ws_hub *hub)
{
    if (!hub)
        return;
    core_ws_hub_shutdown(hub, 0);
    close(hub->epfd);
    close(hub->evfd);
    free(hub->slots);
    free(hub->gens);
    free(hub->free_slots);
    free(hub->buckets);
    pthread_mutex_destroy(&hub->lock);
    pthread_mutex_destroy(&hub->shutdown_lock);
    free(hub);
}

void core_ws_hub_stats(core_ws_hub *hub, core_ws_stats *out)
{
    out->connections = atomic_load_explicit(&hub->stats.connections, memory_order_relaxed);
    out->rooms = atomic_load_explicit(&hub->stats.rooms, memory_order_relaxed);
    out->opened = atomic_load_explicit(&hub->stats.opened, memory_order_relaxed);
    out->messages_in = atomic_load_explicit(&hub->stats.messages_in, memory_order_relaxed);
    out->frames_out = atomic_load_explicit(&hub->stats.frames_out, memory_order_relaxed);
    out->slow_dropped = atomic_load_explicit(&hub->stats.slow_dropped, memory_order_relaxed);
    out->parsers = atomic_load_explicit(&hub->stats.parsers, memory_order_relaxed);
}
