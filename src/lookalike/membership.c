/* Membership sources: who the other nodes of a cluster are (design in lookalike.h, section
 * Cluster). The static source holds a fixed list given at start. */
#include "lookalike/lookalike.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    lookalike_membership_t base; /* first: the interface */
    lookalike_member_t *members;
    size_t n;
} static_src_t;

static int static_list(lookalike_membership_t *m, lookalike_member_t **out, size_t *n, char *err,
                       size_t errlen)
{
    static_src_t *s = (static_src_t *)m;
    *out = NULL;
    *n = 0;
    if (!s->n)
        return 0;
    if (!(*out = malloc(s->n * sizeof **out))) {
        lookalike_errf(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    memcpy(*out, s->members, s->n * sizeof **out);
    *n = s->n;
    return 0;
}

static void static_free(lookalike_membership_t *m)
{
    static_src_t *s = (static_src_t *)m;
    if (!s)
        return;
    free(s->members);
    free(s);
}

int lookalike_node_url_parse(const char *u, size_t n, char out[LOOKALIKE_NODE_URL_MAX + 1])
{
    if (n && u[n - 1] == '/')
        n--;
    if (n <= 7 || n > LOOKALIKE_NODE_URL_MAX || strncmp(u, "http://", 7) != 0)
        return 0;
    const char *host = u + 7, *end = u + n, *colon = NULL;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (!close || close + 1 >= end || close[1] != ':')
            return 0;
        colon = close + 1;
    } else {
        for (const char *p = host; p < end; p++) {
            if (*p == ':')
                colon = p;
            else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                       *p == '.' || *p == '-'))
                return 0;
        }
        if (!colon || colon == host)
            return 0;
    }
    long port = 0;
    for (const char *p = colon + 1; p < end; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            return 0;
        port = port * 10 + (*p - '0');
    }
    if (colon + 1 == end || port < 1 || port > 65535)
        return 0;
    memcpy(out, u, n);
    out[n] = '\0';
    return 1;
}

lookalike_membership_t *lookalike_membership_static(const char *spec, const char *self, char *err,
                                                    size_t errlen)
{
    static_src_t *s = calloc(1, sizeof *s);
    if (!s || !(s->members = calloc(LOOKALIKE_MEMBERS_MAX, sizeof *s->members))) {
        free(s);
        lookalike_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.kind = "static";
    s->base.list = static_list;
    s->base.free = static_free;
    for (const char *p = spec ? spec : ""; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        lookalike_member_t m;
        size_t nl = eq ? (size_t)(eq - p) : 0;
        if (!eq || nl > LOOKALIKE_NODE_NAME_MAX) {
            lookalike_errf(err, errlen, "peers: \"%.*s\" is not NAME=http://HOST:PORT",
                           (int)(len > 80 ? 80 : len), p);
            goto fail;
        }
        memcpy(m.name, p, nl);
        m.name[nl] = '\0';
        if (!lookalike_node_name_valid(m.name) || !lookalike_node_url_parse(eq + 1, len - nl - 1, m.url)) {
            lookalike_errf(
                err, errlen,
                "peers: \"%.*s\" is not NAME=http://HOST:PORT (a name of 1..%d of A-Z a-z 0-9 . _ -)",
                (int)(len > 80 ? 80 : len), p, LOOKALIKE_NODE_NAME_MAX);
            goto fail;
        }
        for (size_t i = 0; i < s->n; i++)
            if (strcmp(s->members[i].name, m.name) == 0) {
                lookalike_errf(err, errlen, "peers: %s is listed twice", m.name);
                goto fail;
            }
        if (!self || strcmp(self, m.name) != 0) {
            if (s->n == LOOKALIKE_MEMBERS_MAX) {
                lookalike_errf(err, errlen, "peers: too large (at most %d)", LOOKALIKE_MEMBERS_MAX);
                goto fail;
            }
            s->members[s->n++] = m;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return &s->base;
fail:
    static_free(&s->base);
    return NULL;
}
