/* SPDX-License-Identifier: MIT */
/*
 * io_blocking.c — the program keeps its own view of blocking, while
 * weft sets O_NONBLOCK underneath: O_NONBLOCK and FIONBIO set by the
 * program give EAGAIN and short counts, a dup keeps blocking semantics,
 * OS threads still block on sockets weft used (during and after the
 * run), and standard input, never made non-blocking, is read in the
 * poller. *
 * A test that proves a carrier stayed free runs with one P and a hog
 * threshold of 10 s: no hand-off can move the other threads away from a
 * carrier that blocked, so they run only if it did not.
 *
 * Registered once per backend (WEFT_IO=uring, WEFT_IO=epoll); outside
 * sanitizer builds also linked against libweft.so (tests/CMakeLists.txt).
 */
#include "wt_io.h"

#include <sys/ioctl.h>

#define RUN_TEST(...) WT_RUN_TEST(io_blocking, __VA_ARGS__)

/* ============================================ the program's own O_NONBLOCK */

/* arg: 0 sets O_NONBLOCK before weft first sees the fd, 1 after. */
static int root_user_nonblock(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(arg ? wt_used_socketpair(sv)
                      : socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int fl = fcntl(sv[1], F_GETFL);
    WT_CHECK_EQ(fl & O_NONBLOCK, 0);
    WT_CHECK_EQ(fcntl(sv[1], F_SETFL, fl | O_NONBLOCK), 0);
    WT_CHECK(fcntl(sv[1], F_GETFL) & O_NONBLOCK);
    char b;
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(read(sv[1], &b, 1), -1);
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    WT_CHECK(wt_own_ms_since(t0, &m) < 50);
    /* Cleared again: blocking semantics come back, and weft keeps its
     * O_NONBLOCK underneath without showing it. */
    WT_CHECK_EQ(fcntl(sv[1], F_SETFL, fl), 0);
    WT_CHECK_EQ(fcntl(sv[1], F_GETFL) & O_NONBLOCK, 0);
    WT_CHECK(wt_kernel_flags(sv[1]) & O_NONBLOCK);
    struct wt_late_write w = {sv[0], WT_MS(30)};
    weft_thread *t = wt_go(wt_write_later, &w);
    char buf[8];
    WT_CHECK_EQ(read(sv[1], buf, sizeof buf), 4);
    wt_join(t);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(o_nonblock_set_before_first_use_keeps_eagain, root_user_nonblock, 0,
         .procs = 2, .timeout = 10)
RUN_TEST(o_nonblock_set_after_first_use_keeps_eagain, root_user_nonblock, 1,
         .procs = 2, .timeout = 10)

static int root_user_nonblock_write(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    WT_CHECK_EQ(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    size_t n = 8 << 20;
    unsigned char *buf = malloc(n);
    WT_REQUIRE(buf != NULL);
    wt_fill_pattern(buf, 0, n);
    ssize_t r = weft_write(sv[0], buf, n); /* what fits, no waiting */
    WT_CHECK_MSG(r > 0 && (size_t)r < n, "wrote %zd of %zu", r, n);
    WT_CHECK_EQ(weft_write(sv[0], buf, n), -1);
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    free(buf);
    wt_drain_exactly(sv[1], 0, r > 0 ? (size_t)r : 0);
    wt_close_both(sv);
    return 0;
}

/* 30 s: the 8 MiB buffer faults in page by page, seconds on a loaded VM. */
RUN_TEST(o_nonblock_write_returns_a_short_count_then_eagain,
         root_user_nonblock_write, NULL, .procs = 2, .timeout = 30)

static int root_fionbio(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(wt_used_socketpair(sv), 0);
    int on = 1;
    WT_CHECK_EQ(ioctl(sv[1], FIONBIO, &on), 0);
    WT_CHECK(fcntl(sv[1], F_GETFL) & O_NONBLOCK);
    char b;
    WT_CHECK_EQ(read(sv[1], &b, 1), -1);
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    on = 0;
    WT_CHECK_EQ(ioctl(sv[1], FIONBIO, &on), 0);
    WT_CHECK_EQ(fcntl(sv[1], F_GETFL) & O_NONBLOCK, 0);
    WT_CHECK(wt_kernel_flags(sv[1]) & O_NONBLOCK);
    struct wt_late_write w = {sv[0], WT_MS(30)};
    weft_thread *t = wt_go(wt_write_later, &w);
    char buf[8];
    WT_CHECK_EQ(read(sv[1], buf, sizeof buf), 4);
    wt_join(t);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(ioctl_fionbio_is_tracked_like_o_nonblock, root_fionbio, NULL,
         .procs = 2, .timeout = 10)

static int root_user_nonblock_accept(void *arg)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    WT_REQUIRE(l >= 0);
    WT_CHECK_EQ(fcntl(l, F_SETFL, O_NONBLOCK), 0);
    WT_CHECK_EQ(weft_accept(l, NULL, NULL), -1);
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    weft_close(l);
    return 0;
}

RUN_TEST(accept_on_a_nonblocking_listener_gives_eagain,
         root_user_nonblock_accept, NULL, .procs = 2, .timeout = 10)

/* ======================================================= OS threads too */

struct os_reader {
    int fd;
    int flags;
    ssize_t got;
    int err;
    char buf[8];
    atomic_int done;
};

static void *os_read_main(void *arg)
{
    struct os_reader *o = arg;
    o->flags = fcntl(o->fd, F_GETFL);
    o->got = read(o->fd, o->buf, sizeof o->buf); /* a blocking read */
    o->err = errno;
    atomic_store(&o->done, 1);
    return NULL;
}

static int root_os_thread_blocks(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(wt_used_socketpair(sv), 0);
    WT_CHECK(wt_kernel_flags(sv[1]) & O_NONBLOCK); /* weft switched it */
    struct os_reader o = {.fd = sv[1], .got = -2};
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_read_main, &o), 0);
    weft_sleep(WT_MS(100));
    WT_CHECK_MSG(!atomic_load(&o.done), "the OS thread's read returned %zd "
                 "(errno %d) with no data", o.got, o.err);
    WT_CHECK_EQ(weft_write(sv[0], "hello", 5), 5);
    wt_yield_until(&o.done, 100000000L);
    pthread_join(pt, NULL);
    WT_CHECK_EQ(o.got, 5);
    WT_CHECK(!memcmp(o.buf, "hello", 5));
    WT_CHECK_EQ(o.flags & O_NONBLOCK, 0);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(os_thread_read_on_a_socket_weft_used_still_blocks,
         root_os_thread_blocks, NULL, .procs = 2, .timeout = 10)

static int g_after_sv[2];

static int root_use_socket(void *arg)
{
    WT_REQUIRE_EQ(wt_used_socketpair(g_after_sv), 0);
    return 0;
}

static void *os_write_later(void *arg)
{
    wt_block_ms(60);
    ssize_t r = write(*(int *)arg, "later", 5);
    (void)r;
    return NULL;
}

Test(io_blocking, os_thread_read_after_the_run_still_blocks, .timeout = 10)
{
    WT_RUN(root_use_socket, NULL, .procs = 2);
    int fd = g_after_sv[1];
    cr_assert(wt_kernel_flags(fd) & O_NONBLOCK);
    cr_assert_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    pthread_t pt;
    cr_assert_eq(pthread_create(&pt, NULL, os_write_later, &g_after_sv[0]),
                 0);
    char buf[8];
    int64_t t0 = wt_clock_ns();
    ssize_t r = read(fd, buf, sizeof buf);
    int64_t ms = (wt_clock_ns() - t0) / 1000000;
    pthread_join(pt, NULL);
    cr_assert_eq(r, 5, "read returned %zd (errno %d)", r, errno);
    cr_assert_geq(ms, 50);
    close(g_after_sv[0]);
    close(g_after_sv[1]);
}

struct os_accept {
    int l, fd, err;
    int64_t returned; /* wt_clock_ns() when accept returned */
    atomic_int done;
};

static void *os_accept_main(void *arg)
{
    struct os_accept *o = arg;
    o->fd = accept(o->l, NULL, NULL);
    o->err = errno;
    o->returned = wt_clock_ns();
    atomic_store(&o->done, 1);
    return NULL;
}

/* A listener a virtual thread used (weft made it non-blocking): an OS
 * thread's accept still blocks until a client comes. (Its wait is timed
 * against the client's connect, not its own start: a loaded machine may
 * start the OS thread late.) */
static int root_os_accept(void *arg)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    WT_REQUIRE(l >= 0);
    WT_CHECK_EQ(weft_wait_fd(l, POLLIN, 0), ETIMEDOUT); /* weft knows it */
    int c0 = wt_tcp_connect(port);
    int a0 = weft_accept(l, NULL, NULL);
    WT_CHECK(wt_kernel_flags(l) & O_NONBLOCK);
    struct os_accept o = {.l = l, .fd = -2};
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_accept_main, &o), 0);
    weft_sleep(WT_MS(60));
    WT_CHECK_MSG(!atomic_load(&o.done), "accept returned %d (errno %d)",
                 o.fd, o.err);
    int64_t connecting = wt_clock_ns();
    int c = wt_tcp_connect(port);
    wt_yield_until(&o.done, 100000000L);
    pthread_join(pt, NULL);
    WT_CHECK_MSG(o.fd >= 0, "accept failed: errno %d", o.err);
    WT_CHECK(o.returned >= connecting);
    int fds[] = {c0, a0, c, o.fd, l};
    for (int i = 0; i < 5; i++)
        weft_close(fds[i]);
    return 0;
}

