/* One server-side WebSocket connection's protocol state over wslay; see ws_session.h for why
 * the session tracks frame boundaries itself. */
#include <string.h>

#include "core/core.h"
#include "core/ws_codec.h"
#include "core/ws_session.h"

/* Size of a frame header whose first two bytes are b0, b1. */
static size_t header_size(const uint8_t *hdr)
{
    size_t n = 2;
    uint8_t len7 = hdr[1] & 0x7F;
    if (len7 == 126)
        n += 2;
    else if (len7 == 127)
        n += 8;
    if (hdr[1] & 0x80)
        n += 4;
    return n;
}

static uint64_t header_payload_len(const uint8_t *hdr)
{
    uint8_t len7 = hdr[1] & 0x7F;
    if (len7 < 126)
        return len7;
    if (len7 == 126)
        return (uint64_t)hdr[2] << 8 | hdr[3];
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | hdr[2 + i];
    return v;
}

/* How many more input bytes belong to the current frame as far as is known yet. */
static size_t frame_allowance(const ws_session *s)
{
    if (s->in_payload)
        return s->frame_left > SIZE_MAX ? SIZE_MAX : (size_t)s->frame_left;
    if (s->hdr_have < 2)
        return 2u - s->hdr_have;
    return header_size(s->hdr) - s->hdr_have;
}

/* Moves the frame tracker over n bytes that were just handed to wslay (n <= allowance). */
static void frame_advance(ws_session *s, const uint8_t *p, size_t n)
{
    if (s->in_payload) {
        s->frame_left -= n;
    } else {
        memcpy(s->hdr + s->hdr_have, p, n);
        s->hdr_have = (uint8_t)(s->hdr_have + n);
        if (s->hdr_have >= 2 && s->hdr_have == header_size(s->hdr)) {
            s->frame_left = header_payload_len(s->hdr);
            s->hdr_have = 0;
            s->in_payload = true;
        }
    }
    if (s->in_payload && s->frame_left == 0)
        s->in_payload = false;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    ws_session *s = ud;
    size_t n = frame_allowance(s);
    if (n > s->in_len)
        n = s->in_len;
    if (n > len)
        n = len;
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    memcpy(buf, s->in, n);
    frame_advance(s, s->in, n);
    s->in += n;
    s->in_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)flags;
    ws_session *s = ud;
    /* A context made after our close does not know it: what it sends (an echo) is dropped. */
    if (s->close_sent)
        return (ssize_t)len;
    if (s->ops->write(s->ud, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void frame_start_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
                           void *ud)
{
    (void)ctx;
    ws_session *s = ud;
    if (!wslay_is_ctrl_frame(arg->opcode))
        s->in_message = !arg->fin;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    (void)ctx;
    ws_session *s = ud;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        s->close_received = true;
        s->code_received = arg->status_code ? arg->status_code : 1005;
    } else if ((arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) && !s->close_sent &&
               s->ops->message) {
        s->ops->message(s->ud, arg->opcode, arg->msg, arg->msg_length);
    }
}

static const struct wslay_event_callbacks session_callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_frame_recv_start_callback = frame_start_cb,
    .on_msg_recv_callback = msg_cb,
};

void ws_session_init(ws_session *s, const ws_session_ops *ops, void *ud, uint64_t max_message)
{
    memset(s, 0, sizeof *s);
    s->ops = ops;
    s->ud = ud;
    s->max_message = max_message;
    s->code_sent = 1005;
    s->code_received = 1005;
}

static void drop_ctx(ws_session *s)
{
    if (!s->ctx)
        return;
    wslay_event_context_free(s->ctx);
    s->ctx = NULL;
    if (s->parsers)
        (*s->parsers)--;
}

void ws_session_release(ws_session *s)
{
    drop_ctx(s);
}

/* Copies what wslay decided about closing into the session, which outlives the context. */
static void sync_close_state(ws_session *s)
{
    if (!wslay_event_get_read_enabled(s->ctx))
        s->read_closed = true;
    if (!s->close_sent && wslay_event_get_close_sent(s->ctx)) {
        s->close_sent = true;
        s->code_sent = wslay_event_get_status_code_sent(s->ctx);
    }
}

int ws_session_feed(ws_session *s, const uint8_t *data, size_t len)
{
    int rc = 0;
    s->in = data;
    s->in_len = len;
    while (s->in_len > 0 && !s->read_closed) {
        if (!s->ctx) {
            if (wslay_event_context_server_init(&s->ctx, &session_callbacks, s) != 0) {
                s->ctx = NULL;
                rc = CORE_ENOMEM;
                break;
            }
            wslay_event_config_set_max_recv_msg_length(s->ctx, s->max_message);
            if (s->parsers)
                (*s->parsers)++;
        }
        size_t before = s->in_len;
        wslay_event_set_error(s->ctx, 0);
        int r = wslay_event_recv(s->ctx);
        if (r == WSLAY_ERR_CALLBACK_FAILURE) {
            /* The frame layer refused a header (fragmented or >125-byte control frame, 64-bit
             * length with the top bit set); wslay then queues a close without a code, so
             * send the 1002 the RFC asks for instead of flushing its queue. */
            s->read_closed = true;
            rc = ws_session_close(s, 1002, "protocol error");
            break;
        }
        /* Flushes pongs, close echoes and error closes wslay queued while parsing. */
        int w = wslay_event_send(s->ctx);
        sync_close_state(s);
        if (r == WSLAY_ERR_NOMEM || w == WSLAY_ERR_NOMEM) {
            rc = CORE_ENOMEM;
            break;
        }
        if (r != 0 || w != 0) {
            rc = CORE_EIO;
            break;
        }
        if (s->in_len == before && !s->read_closed) {
            rc = CORE_ESTATE; /* wslay took nothing: never expected, but never spin */
            break;
        }
    }
    s->in = NULL;
    s->in_len = 0;
    if (s->ctx && (s->read_closed || (!s->in_payload && s->hdr_have == 0 && !s->in_message)))
        drop_ctx(s);
    return rc;
}

/* Writes one unmasked control frame built here (wslay's context may not even exist). */
static int write_control(ws_session *s, unsigned opcode, const uint8_t *payload, size_t len)
{
    uint8_t frame[WS_FRAME_HEADER_MAX + 125];
    if (len > 125)
        return CORE_EINVAL;
    size_t h = ws_frame_header(frame, opcode, len);
    if (len)
        memcpy(frame + h, payload, len);
    return s->ops->write(s->ud, frame, h + len) != 0 ? CORE_EIO : 0;
}

int ws_session_close(ws_session *s, uint16_t code, const char *reason)
{
    if (s->close_sent)
        return 0;
    uint8_t payload[125];
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > 123)
        rlen = 123;
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    if (rlen)
        memcpy(payload + 2, reason, rlen);
    int rc = write_control(s, WSLAY_CONNECTION_CLOSE, payload, 2 + rlen);
    s->close_sent = true;
    s->code_sent = code;
    return rc;
}

int ws_session_ping(ws_session *s, const uint8_t *data, size_t len)
{
    if (s->close_sent)
        return 0;
    return write_control(s, WSLAY_PING, data, len);
}

bool ws_session_finished(const ws_session *s)
{
    return s->close_sent && s->read_closed;
}
