/* Incremental HTTP/1.x response parser: status line and headers into a capped buffer, then a
 * body delimited by Content-Length, chunked coding, or the end of the connection. */
#include "load/load.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { S_HEAD, S_BODY_LEN, S_BODY_EOF, S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_CRLF, S_TRAILER, S_DONE };

/* Largest chunk size accepted (the body cap stops anything real long before). */
#define CHUNK_MAX ((int64_t)1 << 40)

int load_resp_init(load_resp_t *r, size_t body_max)
{
    memset(r, 0, sizeof *r);
    r->body_max = body_max;
    r->content_length = -1;
    if (!(r->head = malloc(LOAD_HEADER_MAX + 1)) || !(r->body = malloc(1))) {
        load_resp_release(r);
        return LOAD_ENOMEM;
    }
    r->body[0] = 0;
    r->body_cap = 1;
    return 0;
}

void load_resp_release(load_resp_t *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

void load_resp_reset(load_resp_t *r)
{
    r->state = S_HEAD;
    r->status = 0;
    r->close = 0;
    r->chunked = 0;
    r->content_length = -1;
    r->chunk_left = 0;
    r->head_len = 0;
    r->body_len = 0;
    r->line_len = 0;
    if (r->body)
        r->body[0] = 0;
}

int load_resp_empty(const load_resp_t *r)
{
    return r->state == S_HEAD && r->head_len == 0;
}

static int body_add(load_resp_t *r, const char *data, size_t n)
{
    if (n > r->body_max - r->body_len)
        return LOAD_ETOOLARGE;
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap * 2;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > r->body_max + 1)
            cap = r->body_max + 1;
        char *b = realloc(r->body, cap);
        if (!b)
            return LOAD_ENOMEM;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = 0;
    return 0;
}

/* 1 if the comma-separated header value holds `token` (ASCII case ignored). */
static int has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t e = j;
        while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - i == tl && strncasecmp(v + i, token, tl) == 0)
            return 1;
        i = j;
    }
    return 0;
}

/* Parses the header block head[0..len) (ending in its blank line). */
static int parse_head(load_resp_t *r, const char *h, size_t len)
{
    const char *end = h + len, *eol = memchr(h, '\n', len);
    if (!eol || eol - h < 12 || memcmp(h, "HTTP/1.", 7) != 0 || (h[7] != '0' && h[7] != '1') || h[8] != ' ')
        return LOAD_EPROTO;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (h[i] < '0' || h[i] > '9')
            return LOAD_EPROTO;
        st = st * 10 + (h[i] - '0');
    }
    if (st < 100 || (eol - h > 12 && h[12] != ' ' && h[12] != '\r'))
        return LOAD_EPROTO;
    r->status = st;
    int http10 = h[7] == '0', keep_alive = 0;
    r->close = 0;
    r->chunked = 0;
    r->content_length = -1;
    for (const char *line = eol + 1; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            return LOAD_EPROTO;
        size_t n = (size_t)(nl - line);
        if (n && line[n - 1] == '\r')
            n--;
        const char *next = nl + 1;
        if (n == 0)
            break;
        if (line[0] == ' ' || line[0] == '\t')
            return LOAD_EPROTO; /* obsolete line folding */
        const char *colon = memchr(line, ':', n);
        if (!colon || colon == line)
            return LOAD_EPROTO;
        size_t kl = (size_t)(colon - line);
        const char *v = colon + 1, *ve = line + n;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vl = (size_t)(ve - v);
        if (kl == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
            int64_t cl = 0;
            if (!vl)
                return LOAD_EPROTO;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9' || cl > (INT64_MAX - 9) / 10)
                    return LOAD_EPROTO;
                cl = cl * 10 + (v[i] - '0');
            }
            if (r->content_length >= 0 && r->content_length != cl)
                return LOAD_EPROTO;
            r->content_length = cl;
        } else if (kl == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
            r->chunked = has_token(v, vl, "chunked");
        } else if (kl == 10 && strncasecmp(line, "Connection", 10) == 0) {
            if (has_token(v, vl, "close"))
                r->close = 1;
            if (has_token(v, vl, "keep-alive"))
                keep_alive = 1;
        }
        line = next;
    }
    if (http10 && !keep_alive)
        r->close = 1;
    return 0;
}

/* Reads one CRLF- (or LF-) terminated line into r->line: 1 with the line complete (without its
 * end), 0 when more bytes are needed; *i advances over what was taken. */
static int take_line(load_resp_t *r, const char *d, size_t len, size_t *i, int *err)
{
    while (*i < len) {
        char c = d[(*i)++];
        if (c == '\n') {
            if (r->line_len && r->line[r->line_len - 1] == '\r')
                r->line_len--;
            r->line[r->line_len] = 0;
            return 1;
        }
        if (r->line_len + 1 >= sizeof r->line) {
            *err = LOAD_EPROTO;
            return 0;
        }
        r->line[r->line_len++] = c;
    }
    return 0;
}

