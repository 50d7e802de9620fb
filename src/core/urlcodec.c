/* Percent-decoding. Kept apart from the router because query strings and form bodies use it
 * too, with '+' meaning space there but not in paths. */
#include "core/core.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int core_url_decode(core_arena *a, const char *s, size_t n, bool plus_is_space, char **out, size_t *out_len)
{
    char *d = core_arena_alloc(a, n + 1);
    if (!d)
        return CORE_ENOMEM;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return CORE_EINVAL;
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return CORE_EINVAL;
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0)
                return CORE_EINVAL;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == 0) {
            return CORE_EINVAL;
        }
        d[j++] = (char)c;
    }
    d[j] = '\0';
    *out = d;
    if (out_len)
        *out_len = j;
    return 0;
}
