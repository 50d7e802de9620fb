/* Flag table parsing. One table gives --help, environment variables and /debug's view of the
 * configuration, so the three can never drift apart. */
#include "core/core.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void env_name(const char *prefix, const char *name, char *out, size_t outlen)
{
    size_t j = 0;
    if (prefix && *prefix)
        j = (size_t)snprintf(out, outlen, "%s_", prefix);
    for (const char *p = name; *p && j + 1 < outlen; p++)
        out[j++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[j < outlen ? j : outlen - 1] = '\0';
}

static int parse_ll(const char *s, long long *out, const char **rest)
{
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno == ERANGE)
        return CORE_EINVAL;
    *out = v;
    *rest = end;
    return 0;
}

int core_parse_size(const char *s, size_t *out)
{
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '-')
        return CORE_EINVAL;
    long long v;
    const char *rest;
    if (parse_ll(s, &v, &rest) != 0)
        return CORE_EINVAL;
    unsigned long long mult = 1;
    if (*rest) {
        switch (*rest) {
        case 'k':
        case 'K':
            mult = 1ull << 10;
            break;
        case 'm':
        case 'M':
            mult = 1ull << 20;
            break;
        case 'g':
        case 'G':
            mult = 1ull << 30;
            break;
        case 'b':
        case 'B':
            break;
        default:
            return CORE_EINVAL;
        }
        rest++;
        /* accept "k", "kb", "kib" and "b" */
        if (mult > 1 && (*rest == 'i' || *rest == 'I'))
            rest++;
        if (mult > 1 && (*rest == 'b' || *rest == 'B'))
            rest++;
        if (*rest)
            return CORE_EINVAL;
    }
    if ((unsigned long long)v > SIZE_MAX / mult)
        return CORE_EINVAL;
    *out = (size_t)((unsigned long long)v * mult);
    return 0;
}

int core_parse_ms(const char *s, long long *out_ms)
{
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '-')
        return CORE_EINVAL;
    long long v;
    const char *rest;
    if (parse_ll(s, &v, &rest) != 0)
        return CORE_EINVAL;
    long long mult;
    if (*rest == '\0' || strcmp(rest, "s") == 0)
        mult = 1000;
    else if (strcmp(rest, "ms") == 0)
        mult = 1;
    else if (strcmp(rest, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(rest, "h") == 0)
        mult = 3600 * 1000;
    else
        return CORE_EINVAL;
    if (v > LLONG_MAX / mult)
        return CORE_EINVAL;
    *out_ms = v * mult;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return CORE_EINVAL;
}

static const char *expectation(const core_flag *f, char *buf, size_t len)
{
    switch (f->type) {
    case CORE_FLAG_STR:
        return "text";
    case CORE_FLAG_INT:
        snprintf(buf, len, "an integer in %lld..%lld", f->min, f->max);
        return buf;
    case CORE_FLAG_SIZE:
        snprintf(buf, len, "a size in bytes (suffix k, M, G) in %lld..%lld", f->min, f->max);
        return buf;
    case CORE_FLAG_MS:
        snprintf(buf, len, "a duration (e.g. 500ms, 5s, 2m) in %lldms..%lldms", f->min, f->max);
        return buf;
    case CORE_FLAG_BOOL:
        return "true or false";
    }
    return "?";
}

