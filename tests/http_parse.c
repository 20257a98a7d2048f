/* SPDX-License-Identifier: MIT */
/*
 * http_parse.c — the request-head parser of the HTTP example
 * (examples/http_parse.c): valid heads and what they say, pipelined heads,
 * partial input, each error status, limits (414 for the request line, 431
 * for the fields).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "http_parse.h"

static const http_limits limits = {.max_head = 8192, .max_body = 1 << 20};

static http_parse_result parse_lim(const char *s, const http_limits *lim,
                                   http_request *req)
{
    return http_parse_request(s, strlen(s), lim, req);
}

static http_parse_result parse(const char *s, http_request *req)
{
    return parse_lim(s, &limits, req);
}

/* Asserts s fails with status. */
static void expect_status(const char *s, int status)
{
    http_request req;
    cr_assert_eq(parse(s, &req), HTTP_PARSE_ERROR, "accepted: %s", s);
    cr_assert_eq(req.status, status, "%s: status %d, expected %d", s,
                 req.status, status);
    cr_assert(!req.keep_alive);
}

static void expect_path(const http_request *req, const char *path)
{
    cr_assert_eq(req->path_len, strlen(path));
    cr_assert(memcmp(req->path, path, req->path_len) == 0, "path %.*s",
              (int)req->path_len, req->path);
}

/* ----------------------------------------------------------------- valid */

Test(http_parse, simple_get)
{
    const char *s = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    http_request req;
    cr_assert_eq(parse(s, &req), HTTP_PARSE_OK);
    cr_assert_eq(req.method, HTTP_GET);
    cr_assert_eq(req.head_len, strlen(s));
    cr_assert_eq(req.minor, 1);
    cr_assert(req.keep_alive);
    cr_assert_eq(req.content_length, 0);
    expect_path(&req, "/hello");
}

Test(http_parse, query_is_not_part_of_the_path)
{
    http_request req;
    cr_assert_eq(parse("HEAD /a/b?c=d HTTP/1.1\r\nHost: x\r\n\r\n", &req),
                 HTTP_PARSE_OK);
    cr_assert_eq(req.method, HTTP_HEAD);
    expect_path(&req, "/a/b");
}

Test(http_parse, absolute_form_gives_the_path)
{
    http_request req;
    cr_assert_eq(parse("GET http://h:80/p?q HTTP/1.1\r\nHost: h\r\n\r\n", &req),
                 HTTP_PARSE_OK);
    expect_path(&req, "/p");
    cr_assert_eq(parse("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", &req),
                 HTTP_PARSE_OK);
    expect_path(&req, "/");
}

Test(http_parse, asterisk_form_for_options_only)
{
    http_request req;
    cr_assert_eq(parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &req),
                 HTTP_PARSE_OK);
    cr_assert_eq(req.method, HTTP_OPTIONS);
    cr_assert_null(req.path);
    expect_status("GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400);
}

Test(http_parse, header_names_are_case_insensitive_and_ows_is_trimmed)
{
    http_request req;
    const char *s = "POST /u HTTP/1.1\r\nhOsT:x\r\ncOnTeNt-LeNgTh: \t 12 \t\r\n"
                    "CONNECTION:\tClose\r\nexpect: 100-Continue\r\n\r\n";
    cr_assert_eq(parse(s, &req), HTTP_PARSE_OK);
    cr_assert_eq(req.method, HTTP_POST);
    cr_assert_eq(req.content_length, 12);
    cr_assert(!req.keep_alive);
    cr_assert(req.expect_continue);
}

Test(http_parse, keep_alive_rules)
{
    http_request req;
    cr_assert_eq(parse("GET / HTTP/1.0\r\n\r\n", &req), HTTP_PARSE_OK);
    cr_assert_eq(req.minor, 0);
    cr_assert(!req.keep_alive);
    cr_assert_eq(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                       &req), HTTP_PARSE_OK);
    cr_assert(req.keep_alive);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close"
                       "\r\n\r\n", &req), HTTP_PARSE_OK);
    cr_assert(!req.keep_alive);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
                       "\r\n", &req), HTTP_PARSE_OK);
    cr_assert(req.keep_alive);
}

