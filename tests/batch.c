/* SPDX-License-Identifier: MIT */
/*
 * batch.c — transfers on sockets and pipes batched in a carrier's ring
 * (io_uring backend): a read or write made while its P has other threads
 * to run waits in the submission queue and is submitted with the others.
 * Whatever the batching, each call keeps its libc contract (counts, order,
 * EAGAIN becoming a wait, errors, deadlines). Registered once per backend;
 * under epoll nothing is batched and the same calls must behave the same.
 *
 * To make a call batch, its P must have another thread queued: a yielder
 * keeps one there (one P, so that nobody steals it).
 */
#include "wt_io.h"

#include <string.h>
#include <sys/uio.h>

#define RUN_TEST(...) WT_RUN_TEST(batch, __VA_ARGS__)

static bool on_uring(void)
{
    weft_runtime_stats st;
    return weft_stats(&st) == 0 && strcmp(st.io_backend, "uring") == 0;
}

static unsigned long long batched(void)
{
    weft_runtime_stats st;
    return weft_stats(&st) == 0 ? st.io_batched : 0;
}

/* ---------------------------------------------- a thread that keeps a P busy */

struct yielder {
    atomic_int stop;
    weft_thread *t;
};

static int yielder_main(void *arg)
{
    struct yielder *y = arg;
    while (!atomic_load(&y->stop))
        weft_yield();
    return 0;
}

static void yielder_start(struct yielder *y)
{
    atomic_store(&y->stop, 0);
    y->t = wt_go_named("yielder", yielder_main, y);
}

static void yielder_stop(struct yielder *y)
{
    atomic_store(&y->stop, 1);
    WT_CHECK_EQ(wt_join(y->t), 0);
}

static int unix_pair(int sv[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) ? wt_errno()
                                                                    : 0;
}

/* ------------------------------------ many streams at once, in order, whole */

enum { K_UNIX, K_TCP, K_PIPE };
#define STREAMS 24
#define MSGS 40

struct stream {
    int kind;
    int rd, wr;
    uint64_t seed;
};

/* Writes MSGS messages of random sizes (up to 3000 bytes) carrying the
 * pattern, alternating write, writev and send. */
static int stream_writer(void *arg)
{
    struct stream *s = arg;
    uint64_t rng = s->seed;
    unsigned char buf[3000];
    size_t off = 0;
    for (int i = 0; i < MSGS; i++) {
        size_t n = 1 + wt_rand(&rng) % sizeof buf;
        wt_fill_pattern(buf, off, n);
        ssize_t r;
        if (i % 3 == 0) {
            r = weft_write(s->wr, buf, n);
        } else if (i % 3 == 1 || s->kind == K_PIPE) {
            struct iovec iov[2] = {{buf, n / 2}, {buf + n / 2, n - n / 2}};
            r = weft_writev(s->wr, iov, 2);
        } else {
            r = weft_send(s->wr, buf, n, 0);
        }
        WT_REQUIRE_EQ(r, (ssize_t)n);
        off += n;
        if (i % 8 == 7)
            weft_yield();
    }
    weft_close(s->wr);
    return 0;
}

/* Reads to EOF (read, readv and recv in turn) and checks every byte. */
static int stream_reader(void *arg)
{
    struct stream *s = arg;
    unsigned char buf[1024];
    size_t off = 0;
    for (int i = 0;; i++) {
        ssize_t r;
        if (i % 3 == 0 || s->kind == K_PIPE) {
            r = weft_read(s->rd, buf, sizeof buf);
        } else if (i % 3 == 1) {
            struct iovec iov[2] = {{buf, 100}, {buf + 100, sizeof buf - 100}};
            r = weft_readv(s->rd, iov, 2);
        } else {
            r = weft_recv(s->rd, buf, sizeof buf, 0);
        }
        WT_REQUIRE(r >= 0);
        if (r == 0)
            break;
        WT_REQUIRE_EQ(wt_check_pattern(buf, off, (size_t)r), (size_t)r);
        off += (size_t)r;
    }
    uint64_t rng = s->seed;
    size_t want = 0;
    for (int i = 0; i < MSGS; i++)
        want += 1 + wt_rand(&rng) % 3000;
    WT_CHECK_EQ(off, want);
    weft_close(s->rd);
    return 0;
}

