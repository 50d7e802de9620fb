/* Helpers shared by the WebSocket unit tests: build client frames (masked or not) and split
 * what the server wrote into frames. */
#ifndef WS_TEST_UTIL_H
#define WS_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Appends one client frame to buf at *len; returns the new length. */
static inline size_t wst_frame(uint8_t *buf, size_t len, bool fin, unsigned rsv, unsigned opcode,
                               const void *payload, size_t plen, bool masked)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t *p = buf + len;
    *p++ = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
    uint8_t m = masked ? 0x80 : 0;
    if (plen < 126) {
        *p++ = (uint8_t)(m | plen);
    } else if (plen <= 0xFFFF) {
        *p++ = (uint8_t)(m | 126);
        *p++ = (uint8_t)(plen >> 8);
        *p++ = (uint8_t)plen;
    } else {
        *p++ = (uint8_t)(m | 127);
        for (int i = 7; i >= 0; i--)
            *p++ = (uint8_t)((uint64_t)plen >> (8 * i));
    }
    if (masked) {
        memcpy(p, key, 4);
        p += 4;
    }
    const uint8_t *src = payload;
    for (size_t i = 0; i < plen; i++)
        *p++ = masked ? (uint8_t)(src[i] ^ key[i % 4]) : src[i];
    return (size_t)(p - buf);
}

typedef struct wst_frame_view {
    bool fin;
    bool masked;
    unsigned opcode;
    const uint8_t *payload;
    size_t len;
} wst_frame_view;

/* Parses one unmasked-or-masked frame at buf[*off]; returns false if incomplete. */
static inline bool wst_next(const uint8_t *buf, size_t len, size_t *off, wst_frame_view *f)
{
    memset(f, 0, sizeof *f);
    size_t o = *off;
    if (len - o < 2)
        return false;
    f->fin = buf[o] & 0x80;
    f->opcode = buf[o] & 0x0F;
    f->masked = buf[o + 1] & 0x80;
    uint64_t pl = buf[o + 1] & 0x7F;
    o += 2;
    if (pl == 126) {
        if (len - o < 2)
            return false;
        pl = (uint64_t)buf[o] << 8 | buf[o + 1];
        o += 2;
    } else if (pl == 127) {
        if (len - o < 8)
            return false;
        pl = 0;
        for (int i = 0; i < 8; i++)
            pl = pl << 8 | buf[o + i];
        o += 8;
    }
    if (f->masked)
        o += 4;
    if (len < o || len - o < pl)
        return false;
    f->payload = buf + o;
    f->len = (size_t)pl;
    *off = o + (size_t)pl;
    return true;
}

static inline unsigned wst_close_code(const wst_frame_view *f)
{
    return f->len >= 2 ? (unsigned)(f->payload[0] << 8 | f->payload[1]) : 1005;
}

#endif
