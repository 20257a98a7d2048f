/* SPDX-License-Identifier: MIT */
/*
 * io_rw.c — weft_read / weft_write / readv / writev on pipes,
 * socketpairs and TCP on loopback: bytes arrive whole and in order, a
 * zero-length read returns at once, a reader parks only its own thread
 * (its carrier runs the others meanwhile), readers and writers parked on
 * one socket are each woken by their own event, and a thousand socket
 * pairs ping-pong at once. *
 * A test that proves a carrier stayed free runs with one P and a hog
 * threshold of 10 s: no hand-off can move the other threads away from a
 * carrier that blocked, so they run only if it did not.
 *
 * Registered once per backend (WEFT_IO=uring, WEFT_IO=epoll); outside
 * sanitizer builds also linked against libweft.so (tests/CMakeLists.txt).
 */
#include "wt_io.h"

#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/uio.h>

#define RUN_TEST(...) WT_RUN_TEST(io_rw, __VA_ARGS__)

/* ======================================================= plain transfers */

static int root_roundtrip(void *arg)
{
    struct wt_pair p;
    WT_REQUIRE_EQ(wt_pair_open((int)(intptr_t)arg, &p), 0);
    WT_CHECK_EQ(weft_write(p.wr, "hello", 5), 5);
    WT_CHECK_EQ(weft_write(p.wr, " you", 4), 4);
    char buf[32] = {0};
    size_t got = 0;
    while (got < 9) {
        ssize_t r = weft_read(p.rd, buf + got, sizeof buf - got);
        WT_REQUIRE(r > 0);
        got += (size_t)r;
    }
    WT_CHECK_EQ(got, 9);
    WT_CHECK(!memcmp(buf, "hello you", 9));
    wt_pair_close(&p);
    return 0;
}

RUN_TEST(read_write_pipe, root_roundtrip, WT_PIPE, .procs = 2, .timeout = 10)
RUN_TEST(read_write_socketpair, root_roundtrip, WT_UNIX,
         .procs = 2, .timeout = 10)
RUN_TEST(read_write_tcp, root_roundtrip, WT_TCP, .procs = 2, .timeout = 10)

/* ---------------------------------- a reader parks; its carrier is free */

struct parked_read {
    struct wt_pair p;
    struct wt_ticker tick;
    long ticks, ms;
    int64_t waited; /* the carrier's wait for a CPU meanwhile */
    ssize_t got;
    char buf[16];
};

static int parked_reader(void *arg)
{
    struct parked_read *s = arg;
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    long k0 = atomic_load(&s->tick.ticks);
    int64_t t0 = weft_now();
    s->got = weft_read(s->p.rd, s->buf, sizeof s->buf);
    s->ticks = atomic_load(&s->tick.ticks) - k0;
    s->ms = wt_ms_since(t0);
    s->waited = wt_sched_waited(&m);
    return 0;
}

static int root_parked_read(void *arg)
{
    struct parked_read s = {.got = -2};
    WT_REQUIRE_EQ(wt_pair_open((int)(intptr_t)arg, &s.p), 0);
    wt_ticker_start(&s.tick);
    weft_thread *r = wt_go_named("reader", parked_reader, &s);
    WT_CHECK(wt_wait_io_waiting(1));
    weft_sleep(WT_MS(100));
    WT_CHECK_EQ(weft_write(s.p.wr, "late", 4), 4);
    wt_join(r);
    wt_ticker_stop(&s.tick);
    WT_CHECK_EQ(s.got, 4);
    WT_CHECK(!memcmp(s.buf, "late", 4));
    WT_CHECK_MSG(s.ms >= 90, "read returned after %ld ms", s.ms);
    WT_CHECK_MSG(s.ticks >= wt_min_ticks(s.ms, s.waited),
                 "the ticker ran %ld times while the reader waited %ld ms "
                 "(%lld ms of it for a CPU)", s.ticks, s.ms,
                 (long long)s.waited / 1000000);
    WT_CHECK_EQ(wt_handoffs(), 0);
    wt_pair_close(&s.p);
    return 0;
}

