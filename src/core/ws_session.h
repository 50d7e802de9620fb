/* Private to core's WebSocket files, the fuzz target and the tests: the protocol state of one
 * server-side connection, independent of sockets. Bytes from the client go in through
 * ws_session_feed; everything to send comes out through ops->write, in order (a frame may
 * come in several pieces, always within one call of a ws_session_* function, so nothing else
 * can be queued in the middle of it); complete messages come out through ops->message.
 *
 * wslay's event context does the parsing (masking rules, fragments, UTF-8, control frames,
 * size cap, close echo). It is allocated on the first byte and freed whenever the input ends
 * on a frame boundary outside a fragmented message: to know where frames end without asking
 * wslay, the session reads each frame header itself and hands wslay at most the rest of the
 * current frame, so wslay's 4 KiB input buffer is empty at every boundary.
 *
 * Closing state lives here, not in wslay, so it survives the context being freed: once a
 * close frame was sent, later output from a fresh context (e.g. its echo of the client's
 * close) is dropped, and once the parser stops reading (after a protocol error) input is
 * ignored. Single-threaded: a session belongs to the hub thread (or a test). */
#ifndef CORE_WS_SESSION_H
#define CORE_WS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wslay/wslay.h>

typedef struct ws_session_ops {
    /* Queues bytes for the client; a negative return fails the feed (connection is dropped). */
    int (*write)(void *ud, const uint8_t *data, size_t len);
    /* A complete text or binary message; data valid during the call. */
    void (*message)(void *ud, unsigned opcode, const uint8_t *data, size_t len);
} ws_session_ops;

typedef struct ws_session {
    wslay_event_context_ptr ctx; /* NULL between frames (see above) */
    const ws_session_ops *ops;
    void *ud;
    uint64_t max_message;   /* close 1009 past it */
    const uint8_t *in;      /* input being fed, only during ws_session_feed */
    size_t in_len;          /* bytes of it not yet given to wslay */
    uint64_t frame_left;    /* payload bytes of the current frame not yet given to wslay */
    uint8_t hdr[14];        /* the current frame's header as read so far */
    uint8_t hdr_have;       /* bytes in hdr; 0 at a frame boundary or inside a payload */
    bool in_payload;        /* hdr complete, frame_left counts down */
    bool in_message;        /* a fragmented data message is being received */
    bool read_closed;       /* the parser stopped reading (protocol error or close received) */
    bool close_sent;        /* a close frame was queued to ops->write */
    bool close_received;    /* the client's close frame arrived */
    uint16_t code_sent;     /* code of the close we sent (1005 if none) */
    uint16_t code_received; /* code of the client's close (1005 if none) */
    size_t *parsers;        /* optional count of live wslay contexts, kept by the owner */
} ws_session;

void ws_session_init(ws_session *s, const ws_session_ops *ops, void *ud, uint64_t max_message);
void ws_session_release(ws_session *s);
/* Parses data; returns 0, or a negative CORE_E* code when a write failed or memory ran out
 * (the connection must then be dropped). Protocol errors are not failures: they queue a close
 * frame and set read_closed. */
int ws_session_feed(ws_session *s, const uint8_t *data, size_t len);
/* Queues a close frame with code and reason (at most 123 bytes) unless one was sent. */
int ws_session_close(ws_session *s, uint16_t code, const char *reason);
/* Queues a ping with a short payload. */
int ws_session_ping(ws_session *s, const uint8_t *data, size_t len);
/* true once both close frames have passed: the TCP connection may be closed after flushing. */
bool ws_session_finished(const ws_session *s);

#endif
