/* SPDX-License-Identifier: MIT */
/*
 * io_poll.c — weft_poll and weft_wait_fd: each ready fd is reported,
 * a time-out of 0 returns at once and a longer one expires on time, a
 * wait parks until one fd is ready or the peer closes, a scope deadline
 * ends it with ETIMEDOUT, and a bad or closed fd gives EBADF at once.
 *
 * Registered once per backend (WEFT_IO=uring, WEFT_IO=epoll); outside
 * sanitizer builds also linked against libweft.so (tests/CMakeLists.txt).
 */
#include "wt_io.h"

#include <limits.h>

#define RUN_TEST(...) WT_RUN_TEST(io_poll, __VA_ARGS__)

/* ================================================================== poll */

static int root_poll_several(void *arg)
{
    int s[3][2];
    for (int i = 0; i < 3; i++)
        WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s[i]), 0);
    WT_CHECK_EQ(weft_write(s[0][1], "a", 1), 1);
    WT_CHECK_EQ(weft_write(s[2][1], "c", 1), 1);
    struct pollfd p[4] = {{s[0][0], POLLIN, 0}, {s[1][0], POLLIN, 0},
                          {s[2][0], POLLIN, 0}, {-1, POLLIN, 0}};
    WT_CHECK_EQ(weft_poll(p, 4, -1), 2);
    WT_CHECK_EQ(p[0].revents, POLLIN);
    WT_CHECK_EQ(p[1].revents, 0);
    WT_CHECK_EQ(p[2].revents, POLLIN);
    WT_CHECK_EQ(p[3].revents, 0); /* negative fds are ignored */
    struct pollfd out = {s[1][1], POLLOUT, 0};
    WT_CHECK_EQ(weft_poll(&out, 1, 100), 1);
    WT_CHECK_EQ(out.revents, POLLOUT);
    for (int i = 0; i < 3; i++) {
        weft_close(s[i][0]);
        weft_close(s[i][1]);
    }
    return 0;
}

RUN_TEST(poll_reports_each_ready_fd, root_poll_several, NULL,
         .procs = 2, .timeout = 10)

static int root_poll_zero(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(wt_used_socketpair(sv), 0);
    struct pollfd p = {sv[0], POLLIN, 0};
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_poll(&p, 1, 0), 0);
    WT_CHECK(wt_own_ms_since(t0, &m) < 50);
    WT_CHECK_EQ(p.revents, 0);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(poll_timeout_zero_returns_at_once, root_poll_zero, NULL,
         .procs = 2, .timeout = 10)

static int root_poll_expiry(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct pollfd p[2] = {{sv[0], POLLIN, 0}, {sv[1], POLLIN, 0}};
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_poll(p, 2, 60), 0);
    long ms = wt_ms_since(t0);
    WT_CHECK_MSG(ms >= 59 &&
                     wt_own_since(t0) < WT_MS(60 + WT_LATE_MS),
                 "60 ms poll took %ld ms",
                 ms);
    WT_CHECK_EQ(p[0].revents | p[1].revents, 0);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(poll_timeout_expires, root_poll_expiry, NULL,
         .procs = 2, .timeout = 10)

static int root_poll_parked(void *arg)
{
    int s[3][2];
    for (int i = 0; i < 3; i++)
        WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s[i]), 0);
    struct wt_late_write w = {s[1][1], WT_MS(30)};
    weft_thread *t = wt_go(wt_write_later, &w);
    struct pollfd p[3];
    for (int i = 0; i < 3; i++)
        p[i] = (struct pollfd){s[i][0], POLLIN, 0};
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_poll(p, 3, 5000), 1);
    WT_CHECK(wt_ms_since(t0) >= 25);
    WT_CHECK_EQ(p[0].revents, 0);
    WT_CHECK_EQ(p[1].revents, POLLIN);
    WT_CHECK_EQ(p[2].revents, 0);
    wt_join(t);
    for (int i = 0; i < 3; i++) {
        weft_close(s[i][0]);
        weft_close(s[i][1]);
    }
    return 0;
}

RUN_TEST(poll_wakes_when_one_fd_becomes_ready, root_poll_parked, NULL,
         .procs = 1, .timeout = 10)

static int close_later(void *arg)
{
    weft_sleep(WT_MS(30));
    WT_CHECK_EQ(weft_close(*(int *)arg), 0);
    return 0;
}

static int root_poll_hangup(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_thread *t = wt_go(close_later, &sv[1]);
    struct pollfd p = {sv[0], POLLIN, 0};
    WT_CHECK_EQ(weft_poll(&p, 1, 5000), 1);
    WT_CHECK(p.revents & (POLLIN | POLLHUP));
    wt_join(t);
    char c;
    WT_CHECK_EQ(weft_read(sv[0], &c, 1), 0);
    weft_close(sv[0]);
    return 0;
}