Test(io_rw, reader_parks_carrier_free_pipe, .timeout = 10)
{
    WT_RUN(root_parked_read, (void *)WT_PIPE,
           .procs = 1, .hog_ms = WT_NO_HANDOFF_MS);
}

Test(io_rw, reader_parks_carrier_free_socketpair, .timeout = 10)
{
    WT_RUN(root_parked_read, (void *)WT_UNIX,
           .procs = 1, .hog_ms = WT_NO_HANDOFF_MS);
}

Test(io_rw, reader_parks_carrier_free_tcp, .timeout = 10)
{
    WT_RUN(root_parked_read, (void *)WT_TCP,
           .procs = 1, .hog_ms = WT_NO_HANDOFF_MS);
}

/* ------------------------------------------------------- readv / writev */

struct vec {
    int fd;
    char a[3], b[16];
    ssize_t got;
};

static int vec_reader(void *arg)
{
    struct vec *v = arg;
    struct iovec iov[2] = {{v->a, sizeof v->a}, {v->b, sizeof v->b}};
    v->got = weft_readv(v->fd, iov, 2);
    return 0;
}

static int root_vectored(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct vec v = {.fd = sv[0], .got = -2};
    weft_thread *r = wt_go(vec_reader, &v);
    WT_CHECK(wt_wait_io_waiting(1)); /* parked before the data exists */
    struct iovec out[4] = {{"ab", 2}, {"cde", 3}, {"", 0}, {"fgh", 3}};
    WT_CHECK_EQ(weft_writev(sv[1], out, 4), 8);
    wt_join(r);
    WT_CHECK_EQ(v.got, 8);
    WT_CHECK(!memcmp(v.a, "abc", 3));
    WT_CHECK(!memcmp(v.b, "defgh", 5));
    wt_close_both(sv);
    return 0;
}

RUN_TEST(readv_scatters_what_writev_gathered, root_vectored, NULL,
         .procs = 2, .timeout = 10)

static int root_zero_read(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(wt_used_socketpair(sv), 0);
    char b;
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_read(sv[0], &b, 0), 0);
    WT_CHECK(wt_own_ms_since(t0, &m) < 50);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(zero_length_read_returns_0_without_waiting, root_zero_read, NULL,
         .procs = 2, .timeout = 10)

static int root_timerfd(void *arg)
{
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    WT_REQUIRE(tfd >= 0);
    struct itimerspec its = {.it_value = {0, 50 * 1000000}};
    WT_CHECK_EQ(timerfd_settime(tfd, 0, &its, NULL), 0);
    uint64_t expirations = 0;
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_read(tfd, &expirations, sizeof expirations), 8);
    long ms = wt_ms_since(t0);
    WT_CHECK_EQ(expirations, 1);
    WT_CHECK_MSG(ms >= 45 &&
                     wt_own_since(t0) < WT_MS(50 + WT_LATE_MS),
                 "woke after %ld ms", ms);
    weft_close(tfd);
    return 0;
}

RUN_TEST(timerfd_read_parks_until_it_expires, root_timerfd, NULL,
         .procs = 1, .timeout = 10)

enum { NREADERS = 8 };

struct shared_read {
    int fd;
    atomic_int served;
    char seen[NREADERS];
};

static int one_byte_reader(void *arg)
{
    struct shared_read *s = arg;
    char c;
    if (weft_read(s->fd, &c, 1) == 1)
        s->seen[atomic_fetch_add(&s->served, 1)] = c;
    return 0;
}

/* Readers parked on one socket: each byte written wakes one of them, and
 * every one is served in the end (no edge is lost among them). */
