/* SPDX-License-Identifier: MIT */
/*
 * server.h — what the server examples (echo.c, httpd.c) share: the
 * options every server takes, a listening socket, and an accept loop that
 * runs one virtual thread per connection, holds the number of connections
 * to a bound, survives running out of memory and stops on SIGINT or
 * SIGTERM.
 */
#ifndef EXAMPLE_SERVER_H
#define EXAMPLE_SERVER_H

#include <getopt.h>
#include <stdbool.h>

/* Serves one accepted connection, from its own virtual thread, with plain
 * blocking weft_ calls. fd belongs to the caller, which closes it after. A
 * cancellation (the server stopping) shows as ECANCELED from any call. */
typedef void (*server_conn_fn)(int fd, void *ctx);

typedef struct server_opts {
    const char *addr;    /* numeric IPv4 or IPv6 address to bind */
    int port;            /* 0: an ephemeral port */
    unsigned procs;      /* weft's P slots; 0: weft's default */
    unsigned max_conns;  /* connections served at once */
    const char *busy_reply; /* sent to a connection turned away (beyond
                               max_conns, or no memory for its thread)
                               before it is closed; NULL: just closed */
} server_opts;

/* getopt_long entries for the options every server takes; their codes are
 * handled by server_option. */
#define SERVER_LONG_OPTIONS                                                \
    {"port", required_argument, NULL, 'p'},                                \
    {"addr", required_argument, NULL, 'a'},                                \
    {"procs", required_argument, NULL, 'P'},                               \
    {"max-conns", required_argument, NULL, 'm'}

#define SERVER_USAGE "[--port N] [--addr A] [--procs N] [--max-conns N]"

/* Applies option `code` (from getopt_long) with its argument to *o.
 * Returns 1 (applied), 0 (not one of the shared options) or -1 (bad
 * value; a message was printed). */
int server_option(server_opts *o, int code, const char *arg);

/* Parses the decimal value of option `name` within [min, max] into *out.
 * Returns false (after printing a message) when it is not one. */
bool server_number(const char *name, const char *arg, long min, long max,
                   long *out);

/* Listens on o->addr:o->port, runs weft with o->procs P slots, prints
 * "listening on PORT\n" to stdout once connections are accepted, and calls
 * serve(fd, ctx) for each connection on a thread of its own, at most
 * o->max_conns at once: a connection beyond them gets o->busy_reply (if
 * any) and is closed at once, unserved. When memory is short and no
 * thread can be spawned, the connection is turned away the same way and
 * the server goes on. After a burst, once the open connections have
 * fallen well below their peak, it gives the memory they held back to
 * the system (malloc_trim). On SIGINT or SIGTERM every connection is
 * cancelled and the call returns once they have all ended. Runs on: the
 * main thread, once per process.
 * Returns the exit status: 0 after a signal, 1 when the server could not
 * start, accept failed for good or a connection's thread failed (a
 * message is printed). */
int server_run(const server_opts *o, server_conn_fn serve, void *ctx);

#endif /* EXAMPLE_SERVER_H */
