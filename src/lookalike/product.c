/* The product record: strict parsing and validation from JSON, and serialisation back. */
#include "lookalike/lookalike.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void perr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

int lookalike_product_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > LOOKALIKE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void lookalike_product_init(lookalike_product_t *p)
{
    memset(p, 0, sizeof *p);
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void lookalike_product_release(lookalike_product_t *p)
{
    free(p->id);
    free(p->title);
    free(p->description);
    free(p->category);
    free(p->brand);
    free_list(p->colours, p->ncolours);
    free_list(p->sizes, p->nsizes);
    free_list(p->dominant_colours, p->ndominant_colours);
    for (size_t i = 0; i < p->nattrs; i++) {
        free(p->attrs[i].key);
        free(p->attrs[i].str);
    }
    free(p->attrs);
    free(p->vector);
    memset(p, 0, sizeof *p);
}

/* A string field of at most max bytes; null means absent. */
static int get_string(json_t *v, const char *name, size_t max, char **out, char *err, size_t errlen)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        perr(err, errlen, "field \"%s\": expected a string, got %s", name, type_name(v));
        return LOOKALIKE_EINVAL;
    }
    size_t n = json_string_length(v);
    if (n > max) {
        perr(err, errlen, "field \"%s\": too large (%zu bytes, at most %zu)", name, n, max);
        return LOOKALIKE_ETOOLARGE;
    }
    *out = strdup(json_string_value(v));
    if (!*out) {
        perr(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    return 0;
}

static int get_string_list(json_t *v, const char *name, size_t max_items, size_t max_len, char ***out,
                           size_t *n, char *err, size_t errlen)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_array(v)) {
        perr(err, errlen, "field \"%s\": expected an array of strings, got %s", name, type_name(v));
        return LOOKALIKE_EINVAL;
    }
    size_t cnt = json_array_size(v);
    if (cnt > max_items) {
        perr(err, errlen, "field \"%s\": too large (%zu items, at most %zu)", name, cnt, max_items);
        return LOOKALIKE_ETOOLARGE;
    }
    char **list = calloc(cnt ? cnt : 1, sizeof *list);
    if (!list) {
        perr(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    for (size_t i = 0; i < cnt; i++) {
        json_t *it = json_array_get(v, i);
        if (!json_is_string(it)) {
            perr(err, errlen, "field \"%s[%zu]\": expected a string, got %s", name, i, type_name(it));
            free_list(list, i);
            return LOOKALIKE_EINVAL;
        }
        if (json_string_length(it) > max_len) {
            perr(err, errlen, "field \"%s[%zu]\": too large (at most %zu bytes)", name, i, max_len);
            free_list(list, i);
            return LOOKALIKE_ETOOLARGE;
        }
        list[i] = strdup(json_string_value(it));
        if (!list[i]) {
            perr(err, errlen, "out of memory");
            free_list(list, i);
            return LOOKALIKE_ENOMEM;
        }
    }
    *out = list;
    *n = cnt;
    return 0;
}

static int get_attrs(json_t *v, lookalike_product_t *p, char *err, size_t errlen)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        perr(err, errlen, "field \"attributes\": expected an object, got %s", type_name(v));
        return LOOKALIKE_EINVAL;
    }
    size_t cnt = json_object_size(v);
    if (cnt > LOOKALIKE_ATTRS_MAX) {
        perr(err, errlen, "field \"attributes\": too large (%zu keys, at most %d)", cnt, LOOKALIKE_ATTRS_MAX);
        return LOOKALIKE_ETOOLARGE;
    }
    p->attrs = calloc(cnt ? cnt : 1, sizeof *p->attrs);
    if (!p->attrs) {
        perr(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        size_t klen = strlen(key);
        if (klen == 0 || klen > LOOKALIKE_ATTR_KEY_MAX) {
            perr(err, errlen, "field \"attributes\": keys must be 1 to %d bytes", LOOKALIKE_ATTR_KEY_MAX);
            return klen ? LOOKALIKE_ETOOLARGE : LOOKALIKE_EINVAL;
        }
        lookalike_attr_t *a = &p->attrs[p->nattrs];
        if (json_is_string(val)) {
            if (json_string_length(val) > LOOKALIKE_ATTR_VALUE_MAX) {
                perr(err, errlen, "field \"attributes.%s\": too large (at most %d bytes)", key,
                     LOOKALIKE_ATTR_VALUE_MAX);
                return LOOKALIKE_ETOOLARGE;
            }
            a->type = LOOKALIKE_ATTR_STRING;
            a->str = strdup(json_string_value(val));
            if (!a->str)
                goto oom;
        } else if (json_is_number(val)) {
            a->type = LOOKALIKE_ATTR_NUMBER;
            a->num = json_number_value(val);
            if (!isfinite(a->num)) {
                perr(err, errlen, "field \"attributes.%s\": expected a finite number", key);
                return LOOKALIKE_EINVAL;
            }
        } else if (json_is_boolean(val)) {
            a->type = LOOKALIKE_ATTR_BOOL;
            a->boolean = json_is_true(val);
        } else {
            perr(err, errlen, "field \"attributes.%s\": expected a string, number or boolean, got %s", key,
                 type_name(val));
            return LOOKALIKE_EINVAL;
        }
        a->key = strdup(key);
        if (!a->key) {
            free(a->str);
            a->str = NULL;
            goto oom;
        }
        p->nattrs++;
    }
    return 0;
oom:
    perr(err, errlen, "out of memory");
    return LOOKALIKE_ENOMEM;
}

