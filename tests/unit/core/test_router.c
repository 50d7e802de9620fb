#include <criterion/criterion.h>
#include <string.h>

#include "core/core.h"

static core_router *r;
static core_arena *a;
static int v_list, v_get, v_put, v_static, v_root, v_lit, v_create;

static void setup(void)
{
    char err[256];
    r = core_router_new();
    a = core_arena_new(0);
    cr_assert(r && a);
    cr_assert_eq(core_router_add(r, "GET", "/api/collections/{c}/products", &v_list, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(core_router_add(r, "POST", "/api/collections/{c}/products", &v_create, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(core_router_add(r, "GET", "/api/collections/{c}/products/{id}", &v_get, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(
        core_router_add(r, "PUT,DELETE", "/api/collections/{c}/products/{id}", &v_put, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(core_router_add(r, "GET", "/api/collections/main/products/latest", &v_lit, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(core_router_add(r, "GET", "/static/{path...}", &v_static, err, sizeof err), 0, "%s", err);
    cr_assert_eq(core_router_add(r, "GET", "/", &v_root, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    core_router_free(r);
    core_arena_free(a);
}

TestSuite(router, .init = setup, .fini = teardown);

Test(router, params_are_decoded_per_segment)
{
    core_route_match m;
    cr_assert_eq(core_router_match(r, "GET", "/api/collections/shoes%2Fred/products/42", a, &m),
                 CORE_ROUTE_FOUND);
    cr_assert_eq(m.value, &v_get);
    cr_assert_str_eq(m.pattern, "/api/collections/{c}/products/{id}");
    cr_assert_eq(m.nparams, 2);
    cr_assert_str_eq(m.param_names[0], "c");
    cr_assert_str_eq(m.param_values[0], "shoes/red");
    cr_assert_str_eq(m.param_names[1], "id");
    cr_assert_str_eq(m.param_values[1], "42");
}

Test(router, literal_beats_parameter)
{
    core_route_match m;
    cr_assert_eq(core_router_match(r, "GET", "/api/collections/main/products/latest", a, &m),
                 CORE_ROUTE_FOUND);
    cr_assert_eq(m.value, &v_lit);
    cr_assert_eq(core_router_match(r, "GET", "/api/collections/main/products/older", a, &m),
                 CORE_ROUTE_FOUND);
    cr_assert_eq(m.value, &v_get);
}

Test(router, method_selects_handler_and_head_follows_get)
{
    core_route_match m;
    cr_assert_eq(core_router_match(r, "POST", "/api/collections/x/products", a, &m), CORE_ROUTE_FOUND);
    cr_assert_eq(m.value, &v_create);
    cr_assert_eq(core_router_match(r, "DELETE", "/api/collections/x/products/1", a, &m), CORE_ROUTE_FOUND);
    cr_assert_eq(m.value, &v_put);
    cr_assert_eq(core_router_match(r, "HEAD", "/api/collections/x/products/1", a, &m), CORE_ROUTE_FOUND);
    cr_assert_eq(m.value, &v_get);
}

Test(router, wrong_method_gives_allow_list)
{
    core_route_match m;
    cr_assert_eq(core_router_match(r, "PATCH", "/api/collections/x/products/1", a, &m),
                 CORE_ROUTE_METHOD_NOT_ALLOWED);
    cr_assert_str_eq(m.allow, "GET, HEAD, PUT, DELETE");
    cr_assert_str_eq(core_router_allow(r, "/api/collections/x/products", a), "GET, HEAD, POST");
}

Test(router, not_found_cases)
{
    core_route_match m;
    cr_assert_eq(core_router_match(r, "GET", "/api/collections", a, &m), CORE_ROUTE_NOT_FOUND);
    cr_assert_eq(core_router_match(r, "GET", "/api/collections//products", a, &m), CORE_ROUTE_NOT_FOUND);
    cr_assert_eq(core_router_match(r, "GET", "/api/collections/x/products/", a, &m), CORE_ROUTE_NOT_FOUND);
    cr_assert_eq(core_router_match(r, "GET", "/static", a, &m), CORE_ROUTE_NOT_FOUND);
    cr_assert_null(core_router_allow(r, "/nothing/here", a));
}

Test(router, root_and_tail)
{
    core_route_match m;
    cr_assert_eq(core_router_match(r, "GET", "/", a, &m), CORE_ROUTE_FOUND);
    cr_assert_eq(m.value, &v_root);
    cr_assert_eq(core_router_match(r, "GET", "/static/css/site%20main.css", a, &m), CORE_ROUTE_FOUND);
    cr_assert_eq(m.value, &v_static);
    cr_assert_str_eq(m.param_values[0], "css/site main.css");
}

Test(router, traversal_and_bad_escapes_are_bad_paths)
{
    core_route_match m;
    const char *bad[] = {"/static/../etc/passwd",
                         "/static/%2e%2e/etc/passwd",
                         "/static/a/%2E%2E/b",
                         "/static/./x",
                         "/static/a%2F..%2Fb",
                         "/static/%zz",
                         "/static/%4",
                         "/static/a%00b",
                         "relative",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(core_router_match(r, "GET", bad[i], a, &m), CORE_ROUTE_BAD_PATH, "path %s", bad[i]);
}

Test(router, too_many_segments_is_bad_path)
{
    char path[512] = "";
    for (int i = 0; i < CORE_ROUTER_MAX_SEGMENTS + 1; i++)
        strcat(path, "/s");
    core_route_match m;
    cr_assert_eq(core_router_match(r, "GET", path, a, &m), CORE_ROUTE_BAD_PATH);
}

Test(router, bad_patterns_are_refused_with_a_message)
{
    char err[256];
    const char *bad[] = {"nope", "/a//b", "/a/{x", "/a/{}", "/a/{p...}/b", "/a/{x}/{x}", "/a/", "/a/../b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_assert_eq(core_router_add(r, "GET", bad[i], &v_root, err, sizeof err), CORE_EINVAL, "pattern %s",
                     bad[i]);
        cr_assert(strlen(err) > 0);
    }
    cr_assert_eq(core_router_add(r, "GET", "/api/collections/{other}/products", &v_root, err, sizeof err),
                 CORE_EINVAL);
    cr_assert(strstr(err, "conflicts"), "%s", err);
    cr_assert_eq(core_router_add(r, "GET", "/api/collections/{c}/products", &v_root, err, sizeof err),
                 CORE_EINVAL);
    cr_assert(strstr(err, "twice"), "%s", err);
}

Test(router, url_decode)
{
    char *out;
    size_t n;
    cr_assert_eq(core_url_decode(a, "a+b%20c%2B", 10, true, &out, &n), 0);
    cr_assert_str_eq(out, "a b c+");
    cr_assert_eq(n, 6);
    cr_assert_eq(core_url_decode(a, "a+b", 3, false, &out, &n), 0);
    cr_assert_str_eq(out, "a+b");
    cr_assert_eq(core_url_decode(a, "%", 1, false, &out, &n), CORE_EINVAL);
    cr_assert_eq(core_url_decode(a, "%a", 2, false, &out, &n), CORE_EINVAL);
    cr_assert_eq(core_url_decode(a, "%00", 3, false, &out, &n), CORE_EINVAL);
}
