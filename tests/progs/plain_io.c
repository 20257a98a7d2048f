/* SPDX-License-Identifier: MIT */
/*
 * plain_io.c — helper for tests/hooks.c: a program that knows nothing of
 * weft (not linked with it, never calls it), run with
 * LD_PRELOAD=libweft.so. It has no virtual threads, so every hooked libc
 * call must behave exactly as libc's: blocking reads and writes block
 * until the peer acts (never EAGAIN), sleeps last as long as asked, status
 * flags read back as set. Prints one line per check and
 *     plain_io: preloaded yes|no, <n> passed, <m> failed
 * and exits 0 when every check passed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

static void check(int ok, const char *what, long detail)
{
    printf("%s %s (%ld)\n", ok ? "ok  " : "FAIL", what, detail);
    if (ok)
        passed++;
    else
        failed++;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Another OS thread: after ms, writes `what` to fd, or (n > 0) reads and
 * drops n bytes from fd slowly. Raw system calls, so no hook is involved. */
struct helper {
    int fd;
    long ms;
    size_t n;
    pthread_t pt;
};

static void *helper_main(void *arg)
{
    struct helper *h = arg;
    struct timespec ts = {h->ms / 1000, (h->ms % 1000) * 1000000};
    syscall(SYS_nanosleep, &ts, NULL);
    char buf[4096];
    if (!h->n) {
        long r = syscall(SYS_write, h->fd, "later", 5);
        (void)r;
    }
    for (size_t got = 0; got < h->n;) {
        long r = syscall(SYS_read, h->fd, buf, sizeof buf);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return NULL;
}

static void helper_start(struct helper *h, int fd, long ms, size_t n)
{
    *h = (struct helper){fd, ms, n, 0};
    pthread_create(&h->pt, NULL, helper_main, h);
}

static void blocking_read(void)
{
    int p[2];
    struct helper h;
    if (pipe(p)) {
        check(0, "pipe", errno);
        return;
    }
    /* The clock starts before the writer's: on a loaded machine this
     * thread may get the CPU back well after the writer began to sleep. */
    int64_t t0 = now_ms();
    helper_start(&h, p[1], 100, 0);
    char buf[16];
    ssize_t r = read(p[0], buf, sizeof buf);
    long ms = (long)(now_ms() - t0);
    pthread_join(h.pt, NULL);
    check(r == 5, "read() waits for the writer", r < 0 ? -errno : r);
    check(ms >= 90, "read() blocked about 100 ms", ms);
    close(p[0]);
    close(p[1]);
}

static void blocking_write(void)
{
    int sv[2];
    struct helper h;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
        check(0, "socketpair", errno);
        return;
    }
    size_t n = 4 << 20;
    char *buf = calloc(1, n);
    helper_start(&h, sv[1], 50, n);
    ssize_t r = write(sv[0], buf, n);
    pthread_join(h.pt, NULL);
    check(r == (ssize_t)n, "write() of 4 MiB writes it all",
          r < 0 ? -errno : r);
    int fl = fcntl(sv[0], F_GETFL);
    check(!(fl & O_NONBLOCK), "F_GETFL shows no O_NONBLOCK", fl);
    fl = (int)syscall(SYS_fcntl, sv[0], F_GETFL);
    check(!(fl & O_NONBLOCK), "the kernel's flags have none either", fl);
    free(buf);
    close(sv[0]);
    close(sv[1]);
}

static void blocking_accept(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 8) ||
        getsockname(l, (struct sockaddr *)&a, &len)) {
        check(0, "listener", errno);
        return;
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    check(connect(c, (struct sockaddr *)&a, sizeof a) == 0,
          "connect() to a listener", errno);
    int s = accept(l, NULL, NULL);
    check(s >= 0, "accept()", s < 0 ? -errno : 0);
    check(send(c, "ping", 4, 0) == 4, "send()", errno);
    char buf[4];
    check(recv(s, buf, 4, MSG_WAITALL) == 4, "recv(MSG_WAITALL)", errno);
    close(s);
    close(c);
    close(l);
}

static void sleeps(void)
{
    int64_t t0 = now_ms();
    struct timespec ts = {0, 50 * 1000000};
    check(nanosleep(&ts, NULL) == 0, "nanosleep() returns 0", errno);
    check(now_ms() - t0 >= 49, "nanosleep() slept 50 ms", now_ms() - t0);
    t0 = now_ms();
    check(usleep(50000) == 0, "usleep() returns 0", errno);
    check(now_ms() - t0 >= 49, "usleep() slept 50 ms", now_ms() - t0);
    check(sleep(0) == 0, "sleep(0) returns 0", 0);
    t0 = now_ms(); /* before the deadline is read: never after it */
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 50 * 1000000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    int e = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
    check(e == 0, "clock_nanosleep(TIMER_ABSTIME) returns 0", e);
    check(now_ms() - t0 >= 49, "clock_nanosleep() slept 50 ms",
          now_ms() - t0);
    struct pollfd p = {-1, POLLIN, 0};
    t0 = now_ms();
    check(poll(&p, 1, 50) == 0, "poll() times out", errno);
    check(now_ms() - t0 >= 49, "poll() waited 50 ms", now_ms() - t0);
}

static void resolve(void)
{
    struct addrinfo hints = {.ai_family = AF_INET,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    /* Numeric: a minimal system may have no /etc/hosts to name it. */
    int e = getaddrinfo("127.0.0.1", "80", &hints, &res);
    check(e == 0 && res, "getaddrinfo(127.0.0.1)", e);
    if (res)
        freeaddrinfo(res);
}

int main(void)
{
    alarm(30);
    int preloaded = dlsym(RTLD_DEFAULT, "weft_run") != NULL;
    blocking_read();
    blocking_write();
    blocking_accept();
    sleeps();
    resolve();
    printf("plain_io: preloaded %s, %d passed, %d failed\n",
           preloaded ? "yes" : "no", passed, failed);
    return failed != 0;
}