Test(http_parse, later_minor_versions_read_as_1_1)
{
    http_request req;
    cr_assert_eq(parse("GET / HTTP/1.7\r\nHost: x\r\n\r\n", &req),
                 HTTP_PARSE_OK);
    cr_assert_eq(req.minor, 1);
}

Test(http_parse, bare_lf_and_leading_empty_lines_are_accepted)
{
    http_request req;
    const char *s = "\r\n\nGET / HTTP/1.1\nHost: x\n\n";
    cr_assert_eq(parse(s, &req), HTTP_PARSE_OK);
    cr_assert_eq(req.head_len, strlen(s));
}

Test(http_parse, same_content_length_twice_is_accepted)
{
    http_request req;
    cr_assert_eq(parse("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                       "Content-Length: 003\r\n\r\n", &req), HTTP_PARSE_OK);
    cr_assert_eq(req.content_length, 3);
}

Test(http_parse, unknown_method_is_not_a_parse_error)
{
    http_request req;
    cr_assert_eq(parse("BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", &req),
                 HTTP_PARSE_OK);
    cr_assert_eq(req.method, HTTP_OTHER);
    cr_assert_eq(parse("get / HTTP/1.1\r\nHost: x\r\n\r\n", &req),
                 HTTP_PARSE_OK);
    cr_assert_eq(req.method, HTTP_OTHER, "methods are case-sensitive");
}

Test(http_parse, obs_text_in_a_value_is_accepted)
{
    http_request req;
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9\r\n\r\n",
                       &req), HTTP_PARSE_OK);
}

/* ------------------------------------------------- pipelined and partial */

Test(http_parse, pipelined_heads_parse_one_at_a_time)
{
    const char *s = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                    "HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
                    "GET /c HTTP/1.1\r\nHo";
    http_request req;
    size_t off = 0, n = strlen(s);
    cr_assert_eq(http_parse_request(s, n, &limits, &req), HTTP_PARSE_OK);
    expect_path(&req, "/a");
    off += req.head_len;
    cr_assert_eq(http_parse_request(s + off, n - off, &limits, &req),
                 HTTP_PARSE_OK);
    cr_assert_eq(req.method, HTTP_HEAD);
    expect_path(&req, "/b");
    off += req.head_len;
    cr_assert_eq(http_parse_request(s + off, n - off, &limits, &req),
                 HTTP_PARSE_NEED_MORE);
}

Test(http_parse, every_prefix_needs_more)
{
    const char *s = "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n";
    http_request req;
    size_t n = strlen(s);
    for (size_t k = 0; k < n; k++)
        cr_assert_eq(http_parse_request(s, k, &limits, &req),
                     HTTP_PARSE_NEED_MORE, "prefix of %zu bytes", k);
    cr_assert_eq(http_parse_request(s, n, &limits, &req), HTTP_PARSE_OK);
}

Test(http_parse, a_bad_request_line_fails_before_the_head_ends)
{
    expect_status("GET  / HTTP/1.1\r\n", 400);
    http_request req;
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: x\r\n", &req),
                 HTTP_PARSE_NEED_MORE);
}

