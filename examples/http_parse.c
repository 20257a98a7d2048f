/* SPDX-License-Identifier: MIT */
/*
 * http_parse.c — the HTTP/1.x request-head parser (see http_parse.h for
 * the grammar it accepts and what each status means).
 *
 * Invariants:
 *   - Nothing is read at or beyond buf + min(len, max_head): every scan is
 *     a memchr or a loop bounded by a line whose end was found inside that
 *     window. A head that does not end inside the window is NEED_MORE
 *     while more bytes could still complete it, else 414 (the request
 *     line did not end inside it: the target is what is too long) or 431
 *     (the fields did not).
 *   - The result depends only on the bytes: parsing a prefix of a head that
 *     parses OK gives NEED_MORE, and a prefix of one that fails gives
 *     NEED_MORE or the same error (a line is judged only once complete;
 *     checks across fields run only at the empty line). The fuzz target
 *     (tests/fuzz/http_parse_fuzz.c) checks exactly this.
 *   - On ERROR, keep_alive is false: the caller closes after answering.
 */
#include "http_parse.h"

#include <string.h>

/* One line, its terminator (LF or CR LF) excluded. */
typedef struct line {
    const char *p;
    size_t n;
} line;

/* Field facts that are only judged once the head is complete. */
typedef struct fields {
    bool host;           /* a Host field was seen */
    bool length;         /* a Content-Length field was seen */
    bool chunked;        /* a Transfer-Encoding field was seen */
    bool close;          /* Connection: close */
    bool keep_alive;     /* Connection: keep-alive */
} fields;

static const struct {
    const char *name;
    size_t len;
    http_method method;
} methods[] = {
    {"GET", 3, HTTP_GET},         {"HEAD", 4, HTTP_HEAD},
    {"POST", 4, HTTP_POST},       {"PUT", 3, HTTP_PUT},
    {"DELETE", 6, HTTP_DELETE},   {"CONNECT", 7, HTTP_CONNECT},
    {"OPTIONS", 7, HTTP_OPTIONS}, {"TRACE", 5, HTTP_TRACE},
    {"PATCH", 5, HTTP_PATCH},
};

/* ------------------------------------------------------------ characters */

static bool is_alpha(unsigned char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* tchar of RFC 9110 §5.6.2. */
static bool is_tchar(unsigned char c)
{
    return is_alpha(c) || is_digit(c) ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_token(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)p[i]))
            return false;
    return true;
}

/* A field value may hold HTAB, SP, visible ASCII and obs-text. */
static bool is_field_text(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* A request target holds visible ASCII only. */
static bool is_target_text(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
            return false;
    return true;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* ASCII case-insensitive equality of p[0..n) with the lower-case lit. */
static bool equals_lower(const char *p, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((is_alpha(c) ? (c | 0x20) : c) != (unsigned char)lit[i])
            return false;
    }
    return true;
}

/* ----------------------------------------------------------------- lines */

/* Takes the line at *pos in buf[0..end): stores it in *l and moves *pos
 * past its LF. Returns false (nothing moved) when no LF is in the window. */
static bool next_line(const char *buf, size_t end, size_t *pos, line *l)
{
    const char *lf = memchr(buf + *pos, '\n', end - *pos);
    if (!lf)
        return false;
    l->p = buf + *pos;
    l->n = (size_t)(lf - l->p);
    if (l->n > 0 && l->p[l->n - 1] == '\r')
        l->n--;
    *pos = (size_t)(lf - buf) + 1;
    return true;
}

/* Splits l at its first SP into *head and *rest. False if there is none. */
static bool split_space(line l, line *head, line *rest)
{
    const char *sp = memchr(l.p, ' ', l.n);
    if (!sp)
        return false;
    *head = (line){l.p, (size_t)(sp - l.p)};
    *rest = (line){sp + 1, l.n - head->n - 1};
    return true;
}

/* ---------------------------------------------------------- request line */

static http_method method_of(line m)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (m.n == methods[i].len && memcmp(m.p, methods[i].name, m.n) == 0)
            return methods[i].method;
    return HTTP_OTHER;
}

/* "HTTP/d.d". Returns 0 (req->minor set), 400 or 505. */
static int parse_version(line v, http_request *req)
{
    if (v.n != 8 || memcmp(v.p, "HTTP/", 5) != 0 || !is_digit(v.p[5]) ||
        v.p[6] != '.' || !is_digit(v.p[7]))
        return 400;
    if (v.p[5] != '1')
        return 505;
    req->minor = v.p[7] == '0' ? 0 : 1;
    return 0;
}

/* Length of a URI scheme followed by "://" at the start of t, or 0. */
static size_t scheme_len(line t)
{
    size_t i = 0;
    if (t.n == 0 || !is_alpha((unsigned char)t.p[0]))
        return 0;
    while (i < t.n && (is_alpha((unsigned char)t.p[i]) ||
                       is_digit((unsigned char)t.p[i]) ||
                       t.p[i] == '+' || t.p[i] == '-' || t.p[i] == '.'))
        i++;
    if (t.n - i < 3 || memcmp(t.p + i, "://", 3) != 0)
        return 0;
    return i + 3;
}

/* Sets req->path from the origin form ("/a/b?q") or the absolute form
 * ("http://host/a/b?q"); leaves it NULL for the other forms. */
static void set_path(line t, http_request *req)
{
    size_t start = 0, s = scheme_len(t);
    if (s > 0) {
        start = s;
        while (start < t.n && t.p[start] != '/' && t.p[start] != '?' &&
               t.p[start] != '#')
            start++;
    } else if (t.p[0] != '/') {
        return;
    }
    size_t end = start;
    while (end < t.n && t.p[end] != '?' && t.p[end] != '#')
        end++;
    if (end == start || t.p[start] != '/') {
        req->path = "/";
        req->path_len = 1;
        return;
    }
    req->path = t.p + start;
    req->path_len = end - start;
}

