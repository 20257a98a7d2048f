/* SPDX-License-Identifier: MIT */
/*
 * io_cancel.c — how a wait on an fd ends early: weft_cancel ends a
 * parked read or write (ECANCELED, or the short count already written)
 * without losing a byte, a scope's deadline ends a plain read with
 * ETIMEDOUT, and a socket wait however long is never taken for a
 * deadlock.
 *
 * Registered once per backend (WEFT_IO=uring, WEFT_IO=epoll); outside
 * sanitizer builds also linked against libweft.so (tests/CMakeLists.txt).
 */
#include "wt_io.h"

#define RUN_TEST(...) WT_RUN_TEST(io_cancel, __VA_ARGS__)

/* ========================================================== cancellation */

static int root_cancel_read(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct wt_one_read e = {.fd = sv[0], .got = -2};
    weft_thread *t = wt_go(wt_read_once, &e);
    WT_CHECK(wt_wait_io_waiting(1));
    WT_CHECK_EQ(weft_cancel(t), 0);
    wt_join(t);
    WT_CHECK_EQ(e.got, -1);
    WT_CHECK_EQ(e.err, ECANCELED);
    /* The fd is still usable: a later read gets what is written after. */
    WT_CHECK_EQ(weft_write(sv[1], "after", 5), 5);
    char buf[8] = {0};
    WT_CHECK_EQ(weft_read(sv[0], buf, sizeof buf), 5);
    WT_CHECK(!memcmp(buf, "after", 5));
    wt_close_both(sv);
    return 0;
}

RUN_TEST(cancelled_read_gives_ecanceled_and_the_fd_stays_usable,
         root_cancel_read, NULL, .procs = 2, .timeout = 10)

enum { RACES = 200 };

/* A byte written and a cancellation, at nearly the same moment: either the
 * reader got the byte, or it was cancelled and the byte is still there.
 * Never both, never neither. */
static int root_cancel_race(void *arg)
{
    uint64_t rng = *(uint64_t *)arg;
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int got = 0, cancelled = 0;
    for (int i = 0; i < RACES; i++) {
        struct wt_one_read e = {.fd = sv[0], .got = -2};
        weft_thread *t = wt_go(wt_read_once, &e);
        if (wt_rand(&rng) % 2)
            WT_CHECK(wt_wait_io_waiting(1));
        bool write_first = wt_rand(&rng) % 2;
        if (write_first)
            WT_CHECK_EQ(weft_write(sv[1], "r", 1), 1);
        WT_CHECK_EQ(weft_cancel(t), 0);
        if (!write_first)
            WT_CHECK_EQ(weft_write(sv[1], "r", 1), 1);
        wt_join(t);
        char c;
        if (e.got == 1) {
            got++;
        } else {
            WT_CHECK_MSG(e.got == -1 && e.err == ECANCELED,
                         "round %d: read %zd, errno %d", i, e.got, e.err);
            WT_CHECK_EQ(weft_read(sv[0], &c, 1), 1); /* the byte is kept */
            cancelled++;
        }
        WT_CHECK_EQ(weft_wait_fd(sv[0], POLLIN, 0), ETIMEDOUT);
    }
    fprintf(stderr, "cancel race: %d read, %d cancelled\n", got, cancelled);
    wt_close_both(sv);
    return 0;
}

Test(io_cancel, cancel_racing_data_loses_no_byte, .timeout = 20)
{
    uint64_t seed = wt_seed();
    WT_RUN(root_cancel_race, &seed, .procs = 2);
}

struct cancel_write {
    int fd;
    size_t from, n;
    ssize_t wrote;
    int err;
};

static int cancelled_writer(void *arg)
{
    struct cancel_write *w = arg;
    unsigned char *buf = malloc(w->n);
    if (!buf)
        return ENOMEM;
    wt_fill_pattern(buf, w->from, w->n);
    w->wrote = weft_write(w->fd, buf, w->n);
    w->err = wt_errno();
    free(buf);
    return 0;
}

