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
 * signal(7)), as the runner does: every call here retries then. The child gets SIGKILL if the test process dies
 * first (PR_SET_PDEATHSIG), so a failed assertion leaves no server behind.
 *
 * In AddressSanitizer builds the server runs with LeakSanitizer's check at
 * exit (ctest turns it off for the test programs themselves): a leak makes
 * its exit status non-zero, which wt_server_stop reports.
 *
 * The I/O backend under test is chosen by the environment (WEFT_IO, set by
 * ctest), which the child inherits. wt_skip_without_backend() skips a test
 * when WEFT_IO=uring and the kernel refuses io_uring.
 */
#ifndef WT_SERVER_H
#define WT_SERVER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
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

#if defined(WEFT_SANITIZE) || defined(__SANITIZE_ADDRESS__) || \
    defined(__SANITIZE_THREAD__)
#define WT_IO_TIMEOUT_MS 20000
#else
#define WT_IO_TIMEOUT_MS 5000
#endif

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

/* Skips the calling test when WEFT_IO asks for io_uring and the kernel
 * refuses it (too old, or disabled by kernel.io_uring_disabled). */
static inline void wt_skip_without_backend(void)
{
    const char *io = getenv("WEFT_IO");
    if (!io || strcmp(io, "uring") != 0)
        return;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int fd = (int)syscall(__NR_io_uring_setup, 2, &p);
    if (fd >= 0) {
        close(fd);
        return;
    }
#ifdef cr_skip_test
    cr_skip_test("io_uring unavailable: %s", strerror(errno));
#else
    fprintf(stderr, "SKIP: io_uring unavailable: %s\n", strerror(errno));
    exit(0);
#endif
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
static inline void wt_server_start(wt_server *s, const char *prog,
                                   char *const args[])
{
    wt_skip_without_backend();
    int out[2];
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    pid_t parent = getpid();
    s->pid = fork();
    cr_assert_neq(s->pid, -1);
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
    cr_assert_gt(s->port, 0, "%s did not say it listens", prog);
}

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
static inline void wt_server_stop(wt_server *s)
{
    kill(s->pid, SIGTERM);
    int st = wt_server_wait(s, WT_IO_TIMEOUT_MS);
    if (st == -1)
        kill(s->pid, SIGKILL);
    cr_assert_neq(st, -1, "the server did not stop on SIGTERM");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "the server ended with wait status %#x", st);
}

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
static inline int wt_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
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
    cr_assert_eq(r, 0, "connect: %s", strerror(errno));
    return fd;
}

static inline void wt_send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        cr_assert_gt(w, 0, "send: %s", strerror(errno));
        c += w;
        n -= (size_t)w;
    }
}

static inline void wt_send_str(int fd, const char *s)
{
    wt_send_all(fd, s, strlen(s));
}

/* Receives exactly n bytes. */
static inline void wt_recv_exact(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = recv(fd, c, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        cr_assert_gt(r, 0, "recv: %s", r < 0 ? strerror(errno) : "EOF");
        c += r;
        n -= (size_t)r;
    }
}

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
