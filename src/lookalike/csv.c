/* RFC 4180 CSV reader, streaming one row at a time from a FILE* or a memory buffer.
 *
 * A row is parsed by a four-state machine into one byte buffer holding every field,
 * NUL-terminated, back to back, plus an offset per field; both are capped, so a hostile file
 * costs at most max_row bytes of memory however long its lines are. */
#include "lookalike/lookalike.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define READ_CHUNK 65536
#define END_OF_INPUT (-1)
#define READ_ERROR (-2)

struct lookalike_csv {
    FILE *f;
    const unsigned char *buf; /* memory source, or the read chunk of a FILE source */
    size_t len, pos;
    unsigned char *chunk;
    int eof;
    int ioerr; /* sticky: a failed read is reported however it was first seen */

    lookalike_csv_limits_t lim;
    uint64_t line;       /* line of the next byte to read, 1-based */
    uint64_t row_line;   /* line the current row started on */
    uint64_t field_line; /* line the current field started on */
    int started;         /* the BOM check has been done */

    char *row; /* fields, each NUL-terminated */
    size_t row_len, row_cap;
    size_t *off; /* start of each field in row */
    size_t nfields, off_cap;

    char **header; /* column names, after lookalike_csv_read_header */
    size_t ncols;
};

static void csv_err(const lookalike_csv_t *c, char *err, size_t errlen, uint64_t line, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    int n = snprintf(err, errlen, "line %llu: ", (unsigned long long)line);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    (void)c;
}

void lookalike_csv_limits_default(lookalike_csv_limits_t *l)
{
    l->max_field = 64 * 1024;
    l->max_row = 1024 * 1024;
    l->max_fields = 256;
}

static lookalike_csv_t *csv_new(const lookalike_csv_limits_t *lim, char *err, size_t errlen)
{
    lookalike_csv_t *c = calloc(1, sizeof *c);
    if (!c) {
        if (err && errlen)
            snprintf(err, errlen, "csv: out of memory");
        return NULL;
    }
    if (lim)
        c->lim = *lim;
    else
        lookalike_csv_limits_default(&c->lim);
    if (c->lim.max_field == 0 || c->lim.max_row == 0 || c->lim.max_fields == 0) {
        if (err && errlen)
            snprintf(err, errlen, "csv: limits must be positive");
        free(c);
        return NULL;
    }
    c->line = 1;
    return c;
}

lookalike_csv_t *lookalike_csv_open_file(FILE *f, const lookalike_csv_limits_t *lim, char *err, size_t errlen)
{
    lookalike_csv_t *c = csv_new(lim, err, errlen);
    if (!c)
        return NULL;
    c->chunk = malloc(READ_CHUNK);
    if (!c->chunk) {
        if (err && errlen)
            snprintf(err, errlen, "csv: out of memory");
        free(c);
        return NULL;
    }
    c->f = f;
    c->buf = c->chunk;
    return c;
}

lookalike_csv_t *lookalike_csv_open_buffer(const char *buf, size_t len, const lookalike_csv_limits_t *lim,
                                           char *err, size_t errlen)
{
    lookalike_csv_t *c = csv_new(lim, err, errlen);
    if (!c)
        return NULL;
    c->buf = (const unsigned char *)buf;
    c->len = len;
    c->eof = 1;
    return c;
}

void lookalike_csv_free(lookalike_csv_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ncols; i++)
        free(c->header[i]);
    free(c->header);
    free(c->row);
    free(c->off);
    free(c->chunk);
    free(c);
}

static int rd(lookalike_csv_t *c)
{
    if (c->pos == c->len) {
        if (c->ioerr)
            return READ_ERROR;
        if (c->eof)
            return END_OF_INPUT;
        size_t n = fread(c->chunk, 1, READ_CHUNK, c->f);
        if (n == 0) {
            c->eof = 1;
            c->ioerr = ferror(c->f) != 0;
            return c->ioerr ? READ_ERROR : END_OF_INPUT;
        }
        c->len = n;
        c->pos = 0;
    }
    return c->buf[c->pos++];
}

static int peek(lookalike_csv_t *c)
{
    int ch = rd(c);
    if (ch >= 0)
        c->pos--;
    return ch;
}

static int append(lookalike_csv_t *c, char ch, size_t field_len, char *err, size_t errlen)
{
    if (field_len >= c->lim.max_field) {
        csv_err(c, err, errlen, c->line, "field %zu too large (over %zu bytes)", c->nfields + 1,
                c->lim.max_field);
        return LOOKALIKE_ETOOLARGE;
    }
    if (c->row_len + 1 >= c->lim.max_row) {
        csv_err(c, err, errlen, c->line, "row too large (over %zu bytes)", c->lim.max_row);
        return LOOKALIKE_ETOOLARGE;
    }
    if (c->row_len + 1 >= c->row_cap) {
        size_t cap = c->row_cap ? c->row_cap * 2 : 256;
        if (cap > c->lim.max_row + 1)
            cap = c->lim.max_row + 1;
        char *n = realloc(c->row, cap);
        if (!n) {
            csv_err(c, err, errlen, c->line, "out of memory");
            return LOOKALIKE_ENOMEM;
        }
        c->row = n;
        c->row_cap = cap;
    }
    c->row[c->row_len++] = ch;
    return 0;
}

