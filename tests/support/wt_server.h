/* SPDX-License-Identifier: MIT */
/*
 * wt_server.h — helpers for tests that run a server example (echo,
 * httpd) as a child process and talk to it over loopback sockets, from
 * the test's own OS thread with plain blocking libc calls.
 *
 *   wt_server_start(&s, prog, args)  runs prog, reads its port from the
 *                                    "listening on PORT" line
 *   wt_server_stop(&s)               SIGTERM; asserts a clean exit (0)
 *   wt_connect(port)                 a connected socket with time-outs
 *   wt_send_all / wt_recv_exact / wt_wait_eof
 *
 * Every wait is bounded: sockets get SO_RCVTIMEO / SO_SNDTIMEO of
 * WT_IO_TIMEOUT_MS, so a server that does not answer fails the test
 * instead of hanging it. Calls on such sockets may fail with EINTR after
 * the process was stopped and continued, even without a handler (see
 * signal(7)), as the runner does: every call here retries then. The child
 * gets SIGKILL if the test process dies first (PR_SET_PDEATHSIG), so a
 * failed assertion leaves no server behind.
 *
 * In AddressSanitizer builds the server runs with LeakSanitizer's check at
 * exit (ctest turns it off for the test programs themselves): a leak makes
 * its exit status non-zero, which wt_server_stop reports.
 *
 * The I/O backend under test is chosen by the environment (WEFT_IO, set by
 * ctest), which the child inherits. wt_server_start skips the test when
 * WEFT_IO=uring and the kernel refuses io_uring (wt_skip_without_backend,
 * wt_report.h).
 *
 * Each helper that asserts reports a failure at its caller's line
 * (wt_report.h): the wt_*_at functions take it, the macros pass it.
 */
#ifndef WT_SERVER_H
#define WT_SERVER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wt_report.h"

#define WT_IO_TIMEOUT_MS (WT_SANITIZED ? 20000 : 5000)

typedef struct wt_server {
    pid_t pid;
    int port;
} wt_server;

static inline int64_t wt_server_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* poll(2) on one fd for at most ms, again after a signal: its revents, 0
 * on time-out. */
static inline short wt_poll(int fd, short events, int ms)
{
    int64_t end = wt_server_now_ms() + ms;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int left = (int)(end - wt_server_now_ms());
        int r = poll(&p, 1, left > 0 ? left : 0);
        if (r > 0)
            return p.revents;
        if (r == 0 || errno != EINTR)
            return 0;
    }
}

/* Reads the "listening on PORT" line from fd within WT_IO_TIMEOUT_MS. */
static inline int wt_read_port(int fd)
{
    char line[64];
    size_t n = 0;
    int64_t end = wt_server_now_ms() + WT_IO_TIMEOUT_MS;
    while (n < sizeof line - 1 && !memchr(line, '\n', n)) {
        if (!wt_poll(fd, POLLIN, (int)(end - wt_server_now_ms())))
            return -1;
        ssize_t r = read(fd, line + n, sizeof line - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        n += (size_t)r;
    }
    line[n] = '\0';
    int port;
    return sscanf(line, "listening on %d\n", &port) == 1 ? port : -1;
}

/* Runs prog with argv args (args[0] is the program name; NULL-ended) and
 * waits until it listens. */
static inline void wt_server_start_at(struct wt_here at, wt_server *s,
                                      const char *prog, char *const args[])
{
    wt_skip_without_backend();
    int out[2];
    WT_ASSERT_AT(at, pipe2(out, O_CLOEXEC) == 0, "pipe2: %s",
                 strerror(errno));
    pid_t parent = getpid();
    s->pid = fork();
    WT_ASSERT_AT(at, s->pid != -1, "fork: %s", strerror(errno));
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(out[1], STDOUT_FILENO);
        unsetenv("LSAN_OPTIONS"); /* the server's leaks fail its exit */
        execv(prog, args);
        _exit(127);
    }
    close(out[1]);
    s->port = wt_read_port(out[0]);
    close(out[0]);
    WT_ASSERT_AT(at, s->port > 0, "%s did not say it listens (port %d)",
                 prog, s->port);
}