static int get_int(json_t *v, const char *name, int64_t *out, char *err, size_t errlen)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        perr(err, errlen, "field \"%s\": expected an integer >= 0, got %s", name,
             json_is_integer(v) ? "a negative number" : type_name(v));
        return LOOKALIKE_EINVAL;
    }
    *out = json_integer_value(v);
    return 0;
}

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static const char *const input_fields[] = {"id",    "title", "description", "category",   "brand", "colours",
                                           "sizes", "price", "currency",    "attributes", "vector"};
static const char *const stored_fields[] = {"created_at", "updated_at", "seq", "image_sha256",
                                            "dominant_colours"};

/* Largest magnitude that converts to a finite float32 (FLT_MAX plus just under half an ulp). */
#define FLOAT_ROUNDS_TO_MAX 3.4028235677973362e38

/* The "vector" field: 1..LOOKALIKE_VECTOR_MAX finite numbers, not all zero. */
static int get_vector(json_t *v, lookalike_product_t *p, char *err, size_t errlen)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_array(v)) {
        perr(err, errlen, "field \"vector\": expected an array of numbers, got %s", type_name(v));
        return LOOKALIKE_EINVAL;
    }
    size_t n = json_array_size(v);
    if (n == 0 || n > LOOKALIKE_VECTOR_MAX) {
        perr(err, errlen, "field \"vector\": %s (%zu numbers, expected 1 to %d)", n ? "too large" : "empty",
             n, LOOKALIKE_VECTOR_MAX);
        return n ? LOOKALIKE_ETOOLARGE : LOOKALIKE_EINVAL;
    }
    if (!(p->vector = malloc(n * sizeof *p->vector))) {
        perr(err, errlen, "out of memory");
        return LOOKALIKE_ENOMEM;
    }
    p->vector_dim = (uint32_t)n;
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        double d = json_is_number(e) ? json_number_value(e) : NAN;
        /* Up to where float32 rounding still lands on FLT_MAX: the printed FLT_MAX
         * ("3.40282347e+38") is a little above it and must read back. */
        if (!(fabs(d) <= FLOAT_ROUNDS_TO_MAX)) {
            perr(err, errlen, "field \"vector[%zu]\": expected a number, got %s", i,
                 json_is_number(e) ? "one out of float32 range" : type_name(e));
            return LOOKALIKE_EINVAL;
        }
        /* + 0.0f turns -0 into 0, which JSON reads back the same ("-0" is the integer 0). */
        p->vector[i] = (fabs(d) > FLT_MAX ? copysignf(FLT_MAX, (float)(d / 2)) : (float)d) + 0.0f;
        nonzero |= p->vector[i] != 0.0f;
    }
    if (!nonzero) {
        perr(err, errlen, "field \"vector\": all zeros (it has no direction to search by)");
        return LOOKALIKE_EINVAL;
    }
    return 0;
}

static int field_index(const char *const *list, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], key) == 0)
            return (int)i;
    return -1;
}

