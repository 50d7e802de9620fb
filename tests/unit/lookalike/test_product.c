#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lookalike/lookalike.h"

static const char *full =
    "{\"id\":\"sku-001.A_b\",\"title\":\"Áo thun nam\",\"description\":\"Cotton \\\"mềm\\\"\\nmặc mát\","
    "\"category\":\"t-shirt\",\"brand\":\"Coolmate\",\"colours\":[\"đỏ\",\"white\"],\"sizes\":[\"M\",\"L\","
    "\"XL\"],"
    "\"price\":199000,\"currency\":\"vnd\",\"attributes\":{\"material\":\"cotton\",\"weight_g\":180.5,"
    "\"organic\":true}}";

static void parse_ok(const char *json, int mode, lookalike_product_t *p)
{
    char err[256];
    int rc = lookalike_product_parse(json, strlen(json), mode, p, err, sizeof err);
    cr_assert_eq(rc, 0, "%s: %s", json, err);
}

static void parse_bad(const char *json, int mode, int want, const char *msg)
{
    lookalike_product_t p;
    char err[256] = "";
    int rc = lookalike_product_parse(json, strlen(json), mode, &p, err, sizeof err);
    cr_assert_eq(rc, want, "%s: got %d (%s)", json, rc, err);
    cr_assert(strstr(err, msg), "%s: message \"%s\" lacks \"%s\"", json, err, msg);
    cr_assert_null(p.id);
    cr_assert_null(p.attrs);
}

Test(product, parse_all_fields)
{
    lookalike_product_t p;
    parse_ok(full, LOOKALIKE_PRODUCT_INPUT, &p);
    cr_assert_str_eq(p.id, "sku-001.A_b");
    cr_assert_str_eq(p.title, "Áo thun nam");
    cr_assert_str_eq(p.description, "Cotton \"mềm\"\nmặc mát");
    cr_assert_str_eq(p.category, "t-shirt");
    cr_assert_str_eq(p.brand, "Coolmate");
    cr_assert_eq(p.ncolours, 2);
    cr_assert_str_eq(p.colours[0], "đỏ");
    cr_assert_eq(p.nsizes, 3);
    cr_assert_str_eq(p.sizes[2], "XL");
    cr_assert(p.has_price);
    cr_assert_float_eq(p.price, 199000.0, 0);
    cr_assert_str_eq(p.currency, "VND");
    cr_assert_eq(p.nattrs, 3);
    cr_assert_str_eq(p.attrs[0].key, "material");
    cr_assert_eq(p.attrs[0].type, LOOKALIKE_ATTR_STRING);
    cr_assert_str_eq(p.attrs[0].str, "cotton");
    cr_assert_eq(p.attrs[1].type, LOOKALIKE_ATTR_NUMBER);
    cr_assert_float_eq(p.attrs[1].num, 180.5, 0);
    cr_assert_eq(p.attrs[2].type, LOOKALIKE_ATTR_BOOL);
    cr_assert_eq(p.attrs[2].boolean, 1);
    lookalike_product_release(&p);
    cr_assert_null(p.id);
}

Test(product, empty_object_and_nulls)
{
    lookalike_product_t p;
    parse_ok("{}", LOOKALIKE_PRODUCT_INPUT, &p);
    cr_assert_null(p.id);
    cr_assert_null(p.title);
    cr_assert_eq(p.has_price, 0);
    cr_assert_str_eq(p.currency, "");
    lookalike_product_release(&p);
    parse_ok(
        "{\"id\":null,\"title\":null,\"price\":null,\"colours\":null,\"attributes\":null,\"currency\":null}",
        LOOKALIKE_PRODUCT_INPUT, &p);
    cr_assert_null(p.id);
    cr_assert_eq(p.has_price, 0);
    lookalike_product_release(&p);
    parse_ok("{\"price\":0,\"colours\":[],\"attributes\":{}}", LOOKALIKE_PRODUCT_INPUT, &p);
    cr_assert(p.has_price);
    cr_assert_eq(p.ncolours, 0);
    cr_assert_not_null(p.colours);
    cr_assert_eq(p.nattrs, 0);
    lookalike_product_release(&p);
}

