/* Fuzz target for the load engine's HTTP response parser: any bytes end in a response, a
 * request for more, or an error; the body never passes its cap; and feeding the bytes one at a
 * time gives the same outcome, status and body as feeding them at once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "load/load.h"

#define BODY_MAX 4096

static int run(const uint8_t *data, size_t size, size_t step, load_resp_t *r, size_t *consumed)
{
    size_t at = 0;
    int rc = LOAD_RESP_MORE;
    while (at < size && rc == LOAD_RESP_MORE) {
        size_t n = size - at < step ? size - at : step, used = 0;
        rc = load_resp_feed(r, (const char *)data + at, n, &used);
        if (used > n)
            abort();
        at += used;
    }
    if (rc == LOAD_RESP_MORE && at == size)
        rc = load_resp_eof(r) == LOAD_RESP_DONE ? 2 : LOAD_EPROTO;
    if (r->body_len > BODY_MAX || r->body[r->body_len] != 0)
        abort();
    *consumed = at;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_resp_t a, b;
    if (load_resp_init(&a, BODY_MAX) != 0 || load_resp_init(&b, BODY_MAX) != 0)
        abort();
    size_t ua = 0, ub = 0;
    int ra = run(data, size, size ? size : 1, &a, &ua), rb = run(data, size, 1, &b, &ub);
    if (ra != rb)
        abort();
    if (ra == LOAD_RESP_DONE || ra == 2) {
        if (a.status != b.status || a.body_len != b.body_len || memcmp(a.body, b.body, a.body_len) != 0 ||
            ua != ub || a.status < 100 || a.status > 999)
            abort();
    }
    load_resp_release(&a);
    load_resp_release(&b);
    return 0;
}
