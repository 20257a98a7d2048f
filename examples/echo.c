/*
 * echo — a TCP echo server: every byte a client sends comes back to it.
 *
 *   echo [--port N] [--addr A] [--procs N] [--max-conns N]
 *
 * Port 0 (the default) picks an ephemeral port; the server prints
 * "listening on PORT" once it accepts connections. It binds 127.0.0.1
 * unless told otherwise, serves at most --max-conns (100000) connections
 * at once, and stops on SIGINT or SIGTERM.
 *
 * Each connection is one virtual thread running the plain blocking loop
 * below; weft parks it while its socket has nothing to read or no room to
 * write, and runs the others meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <weft.h>

#include "server.h"

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

/* Echoes until the client closes, an error, or the server stops. An idle
 * connection waits here, above the buffer: its stack is one touched page,
 * not the five a buffer-deep wait would leave resident. */
static void echo(int fd, void *ctx)
{
    (void)ctx;
    while (weft_wait_fd(fd, POLLIN, -1) == 0 && echo_once(fd) > 0) {
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {SERVER_LONG_OPTIONS, {0}};
    server_opts o = {.addr = "127.0.0.1", .max_conns = 100000};
    int code, bad = 0;
    while ((code = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        bad |= server_option(&o, code, optarg) != 1;
    if (bad || optind < argc) {
        fprintf(stderr, "usage: %s " SERVER_USAGE "\n", argv[0]);
        return 2;
    }
    return server_run(&o, echo, NULL);
}
