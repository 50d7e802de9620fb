#include <criterion/criterion.h>
#include <string.h>

#include "core/core.h"

Test(json, parses_objects_and_arrays)
{
    char err[256];
    json_t *d = core_json_parse("{\"a\":1,\"b\":[true,null]}", 23, err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    cr_assert(json_is_object(d));
    json_decref(d);
    d = core_json_parse("[1,2]", 5, err, sizeof err);
    cr_assert(json_is_array(d));
    json_decref(d);
}

Test(json, errors_name_the_position)
{
    char err[256];
    cr_assert_null(core_json_parse("{\"a\":1,}", 8, err, sizeof err));
    cr_assert(strstr(err, "line 1, column 8"), "%s", err);
    cr_assert_null(core_json_parse("", 0, err, sizeof err));
    cr_assert(strstr(err, "empty"), "%s", err);
    cr_assert_null(core_json_parse("42", 2, err, sizeof err), "bare scalars are refused");
    cr_assert_null(core_json_parse("{\"a\":1,\"a\":2}", 13, err, sizeof err));
    cr_assert(strstr(err, "duplicate"), "%s", err);
    cr_assert_null(core_json_parse("{\"a\":\"\xff\"}", 9, err, sizeof err));
}

Test(json, typed_fields)
{
    char err[256];
    json_t *d = json_pack("{s:s,s:i,s:f,s:b,s:n}", "name", "x", "limit", 10, "score", 0.5, "on", 1, "nil");
    const char *s;
    long long i;
    double f;
    bool b;
    cr_assert_eq(core_json_get_str(d, "name", true, &s, err, sizeof err), 0);
    cr_assert_str_eq(s, "x");
    cr_assert_eq(core_json_get_int(d, "limit", true, &i, err, sizeof err), 0);
    cr_assert_eq(i, 10);
    cr_assert_eq(core_json_get_num(d, "limit", true, &f, err, sizeof err), 0);
    cr_assert_eq(f, 10.0);
    cr_assert_eq(core_json_get_num(d, "score", true, &f, err, sizeof err), 0);
    cr_assert_eq(f, 0.5);
    cr_assert_eq(core_json_get_bool(d, "on", true, &b, err, sizeof err), 0);
    cr_assert(b);
    cr_assert_eq(core_json_get_int(d, "name", true, &i, err, sizeof err), CORE_EINVAL);
    cr_assert_str_eq(err, "field \"name\" must be an integer, not a string");
    cr_assert_eq(core_json_get_str(d, "missing", false, &s, err, sizeof err), CORE_ENOTFOUND);
    cr_assert_eq(core_json_get_str(d, "nil", false, &s, err, sizeof err), CORE_ENOTFOUND);
    cr_assert_eq(core_json_get_str(d, "missing", true, &s, err, sizeof err), CORE_EINVAL);
    cr_assert_str_eq(err, "field \"missing\" is required");
    json_decref(d);
    json_t *arr = json_array();
    cr_assert_eq(core_json_get_str(arr, "x", false, &s, err, sizeof err), CORE_EINVAL);
    json_decref(arr);
}
