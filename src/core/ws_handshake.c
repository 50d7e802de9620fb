/* The WebSocket opening handshake (RFC 6455 section 4.2): header checks and the accept key,
 * with our own SHA-1 and base64 so the module needs no crypto library for 20 bytes. */
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "core/ws_codec.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static uint32_t rol32(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void ws_sha1(const void *data, size_t len, uint8_t out[WS_SHA1_LEN])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 64; left -= 64, p += 64)
        sha1_block(h, p);
    /* The tail, the 0x80 marker and the 64-bit bit length fill one or two last blocks. */
    uint8_t tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tail_len = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tail_len == 128)
        sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

size_t ws_frame_header(uint8_t hdr[WS_FRAME_HEADER_MAX], unsigned opcode, uint64_t payload_len)
{
    hdr[0] = (uint8_t)(0x80 | (opcode & 0x0F));
    if (payload_len < 126) {
        hdr[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xFFFF) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(payload_len >> 8);
        hdr[3] = (uint8_t)payload_len;
        return 4;
    }
    hdr[1] = 127;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    return 10;
}

void core_ws_accept_key(const char *key, char out[CORE_WS_ACCEPT_LEN + 1])
{
    /* A valid key is 24 chars; anything longer is cut, since the caller validated it. */
    char buf[64 + sizeof ws_guid];
    size_t klen = strnlen(key, 64);
    memcpy(buf, key, klen);
    memcpy(buf + klen, ws_guid, sizeof ws_guid - 1);
    uint8_t digest[WS_SHA1_LEN];
    ws_sha1(buf, klen + sizeof ws_guid - 1, digest);
    core_base64_encode(digest, sizeof digest, out);
}

/* true if the comma-separated header value holds token (case-insensitive, spaces trimmed). */
static bool header_has_token(const char *value, const char *token)
{
    size_t tlen = strlen(token);
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == tlen && strncasecmp(start, token, tlen) == 0)
            return true;
    }
    return false;
}

int core_ws_handshake_check(const char *upgrade, const char *connection, const char *version, const char *key,
                            char accept[CORE_WS_ACCEPT_LEN + 1], bool *version_bad, char *err, size_t errlen)
{
    *version_bad = false;
    if (!upgrade || !header_has_token(upgrade, "websocket")) {
        snprintf(err, errlen, "Upgrade header must be \"websocket\"");
        return CORE_EINVAL;
    }
    if (!connection || !header_has_token(connection, "upgrade")) {
        snprintf(err, errlen, "Connection header must include \"Upgrade\"");
        return CORE_EINVAL;
    }
    if (!key) {
        snprintf(err, errlen, "Sec-WebSocket-Key header is missing");
        return CORE_EINVAL;
    }
    uint8_t raw[18];
    size_t klen = strlen(key);
    if (klen != 24 || core_base64_decode(key, klen, raw, sizeof raw) != 16) {
        snprintf(err, errlen, "Sec-WebSocket-Key must be base64 of 16 bytes");
        return CORE_EINVAL;
    }
    if (!version || strcmp(version, "13") != 0) {
        *version_bad = true;
        snprintf(err, errlen, "Sec-WebSocket-Version must be 13");
        return CORE_EINVAL;
    }
    core_ws_accept_key(key, accept);
    return 0;
}

bool core_ws_room_valid(const char *name)
{
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        unsigned char c = (unsigned char)*p;
        if (n >= CORE_WS_ROOM_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '~' || c == '-'))
            return false;
    }
    return n > 0;
}