/* Closes the field that started at `start`: NUL-terminates it and checks its UTF-8. */
static int end_field(lookalike_csv_t *c, size_t start, char *err, size_t errlen)
{
    if (c->nfields == c->lim.max_fields) {
        csv_err(c, err, errlen, c->field_line, "too many fields (over %zu)", c->lim.max_fields);
        return LOOKALIKE_ETOOLARGE;
    }
    if (c->row_len + 1 > c->row_cap) {
        char *n = realloc(c->row, c->row_cap + 16);
        if (!n) {
            csv_err(c, err, errlen, c->line, "out of memory");
            return LOOKALIKE_ENOMEM;
        }
        c->row = n;
        c->row_cap += 16;
    }
    if (c->nfields == c->off_cap) {
        size_t cap = c->off_cap ? c->off_cap * 2 : 16;
        size_t *n = realloc(c->off, cap * sizeof *n);
        if (!n) {
            csv_err(c, err, errlen, c->line, "out of memory");
            return LOOKALIKE_ENOMEM;
        }
        c->off = n;
        c->off_cap = cap;
    }
    c->row[c->row_len++] = '\0';
    size_t len = c->row_len - 1 - start, pos = 0;
    uint32_t cp;
    while (pos < len) {
        size_t at = pos;
        if (lookalike_utf8_decode(c->row + start, len, &pos, &cp) != 0) {
            csv_err(c, err, errlen, c->field_line, "field %zu: invalid UTF-8 at byte %zu", c->nfields + 1,
                    at);
            return LOOKALIKE_EUTF8;
        }
        if (cp == 0) {
            csv_err(c, err, errlen, c->field_line, "field %zu: NUL byte at byte %zu", c->nfields + 1, at);
            return LOOKALIKE_EINVAL;
        }
    }
    c->off[c->nfields++] = start;
    return 0;
}

enum { ST_FIELD_START, ST_UNQUOTED, ST_QUOTED, ST_QUOTE_IN_QUOTED };

/* Parses one record. Returns 1 (a row), 0 (end of input) or a negative error. */
static int parse_row(lookalike_csv_t *c, char *err, size_t errlen)
{
    if (!c->started) {
        c->started = 1;
        /* A UTF-8 byte order mark is dropped, since spreadsheet programs write one. */
        if (peek(c) == 0xEF && c->len - c->pos >= 3 && c->buf[c->pos + 1] == 0xBB &&
            c->buf[c->pos + 2] == 0xBF)
            c->pos += 3;
    }
    for (;;) {
        c->row_len = 0;
        c->nfields = 0;
        c->row_line = c->line;
        int state = ST_FIELD_START, rc;
        c->field_line = c->line;
        size_t start = 0;
        int blank = 1;
        for (;;) {
            if (state == ST_FIELD_START)
                c->field_line = c->line;
            int ch = rd(c);
            if (ch == READ_ERROR) {
                csv_err(c, err, errlen, c->line, "read error");
                return LOOKALIKE_EIO;
            }
            int eol = ch == '\n' || ch == '\r', crlf = 0;
            if (eol) {
                if (ch == '\r' && peek(c) == '\n') {
                    rd(c);
                    crlf = 1;
                }
                c->line++;
            }
            switch (state) {
            case ST_FIELD_START:
                start = c->row_len;
                if (ch == END_OF_INPUT || eol) {
                    if (blank) {
                        if (ch == END_OF_INPUT)
                            return 0;
                        goto next_row; /* an empty line is no record */
                    }
                    if ((rc = end_field(c, start, err, errlen)) != 0)
                        return rc;
                    return 1;
                }
                blank = 0;
                if (ch == '"') {
                    state = ST_QUOTED;
                } else if (ch == ',') {
                    if ((rc = end_field(c, start, err, errlen)) != 0)
                        return rc;
                } else {
                    if ((rc = append(c, (char)ch, 0, err, errlen)) != 0)
                        return rc;
                    state = ST_UNQUOTED;
                }
                break;
            case ST_UNQUOTED:
                if (ch == END_OF_INPUT || eol || ch == ',') {
                    if ((rc = end_field(c, start, err, errlen)) != 0)
                        return rc;
                    if (ch != ',')
                        return 1;
                    state = ST_FIELD_START;
                } else if (ch == '"') {
                    csv_err(c, err, errlen, c->line, "field %zu: quote inside an unquoted field",
                            c->nfields + 1);
                    return LOOKALIKE_EINVAL;
                } else if ((rc = append(c, (char)ch, c->row_len - start, err, errlen)) != 0) {
                    return rc;
                }
                break;
            case ST_QUOTED:
                if (ch == END_OF_INPUT) {
                    csv_err(c, err, errlen, c->line,
                            "field %zu: quoted field opened on line %llu never closed", c->nfields + 1,
                            (unsigned long long)c->field_line);
                    return LOOKALIKE_EINVAL;
                }
                if (ch == '"') {
                    state = ST_QUOTE_IN_QUOTED;
                    break;
                }
                /* Line breaks inside quotes are data, kept byte for byte. */
                if ((rc = append(c, (char)ch, c->row_len - start, err, errlen)) != 0)
                    return rc;
                if (crlf && (rc = append(c, '\n', c->row_len - start, err, errlen)) != 0)
                    return rc;
                break;
            case ST_QUOTE_IN_QUOTED:
                if (ch == '"') {
                    if ((rc = append(c, '"', c->row_len - start, err, errlen)) != 0)
                        return rc;
                    state = ST_QUOTED;
                } else if (ch == END_OF_INPUT || eol || ch == ',') {
                    if ((rc = end_field(c, start, err, errlen)) != 0)
                        return rc;
                    if (ch != ',')
                        return 1;
                    state = ST_FIELD_START;
                } else {
                    csv_err(c, err, errlen, c->line, "field %zu: unexpected character after a closing quote",
                            c->nfields + 1);
                    return LOOKALIKE_EINVAL;
                }
                break;
            }
        }
    next_row:;
    }
}

