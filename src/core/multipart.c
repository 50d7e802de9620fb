/* multipart/form-data parser over an in-memory body.
 *
 * Why not MHD's post processor: it needs a live MHD_Connection, so it could be neither unit
 * tested nor fuzzed on its own, and it streams parts to a callback where we want per-part
 * caps enforced before any handler sees the data. The body is already capped by the route's
 * body limit when it reaches this parser, so parsing it in place costs no copies.
 *
 * Grammar handled (RFC 2046 section 5.1.1, RFC 7578):
 *   [preamble CRLF] "--" boundary [LWSP] CRLF part-headers CRLF data
 *   (CRLF "--" boundary [LWSP] CRLF part-headers CRLF data)*
 *   CRLF "--" boundary "--" [epilogue]
 */
#include "core/core.h"

#include <string.h>
#include <strings.h>

#define MP_DEFAULT_MAX_PARTS 64
#define MP_DEFAULT_MAX_FIELD (64 * 1024)
#define MP_DEFAULT_MAX_HEADER (8 * 1024)
#define MP_MAX_BOUNDARY 70

static bool is_token_char(unsigned char c)
{
    return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* Reads a parameter value at *p (token or quoted-string) into the arena. */
static int read_param_value(const char **p, const char *end, core_arena *a, char **out)
{
    const char *s = *p;
    if (s < end && *s == '"') {
        s++;
        char *v = core_arena_alloc(a, (size_t)(end - s) + 1);
        if (!v)
            return CORE_ENOMEM;
        size_t n = 0;
        while (s < end && *s != '"') {
            if (*s == '\\' && s + 1 < end)
                s++;
            v[n++] = *s++;
        }
        if (s >= end)
            return CORE_EINVAL;
        v[n] = '\0';
        *p = s + 1;
        *out = v;
        return 0;
    }
    const char *start = s;
    while (s < end && is_token_char((unsigned char)*s))
        s++;
    if (s == start)
        return CORE_EINVAL;
    *out = core_arena_strndup(a, start, (size_t)(s - start));
    *p = s;
    return *out ? 0 : CORE_ENOMEM;
}

/* Walks "; key=value" pairs after a header's main value, calling back for each. */
typedef int (*param_fn)(void *ud, const char *key, size_t keylen, char *value);

static int walk_params(const char *p, const char *end, core_arena *a, param_fn fn, void *ud)
{
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p >= end)
            return 0;
        if (*p != ';')
            return CORE_EINVAL;
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p >= end)
            return 0; /* a trailing ';' is common enough to accept */
        const char *key = p;
        while (p < end && is_token_char((unsigned char)*p))
            p++;
        size_t keylen = (size_t)(p - key);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (keylen == 0 || p >= end || *p != '=')
            return CORE_EINVAL;
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        char *value;
        int rc = read_param_value(&p, end, a, &value);
        if (rc != 0)
            return rc;
        rc = fn(ud, key, keylen, value);
        if (rc != 0)
            return rc;
    }
}

static bool key_is(const char *key, size_t keylen, const char *want)
{
    return strlen(want) == keylen && strncasecmp(key, want, keylen) == 0;
}

static int boundary_param(void *ud, const char *key, size_t keylen, char *value)
{
    if (key_is(key, keylen, "boundary"))
        *(char **)ud = value;
    return 0;
}

int core_multipart_boundary(const char *content_type, core_arena *a, const char **boundary, char *err,
                            size_t errlen)
{
    static const char want[] = "multipart/form-data";
    if (!content_type) {
        snprintf(err, errlen, "Content-Type is missing; multipart/form-data is expected");
        return CORE_EINVAL;
    }
    const char *p = content_type;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, want, sizeof want - 1) != 0 ||
        (p[sizeof want - 1] != '\0' && p[sizeof want - 1] != ';' && p[sizeof want - 1] != ' ')) {
        snprintf(err, errlen, "Content-Type is \"%.80s\"; multipart/form-data is expected", content_type);
        return CORE_EINVAL;
    }
    p += sizeof want - 1;
    char *b = NULL;
    int rc = walk_params(p, p + strlen(p), a, boundary_param, &b);
    if (rc == CORE_ENOMEM) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    if (rc != 0 || !b || !*b || strlen(b) > MP_MAX_BOUNDARY) {
        snprintf(err, errlen, "Content-Type has no valid boundary parameter (1 to %d characters)",
                 MP_MAX_BOUNDARY);
        return CORE_EINVAL;
    }
    *boundary = b;
    return 0;
}

typedef struct disposition {
    char *name;
    char *filename;
} disposition;

static int disposition_param(void *ud, const char *key, size_t keylen, char *value)
{
    disposition *d = ud;
    if (key_is(key, keylen, "name"))
        d->name = value;
    else if (key_is(key, keylen, "filename"))
        d->filename = value;
    return 0;
}

