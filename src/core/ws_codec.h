/* Private to core's WebSocket files and their tests: SHA-1 (RFC 3174), what the opening
 * handshake needs besides base64 (core.h), plus the encoder for the frames the server sends.
 * No state, no allocation. */
#ifndef CORE_WS_CODEC_H
#define CORE_WS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define WS_SHA1_LEN 20
/* Largest header of a frame we send: 2 bytes + 8 bytes of 64-bit length (never masked). */
#define WS_FRAME_HEADER_MAX 10

void ws_sha1(const void *data, size_t len, uint8_t out[WS_SHA1_LEN]);

/* Writes the header of one unmasked, final frame with this opcode and payload length into hdr
 * and returns its size (2, 4 or 10). */
size_t ws_frame_header(uint8_t hdr[WS_FRAME_HEADER_MAX], unsigned opcode, uint64_t payload_len);

#endif
