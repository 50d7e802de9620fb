/* Fuzz target for the product JSON parser: any bytes parse or fail with a message, and what
 * parses serialises to JSON that parses back to the same serialisation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lookalike/lookalike.h"

static void check_mode(const uint8_t *data, size_t size, int mode)
{
    char err[256] = "";
    lookalike_product_t p, q;
    if (lookalike_product_parse((const char *)data, size, mode, &p, err, sizeof err) != 0) {
        if (!err[0])
            abort();
        return;
    }
    char *a = lookalike_product_to_json(&p, mode);
    if (!a)
        abort();
    if (lookalike_product_parse(a, strlen(a), mode, &q, err, sizeof err) != 0)
        abort();
    char *b = lookalike_product_to_json(&q, mode);
    if (!b || strcmp(a, b) != 0)
        abort();
    char *t = lookalike_product_attrs_text(&p);
    if (!t || strlen(t) > LOOKALIKE_ATTRS_TEXT_MAX)
        abort();
    free(t);
    free(a);
    free(b);
    lookalike_product_release(&p);
    lookalike_product_release(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_mode(data, size, LOOKALIKE_PRODUCT_INPUT);
    check_mode(data, size, LOOKALIKE_PRODUCT_STORED);
    return 0;
}
