/* SPDX-License-Identifier: MIT */
/*
 * server.c — the listening socket and the accept loop of the server
 * examples (see server.h).
 *
 * Shape: the root virtual thread opens one scope, spawns a thread that
 * waits on a signalfd, and loops on accept; each connection runs on a
 * detached thread of that scope. A signal cancels the scope: accept, every
 * connection's pending call and the signal thread itself fail with
 * ECANCELED, the threads return, and weft_scope_close waits for them all.
 *
 * Invariants:
 *   - one unit of `slots` is held per served connection: taken right
 *     after the accept, given back when the connection's thread has
 *     closed its fd (or at once when the spawn failed). So at most
 *     max_conns connections are served; one accepted while none is free
 *     is turned away at once (o->busy_reply, then closed), never left
 *     waiting unanswered in the kernel's queue.
 *   - SIGINT and SIGTERM are blocked in every thread (they are blocked
 *     before weft_run starts any carrier, which inherits the mask), so
 *     they reach only the signalfd. SIGPIPE is ignored: a write to a
 *     closed connection fails with EPIPE instead of ending the process.
 *   - connection threads always return 0: one client's failure must not
 *     cancel its siblings (a failing child cancels its scope). So a scope
 *     that fails all the same (weft_scope_close returns other than the
 *     ECANCELED of a stop signal) is a bug the exit status reports.
 *   - a connection that gets no thread (weft_go fails with ENOMEM: no
 *     memory for its stack) is turned away like one beyond max_conns;
 *     the server goes on and serves again as soon as memory is back.
 *   - `open` counts connection threads running, `peak` the most since the
 *     last trim; the trim thread gives freed memory back to the system
 *     (malloc_trim) once `open` has fallen to half the peak or below, by
 *     TRIM_MIN connections or more: glibc keeps what a burst of
 *     connections freed, and an idle server should not hold it.
 *
 * One server per process: the state is a file-level singleton.
 */
#include "server.h"

#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft.h>

#define TRIM_EVERY WEFT_SEC      /* how often the trim thread looks */
#define TRIM_MIN 256             /* connections ended, at least, to trim */

static struct server {
    int listen_fd;
    int signal_fd;
    weft_sem slots;          /* free connection slots */
    weft_scope *scope;       /* the connections'; valid while root runs */
    server_conn_fn serve;
    void *ctx;
    const char *busy_reply;  /* o->busy_reply */
    _Atomic bool stopping;   /* a stop signal came */
    _Atomic long open, peak; /* connection threads (see the top) */
} srv;

/* ---------------------------------------------------------------- options */

bool server_number(const char *name, const char *arg, long min, long max,
                   long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max) {
        fprintf(stderr, "--%s: expected a number from %ld to %ld, got '%s'\n",
                name, min, max, arg);
        return false;
    }
    *out = v;
    return true;
}

int server_option(server_opts *o, int code, const char *arg)
{
    long v;
    switch (code) {
    case 'p':
        if (!server_number("port", arg, 0, 65535, &v))
            return -1;
        o->port = (int)v;
        return 1;
    case 'a':
        o->addr = arg;
        return 1;
    case 'P':
        if (!server_number("procs", arg, 0, 1024, &v))
            return -1;
        o->procs = (unsigned)v;
        return 1;
    case 'm':
        if (!server_number("max-conns", arg, 1, INT32_MAX, &v))
            return -1;
        o->max_conns = (unsigned)v;
        return 1;
    default:
        return 0;
    }
}

/* -------------------------------------------------------------- listening */

/* A socket listening on addr:port, or -1 (a message was printed). */
static int listen_on(const char *addr, int port)
{
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST |
                                         AI_NUMERICSERV};
    struct addrinfo *ai;
    int e = getaddrinfo(addr, service, &hints, &ai);
    if (e) {
        fprintf(stderr, "address %s: %s\n", addr, gai_strerror(e));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, SOMAXCONN)) {
        fprintf(stderr, "listen on %s:%d: %s\n", addr, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len))
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* As many open files as the hard limit allows: one per connection. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Blocks SIGINT and SIGTERM and returns a signalfd for them, or -1. */
static int stop_signals_fd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL))
        return -1;
    return signalfd(-1, &set, SFD_CLOEXEC);
}

/* ------------------------------------------------------------ connections */

/* Counts a connection in, raising the peak if it is one. */
static void count_open(void)
{
    long n = atomic_fetch_add_explicit(&srv.open, 1, memory_order_relaxed) + 1;
    long peak = atomic_load_explicit(&srv.peak, memory_order_relaxed);
    while (n > peak && !atomic_compare_exchange_weak_explicit(
                           &srv.peak, &peak, n, memory_order_relaxed,
                           memory_order_relaxed)) {
    }
}

/* A connection's thread. Runs on: virtual thread (detached, in srv.scope). */
static int connection(void *arg)
{
    int fd = (int)(intptr_t)arg;
    count_open();
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    srv.serve(fd, srv.ctx);
    weft_close(fd);
    atomic_fetch_sub_explicit(&srv.open, 1, memory_order_relaxed);
    weft_sem_release(&srv.slots);
    return 0;
}

/* Turns fd away without waiting on it: takes in what the client has sent
 * (closing over unread input would reset the connection and could destroy
 * the reply), answers srv.busy_reply if the socket has room, and closes.
 * Runs on: the root virtual thread. */
