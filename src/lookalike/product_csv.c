/* A product from one row of an ingest metadata CSV: known columns fill the product's fields,
 * the image column names its photo, every other column becomes an attribute. */
#include "lookalike/lookalike.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    COL_ID,
    COL_IMAGE_ID,
    COL_TITLE,
    COL_DESC,
    COL_CATEGORY,
    COL_BRAND,
    COL_PRICE,
    COL_CURRENCY,
    COL_COLOURS,
    COL_SIZES,
    COL_IMAGE,
    COL_ATTR
};

static const struct {
    const char *name;
    int col;
} known[] = {
    {"id", COL_ID},          {"product_id", COL_ID},     {"image_id", COL_IMAGE_ID}, {"title", COL_TITLE},
    {"name", COL_TITLE},     {"description", COL_DESC},  {"category", COL_CATEGORY}, {"brand", COL_BRAND},
    {"price", COL_PRICE},    {"currency", COL_CURRENCY}, {"colours", COL_COLOURS},   {"colors", COL_COLOURS},
    {"colour", COL_COLOURS}, {"color", COL_COLOURS},     {"sizes", COL_SIZES},       {"size", COL_SIZES},
    {"image", COL_IMAGE},    {"path", COL_IMAGE},        {"image_path", COL_IMAGE},  {"file", COL_IMAGE},
};

static int column_kind(const char *name)
{
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(known[i].name, name) == 0)
            return known[i].col;
    return COL_ATTR;
}

static int row_err(const lookalike_csv_t *c, char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        int n = snprintf(err, errlen, "line %llu: ", (unsigned long long)lookalike_csv_line(c));
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return rc;
}

/* Splits a list cell on ';', '|' or ',' into trimmed, non-empty items. */
static int split_list(const char *cell, char ***out, size_t *n)
{
    char **v = calloc(LOOKALIKE_LIST_MAX + 1, sizeof *v);
    if (!v)
        return LOOKALIKE_ENOMEM;
    size_t cnt = 0;
    const char *p = cell;
    while (*p) {
        size_t len = strcspn(p, ";|,");
        const char *a = p, *b = p + len;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a) {
            if (cnt == LOOKALIKE_LIST_MAX) {
                for (size_t i = 0; i < cnt; i++)
                    free(v[i]);
                free(v);
                return LOOKALIKE_ETOOLARGE;
            }
            v[cnt] = strndup(a, (size_t)(b - a));
            if (!v[cnt]) {
                for (size_t i = 0; i < cnt; i++)
                    free(v[i]);
                free(v);
                return LOOKALIKE_ENOMEM;
            }
            cnt++;
        }
        p += len;
        if (*p)
            p++;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* A canonical decimal ("0", "-12", "3.25"; no leading zeros, no exponent) reads as a number,
 * so "400" is a number but a code such as "007" stays text. */
static int canonical_number(const char *s, double *v)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (!(*p >= '0' && *p <= '9') || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p || p - s > 24)
        return 0;
    *v = strtod(s, NULL);
    return isfinite(*v);
}

static int set_string(char **dst, const char *cell)
{
    free(*dst);
    *dst = strdup(cell);
    return *dst ? 0 : LOOKALIKE_ENOMEM;
}

