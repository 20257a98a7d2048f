/* SPDX-License-Identifier: MIT */
/*
 * io_close.c — the end of a stream and of an fd: a read returns 0
 * at EOF (also when the data and the end arrive together), ECONNRESET on
 * a reset, a write EPIPE to a closed peer; weft_close wakes the threads
 * waiting on the fd with EBADF, and the fd's number can be reused
 * afresh.
 *
 * Registered once per backend (WEFT_IO=uring, WEFT_IO=epoll); outside
 * sanitizer builds also linked against libweft.so (tests/CMakeLists.txt).
 */
#include "wt_io.h"

#define RUN_TEST(...) WT_RUN_TEST(io_close, __VA_ARGS__)

/* ================================================= EOF, reset, broken pipe */

static int root_eof(void *arg)
{
    struct wt_pair p;
    WT_REQUIRE_EQ(wt_pair_open((int)(intptr_t)arg, &p), 0);
    struct wt_one_read e = {.fd = p.rd, .got = -2};
    weft_thread *t = wt_go(wt_read_once, &e);
    WT_CHECK(wt_wait_io_waiting(1));
    WT_CHECK_EQ(weft_close(p.wr), 0);
    wt_join(t);
    WT_CHECK_EQ(e.got, 0);
    weft_close(p.rd);
    return 0;
}

RUN_TEST(read_returns_0_when_the_pipe_writer_closes, root_eof, WT_PIPE,
         .procs = 2, .timeout = 10)
RUN_TEST(read_returns_0_when_the_tcp_peer_closes, root_eof, WT_TCP,
         .procs = 2, .timeout = 10)

/* Data and the end of the stream arrive together, while the reader waits:
 * one edge announces both. The read that takes the data is short, and the
 * next must still see the end (no further edge will come for it). */
static int data_then_eof_reader(void *arg)
{
    struct wt_one_read *e = arg;
    char b[64];
    WT_CHECK_EQ(weft_read(e->fd, b, sizeof b), 5);
    e->got = weft_read(e->fd, b, sizeof b);
    e->err = wt_errno();
    return 0;
}

static int root_data_then_eof(void *arg)
{
    struct wt_pair p;
    WT_REQUIRE_EQ(wt_pair_open((int)(intptr_t)arg, &p), 0);
    struct wt_one_read e = {.fd = p.rd, .got = -2};
    weft_thread *t = wt_go(data_then_eof_reader, &e);
    WT_CHECK(wt_wait_io_waiting(1));
    /* One P: the reader cannot run, nor the poller fetch, in between. */
    WT_CHECK_EQ(weft_write(p.wr, "hello", 5), 5);
    WT_CHECK_EQ(weft_close(p.wr), 0);
    wt_join(t);
    WT_CHECK_EQ(e.got, 0);
    weft_close(p.rd);
    return 0;
}

RUN_TEST(short_read_with_the_end_behind_it_then_reads_0_pipe,
         root_data_then_eof, WT_PIPE, .procs = 1, .timeout = 10)
RUN_TEST(short_read_with_the_end_behind_it_then_reads_0_unix,
         root_data_then_eof, WT_UNIX, .procs = 1, .timeout = 10)
RUN_TEST(short_read_with_the_end_behind_it_then_reads_0_tcp,
         root_data_then_eof, WT_TCP, .procs = 1, .timeout = 10)

