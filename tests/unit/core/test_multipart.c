#include <criterion/criterion.h>
#include <string.h>

#include "core/core.h"

static core_arena *a;
static void setup(void)
{
    a = core_arena_new(0);
}
static void teardown(void)
{
    core_arena_free(a);
}
TestSuite(multipart, .init = setup, .fini = teardown);

#define BODY                                                                                                 \
    "preamble\r\n"                                                                                           \
    "--XyZ\r\n"                                                                                              \
    "Content-Disposition: form-data; name=\"title\"\r\n"                                                     \
    "\r\n"                                                                                                   \
    "Red shoes\r\n"                                                                                          \
    "--XyZ\r\n"                                                                                              \
    "Content-Disposition: form-data; name=\"image\"; filename=\"a \\\"b\\\".jpg\"\r\n"                       \
    "Content-Type: image/jpeg\r\n"                                                                           \
    "\r\n"                                                                                                   \
    "\xff\xd8\r\n--X\x00\x01"                                                                                \
    "\r\n"                                                                                                   \
    "--XyZ--\r\nepilogue"

Test(multipart, boundary_from_content_type)
{
    char err[256];
    const char *b;
    cr_assert_eq(core_multipart_boundary("multipart/form-data; boundary=XyZ", a, &b, err, sizeof err), 0);
    cr_assert_str_eq(b, "XyZ");
    cr_assert_eq(core_multipart_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"", a, &b, err,
                                         sizeof err),
                 0);
    cr_assert_str_eq(b, "a b");
    cr_assert_eq(core_multipart_boundary("application/json", a, &b, err, sizeof err), CORE_EINVAL);
    cr_assert_eq(core_multipart_boundary("multipart/form-data", a, &b, err, sizeof err), CORE_EINVAL);
    cr_assert_eq(core_multipart_boundary(NULL, a, &b, err, sizeof err), CORE_EINVAL);
}

Test(multipart, fields_and_files)
{
    char err[256];
    core_multipart_part *p;
    size_t n;
    int rc = core_multipart_parse("XyZ", BODY, sizeof BODY - 1, NULL, a, &p, &n, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(p[0].name, "title");
    cr_assert_null(p[0].filename);
    cr_assert_str_eq(p[0].content_type, "text/plain");
    cr_assert_eq(p[0].len, 9);
    cr_assert(memcmp(p[0].data, "Red shoes", 9) == 0);
    cr_assert_str_eq(p[1].name, "image");
    cr_assert_str_eq(p[1].filename, "a \"b\".jpg");
    cr_assert_str_eq(p[1].content_type, "image/jpeg");
    cr_assert_eq(p[1].len, 9);
    cr_assert(memcmp(p[1].data, "\xff\xd8\r\n--X\x00\x01", 9) == 0);
}

Test(multipart, caps_give_too_large)
{
    char err[256];
    core_multipart_part *p;
    size_t n;
    core_multipart_limits lim = {.max_field_size = 4};
    cr_assert_eq(core_multipart_parse("XyZ", BODY, sizeof BODY - 1, &lim, a, &p, &n, err, sizeof err),
                 CORE_ETOOLARGE);
    cr_assert(strstr(err, "too large"), "%s", err);
    lim = (core_multipart_limits){.max_part_size = 5};
    cr_assert_eq(core_multipart_parse("XyZ", BODY, sizeof BODY - 1, &lim, a, &p, &n, err, sizeof err),
                 CORE_ETOOLARGE);
    lim = (core_multipart_limits){.max_parts = 1};
    cr_assert_eq(core_multipart_parse("XyZ", BODY, sizeof BODY - 1, &lim, a, &p, &n, err, sizeof err),
                 CORE_ETOOLARGE);
    lim = (core_multipart_limits){.max_total = 12};
    cr_assert_eq(core_multipart_parse("XyZ", BODY, sizeof BODY - 1, &lim, a, &p, &n, err, sizeof err),
                 CORE_ETOOLARGE);
    lim = (core_multipart_limits){.max_header_size = 20};
    cr_assert_eq(core_multipart_parse("XyZ", BODY, sizeof BODY - 1, &lim, a, &p, &n, err, sizeof err),
                 CORE_ETOOLARGE);
}

Test(multipart, malformed_bodies_are_einval)
{
    char err[256];
    core_multipart_part *p;
    size_t n;
    const char *bad[] = {
        "no boundary here",
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue without end",
        "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data; filename=\"f\"\r\n\r\nx\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--XyZ--",
        "--XyZjunk\r\n",
        "--XyZ\r\nno colon line\r\n\r\nx\r\n--XyZ--",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_assert_eq(core_multipart_parse("XyZ", bad[i], strlen(bad[i]), NULL, a, &p, &n, err, sizeof err),
                     CORE_EINVAL, "case %zu", i);
        cr_assert(strlen(err) > 0);
    }
}

Test(multipart, empty_form)
{
    char err[256];
    core_multipart_part *p;
    size_t n = 99;
    cr_assert_eq(core_multipart_parse("XyZ", "--XyZ--\r\n", 9, NULL, a, &p, &n, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(n, 0);
}
