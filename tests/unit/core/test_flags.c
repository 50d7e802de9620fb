#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static int port, grace;
static size_t limit;
static bool verbose;
static const char *name;
static const core_flag flags[] = {
    {"port", CORE_FLAG_INT, &port, "8080", 0, 65535, "port"},
    {"body-limit", CORE_FLAG_SIZE, &limit, "1M", 0, 1 << 30, "limit"},
    {"grace", CORE_FLAG_MS, &grace, "10s", 0, 60000, "grace"},
    {"verbose", CORE_FLAG_BOOL, &verbose, "false", 0, 0, "verbose"},
    {"name", CORE_FLAG_STR, &name, "svc", 0, 0, "name"},
};
#define NF (sizeof flags / sizeof flags[0])

static int parse(int argc, char **argv, char *err, size_t errlen)
{
    FILE *devnull = fopen("/dev/null", "w");
    int rc = core_flags_parse(flags, NF, "TFLAG", argc, argv, "usage", devnull, err, errlen);
    fclose(devnull);
    return rc;
}

Test(flags, defaults_env_then_command_line)
{
    char err[256];
    char *argv0[] = {"prog", NULL};
    unsetenv("TFLAG_PORT");
    unsetenv("TFLAG_BODY_LIMIT");
    cr_assert_eq(parse(1, argv0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(port, 8080);
    cr_assert_eq(limit, 1 << 20);
    cr_assert_eq(grace, 10000);
    cr_assert_not(verbose);
    cr_assert_str_eq(name, "svc");

    setenv("TFLAG_PORT", "9000", 1);
    setenv("TFLAG_BODY_LIMIT", "64k", 1);
    cr_assert_eq(parse(1, argv0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(port, 9000);
    cr_assert_eq(limit, 64 << 10);

    char *argv[] = {"prog", "--port", "9100", "--grace=250ms", "--verbose", "--name=x", NULL};
    cr_assert_eq(parse(6, argv, err, sizeof err), 0, "%s", err);
    cr_assert_eq(port, 9100);
    cr_assert_eq(grace, 250);
    cr_assert(verbose);
    cr_assert_str_eq(name, "x");
    unsetenv("TFLAG_PORT");
    unsetenv("TFLAG_BODY_LIMIT");
}

Test(flags, bad_values_name_the_flag)
{
    char err[256];
    char *a1[] = {"prog", "--port", "70000", NULL};
    cr_assert_eq(parse(3, a1, err, sizeof err), CORE_EINVAL);
    cr_assert(strstr(err, "--port") && strstr(err, "70000") && strstr(err, "out of range"), "%s", err);
    char *a2[] = {"prog", "--grace=soon", NULL};
    cr_assert_eq(parse(2, a2, err, sizeof err), CORE_EINVAL);
    cr_assert(strstr(err, "--grace") && strstr(err, "duration"), "%s", err);
    char *a3[] = {"prog", "--nope", NULL};
    cr_assert_eq(parse(2, a3, err, sizeof err), CORE_EINVAL);
    cr_assert(strstr(err, "unknown flag --nope"), "%s", err);
    char *a4[] = {"prog", "--port", NULL};
    cr_assert_eq(parse(2, a4, err, sizeof err), CORE_EINVAL);
    cr_assert(strstr(err, "needs a value"), "%s", err);
    setenv("TFLAG_VERBOSE", "maybe", 1);
    char *a5[] = {"prog", NULL};
    cr_assert_eq(parse(1, a5, err, sizeof err), CORE_EINVAL);
    cr_assert(strstr(err, "--verbose (TFLAG_VERBOSE)"), "%s", err);
    unsetenv("TFLAG_VERBOSE");
    char *a6[] = {"prog", "stray", NULL};
    cr_assert_eq(parse(2, a6, err, sizeof err), CORE_EINVAL);
}

Test(flags, help_lists_every_flag_and_env)
{
    char err[256];
    char *argv[] = {"prog", "--help", NULL};
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    cr_assert_eq(core_flags_parse(flags, NF, "TFLAG", 2, argv, "usage line", out, err, sizeof err), 1);
    fclose(out);
    cr_assert(strstr(buf, "usage line"));
    cr_assert(strstr(buf, "--body-limit") && strstr(buf, "TFLAG_BODY_LIMIT"), "%s", buf);
    free(buf);
}

Test(flags, parsers)
{
    size_t sz;
    long long ms;
    cr_assert_eq(core_parse_size("512", &sz), 0);
    cr_assert_eq(sz, 512);
    cr_assert_eq(core_parse_size("8MiB", &sz), 0);
    cr_assert_eq(sz, 8 << 20);
    cr_assert_eq(core_parse_size("2G", &sz), 0);
    cr_assert_eq(sz, 2ull << 30);
    cr_assert_eq(core_parse_size("-1", &sz), CORE_EINVAL);
    cr_assert_eq(core_parse_size("1x", &sz), CORE_EINVAL);
    cr_assert_eq(core_parse_ms("5", &ms), 0);
    cr_assert_eq(ms, 5000);
    cr_assert_eq(core_parse_ms("2m", &ms), 0);
    cr_assert_eq(ms, 120000);
    cr_assert_eq(core_parse_ms("5 s", &ms), CORE_EINVAL);
}

Test(flags, http_config_flags_match_defaults)
{
    core_http_config want, got;
    core_http_config_defaults(&want);
    core_http_config_defaults(&got);
    got.port = 1;
    got.body_limit = 3;
    got.access_log = false;
    core_flag table[CORE_HTTP_CONFIG_NFLAGS];
    size_t n = core_http_config_flags(&got, table, CORE_HTTP_CONFIG_NFLAGS);
    cr_assert_eq(n, CORE_HTTP_CONFIG_NFLAGS);
    char err[256];
    char *argv[] = {"prog", NULL};
    cr_assert_eq(core_flags_parse(table, n, "TFLAG_NONE", 1, argv, NULL, NULL, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(got.port, want.port);
    cr_assert_eq(got.body_limit, want.body_limit);
    cr_assert_eq(got.idle_timeout_ms, want.idle_timeout_ms);
    cr_assert_eq(got.read_timeout_ms, want.read_timeout_ms);
    cr_assert_eq(got.connection_limit, want.connection_limit);
    cr_assert_eq(got.header_limit, want.header_limit);
    cr_assert_eq(got.pool_queue, want.pool_queue);
    cr_assert_eq(got.shutdown_grace_ms, want.shutdown_grace_ms);
    cr_assert_eq(got.slow_ms, want.slow_ms);
    cr_assert_eq(got.access_log, want.access_log);
    cr_assert_str_eq(got.bind, want.bind);
    json_t *j = core_flags_to_json(table, n);
    cr_assert_eq(json_integer_value(json_object_get(j, "port")), 8080);
    json_decref(j);
}
