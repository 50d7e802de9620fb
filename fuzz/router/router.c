/* Fuzzes path decoding and route matching: the first byte picks the method, the rest is the
 * raw request path. Beyond "no crash", it checks what the server relies on: a matched tail
 * parameter (what static files are served from) never holds an empty, "." or ".." segment and
 * never starts with '/', and decoded values never contain NUL. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"};

static void check_tail(const char *v)
{
    if (v[0] == '/' || v[0] == '\0')
        abort();
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            abort();
        p += n;
        if (*p == '/')
            p++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    static int v_get, v_put, v_static, v_root, v_lit;
    char err[256];
    core_router *r = core_router_new();
    core_arena *a = core_arena_new(1 << 20);
    if (!r || !a)
        abort();
    if (core_router_add(r, "GET", "/api/collections/{c}/products/{id}", &v_get, err, sizeof err) != 0 ||
        core_router_add(r, "PUT,DELETE", "/api/collections/{c}/products/{id}", &v_put, err, sizeof err) !=
            0 ||
        core_router_add(r, "GET", "/api/collections/main/products/latest", &v_lit, err, sizeof err) != 0 ||
        core_router_add(r, "GET", "/static/{path...}", &v_static, err, sizeof err) != 0 ||
        core_router_add(r, "GET", "/", &v_root, err, sizeof err) != 0)
        abort();
    const char *method = methods[data[0] % 8];
    char *path = malloc(size);
    memcpy(path, data + 1, size - 1);
    path[size - 1] = '\0';

    core_route_match m;
    core_route_status st = core_router_match(r, method, path, a, &m);
    if (st == CORE_ROUTE_FOUND) {
        if (!m.value || !m.pattern || !m.allow)
            abort();
        for (size_t i = 0; i < m.nparams; i++) {
            if (!m.param_values[i] || !m.param_values[i][0])
                abort();
            if (m.value == &v_static)
                check_tail(m.param_values[i]);
        }
    } else if (st == CORE_ROUTE_METHOD_NOT_ALLOWED) {
        if (!m.allow || !m.pattern)
            abort();
    }
    core_router_allow(r, path, a);

    char *out;
    size_t out_len;
    if (core_url_decode(a, path, size - 1, true, &out, &out_len) == 0 && strlen(out) != out_len)
        abort();
    free(path);
    core_arena_free(a);
    core_router_free(r);
    return 0;
}
