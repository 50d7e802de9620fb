/* base64 as etcd's JSON gateway encodes bytes: core's codec, into buffers this module owns. */
#include "cluster/cluster.h"
#include "core/core.h"

#include <stdlib.h>

char *cluster_base64_encode(const void *data, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out)
        core_base64_encode(data, len, out);
    return out;
}

unsigned char *cluster_base64_decode(const char *s, size_t len, size_t *out_len)
{
    unsigned char *out = malloc(len / 4 * 3 + 1);
    long n = out ? core_base64_decode(s, len, out, len / 4 * 3) : -1;
    if (n < 0) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *out_len = (size_t)n;
    return out;
}