RUN_TEST(poll_wakes_when_the_peer_closes, root_poll_hangup, NULL,
         .procs = 2, .timeout = 10)

enum { MANY_FDS = 40 };

/* More fds than weft keeps on the stack, one listed twice. */
static int root_poll_many(void *arg)
{
    int s[MANY_FDS][2];
    struct pollfd p[MANY_FDS + 1];
    for (int i = 0; i < MANY_FDS; i++) {
        WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s[i]), 0);
        p[i] = (struct pollfd){s[i][0], POLLIN, 0};
    }
    p[MANY_FDS] = (struct pollfd){s[33][0], POLLIN, 0};
    struct wt_late_write w = {s[33][1], WT_MS(30)};
    weft_thread *t = wt_go(wt_write_later, &w);
    WT_CHECK_EQ(weft_poll(p, MANY_FDS + 1, 5000), 2);
    for (int i = 0; i <= MANY_FDS; i++)
        WT_CHECK_MSG(p[i].revents == (i == 33 || i == MANY_FDS ? POLLIN : 0),
                     "fd %d: revents %#x", i, p[i].revents);
    wt_join(t);
    for (int i = 0; i < MANY_FDS; i++) {
        weft_close(s[i][0]);
        weft_close(s[i][1]);
    }
    return 0;
}

RUN_TEST(poll_on_40_fds_one_listed_twice, root_poll_many, NULL,
         .procs = 1, .timeout = 10)

struct closed_poll {
    int fd, n, err;
    short revents;
};

static int poll_until_closed(void *arg)
{
    struct closed_poll *c = arg;
    struct pollfd p = {c->fd, POLLIN, 0};
    c->n = weft_poll(&p, 1, 5000);
    c->err = wt_errno();
    c->revents = p.revents;
    return 0;
}

/* weft_close wakes the threads waiting on the fd, their calls failing
 * with EBADF (weft.h), poll's too. */
static int root_poll_closed(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct closed_poll c = {.fd = sv[0], .n = -2};
    weft_thread *t = wt_go(poll_until_closed, &c);
    WT_CHECK(wt_wait_io_waiting(1));
    WT_CHECK_EQ(weft_close(sv[0]), 0);
    wt_join(t);
    WT_CHECK_MSG(c.n == -1 && c.err == EBADF,
                 "poll returned %d (errno %d), revents %#x", c.n, c.err,
                 c.revents);
    weft_close(sv[1]);
    return 0;
}

RUN_TEST(poll_gets_ebadf_when_another_thread_closes, root_poll_closed, NULL,
         .procs = 2, .timeout = 10)

/* poll(NULL, 0, ms) and polls on negative fds only: the sleep idiom. */
static int root_poll_no_fds(void *arg)
{
    struct pollfd none = {-1, POLLIN, 0};
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_poll(NULL, 0, 60), 0);
    long ms = wt_ms_since(t0);
    WT_CHECK_MSG(ms >= 59 &&
                     wt_own_since(t0) < WT_MS(60 + WT_LATE_MS),
                 "slept %ld ms", ms);
    t0 = wt_mark_now();
    WT_CHECK_EQ(weft_poll(&none, 1, 30), 0);
    ms = wt_ms_since(t0);
    WT_CHECK_MSG(ms >= 29 &&
                     wt_own_since(t0) < WT_MS(30 + WT_LATE_MS),
                 "slept %ld ms", ms);
    return 0;
}

RUN_TEST(poll_without_fds_sleeps_for_its_timeout, root_poll_no_fds, NULL,
         .procs = 2, .timeout = 10)

/* arg: the poll's own timeout (-1: none). The scope's deadline comes
 * first: -1 with ETIMEDOUT, as the header says, not 0 (a poll(-1) that
 * returns 0 sends callers round a loop that never waits again). */