static int root_shared_readers(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct shared_read s = {.fd = sv[0]};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < NREADERS; i++)
        wt_go(one_byte_reader, &s);
    WT_CHECK(wt_wait_io_waiting(NREADERS));
    for (int i = 0; i < NREADERS; i++) {
        WT_CHECK_EQ(weft_write(sv[1], &"abcdefgh"[i], 1), 1);
        if (i % 2)
            weft_sleep(WT_MS(2));
    }
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    WT_CHECK_EQ(atomic_load(&s.served), NREADERS);
    int mask = 0;
    for (int i = 0; i < NREADERS; i++)
        mask |= 1 << (s.seen[i] - 'a');
    WT_CHECK_EQ(mask, (1 << NREADERS) - 1); /* each byte exactly once */
    wt_close_both(sv);
    return 0;
}

RUN_TEST(readers_parked_on_one_socket_are_all_served, root_shared_readers, NULL,
         .procs = 2, .timeout = 10)

struct duplex {
    int fd;
    size_t pre;
    ssize_t got, wrote;
};

static int duplex_reader(void *arg)
{
    struct duplex *d = arg;
    char buf[8];
    d->got = weft_read(d->fd, buf, sizeof buf);
    return 0;
}

static int duplex_writer(void *arg)
{
    struct duplex *d = arg;
    char buf[1000] = {0};
    d->wrote = weft_write(d->fd, buf, sizeof buf);
    return 0;
}

/* A reader and a writer parked on the same socket, each woken by its own
 * event: the peer draining wakes the writer only, the peer writing wakes
 * the reader. */
