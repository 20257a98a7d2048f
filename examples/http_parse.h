/* SPDX-License-Identifier: MIT */
/*
 * http_parse.h — an HTTP/1.x request-head parser: a pure function of a
 * byte buffer, with no I/O, no allocation and no weft dependency (so that
 * it can be unit-tested and fuzzed on its own).
 *
 * Incremental by re-parsing: call it on everything received so far; it
 * answers NEED_MORE until the head (request line, header fields, empty
 * line) is complete, then OK with the head's length, or ERROR with the
 * status code to answer. Every complete line is checked as soon as it is
 * there, so a malformed request line fails before the head is complete.
 *
 * What it accepts (RFC 9112, strictly where smuggling is at stake):
 *   - request line: METHOD SP target SP HTTP/d.d, single spaces;
 *   - lines end in CR LF; a bare LF is accepted too (RFC 9112 §2.2 allows
 *     it); a CR anywhere else is an error; empty lines before the request
 *     line are skipped;
 *   - header fields: token ":" OWS value OWS; no space before the colon,
 *     no obsolete line folding; names compared case-insensitively;
 *   - Content-Length: digits only; repeated only with the same value;
 *   - Transfer-Encoding is not supported (501; 400 beside Content-Length);
 *   - HTTP/1.1 requires exactly one Host field.
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum http_method {
    HTTP_OTHER,   /* a valid token that is no method we know: 501 */
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_CONNECT,
    HTTP_OPTIONS,
    HTTP_TRACE,
    HTTP_PATCH,
} http_method;

typedef enum http_parse_result {
    HTTP_PARSE_NEED_MORE, /* the head is not complete yet */
    HTTP_PARSE_OK,        /* a valid head of head_len bytes */
    HTTP_PARSE_ERROR,     /* answer status and close */
} http_parse_result;

typedef struct http_limits {
    size_t max_head;         /* request line + fields + empty line, bytes */
    uint64_t max_body;       /* Content-Length above this: 413 */
} http_limits;

/* A parsed head. Pointers point into the caller's buffer; they are valid
 * while it is unchanged. Fields are set as far as parsing went. */
typedef struct http_request {
    http_method method;
    const char *path;        /* origin path without query; for the
                                absolute form, the part after the
                                authority ("/" if none). NULL for the
                                asterisk and authority forms */
    size_t path_len;
    int minor;               /* HTTP/1.<minor>: 0, or 1 for 1.1 and up */
    bool keep_alive;         /* the connection may serve another request */
    bool expect_continue;    /* Expect: 100-continue */
    uint64_t content_length; /* body bytes that follow the head */
    size_t head_len;         /* OK: bytes of the head, body excluded */
    int status;              /* ERROR: the status code to answer */
} http_request;

/* Parses the request head at the start of buf[0..len). Reads no byte at or
 * beyond buf + len. Returns:
 *   HTTP_PARSE_NEED_MORE  no error so far and the head is not complete
 *   HTTP_PARSE_OK         req describes a complete, valid head
 *   HTTP_PARSE_ERROR      req->status says why:
 *     400  malformed request line, header field, target, Content-Length;
 *          missing or repeated Host in 1.1; Transfer-Encoding beside
 *          Content-Length; a target form the method cannot use
 *     413  Content-Length above lim->max_body
 *     414  no complete request line within lim->max_head bytes (the
 *          request target is too long)
 *     431  a complete request line, but no complete head within
 *          lim->max_head bytes
 *     501  Transfer-Encoding (request bodies in chunks are not supported)
 *     505  an HTTP major version other than 1
 * A method we do not know is not an error here (method HTTP_OTHER). */
http_parse_result http_parse_request(const char *buf, size_t len,
                                     const http_limits *lim,
                                     http_request *req);

/* The reason phrase of a status code ("Not Found"); "Unknown" otherwise. */
const char *http_reason(int status);

#endif /* HTTP_PARSE_H */