static void turn_away(int fd)
{
    char sink[4096];
    for (int i = 0; i < 16; i++)
        if (weft_recv(fd, sink, sizeof sink, MSG_DONTWAIT) <= 0)
            break;
    if (srv.busy_reply) {
        weft_send(fd, srv.busy_reply, strlen(srv.busy_reply),
                  MSG_DONTWAIT | MSG_NOSIGNAL);
        shutdown(fd, SHUT_WR);
    }
    weft_close(fd);
}

/* Runs fd's connection on a thread of its own. Without memory for one,
 * turns fd away: the server goes on with the others. */
static void spawn_connection(int fd)
{
    weft_attr attr = {.name = "connection", .detached = true};
    if (weft_go_with(&attr, connection, (void *)(intptr_t)fd))
        return;
    turn_away(fd);
    weft_sem_release(&srv.slots);
}

static int trim_memory(void *arg)
{
    (void)arg;
    malloc_trim(0);
    return 0;
}

/* Gives memory back after a burst (see the top). Runs on: virtual thread,
 * in srv.scope, until the server stops. */
static int trim_after_bursts(void *arg)
{
    (void)arg;
    while (weft_sleep(TRIM_EVERY) == 0) {
        long open = atomic_load_explicit(&srv.open, memory_order_relaxed);
        long peak = atomic_load_explicit(&srv.peak, memory_order_relaxed);
        if (peak - open < TRIM_MIN || open > peak / 2)
            continue;
        atomic_store_explicit(&srv.peak, open, memory_order_relaxed);
        weft_offload(trim_memory, NULL); /* it walks the whole heap */
    }
    return 0;
}

/* What to do after accept failed with e: 0 go on, else stop with e. */
static int accept_failed(int e)
{
    switch (e) {
    case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM:
        weft_sleep(10 * WEFT_MSEC); /* until connections end and free some */
        return 0;
    case ECONNABORTED: case EINTR: case EPROTO: case EPERM: case EAGAIN:
    case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN: case ENONET:
    case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
        return 0; /* that client's trouble (accept(2), "Error handling") */
    default:
        return e;
    }
}

/* Accepts until cancelled (0) or a lasting failure (its error number).
 * Runs on: the root virtual thread. */
static int accept_loop(void)
{
    for (;;) {
        int fd = weft_accept4(srv.listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            if (weft_sem_timedacquire(&srv.slots, 0) == 0) /* a poll */
                spawn_connection(fd);
            else
                turn_away(fd);
            continue;
        }
        int e = errno;
        if (e == ECANCELED)
            return 0;
        if ((e = accept_failed(e))) {
            fprintf(stderr, "accept: %s\n", strerror(e));
            return e;
        }
    }
}

/* Waits for SIGINT or SIGTERM, then cancels the server's scope.
 * Runs on: virtual thread, in srv.scope. */
static int watch_signals(void *arg)
{
    (void)arg;
    struct signalfd_siginfo si;
    ssize_t n;
    do
        n = weft_read(srv.signal_fd, &si, sizeof si);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof si) {
        atomic_store(&srv.stopping, true);
        weft_scope_cancel(srv.scope);
    }
    else if (n >= 0 || errno != ECANCELED)
        fprintf(stderr, "signalfd: %s: signals no longer stop the server\n",
                strerror(errno));
    return 0;
}

/* Spawns the server's own helper threads into srv.scope. */
static void spawn_helpers(void)
{
    weft_attr attr = {.name = "signals", .detached = true};
    if (!weft_go_with(&attr, watch_signals, NULL))
        fprintf(stderr, "no signal thread: signals will not stop it\n");
    attr.name = "trim";
    if (!weft_go_with(&attr, trim_after_bursts, NULL))
        fprintf(stderr, "no trim thread: memory stays after bursts\n");
}

/* The root thread: listens until a signal, then waits for every
 * connection to end. Returns 0, accept's lasting error, or the error that
 * failed the connections' scope. */
static int root(void *arg)
{
    (void)arg;
    srv.scope = weft_scope_open();
    if (!srv.scope)
        return errno;
    spawn_helpers();
    printf("listening on %d\n", bound_port(srv.listen_fd));
    fflush(stdout);
    int e = accept_loop();
    weft_scope_cancel(srv.scope); /* after a failure: end the others */
    int failed = weft_scope_close(srv.scope);
    if (!e && failed && !(failed == ECANCELED && atomic_load(&srv.stopping))) {
        fprintf(stderr, "server: the connections' scope failed: %s\n",
                strerror(failed));
        e = failed;
    }
    return e;
}

int server_run(const server_opts *o, server_conn_fn serve, void *ctx)
{
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    srv = (struct server){.serve = serve, .ctx = ctx,
                          .busy_reply = o->busy_reply};
    weft_sem_init(&srv.slots, o->max_conns);
    srv.signal_fd = stop_signals_fd();
    if (srv.signal_fd < 0) {
        perror("signalfd");
        return 1;
    }
    srv.listen_fd = listen_on(o->addr, o->port);
    if (srv.listen_fd < 0)
        goto err_close_signal_fd;
    weft_config cfg = {.procs = o->procs};
    int e = weft_run(root, NULL, &cfg);
    close(srv.listen_fd);
    close(srv.signal_fd);
    if (e)
        fprintf(stderr, "server: %s\n", strerror(e));
    return e ? 1 : 0;
err_close_signal_fd:
    close(srv.signal_fd);
    return 1;
}