/* Stores text into f's destination; source says where it came from, for the message. */
static int apply(const core_flag *f, const char *text, const char *source, char *err, size_t errlen)
{
    long long v = 0;
    int rc = 0;
    switch (f->type) {
    case CORE_FLAG_STR:
        *(const char **)f->dst = text;
        return 0;
    case CORE_FLAG_BOOL:
        rc = parse_bool(text, (bool *)f->dst);
        break;
    case CORE_FLAG_INT: {
        const char *rest;
        rc = parse_ll(text, &v, &rest);
        if (rc == 0 && *rest)
            rc = CORE_EINVAL;
        break;
    }
    case CORE_FLAG_SIZE: {
        size_t sz;
        rc = core_parse_size(text, &sz);
        v = sz > (size_t)LLONG_MAX ? LLONG_MAX : (long long)sz;
        break;
    }
    case CORE_FLAG_MS:
        rc = core_parse_ms(text, &v);
        break;
    }
    if (rc == 0 && f->type != CORE_FLAG_BOOL && (v < f->min || v > f->max))
        rc = CORE_ETOOLARGE;
    if (rc != 0) {
        char exp[128];
        snprintf(err, errlen, "--%s (%s): \"%s\" is %s; expected %s", f->name, source, text,
                 rc == CORE_ETOOLARGE ? "out of range" : "not valid", expectation(f, exp, sizeof exp));
        return CORE_EINVAL;
    }
    if (f->type == CORE_FLAG_INT || f->type == CORE_FLAG_MS)
        *(int *)f->dst = (int)v;
    else if (f->type == CORE_FLAG_SIZE)
        *(size_t *)f->dst = (size_t)v;
    return 0;
}

static void print_help(const core_flag *flags, size_t n, const char *env_prefix, const char *usage, FILE *out)
{
    if (usage)
        fprintf(out, "%s\n\n", usage);
    fprintf(out, "Flags (each also read from the environment variable shown):\n");
    for (size_t i = 0; i < n; i++) {
        const core_flag *f = &flags[i];
        char env[96], exp[128];
        env_name(env_prefix, f->name, env, sizeof env);
        fprintf(out, "  --%-22s %s\n", f->name, f->help ? f->help : "");
        fprintf(out, "  %-24s env %s; %s; default \"%s\"\n", "", env, expectation(f, exp, sizeof exp),
                f->def ? f->def : "");
    }
    fprintf(out, "  --%-22s show this help\n", "help");
}

int core_flags_parse(const core_flag *flags, size_t n, const char *env_prefix, int argc, char **argv,
                     const char *usage, FILE *help_out, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const core_flag *f = &flags[i];
        const char *def = f->def ? f->def
                                 : (f->type == CORE_FLAG_STR    ? ""
                                    : f->type == CORE_FLAG_BOOL ? "false"
                                                                : "0");
        if (apply(f, def, "default", err, errlen) != 0)
            return CORE_EINVAL;
        char env[96];
        env_name(env_prefix, f->name, env, sizeof env);
        const char *ev = getenv(env);
        if (ev && apply(f, ev, env, err, errlen) != 0)
            return CORE_EINVAL;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help(flags, n, env_prefix, usage, help_out ? help_out : stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument \"%s\" (see --help)", arg);
            return CORE_EINVAL;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const core_flag *f = NULL;
        for (size_t j = 0; j < n && !f; j++)
            if (strlen(flags[j].name) == nlen && strncmp(flags[j].name, name, nlen) == 0)
                f = &flags[j];
        if (!f) {
            snprintf(err, errlen, "unknown flag --%.*s (see --help)", (int)nlen, name);
            return CORE_EINVAL;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (f->type == CORE_FLAG_BOOL) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "--%s needs a value", f->name);
            return CORE_EINVAL;
        }
        if (apply(f, value, "command line", err, errlen) != 0)
            return CORE_EINVAL;
    }
    return 0;
}

json_t *core_flags_to_json(const core_flag *flags, size_t n)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const core_flag *f = &flags[i];
        json_t *v = NULL;
        switch (f->type) {
        case CORE_FLAG_STR:
            v = json_string(*(const char **)f->dst ? *(const char **)f->dst : "");
            break;
        case CORE_FLAG_INT:
        case CORE_FLAG_MS:
            v = json_integer(*(int *)f->dst);
            break;
        case CORE_FLAG_SIZE:
            v = json_integer((json_int_t) * (size_t *)f->dst);
            break;
        case CORE_FLAG_BOOL:
            v = json_boolean(*(bool *)f->dst);
            break;
        }
        json_object_set_new(o, f->name, v ? v : json_null());
    }
    return o;
}