int lookalike_csv_next(lookalike_csv_t *c, char *err, size_t errlen)
{
    int rc = parse_row(c, err, errlen);
    if (rc == 1 && c->header && c->nfields != c->ncols) {
        csv_err(c, err, errlen, c->row_line, "%zu fields, but the header has %zu columns", c->nfields,
                c->ncols);
        return LOOKALIKE_EINVAL;
    }
    return rc;
}

int lookalike_csv_read_header(lookalike_csv_t *c, char *err, size_t errlen)
{
    if (c->header) {
        csv_err(c, err, errlen, c->row_line, "header already read");
        return LOOKALIKE_EINVAL;
    }
    int rc = parse_row(c, err, errlen);
    if (rc == 0) {
        csv_err(c, err, errlen, c->line, "no header row (empty input)");
        return LOOKALIKE_EINVAL;
    }
    if (rc < 0)
        return rc;
    char **h = calloc(c->nfields, sizeof *h);
    if (!h) {
        csv_err(c, err, errlen, c->row_line, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    for (size_t i = 0; i < c->nfields; i++) {
        const char *name = c->row + c->off[i];
        if (!*name) {
            csv_err(c, err, errlen, c->row_line, "header column %zu has no name", i + 1);
            rc = LOOKALIKE_EINVAL;
            goto fail;
        }
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(h[j], name) == 0) {
                csv_err(c, err, errlen, c->row_line, "header column %zu repeats the name \"%s\"", i + 1,
                        h[j]);
                rc = LOOKALIKE_EINVAL;
                goto fail;
            }
        h[i] = strdup(name);
        if (!h[i]) {
            csv_err(c, err, errlen, c->row_line, "out of memory");
            rc = LOOKALIKE_ENOMEM;
            goto fail;
        }
    }
    c->header = h;
    c->ncols = c->nfields;
    return 0;
fail:
    for (size_t i = 0; i < c->nfields; i++)
        free(h[i]);
    free(h);
    return rc;
}

size_t lookalike_csv_ncols(const lookalike_csv_t *c)
{
    return c->ncols;
}

const char *lookalike_csv_col_name(const lookalike_csv_t *c, size_t i)
{
    return i < c->ncols ? c->header[i] : NULL;
}

int lookalike_csv_column(const lookalike_csv_t *c, const char *name)
{
    for (size_t i = 0; i < c->ncols; i++)
        if (strcasecmp(c->header[i], name) == 0)
            return (int)i;
    return -1;
}

size_t lookalike_csv_nfields(const lookalike_csv_t *c)
{
    return c->nfields;
}

const char *lookalike_csv_field(const lookalike_csv_t *c, size_t i, size_t *len)
{
    if (i >= c->nfields)
        return NULL;
    const char *s = c->row + c->off[i];
    if (len)
        *len = (i + 1 < c->nfields ? c->off[i + 1] : c->row_len) - c->off[i] - 1;
    return s;
}

const char *lookalike_csv_get(const lookalike_csv_t *c, const char *name)
{
    int i = lookalike_csv_column(c, name);
    return i < 0 ? NULL : lookalike_csv_field(c, (size_t)i, NULL);
}

uint64_t lookalike_csv_line(const lookalike_csv_t *c)
{
    return c->row_line;
}