static int parse_object(json_t *root, int mode, lookalike_product_t *p, char *err, size_t errlen)
{
    if (!json_is_object(root)) {
        perr(err, errlen, "expected a JSON object, got %s", type_name(root));
        return LOOKALIKE_EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (field_index(input_fields, sizeof input_fields / sizeof *input_fields, key) >= 0)
            continue;
        if (field_index(stored_fields, sizeof stored_fields / sizeof *stored_fields, key) >= 0) {
            if (mode == LOOKALIKE_PRODUCT_STORED)
                continue;
            perr(err, errlen, "field \"%s\" is set by the server and cannot be written", key);
            return LOOKALIKE_EINVAL;
        }
        perr(err, errlen, "unknown field \"%s\"", key);
        return LOOKALIKE_EINVAL;
    }
    int rc;
    v = json_object_get(root, "id");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            perr(err, errlen, "field \"id\": expected a string, got %s", type_name(v));
            return LOOKALIKE_EINVAL;
        }
        if (json_string_length(v) > LOOKALIKE_ID_MAX) {
            perr(err, errlen, "field \"id\": too large (at most %d bytes)", LOOKALIKE_ID_MAX);
            return LOOKALIKE_ETOOLARGE;
        }
        if (json_string_length(v) != strlen(json_string_value(v)) ||
            !lookalike_product_id_valid(json_string_value(v))) {
            perr(err, errlen, "field \"id\": must be 1 to %d characters from A-Z a-z 0-9 . _ -",
                 LOOKALIKE_ID_MAX);
            return LOOKALIKE_EINVAL;
        }
        if ((rc = get_string(v, "id", LOOKALIKE_ID_MAX, &p->id, err, errlen)) != 0)
            return rc;
    }
    static const struct {
        const char *name;
        size_t off, max;
    } strs[] = {
        {"title", offsetof(lookalike_product_t, title), LOOKALIKE_TITLE_MAX},
        {"description", offsetof(lookalike_product_t, description), LOOKALIKE_DESCRIPTION_MAX},
        {"category", offsetof(lookalike_product_t, category), LOOKALIKE_NAME_MAX},
        {"brand", offsetof(lookalike_product_t, brand), LOOKALIKE_NAME_MAX},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        v = json_object_get(root, strs[i].name);
        if (v &&
            (rc = get_string(v, strs[i].name, strs[i].max, (char **)((char *)p + strs[i].off), err, errlen)))
            return rc;
    }
    if ((v = json_object_get(root, "colours")) &&
        (rc = get_string_list(v, "colours", LOOKALIKE_LIST_MAX, LOOKALIKE_NAME_MAX, &p->colours, &p->ncolours,
                              err, errlen)))
        return rc;
    if ((v = json_object_get(root, "sizes")) &&
        (rc = get_string_list(v, "sizes", LOOKALIKE_LIST_MAX, LOOKALIKE_NAME_MAX, &p->sizes, &p->nsizes, err,
                              errlen)))
        return rc;
    if ((v = json_object_get(root, "price")) && !json_is_null(v)) {
        if (!json_is_number(v)) {
            perr(err, errlen, "field \"price\": expected a number >= 0, got %s", type_name(v));
            return LOOKALIKE_EINVAL;
        }
        double price = json_number_value(v);
        if (!(price >= 0.0 && price <= LOOKALIKE_PRICE_MAX)) {
            perr(err, errlen, "field \"price\": expected a number from 0 to 1e15, got %g", price);
            return LOOKALIKE_EINVAL;
        }
        p->price = price;
        p->has_price = 1;
    }
    if ((v = json_object_get(root, "currency")) && !json_is_null(v)) {
        const char *c = json_is_string(v) ? json_string_value(v) : NULL;
        int okc = c && strlen(c) == 3 && json_string_length(v) == 3;
        for (int i = 0; okc && i < 3; i++)
            okc = (c[i] >= 'A' && c[i] <= 'Z') || (c[i] >= 'a' && c[i] <= 'z');
        if (!okc) {
            perr(err, errlen, "field \"currency\": expected a 3-letter ISO 4217 code such as \"VND\", got %s",
                 c ? "another string" : type_name(v));
            return LOOKALIKE_EINVAL;
        }
        for (int i = 0; i < 3; i++)
            p->currency[i] = (char)(c[i] >= 'a' ? c[i] - 32 : c[i]);
        p->currency[3] = '\0';
    }
    if ((v = json_object_get(root, "attributes")) && (rc = get_attrs(v, p, err, errlen)))
        return rc;
    if ((v = json_object_get(root, "vector")) && (rc = get_vector(v, p, err, errlen)))
        return rc;
    if (mode != LOOKALIKE_PRODUCT_STORED)
        return 0;
    int64_t seq = 0;
    if ((v = json_object_get(root, "created_at")) &&
        (rc = get_int(v, "created_at", &p->created_at, err, errlen)))
        return rc;
    if ((v = json_object_get(root, "updated_at")) &&
        (rc = get_int(v, "updated_at", &p->updated_at, err, errlen)))
        return rc;
    if ((v = json_object_get(root, "seq")) && (rc = get_int(v, "seq", &seq, err, errlen)))
        return rc;
    p->seq = (uint64_t)seq;
    if ((v = json_object_get(root, "image_sha256")) && !json_is_null(v)) {
        if (!json_is_string(v) || !is_hex64(json_string_value(v))) {
            perr(err, errlen, "field \"image_sha256\": expected 64 lowercase hex digits");
            return LOOKALIKE_EINVAL;
        }
        memcpy(p->image_sha256, json_string_value(v), 65);
    }
    if ((v = json_object_get(root, "dominant_colours")) &&
        (rc = get_string_list(v, "dominant_colours", LOOKALIKE_LIST_MAX, LOOKALIKE_NAME_MAX,
                              &p->dominant_colours, &p->ndominant_colours, err, errlen)))
        return rc;
    return 0;
}