RUN_TEST(os_thread_accept_on_a_listener_weft_used_blocks, root_os_accept, NULL,
         .procs = 2, .timeout = 10)

/* ============================================ a dup of a socket weft used */

/* dup() of a socket weft made non-blocking underneath: the copy shares
 * that flag in the kernel, yet must keep the program's blocking view. */
static int root_dup_plain(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(wt_used_socketpair(sv), 0);
    int d = dup(sv[1]);
    WT_REQUIRE(d >= 0);
    WT_CHECK_EQ(fcntl(d, F_GETFL) & O_NONBLOCK, 0);
    WT_CHECK_EQ(wt_set_timeout(d, SO_RCVTIMEO, 2000), 0); /* bounds a failure */
    struct wt_late_write w = {sv[0], WT_MS(30)};
    weft_thread *t = wt_go(wt_write_later, &w);
    char buf[8];
    ssize_t r = read(d, buf, sizeof buf);
    WT_CHECK_MSG(r == 4, "read on the dup: %zd, errno %d", r, wt_errno());
    wt_join(t);
    weft_close(d);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(dup_of_a_used_socket_keeps_blocking_semantics, root_dup_plain, NULL,
         .procs = 2, .timeout = 10)

/* ================================================ standard input: a pipe */

struct stdin_read {
    struct wt_ticker tick;
    long ticks, ms;
    int64_t waited; /* the carrier's wait for a CPU meanwhile */
    ssize_t got;
    char buf[8];
};

static int stdin_reader(void *arg)
{
    struct stdin_read *s = arg;
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    long k0 = atomic_load(&s->tick.ticks);
    int64_t t0 = weft_now();
    s->got = weft_read(STDIN_FILENO, s->buf, sizeof s->buf);
    s->ticks = atomic_load(&s->tick.ticks) - k0;
    s->ms = wt_ms_since(t0);
    s->waited = wt_sched_waited(&m);
    return 0;
}

/* fd 0 is never made non-blocking (its flags are shared with other
 * processes), yet a read on it waits in the poller, not on the carrier. */
static int root_stdin(void *arg)
{
    int p[2];
    WT_REQUIRE_EQ(pipe(p), 0);
    WT_REQUIRE_EQ(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
    weft_close(p[0]);
    struct stdin_read s = {.got = -2};
    wt_ticker_start(&s.tick);
    weft_thread *t = wt_go(stdin_reader, &s);
    WT_CHECK(wt_wait_io_waiting(1));
    weft_sleep(WT_MS(100));
    WT_CHECK_EQ(weft_write(p[1], "in", 2), 2);
    wt_join(t);
    wt_ticker_stop(&s.tick);
    WT_CHECK_EQ(s.got, 2);
    WT_CHECK_MSG(s.ticks >= wt_min_ticks(s.ms, s.waited),
                 "ticker ran %ld times in %ld ms (%lld ms waiting for a CPU)",
                 s.ticks, s.ms, (long long)s.waited / 1000000);
    WT_CHECK_EQ(wt_kernel_flags(STDIN_FILENO) & O_NONBLOCK, 0);
    WT_CHECK_EQ(wt_handoffs(), 0);
    weft_close(p[1]);
    return 0;
}

Test(io_blocking, stdin_pipe_read_parks_and_stays_blocking, .timeout = 10)
{
    WT_RUN(root_stdin, NULL, .procs = 1, .hog_ms = WT_NO_HANDOFF_MS);
}