static int open_stream(struct stream *s)
{
    int fds[2];
    if (s->kind == K_TCP)
        return wt_tcp_pair(&s->rd, &s->wr);
    int r = s->kind == K_PIPE ? pipe2(fds, O_CLOEXEC) ? wt_errno() : 0
                              : unix_pair(fds);
    s->rd = fds[0];
    s->wr = fds[1];
    return r;
}

static int root_streams(void *arg)
{
    static struct stream s[STREAMS];
    uint64_t seed = wt_seed();
    unsigned long long before = batched();
    weft_thread *t[2 * STREAMS];
    for (int i = 0; i < STREAMS; i++) {
        s[i] = (struct stream){.kind = (int)(intptr_t)arg,
                               .seed = seed + (uint64_t)i};
        WT_REQUIRE_EQ(open_stream(&s[i]), 0);
    }
    for (int i = 0; i < STREAMS; i++) {
        t[2 * i] = wt_go_named("reader", stream_reader, &s[i]);
        t[2 * i + 1] = wt_go_named("writer", stream_writer, &s[i]);
    }
    for (int i = 0; i < 2 * STREAMS; i++)
        WT_CHECK_EQ(wt_join(t[i]), 0);
    weft_runtime_stats st;
    WT_REQUIRE_EQ(weft_stats(&st), 0);
    if (on_uring()) {
        /* 48 threads on one P: most transfers find others queued. */
        WT_CHECK(st.io_batched - before >= STREAMS * MSGS / 2);
        WT_CHECK(st.io_batch_submits < st.io_batched);
    } else {
        WT_CHECK_EQ(st.io_batched, 0ull);
        WT_CHECK_EQ(st.io_batch_submits, 0ull);
    }
    return 0;
}

RUN_TEST(many_unix_streams_arrive_whole_and_in_order, root_streams, K_UNIX,
         .procs = 1, .timeout = 30)
RUN_TEST(many_tcp_streams_arrive_whole_and_in_order, root_streams, K_TCP,
         .procs = 1, .timeout = 30)
RUN_TEST(many_pipes_arrive_whole_and_in_order, root_streams, K_PIPE,
         .procs = 1, .timeout = 30)
RUN_TEST(many_tcp_streams_on_two_procs, root_streams, K_TCP,
         .procs = 2, .timeout = 30)

/* ------------------------------ a batched read that finds nothing waits */

static int root_read_waits(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(unix_pair(sv), 0);
    struct yielder y;
    yielder_start(&y);
    unsigned long long before = batched();
    struct wt_late_write lw = {sv[1], WT_MS(30)};
    weft_thread *w = wt_go_named("late writer", wt_write_later, &lw);
    int64_t t0 = weft_now();
    char buf[8] = {0};
    WT_CHECK_EQ(weft_read(sv[0], buf, sizeof buf), 4);
    WT_CHECK(!memcmp(buf, "data", 4));
    WT_CHECK(wt_ms_since(t0) >= 25);
    if (on_uring())
        WT_CHECK(batched() > before);
    WT_CHECK_EQ(wt_join(w), 0);
    yielder_stop(&y);
    weft_close(sv[0]);
    weft_close(sv[1]);
    return 0;
}

RUN_TEST(batched_read_of_an_empty_socket_waits_for_data, root_read_waits, NULL,
         .procs = 1, .timeout = 10)

/* ------------------ a deadline ends it; the socket stays usable, loses nothing */

static int root_read_deadline(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(unix_pair(sv), 0);
    struct yielder y;
    yielder_start(&y);
    char buf[8];
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    weft_scope_deadline(s, weft_now() + WT_MS(30));
    WT_CHECK_EQ(weft_read(sv[0], buf, sizeof buf), -1);
    WT_CHECK_EQ(wt_errno(), ETIMEDOUT);
    WT_CHECK_EQ(weft_scope_close(s), ETIMEDOUT);
    WT_CHECK_EQ(weft_write(sv[1], "after", 5), 5);
    WT_CHECK_EQ(weft_read(sv[0], buf, sizeof buf), 5);
    WT_CHECK(!memcmp(buf, "after", 5));
    yielder_stop(&y);
    weft_close(sv[0]);
    weft_close(sv[1]);
    return 0;
}

RUN_TEST(batched_read_ends_at_the_scope_deadline_and_socket_stays_usable,
         root_read_deadline, NULL, .procs = 1, .timeout = 10)

/* ------------------------------------------------- errors come back as errno */