int lookalike_product_parse(const char *json, size_t len, int mode, lookalike_product_t *p, char *err,
                            size_t errlen)
{
    lookalike_product_init(p);
    if (len > LOOKALIKE_PRODUCT_JSON_MAX) {
        perr(err, errlen, "product JSON too large (%zu bytes, at most %d)", len, LOOKALIKE_PRODUCT_JSON_MAX);
        return LOOKALIKE_ETOOLARGE;
    }
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        perr(err, errlen, "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
        return LOOKALIKE_EINVAL;
    }
    int rc = parse_object(root, mode, p, err, errlen);
    json_decref(root);
    if (rc != 0)
        lookalike_product_release(p);
    return rc;
}

static int check_str(const char *s, const char *name, size_t max, char *err, size_t errlen)
{
    if (!s)
        return 0;
    size_t n = strlen(s), pos = 0;
    if (n > max) {
        perr(err, errlen, "field \"%s\": too large (%zu bytes, at most %zu)", name, n, max);
        return LOOKALIKE_ETOOLARGE;
    }
    uint32_t cp;
    while (pos < n)
        if (lookalike_utf8_decode(s, n, &pos, &cp) != 0) {
            perr(err, errlen, "field \"%s\": invalid UTF-8", name);
            return LOOKALIKE_EUTF8;
        }
    return 0;
}

