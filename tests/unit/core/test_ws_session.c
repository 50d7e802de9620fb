/* Framing through wslay with in-memory buffers: what a client's bytes make the server-side
 * session deliver and send back. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "core/core.h"
#include "core/ws_session.h"
#include "ws_test_util.h"

#define OUT_CAP (1 << 20)

typedef struct sink {
    uint8_t *out;
    size_t out_len;
    int messages;
    unsigned last_opcode;
    uint8_t last[4096];
    size_t last_len;
    bool fail_writes;
} sink;

static int sink_write(void *ud, const uint8_t *data, size_t len)
{
    sink *k = ud;
    if (k->fail_writes)
        return -1;
    cr_assert_leq(k->out_len + len, OUT_CAP);
    memcpy(k->out + k->out_len, data, len);
    k->out_len += len;
    return 0;
}

static void sink_message(void *ud, unsigned opcode, const uint8_t *data, size_t len)
{
    sink *k = ud;
    k->messages++;
    k->last_opcode = opcode;
    cr_assert_leq(len, sizeof k->last);
    memcpy(k->last, data, len);
    k->last_len = len;
}

static const ws_session_ops ops = {sink_write, sink_message};

static sink k;
static ws_session s;
static size_t parsers;
static uint8_t in[1 << 17];

static void setup(void)
{
    memset(&k, 0, sizeof k);
    k.out = malloc(OUT_CAP);
    cr_assert_not_null(k.out);
    ws_session_init(&s, &ops, &k, 100);
    parsers = 0;
    s.parsers = &parsers;
}

static void teardown(void)
{
    ws_session_release(&s);
    free(k.out);
}

/* The only frame the server wrote must be a close with this code. */
static void assert_closed_with(unsigned code)
{
    size_t off = 0;
    wst_frame_view f;
    cr_assert(wst_next(k.out, k.out_len, &off, &f), "no frame written");
    cr_assert_eq(f.opcode, 0x8, "opcode %u", f.opcode);
    cr_assert_not(f.masked);
    cr_assert_eq(wst_close_code(&f), code, "close code %u", wst_close_code(&f));
    cr_assert_eq(off, k.out_len);
    cr_assert(s.close_sent);
    cr_assert(s.read_closed);
    cr_assert_eq(s.code_sent, code);
}

TestSuite(ws_session, .init = setup, .fini = teardown);

Test(ws_session, text_and_binary_messages)
{
    size_t n = wst_frame(in, 0, true, 0, 1, "hello", 5, true);
    n = wst_frame(in, n, true, 0, 2, "\x00\xff", 2, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert_eq(k.messages, 2);
    cr_assert_eq(k.last_opcode, 2);
    cr_assert_eq(k.last_len, 2);
    cr_assert_eq(k.last[1], 0xff);
    cr_assert_eq(k.out_len, 0);
    cr_assert_null(s.ctx, "parser kept after a whole frame");
    cr_assert_eq(parsers, 0);
}

Test(ws_session, byte_by_byte_keeps_parser_only_mid_frame)
{
    size_t n = wst_frame(in, 0, true, 0, 1, "split me", 8, true);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(ws_session_feed(&s, in + i, 1), 0);
        if (i + 1 < n)
            cr_assert_not_null(s.ctx, "parser dropped mid-frame at byte %zu", i);
    }
    cr_assert_eq(k.messages, 1);
    cr_assert_eq(k.last_len, 8);
    cr_assert(memcmp(k.last, "split me", 8) == 0);
    cr_assert_null(s.ctx);
}

Test(ws_session, unmasked_client_frame_is_protocol_error)
{
    size_t n = wst_frame(in, 0, true, 0, 1, "hi", 2, false);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert_eq(k.messages, 0);
    assert_closed_with(1002);
    cr_assert(ws_session_finished(&s));
}

