/* Router: a flat list of patterns, each with a handler value per method. Services have tens of
 * routes, so a linear scan over pre-split patterns costs less than the request parsing around
 * it and keeps the precedence rule (earliest more-specific segment wins) easy to see. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

#define ROUTER_MAX_METHODS 12
#define ROUTER_METHOD_LEN 16

enum seg_kind { SEG_TAIL = 0, SEG_PARAM = 1, SEG_LITERAL = 2 };

typedef struct route_seg {
    enum seg_kind kind;
    char *text; /* literal text, or the parameter's name */
} route_seg;

typedef struct route_entry {
    char *pattern;
    size_t nseg;
    route_seg segs[CORE_ROUTER_MAX_SEGMENTS];
    size_t nparams;
    const char *param_names[CORE_ROUTER_MAX_PARAMS];
    size_t nmethods;
    char methods[ROUTER_MAX_METHODS][ROUTER_METHOD_LEN];
    void *values[ROUTER_MAX_METHODS];
    char *allow;
} route_entry;

struct core_router {
    route_entry **entries;
    size_t n, cap;
};

core_router *core_router_new(void)
{
    return calloc(1, sizeof(core_router));
}

static void entry_free(route_entry *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nseg; i++)
        free(e->segs[i].text);
    free(e->pattern);
    free(e->allow);
    free(e);
}

void core_router_free(core_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        entry_free(r->entries[i]);
    free(r->entries);
    free(r);
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static int parse_pattern(route_entry *e, const char *pattern, char *err, size_t errlen)
{
    if (pattern[0] != '/') {
        snprintf(err, errlen, "route pattern \"%s\" must start with '/'", pattern);
        return CORE_EINVAL;
    }
    const char *p = pattern + 1;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (e->nseg == CORE_ROUTER_MAX_SEGMENTS) {
            snprintf(err, errlen, "route pattern \"%s\" has more than %d segments", pattern,
                     CORE_ROUTER_MAX_SEGMENTS);
            return CORE_EINVAL;
        }
        if (e->nseg > 0 && e->segs[e->nseg - 1].kind == SEG_TAIL) {
            snprintf(err, errlen, "route pattern \"%s\": a {name...} segment must be last", pattern);
            return CORE_EINVAL;
        }
        route_seg *s = &e->segs[e->nseg];
        if (n == 0) {
            snprintf(err, errlen, "route pattern \"%s\" has an empty segment", pattern);
            return CORE_EINVAL;
        }
        if (p[0] == '{') {
            bool tail = n > 5 && memcmp(p + n - 4, "...}", 4) == 0;
            size_t name_len = tail ? n - 5 : n - 2;
            if (p[n - 1] != '}' || !valid_name(p + 1, name_len)) {
                snprintf(err, errlen,
                         "route pattern \"%s\": bad parameter \"%.*s\" (want {name} or {name...})", pattern,
                         (int)n, p);
                return CORE_EINVAL;
            }
            if (e->nparams == CORE_ROUTER_MAX_PARAMS) {
                snprintf(err, errlen, "route pattern \"%s\" has more than %d parameters", pattern,
                         CORE_ROUTER_MAX_PARAMS);
                return CORE_EINVAL;
            }
            s->kind = tail ? SEG_TAIL : SEG_PARAM;
            s->text = strndup(p + 1, name_len);
            if (!s->text)
                return CORE_ENOMEM;
            for (size_t i = 0; i < e->nparams; i++) {
                if (strcmp(e->param_names[i], s->text) == 0) {
                    e->nseg++;
                    snprintf(err, errlen, "route pattern \"%s\" repeats parameter {%s}", pattern, s->text);
                    return CORE_EINVAL;
                }
            }
            e->param_names[e->nparams++] = s->text;
        } else {
            if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.') || memchr(p, '%', n) ||
                memchr(p, '{', n) || memchr(p, '}', n)) {
                snprintf(err, errlen, "route pattern \"%s\": bad literal segment \"%.*s\"", pattern, (int)n,
                         p);
                return CORE_EINVAL;
            }
            s->kind = SEG_LITERAL;
            s->text = strndup(p, n);
            if (!s->text)
                return CORE_ENOMEM;
        }
        e->nseg++;
        p += n;
        if (*p == '/') {
            p++;
            if (*p == '\0') {
                snprintf(err, errlen, "route pattern \"%s\" ends with '/'", pattern);
                return CORE_EINVAL;
            }
        }
    }
    return 0;
}

/* Two patterns with the same shape (literals equal, parameters in the same places) would
 * shadow each other; they must be one pattern. */
static bool same_shape(const route_entry *a, const route_entry *b)
{
    if (a->nseg != b->nseg)
        return false;
    for (size_t i = 0; i < a->nseg; i++) {
        if (a->segs[i].kind != b->segs[i].kind)
            return false;
        if (a->segs[i].kind == SEG_LITERAL && strcmp(a->segs[i].text, b->segs[i].text) != 0)
            return false;
    }
    return true;
}