/* A target without a path (asterisk or authority form) only suits
 * OPTIONS, CONNECT, or a method we do not know (answered 501 anyway). */
static bool target_suits_method(const http_request *req)
{
    return req->path != NULL || req->method == HTTP_OPTIONS ||
           req->method == HTTP_CONNECT || req->method == HTTP_OTHER;
}

/* METHOD SP target SP version. Returns 0, 400 or 505. */
static int parse_request_line(line l, http_request *req)
{
    line method, rest, target, version;
    if (!split_space(l, &method, &rest) || !split_space(rest, &target, &version))
        return 400;
    if (!is_token(method.p, method.n) || target.n == 0 ||
        !is_target_text(target.p, target.n))
        return 400;
    int e = parse_version(version, req);
    if (e)
        return e;
    req->method = method_of(method);
    set_path(target, req);
    return target_suits_method(req) ? 0 : 400;
}

/* --------------------------------------------------------- header fields */

/* Decimal digits only, at most 18 of them (no overflow). */
static bool parse_length(line v, uint64_t *out)
{
    if (v.n == 0 || v.n > 18)
        return false;
    uint64_t n = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (!is_digit((unsigned char)v.p[i]))
            return false;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    *out = n;
    return true;
}

/* Content-Length: a repeat must carry the same value. */
static int on_content_length(line v, fields *f, http_request *req)
{
    uint64_t n;
    if (!parse_length(v, &n))
        return 400;
    if (f->length && n != req->content_length)
        return 400;
    f->length = true;
    req->content_length = n;
    return 0;
}

/* Connection: a comma-separated list of tokens. */
static void on_connection(line v, fields *f)
{
    while (v.n > 0) {
        const char *comma = memchr(v.p, ',', v.n);
        size_t n = comma ? (size_t)(comma - v.p) : v.n;
        line opt = {v.p, n};
        while (opt.n > 0 && is_ows(opt.p[0]))
            opt.p++, opt.n--;
        while (opt.n > 0 && is_ows(opt.p[opt.n - 1]))
            opt.n--;
        f->close |= equals_lower(opt.p, opt.n, "close");
        f->keep_alive |= equals_lower(opt.p, opt.n, "keep-alive");
        v.p += comma ? n + 1 : n;
        v.n -= comma ? n + 1 : n;
    }
}

/* Records what the fields we act on say. Returns 0 or 400. */
static int on_field(line name, line v, fields *f, http_request *req)
{
    if (equals_lower(name.p, name.n, "content-length"))
        return on_content_length(v, f, req);
    if (equals_lower(name.p, name.n, "host")) {
        if (f->host)
            return 400;
        f->host = true;
    } else if (equals_lower(name.p, name.n, "transfer-encoding")) {
        f->chunked = true;
    } else if (equals_lower(name.p, name.n, "connection")) {
        on_connection(v, f);
    } else if (equals_lower(name.p, name.n, "expect")) {
        req->expect_continue = equals_lower(v.p, v.n, "100-continue");
    }
    return 0;
}

/* name ":" OWS value OWS. Returns 0 or 400. */
static int parse_field(line l, fields *f, http_request *req)
{
    const char *colon = memchr(l.p, ':', l.n);
    if (!colon)
        return 400;
    line name = {l.p, (size_t)(colon - l.p)};
    line v = {colon + 1, l.n - name.n - 1};
    if (!is_token(name.p, name.n) || !is_field_text(v.p, v.n))
        return 400;
    while (v.n > 0 && is_ows(v.p[0]))
        v.p++, v.n--;
    while (v.n > 0 && is_ows(v.p[v.n - 1]))
        v.n--;
    return on_field(name, v, f, req);
}

/* ------------------------------------------------------------------ head */

/* Checks across fields, once the head is complete. Returns 0 or a status. */
static int check_fields(const fields *f, const http_limits *lim,
                        http_request *req)
{
    if (f->chunked)
        return f->length ? 400 : 501;
    if (req->minor == 1 && !f->host)
        return 400;
    if (req->content_length > lim->max_body)
        return 413;
    req->keep_alive = req->minor == 1 ? !f->close
                                      : f->keep_alive && !f->close;
    return 0;
}

static http_parse_result fail(http_request *req, int status)
{
    req->status = status;
    req->keep_alive = false;
    return HTTP_PARSE_ERROR;
}

/* No line end inside the window: more bytes may still complete the head,
 * unless the window is already the whole max_head; then `status` says
 * which part did not fit (414 the request line, 431 the fields). */
static http_parse_result incomplete(size_t len, const http_limits *lim,
                                    http_request *req, int status)
{
    return len > lim->max_head ? fail(req, status) : HTTP_PARSE_NEED_MORE;
}

http_parse_result http_parse_request(const char *buf, size_t len,
                                     const http_limits *lim,
                                     http_request *req)
{
    *req = (http_request){.method = HTTP_OTHER};
    size_t end = len < lim->max_head ? len : lim->max_head, pos = 0;
    fields f = {0};
    line l;
    int e;
    do {
        if (!next_line(buf, end, &pos, &l))
            return incomplete(len, lim, req, 414);
    } while (l.n == 0); /* empty lines before the request line */
    if ((e = parse_request_line(l, req)))
        return fail(req, e);
    for (;;) {
        if (!next_line(buf, end, &pos, &l))
            return incomplete(len, lim, req, 431);
        if (l.n == 0)
            break;
        if ((e = parse_field(l, &f, req)))
            return fail(req, e);
    }
    if ((e = check_fields(&f, lim, req)))
        return fail(req, e);
    req->head_len = pos;
    return HTTP_PARSE_OK;
}

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