/* arg: bytes already in the socket before the write (0, or a full buffer). */
static int root_cancel_write(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    size_t pre = arg ? wt_fill_socket(sv[1]) : 0;
    struct cancel_write w = {.fd = sv[1], .from = pre, .n = 4 << 20,
                             .wrote = -2};
    weft_thread *t = wt_go(cancelled_writer, &w);
    WT_CHECK(wt_wait_io_waiting(1));
    WT_CHECK_EQ(weft_cancel(t), 0);
    wt_join(t);
    if (pre) { /* nothing went: the call fails */
        WT_CHECK_EQ(w.wrote, -1);
        WT_CHECK_EQ(w.err, ECANCELED);
    } else { /* a buffer's worth went: the call returns that short count */
        WT_CHECK_MSG(w.wrote > 0 && (size_t)w.wrote < w.n, "wrote %zd",
                     w.wrote);
    }
    /* The reader gets exactly what was reported: nothing lost or doubled. */
    wt_drain_exactly(sv[0], 0, pre + (w.wrote > 0 ? (size_t)w.wrote : 0));
    wt_close_both(sv);
    return 0;
}

RUN_TEST(cancelled_write_returns_the_short_count_written, root_cancel_write, 0,
         .procs = 2, .timeout = 10)
RUN_TEST(cancelled_write_with_nothing_written_gives_ecanceled,
         root_cancel_write, 1, .procs = 2, .timeout = 10)

static int root_scope_deadline(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    int64_t t0 = wt_mark_now();
    weft_scope_deadline(s, t0 + WT_MS(80));
    char b;
    ssize_t r = read(sv[0], &b, 1); /* libc's name: the hook */
    int err = wt_errno();
    long ms = wt_ms_since(t0);
    WT_CHECK_EQ(weft_scope_close(s), ETIMEDOUT);
    WT_CHECK_EQ(r, -1);
    WT_CHECK_EQ(err, ETIMEDOUT);
    WT_CHECK_MSG(ms >= 79 && wt_own_since(t0) < WT_MS(80 + WT_LATE_MS),
                 "80 ms deadline ended the read after %ld ms", ms);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(scope_deadline_ends_a_plain_read_with_etimedout,
         root_scope_deadline, NULL, .procs = 2, .timeout = 10)

/* ======================== a socket wait is not a deadlock, however long */

struct forever {
    int never, wake;
    weft_thread *reader;
    ssize_t got;
    int err;
    int64_t t0;
    long ms;
};

static int forever_reader(void *arg)
{
    struct forever *f = arg;
    char b;
    f->got = weft_read(f->never, &b, 1); /* nobody ever writes */
    f->err = wt_errno();
    return f->err;
}

/* Waits on a pipe only an OS thread writes to, then cancels the reader. */
static int canceller(void *arg)
{
    struct forever *f = arg;
    char b;
    WT_CHECK_EQ(weft_read(f->wake, &b, 1), 1);
    f->ms = wt_ms_since(f->t0);
    return weft_cancel(f->reader);
}

/* An OS thread, invisible to weft until then: wakes the canceller after
 * 1.5 s with a raw write(2). Until that moment no timer is armed and no
 * virtual thread can run: only the fd waits tell weft this is no
 * deadlock. */
static void *os_waker(void *arg)
{
    wt_block_ms(1500);
    long r = syscall(SYS_write, *(int *)arg, "w", 1);
    (void)r;
    return NULL;
}

static int root_no_deadlock(void *arg)
{
    int sv[2], p[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    WT_REQUIRE_EQ(pipe(p), 0);
    struct forever f = {.never = sv[0], .wake = p[0], .got = -2,
                        .t0 = weft_now()};
    f.reader = wt_go_named("forever-reader", forever_reader, &f);
    weft_thread *c = wt_go_named("canceller", canceller, &f);
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_waker, &p[1]), 0);
    WT_CHECK_EQ(wt_join(c), 0);
    WT_CHECK_EQ(wt_join(f.reader), ECANCELED);
    pthread_join(pt, NULL); /* it has written: returns at once */
    WT_CHECK_EQ(f.got, -1);
    WT_CHECK_EQ(f.err, ECANCELED);
    WT_CHECK_MSG(f.ms >= 1400, "woken after %ld ms", f.ms);
    int fds[] = {sv[0], sv[1], p[0], p[1]};
    for (int i = 0; i < 4; i++)
        weft_close(fds[i]);
    return 0;
}

RUN_TEST(a_long_socket_wait_is_not_a_deadlock, root_no_deadlock, NULL,
         .procs = 2, .timeout = 15)
