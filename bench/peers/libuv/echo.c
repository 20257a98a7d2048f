/* SPDX-License-Identifier: MIT */
/*
 * B8 c10k, libuv peer: the echo server of weft's examples/echo written
 * the way a libuv user writes it. Each connection reads into its own
 * buffer (16 KiB, as examples/echo.c's and the Go peer's) and writes back
 * what it read: uv_try_write, and where the socket does not take it all,
 * uv_write of the rest with reading stopped until it is done (the buffer
 * is the connection's own, so it must not be read into meanwhile).
 */
#include <stdlib.h>

#include "loops.h"

#define BUF_SIZE 16384

typedef struct conn {
    uv_tcp_t tcp;        /* first: the handle is the connection */
    uv_write_t write;
    char buf[BUF_SIZE];
} conn;

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    *buf = uv_buf_init(((conn *)h)->buf, BUF_SIZE);
}

static void close_conn(conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, loops_free_handle);
}

static void on_written(uv_write_t *w, int status)
{
    conn *c = w->data;
    if (status < 0)
        close_conn(c);
    else
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = (conn *)s;
    if (n < 0) {
        close_conn(c);
        return;
    }
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
    int done = n ? uv_try_write(s, &b, 1) : 0;
    if (done == UV_EAGAIN)
        done = 0;
    if (done < 0) {
        close_conn(c);
        return;
    }
    if (done == n)
        return;
    b = uv_buf_init(buf->base + done, (unsigned)(n - done));
    c->write.data = c;
    uv_read_stop(s);
    if (uv_write(&c->write, s, &b, 1, on_written))
        close_conn(c);
}

static void on_accept(uv_stream_t *listener, int status)
{
    conn *c = (conn *)loops_accept(listener, status, sizeof *c);
    if (c)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    return loops_main(argc, argv, on_accept, NULL);
}