int load_resp_feed(load_resp_t *r, const char *d, size_t len, size_t *used)
{
    size_t i = 0;
    int rc = LOAD_RESP_MORE, err = 0;
    while (rc == LOAD_RESP_MORE && i < len) {
        switch (r->state) {
        case S_HEAD: {
            size_t take = len - i, old = r->head_len;
            if (take > LOAD_HEADER_MAX - old)
                take = LOAD_HEADER_MAX - old;
            memcpy(r->head + old, d + i, take);
            r->head_len += take;
            r->head[r->head_len] = 0;
            size_t from = old > 3 ? old - 3 : 0, endpos = 0;
            for (size_t p = from; p < r->head_len && !endpos; p++) {
                if (r->head[p] != '\n')
                    continue;
                if (p >= 1 && r->head[p - 1] == '\n')
                    endpos = p + 1;
                else if (p >= 2 && r->head[p - 1] == '\r' && r->head[p - 2] == '\n')
                    endpos = p + 1;
            }
            if (!endpos) {
                if (r->head_len >= LOAD_HEADER_MAX) {
                    rc = LOAD_ETOOLARGE;
                    break;
                }
                i += take;
                break;
            }
            i += endpos - old;
            if ((rc = parse_head(r, r->head, endpos)) != 0)
                break;
            r->head_len = 0;
            rc = LOAD_RESP_MORE;
            if (r->status < 200 && r->status != 101)
                break; /* interim response: the real one follows */
            if (r->status < 200 || r->status == 204 || r->status == 304)
                r->state = S_DONE;
            else if (r->chunked)
                r->state = S_CHUNK_SIZE;
            else if ((uint64_t)r->content_length > r->body_max && r->content_length >= 0)
                rc = LOAD_ETOOLARGE;
            else if (r->content_length >= 0)
                r->state = r->content_length ? S_BODY_LEN : S_DONE;
            else {
                r->state = S_BODY_EOF;
                r->close = 1;
            }
            if (r->state == S_DONE)
                rc = LOAD_RESP_DONE;
            break;
        }
        case S_BODY_LEN: {
            size_t want = (size_t)r->content_length - r->body_len, take = len - i < want ? len - i : want;
            if ((rc = body_add(r, d + i, take)) != 0)
                break;
            i += take;
            if (r->body_len == (size_t)r->content_length) {
                r->state = S_DONE;
                rc = LOAD_RESP_DONE;
            }
            break;
        }
        case S_BODY_EOF:
            if ((rc = body_add(r, d + i, len - i)) != 0)
                break;
            i = len;
            break;
        case S_CHUNK_SIZE:
            if (!take_line(r, d, len, &i, &err)) {
                rc = err;
                break;
            }
            r->line_len = 0;
            {
                int64_t sz = 0;
                size_t k = 0;
                for (; r->line[k] && r->line[k] != ';' && r->line[k] != ' ' && r->line[k] != '\t'; k++) {
                    char c = r->line[k];
                    int v = c >= '0' && c <= '9'   ? c - '0'
                            : c >= 'a' && c <= 'f' ? c - 'a' + 10
                            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                   : -1;
                    if (v < 0 || sz > CHUNK_MAX) {
                        rc = LOAD_EPROTO;
                        break;
                    }
                    sz = sz * 16 + v;
                }
                if (rc != LOAD_RESP_MORE)
                    break;
                if (k == 0) {
                    rc = LOAD_EPROTO;
                    break;
                }
                if ((uint64_t)sz > r->body_max - r->body_len) {
                    rc = LOAD_ETOOLARGE;
                    break;
                }
                r->chunk_left = sz;
                r->state = sz ? S_CHUNK_DATA : S_TRAILER;
            }
            break;
        case S_CHUNK_DATA: {
            size_t take = len - i < (size_t)r->chunk_left ? len - i : (size_t)r->chunk_left;
            if ((rc = body_add(r, d + i, take)) != 0)
                break;
            i += take;
            r->chunk_left -= (int64_t)take;
            if (!r->chunk_left)
                r->state = S_CHUNK_CRLF;
            break;
        }
        case S_CHUNK_CRLF:
            if (!take_line(r, d, len, &i, &err)) {
                rc = err;
                break;
            }
            if (r->line_len) {
                rc = LOAD_EPROTO;
                break;
            }
            r->state = S_CHUNK_SIZE;
            break;
        case S_TRAILER:
            if (!take_line(r, d, len, &i, &err)) {
                rc = err;
                break;
            }
            if (!r->line_len) {
                r->state = S_DONE;
                rc = LOAD_RESP_DONE;
            }
            r->line_len = 0;
            break;
        default:
            rc = LOAD_RESP_DONE;
            break;
        }
    }
    if (rc == LOAD_RESP_MORE && r->state == S_DONE)
        rc = LOAD_RESP_DONE;
    if (used)
        *used = i;
    return rc;
}

int load_resp_eof(load_resp_t *r)
{
    if (r->state == S_BODY_EOF) {
        r->state = S_DONE;
        return LOAD_RESP_DONE;
    }
    return r->state == S_DONE ? LOAD_RESP_DONE : LOAD_EPROTO;
}
