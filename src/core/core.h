/* core: the shared C runtime under lookalike, blogd and meterd. */
#ifndef CORE_CORE_H
#define CORE_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Error codes (negative). */
enum {
    CORE_EINVAL = -1,    /* bad argument or malformed input */
    CORE_ENOMEM = -2,    /* allocation failed */
    CORE_ETOOLARGE = -3, /* a size cap was hit */
    CORE_EIO = -4,       /* a system call failed */
    CORE_EFULL = -5,     /* a bounded queue is full */
    CORE_ENOTFOUND = -6, /* no such thing */
    CORE_ESTATE = -7,    /* called at the wrong time (e.g. answering twice) */
};

/* ---- WebSocket ----
 * RFC 6455 server side: the handshake (core_ws_handshake_check, core_ws_accept_key), framing
 * through Debian's wslay, and a hub that keeps every WebSocket connection of the process on
 * ONE epoll thread and broadcasts to named rooms.
 *
 * Handshake. core_ws_handshake_check() validates `Upgrade: websocket`, a `Connection` list
 * holding `upgrade`, `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key` that is base64 of
 * 16 bytes, and computes `Sec-WebSocket-Accept` = base64(SHA-1(key +
 * 258EAFA5-E914-47DA-95CA-C5AB0DC85B11)). SHA-1 and base64 are our own (ws_handshake.c),
 * tested against the RFC 3174 / RFC 4648 / RFC 6455 vectors.
 *
 * Framing. Frames from a client must be masked (else close 1002); reserved bits, unknown
 * opcodes, fragmented or oversize (>125) control frames close with 1002; text that is not
 * UTF-8 closes with 1007 (checked across fragments); a message past max_message bytes
 * (fragments summed) closes with 1009 before its payload is buffered. Pings are answered
 * with pongs, also between the fragments of a message. A close frame is echoed with its code
 * and the TCP connection is closed once the echo is written. Frames we send are unmasked,
 * one frame per message; a broadcast is encoded once and the same bytes are queued on every
 * connection of the room (reference counted, never copied per connection).
 *
 * Memory per connection. An idle connection costs one small struct (~200 bytes) plus its
 * slot. wslay's parser state (about 8.8 KiB) is allocated when bytes arrive and freed again
 * as soon as the input ends on a frame boundary outside a fragmented message, so 10,000 idle
 * connections hold no parser. The read buffer (64 KiB) is the hub's, shared by all.
 *
 * Bounds. Per connection: max_message (inbound message), max_send_queue (bytes queued for a
 * client that does not read: past it the connection is dropped, on_close sees 1008);
 * per hub: max_connections, max_inbox (bytes of broadcasts/sends waiting for the hub thread:
 * past it core_ws_hub_broadcast returns CORE_EFULL). Rooms: names of 1..CORE_WS_ROOM_MAX
 * bytes from [A-Za-z0-9._~-]; a room exists while it has members.
 *
 * Liveness. A connection silent for ping_interval_ms gets a ping; if nothing (a pong or any
 * frame) arrives within pong_timeout_ms it is dropped (on_close sees 1006). A close we start
 * waits close_timeout_ms for the client's echo, then the TCP connection is closed anyway.
 *
 * Threads. The hub thread owns every connection, room and wslay context; nothing else
 * touches them. core_ws_hub_adopt, _broadcast, _send, _close_conn and _shutdown may be called
 * from any thread (including from inside a callback): they copy what they are given into a
 * mutex-protected inbox and wake the hub thread through an eventfd. Callbacks run on the hub
 * thread, one at a time, and must not block.
 *
 * Ownership. The hub owns a connection from core_ws_hub_adopt until it calls the release
 * function given there, exactly once, on the hub thread, after the fd is out of its epoll set
 * (the MHD glue closes the upgrade there; a plain owner close()s the fd). Callback arguments
 * (room, data) are borrowed for the duration of the call. The hub's creator frees it with
 * core_ws_hub_free after core_ws_hub_shutdown.
 *
 * Shutdown. core_ws_hub_shutdown stops adopting, sends close 1001 to every connection, waits
 * up to its timeout for the clients' echoes, then releases whatever is left and joins the
 * thread; it is bounded by the timeout plus one epoll tick.
 *
 * Process limits. core_ws_hub_new raises RLIMIT_NOFILE's soft limit to the hard limit, since
 * a hub exists to hold many sockets. */
#define CORE_WS_ROOM_MAX 64
#define CORE_WS_ACCEPT_LEN 28 /* base64 of a 20-byte SHA-1 */

typedef struct core_ws_hub core_ws_hub;

enum {
    CORE_WS_TEXT = 1,   /* opcode of a UTF-8 text message */
    CORE_WS_BINARY = 2, /* opcode of a binary message */
};

/* Callbacks, all on the hub thread. id identifies the connection for _send/_close_conn; it is
 * never reused within a hub's life. room is the connection's room name. */