static int check_list(char **v, size_t n, const char *name, char *err, size_t errlen)
{
    if (n > LOOKALIKE_LIST_MAX) {
        perr(err, errlen, "field \"%s\": too large (%zu items, at most %d)", name, n, LOOKALIKE_LIST_MAX);
        return LOOKALIKE_ETOOLARGE;
    }
    for (size_t i = 0; i < n; i++) {
        if (!v[i]) {
            perr(err, errlen, "field \"%s[%zu]\": missing", name, i);
            return LOOKALIKE_EINVAL;
        }
        int rc = check_str(v[i], name, LOOKALIKE_NAME_MAX, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

int lookalike_product_validate(const lookalike_product_t *p, char *err, size_t errlen)
{
    int rc;
    if (p->id && !lookalike_product_id_valid(p->id)) {
        perr(err, errlen, "field \"id\": must be 1 to %d characters from A-Z a-z 0-9 . _ -",
             LOOKALIKE_ID_MAX);
        return strlen(p->id) > LOOKALIKE_ID_MAX ? LOOKALIKE_ETOOLARGE : LOOKALIKE_EINVAL;
    }
    if ((rc = check_str(p->title, "title", LOOKALIKE_TITLE_MAX, err, errlen)) ||
        (rc = check_str(p->description, "description", LOOKALIKE_DESCRIPTION_MAX, err, errlen)) ||
        (rc = check_str(p->category, "category", LOOKALIKE_NAME_MAX, err, errlen)) ||
        (rc = check_str(p->brand, "brand", LOOKALIKE_NAME_MAX, err, errlen)) ||
        (rc = check_list(p->colours, p->ncolours, "colours", err, errlen)) ||
        (rc = check_list(p->sizes, p->nsizes, "sizes", err, errlen)) ||
        (rc = check_list(p->dominant_colours, p->ndominant_colours, "dominant_colours", err, errlen)))
        return rc;
    if (p->has_price && !(p->price >= 0.0 && p->price <= LOOKALIKE_PRICE_MAX)) {
        perr(err, errlen, "field \"price\": expected a number from 0 to 1e15");
        return LOOKALIKE_EINVAL;
    }
    if (p->currency[0]) {
        for (int i = 0; i < 3; i++)
            if (!(p->currency[i] >= 'A' && p->currency[i] <= 'Z') || p->currency[3]) {
                perr(err, errlen, "field \"currency\": expected 3 upper-case letters");
                return LOOKALIKE_EINVAL;
            }
    }
    if (p->vector || p->vector_dim) {
        int nonzero = 0;
        if (!p->vector || p->vector_dim < 1 || p->vector_dim > LOOKALIKE_VECTOR_MAX) {
            perr(err, errlen, "field \"vector\": expected 1 to %d numbers", LOOKALIKE_VECTOR_MAX);
            return p->vector_dim > LOOKALIKE_VECTOR_MAX ? LOOKALIKE_ETOOLARGE : LOOKALIKE_EINVAL;
        }
        for (uint32_t i = 0; i < p->vector_dim; i++) {
            if (!isfinite(p->vector[i])) {
                perr(err, errlen, "field \"vector[%u]\": expected a finite number", i);
                return LOOKALIKE_EINVAL;
            }
            nonzero |= p->vector[i] != 0.0f;
        }
        if (!nonzero) {
            perr(err, errlen, "field \"vector\": all zeros (it has no direction to search by)");
            return LOOKALIKE_EINVAL;
        }
    }
    if (p->nattrs > LOOKALIKE_ATTRS_MAX) {
        perr(err, errlen, "field \"attributes\": too large (%zu keys, at most %d)", p->nattrs,
             LOOKALIKE_ATTRS_MAX);
        return LOOKALIKE_ETOOLARGE;
    }
    for (size_t i = 0; i < p->nattrs; i++) {
        const lookalike_attr_t *a = &p->attrs[i];
        if (!a->key || !a->key[0] || strlen(a->key) > LOOKALIKE_ATTR_KEY_MAX) {
            perr(err, errlen, "field \"attributes\": keys must be 1 to %d bytes", LOOKALIKE_ATTR_KEY_MAX);
            return LOOKALIKE_EINVAL;
        }
        if ((rc = check_str(a->key, "attributes", LOOKALIKE_ATTR_KEY_MAX, err, errlen)))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->attrs[j].key, a->key) == 0) {
                perr(err, errlen, "field \"attributes\": key \"%s\" repeated", a->key);
                return LOOKALIKE_EINVAL;
            }
        if (a->type == LOOKALIKE_ATTR_STRING) {
            if (!a->str) {
                perr(err, errlen, "field \"attributes.%s\": missing string", a->key);
                return LOOKALIKE_EINVAL;
            }
            if ((rc = check_str(a->str, "attributes", LOOKALIKE_ATTR_VALUE_MAX, err, errlen)))
                return rc;
        } else if (a->type == LOOKALIKE_ATTR_NUMBER && !isfinite(a->num)) {
            perr(err, errlen, "field \"attributes.%s\": expected a finite number", a->key);
            return LOOKALIKE_EINVAL;
        } else if (a->type != LOOKALIKE_ATTR_STRING && a->type != LOOKALIKE_ATTR_NUMBER &&
                   a->type != LOOKALIKE_ATTR_BOOL) {
            perr(err, errlen, "field \"attributes.%s\": unknown value type", a->key);
            return LOOKALIKE_EINVAL;
        }
    }
    return 0;
}

static int set_new(json_t *obj, const char *key, json_t *v)
{
    return v ? json_object_set_new(obj, key, v) : -1;
}

static json_t *string_array(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* json ("{...}", compact) with ,"vector":[...] added before its closing brace. The numbers are
 * written with 9 significant digits, which read back as the same float32 (jansson would spend
 * 17 on each), so an exported vector is about half the size. New string, caller frees. */
static char *append_vector(const char *json, const float *v, uint32_t n)
{
    size_t len = strlen(json), cap = len + 16 + (size_t)n * 17, at = len - 1;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    memcpy(out, json, at);
    at += (size_t)snprintf(out + at, cap - at, "%s\"vector\":[", len > 2 ? "," : "");
    for (uint32_t i = 0; i < n; i++)
        at += (size_t)snprintf(out + at, cap - at, "%s%.9g", i ? "," : "", (double)v[i]);
    snprintf(out + at, cap - at, "]}");
    return out;
}

char *lookalike_product_to_json(const lookalike_product_t *p, int mode)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    if (p->id)
        bad |= set_new(o, "id", json_string(p->id));
    if (p->title)
        bad |= set_new(o, "title", json_string(p->title));
    if (p->description)
        bad |= set_new(o, "description", json_string(p->description));
    if (p->category)
        bad |= set_new(o, "category", json_string(p->category));
    if (p->brand)
        bad |= set_new(o, "brand", json_string(p->brand));
    if (p->colours)
        bad |= set_new(o, "colours", string_array(p->colours, p->ncolours));
    if (p->sizes)
        bad |= set_new(o, "sizes", string_array(p->sizes, p->nsizes));
    if (p->has_price)
        bad |= set_new(o, "price", json_real(p->price));
    if (p->currency[0])
        bad |= set_new(o, "currency", json_string(p->currency));
    if (p->attrs) {
        json_t *a = json_object();
        for (size_t i = 0; a && i < p->nattrs; i++) {
            const lookalike_attr_t *at = &p->attrs[i];
            json_t *v = at->type == LOOKALIKE_ATTR_STRING   ? json_string(at->str)
                        : at->type == LOOKALIKE_ATTR_NUMBER ? json_real(at->num)
                                                            : json_boolean(at->boolean);
            bad |= set_new(a, at->key, v);
        }
        bad |= set_new(o, "attributes", a);
    }
    if (mode == LOOKALIKE_PRODUCT_STORED) {
        bad |= set_new(o, "created_at", json_integer(p->created_at));
        bad |= set_new(o, "updated_at", json_integer(p->updated_at));
        bad |= set_new(o, "seq", json_integer((json_int_t)p->seq));
        if (p->image_sha256[0])
            bad |= set_new(o, "image_sha256", json_string(p->image_sha256));
        if (p->dominant_colours)
            bad |= set_new(o, "dominant_colours", string_array(p->dominant_colours, p->ndominant_colours));
    }
    char *s = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (s && p->vector && mode == LOOKALIKE_PRODUCT_INPUT) {
        char *sv = append_vector(s, p->vector, p->vector_dim);
        free(s);
        s = sv;
    }
    return s;
}

/* Appends a space and s to the growing buffer: 0, 1 when the text is full (s left out), -1
 * when out of memory. */
static int text_add(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 2 > LOOKALIKE_ATTRS_TEXT_MAX)
        return 1;
    if (*len + n + 2 > *cap) {
        size_t c = *cap ? *cap : 128;
        while (c < *len + n + 2)
            c *= 2;
        char *nb = realloc(*buf, c);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = c;
    }
    if (*len)
        (*buf)[(*len)++] = ' ';
    memcpy(*buf + *len, s, n + 1);
    *len += n;
    return 0;
}

