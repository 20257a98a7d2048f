/* SPDX-License-Identifier: MIT */
/*
 * loops.h — what the libuv peers (B7 http_hello, B8 echo) share: the CLI
 * of weft's example servers (--port P, 0 for any free one, on 127.0.0.1;
 * --procs N; "listening on PORT" on stdout once connections are
 * accepted) and the way a libuv user spreads a server over N cores: N
 * threads, each running its own uv_loop_t with its own listening socket
 * on the same port (SO_REUSEPORT; the kernel spreads the connections).
 * libuv 1.44 (Debian 12) has no UV_TCP_REUSEPORT, so the sockets are made
 * here and handed to libuv with uv_tcp_open.
 */
#ifndef LOOPS_H
#define LOOPS_H

#include <uv.h>

/* Called on a loop's thread for each connection its listener has ready
 * (a uv_connection_cb). */
typedef void loops_accept_fn(uv_stream_t *listener, int status);

/* Called on each loop's thread once, before it runs: to start per-loop
 * state (a timer). May be NULL. */
typedef void loops_init_fn(uv_loop_t *loop);

/* Parses argv, listens, prints "listening on PORT" and runs the loops
 * until the process is killed. Returns an exit status only on failure
 * (having said why on stderr). */
int loops_main(int argc, char **argv, loops_accept_fn *on_accept,
               loops_init_fn *init);

/* For a loops_accept_fn: a connection of `size` bytes (zeroed; a uv_tcp_t
 * first) accepted from listener with TCP_NODELAY, or NULL (status < 0,
 * out of memory, or accept failed: that connection is dropped). */
uv_tcp_t *loops_accept(uv_stream_t *listener, int status, size_t size);

/* A closed handle's memory, for uv_close: every connection is malloc'd. */
void loops_free_handle(uv_handle_t *h);

#endif
