/* Fuzz target for what the etcd client reads from the network: any bytes as an HTTP response
 * (status line, headers, Content-Length, chunked or close-delimited body) must parse or fail
 * cleanly; a parsed body must be NUL-terminated at its length, and base64 decoding of it
 * must not read past it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    int rc = cluster_http_parse_response((const char *)data, size, &status, &body, &len, err, sizeof err);
    if (rc == 0) {
        if (!body || body[len] != '\0' || status < 100 || status > 599 || len > size)
            abort();
        size_t dlen;
        unsigned char *dec = cluster_base64_decode(body, len, &dlen);
        if (dec && dlen > len)
            abort();
        free(dec);
    } else if (body || !err[0]) {
        abort();
    }
    free(body);
    return 0;
}
