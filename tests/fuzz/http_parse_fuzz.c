/* SPDX-License-Identifier: MIT */
/*
 * http_parse_fuzz.c — libFuzzer target for examples/http_parse.c.
 *
 * Input: one byte choosing max_head (1 + 32 * byte, so that small limits,
 * 414 and 431 are reached too), then the bytes to parse, copied into a
 * buffer of exactly their size so that AddressSanitizer catches any read
 * past it.
 *
 * Checks, besides memory safety:
 *   - each result is well formed (OK: a head that ends in LF inside the
 *     buffer and inside max_head, a path that starts with '/'; ERROR: one
 *     of the documented statuses, and no keep-alive);
 *   - incrementality: a prefix of an OK head is NEED_MORE; a prefix of a
 *     failing input is NEED_MORE or the same error;
 *   - bytes after the head change nothing: the head alone parses the same.
 *
 * Built and run by `make check-fuzz` (a short run) and `make fuzz`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond))                                                       \
            __builtin_trap();                                              \
    } while (0)

static http_parse_result parse_copy(const uint8_t *data, size_t n,
                                    const http_limits *lim, http_request *req,
                                    char **copy)
{
    *copy = malloc(n ? n : 1);
    CHECK(*copy != NULL);
    if (n)
        memcpy(*copy, data, n);
    return http_parse_request(*copy, n, lim, req);
}

static void check_ok(const char *buf, size_t n, const http_limits *lim,
                     const http_request *req)
{
    CHECK(req->head_len >= 1 && req->head_len <= n);
    CHECK(req->head_len <= lim->max_head);
    CHECK(buf[req->head_len - 1] == '\n');
    CHECK(req->minor == 0 || req->minor == 1);
    CHECK(req->content_length <= lim->max_body);
    CHECK(req->method >= HTTP_OTHER && req->method <= HTTP_PATCH);
    if (req->path) {
        CHECK(req->path_len >= 1 && req->path[0] == '/');
        CHECK(memchr(req->path, '?', req->path_len) == NULL);
        CHECK(req->path_len == 1 ||
              (req->path >= buf && req->path + req->path_len <= buf + n));
    }
}

static void check_error(const http_request *req)
{
    int s = req->status;
    CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 ||
          s == 505);
    CHECK(!req->keep_alive);
}

/* A prefix of k bytes must not decide differently from the whole. */
static void check_prefix(const uint8_t *data, size_t k, const http_limits *lim,
                         http_parse_result whole, int status)
{
    http_request req;
    char *copy;
    http_parse_result r = parse_copy(data, k, lim, &req, &copy);
    if (whole == HTTP_PARSE_OK)
        CHECK(r == HTTP_PARSE_NEED_MORE);
    else if (whole == HTTP_PARSE_ERROR)
        CHECK(r == HTTP_PARSE_NEED_MORE ||
              (r == HTTP_PARSE_ERROR && req.status == status));
    else
        CHECK(r == HTTP_PARSE_NEED_MORE);
    free(copy);
}

/* The head alone parses to the same request. */
static void check_head_alone(const uint8_t *data, const http_limits *lim,
                             const http_request *whole, const char *wbuf)
{
    http_request req;
    char *copy;
    CHECK(parse_copy(data, whole->head_len, lim, &req, &copy) ==
          HTTP_PARSE_OK);
    CHECK(req.head_len == whole->head_len && req.method == whole->method &&
          req.minor == whole->minor && req.keep_alive == whole->keep_alive &&
          req.content_length == whole->content_length &&
          req.expect_continue == whole->expect_continue &&
          req.path_len == whole->path_len);
    if (whole->path_len > 1)
        CHECK(req.path - copy == whole->path - wbuf);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    http_limits lim = {.max_head = 1 + 32 * (size_t)data[0],
                       .max_body = 1 << 20};
    data++, size--;
    http_request req;
    char *buf;
    http_parse_result r = parse_copy(data, size, &lim, &req, &buf);
    CHECK(r == HTTP_PARSE_NEED_MORE || r == HTTP_PARSE_OK ||
          r == HTTP_PARSE_ERROR);
    if (r == HTTP_PARSE_OK) {
        check_ok(buf, size, &lim, &req);
        check_head_alone(data, &lim, &req, buf);
    } else if (r == HTTP_PARSE_ERROR) {
        check_error(&req);
    }
    size_t end = r == HTTP_PARSE_OK ? req.head_len : size;
    if (end > 0) {
        check_prefix(data, end - 1, &lim, r, req.status);
        check_prefix(data, end / 2, &lim, r, req.status);
    }
    free(buf);
    return 0;
}
