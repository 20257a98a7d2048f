/* SPDX-License-Identifier: MIT */
/*
 * io_timeout.c — socket time-outs: SO_RCVTIMEO (set before or after
 * weft first sees the socket) and SO_SNDTIMEO end a read, a write or an
 * accept with EAGAIN on time, on a virtual thread and on an OS thread.
 *
 * Registered once per backend (WEFT_IO=uring, WEFT_IO=epoll); outside
 * sanitizer builds also linked against libweft.so (tests/CMakeLists.txt).
 */
#include "wt_io.h"

#define RUN_TEST(...) WT_RUN_TEST(io_timeout, __VA_ARGS__)

/* arg: 0 sets SO_RCVTIMEO before weft first sees the fd, 1 after. */
static int root_rcvtimeo(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(arg ? wt_used_socketpair(sv)
                      : socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    WT_CHECK_EQ(wt_set_timeout(sv[1], SO_RCVTIMEO, 80), 0);
    char b;
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(read(sv[1], &b, 1), -1);
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    long ms = wt_ms_since(t0);
    WT_CHECK_MSG(ms >= 79 && wt_own_since(t0) < WT_MS(80 + WT_LATE_MS),
                 "80 ms SO_RCVTIMEO ended the read after %ld ms", ms);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(so_rcvtimeo_set_before_first_use_gives_eagain, root_rcvtimeo, 0,
         .procs = 2, .timeout = 10)
RUN_TEST(so_rcvtimeo_set_after_first_use_gives_eagain, root_rcvtimeo, 1,
         .procs = 2, .timeout = 10)

static int root_sndtimeo(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(wt_used_socketpair(sv), 0);
    size_t pre = wt_fill_socket(sv[0]);
    WT_CHECK_EQ(wt_set_timeout(sv[0], SO_SNDTIMEO, 80), 0);
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(write(sv[0], "more", 4), -1);
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    long ms = wt_ms_since(t0);
    WT_CHECK_MSG(ms >= 79 && wt_own_since(t0) < WT_MS(80 + WT_LATE_MS),
                 "80 ms SO_SNDTIMEO ended the write after %ld ms", ms);
    WT_CHECK(pre > 0);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(so_sndtimeo_gives_eagain_on_a_full_socket, root_sndtimeo, NULL,
         .procs = 2, .timeout = 10)

static int root_accept_timeout(void *arg)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    WT_REQUIRE(l >= 0);
    WT_CHECK_EQ(wt_set_timeout(l, SO_RCVTIMEO, 80), 0);
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_accept(l, NULL, NULL), -1);
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    long ms = wt_ms_since(t0);
    WT_CHECK_MSG(ms >= 79 &&
                     wt_own_since(t0) < WT_MS(80 + WT_LATE_MS),
                 "accept gave up after "
                 "%ld ms", ms);
    weft_close(l);
    return 0;
}

RUN_TEST(accept_honours_so_rcvtimeo, root_accept_timeout, NULL,
         .procs = 2, .timeout = 10)

struct os_timed_read {
    int fd;
    ssize_t got;
    int err;
    long ms; /* how long the read took */
    char buf[8];
    atomic_int done;
};

static void *os_read_timeout_main(void *arg)
{
    struct os_timed_read *o = arg;
    int64_t t0 = wt_clock_ns();
    o->got = read(o->fd, o->buf, sizeof o->buf);
    o->err = errno;
    o->ms = (long)((wt_clock_ns() - t0) / 1000000);
    atomic_store(&o->done, 1);
    return NULL;
}

static int root_os_rcvtimeo(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(wt_used_socketpair(sv), 0);
    WT_CHECK_EQ(wt_set_timeout(sv[1], SO_RCVTIMEO, 80), 0);
    struct os_timed_read o = {.fd = sv[1], .got = -2};
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_read_timeout_main, &o), 0);
    wt_yield_until(&o.done, 100000000L);
    pthread_join(pt, NULL);
    WT_CHECK_EQ(o.got, -1);
    WT_CHECK_EQ(o.err, EAGAIN);
    WT_CHECK_MSG(o.ms >= 79 && o.ms < 80 + WT_LATE_MS, "gave up after %ld ms",
                 o.ms);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(os_thread_read_honours_so_rcvtimeo, root_os_rcvtimeo, NULL,
         .procs = 2, .timeout = 10)
