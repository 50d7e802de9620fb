/* SHA-1, base64, the accept key, handshake checks and the frame-header encoder. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "core/ws_codec.h"

static void sha1_hex(const void *data, size_t len, char out[41])
{
    uint8_t d[WS_SHA1_LEN];
    ws_sha1(data, len, d);
    for (int i = 0; i < WS_SHA1_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

Test(ws_sha1, rfc3174_vectors)
{
    char hex[41];
    sha1_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha1_hex(two, strlen(two), hex);
    cr_assert_str_eq(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    sha1_hex("", 0, hex);
    cr_assert_str_eq(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

Test(ws_sha1, million_a_and_block_edges)
{
    char *a = malloc(1000000);
    cr_assert_not_null(a);
    memset(a, 'a', 1000000);
    char hex[41];
    sha1_hex(a, 1000000, hex);
    cr_assert_str_eq(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    /* 55, 56 and 64 bytes straddle the one-or-two final blocks decision. */
    sha1_hex(a, 55, hex);
    cr_assert_str_eq(hex, "c1c8bbdc22796e28c0e15163d20899b65621d65a");
    sha1_hex(a, 56, hex);
    cr_assert_str_eq(hex, "c2db330f6083854c99d4b5bfb6e8f29f201be699");
    sha1_hex(a, 64, hex);
    cr_assert_str_eq(hex, "0098ba824b5c16427bd7a1122a5a442a25ec644d");
    free(a);
}

Test(base64, rfc4648_vectors)
{
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[16];
        size_t n = core_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out);
        cr_assert_eq(n, strlen(enc[i]));
        cr_assert_str_eq(out, enc[i]);
        uint8_t back[16];
        long m = core_base64_decode(enc[i], strlen(enc[i]), back, sizeof back);
        cr_assert_eq(m, (long)strlen(plain[i]));
        cr_assert(memcmp(back, plain[i], (size_t)m) == 0);
    }
}

Test(base64, rejects_bad_input)
{
    uint8_t out[16];
    cr_assert_eq(core_base64_decode("Zm9", 3, out, sizeof out), -1);      /* not a multiple of 4 */
    cr_assert_eq(core_base64_decode("Zm9v!A==", 8, out, sizeof out), -1); /* bad character */
    cr_assert_eq(core_base64_decode("Zg==Zg==", 8, out, sizeof out), -1); /* padding in the middle */
    cr_assert_eq(core_base64_decode("Z===", 4, out, sizeof out), -1);     /* too much padding */
    cr_assert_eq(core_base64_decode("Zh==", 4, out, sizeof out), -1);     /* stray bits */
    cr_assert_eq(core_base64_decode("Zm9vYmFy", 8, out, 5), -1);          /* does not fit */
}

Test(ws_handshake, rfc6455_accept_example)
{
    char accept[CORE_WS_ACCEPT_LEN + 1];
    core_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", accept);
    cr_assert_str_eq(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(ws_handshake, accepts_valid_headers)
{
    char accept[CORE_WS_ACCEPT_LEN + 1], err[128];
    bool vbad = true;
    int rc = core_ws_handshake_check("WebSocket", "keep-alive, Upgrade", "13",
                                     "dGhlIHNhbXBsZSBub25jZQ==", accept, &vbad, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_not(vbad);
    cr_assert_str_eq(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(ws_handshake, rejects_bad_headers)
{
    char accept[CORE_WS_ACCEPT_LEN + 1], err[128];
    bool vbad;
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    cr_assert_eq(core_ws_handshake_check(NULL, "Upgrade", "13", key, accept, &vbad, err, sizeof err),
                 CORE_EINVAL);
    cr_assert(strstr(err, "Upgrade") != NULL);
    cr_assert_eq(core_ws_handshake_check("h2c", "Upgrade", "13", key, accept, &vbad, err, sizeof err),
                 CORE_EINVAL);
    cr_assert_eq(
        core_ws_handshake_check("websocket", "keep-alive", "13", key, accept, &vbad, err, sizeof err),
        CORE_EINVAL);
    cr_assert(strstr(err, "Connection") != NULL);
    cr_assert_eq(core_ws_handshake_check("websocket", "Upgradex", "13", key, accept, &vbad, err, sizeof err),
                 CORE_EINVAL);
    cr_assert_eq(core_ws_handshake_check("websocket", "Upgrade", "13", NULL, accept, &vbad, err, sizeof err),
                 CORE_EINVAL);
    cr_assert_eq(
        core_ws_handshake_check("websocket", "Upgrade", "13", "c2hvcnQ=", accept, &vbad, err, sizeof err),
        CORE_EINVAL);
    cr_assert(strstr(err, "Sec-WebSocket-Key") != NULL);
    cr_assert_not(vbad);
    cr_assert_eq(core_ws_handshake_check("websocket", "Upgrade", "8", key, accept, &vbad, err, sizeof err),
                 CORE_EINVAL);
    cr_assert(vbad);
    cr_assert_eq(core_ws_handshake_check("websocket", "Upgrade", NULL, key, accept, &vbad, err, sizeof err),
                 CORE_EINVAL);
    cr_assert(vbad);
}

Test(ws_handshake, room_names)
{
    cr_assert(core_ws_room_valid("lobby"));
    cr_assert(core_ws_room_valid("a-b_c.d~9"));
    cr_assert_not(core_ws_room_valid(""));
    cr_assert_not(core_ws_room_valid("a/b"));
    cr_assert_not(core_ws_room_valid("a b"));
    cr_assert_not(core_ws_room_valid("caf\xc3\xa9"));
    char longname[CORE_WS_ROOM_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[CORE_WS_ROOM_MAX] = '\0';
    cr_assert(core_ws_room_valid(longname));
    longname[CORE_WS_ROOM_MAX] = 'x';
    longname[CORE_WS_ROOM_MAX + 1] = '\0';
    cr_assert_not(core_ws_room_valid(longname));
}

Test(ws_frame_header, length_encodings)
{
    uint8_t h[WS_FRAME_HEADER_MAX];
    cr_assert_eq(ws_frame_header(h, 1, 0), 2);
    cr_assert_eq(h[0], 0x81);
    cr_assert_eq(h[1], 0);
    cr_assert_eq(ws_frame_header(h, 2, 125), 2);
    cr_assert_eq(h[0], 0x82);
    cr_assert_eq(h[1], 125);
    cr_assert_eq(ws_frame_header(h, 1, 126), 4);
    cr_assert_eq(h[1], 126);
    cr_assert_eq(h[2], 0);
    cr_assert_eq(h[3], 126);
    cr_assert_eq(ws_frame_header(h, 1, 65535), 4);
    cr_assert_eq(h[2], 0xFF);
    cr_assert_eq(h[3], 0xFF);
    cr_assert_eq(ws_frame_header(h, 1, 65536), 10);
    cr_assert_eq(h[1], 127);
    cr_assert_eq(h[7], 1);
    cr_assert_eq(h[8], 0);
    cr_assert_eq(h[9], 0);
}