Test(product, round_trip)
{
    lookalike_product_t p, q;
    parse_ok(full, LOOKALIKE_PRODUCT_INPUT, &p);
    char *json = lookalike_product_to_json(&p, LOOKALIKE_PRODUCT_INPUT);
    cr_assert_not_null(json);
    parse_ok(json, LOOKALIKE_PRODUCT_INPUT, &q);
    char *again = lookalike_product_to_json(&q, LOOKALIKE_PRODUCT_INPUT);
    cr_assert_str_eq(json, again);
    cr_assert(strncmp(json, "{\"id\":\"sku-001.A_b\",\"title\":", 28) == 0, "%s", json);
    cr_assert_null(strstr(json, "created_at"));
    free(json);
    free(again);
    lookalike_product_release(&q);

    /* Stored mode carries the server fields through. */
    p.created_at = 1700000000123;
    p.updated_at = 1700000000456;
    p.seq = 42;
    memset(p.image_sha256, 'a', 64);
    p.image_sha256[64] = '\0';
    p.dominant_colours = calloc(2, sizeof *p.dominant_colours);
    p.dominant_colours[0] = strdup("red");
    p.dominant_colours[1] = strdup("white");
    p.ndominant_colours = 2;
    json = lookalike_product_to_json(&p, LOOKALIKE_PRODUCT_STORED);
    parse_ok(json, LOOKALIKE_PRODUCT_STORED, &q);
    cr_assert_eq(q.created_at, 1700000000123);
    cr_assert_eq(q.updated_at, 1700000000456);
    cr_assert_eq(q.seq, 42);
    cr_assert_str_eq(q.image_sha256, p.image_sha256);
    cr_assert_eq(q.ndominant_colours, 2);
    cr_assert_str_eq(q.dominant_colours[1], "white");
    cr_assert_float_eq(q.attrs[1].num, 180.5, 0);
    /* But an API caller may not set them. */
    parse_bad(json, LOOKALIKE_PRODUCT_INPUT, LOOKALIKE_EINVAL, "is set by the server");
    free(json);
    lookalike_product_release(&p);
    lookalike_product_release(&q);
}

Test(product, prices_keep_precision)
{
    lookalike_product_t p, q;
    parse_ok("{\"price\":19.99}", LOOKALIKE_PRODUCT_INPUT, &p);
    char *json = lookalike_product_to_json(&p, LOOKALIKE_PRODUCT_INPUT);
    parse_ok(json, LOOKALIKE_PRODUCT_INPUT, &q);
    cr_assert_eq(p.price, q.price);
    free(json);
    lookalike_product_release(&p);
    lookalike_product_release(&q);
}

Test(product, errors_name_the_field_and_type)
{
    int I = LOOKALIKE_PRODUCT_INPUT;
    parse_bad("{\"colour\":\"red\"}", I, LOOKALIKE_EINVAL, "unknown field \"colour\"");
    parse_bad("{\"title\":5}", I, LOOKALIKE_EINVAL, "field \"title\": expected a string, got number");
    parse_bad("{\"price\":\"10\"}", I, LOOKALIKE_EINVAL,
              "field \"price\": expected a number >= 0, got string");
    parse_bad("{\"price\":-1}", I, LOOKALIKE_EINVAL, "field \"price\": expected a number from 0 to 1e15");
    parse_bad("{\"price\":1e16}", I, LOOKALIKE_EINVAL, "field \"price\"");
    parse_bad("{\"currency\":\"VN\"}", I, LOOKALIKE_EINVAL, "field \"currency\": expected a 3-letter");
    parse_bad("{\"currency\":\"V1D\"}", I, LOOKALIKE_EINVAL, "field \"currency\"");
    parse_bad("{\"currency\":840}", I, LOOKALIKE_EINVAL, "got number");
    parse_bad("{\"colours\":\"red\"}", I, LOOKALIKE_EINVAL,
              "field \"colours\": expected an array of strings");
    parse_bad("{\"sizes\":[\"M\",3]}", I, LOOKALIKE_EINVAL,
              "field \"sizes[1]\": expected a string, got number");
    parse_bad("{\"attributes\":[]}", I, LOOKALIKE_EINVAL,
              "field \"attributes\": expected an object, got array");
    parse_bad("{\"attributes\":{\"a\":\"x\",\"b\":{}}}", I, LOOKALIKE_EINVAL,
              "field \"attributes.b\": expected a string, number or boolean, got object");
    parse_bad("{\"attributes\":{\"a\":null}}", I, LOOKALIKE_EINVAL, "got null");
    parse_bad("{\"attributes\":{\"\":1}}", I, LOOKALIKE_EINVAL, "keys must be 1 to 64 bytes");
    parse_bad("{\"id\":7}", I, LOOKALIKE_EINVAL, "field \"id\": expected a string, got number");
    parse_bad("{\"id\":\"\"}", I, LOOKALIKE_EINVAL, "field \"id\": must be 1 to 128 characters");
    parse_bad("{\"id\":\"a b\"}", I, LOOKALIKE_EINVAL, "field \"id\"");
    parse_bad("{\"id\":\"áo\"}", I, LOOKALIKE_EINVAL, "field \"id\"");
    parse_bad("{\"id\":\"../etc\"}", I, LOOKALIKE_EINVAL, "field \"id\"");
    parse_bad("[1]", I, LOOKALIKE_EINVAL, "expected a JSON object, got array");
    parse_bad("{\"title\":\"a\",\"title\":\"b\"}", I, LOOKALIKE_EINVAL, "invalid JSON at line 1");
    parse_bad("{\"title\":", I, LOOKALIKE_EINVAL, "invalid JSON at line 1");
    parse_bad("{\"title\":\"\xff\"}", I, LOOKALIKE_EINVAL, "invalid JSON");
    parse_bad("{\"title\":\"a\\u0000b\"}", I, LOOKALIKE_EINVAL, "invalid JSON");
    parse_bad("{\"seq\":1}", I, LOOKALIKE_EINVAL, "field \"seq\" is set by the server");
    int S = LOOKALIKE_PRODUCT_STORED;
    parse_bad("{\"seq\":-1}", S, LOOKALIKE_EINVAL,
              "field \"seq\": expected an integer >= 0, got a negative number");
    parse_bad("{\"created_at\":1.5}", S, LOOKALIKE_EINVAL, "field \"created_at\": expected an integer >= 0");
    parse_bad("{\"image_sha256\":\"ABC\"}", S, LOOKALIKE_EINVAL, "field \"image_sha256\"");
    parse_bad("{\"bogus\":1}", S, LOOKALIKE_EINVAL, "unknown field \"bogus\"");
}

