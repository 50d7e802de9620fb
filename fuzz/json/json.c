/* Fuzzes the JSON request helpers: parsing a body (duplicate keys refused, position in the
 * error) and the typed field readers on whatever comes out. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    char err[256];
    err[0] = '\0';
    /* An exact-size copy: no NUL terminator to lean on. */
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);
    json_t *doc = core_json_parse(body, size, err, sizeof err);
    if (!doc) {
        if (!err[0])
            abort();
    } else {
        static const char *const keys[] = {"name", "limit", "score", "on", "", "a"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const char *s;
            long long v;
            double d;
            bool b;
            if (core_json_get_str(doc, keys[i], i % 2 == 0, &s, err, sizeof err) == 0 && !s)
                abort();
            core_json_get_int(doc, keys[i], false, &v, err, sizeof err);
            core_json_get_num(doc, keys[i], true, &d, err, sizeof err);
            core_json_get_bool(doc, keys[i], false, &b, err, sizeof err);
        }
        json_decref(doc);
    }
    free(body);
    return 0;
}