static int root_duplex(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct duplex d = {.fd = sv[0], .got = -2, .wrote = -2};
    d.pre = wt_fill_socket(sv[0]);
    weft_thread *r = wt_go(duplex_reader, &d);
    weft_thread *w = wt_go(duplex_writer, &d);
    WT_CHECK(wt_wait_io_waiting(2));
    WT_CHECK_EQ(wt_skip_bytes(sv[1], d.pre + 1000), d.pre + 1000);
    wt_join(w);
    WT_CHECK_EQ(d.wrote, 1000);
    WT_CHECK_EQ(d.got, -2); /* still parked */
    WT_CHECK_EQ(weft_write(sv[1], "back", 4), 4);
    wt_join(r);
    WT_CHECK_EQ(d.got, 4);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(reader_and_writer_parked_on_one_socket, root_duplex, NULL,
         .procs = 2, .timeout = 10)

/* ----------------------------------- 8 MiB through a slow reader, in order */

enum { BIG = 8 << 20 };
enum { BY_WRITE, BY_WRITEV, BY_SEND };

struct big {
    int rd, wr, how;
    unsigned char *data;
    ssize_t wrote;
    size_t got, first_bad;
};

/* Reads in small chunks of varying size, pausing now and then. */
static int slow_reader(void *arg)
{
    struct big *b = arg;
    unsigned char buf[997];
    b->first_bad = SIZE_MAX;
    for (unsigned calls = 1; b->got < BIG; calls++) {
        size_t want = 1 + (calls * 7919u) % sizeof buf;
        ssize_t r = weft_read(b->rd, buf, want);
        if (r <= 0)
            break;
        size_t bad = wt_check_pattern(buf, b->got, (size_t)r);
        if (bad < (size_t)r && b->first_bad == SIZE_MAX)
            b->first_bad = b->got + bad;
        b->got += (size_t)r;
        if (calls % 256 == 0)
            weft_sleep(WT_MS(1));
    }
    return 0;
}

static int big_writer(void *arg)
{
    struct big *b = arg;
    struct iovec iov[2] = {{b->data, BIG / 2}, {b->data + BIG / 2, BIG / 2}};
    if (b->how == BY_WRITE)
        b->wrote = weft_write(b->wr, b->data, BIG);
    else if (b->how == BY_WRITEV)
        b->wrote = weft_writev(b->wr, iov, 2);
    else
        b->wrote = weft_send(b->wr, b->data, BIG, 0);
    return 0;
}

static int root_big(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct big b = {.rd = sv[0], .wr = sv[1], .how = (int)(intptr_t)arg,
                    .wrote = -2};
    b.data = malloc(BIG);
    WT_REQUIRE(b.data != NULL);
    wt_fill_pattern(b.data, 0, BIG);
    weft_thread *r = wt_go_named("slow-reader", slow_reader, &b);
    weft_thread *w = wt_go_named("writer", big_writer, &b);
    wt_join(w);
    wt_join(r);
    WT_CHECK_EQ(b.wrote, BIG);
    WT_CHECK_EQ(b.got, BIG);
    WT_CHECK_MSG(b.first_bad == SIZE_MAX, "byte %zu is out of order",
                 b.first_bad);
    free(b.data);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(write_8mib_to_slow_reader_returns_full_count, root_big, BY_WRITE,
         .procs = 2, .timeout = 30)
RUN_TEST(writev_8mib_to_slow_reader_returns_full_count, root_big, BY_WRITEV,
         .procs = 2, .timeout = 30)
RUN_TEST(send_8mib_to_slow_reader_returns_full_count, root_big, BY_SEND,
         .procs = 1, .timeout = 30)

/* ======================================= many threads, many socketpairs */

/* ThreadSanitizer runs this about ten times slower: fewer round trips
 * there, the same 2000 threads parked on 2000 fds. */
#if defined(__SANITIZE_THREAD__)
enum { NMSG = 30 };
#else
enum { NMSG = 100 };
#endif
enum { NPAIRS = 1000, MAXMSG = 64 };

struct pinger {
    int fd;
    uint64_t rng;
    size_t bytes;
};

static int pong_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[MAXMSG];
    ssize_t r;
    while ((r = weft_read(fd, buf, sizeof buf)) > 0)
        WT_CHECK_EQ(weft_write(fd, buf, (size_t)r), r);
    WT_CHECK_EQ(r, 0);
    weft_close(fd);
    return 0;
}

static int ping_main(void *arg)
{
    struct pinger *p = arg;
    unsigned char out[MAXMSG], in[MAXMSG];
    for (int i = 0; i < NMSG; i++) {
        size_t len = 1 + wt_rand(&p->rng) % MAXMSG;
        for (size_t j = 0; j < len; j++)
            out[j] = (unsigned char)wt_rand(&p->rng);
        WT_REQUIRE_EQ(weft_write(p->fd, out, len), len);
        size_t got = 0;
        while (got < len) {
            ssize_t r = weft_read(p->fd, in + got, len - got);
            WT_REQUIRE(r > 0);
            got += (size_t)r;
        }
        WT_REQUIRE(!memcmp(in, out, len));
        p->bytes += len;
    }
    weft_close(p->fd); /* the ponger sees EOF */
    return 0;
}

static uint64_t g_seed;

static int root_many(void *arg)
{
    struct pinger *ps = calloc(NPAIRS, sizeof *ps);
    WT_REQUIRE(ps != NULL);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    for (int i = 0; i < NPAIRS; i++) {
        int sv[2];
        WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                      0);
        ps[i] = (struct pinger){.fd = sv[0], .rng = g_seed ^ (uint64_t)i};
        WT_REQUIRE(wt_go(pong_main, (void *)(intptr_t)sv[1]) != NULL);
        WT_REQUIRE(wt_go(ping_main, &ps[i]) != NULL);
    }
    WT_CHECK_EQ(weft_scope_close(s), 0);
    size_t total = 0;
    for (int i = 0; i < NPAIRS; i++)
        total += ps[i].bytes;
    /* Every message of every pair came back. */
    WT_CHECK_MSG(total >= (size_t)NPAIRS * NMSG, "%zu bytes echoed", total);
    free(ps);
    return 0;
}

/* About 12 s under TSan on an idle 2-CPU machine, 36 s beside two
 * CPU-bound processes: the bound leaves room for both. */
Test(io_rw, thousand_socketpairs_ping_pong,
     .timeout = WT_SANITIZED ? 180 : 60)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 4 * NPAIRS) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    g_seed = wt_seed();
    WT_RUN(root_many, NULL, .procs = 2);
}