typedef struct core_ws_callbacks {
    void (*on_open)(void *ud, core_ws_hub *hub, uint64_t id, const char *room);
    /* A whole (reassembled) message; data is valid during the call only. */
    void (*on_message)(void *ud, core_ws_hub *hub, uint64_t id, const char *room, int opcode,
                       const void *data, size_t len);
    /* code: the close code received or sent (1000..4999), 1006 when the connection died without
     * a close handshake, 1008 when it was dropped as a slow consumer. */
    void (*on_close)(void *ud, core_ws_hub *hub, uint64_t id, const char *room, unsigned code);
} core_ws_callbacks;

typedef struct core_ws_config {
    size_t max_connections; /* adopted connections at once (default 100000) */
    size_t max_message;     /* largest inbound message in bytes, fragments summed (default 1 MiB) */
    size_t max_send_queue;  /* bytes queued for one connection before it is dropped (default 4 MiB) */
    size_t max_inbox;       /* bytes of commands waiting for the hub thread (default 64 MiB) */
    int ping_interval_ms;   /* silence before a ping; 0 = no pings (default 30000) */
    int pong_timeout_ms;    /* wait for any frame after a ping (default 10000) */
    int close_timeout_ms;   /* wait for the client's close echo (default 2000) */
    core_ws_callbacks cb;   /* any member may be NULL */
    void *ud;               /* passed to every callback */
    bool relay;             /* also broadcast each received message to the rest of its room */
} core_ws_config;

/* Fills cfg with the defaults above (no callbacks, relay off). */
void core_ws_config_defaults(core_ws_config *cfg);

/* Starts the hub thread. cfg is copied. NULL on failure with a message in err. */
core_ws_hub *core_ws_hub_new(const core_ws_config *cfg, char *err, size_t errlen);
/* Closes every connection with 1001, waits up to timeout_ms for the echoes, releases all
 * connections, joins the thread. Later adopts fail with CORE_ESTATE. Idempotent. */
void core_ws_hub_shutdown(core_ws_hub *hub, int timeout_ms);
/* Shuts down (timeout 0 if not done yet) and frees. NULL is fine. */
void core_ws_hub_free(core_ws_hub *hub);

/* Called when the hub is done with an adopted fd (hub thread, exactly once). */
typedef void (*core_ws_release_fn)(void *arg, int fd);
/* Hands an upgraded socket to the hub: it joins `room` and its first input is `extra` (bytes
 * read past the handshake, copied). On failure (bad room, hub full or shut down, inbox full)
 * returns a negative code and does NOT call release: the caller still owns fd. */
int core_ws_hub_adopt(core_ws_hub *hub, int fd, const char *room, const void *extra, size_t extra_len,
                      core_ws_release_fn release, void *release_arg, char *err, size_t errlen);
/* Queues one message to every open connection in room except `except` (0 = none). The data is
 * copied. Returns 0, CORE_EINVAL (bad opcode or room name), CORE_ETOOLARGE (longer than
 * max_send_queue), CORE_EFULL (inbox full), CORE_ESTATE (shut down). A missing room is not an
 * error (nobody receives it). */
int core_ws_hub_broadcast(core_ws_hub *hub, const char *room, int opcode, const void *data, size_t len,
                          uint64_t except);
/* Queues one message to one connection; same returns as broadcast (an unknown id is ignored). */
int core_ws_hub_send(core_ws_hub *hub, uint64_t id, int opcode, const void *data, size_t len);
/* Starts the close handshake with code (1000..4999) and a reason of at most 123 bytes. */
int core_ws_hub_close_conn(core_ws_hub *hub, uint64_t id, unsigned code, const char *reason);

/* Counters, read from any thread (relaxed atomics). */
typedef struct core_ws_stats {
    uint64_t connections;  /* open now */
    uint64_t rooms;        /* existing now */
    uint64_t opened;       /* adopted since start */
    uint64_t messages_in;  /* data messages received */
    uint64_t frames_out;   /* data frames queued to connections */
    uint64_t slow_dropped; /* connections dropped for a full send queue */
    uint64_t parsers;      /* wslay contexts alive now (connections mid-frame) */
} core_ws_stats;
void core_ws_hub_stats(core_ws_hub *hub, core_ws_stats *out);

/* Sec-WebSocket-Accept for a client key: out receives CORE_WS_ACCEPT_LEN chars plus NUL. */
void core_ws_accept_key(const char *key, char out[CORE_WS_ACCEPT_LEN + 1]);
/* Checks the handshake headers (any may be NULL = absent). Returns 0 and fills accept, or
 * CORE_EINVAL with what is wrong in err; *version_bad is set when only the version is wrong
 * (the answer is then 426 with Sec-WebSocket-Version: 13). */
int core_ws_handshake_check(const char *upgrade, const char *connection, const char *version, const char *key,
                            char accept[CORE_WS_ACCEPT_LEN + 1], bool *version_bad, char *err, size_t errlen);
/* true if name is a valid room name. */
bool core_ws_room_valid(const char *name);
/* ---- end WebSocket ---- */

#endif