#define wt_server_start(s, prog, args)                                     \
    wt_server_start_at(WT_HERE, s, prog, args)

/* Waits for the child within ms; its wait status, or -1 on time-out. */
static inline int wt_server_wait(wt_server *s, int ms)
{
    int64_t end = wt_server_now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid)
            return st;
        if (r < 0 || wt_server_now_ms() > end)
            return -1;
        usleep(5000);
    }
}

/* Stops the server with SIGTERM and asserts it exits with status 0. */
static inline void wt_server_stop_at(struct wt_here at, wt_server *s)
{
    kill(s->pid, SIGTERM);
    int st = wt_server_wait(s, WT_IO_TIMEOUT_MS);
    if (st == -1)
        kill(s->pid, SIGKILL);
    WT_ASSERT_AT(at, st != -1, "the server did not stop on SIGTERM");
    WT_ASSERT_AT(at, WIFEXITED(st) && WEXITSTATUS(st) == 0,
                 "the server ended with wait status %#x, expected exit 0",
                 st);
}

#define wt_server_stop(s) wt_server_stop_at(WT_HERE, s)

/* The result of a connect that a signal interrupted: 0, or -1 with errno. */
static inline int wt_connect_outcome(int fd)
{
    int err = ETIMEDOUT;
    socklen_t len = sizeof err;
    if (wt_poll(fd, POLLOUT, WT_IO_TIMEOUT_MS))
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    errno = err;
    return err ? -1 : 0;
}

/* A socket connected to 127.0.0.1:port, with WT_IO_TIMEOUT_MS on each
 * send and receive. */
static inline int wt_connect_at(struct wt_here at, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    WT_ASSERT_AT(at, fd >= 0, "socket: %s", strerror(errno));
    struct timeval tv = {.tv_sec = WT_IO_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (r < 0 && errno == EINTR) /* it goes on: wait for its outcome */
        r = wt_connect_outcome(fd);
    WT_ASSERT_AT(at, r == 0, "connect to port %d: %s", port,
                 strerror(errno));
    return fd;
}

#define wt_connect(port) wt_connect_at(WT_HERE, port)

static inline void wt_send_all_at(struct wt_here at, int fd, const void *p,
                                  size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        WT_ASSERT_AT(at, w > 0, "send: %s, %zu bytes left", strerror(errno),
                     n);
        c += w;
        n -= (size_t)w;
    }
}

#define wt_send_all(fd, p, n) wt_send_all_at(WT_HERE, fd, p, n)
#define wt_send_str(fd, s) wt_send_all_at(WT_HERE, fd, s, strlen(s))

/* Receives exactly n bytes. */
static inline void wt_recv_exact_at(struct wt_here at, int fd, void *p,
                                    size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = recv(fd, c, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        WT_ASSERT_AT(at, r > 0, "recv: %s, %zu bytes short",
                     r < 0 ? strerror(errno) : "EOF", n);
        c += r;
        n -= (size_t)r;
    }
}

#define wt_recv_exact(fd, p, n) wt_recv_exact_at(WT_HERE, fd, p, n)

/* True when the peer closes (EOF or reset) within ms, ignoring data. */
static inline bool wt_wait_eof(int fd, int ms)
{
    int64_t end = wt_server_now_ms() + ms;
    char buf[4096];
    for (;;) {
        if (!wt_poll(fd, POLLIN, (int)(end - wt_server_now_ms())))
            return false;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return true;
        if (r < 0 && errno != EINTR)
            return false;
    }
}

/* True when fd has something to read (or EOF) within ms. */
static inline bool wt_readable(int fd, int ms)
{
    return wt_poll(fd, POLLIN, ms) != 0;
}

#endif /* WT_SERVER_H */