static int root_poll_scope_deadline(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct pollfd p = {sv[0], POLLIN, 0};
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    int64_t t0 = wt_mark_now();
    weft_scope_deadline(s, t0 + WT_MS(50));
    int n = weft_poll(&p, 1, (int)(intptr_t)arg);
    int err = wt_errno();
    long ms = wt_ms_since(t0);
    WT_CHECK_EQ(weft_scope_close(s), ETIMEDOUT);
    WT_CHECK_EQ(n, -1);
    WT_CHECK_EQ(err, ETIMEDOUT);
    WT_CHECK_MSG(ms >= 49 &&
                     wt_own_since(t0) < WT_MS(50 + WT_LATE_MS),
                 "returned after %ld ms",
                 ms);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(poll_forever_ends_with_etimedout_at_the_scope_deadline,
         root_poll_scope_deadline, -1, .procs = 2, .timeout = 10)
RUN_TEST(poll_timeout_after_the_scope_deadline_gives_etimedout,
         root_poll_scope_deadline, 5000, .procs = 2, .timeout = 10)

/* ========================================================== weft_wait_fd */

static int root_wait_ready(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(wt_used_socketpair(sv), 0);
    WT_CHECK_EQ(weft_wait_fd(sv[0], POLLOUT, -1), 0);
    WT_CHECK_EQ(weft_write(sv[1], "r", 1), 1);
    WT_CHECK_EQ(weft_wait_fd(sv[0], POLLIN, -1), 0);
    WT_CHECK_EQ(weft_wait_fd(sv[0], POLLIN | POLLOUT, 0), 0);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(wait_fd_ready_returns_zero, root_wait_ready, NULL,
         .procs = 2, .timeout = 10)

static int root_wait_later(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct wt_late_write w = {sv[1], WT_MS(30)};
    weft_thread *t = wt_go(wt_write_later, &w);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_wait_fd(sv[0], POLLIN, weft_now() + WT_MS(5000)), 0);
    WT_CHECK(wt_ms_since(t0) >= 25);
    wt_join(t);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(wait_fd_wakes_on_data, root_wait_later, NULL,
         .procs = 1, .timeout = 10)

static int root_wait_deadline(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_wait_fd(sv[0], POLLIN, t0 + WT_MS(50)), ETIMEDOUT);
    long ms = wt_ms_since(t0);
    WT_CHECK_MSG(ms >= 49 &&
                     wt_own_since(t0) < WT_MS(50 + WT_LATE_MS),
                 "50 ms wait took %ld ms",
                 ms);
    WT_CHECK_EQ(weft_wait_fd(sv[0], POLLIN, 0), ETIMEDOUT); /* a poll */
    wt_close_both(sv);
    return 0;
}

RUN_TEST(wait_fd_deadline_gives_etimedout, root_wait_deadline, NULL,
         .procs = 2, .timeout = 10)

static int root_wait_einval(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    WT_CHECK_EQ(weft_wait_fd(sv[0], 0, -1), EINVAL);
    WT_CHECK_EQ(weft_wait_fd(sv[0], POLLPRI, -1), EINVAL);
    int unused = sv[1] + 100;
    WT_CHECK_EQ(weft_wait_fd(unused, POLLIN, -1), EBADF);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(wait_fd_no_events_einval_closed_fd_ebadf, root_wait_einval, NULL,
         .procs = 2, .timeout = 10)

/* Negative and closed fds, with a deadline of 0 (a poll) or later: EBADF
 * at once (poll(2) skips a negative fd, which made it wait the time out).
 * No call goes without a deadline, so that the old wait fails, not hangs. */
static void *wait_bad_fds(void *arg)
{
    int *rc = arg, closed = dup(0), k = 0;
    close(closed);
    const int fds[] = {-1, -7, INT_MIN, closed};
    const int64_t soon = weft_now() + WT_MS(200);
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        rc[k++] = weft_wait_fd(fds[i], POLLIN, 0);
        rc[k++] = weft_wait_fd(fds[i], POLLOUT, soon);
        rc[k++] = weft_wait_fd(fds[i], POLLIN | POLLOUT, soon);
    }
    rc[k] = 0;
    return NULL;
}

static void check_bad_fds(const int *rc, int64_t t0, const char *where)
{
    for (int k = 0; rc[k]; k++)
        WT_CHECK_MSG(rc[k] == EBADF, "%s, call %d: %s", where, k,
                     strerror(rc[k]));
    WT_CHECK_MSG(rc[0] != 0, "%s: nothing checked", where);
    WT_CHECK_MSG(wt_ms_since(t0) < 150, "%s: waited %ld ms", where,
                 wt_ms_since(t0));
}

static int root_wait_bad_fds(void *arg)
{
    int rc[16];
    int64_t t0 = weft_now();
    wait_bad_fds(rc);
    check_bad_fds(rc, t0, "virtual thread");
    pthread_t pt;
    t0 = weft_now();
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, wait_bad_fds, rc), 0);
    pthread_join(pt, NULL);
    check_bad_fds(rc, t0, "OS thread");
    return 0;
}

RUN_TEST(wait_fd_negative_fd_is_ebadf_on_any_thread, root_wait_bad_fds, NULL,
         .procs = 2, .timeout = 10)