Test(http_parse, reads_nothing_past_the_length)
{
    /* The LF that would end the head lies just past len. */
    const char s[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    http_request req;
    cr_assert_eq(http_parse_request(s, sizeof s - 2, &limits, &req),
                 HTTP_PARSE_NEED_MORE);
}

/* ------------------------------------------------------------- malformed */

Test(http_parse, bad_request_lines_are_400)
{
    expect_status("GET /\r\n\r\n", 400);                   /* no version */
    expect_status("GET\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400);
    expect_status(" GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    expect_status("GET / http/1.1\r\nHost: x\r\n\r\n", 400);
    expect_status("GET / HTTP/1\r\nHost: x\r\n\r\n", 400);
    expect_status("GET / HTTP/11.1\r\nHost: x\r\n\r\n", 400);
    expect_status("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    expect_status("GET  HTTP/1.1\r\nHost: x\r\n\r\n", 400); /* no target */
    expect_status("GET / HTTP/1.1\rX\r\nHost: x\r\n\r\n", 400);
}

Test(http_parse, control_characters_in_the_target_are_400)
{
    expect_status("GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    expect_status("GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    expect_status("GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    expect_status("GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    http_request req;
    const char nul[] = "GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(http_parse_request(nul, sizeof nul - 1, &limits, &req),
                 HTTP_PARSE_ERROR);
    cr_assert_eq(req.status, 400);
}

Test(http_parse, bad_header_lines_are_400)
{
    expect_status("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: x\r\nX : y\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: x\r\n: y\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n",
                  400);
    expect_status("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: x\r\n\r\r\n\r\n", 400);
}

Test(http_parse, bad_content_lengths_are_400)
{
    expect_status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                  400);
    expect_status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
                  400);
    expect_status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
                  400);
    expect_status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n"
                  "\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n",
                  400);
    expect_status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: "
                  "99999999999999999999999\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                  "Content-Length: 2\r\n\r\n", 400);
}

Test(http_parse, host_is_required_once_in_1_1)
{
    expect_status("GET / HTTP/1.1\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

/* ------------------------------------------------------ each other status */

Test(http_parse, transfer_encoding_is_501_or_400_beside_a_length)
{
    expect_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                  "\r\n\r\n", 501);
    expect_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                  "\r\nContent-Length: 3\r\n\r\n", 400);
}

Test(http_parse, other_major_versions_are_505)
{
    expect_status("GET / HTTP/2.0\r\n\r\n", 505);
    expect_status("GET / HTTP/0.9\r\n\r\n", 505);
}

Test(http_parse, a_body_above_the_bound_is_413)
{
    expect_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n"
                  "\r\n", 413);
    http_request req;
    cr_assert_eq(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "
                       "1048576\r\n\r\n", &req), HTTP_PARSE_OK);
}

Test(http_parse, a_head_above_max_head_is_431)
{
    const http_limits small = {.max_head = 64, .max_body = 0};
    const char *fits = "GET / HTTP/1.1\r\nHost: x\r\nX: 0123456789012345678"
                       "9012345678901\r\n\r\n"; /* 64 bytes */
    cr_assert_eq(strlen(fits), 64);
    http_request req;
    cr_assert_eq(parse_lim(fits, &small, &req), HTTP_PARSE_OK);
    const char *over = "GET / HTTP/1.1\r\nHost: x\r\nX: 01234567890123456789"
                       "0123456789012\r\n\r\n";
    cr_assert_eq(strlen(over), 65);
    cr_assert_eq(parse_lim(over, &small, &req), HTTP_PARSE_ERROR);
    cr_assert_eq(req.status, 431);
}

Test(http_parse, an_unfinished_head_at_max_head_is_431)
{
    const http_limits small = {.max_head = 32, .max_body = 0};
    char big[200];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    http_request req;
    cr_assert_eq(http_parse_request(big, 32, &small, &req),
                 HTTP_PARSE_NEED_MORE);
    cr_assert_eq(http_parse_request(big, 33, &small, &req), HTTP_PARSE_ERROR);
    cr_assert_eq(req.status, 431);
    cr_assert_eq(http_parse_request(big, sizeof big, &small, &req),
                 HTTP_PARSE_ERROR);
    cr_assert_eq(req.status, 431);
}

/* The request line does not end within max_head: its target is what is
 * too long (414), not the fields (431). */
Test(http_parse, a_request_line_above_max_head_is_414)
{
    const http_limits small = {.max_head = 32, .max_body = 0};
    char big[200];
    memset(big, 'a', sizeof big);
    memcpy(big, "\r\nGET /", 7); /* an empty line first is skipped */
    http_request req;
    cr_assert_eq(http_parse_request(big, 32, &small, &req),
                 HTTP_PARSE_NEED_MORE);
    cr_assert_eq(http_parse_request(big, 33, &small, &req), HTTP_PARSE_ERROR);
    cr_assert_eq(req.status, 414);
    cr_assert(!req.keep_alive);
    const char *whole = "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                        " HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(parse_lim(whole, &small, &req), HTTP_PARSE_ERROR);
    cr_assert_eq(req.status, 414);
}

Test(http_parse, reasons)
{
    cr_assert(strcmp(http_reason(200), "OK") == 0);
    cr_assert(strcmp(http_reason(414), "URI Too Long") == 0);
    cr_assert(strcmp(http_reason(431), "Request Header Fields Too Large") == 0);
    cr_assert(strcmp(http_reason(999), "Unknown") == 0);
}