static int build_allow(route_entry *e)
{
    size_t len = 0;
    bool has_head = false;
    for (size_t i = 0; i < e->nmethods; i++) {
        len += strlen(e->methods[i]) + 2;
        has_head |= strcmp(e->methods[i], "HEAD") == 0;
    }
    len += 8;
    char *a = malloc(len);
    if (!a)
        return CORE_ENOMEM;
    a[0] = '\0';
    size_t off = 0;
    for (size_t i = 0; i < e->nmethods; i++) {
        off += (size_t)snprintf(a + off, len - off, "%s%s", off ? ", " : "", e->methods[i]);
        if (strcmp(e->methods[i], "GET") == 0 && !has_head)
            off += (size_t)snprintf(a + off, len - off, ", HEAD");
    }
    free(e->allow);
    e->allow = a;
    return 0;
}

int core_router_add(core_router *r, const char *methods, const char *pattern, void *value, char *err,
                    size_t errlen)
{
    route_entry *fresh = calloc(1, sizeof *fresh);
    if (!fresh) {
        snprintf(err, errlen, "out of memory");
        return CORE_ENOMEM;
    }
    int rc = parse_pattern(fresh, pattern, err, errlen);
    if (rc != 0)
        goto fail;
    route_entry *e = NULL;
    for (size_t i = 0; i < r->n; i++) {
        if (same_shape(r->entries[i], fresh)) {
            if (strcmp(r->entries[i]->pattern, pattern) != 0) {
                snprintf(err, errlen, "route pattern \"%s\" conflicts with \"%s\"", pattern,
                         r->entries[i]->pattern);
                rc = CORE_EINVAL;
                goto fail;
            }
            e = r->entries[i];
        }
    }
    if (!e) {
        fresh->pattern = strdup(pattern);
        if (!fresh->pattern) {
            rc = CORE_ENOMEM;
            goto fail;
        }
        e = fresh;
    }
    for (const char *m = methods; *m;) {
        size_t n = strcspn(m, ", ");
        if (n == 0 || n >= ROUTER_METHOD_LEN) {
            snprintf(err, errlen, "route \"%s\": bad method list \"%s\"", pattern, methods);
            rc = CORE_EINVAL;
            goto fail;
        }
        for (size_t i = 0; i < e->nmethods; i++) {
            if (strlen(e->methods[i]) == n && memcmp(e->methods[i], m, n) == 0) {
                snprintf(err, errlen, "route \"%s\": method %.*s added twice", pattern, (int)n, m);
                rc = CORE_EINVAL;
                goto fail;
            }
        }
        if (e->nmethods == ROUTER_MAX_METHODS) {
            snprintf(err, errlen, "route \"%s\": too many methods", pattern);
            rc = CORE_EINVAL;
            goto fail;
        }
        memcpy(e->methods[e->nmethods], m, n);
        e->methods[e->nmethods][n] = '\0';
        e->values[e->nmethods++] = value;
        m += n;
        m += strspn(m, ", ");
    }
    if (e->nmethods == 0) {
        snprintf(err, errlen, "route \"%s\": no method given", pattern);
        rc = CORE_EINVAL;
        goto fail;
    }
    rc = build_allow(e);
    if (rc != 0)
        goto fail;
    if (e == fresh) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 16;
            route_entry **ne = realloc(r->entries, cap * sizeof *ne);
            if (!ne) {
                rc = CORE_ENOMEM;
                goto fail;
            }
            r->entries = ne;
            r->cap = cap;
        }
        r->entries[r->n++] = e;
    } else {
        entry_free(fresh);
    }
    return 0;
fail:
    /* fresh is never in the list on failure. Methods already appended to an existing entry
     * stay: a failed add stops a program's set-up, so no caller goes on with that router. */
    entry_free(fresh);
    return rc;
}

typedef struct split_path {
    size_t n;
    char *seg[CORE_ROUTER_MAX_SEGMENTS]; /* decoded */
} split_path;

static core_route_status split(const char *raw, core_arena *a, split_path *sp)
{
    sp->n = 0;
    if (raw[0] != '/')
        return CORE_ROUTE_BAD_PATH;
    const char *p = raw + 1;
    if (*p == '\0')
        return CORE_ROUTE_FOUND;
    for (;;) {
        size_t n = strcspn(p, "/");
        if (sp->n == CORE_ROUTER_MAX_SEGMENTS)
            return CORE_ROUTE_BAD_PATH;
        size_t dlen;
        if (core_url_decode(a, p, n, false, &sp->seg[sp->n], &dlen) != 0)
            return CORE_ROUTE_BAD_PATH;
        const char *d = sp->seg[sp->n];
        if ((dlen == 1 && d[0] == '.') || (dlen == 2 && d[0] == '.' && d[1] == '.'))
            return CORE_ROUTE_BAD_PATH;
        sp->n++;
        p += n;
        if (*p == '\0')
            break;
        p++;
    }
    return CORE_ROUTE_FOUND;
}

