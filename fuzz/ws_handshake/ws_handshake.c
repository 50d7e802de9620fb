/* Fuzzes the WebSocket opening handshake checks: the input is split at '\n' into the values of
 * Upgrade, Connection, Sec-WebSocket-Version, Sec-WebSocket-Key and a room name (a missing
 * line is an absent header). Beyond "no crash", it checks what core_ws_http_accept relies on:
 * an accepted handshake yields exactly the RFC 6455 accept value for its key, only a wrong
 * version sets version_bad, and a valid room name is short and from the safe alphabet. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define FIELDS 5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    const char *f[FIELDS] = {NULL};
    char *p = text;
    for (int i = 0; i < FIELDS && p; i++) {
        f[i] = p;
        p = strchr(p, '\n');
        if (p)
            *p++ = '\0';
    }
    char accept[CORE_WS_ACCEPT_LEN + 1], err[160];
    bool version_bad = true;
    int rc = core_ws_handshake_check(f[0], f[1], f[2], f[3], accept, &version_bad, err, sizeof err);
    if (rc == 0) {
        char want[CORE_WS_ACCEPT_LEN + 1];
        core_ws_accept_key(f[3], want);
        if (version_bad || strlen(accept) != CORE_WS_ACCEPT_LEN || strcmp(accept, want) != 0)
            abort();
        if (!f[2] || strcmp(f[2], "13") != 0)
            abort();
    } else if (rc != CORE_EINVAL || err[0] == '\0' || (version_bad && f[2] && strcmp(f[2], "13") == 0)) {
        abort();
    }
    if (f[4] && core_ws_room_valid(f[4])) {
        size_t n = strlen(f[4]);
        if (n == 0 || n > CORE_WS_ROOM_MAX ||
            strspn(f[4], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789._~-") != n)
            abort();
    }
    free(text);
    return 0;
}
