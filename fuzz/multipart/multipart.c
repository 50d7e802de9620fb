/* Fuzzes the multipart/form-data parser: the input's first line is the Content-Type value,
 * the rest is the body. Checks that every part lies inside the body and that the caps hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    const char *nl = memchr(data, '\n', size);
    if (!nl)
        return 0;
    size_t ct_len = (size_t)(nl - (const char *)data);
    char *ct = malloc(ct_len + 1);
    memcpy(ct, data, ct_len);
    ct[ct_len] = '\0';
    size_t body_len = size - ct_len - 1;
    /* A copy of exactly body_len bytes, so ASan catches any read past the body. */
    char *body = malloc(body_len ? body_len : 1);
    memcpy(body, nl + 1, body_len);

    core_arena *a = core_arena_new(0);
    char err[256];
    const char *boundary;
    if (core_multipart_boundary(strlen(ct) == ct_len ? ct : NULL, a, &boundary, err, sizeof err) == 0) {
        core_multipart_limits lim = {.max_parts = 8,
                                     .max_part_size = 512,
                                     .max_field_size = 64,
                                     .max_total = 1024,
                                     .max_header_size = 256};
        core_multipart_part *parts;
        size_t n;
        if (core_multipart_parse(boundary, body, body_len, &lim, a, &parts, &n, err, sizeof err) == 0) {
            size_t total = 0;
            if (n > lim.max_parts)
                abort();
            for (size_t i = 0; i < n; i++) {
                const core_multipart_part *p = &parts[i];
                if (!p->name || !p->content_type || p->data < body || p->data + p->len > body + body_len)
                    abort();
                if (p->len > (p->filename ? lim.max_part_size : lim.max_field_size))
                    abort();
                total += p->len;
            }
            if (total > lim.max_total)
                abort();
        } else if (!err[0]) {
            abort(); /* every failure explains itself */
        }
    }
    core_arena_free(a);
    free(body);
    free(ct);
    return 0;
}