Test(product, size_caps)
{
    char *buf = malloc(LOOKALIKE_PRODUCT_JSON_MAX + 100);
    int I = LOOKALIKE_PRODUCT_INPUT;
    /* id: 128 ok, 129 too large. */
    char id[140];
    memset(id, 'a', 129);
    id[128] = '\0';
    snprintf(buf, 400, "{\"id\":\"%s\"}", id);
    lookalike_product_t p;
    parse_ok(buf, I, &p);
    lookalike_product_release(&p);
    id[128] = 'a';
    id[129] = '\0';
    snprintf(buf, 400, "{\"id\":\"%s\"}", id);
    parse_bad(buf, I, LOOKALIKE_ETOOLARGE, "field \"id\": too large");
    /* A title over 512 bytes. */
    int n = snprintf(buf, 20, "{\"title\":\"");
    memset(buf + n, 'x', 513);
    snprintf(buf + n + 513, 10, "\"}");
    parse_bad(buf, I, LOOKALIKE_ETOOLARGE, "field \"title\": too large (513 bytes, at most 512)");
    /* 33 colours. */
    n = snprintf(buf, 100, "{\"colours\":[");
    for (int i = 0; i < 33; i++)
        n += snprintf(buf + n, 100, "%s\"c\"", i ? "," : "");
    snprintf(buf + n, 10, "]}");
    parse_bad(buf, I, LOOKALIKE_ETOOLARGE, "field \"colours\": too large (33 items, at most 32)");
    /* 65 attributes. */
    n = snprintf(buf, 100, "{\"attributes\":{");
    for (int i = 0; i < 65; i++)
        n += snprintf(buf + n, 100, "%s\"k%d\":1", i ? "," : "", i);
    snprintf(buf + n, 10, "}}");
    parse_bad(buf, I, LOOKALIKE_ETOOLARGE, "field \"attributes\": too large (65 keys");
    /* An attribute value over 1024 bytes. */
    n = snprintf(buf, 100, "{\"attributes\":{\"k\":\"");
    memset(buf + n, 'v', 1025);
    snprintf(buf + n + 1025, 10, "\"}}");
    parse_bad(buf, I, LOOKALIKE_ETOOLARGE, "field \"attributes.k\": too large");
    /* The whole document. */
    memset(buf, ' ', LOOKALIKE_PRODUCT_JSON_MAX + 1);
    buf[0] = '{';
    buf[LOOKALIKE_PRODUCT_JSON_MAX] = '}';
    buf[LOOKALIKE_PRODUCT_JSON_MAX + 1] = '\0';
    parse_bad(buf, I, LOOKALIKE_ETOOLARGE, "product JSON too large");
    free(buf);
}