static int root_errors(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(unix_pair(sv), 0);
    struct yielder y;
    yielder_start(&y);
    WT_CHECK_EQ(weft_write(sv[1], "x", 1), 1);
    weft_close(sv[1]);
    char buf[4];
    WT_CHECK_EQ(weft_read(sv[0], buf, sizeof buf), 1);
    WT_CHECK_EQ(weft_read(sv[0], buf, sizeof buf), 0); /* EOF */
    errno = 1234;
    WT_CHECK_EQ(weft_write(sv[0], "y", 1), -1);
    WT_CHECK_EQ(wt_errno(), EPIPE);
    WT_CHECK_EQ(weft_send(sv[0], "y", 1, MSG_NOSIGNAL), -1);
    WT_CHECK_EQ(wt_errno(), EPIPE);
    yielder_stop(&y);
    weft_close(sv[0]);
    return 0;
}

Test(batch, errors_of_batched_calls_come_back_in_errno, .timeout = 10)
{
    signal(SIGPIPE, SIG_IGN);
    WT_RUN(root_errors, NULL, .procs = 1);
}

/* Success leaves errno as it was, batched or not. */
static int root_errno_kept(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(unix_pair(sv), 0);
    struct yielder y;
    yielder_start(&y);
    char buf[4];
    errno = 4321;
    WT_CHECK_EQ(weft_write(sv[1], "abc", 3), 3);
    WT_CHECK_EQ(weft_read(sv[0], buf, sizeof buf), 3);
    WT_CHECK_EQ(errno, 4321);
    yielder_stop(&y);
    weft_close(sv[0]);
    weft_close(sv[1]);
    return 0;
}

RUN_TEST(batched_calls_that_succeed_leave_errno_alone, root_errno_kept, NULL,
         .procs = 1, .timeout = 10)

/* ---------------------- a hog behind a batched write does not hold it back */

struct hog_race {
    int fd;
    atomic_int writing;
    atomic_int written;
    atomic_int hog_gave_up;
};

static int batched_writer(void *arg)
{
    struct hog_race *h = arg;
    atomic_store(&h->writing, 1);
    WT_CHECK_EQ(weft_write(h->fd, "w", 1), 1);
    atomic_store(&h->written, 1);
    return 0;
}

/* Yields (so that it sits in the run queue when the writer writes) until
 * the writer is about to write, then runs without a switch until the
 * write is done or 5 s have passed. */
static int hog(void *arg)
{
    struct hog_race *h = arg;
    while (!atomic_load(&h->writing))
        weft_yield();
    int64_t t0 = wt_clock_ns();
    while (!atomic_load(&h->written))
        if (wt_clock_ns() - t0 > 5 * WT_MS(1000)) {
            atomic_store(&h->hog_gave_up, 1);
            break;
        }
    return 0;
}

/* One race; returns whether the write went into the ring. */
static bool hog_round(void)
{
    int sv[2];
    WT_REQUIRE_EQ(unix_pair(sv), 0);
    struct hog_race h = {.fd = sv[1]};
    unsigned long long before = batched();
    /* The writer finds the hog queued and (under io_uring) leaves its
     * write in the ring; the hog then holds the carrier. The monitor hands
     * the P on and submits the write. */
    weft_thread *g = wt_go_named("hog", hog, &h);
    weft_thread *w = wt_go_named("writer", batched_writer, &h);
    WT_CHECK_EQ(wt_join(w), 0);
    WT_CHECK_EQ(wt_join(g), 0);
    WT_CHECK_EQ(atomic_load(&h.hog_gave_up), 0);
    char c;
    WT_CHECK_EQ(weft_read(sv[0], &c, 1), 1);
    weft_close(sv[0]);
    weft_close(sv[1]);
    return batched() > before;
}

/* On a loaded machine the kernel may deschedule the carrier for longer
 * than the hog limit before the race is set: the monitor then hands the P
 * on early, the hog runs elsewhere and the write finds no one queued (it
 * goes straight to the kernel). Such a round proves nothing: up to 20. */
static int root_hog(void *arg)
{
    bool in_ring = false;
    int rounds = on_uring() ? 20 : 1;
    for (int round = 0; round < rounds && !in_ring; round++)
        in_ring = hog_round();
    if (on_uring())
        WT_CHECK(in_ring);
    return 0;
}

Test(batch, batched_write_completes_while_a_hog_holds_its_carrier,
     .timeout = 20)
{
    WT_RUN(root_hog, NULL, .procs = 1, .hog_ms = 10);
}
