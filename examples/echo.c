/* SPDX-License-Identifier: MIT */
/*
 * echo — a TCP echo server: every byte a client sends comes back to it.
 *
 *   echo [--port N] [--addr A] [--procs N] [--max-conns N] [--idle-ms N]
 *
 * Port 0 (the default) picks an ephemeral port; the server prints
 * "listening on PORT" once it accepts connections. It binds 127.0.0.1
 * unless told otherwise, serves at most --max-conns (100000) connections
 * at once (one more is closed at once), closes a connection that has been
 * idle for --idle-ms (60000) milliseconds, and stops on SIGINT or SIGTERM.
 *
 * Each connection is one virtual thread running the plain blocking loop
 * below; weft parks it while its socket has nothing to read or no room to
 * write, and runs the others meanwhile. Its scope's deadline is the idle
 * time-out: it bounds the wait for input and a write that a client does
 * not read, and is moved on as data flows.
 */
#include <errno.h>
#include <stdio.h>
#include <weft.h>

#include "server.h"

#define USAGE "usage: %s " SERVER_USAGE " [--idle-ms N]\n"

/* Moves what the client sent back to it: one read (data is there, so it
 * does not wait unless another reader took it) and one write. Its 16 KiB
 * buffer lives only in this frame. */
__attribute__((noinline)) static ssize_t echo_once(int fd)
{
    char buf[16384];
    ssize_t n = weft_read(fd, buf, sizeof buf);
    if (n > 0 && weft_write(fd, buf, (size_t)n) != n)
        return -1;
    return n < 0 && errno == EINTR ? 1 : n;
}

/* Moves the deadline of s to now + idle_ns, unless it was moved less than
 * 1/16 of that ago: a busy connection does not pay a timer update for
 * every message, and a connection is cut off after between 15/16 of the
 * idle time and all of it. */
static void keep_alive(weft_scope *s, int64_t idle_ns, int64_t *moved_at)
{
    int64_t now = weft_now();
    if (*moved_at && now - *moved_at < idle_ns / 16)
        return;
    *moved_at = now;
    weft_scope_deadline(s, now + idle_ns);
}

/* Echoes until the client closes, an error, the idle time-out (a wait or
 * a write fails with ETIMEDOUT) or the server stops. An idle connection
 * waits here, above the buffer: its stack is one touched page, not the
 * five a buffer-deep wait would leave resident. */
static void echo(int fd, void *ctx)
{
    int64_t idle_ns = *(const int64_t *)ctx, moved_at = 0;
    weft_scope *s = weft_scope_open();
    if (!s)
        return;
    do
        keep_alive(s, idle_ns, &moved_at);
    while (weft_wait_fd(fd, POLLIN, -1) == 0 && echo_once(fd) > 0);
    weft_scope_close(s);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        SERVER_LONG_OPTIONS,
        {"idle-ms", required_argument, NULL, 'i'},
        {0},
    };
    server_opts o = {.addr = "127.0.0.1", .max_conns = 100000};
    int64_t idle_ns = 60 * WEFT_SEC;
    int code, bad = 0;
    long v;
    while ((code = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (code != 'i')
            bad |= server_option(&o, code, optarg) != 1;
        else if (server_number("idle-ms", optarg, 1, 86400000, &v))
            idle_ns = v * WEFT_MSEC;
        else
            bad = 1;
    }
    if (bad || optind < argc) {
        fprintf(stderr, USAGE, argv[0]);
        return 2;
    }
    return server_run(&o, echo, &idle_ns);
}