int lookalike_product_from_csv(const lookalike_csv_t *c, lookalike_product_t *p, const char **image,
                               char *err, size_t errlen)
{
    lookalike_product_init(p);
    *image = NULL;
    size_t ncols = lookalike_csv_ncols(c);
    int rc = 0, have_id = 0;
    for (size_t i = 0; i < ncols && rc == 0; i++) {
        const char *name = lookalike_csv_col_name(c, i);
        const char *cell = lookalike_csv_field(c, i, NULL);
        if (!cell || !*cell)
            continue;
        int kind = column_kind(name);
        switch (kind) {
        case COL_ID:
        case COL_IMAGE_ID:
            /* An explicit id column wins over image_id, whichever comes first. */
            if (kind == COL_IMAGE_ID && have_id)
                break;
            if (!lookalike_product_id_valid(cell)) {
                rc = row_err(c, err, errlen, LOOKALIKE_EINVAL,
                             "column %s: an id must be 1 to %d characters from A-Z a-z 0-9 . _ -", name,
                             LOOKALIKE_ID_MAX);
                break;
            }
            have_id = kind == COL_ID;
            rc = set_string(&p->id, cell);
            break;
        case COL_TITLE:
            rc = set_string(&p->title, cell);
            break;
        case COL_DESC:
            rc = set_string(&p->description, cell);
            break;
        case COL_CATEGORY:
            rc = set_string(&p->category, cell);
            break;
        case COL_BRAND:
            rc = set_string(&p->brand, cell);
            break;
        case COL_PRICE: {
            char *end;
            double v = strtod(cell, &end);
            if (*end || end == cell || !(v >= 0.0 && v <= LOOKALIKE_PRICE_MAX)) {
                rc = row_err(c, err, errlen, LOOKALIKE_EINVAL, "column %s: expected a number from 0 to 1e15",
                             name);
                break;
            }
            p->price = v;
            p->has_price = 1;
            break;
        }
        case COL_CURRENCY: {
            int okc = strlen(cell) == 3;
            for (int j = 0; okc && j < 3; j++)
                okc = (cell[j] >= 'A' && cell[j] <= 'Z') || (cell[j] >= 'a' && cell[j] <= 'z');
            if (!okc) {
                rc = row_err(c, err, errlen, LOOKALIKE_EINVAL,
                             "column %s: expected a 3-letter code such as VND", name);
                break;
            }
            for (int j = 0; j < 3; j++)
                p->currency[j] = (char)(cell[j] >= 'a' ? cell[j] - 32 : cell[j]);
            p->currency[3] = '\0';
            break;
        }
        case COL_COLOURS:
        case COL_SIZES: {
            char ***list = kind == COL_COLOURS ? &p->colours : &p->sizes;
            size_t *cnt = kind == COL_COLOURS ? &p->ncolours : &p->nsizes;
            if (*list) {
                rc = row_err(c, err, errlen, LOOKALIKE_EINVAL, "column %s: %s given twice", name,
                             kind == COL_COLOURS ? "colours" : "sizes");
                break;
            }
            rc = split_list(cell, list, cnt);
            if (rc == LOOKALIKE_ETOOLARGE)
                rc = row_err(c, err, errlen, rc, "column %s: too large (more than %d items)", name,
                             LOOKALIKE_LIST_MAX);
            break;
        }
        case COL_IMAGE:
            *image = cell;
            break;
        default: {
            if (p->nattrs == LOOKALIKE_ATTRS_MAX) {
                rc = row_err(c, err, errlen, LOOKALIKE_ETOOLARGE,
                             "too large (more than %d attribute columns)", LOOKALIKE_ATTRS_MAX);
                break;
            }
            if (!p->attrs && !(p->attrs = calloc(LOOKALIKE_ATTRS_MAX, sizeof *p->attrs))) {
                rc = LOOKALIKE_ENOMEM;
                break;
            }
            lookalike_attr_t *a = &p->attrs[p->nattrs];
            double v;
            if (canonical_number(cell, &v)) {
                a->type = LOOKALIKE_ATTR_NUMBER;
                a->num = v;
            } else {
                a->type = LOOKALIKE_ATTR_STRING;
                if (!(a->str = strdup(cell))) {
                    rc = LOOKALIKE_ENOMEM;
                    break;
                }
            }
            if (!(a->key = strdup(name))) {
                free(a->str);
                a->str = NULL;
                rc = LOOKALIKE_ENOMEM;
                break;
            }
            p->nattrs++;
            break;
        }
        }
    }
    if (rc == LOOKALIKE_ENOMEM)
        row_err(c, err, errlen, rc, "out of memory");
    if (rc == 0) {
        char msg[192];
        rc = lookalike_product_validate(p, msg, sizeof msg);
        if (rc)
            row_err(c, err, errlen, rc, "%s", msg);
    }
    if (rc) {
        lookalike_product_release(p);
        *image = NULL;
    }
    return rc;
}