Test(product, attrs_text_for_bm25)
{
    lookalike_product_t p;
    parse_ok(full, LOOKALIKE_PRODUCT_INPUT, &p);
    p.dominant_colours = calloc(1, sizeof *p.dominant_colours);
    p.dominant_colours[0] = strdup("navy");
    p.ndominant_colours = 1;
    char *t = lookalike_product_attrs_text(&p);
    cr_assert_str_eq(t, "đỏ white navy xanh navy M L XL cotton 180.5");
    free(t);
    lookalike_product_release(&p);
    lookalike_product_init(&p);
    t = lookalike_product_attrs_text(&p);
    cr_assert_str_eq(t, "");
    free(t);
}

Test(product, id_validation)
{
    cr_assert(lookalike_product_id_valid("a"));
    cr_assert(lookalike_product_id_valid("A-z_0.9"));
    cr_assert_not(lookalike_product_id_valid(""));
    cr_assert_not(lookalike_product_id_valid("a/b"));
    cr_assert_not(lookalike_product_id_valid("a b"));
    cr_assert_not(lookalike_product_id_valid("a\n"));
}

Test(product, vector_parse_and_round_trip)
{
    lookalike_product_t p, q;
    parse_ok("{\"id\":\"v\",\"vector\":[0.5,-1,3.25e-3,1e30]}", LOOKALIKE_PRODUCT_INPUT, &p);
    cr_assert_eq(p.vector_dim, 4);
    cr_assert_float_eq(p.vector[2], 3.25e-3f, 1e-9);
    char *in = lookalike_product_to_json(&p, LOOKALIKE_PRODUCT_INPUT);
    char *st = lookalike_product_to_json(&p, LOOKALIKE_PRODUCT_STORED);
    cr_assert(strstr(in, "\"vector\":[0.5,-1,0.00325000007,1.00000002e+30]"), "%s", in);
    cr_assert_null(strstr(st, "vector"), "STORED JSON never holds the vector: %s", st);
    parse_ok(in, LOOKALIKE_PRODUCT_INPUT, &q);
    cr_assert_eq(q.vector_dim, 4);
    cr_assert_eq(memcmp(p.vector, q.vector, 4 * sizeof(float)), 0, "9 digits read back as the same float");
    free(in);
    free(st);
    lookalike_product_release(&p);
    lookalike_product_release(&q);
}

Test(product, vector_bad_inputs)
{
    parse_bad("{\"vector\":[]}", LOOKALIKE_PRODUCT_INPUT, LOOKALIKE_EINVAL, "empty");
    parse_bad("{\"vector\":[0,0,0]}", LOOKALIKE_PRODUCT_INPUT, LOOKALIKE_EINVAL, "all zeros");
    parse_bad("{\"vector\":[1,\"2\"]}", LOOKALIKE_PRODUCT_INPUT, LOOKALIKE_EINVAL, "vector[1]");
    parse_bad("{\"vector\":[1,1e39]}", LOOKALIKE_PRODUCT_INPUT, LOOKALIKE_EINVAL, "float32 range");
    parse_bad("{\"vector\":7}", LOOKALIKE_PRODUCT_INPUT, LOOKALIKE_EINVAL, "expected an array");
    char *big = malloc(4 * 5000 + 32);
    strcpy(big, "{\"vector\":[1");
    for (int i = 1; i < 5000; i++)
        strcat(big + strlen(big) - 2, ",1");
    strcat(big, "]}");
    parse_bad(big, LOOKALIKE_PRODUCT_INPUT, LOOKALIKE_ETOOLARGE, "too large");
    free(big);
}

Test(product, vector_validate)
{
    lookalike_product_t p;
    lookalike_product_init(&p);
    float v[3] = {0, 0, 0};
    p.vector = v;
    p.vector_dim = 3;
    char err[256];
    cr_assert_eq(lookalike_product_validate(&p, err, sizeof err), LOOKALIKE_EINVAL);
    cr_assert(strstr(err, "all zeros"), "%s", err);
    v[1] = NAN;
    cr_assert_eq(lookalike_product_validate(&p, err, sizeof err), LOOKALIKE_EINVAL);
    v[1] = 2;
    cr_assert_eq(lookalike_product_validate(&p, err, sizeof err), 0, "%s", err);
}