Test(ws_session, ping_gets_pong_with_same_payload)
{
    size_t n = wst_frame(in, 0, true, 0, 9, "abc", 3, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    size_t off = 0;
    wst_frame_view f;
    cr_assert(wst_next(k.out, k.out_len, &off, &f));
    cr_assert_eq(f.opcode, 0xA);
    cr_assert_not(f.masked);
    cr_assert_eq(f.len, 3);
    cr_assert(memcmp(f.payload, "abc", 3) == 0);
    cr_assert_not(s.close_sent);
}

Test(ws_session, fragments_with_ping_in_the_middle)
{
    size_t n = wst_frame(in, 0, false, 0, 1, "Hel", 3, true);
    n = wst_frame(in, n, true, 0, 9, "p", 1, true);
    n = wst_frame(in, n, false, 0, 0, "lo ", 3, true);
    n = wst_frame(in, n, true, 0, 0, "you", 3, true);
    /* Split after the ping: the parser must survive between the fragments. */
    size_t cut = 2 + 4 + 3 + 2 + 4 + 1;
    cr_assert_eq(ws_session_feed(&s, in, cut), 0);
    cr_assert_eq(k.messages, 0);
    cr_assert_not_null(s.ctx, "parser dropped inside a fragmented message");
    cr_assert_eq(ws_session_feed(&s, in + cut, n - cut), 0);
    cr_assert_eq(k.messages, 1);
    cr_assert_eq(k.last_opcode, 1);
    cr_assert_eq(k.last_len, 9);
    cr_assert(memcmp(k.last, "Hello you", 9) == 0);
    size_t off = 0;
    wst_frame_view f;
    cr_assert(wst_next(k.out, k.out_len, &off, &f));
    cr_assert_eq(f.opcode, 0xA);
    cr_assert_null(s.ctx);
}

Test(ws_session, oversize_message_closes_1009)
{
    uint8_t big[200];
    memset(big, 'x', sizeof big);
    size_t n = wst_frame(in, 0, true, 0, 2, big, sizeof big, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert_eq(k.messages, 0);
    assert_closed_with(1009);
}

Test(ws_session, oversize_across_fragments_closes_1009)
{
    uint8_t part[60];
    memset(part, 'y', sizeof part);
    size_t n = wst_frame(in, 0, false, 0, 1, part, sizeof part, true);
    n = wst_frame(in, n, true, 0, 0, part, sizeof part, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert_eq(k.messages, 0);
    assert_closed_with(1009);
}

Test(ws_session, invalid_utf8_closes_1007)
{
    size_t n = wst_frame(in, 0, true, 0, 1, "ok\xc3\x28", 4, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert_eq(k.messages, 0);
    assert_closed_with(1007);
}

Test(ws_session, utf8_split_across_fragments_is_fine)
{
    size_t n = wst_frame(in, 0, false, 0, 1, "caf\xc3", 4, true);
    n = wst_frame(in, n, true, 0, 0, "\xa9", 1, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert_eq(k.messages, 1);
    cr_assert_eq(k.last_len, 5);
    cr_assert_eq(k.out_len, 0);
}

Test(ws_session, truncated_utf8_at_message_end_closes_1007)
{
    size_t n = wst_frame(in, 0, true, 0, 1, "caf\xc3", 4, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert_eq(k.messages, 0);
    assert_closed_with(1007);
}

Test(ws_session, reserved_opcode_closes_1002)
{
    size_t n = wst_frame(in, 0, true, 0, 3, "x", 1, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    assert_closed_with(1002);
}

Test(ws_session, rsv_bits_close_1002)
{
    size_t n = wst_frame(in, 0, true, 4, 1, "x", 1, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    assert_closed_with(1002);
}

Test(ws_session, continuation_without_start_closes_1002)
{
    size_t n = wst_frame(in, 0, true, 0, 0, "x", 1, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert_eq(k.messages, 0);
    assert_closed_with(1002);
}

Test(ws_session, new_message_inside_fragmented_one_closes_1002)
{
    size_t n = wst_frame(in, 0, false, 0, 1, "a", 1, true);
    n = wst_frame(in, n, true, 0, 1, "b", 1, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert_eq(k.messages, 0);
    assert_closed_with(1002);
}

Test(ws_session, fragmented_or_long_control_frames_close_1002)
{
    size_t n = wst_frame(in, 0, false, 0, 9, "p", 1, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert_eq(k.messages, 0);
    assert_closed_with(1002);
}

Test(ws_session, ping_longer_than_125_is_refused)
{
    uint8_t p[126];
    memset(p, 'p', sizeof p);
    size_t n = wst_frame(in, 0, true, 0, 9, p, sizeof p, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    /* Only the close comes back, no pong. */
    assert_closed_with(1002);
}

Test(ws_session, client_close_is_echoed_with_code)
{
    uint8_t payload[] = {0x03, 0xE8, 'b', 'y', 'e'};
    size_t n = wst_frame(in, 0, true, 0, 8, payload, sizeof payload, true);
    /* Anything after the close is ignored. */
    n = wst_frame(in, n, true, 0, 1, "late", 4, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert(s.close_received);
    cr_assert_eq(s.code_received, 1000);
    cr_assert_eq(k.messages, 0);
    assert_closed_with(1000);
    cr_assert(ws_session_finished(&s));
}

Test(ws_session, close_without_code_is_echoed_empty)
{
    size_t n = wst_frame(in, 0, true, 0, 8, "", 0, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert(s.close_received);
    cr_assert_eq(s.code_received, 1005);
    size_t off = 0;
    wst_frame_view f;
    cr_assert(wst_next(k.out, k.out_len, &off, &f));
    cr_assert_eq(f.opcode, 8);
    cr_assert_eq(f.len, 0);
}

Test(ws_session, close_with_reserved_code_closes_1002)
{
    uint8_t payload[] = {0x03, 0xED}; /* 1005 must never be sent on the wire */
    size_t n = wst_frame(in, 0, true, 0, 8, payload, sizeof payload, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    assert_closed_with(1002);
}

Test(ws_session, server_close_then_client_echo)
{
    cr_assert_eq(ws_session_close(&s, 1001, "going away"), 0);
    size_t off = 0;
    wst_frame_view f;
    cr_assert(wst_next(k.out, k.out_len, &off, &f));
    cr_assert_eq(f.opcode, 8);
    cr_assert_eq(wst_close_code(&f), 1001);
    cr_assert_eq(f.len, 2 + strlen("going away"));
    cr_assert_not(ws_session_finished(&s));
    size_t before = k.out_len;
    /* Data after our close is dropped; the echo completes the handshake without a reply. */
    size_t n = wst_frame(in, 0, true, 0, 1, "late", 4, true);
    uint8_t payload[] = {0x03, 0xE9};
    n = wst_frame(in, n, true, 0, 8, payload, sizeof payload, true);
    cr_assert_eq(ws_session_feed(&s, in, n), 0);
    cr_assert_eq(k.messages, 0);
    cr_assert(s.close_received);
    cr_assert_eq(s.code_received, 1001);
    cr_assert_eq(k.out_len, before, "a second close frame was sent");
    cr_assert(ws_session_finished(&s));
    /* A second close is a no-op. */
    cr_assert_eq(ws_session_close(&s, 1000, NULL), 0);
    cr_assert_eq(k.out_len, before);
}

Test(ws_session, ping_is_unmasked_control_frame)
{
    cr_assert_eq(ws_session_ping(&s, (const uint8_t *)"hb", 2), 0);
    size_t off = 0;
    wst_frame_view f;
    cr_assert(wst_next(k.out, k.out_len, &off, &f));
    cr_assert_eq(f.opcode, 9);
    cr_assert(f.fin);
    cr_assert_not(f.masked);
    cr_assert_eq(f.len, 2);
}

Test(ws_session, write_failure_fails_the_feed)
{
    k.fail_writes = true;
    size_t n = wst_frame(in, 0, true, 0, 9, "x", 1, true);
    cr_assert_lt(ws_session_feed(&s, in, n), 0);
}

Test(ws_session, large_message_in_chunks)
{
    ws_session_release(&s);
    ws_session_init(&s, &ops, &k, 1 << 16);
    uint8_t big[4000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)('a' + i % 26);
    size_t n = wst_frame(in, 0, true, 0, 1, big, sizeof big, true);
    for (size_t off = 0; off < n; off += 333) {
        size_t len = n - off < 333 ? n - off : 333;
        cr_assert_eq(ws_session_feed(&s, in + off, len), 0);
    }
    cr_assert_eq(k.messages, 1);
    cr_assert_eq(k.last_len, sizeof big);
    cr_assert(memcmp(k.last, big, sizeof big) == 0);
    cr_assert_null(s.ctx);
}