char *lookalike_product_attrs_text(const lookalike_product_t *p)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int bad = text_add(&buf, &len, &cap, "");
    for (size_t i = 0; !bad && i < p->ncolours; i++)
        bad = text_add(&buf, &len, &cap, p->colours[i]);
    for (size_t i = 0; !bad && i < p->ndominant_colours; i++) {
        int c = lookalike_colour_lookup(p->dominant_colours[i]);
        bad = text_add(&buf, &len, &cap, p->dominant_colours[i]);
        /* Both languages, so "đỏ" and "red" find a red product whichever name was stored. */
        if (!bad && c >= 0)
            bad = text_add(&buf, &len, &cap, lookalike_colour_name(c, 1));
    }
    for (size_t i = 0; !bad && i < p->nsizes; i++)
        bad = text_add(&buf, &len, &cap, p->sizes[i]);
    for (size_t i = 0; !bad && i < p->nattrs; i++) {
        char num[64];
        const lookalike_attr_t *a = &p->attrs[i];
        if (a->type == LOOKALIKE_ATTR_STRING) {
            bad = text_add(&buf, &len, &cap, a->str);
        } else if (a->type == LOOKALIKE_ATTR_NUMBER) {
            snprintf(num, sizeof num, "%.15g", a->num);
            bad = text_add(&buf, &len, &cap, num);
        }
    }
    if (bad < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
