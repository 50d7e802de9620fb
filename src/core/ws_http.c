/* The WebSocket handshake on the HTTP server, and the hand-over of the upgraded socket to the
 * hub (see core.h, WebSocket). The room name travels in the request's arena, which lives
 * until the upgrade callback has run. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"

typedef struct ws_accept {
    core_ws_hub *hub;
    core_log *log;
    char room[CORE_WS_ROOM_MAX + 1];
} ws_accept;

static void release_fd(void *arg, int fd)
{
    (void)arg;
    close(fd);
}

/* A client refused after its 101 learns why in WebSocket terms before the socket closes. The
 * socket is fresh, so four bytes always fit in its send buffer. */
static void send_refusal(int fd, unsigned code)
{
    const unsigned char frame[4] = {0x88, 2, (unsigned char)(code >> 8), (unsigned char)code};
    (void)!send(fd, frame, sizeof frame, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* The hub gets a duplicate of the socket and MHD's upgrade is closed at once, so MHD frees the
 * connection (its memory pool, header_limit bytes) and the request's arena now rather than
 * when the WebSocket ends: an idle WebSocket then costs the hub's small struct, not ~40 KiB.
 * This relies on MHD not shutting the socket down when it closes its descriptor, which is what
 * MHD_USE_TURBO (set by server.c) guarantees. */
static void on_upgraded(void *ud, int fd, const char *extra, size_t extra_len, core_http_upgrade *up)
{
    ws_accept *a = ud;
    char err[160];
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    int rc = own < 0 ? CORE_EIO : 0;
    if (own < 0)
        snprintf(err, sizeof err, "websocket: dup: %s", strerror(errno));
    else
        rc = core_ws_hub_adopt(a->hub, own, a->room, extra, extra_len, release_fd, NULL, err, sizeof err);
    if (rc != 0) {
        core_log_warn(a->log, "ws", "%s", err);
        send_refusal(fd, rc == CORE_ESTATE ? 1001 : 1013);
        if (own >= 0)
            close(own);
    }
    core_http_upgrade_close(up);
}

int core_ws_http_accept(core_http_req *req, core_ws_hub *hub, const char *room)
{
    if (strcmp(core_http_req_method(req), "GET") != 0)
        return core_http_reply_error(req, 400, "bad_handshake", "a WebSocket handshake is a GET request");
    if (!room || !core_ws_room_valid(room))
        return core_http_reply_error(req, 400, "bad_room",
                                     "a room name is 1 to %d characters from A-Z, a-z, 0-9 and . _ ~ -",
                                     CORE_WS_ROOM_MAX);
    char accept[CORE_WS_ACCEPT_LEN + 1], err[160];
    bool version_bad;
    if (core_ws_handshake_check(core_http_req_header(req, "Upgrade"), core_http_req_header(req, "Connection"),
                                core_http_req_header(req, "Sec-WebSocket-Version"),
                                core_http_req_header(req, "Sec-WebSocket-Key"), accept, &version_bad, err,
                                sizeof err) != 0) {
        if (!version_bad)
            return core_http_reply_error(req, 400, "bad_handshake", "%s", err);
        core_http_add_header(req, "Sec-WebSocket-Version", "13");
        return core_http_reply_error(req, 426, "upgrade_required", "%s", err);
    }
    ws_accept *a = core_arena_calloc(core_http_req_arena(req), sizeof *a);
    if (!a)
        return core_http_reply_error(req, 500, "internal", "out of memory");
    a->hub = hub;
    a->log = core_http_req_log(req);
    memcpy(a->room, room, strlen(room) + 1);
    const char *const headers[] = {"Upgrade", "websocket", "Sec-WebSocket-Accept", accept, NULL};
    return core_http_respond_upgrade(req, headers, on_upgraded, a);
}
