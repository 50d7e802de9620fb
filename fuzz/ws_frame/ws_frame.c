/* Fuzzes the server-side frame parsing: the input is a client's byte stream, fed to one
 * ws_session in chunks whose sizes come from the first byte, so frame boundaries land at every
 * offset. Checks that what the server writes back is a sequence of whole, unmasked, final
 * frames and that at most one close frame is written. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ws_session.h"

typedef struct fuzz_sink {
    uint8_t out[1 << 16];
    size_t len;
    bool overflow;
} fuzz_sink;

static int sink_write(void *ud, const uint8_t *data, size_t len)
{
    fuzz_sink *k = ud;
    if (len > sizeof k->out - k->len) {
        k->overflow = true;
        return 0;
    }
    memcpy(k->out + k->len, data, len);
    k->len += len;
    return 0;
}

static void sink_message(void *ud, unsigned opcode, const uint8_t *data, size_t len)
{
    (void)ud;
    if (opcode != 1 && opcode != 2)
        abort();
    if (len > 4096 || (len > 0 && !data))
        abort();
}

static const ws_session_ops fuzz_ops = {sink_write, sink_message};

static void check_output(const fuzz_sink *k)
{
    size_t o = 0;
    int closes = 0;
    while (o < k->len) {
        if (k->len - o < 2)
            abort();
        uint8_t b0 = k->out[o], b1 = k->out[o + 1];
        if (!(b0 & 0x80) || (b0 & 0x70) || (b1 & 0x80))
            abort(); /* not final, reserved bits, or masked */
        unsigned op = b0 & 0x0F;
        if (op != 0x8 && op != 0xA)
            abort(); /* the parser only ever answers with pongs and closes */
        size_t pl = b1 & 0x7F;
        if (pl > 125)
            abort();
        o += 2 + pl;
        if (op == 0x8)
            closes++;
    }
    if (o != k->len || closes > 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    fuzz_sink *k = calloc(1, sizeof *k);
    if (!k)
        return 0;
    ws_session s;
    size_t parsers = 0;
    ws_session_init(&s, &fuzz_ops, k, 4096);
    s.parsers = &parsers;
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (ws_session_feed(&s, data + off, n) != 0)
            break;
    }
    bool idle_ok = s.ctx == NULL || s.in_payload || s.hdr_have > 0 || s.in_message;
    ws_session_release(&s);
    if (!idle_ok || parsers != 0)
        abort(); /* a parser kept at a frame boundary, or the count went wrong */
    if (!k->overflow)
        check_output(k);
    free(k);
    return 0;
}
