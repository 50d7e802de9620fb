/* JSON request helpers on jansson. Request bodies are untrusted: duplicate keys are refused
 * (two services reading the same document must not disagree on its meaning) and the error
 * names the position, so a client can fix its request from the message alone. */
#include "core/core.h"

#include <string.h>

json_t *core_json_parse(const char *body, size_t len, char *err, size_t errlen)
{
    if (len == 0) {
        snprintf(err, errlen, "request body is empty; a JSON object or array is expected");
        return NULL;
    }
    json_error_t je;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        snprintf(err, errlen, "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    return doc;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Shared front half of the typed readers: finds the field or explains why not. */
static int lookup(json_t *obj, const char *key, bool required, json_t **v, char *err, size_t errlen)
{
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "expected a JSON object holding field \"%s\"", key);
        return CORE_EINVAL;
    }
    *v = json_object_get(obj, key);
    if (!*v || json_is_null(*v)) {
        if (required) {
            snprintf(err, errlen, "field \"%s\" is required", key);
            return CORE_EINVAL;
        }
        return CORE_ENOTFOUND;
    }
    return 0;
}

int core_json_get_str(json_t *obj, const char *key, bool required, const char **out, char *err, size_t errlen)
{
    json_t *v;
    int rc = lookup(obj, key, required, &v, err, errlen);
    if (rc != 0)
        return rc;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "field \"%s\" must be a string, not %s", key, type_name(v));
        return CORE_EINVAL;
    }
    *out = json_string_value(v);
    return 0;
}

int core_json_get_int(json_t *obj, const char *key, bool required, long long *out, char *err, size_t errlen)
{
    json_t *v;
    int rc = lookup(obj, key, required, &v, err, errlen);
    if (rc != 0)
        return rc;
    if (!json_is_integer(v)) {
        snprintf(err, errlen, "field \"%s\" must be an integer, not %s", key, type_name(v));
        return CORE_EINVAL;
    }
    *out = json_integer_value(v);
    return 0;
}

int core_json_get_num(json_t *obj, const char *key, bool required, double *out, char *err, size_t errlen)
{
    json_t *v;
    int rc = lookup(obj, key, required, &v, err, errlen);
    if (rc != 0)
        return rc;
    if (!json_is_number(v)) {
        snprintf(err, errlen, "field \"%s\" must be a number, not %s", key, type_name(v));
        return CORE_EINVAL;
    }
    *out = json_number_value(v);
    return 0;
}

int core_json_get_bool(json_t *obj, const char *key, bool required, bool *out, char *err, size_t errlen)
{
    json_t *v;
    int rc = lookup(obj, key, required, &v, err, errlen);
    if (rc != 0)
        return rc;
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "field \"%s\" must be true or false, not %s", key, type_name(v));
        return CORE_EINVAL;
    }
    *out = json_is_true(v);
    return 0;
}
