/* lookalike_json_only_keys: the "unknown field" check of request objects (lookalike.h). */
#include "lookalike/lookalike.h"

#include <string.h>

int lookalike_json_only_keys(json_t *o, const char *const *allowed, size_t n, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        size_t i = 0;
        while (i < n && strcmp(allowed[i], key) != 0)
            i++;
        if (i == n) {
            lookalike_errf(err, errlen, "unknown field \"%s\"", key);
            return LOOKALIKE_EINVAL;
        }
    }
    return 0;
}
