#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"

/* RFC 4648 section 10 test vectors, both ways. */
Test(base64, rfc4648_vectors)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *e = cluster_base64_encode(plain[i], strlen(plain[i]));
        cr_assert_str_eq(e, coded[i]);
        free(e);
        size_t n;
        unsigned char *d = cluster_base64_decode(coded[i], strlen(coded[i]), &n);
        cr_assert_not_null(d, "%s", coded[i]);
        cr_assert_eq(n, strlen(plain[i]));
        cr_assert_eq(memcmp(d, plain[i], n), 0);
        cr_assert_eq(d[n], '\0');
        free(d);
    }
}

Test(base64, every_byte_round_trips)
{
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t len = 0; len <= 256; len += 37) {
        char *e = cluster_base64_encode(all, len);
        size_t n;
        unsigned char *d = cluster_base64_decode(e, strlen(e), &n);
        cr_assert_eq(n, len);
        cr_assert_eq(memcmp(d, all, len), 0);
        free(e);
        free(d);
    }
}

Test(base64, rejects_malformed_input)
{
    size_t n;
    static const char *const bad[] = {"Zg=", "Z===", "Zg=a", "=Zg=", "Zm9v!A==", "Zg==Zg==", "Zm9"};
    for (int i = 0; i < 7; i++)
        cr_assert_null(cluster_base64_decode(bad[i], strlen(bad[i]), &n), "%s", bad[i]);
}

static int parse(const char *resp, int *status, char **body, size_t *len, char *err)
{
    return cluster_http_parse_response(resp, strlen(resp), status, body, len, err, 256);
}

Test(http_response, content_length_bounds_the_body)
{
    char err[256], *body;
    size_t len;
    int status;
    cr_assert_eq(
        parse("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX: y\r\n\r\n{}{}extra", &status, &body, &len, err), 0,
        "%s", err);
    cr_assert_eq(status, 200);
    cr_assert_eq(len, 4);
    cr_assert_str_eq(body, "{}{}");
    free(body);
}

Test(http_response, chunked_body_is_decoded)
{
    char err[256], *body;
    size_t len;
    int status;
    cr_assert_eq(
        parse("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n"
              "0\r\n\r\n",
              &status, &body, &len, err),
        0, "%s", err);
    cr_assert_str_eq(body, "abc0123456789");
    cr_assert_eq(len, 13);
    free(body);
}

Test(http_response, close_delimited_body_and_bare_newlines)
{
    char err[256], *body;
    size_t len;
    int status;
    cr_assert_eq(parse("HTTP/1.0 404 Not Found\nContent-Type: text/plain\n\nno such page\n", &status, &body,
                       &len, err),
                 0, "%s", err);
    cr_assert_eq(status, 404);
    cr_assert_str_eq(body, "no such page\n");
    free(body);
}

Test(http_response, malformed_responses_fail_with_a_reason)
{
    static const struct {
        const char *resp, *why;
    } cases[] = {
        {"", "not an HTTP"},
        {"SMTP/1.1 200 OK\r\n\r\n", "not an HTTP"},
        {"HTTP/1.1 2x0 OK\r\n\r\n", "status"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "shorter"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nx", "Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1", "truncated headers"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "truncated chunk"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nab", "chunk size"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", "CRLF"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "", *body = (char *)1;
        size_t len;
        int status;
        cr_assert_neq(parse(cases[i].resp, &status, &body, &len, err), 0, "case %zu", i);
        cr_assert_null(body);
        cr_assert(strstr(err, cases[i].why), "case %zu: %s", i, err);
    }
}

Test(etcd, endpoints_must_be_http_urls)
{
    char err[256];
    cluster_etcd_t *e =
        cluster_etcd_new("http://127.0.0.1:2379,http://localhost:2380/", 1000, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    cluster_etcd_free(e);
    static const char *const bad[] = {"",         ",",         "127.0.0.1:2379", "https://h:1",
                                      "http://h", "http://:1", "http://h:99999", "http://h:1x"};
    for (int i = 0; i < 8; i++) {
        cr_assert_null(cluster_etcd_new(bad[i], 1000, err, sizeof err), "%s", bad[i]);
        cr_assert(strlen(err) > 0);
    }
}

Test(etcd, unreachable_endpoints_fail_with_eio)
{
    char err[256];
    /* Port 1 on loopback: nothing listens there, so each connect is refused at once. */
    cluster_etcd_t *e = cluster_etcd_new("http://127.0.0.1:1,http://127.0.0.1:1", 500, err, sizeof err);
    int64_t lease = 0;
    cr_assert_eq(cluster_etcd_lease_grant(e, 5, &lease, err, sizeof err), CORE_EIO);
    cr_assert(strstr(err, "no endpoint answered"), "%s", err);
    cluster_etcd_free(e);
}

Test(member, options_are_checked)
{
    char err[256];
    cluster_member_opts_t o = {.endpoints = "http://127.0.0.1:1", .key = "/k", .value = "v", .ttl_s = 1};
    cr_assert_null(cluster_member_start(&o, err, sizeof err));
    cr_assert(strstr(err, "ttl"), "%s", err);
    o.ttl_s = 5;
    o.key = "";
    cr_assert_null(cluster_member_start(&o, err, sizeof err));
    o.key = "/k";
    o.endpoints = "nope";
    cr_assert_null(cluster_member_start(&o, err, sizeof err));
}

Test(member, keeps_trying_while_etcd_is_unreachable_and_stops_cleanly)
{
    char err[256];
    cluster_member_opts_t o = {.endpoints = "http://127.0.0.1:1", .key = "/k", .value = "v", .ttl_s = 3};
    cluster_member_t *m = cluster_member_start(&o, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    cr_assert_not(cluster_member_registered(m));
    cluster_member_stop(m);
}
