/* Shard keys, the shard of a product, and the sets of shards a node holds (design in
 * lookalike.h, section shards). */
#include "lookalike/lookalike.h"

#include <stdlib.h>
#include <string.h>

int lookalike_shard_key_parse(const char *name, lookalike_shard_key_t *out, char *err, size_t errlen)
{
    if (name && strcmp(name, "category") == 0)
        *out = LOOKALIKE_SHARD_KEY_CATEGORY;
    else if (name && strcmp(name, "id") == 0)
        *out = LOOKALIKE_SHARD_KEY_ID;
    else {
        lookalike_errf(err, errlen, "shard key: expected \"category\" or \"id\"");
        return LOOKALIKE_EINVAL;
    }
    return 0;
}

const char *lookalike_shard_key_name(lookalike_shard_key_t key)
{
    return key == LOOKALIKE_SHARD_KEY_ID ? "id" : "category";
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

uint32_t lookalike_shard_of(lookalike_shard_key_t key, uint32_t nshards, const char *id, const char *category)
{
    if (nshards <= 1)
        return 0;
    if (key == LOOKALIKE_SHARD_KEY_ID)
        return (uint32_t)(fnv1a(id ? id : "", id ? strlen(id) : 0) % nshards);
    /* Folded as the filters fold it, so "Áo" and "ao" land together. A category that does not
     * fold (not UTF-8: the catalogue refuses those) hashes as it is. */
    char folded[LOOKALIKE_NAME_MAX * 4 + 1];
    size_t n = category ? strlen(category) : 0, flen = 0;
    if (n && n < sizeof folded &&
        lookalike_text_fold(category, n, folded, sizeof folded, &flen, NULL, 0) == 0)
        return (uint32_t)(fnv1a(folded, flen) % nshards);
    return (uint32_t)(fnv1a(category ? category : "", n) % nshards);
}

static void set_add(lookalike_shard_set_t *s, uint32_t i)
{
    s->bits[i / 64] |= 1ull << (i % 64);
}

int lookalike_shard_set_has(const lookalike_shard_set_t *set, uint32_t shard)
{
    if (set->all)
        return 1;
    return shard < LOOKALIKE_SHARDS_MAX && (set->bits[shard / 64] >> (shard % 64) & 1);
}

/* A shard number at *p (digits only, 0..LOOKALIKE_SHARDS_MAX-1), advancing *p. */
static int parse_number(const char **p, uint32_t *out)
{
    const char *s = *p;
    uint32_t v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (uint32_t)(*s - '0');
        if (v >= LOOKALIKE_SHARDS_MAX)
            return -1;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

int lookalike_shard_set_parse(const char *spec, lookalike_shard_set_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) {
        lookalike_errf(err, errlen, "shards: expected \"all\" or a list such as \"0,1\" or \"0-3\"");
        return LOOKALIKE_EINVAL;
    }
    if (strcmp(spec, "all") == 0) {
        out->all = 1;
        return 0;
    }
    const char *p = spec;
    for (;;) {
        const char *item = p;
        uint32_t lo = 0, hi = 0;
        int ok = parse_number(&p, &lo) == 0;
        hi = lo;
        if (ok && *p == '-') {
            p++;
            ok = parse_number(&p, &hi) == 0 && hi >= lo;
        }
        if (!ok || (*p != ',' && *p != '\0')) {
            lookalike_errf(err, errlen, "shards: \"%.40s\" is not a shard number (0..%d) or range (\"0-3\")",
                           item, LOOKALIKE_SHARDS_MAX - 1);
            memset(out, 0, sizeof *out);
            return LOOKALIKE_EINVAL;
        }
        for (uint32_t i = lo; i <= hi; i++)
            set_add(out, i);
        if (*p == '\0')
            return 0;
        p++;
    }
}

void lookalike_shard_set_format(const lookalike_shard_set_t *set, char *out, size_t outlen)
{
    if (!outlen)
        return;
    out[0] = '\0';
    if (set->all) {
        snprintf(out, outlen, "all");
        return;
    }
    size_t used = 0;
    for (uint32_t i = 0; i < LOOKALIKE_SHARDS_MAX; i++) {
        if (!lookalike_shard_set_has(set, i))
            continue;
        uint32_t j = i;
        while (j + 1 < LOOKALIKE_SHARDS_MAX && lookalike_shard_set_has(set, j + 1))
            j++;
        int w = j == i ? snprintf(out + used, outlen - used, "%s%u", used ? "," : "", i)
                       : snprintf(out + used, outlen - used, "%s%u-%u", used ? "," : "", i, j);
        if (w < 0 || (size_t)w >= outlen - used) {
            out[used] = '\0';
            return;
        }
        used += (size_t)w;
        i = j;
    }
}