/* Parses the header block [h, end) of one part. */
static int parse_part_headers(const char *h, const char *end, core_arena *a, core_multipart_part *part,
                              char *err, size_t errlen)
{
    bool have_disposition = false;
    while (h < end) {
        const char *eol = memmem(h, (size_t)(end - h), "\r\n", 2);
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(h, ':', (size_t)(line_end - h));
        if (!colon || colon == h) {
            snprintf(err, errlen, "multipart part header line has no name");
            return CORE_EINVAL;
        }
        size_t nlen = (size_t)(colon - h);
        const char *v = colon + 1;
        while (v < line_end && (*v == ' ' || *v == '\t'))
            v++;
        if (key_is(h, nlen, "Content-Disposition")) {
            static const char fd[] = "form-data";
            if ((size_t)(line_end - v) < sizeof fd - 1 || strncasecmp(v, fd, sizeof fd - 1) != 0) {
                snprintf(err, errlen, "multipart part Content-Disposition must be form-data");
                return CORE_EINVAL;
            }
            disposition d = {0};
            int rc = walk_params(v + sizeof fd - 1, line_end, a, disposition_param, &d);
            if (rc != 0 || !d.name) {
                snprintf(err, errlen, "multipart part Content-Disposition needs a name parameter");
                return rc == CORE_ENOMEM ? rc : CORE_EINVAL;
            }
            part->name = d.name;
            part->filename = d.filename;
            have_disposition = true;
        } else if (key_is(h, nlen, "Content-Type")) {
            const char *t = v, *te = line_end;
            while (te > t && (te[-1] == ' ' || te[-1] == '\t'))
                te--;
            part->content_type = core_arena_strndup(a, t, (size_t)(te - t));
            if (!part->content_type)
                return CORE_ENOMEM;
        }
        h = eol ? eol + 2 : end;
    }
    if (!have_disposition) {
        snprintf(err, errlen, "multipart part has no Content-Disposition header");
        return CORE_EINVAL;
    }
    return 0;
}

int core_multipart_parse(const char *boundary, const char *body, size_t len, const core_multipart_limits *lim,
                         core_arena *a, core_multipart_part **parts_out, size_t *nparts_out, char *err,
                         size_t errlen)
{
    size_t max_parts = lim && lim->max_parts ? lim->max_parts : MP_DEFAULT_MAX_PARTS;
    size_t max_part = lim && lim->max_part_size ? lim->max_part_size : (size_t)-1;
    size_t max_field = lim && lim->max_field_size ? lim->max_field_size : MP_DEFAULT_MAX_FIELD;
    size_t max_total = lim && lim->max_total ? lim->max_total : (size_t)-1;
    size_t max_header = lim && lim->max_header_size ? lim->max_header_size : MP_DEFAULT_MAX_HEADER;

    size_t blen = strlen(boundary);
    if (blen == 0 || blen > MP_MAX_BOUNDARY) {
        snprintf(err, errlen, "multipart boundary must be 1 to %d characters", MP_MAX_BOUNDARY);
        return CORE_EINVAL;
    }
    /* delim = CRLF "--" boundary; the first delimiter may lack its CRLF at the body start. */
    char *delim = core_arena_printf(a, "\r\n--%s", boundary);
    /* Every part costs at least one delimiter, which bounds the array by the body too. */
    size_t slots = len / (blen + 4) + 1;
    if (slots > max_parts)
        slots = max_parts;
    core_multipart_part *parts = core_arena_alloc(a, slots * sizeof *parts);
    if (!delim || !parts) {
        snprintf(err, errlen, "out of memory");
        return CORE_ENOMEM;
    }
    size_t dlen = blen + 4;
    const char *end = body + len, *p;
    if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
        p = body + dlen - 2;
    } else {
        const char *d = memmem(body, len, delim, dlen);
        if (!d) {
            snprintf(err, errlen, "multipart body has no boundary line");
            return CORE_EINVAL;
        }
        p = d + dlen;
    }

    size_t n = 0, total = 0;
    for (;;) {
        /* p is just past a delimiter. */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            snprintf(err, errlen, "multipart boundary line is not followed by CRLF");
            return CORE_EINVAL;
        }
        p += 2;
        const char *hend;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            hend = p; /* no headers at all */
        } else {
            size_t window = (size_t)(end - p);
            const char *h = memmem(p, window, "\r\n\r\n", 4);
            if (!h) {
                if (window > max_header) {
                    snprintf(err, errlen, "multipart part headers too large (more than %zu bytes)",
                             max_header);
                    return CORE_ETOOLARGE;
                }
                snprintf(err, errlen, "multipart part headers are not terminated");
                return CORE_EINVAL;
            }
            hend = h + 2;
        }
        if ((size_t)(hend - p) > max_header) {
            snprintf(err, errlen, "multipart part headers too large (more than %zu bytes)", max_header);
            return CORE_ETOOLARGE;
        }
        if (n == slots) {
            snprintf(err, errlen, "multipart body has too many parts (more than %zu): too large", max_parts);
            return CORE_ETOOLARGE;
        }
        core_multipart_part *part = &parts[n];
        memset(part, 0, sizeof *part);
        int rc = parse_part_headers(p, hend, a, part, err, errlen);
        if (rc != 0)
            return rc;
        if (!part->content_type)
            part->content_type = "text/plain";
        const char *data = hend + 2;
        const char *next = memmem(data, (size_t)(end - data), delim, dlen);
        if (!next) {
            snprintf(err, errlen, "multipart body ends without the closing boundary");
            return CORE_EINVAL;
        }
        part->data = data;
        part->len = (size_t)(next - data);
        size_t cap = part->filename ? max_part : (max_field < max_part ? max_field : max_part);
        if (part->len > cap) {
            snprintf(err, errlen, "multipart %s \"%.64s\" too large (%zu bytes, limit %zu)",
                     part->filename ? "file" : "field", part->name, part->len, cap);
            return CORE_ETOOLARGE;
        }
        total += part->len;
        if (total > max_total) {
            snprintf(err, errlen, "multipart parts too large in total (limit %zu bytes)", max_total);
            return CORE_ETOOLARGE;
        }
        n++;
        p = next + dlen;
    }
    *parts_out = parts;
    *nparts_out = n;
    return 0;
}