/* Returns the rank vector comparison: >0 if a is more specific than b at the first segment
 * where they differ. */
static int compare_specificity(const route_entry *a, const route_entry *b)
{
    size_t n = a->nseg < b->nseg ? a->nseg : b->nseg;
    for (size_t i = 0; i < n; i++)
        if (a->segs[i].kind != b->segs[i].kind)
            return (int)a->segs[i].kind - (int)b->segs[i].kind;
    return 0;
}

static bool entry_matches(const route_entry *e, const split_path *sp)
{
    bool tail = e->nseg > 0 && e->segs[e->nseg - 1].kind == SEG_TAIL;
    if (tail ? sp->n < e->nseg : sp->n != e->nseg)
        return false;
    for (size_t i = 0; i < e->nseg; i++) {
        const route_seg *s = &e->segs[i];
        if (s->kind == SEG_LITERAL && strcmp(s->text, sp->seg[i]) != 0)
            return false;
        if (s->kind != SEG_LITERAL && sp->seg[i][0] == '\0')
            return false;
    }
    if (tail)
        for (size_t i = e->nseg - 1; i < sp->n; i++)
            if (sp->seg[i][0] == '\0')
                return false;
    return true;
}

static int method_index(const route_entry *e, const char *method)
{
    for (size_t i = 0; i < e->nmethods; i++)
        if (strcmp(e->methods[i], method) == 0)
            return (int)i;
    if (strcmp(method, "HEAD") == 0)
        return method_index(e, "GET");
    return -1;
}

static int fill_params(const route_entry *e, const split_path *sp, core_arena *a, core_route_match *m)
{
    m->nparams = 0;
    for (size_t i = 0; i < e->nseg; i++) {
        const route_seg *s = &e->segs[i];
        if (s->kind == SEG_LITERAL)
            continue;
        const char *v = sp->seg[i];
        if (s->kind == SEG_TAIL) {
            size_t len = 0;
            for (size_t j = i; j < sp->n; j++) {
                /* A decoded '/' inside one segment of a tail would let "a%2F..%2Fb" become a
                 * path with a ".." component once joined. */
                if (strchr(sp->seg[j], '/'))
                    return CORE_EINVAL;
                len += strlen(sp->seg[j]) + 1;
            }
            char *joined = core_arena_alloc(a, len);
            if (!joined)
                return CORE_ENOMEM;
            size_t off = 0;
            for (size_t j = i; j < sp->n; j++) {
                size_t sl = strlen(sp->seg[j]);
                if (off)
                    joined[off++] = '/';
                memcpy(joined + off, sp->seg[j], sl);
                off += sl;
            }
            joined[off] = '\0';
            v = joined;
        }
        m->param_names[m->nparams] = s->text;
        m->param_values[m->nparams++] = v;
    }
    return 0;
}

core_route_status core_router_match(const core_router *r, const char *method, const char *raw_path,
                                    core_arena *a, core_route_match *m)
{
    memset(m, 0, sizeof *m);
    split_path sp;
    if (split(raw_path, a, &sp) != CORE_ROUTE_FOUND)
        return CORE_ROUTE_BAD_PATH;
    const route_entry *best = NULL, *best_any = NULL;
    int best_idx = -1;
    for (size_t i = 0; i < r->n; i++) {
        const route_entry *e = r->entries[i];
        if (!entry_matches(e, &sp))
            continue;
        if (!best_any || compare_specificity(e, best_any) > 0)
            best_any = e;
        int idx = method_index(e, method);
        if (idx >= 0 && (!best || compare_specificity(e, best) > 0)) {
            best = e;
            best_idx = idx;
        }
    }
    if (!best) {
        if (!best_any)
            return CORE_ROUTE_NOT_FOUND;
        m->pattern = best_any->pattern;
        m->allow = best_any->allow;
        return CORE_ROUTE_METHOD_NOT_ALLOWED;
    }
    if (fill_params(best, &sp, a, m) != 0)
        return CORE_ROUTE_BAD_PATH;
    m->value = best->values[best_idx];
    m->pattern = best->pattern;
    m->allow = best->allow;
    return CORE_ROUTE_FOUND;
}

const char *core_router_allow(const core_router *r, const char *raw_path, core_arena *a)
{
    core_route_match m;
    core_route_status st = core_router_match(r, "\x01", raw_path, a, &m);
    return st == CORE_ROUTE_METHOD_NOT_ALLOWED ? m.allow : NULL;
}
