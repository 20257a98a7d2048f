/* SPDX-License-Identifier: MIT */
/*
 * B7 http_hello, libuv peer: the hello server of weft's examples/httpd
 * written the way a libuv user writes it. One uv_read_start per
 * connection; each read is parsed with the same request parser as
 * examples/httpd (examples/http_parse.c), so both servers do the same
 * work per request; every complete request gets the loop's response
 * (a static buffer whose Date a one-second timer refreshes), all of a
 * read's answers in one uv_write (uv_try_write first, as libuv's own
 * uv_write does). While a write is pending the connection stops reading:
 * back pressure, as a blocking write gives weft's server.
 * Keep-alive; HTTP/1.0 and "Connection: close" close after the answer; a
 * malformed request gets its status code and the connection closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_parse.h"
#include "loops.h"

#define IN_CAP 8192      /* the longest request head taken (as httpd's) */
#define MAX_ANSWERS 64   /* answers per uv_write; more wait for the next */

/* The loop's response to GET /hello; its Date is refreshed each second.
 * Per loop (thread-local): loops share nothing. */
static _Thread_local char response[256];
static _Thread_local size_t response_len;
static _Thread_local uv_timer_t date_timer;

typedef struct conn {
    uv_tcp_t tcp;                /* first: the handle is the connection */
    uv_write_t write;            /* the one write in flight, if any */
    uv_buf_t pending[MAX_ANSWERS];
    char *copy;                  /* a pending write's bytes (malloc'd) */
    size_t in_len, skip;         /* bytes in in; body bytes to drop */
    int closing;                 /* close once the pending write is done */
    char in[IN_CAP];
} conn;

static void refresh_response(uv_timer_t *t)
{
    (void)t;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    response_len = (size_t)snprintf(response, sizeof response,
        "HTTP/1.1 200 OK\r\nServer: uv-hello\r\nDate: %s\r\n"
        "Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n", date);
}

static void start_date_timer(uv_loop_t *loop)
{
    refresh_response(NULL);
    uv_timer_init(loop, &date_timer);
    uv_timer_start(&date_timer, refresh_response, 1000, 1000);
    uv_unref((uv_handle_t *)&date_timer);
}

static void close_conn(conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, loops_free_handle);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    conn *c = (conn *)h;
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(IN_CAP - c->in_len));
}

static void answer_pending(conn *c);

/* The pending write is done: requests that came in meanwhile are answered
 * and reading goes on. */
static void on_written(uv_write_t *w, int status)
{
    conn *c = w->data;
    free(c->copy);
    c->copy = NULL;
    if (status < 0 || c->closing) {
        close_conn(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    answer_pending(c);
}

/* Writes bufs[0..n): at once where the socket takes it all, else the rest
 * is copied (the response may change under a pending write) and written
 * by libuv while the connection stops reading. */
static void send_answers(conn *c, uv_buf_t *bufs, unsigned n)
{
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    int done = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
    if (done == UV_EAGAIN)
        done = 0;
    if (done < 0) {
        close_conn(c);
        return;
    }
    if ((size_t)done == total) {
        if (c->closing)
            close_conn(c);
        return;
    }
    size_t rest = total - (size_t)done, at = 0;
    c->copy = malloc(rest);
    if (!c->copy) {
        close_conn(c);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        size_t skip = (size_t)done > bufs[i].len ? bufs[i].len : (size_t)done;
        done -= (int)skip;
        memcpy(c->copy + at, bufs[i].base + skip, bufs[i].len - skip);
        at += bufs[i].len - skip;
    }
    uv_buf_t b = uv_buf_init(c->copy, (unsigned)rest);
    c->write.data = c;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written))
        close_conn(c);
}

/* The answer to one parsed request: the response, or an error status. */
static uv_buf_t answer(const http_request *req, char *scratch, size_t cap)
{
    int status = req->method != HTTP_GET ? 405 :
        (req->path_len == 6 && !memcmp(req->path, "/hello", 6)) ||
        (req->path_len == 1 && req->path[0] == '/') ? 200 : 404;
    if (status == 200)
        return uv_buf_init(response, (unsigned)response_len);
    int n = snprintf(scratch, cap, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n"
                     "\r\n", status, http_reason(status));
    return uv_buf_init(scratch, (unsigned)n);
}

/* Parses requests from c->in + *off and puts up to MAX_ANSWERS answers in
 * c->pending (their bytes in scratch); returns how many. */
static unsigned parse_batch(conn *c, size_t *off, char (*scratch)[96])
{
    static const http_limits lim = {.max_head = IN_CAP, .max_body = 1 << 20};
    unsigned n = 0;
    while (n < MAX_ANSWERS && !c->closing) {
        size_t have = c->in_len - *off;
        size_t drop = c->skip < have ? c->skip : have;
        *off += drop;
        c->skip -= drop;
        http_request req;
        http_parse_result r = http_parse_request(c->in + *off,
                                                 c->in_len - *off, &lim, &req);
        if (r == HTTP_PARSE_NEED_MORE)
            break;
        if (r == HTTP_PARSE_ERROR) {
            int k = snprintf(scratch[n], sizeof scratch[n],
                             "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n",
                             req.status, http_reason(req.status));
            c->pending[n] = uv_buf_init(scratch[n], (unsigned)k);
            c->closing = 1;
            return n + 1;
        }
        *off += req.head_len;
        c->skip = req.content_length;
        c->pending[n] = answer(&req, scratch[n], sizeof scratch[n]);
        c->closing = !req.keep_alive;
        n++;
    }
    return n;
}

/* Answers every complete request in c->in, batch by batch while the
 * writes complete at once; keeps what is left for the next read. */
static void answer_pending(conn *c)
{
    char scratch[MAX_ANSWERS][96];
    size_t off = 0;
    unsigned n;
    do {
        n = parse_batch(c, &off, scratch);
        if (n)
            send_answers(c, c->pending, n);
    } while (n == MAX_ANSWERS && !c->copy &&
             !uv_is_closing((uv_handle_t *)&c->tcp));
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (!n && !c->copy && (c->closing || c->in_len == IN_CAP))
        close_conn(c); /* a head longer than the parser takes */
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    conn *c = (conn *)s;
    if (n < 0) {
        close_conn(c);
        return;
    }
    c->in_len += (size_t)n;
    answer_pending(c);
}

static void on_accept(uv_stream_t *listener, int status)
{
    conn *c = (conn *)loops_accept(listener, status, sizeof *c);
    if (c)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    return loops_main(argc, argv, on_accept, start_date_timer);
}
