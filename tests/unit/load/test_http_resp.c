#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "load/load.h"

/* Feeds text in pieces of `step` bytes; returns the final feed result and the bytes used. */
static int feed_steps(load_resp_t *r, const char *text, size_t step, size_t *used_total)
{
    size_t len = strlen(text), at = 0;
    int rc = LOAD_RESP_MORE;
    while (at < len && rc == LOAD_RESP_MORE) {
        size_t n = len - at < step ? len - at : step, used = 0;
        rc = load_resp_feed(r, text + at, n, &used);
        at += used;
    }
    if (used_total)
        *used_total = at;
    return rc;
}

static void expect_body(const char *text, int status, const char *body)
{
    static const size_t steps[] = {1, 2, 3, 7, 64, 100000};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        load_resp_t r;
        cr_assert_eq(load_resp_init(&r, 1 << 20), 0);
        int rc = feed_steps(&r, text, steps[i], NULL);
        cr_assert_eq(rc, LOAD_RESP_DONE, "step %zu: rc %d", steps[i], rc);
        cr_assert_eq(r.status, status);
        cr_assert_eq(r.body_len, strlen(body), "step %zu", steps[i]);
        cr_assert_str_eq(r.body, body);
        load_resp_release(&r);
    }
}

Test(http_resp, content_length)
{
    expect_body(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":[1,2]}", 200,
        "{\"a\":[1,2]}");
}

Test(http_resp, chunked_with_extensions_and_trailers)
{
    expect_body("HTTP/1.1 201 Created\r\ntransfer-encoding: gzip, Chunked\r\n\r\n"
                "4;name=x\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n",
                201, "Wikipedia in\r\n\r\nchunks.");
}

Test(http_resp, interim_and_empty_responses)
{
    expect_body("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok");
    expect_body("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204, "");
    expect_body("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 404, "");
    expect_body("HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", 200, "abc");
}

Test(http_resp, close_delimited_and_keep_alive_flags)
{
    load_resp_t r;
    cr_assert_eq(load_resp_init(&r, 1024), 0);
    const char *t = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nuntil the end";
    cr_assert_eq(load_resp_feed(&r, t, strlen(t), NULL), LOAD_RESP_MORE);
    cr_assert_eq(load_resp_eof(&r), LOAD_RESP_DONE);
    cr_assert_str_eq(r.body, "until the end");
    cr_assert(r.close);
    load_resp_reset(&r);
    t = "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx";
    cr_assert_eq(load_resp_feed(&r, t, strlen(t), NULL), LOAD_RESP_DONE);
    cr_assert(r.close, "HTTP/1.0 closes unless it says keep-alive");
    load_resp_reset(&r);
    t = "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx";
    cr_assert_eq(load_resp_feed(&r, t, strlen(t), NULL), LOAD_RESP_DONE);
    cr_assert_not(r.close);
    load_resp_reset(&r);
    t = "HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 1\r\n\r\nx";
    cr_assert_eq(load_resp_feed(&r, t, strlen(t), NULL), LOAD_RESP_DONE);
    cr_assert(r.close);
    load_resp_release(&r);
}

Test(http_resp, two_responses_back_to_back)
{
    load_resp_t r;
    cr_assert_eq(load_resp_init(&r, 1024), 0);
    const char *t =
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb";
    size_t used = 0;
    cr_assert_eq(load_resp_feed(&r, t, strlen(t), &used), LOAD_RESP_DONE);
    cr_assert_str_eq(r.body, "a");
    cr_assert(load_resp_empty(&r) == 0);
    load_resp_reset(&r);
    cr_assert(load_resp_empty(&r));
    cr_assert_eq(load_resp_feed(&r, t + used, strlen(t) - used, NULL), LOAD_RESP_DONE);
    cr_assert_str_eq(r.body, "b");
    load_resp_release(&r);
}

static void expect_error(const char *text, size_t body_max, int want)
{
    load_resp_t r;
    cr_assert_eq(load_resp_init(&r, body_max), 0);
    int rc = feed_steps(&r, text, 5, NULL);
    if (rc == LOAD_RESP_MORE)
        rc = load_resp_eof(&r);
    cr_assert_eq(rc, want, "%s: got %d", text, rc);
    load_resp_release(&r);
}

Test(http_resp, bad_responses)
{
    expect_error("HTTP/2 200 OK\r\n\r\n", 100, LOAD_EPROTO);
    expect_error("HTTP/1.1 2x0 OK\r\n\r\n", 100, LOAD_EPROTO);
    expect_error("HTTP/1.1 099 Low\r\n\r\n", 100, LOAD_EPROTO);
    expect_error("SSH-2.0-OpenSSH\r\n\r\n", 100, LOAD_EPROTO);
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 100, LOAD_EPROTO);
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 100, LOAD_EPROTO);
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 100, LOAD_EPROTO);
    expect_error("HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", 100, LOAD_EPROTO);
    expect_error("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", 100, LOAD_EPROTO);
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100, LOAD_EPROTO);
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 100, LOAD_EPROTO);
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 100, LOAD_EPROTO);
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", 100, LOAD_ETOOLARGE);
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", 100, LOAD_ETOOLARGE);
    expect_error("HTTP/1.1 200 OK\r\n\r\n", 0, LOAD_RESP_DONE);
}

Test(http_resp, header_block_cap)
{
    size_t n = LOAD_HEADER_MAX + 100;
    char *t = malloc(n + 1);
    strcpy(t, "HTTP/1.1 200 OK\r\nX: ");
    memset(t + strlen(t), 'a', n - strlen(t));
    t[n] = 0;
    expect_error(t, 100, LOAD_ETOOLARGE);
    free(t);
}