static int root_reset(void *arg)
{
    int a, c;
    WT_REQUIRE_EQ(wt_tcp_pair(&a, &c), 0);
    struct wt_one_read e = {.fd = a, .got = -2};
    weft_thread *t = wt_go(wt_read_once, &e);
    WT_CHECK(wt_wait_io_waiting(1));
    struct linger lg = {1, 0};
    WT_CHECK_EQ(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    WT_CHECK_EQ(weft_close(c), 0); /* sends a reset */
    wt_join(t);
    WT_CHECK_EQ(e.got, -1);
    WT_CHECK_EQ(e.err, ECONNRESET);
    weft_close(a);
    return 0;
}

RUN_TEST(read_gets_econnreset_when_the_peer_resets, root_reset, NULL,
         .procs = 2, .timeout = 10)

static int root_epipe(void *arg)
{
    struct wt_pair p;
    WT_REQUIRE_EQ(wt_pair_open((int)(intptr_t)arg, &p), 0);
    WT_CHECK_EQ(weft_close(p.rd), 0);
    WT_CHECK_EQ(weft_write(p.wr, "lost", 4), -1);
    WT_CHECK_EQ(wt_errno(), EPIPE);
    weft_close(p.wr);
    return 0;
}

Test(io_close, write_to_a_closed_socket_peer_gives_epipe, .timeout = 10)
{
    signal(SIGPIPE, SIG_IGN);
    WT_RUN(root_epipe, (void *)WT_UNIX, .procs = 2);
}

Test(io_close, write_to_a_closed_pipe_gives_epipe, .timeout = 10)
{
    signal(SIGPIPE, SIG_IGN);
    WT_RUN(root_epipe, (void *)WT_PIPE, .procs = 2);
}

static int root_nosignal(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    WT_CHECK_EQ(weft_close(sv[1]), 0);
    WT_CHECK_EQ(weft_send(sv[0], "lost", 4, MSG_NOSIGNAL), -1);
    WT_CHECK_EQ(wt_errno(), EPIPE);
    weft_close(sv[0]);
    return 0;
}

Test(io_close, send_msg_nosignal_gives_epipe_without_the_signal, .timeout = 10)
{
    signal(SIGPIPE, SIG_DFL);
    WT_RUN(root_nosignal, NULL, .procs = 2);
}

/* ====================================== close wakes waiters, numbers reused */

struct closed_wait {
    int fd;
    int rc;
    ssize_t got;
    int err;
};

static int wait_until_closed(void *arg)
{
    struct closed_wait *c = arg;
    c->rc = weft_wait_fd(c->fd, POLLIN, -1);
    return 0;
}

static int read_until_closed(void *arg)
{
    struct closed_wait *c = arg;
    char b;
    c->got = weft_read(c->fd, &b, 1);
    c->err = wt_errno();
    return 0;
}

/* arg: 0 waits in weft_wait_fd, 1 in weft_read. */
static int root_close_wakes(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct closed_wait c = {.fd = sv[0], .rc = -2, .got = -2};
    weft_thread *t = wt_go(arg ? read_until_closed : wait_until_closed, &c);
    WT_CHECK(wt_wait_io_waiting(1));
    WT_CHECK_EQ(weft_close(sv[0]), 0); /* from this, another thread */
    wt_join(t);
    if (arg) {
        WT_CHECK_EQ(c.got, -1);
        WT_CHECK_EQ(c.err, EBADF);
    } else {
        WT_CHECK_EQ(c.rc, EBADF);
    }
    weft_close(sv[1]);
    return 0;
}

RUN_TEST(wait_fd_gets_ebadf_when_another_thread_closes, root_close_wakes, 0,
         .procs = 2, .timeout = 10)
RUN_TEST(read_gets_ebadf_when_another_thread_closes, root_close_wakes, 1,
         .procs = 2, .timeout = 10)

/* arg: how the used fd is closed: 0 close(), 1 fclose() of a FILE on it.
 * Its number's next file must be watched afresh (no record or poller
 * registration of the old one left behind). */
/* Arms a used socket, closes it (as arg says), and makes a new pair in
 * nv: 1 if one of them got the closed one's number, *old, else 0 (or
 * WT_EFAIL). */
static int reuse_number_once(void *arg, int nv[2], int *old)
{
    int sv[2];
    WT_REQUIRE_EQ(wt_used_socketpair(sv), 0);
    WT_CHECK_EQ(weft_wait_fd(sv[1], POLLIN, 0), ETIMEDOUT); /* armed */
    *old = sv[1];
    if (arg) {
        FILE *f = fdopen(sv[1], "r+");
        WT_REQUIRE(f != NULL);
        WT_CHECK_EQ(fclose(f), 0);
    } else {
        WT_CHECK_EQ(close(sv[1]), 0);
    }
    WT_CHECK_EQ(weft_close(sv[0]), 0);
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, nv), 0);
    return nv[0] == *old || nv[1] == *old;
}

static int root_reuse_number(void *arg)
{
    int nv[2], old;
    /* The runtime may open an fd of its own in between (a spare carrier's
     * ring on a loaded machine) and take the number: then again. */
    int r;
    for (int tries = 0; (r = reuse_number_once(arg, nv, &old)) != 1;
         tries++) {
        if (r == WT_EFAIL)
            return r;
        WT_CHECK_MSG(tries < 10, "fd %d never reused", old);
        weft_close(nv[0]);
        weft_close(nv[1]);
        if (tries >= 10)
            return WT_EFAIL;
    }
    int fd = nv[0] == old ? nv[0] : nv[1];
    int peer = fd == nv[0] ? nv[1] : nv[0];
    WT_CHECK_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    struct wt_late_write w = {peer, WT_MS(30)};
    weft_thread *t = wt_go(wt_write_later, &w);
    WT_CHECK_EQ(weft_wait_fd(fd, POLLIN, weft_now() + WT_MS(2000)), 0);
    char buf[8];
    WT_CHECK_EQ(weft_read(fd, buf, sizeof buf), 4);
    wt_join(t);
    weft_close(nv[0]);
    weft_close(nv[1]);
    return 0;
}

RUN_TEST(close_lets_the_fd_number_be_reused, root_reuse_number, 0,
         .procs = 2, .timeout = 10)
RUN_TEST(fclose_lets_the_fd_number_be_reused, root_reuse_number, 1,
         .procs = 2, .timeout = 10)
