/*
 * io.c — weft's blocking I/O calls (weft_read ... weft_wait_fd, weft_close,
 * weft_fcntl) on pipes, socketpairs, TCP and UDP on loopback and regular
 * files: each keeps its libc contract (results, errno, short counts, EOF,
 * resets), and a wait parks only the calling virtual thread. Registered
 * once per backend (WEFT_IO=uring, WEFT_IO=epoll).
 *
 * A test that proves a carrier stayed free runs with one P and a hog
 * threshold of 10 s: no hand-off can move the other threads away from a
 * carrier that blocked, so they run only if it did not.
 */
#include "wt_io.h"

#include <limits.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>

#define RUN_TEST(...) WT_RUN_TEST(io, __VA_ARGS__)

enum { K_PIPE, K_UNIX, K_TCP };

struct pair {
    int rd, wr;
};

/* A connected pair of `kind`: rd reads what wr writes. Returns 0 / errno.
 * Runs on: a virtual thread. */
static int pair_open(int kind, struct pair *p)
{
    int fds[2];
    if (kind == K_TCP)
        return wt_tcp_pair(&p->rd, &p->wr);
    int r = kind == K_PIPE
                ? pipe2(fds, O_CLOEXEC)
                : socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
    if (r)
        return wt_errno();
    p->rd = fds[0];
    p->wr = fds[1];
    return 0;
}

static void pair_close(struct pair *p)
{
    weft_close(p->rd);
    weft_close(p->wr);
}

static void close_both(int fds[2])
{
    weft_close(fds[0]);
    weft_close(fds[1]);
}

/* A socketpair weft has used (a byte each way): it made both ends
 * non-blocking underneath. Returns 0 / errno. */
static int used_socketpair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return wt_errno();
    char c;
    if (weft_write(sv[0], "u", 1) != 1 || weft_read(sv[1], &c, 1) != 1)
        return EIO;
    return 0;
}

/* A temporary regular file, already unlinked. */
static int temp_file(void)
{
    char path[] = "/tmp/weft-io-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

/* The handoffs so far: 0 proves no carrier was found stuck. */
static unsigned long long handoffs(void)
{
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    return st.handoffs;
}

/* Reads exactly n bytes from fd, checking they are the pattern from
 * `from`; then checks that nothing more arrives within 50 ms. */
static void drain_exactly(int fd, size_t from, size_t n)
{
    unsigned char buf[8192];
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < sizeof buf ? n - got : sizeof buf;
        ssize_t r = weft_read(fd, buf, want);
        WT_CHECK_MSG(r > 0, "read after %zu of %zu bytes: %zd", got, n, r);
        if (r <= 0)
            return;
        size_t bad = wt_check_pattern(buf, from + got, (size_t)r);
        WT_CHECK_MSG(bad == (size_t)r, "byte %zu is wrong", from + got + bad);
        got += (size_t)r;
    }
    WT_CHECK_EQ(weft_wait_fd(fd, POLLIN, weft_now() + WT_MS(50)), ETIMEDOUT);
}

/* Reads and drops n bytes from fd; returns how many it got. */
static size_t skip_bytes(int fd, size_t n)
{
    char buf[8192];
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < sizeof buf ? n - got : sizeof buf;
        ssize_t r = weft_read(fd, buf, want);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

static int set_timeout(int fd, int opt, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

/* ======================================================= plain transfers */

static int root_roundtrip(void *arg)
{
    struct pair p;
    WT_REQUIRE_EQ(pair_open((int)(intptr_t)arg, &p), 0);
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
    pair_close(&p);
    return 0;
}

RUN_TEST(read_write_pipe, root_roundtrip, K_PIPE, .procs = 2, .timeout = 10)
RUN_TEST(read_write_socketpair, root_roundtrip, K_UNIX,
         .procs = 2, .timeout = 10)
RUN_TEST(read_write_tcp, root_roundtrip, K_TCP, .procs = 2, .timeout = 10)

/* ---------------------------------- a reader parks; its carrier is free */

struct parked_read {
    struct pair p;
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
    WT_REQUIRE_EQ(pair_open((int)(intptr_t)arg, &s.p), 0);
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
    WT_CHECK_EQ(handoffs(), 0);
    pair_close(&s.p);
    return 0;
}

Test(io, reader_parks_carrier_free_pipe, .timeout = 10)
{
    WT_RUN(root_parked_read, (void *)K_PIPE,
           .procs = 1, .hog_ms = WT_NO_HANDOFF_MS);
}

Test(io, reader_parks_carrier_free_socketpair, .timeout = 10)
{
    WT_RUN(root_parked_read, (void *)K_UNIX,
           .procs = 1, .hog_ms = WT_NO_HANDOFF_MS);
}

Test(io, reader_parks_carrier_free_tcp, .timeout = 10)
{
    WT_RUN(root_parked_read, (void *)K_TCP,
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
    close_both(sv);
    return 0;
}

RUN_TEST(readv_scatters_what_writev_gathered, root_vectored, NULL,
         .procs = 2, .timeout = 10)

static int root_zero_read(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(used_socketpair(sv), 0);
    char b;
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_read(sv[0], &b, 0), 0);
    WT_CHECK(wt_own_ms_since(t0, &m) < 50);
    close_both(sv);
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
    close_both(sv);
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
    WT_CHECK_EQ(skip_bytes(sv[1], d.pre + 1000), d.pre + 1000);
    wt_join(w);
    WT_CHECK_EQ(d.wrote, 1000);
    WT_CHECK_EQ(d.got, -2); /* still parked */
    WT_CHECK_EQ(weft_write(sv[1], "back", 4), 4);
    wt_join(r);
    WT_CHECK_EQ(d.got, 4);
    close_both(sv);
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
    close_both(sv);
    return 0;
}

RUN_TEST(write_8mib_to_slow_reader_returns_full_count, root_big, BY_WRITE,
         .procs = 2, .timeout = 30)
RUN_TEST(writev_8mib_to_slow_reader_returns_full_count, root_big, BY_WRITEV,
         .procs = 2, .timeout = 30)
RUN_TEST(send_8mib_to_slow_reader_returns_full_count, root_big, BY_SEND,
         .procs = 1, .timeout = 30)

/* ============================================================ recv / send */

static int root_recv_peek(void *arg)
{
    int a, c;
    WT_REQUIRE_EQ(wt_tcp_pair(&a, &c), 0);
    WT_CHECK_EQ(weft_send(c, "ping", 4, 0), 4);
    char buf[8] = {0};
    WT_CHECK_EQ(weft_recv(a, buf, sizeof buf, MSG_PEEK), 4);
    WT_CHECK(!memcmp(buf, "ping", 4));
    memset(buf, 0, sizeof buf);
    WT_CHECK_EQ(weft_recv(a, buf, sizeof buf, 0), 4);
    WT_CHECK(!memcmp(buf, "ping", 4));
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_recv(a, buf, sizeof buf, MSG_DONTWAIT), -1);
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    WT_CHECK(wt_own_ms_since(t0, &m) < 50);
    weft_close(a);
    weft_close(c);
    return 0;
}

RUN_TEST(recv_peek_then_recv_then_dontwait, root_recv_peek, NULL,
         .procs = 2, .timeout = 10)

static int dribble_sender(void *arg)
{
    int fd = *(int *)arg;
    const char *parts[] = {"abcd", "efgh", "ijkl"};
    for (int i = 0; i < 3; i++) {
        weft_sleep(WT_MS(10));
        WT_CHECK_EQ(weft_send(fd, parts[i], 4, 0), 4);
    }
    return 0;
}

static int root_waitall(void *arg)
{
    int a, c;
    WT_REQUIRE_EQ(wt_tcp_pair(&a, &c), 0);
    weft_thread *s = wt_go(dribble_sender, &c);
    char buf[16] = {0};
    WT_CHECK_EQ(weft_recv(a, buf, 12, MSG_WAITALL), 12);
    WT_CHECK(!memcmp(buf, "abcdefghijkl", 12));
    wt_join(s);
    weft_close(a);
    weft_close(c);
    return 0;
}

RUN_TEST(recv_waitall_gathers_pieces_sent_apart, root_waitall, NULL,
         .procs = 2, .timeout = 10)

/* MSG_PEEK with MSG_WAITALL waits until n bytes are there, and leaves them. */
static int root_peek_waitall(void *arg)
{
    int a, c;
    WT_REQUIRE_EQ(wt_tcp_pair(&a, &c), 0);
    weft_thread *s = wt_go(dribble_sender, &c);
    char buf[16] = {0};
    WT_CHECK_EQ(weft_recv(a, buf, 12, MSG_PEEK | MSG_WAITALL), 12);
    WT_CHECK_MSG(!memcmp(buf, "abcdefghijkl", 12), "peeked '%s'", buf);
    memset(buf, 0, sizeof buf);
    WT_CHECK_EQ(weft_recv(a, buf, 12, MSG_WAITALL), 12);
    WT_CHECK_MSG(!memcmp(buf, "abcdefghijkl", 12), "read '%s'", buf);
    wt_join(s);
    weft_close(a);
    weft_close(c);
    return 0;
}

RUN_TEST(recv_peek_waitall_waits_for_all_and_keeps_it, root_peek_waitall, NULL,
         .procs = 2, .timeout = 10)

struct msg_waitall {
    int fd;
    ssize_t got;
    char buf[16];
};

static int recvmsg_waitall(void *arg)
{
    struct msg_waitall *m = arg;
    struct iovec iov[2] = {{m->buf, 5}, {m->buf + 5, 7}};
    struct msghdr h = {.msg_iov = iov, .msg_iovlen = 2};
    m->got = weft_recvmsg(m->fd, &h, MSG_WAITALL);
    return 0;
}

static int root_recvmsg_waitall(void *arg)
{
    int a, c;
    WT_REQUIRE_EQ(wt_tcp_pair(&a, &c), 0);
    struct msg_waitall m = {.fd = a, .got = -2};
    weft_thread *r = wt_go(recvmsg_waitall, &m);
    weft_thread *s = wt_go(dribble_sender, &c);
    wt_join(s);
    wt_join(r);
    WT_CHECK_EQ(m.got, 12);
    WT_CHECK_MSG(!memcmp(m.buf, "abcdefghijkl", 12), "got '%s'", m.buf);
    weft_close(a);
    weft_close(c);
    return 0;
}

RUN_TEST(recvmsg_waitall_gathers_pieces_sent_apart, root_recvmsg_waitall, NULL,
         .procs = 2, .timeout = 10)

/* --------------------------------------------------- UDP: recvfrom / sendto */

struct udp {
    int fd;
    uint16_t from_port[2];
    ssize_t got[2];
    char buf[2][16];
};

static int udp_reader(void *arg)
{
    struct udp *u = arg;
    for (int i = 0; i < 2; i++) {
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        u->got[i] = weft_recvfrom(u->fd, u->buf[i], sizeof u->buf[i], 0,
                                  (struct sockaddr *)&from, &len);
        u->from_port[i] = ntohs(from.sin_port);
    }
    return 0;
}

static int root_udp(void *arg)
{
    uint16_t rport, sport;
    int r = wt_bound_socket(SOCK_DGRAM, &rport);
    int s = wt_bound_socket(SOCK_DGRAM, &sport);
    WT_REQUIRE(r >= 0 && s >= 0);
    struct udp u = {.fd = r, .got = {-2, -2}};
    weft_thread *t = wt_go(udp_reader, &u);
    WT_CHECK(wt_wait_io_waiting(1));
    struct sockaddr_in to = wt_loopback(rport);
    WT_CHECK_EQ(weft_sendto(s, "one", 3, 0, (struct sockaddr *)&to,
                            sizeof to), 3);
    WT_CHECK_EQ(weft_sendto(s, "three", 5, 0, (struct sockaddr *)&to,
                            sizeof to), 5);
    wt_join(t);
    WT_CHECK_EQ(u.got[0], 3); /* datagram boundaries kept */
    WT_CHECK_EQ(u.got[1], 5);
    WT_CHECK(!memcmp(u.buf[0], "one", 3) && !memcmp(u.buf[1], "three", 5));
    WT_CHECK_EQ(u.from_port[0], sport);
    WT_CHECK_EQ(u.from_port[1], sport);
    weft_close(r);
    weft_close(s);
    return 0;
}

RUN_TEST(udp_recvfrom_parks_and_names_the_sender, root_udp, NULL,
         .procs = 2, .timeout = 10)

/* MSG_WAITALL has no effect on a datagram socket: one datagram per call. */
static int root_udp_waitall(void *arg)
{
    uint16_t rport, sport;
    int r = wt_bound_socket(SOCK_DGRAM, &rport);
    int s = wt_bound_socket(SOCK_DGRAM, &sport);
    WT_REQUIRE(r >= 0 && s >= 0);
    struct sockaddr_in to = wt_loopback(rport);
    WT_CHECK_EQ(weft_sendto(s, "one", 3, 0, (struct sockaddr *)&to,
                            sizeof to), 3);
    WT_CHECK_EQ(weft_sendto(s, "two", 3, 0, (struct sockaddr *)&to,
                            sizeof to), 3);
    WT_CHECK_EQ(set_timeout(r, SO_RCVTIMEO, 1000), 0); /* bounds a failure */
    char buf[64] = {0};
    WT_CHECK_EQ(weft_recv(r, buf, sizeof buf, MSG_WAITALL), 3);
    WT_CHECK_MSG(!strcmp(buf, "one"), "got '%s'", buf);
    weft_close(r);
    weft_close(s);
    return 0;
}

RUN_TEST(udp_recv_waitall_returns_one_datagram, root_udp_waitall, NULL,
         .procs = 2, .timeout = 10)

/* ----------------------------------- recvmsg / sendmsg with SCM_RIGHTS */

union cmsg_space {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
};

struct fdpass {
    int sock, fd;
    ssize_t got;
    char byte;
};

static int fd_receiver(void *arg)
{
    struct fdpass *p = arg;
    union cmsg_space u;
    struct iovec iov = {&p->byte, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    p->got = weft_recvmsg(p->sock, &m, MSG_CMSG_CLOEXEC);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        memcpy(&p->fd, CMSG_DATA(c), sizeof(int));
    return 0;
}

static int send_fd(int sock, int fd)
{
    union cmsg_space u;
    memset(&u, 0, sizeof u);
    struct iovec iov = {"F", 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return (int)weft_sendmsg(sock, &m, 0);
}

static int root_fdpass(void *arg)
{
    int sv[2], pfd[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    WT_REQUIRE_EQ(pipe(pfd), 0);
    struct fdpass p = {.sock = sv[1], .fd = -1, .got = -2};
    weft_thread *t = wt_go(fd_receiver, &p);
    WT_CHECK(wt_wait_io_waiting(1));
    WT_CHECK_EQ(send_fd(sv[0], pfd[0]), 1);
    wt_join(t);
    WT_CHECK_EQ(p.got, 1);
    WT_CHECK_EQ(p.byte, 'F');
    WT_REQUIRE(p.fd >= 0 && p.fd != pfd[0]);
    /* The passed fd is the pipe's read end: it gets what pfd[1] writes. */
    WT_CHECK_EQ(weft_write(pfd[1], "via", 3), 3);
    char buf[4] = {0};
    WT_CHECK_EQ(weft_read(p.fd, buf, sizeof buf), 3);
    WT_CHECK(!memcmp(buf, "via", 3));
    int fds[] = {sv[0], sv[1], pfd[0], pfd[1], p.fd};
    for (int i = 0; i < 5; i++)
        weft_close(fds[i]);
    return 0;
}

RUN_TEST(sendmsg_passes_an_fd_with_scm_rights, root_fdpass, NULL,
         .procs = 2, .timeout = 10)

/* ====================================================== accept / connect */

static int connect_to(uint16_t port)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = wt_loopback(port);
    if (c >= 0 && weft_connect(c, (struct sockaddr *)&a, sizeof a)) {
        weft_close(c);
        return -1;
    }
    return c;
}

static int root_accept4_nonblock(void *arg)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    WT_REQUIRE(l >= 0);
    int c = connect_to(port);
    WT_REQUIRE(c >= 0);
    int a = weft_accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    WT_REQUIRE(a >= 0);
    WT_CHECK(weft_fcntl(a, F_GETFL) & O_NONBLOCK);
    WT_CHECK(weft_fcntl(a, F_GETFD) & FD_CLOEXEC);
    char buf[4];
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_read(a, buf, sizeof buf), -1); /* no data: no wait */
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    WT_CHECK(wt_own_ms_since(t0, &m) < 50);
    weft_close(a);
    weft_close(c);
    weft_close(l);
    return 0;
}

RUN_TEST(accept4_sock_nonblock_is_honoured, root_accept4_nonblock, NULL,
         .procs = 2, .timeout = 10)

static int root_accept_blocking(void *arg)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    WT_REQUIRE(l >= 0);
    int c = connect_to(port);
    WT_REQUIRE(c >= 0);
    int a = weft_accept(l, NULL, NULL);
    WT_REQUIRE(a >= 0);
    WT_CHECK_EQ(weft_fcntl(a, F_GETFL) & O_NONBLOCK, 0);
    WT_CHECK(wt_kernel_flags(a) & O_NONBLOCK); /* weft's, underneath */
    /* Blocking semantics: a read waits for data instead of EAGAIN. */
    struct wt_late_write w = {c, WT_MS(30)};
    weft_thread *t = wt_go(wt_write_later, &w);
    char buf[8];
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_read(a, buf, sizeof buf), 4);
    WT_CHECK(wt_ms_since(t0) >= 25);
    wt_join(t);
    weft_close(a);
    weft_close(c);
    weft_close(l);
    return 0;
}

RUN_TEST(accept_without_flag_gives_a_blocking_socket,
         root_accept_blocking, NULL, .procs = 2, .timeout = 10)

struct late_connect {
    uint16_t port;
    uint16_t local_port;
    int fd;
};

static int connect_later(void *arg)
{
    struct late_connect *lc = arg;
    weft_sleep(WT_MS(30));
    lc->fd = connect_to(lc->port);
    WT_CHECK(lc->fd >= 0);
    lc->local_port = wt_local_port(lc->fd);
    return 0;
}

static int root_accept_parks(void *arg)
{
    struct late_connect lc = {.fd = -1};
    int l = wt_tcp_listen(&lc.port);
    WT_REQUIRE(l >= 0);
    weft_thread *t = wt_go(connect_later, &lc);
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    int64_t t0 = weft_now();
    int a = weft_accept(l, (struct sockaddr *)&peer, &len);
    long ms = wt_ms_since(t0);
    wt_join(t);
    WT_REQUIRE(a >= 0);
    WT_CHECK(ms >= 25);
    WT_CHECK_EQ(len, sizeof peer);
    WT_CHECK_EQ(ntohl(peer.sin_addr.s_addr), INADDR_LOOPBACK);
    WT_CHECK_EQ(ntohs(peer.sin_port), lc.local_port);
    weft_close(a);
    weft_close(lc.fd);
    weft_close(l);
    return 0;
}

RUN_TEST(accept_parks_until_a_client_connects, root_accept_parks, NULL,
         .procs = 1, .timeout = 10)

static int root_connect(void *arg)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    WT_REQUIRE(l >= 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = wt_loopback(port);
    WT_CHECK_EQ(weft_connect(c, (struct sockaddr *)&to, sizeof to), 0);
    int a = weft_accept(l, NULL, NULL);
    WT_REQUIRE(a >= 0);
    WT_CHECK_EQ(weft_send(c, "hi", 2, 0), 2);
    char buf[2];
    WT_CHECK_EQ(weft_recv(a, buf, 2, MSG_WAITALL), 2);
    WT_CHECK_EQ(weft_fcntl(c, F_GETFL) & O_NONBLOCK, 0);
    weft_close(a);
    weft_close(c);
    weft_close(l);
    return 0;
}

RUN_TEST(connect_to_a_listening_port, root_connect, NULL,
         .procs = 2, .timeout = 10)

static int root_refused(void *arg)
{
    /* Bound but not listening: the port is ours, and refuses. */
    uint16_t port;
    int b = wt_bound_socket(SOCK_STREAM, &port);
    WT_REQUIRE(b >= 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = wt_loopback(port);
    WT_CHECK_EQ(weft_connect(c, (struct sockaddr *)&to, sizeof to), -1);
    WT_CHECK_EQ(wt_errno(), ECONNREFUSED);
    weft_close(c);
    weft_close(b);
    return 0;
}

RUN_TEST(connect_to_a_closed_port_is_refused, root_refused, NULL,
         .procs = 2, .timeout = 10)

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
    WT_REQUIRE_EQ(used_socketpair(sv), 0);
    struct pollfd p = {sv[0], POLLIN, 0};
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_poll(&p, 1, 0), 0);
    WT_CHECK(wt_own_ms_since(t0, &m) < 50);
    WT_CHECK_EQ(p.revents, 0);
    close_both(sv);
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
    close_both(sv);
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
    close_both(sv);
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
    WT_REQUIRE_EQ(used_socketpair(sv), 0);
    WT_CHECK_EQ(weft_wait_fd(sv[0], POLLOUT, -1), 0);
    WT_CHECK_EQ(weft_write(sv[1], "r", 1), 1);
    WT_CHECK_EQ(weft_wait_fd(sv[0], POLLIN, -1), 0);
    WT_CHECK_EQ(weft_wait_fd(sv[0], POLLIN | POLLOUT, 0), 0);
    close_both(sv);
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
    close_both(sv);
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
    close_both(sv);
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
    close_both(sv);
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
    WT_REQUIRE_EQ(used_socketpair(sv), 0);
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

/* dup() of a socket weft made non-blocking underneath: the copy shares
 * that flag in the kernel, yet must keep the program's blocking view. */
static int root_dup_plain(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(used_socketpair(sv), 0);
    int d = dup(sv[1]);
    WT_REQUIRE(d >= 0);
    WT_CHECK_EQ(fcntl(d, F_GETFL) & O_NONBLOCK, 0);
    WT_CHECK_EQ(set_timeout(d, SO_RCVTIMEO, 2000), 0); /* bounds a failure */
    struct wt_late_write w = {sv[0], WT_MS(30)};
    weft_thread *t = wt_go(wt_write_later, &w);
    char buf[8];
    ssize_t r = read(d, buf, sizeof buf);
    WT_CHECK_MSG(r == 4, "read on the dup: %zd, errno %d", r, wt_errno());
    wt_join(t);
    weft_close(d);
    close_both(sv);
    return 0;
}

RUN_TEST(dup_of_a_used_socket_keeps_blocking_semantics, root_dup_plain, NULL,
         .procs = 2, .timeout = 10)

/* ========================================================= regular files */

static int root_file_pread_pwrite(void *arg)
{
    int fd = temp_file();
    WT_REQUIRE(fd >= 0);
    WT_CHECK_EQ(weft_pwrite(fd, "HELLO", 5, 100), 5);
    WT_CHECK_EQ(weft_pwrite(fd, "ab", 2, 0), 2);
    WT_CHECK_EQ(weft_fsync(fd), 0);
    char buf[128];
    memset(buf, 'x', sizeof buf);
    WT_CHECK_EQ(weft_pread(fd, buf, 2, 0), 2);
    WT_CHECK(!memcmp(buf, "ab", 2));
    WT_CHECK_EQ(weft_pread(fd, buf, 5, 100), 5);
    WT_CHECK(!memcmp(buf, "HELLO", 5));
    WT_CHECK_EQ(weft_pread(fd, buf, 98, 2), 98); /* the hole reads zeros */
    for (int i = 0; i < 98; i++)
        WT_CHECK_MSG(buf[i] == 0, "byte %d of the hole is %d", i + 2, buf[i]);
    WT_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0); /* pread/pwrite keep it */
    weft_close(fd);
    return 0;
}

RUN_TEST(pwrite_pread_round_trip_at_offsets, root_file_pread_pwrite, NULL,
         .procs = 2, .timeout = 10)

static int root_file_eof(void *arg)
{
    int fd = temp_file();
    WT_REQUIRE(fd >= 0);
    WT_CHECK_EQ(weft_pwrite(fd, "0123456789", 10, 0), 10);
    char buf[16];
    WT_CHECK_EQ(weft_pread(fd, buf, sizeof buf, 7), 3);
    WT_CHECK(!memcmp(buf, "789", 3));
    WT_CHECK_EQ(weft_pread(fd, buf, sizeof buf, 10), 0);
    WT_CHECK_EQ(weft_pread(fd, buf, sizeof buf, 4096), 0);
    WT_CHECK_EQ(weft_pread(fd, buf, sizeof buf, -1), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    weft_close(fd);
    return 0;
}

RUN_TEST(pread_is_short_at_eof, root_file_eof, NULL, .procs = 2, .timeout = 10)

/* A regular file takes and gives a large transfer whole, as libc's
 * pread/pwrite do on Linux (no short count short of an error or EOF). */
static int root_file_big(void *arg)
{
    size_t n = 9 << 20;
    unsigned char *out = malloc(n), *in = malloc(n);
    int fd = temp_file();
    WT_REQUIRE(out && in && fd >= 0);
    wt_fill_pattern(out, 0, n);
    WT_CHECK_EQ(weft_pwrite(fd, out, n, 4096), n);
    WT_CHECK_EQ(weft_pread(fd, in, n, 4096), n);
    WT_CHECK_EQ(wt_check_pattern(in, 0, n), n);
    WT_CHECK_EQ(weft_pread(fd, in, n, 4096 + 4), n - 4); /* short: EOF */
    free(out);
    free(in);
    weft_close(fd);
    return 0;
}

/* The time-out is generous: each page of the two 9 MiB buffers faults in,
 * and on a loaded VM that took up to 20 s. */
RUN_TEST(pwrite_pread_of_9mib_move_it_whole, root_file_big, NULL,
         .procs = 2, .timeout = 60)

static int root_file_offset(void *arg)
{
    int fd = temp_file();
    WT_REQUIRE(fd >= 0);
    WT_CHECK_EQ(weft_write(fd, "abc", 3), 3);
    WT_CHECK_EQ(weft_write(fd, "def", 3), 3);
    WT_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 6);
    WT_CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    char buf[16] = {0};
    WT_CHECK_EQ(weft_read(fd, buf, 4), 4);
    WT_CHECK(!memcmp(buf, "abcd", 4));
    WT_CHECK_EQ(weft_read(fd, buf, sizeof buf), 2);
    WT_CHECK(!memcmp(buf, "ef", 2));
    WT_CHECK_EQ(weft_read(fd, buf, sizeof buf), 0);
    weft_close(fd);
    return 0;
}

RUN_TEST(read_write_on_a_file_use_and_advance_its_offset,
         root_file_offset, NULL, .procs = 2, .timeout = 10)

static int root_file_errors(void *arg)
{
    int p[2];
    WT_REQUIRE_EQ(pipe(p), 0);
    char buf[4];
    WT_CHECK_EQ(weft_pread(p[0], buf, sizeof buf, 0), -1);
    WT_CHECK_EQ(wt_errno(), ESPIPE);
    WT_CHECK_EQ(weft_pwrite(p[1], "x", 1, 0), -1);
    WT_CHECK_EQ(wt_errno(), ESPIPE);
    WT_CHECK_EQ(weft_fsync(p[1]), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    weft_close(p[0]);
    weft_close(p[1]);
    WT_CHECK_EQ(weft_fsync(p[1]), -1);
    WT_CHECK_EQ(wt_errno(), EBADF);
    return 0;
}

RUN_TEST(pread_on_a_pipe_espipe_fsync_einval, root_file_errors, NULL,
         .procs = 2, .timeout = 10)

/* ================================================= EOF, reset, broken pipe */

struct eof_read {
    int fd;
    ssize_t got;
    int err;
};

static int eof_reader(void *arg)
{
    struct eof_read *e = arg;
    char b[8];
    e->got = weft_read(e->fd, b, sizeof b);
    e->err = wt_errno();
    return 0;
}

static int root_eof(void *arg)
{
    struct pair p;
    WT_REQUIRE_EQ(pair_open((int)(intptr_t)arg, &p), 0);
    struct eof_read e = {.fd = p.rd, .got = -2};
    weft_thread *t = wt_go(eof_reader, &e);
    WT_CHECK(wt_wait_io_waiting(1));
    WT_CHECK_EQ(weft_close(p.wr), 0);
    wt_join(t);
    WT_CHECK_EQ(e.got, 0);
    weft_close(p.rd);
    return 0;
}

RUN_TEST(read_returns_0_when_the_pipe_writer_closes, root_eof, K_PIPE,
         .procs = 2, .timeout = 10)
RUN_TEST(read_returns_0_when_the_tcp_peer_closes, root_eof, K_TCP,
         .procs = 2, .timeout = 10)

/* Data and the end of the stream arrive together, while the reader waits:
 * one edge announces both. The read that takes the data is short, and the
 * next must still see the end (no further edge will come for it). */
static int data_then_eof_reader(void *arg)
{
    struct eof_read *e = arg;
    char b[64];
    WT_CHECK_EQ(weft_read(e->fd, b, sizeof b), 5);
    e->got = weft_read(e->fd, b, sizeof b);
    e->err = wt_errno();
    return 0;
}

static int root_data_then_eof(void *arg)
{
    struct pair p;
    WT_REQUIRE_EQ(pair_open((int)(intptr_t)arg, &p), 0);
    struct eof_read e = {.fd = p.rd, .got = -2};
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
         root_data_then_eof, K_PIPE, .procs = 1, .timeout = 10)
RUN_TEST(short_read_with_the_end_behind_it_then_reads_0_unix,
         root_data_then_eof, K_UNIX, .procs = 1, .timeout = 10)
RUN_TEST(short_read_with_the_end_behind_it_then_reads_0_tcp,
         root_data_then_eof, K_TCP, .procs = 1, .timeout = 10)

static int root_reset(void *arg)
{
    int a, c;
    WT_REQUIRE_EQ(wt_tcp_pair(&a, &c), 0);
    struct eof_read e = {.fd = a, .got = -2};
    weft_thread *t = wt_go(eof_reader, &e);
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
    struct pair p;
    WT_REQUIRE_EQ(pair_open((int)(intptr_t)arg, &p), 0);
    WT_CHECK_EQ(weft_close(p.rd), 0);
    WT_CHECK_EQ(weft_write(p.wr, "lost", 4), -1);
    WT_CHECK_EQ(wt_errno(), EPIPE);
    weft_close(p.wr);
    return 0;
}

Test(io, write_to_a_closed_socket_peer_gives_epipe, .timeout = 10)
{
    signal(SIGPIPE, SIG_IGN);
    WT_RUN(root_epipe, (void *)K_UNIX, .procs = 2);
}

Test(io, write_to_a_closed_pipe_gives_epipe, .timeout = 10)
{
    signal(SIGPIPE, SIG_IGN);
    WT_RUN(root_epipe, (void *)K_PIPE, .procs = 2);
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

Test(io, send_msg_nosignal_gives_epipe_without_the_signal, .timeout = 10)
{
    signal(SIGPIPE, SIG_DFL);
    WT_RUN(root_nosignal, NULL, .procs = 2);
}

/* ========================================================== cancellation */

static int root_cancel_read(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct eof_read e = {.fd = sv[0], .got = -2};
    weft_thread *t = wt_go(eof_reader, &e);
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
    close_both(sv);
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
        struct eof_read e = {.fd = sv[0], .got = -2};
        weft_thread *t = wt_go(eof_reader, &e);
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
    close_both(sv);
    return 0;
}

Test(io, cancel_racing_data_loses_no_byte, .timeout = 20)
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
    drain_exactly(sv[0], 0, pre + (w.wrote > 0 ? (size_t)w.wrote : 0));
    close_both(sv);
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
    close_both(sv);
    return 0;
}

RUN_TEST(scope_deadline_ends_a_plain_read_with_etimedout,
         root_scope_deadline, NULL, .procs = 2, .timeout = 10)

/* ===================================================== socket time-outs */


/* arg: 0 sets SO_RCVTIMEO before weft first sees the fd, 1 after. */
static int root_rcvtimeo(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(arg ? used_socketpair(sv)
                      : socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    WT_CHECK_EQ(set_timeout(sv[1], SO_RCVTIMEO, 80), 0);
    char b;
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(read(sv[1], &b, 1), -1);
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    long ms = wt_ms_since(t0);
    WT_CHECK_MSG(ms >= 79 && wt_own_since(t0) < WT_MS(80 + WT_LATE_MS),
                 "80 ms SO_RCVTIMEO ended the read after %ld ms", ms);
    close_both(sv);
    return 0;
}

RUN_TEST(so_rcvtimeo_set_before_first_use_gives_eagain, root_rcvtimeo, 0,
         .procs = 2, .timeout = 10)
RUN_TEST(so_rcvtimeo_set_after_first_use_gives_eagain, root_rcvtimeo, 1,
         .procs = 2, .timeout = 10)

static int root_sndtimeo(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(used_socketpair(sv), 0);
    size_t pre = wt_fill_socket(sv[0]);
    WT_CHECK_EQ(set_timeout(sv[0], SO_SNDTIMEO, 80), 0);
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(write(sv[0], "more", 4), -1);
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    long ms = wt_ms_since(t0);
    WT_CHECK_MSG(ms >= 79 && wt_own_since(t0) < WT_MS(80 + WT_LATE_MS),
                 "80 ms SO_SNDTIMEO ended the write after %ld ms", ms);
    WT_CHECK(pre > 0);
    close_both(sv);
    return 0;
}

RUN_TEST(so_sndtimeo_gives_eagain_on_a_full_socket, root_sndtimeo, NULL,
         .procs = 2, .timeout = 10)

/* ============================================ the program's own O_NONBLOCK */

/* arg: 0 sets O_NONBLOCK before weft first sees the fd, 1 after. */
static int root_user_nonblock(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(arg ? used_socketpair(sv)
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
    close_both(sv);
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
    drain_exactly(sv[1], 0, r > 0 ? (size_t)r : 0);
    close_both(sv);
    return 0;
}

/* 30 s: the 8 MiB buffer faults in page by page, seconds on a loaded VM. */
RUN_TEST(o_nonblock_write_returns_a_short_count_then_eagain,
         root_user_nonblock_write, NULL, .procs = 2, .timeout = 30)

static int root_fionbio(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(used_socketpair(sv), 0);
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
    close_both(sv);
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
    WT_REQUIRE_EQ(used_socketpair(sv), 0);
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
    close_both(sv);
    return 0;
}

RUN_TEST(os_thread_read_on_a_socket_weft_used_still_blocks,
         root_os_thread_blocks, NULL, .procs = 2, .timeout = 10)

static int g_after_sv[2];

static int root_use_socket(void *arg)
{
    WT_REQUIRE_EQ(used_socketpair(g_after_sv), 0);
    return 0;
}

static void *os_write_later(void *arg)
{
    wt_block_ms(60);
    ssize_t r = write(*(int *)arg, "later", 5);
    (void)r;
    return NULL;
}

Test(io, os_thread_read_after_the_run_still_blocks, .timeout = 10)
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

static int root_accept_timeout(void *arg)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    WT_REQUIRE(l >= 0);
    WT_CHECK_EQ(set_timeout(l, SO_RCVTIMEO, 80), 0);
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
    int c0 = connect_to(port);
    int a0 = weft_accept(l, NULL, NULL);
    WT_CHECK(wt_kernel_flags(l) & O_NONBLOCK);
    struct os_accept o = {.l = l, .fd = -2};
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_accept_main, &o), 0);
    weft_sleep(WT_MS(60));
    WT_CHECK_MSG(!atomic_load(&o.done), "accept returned %d (errno %d)",
                 o.fd, o.err);
    int64_t connecting = wt_clock_ns();
    int c = connect_to(port);
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

static void *os_read_timeout_main(void *arg)
{
    struct os_reader *o = arg;
    int64_t t0 = wt_clock_ns();
    o->got = read(o->fd, o->buf, sizeof o->buf);
    o->err = errno;
    o->flags = (int)((wt_clock_ns() - t0) / 1000000); /* ms */
    atomic_store(&o->done, 1);
    return NULL;
}

static int root_os_rcvtimeo(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(used_socketpair(sv), 0);
    WT_CHECK_EQ(set_timeout(sv[1], SO_RCVTIMEO, 80), 0);
    struct os_reader o = {.fd = sv[1], .got = -2};
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_read_timeout_main, &o), 0);
    wt_yield_until(&o.done, 100000000L);
    pthread_join(pt, NULL);
    WT_CHECK_EQ(o.got, -1);
    WT_CHECK_EQ(o.err, EAGAIN);
    WT_CHECK_MSG(o.flags >= 79 && o.flags < 80 + WT_LATE_MS,
                 "gave up after %d ms", o.flags);
    close_both(sv);
    return 0;
}

RUN_TEST(os_thread_read_honours_so_rcvtimeo, root_os_rcvtimeo, NULL,
         .procs = 2, .timeout = 10)

/* ===================================================== errno is preserved */

#define SENTINEL 4242

enum { E_READ, E_POLL, E_ACCEPT, E_WRITE };

struct keep_errno {
    int op, fd;
    long result;
    int err;
};

static int errno_keeper(void *arg)
{
    struct keep_errno *k = arg;
    char buf[4096] = {0};
    struct pollfd p = {k->fd, POLLIN, 0};
    wt_set_errno(SENTINEL);
    switch (k->op) {
    case E_READ: k->result = read(k->fd, buf, sizeof buf); break;
    case E_POLL: k->result = poll(&p, 1, -1); break;
    case E_ACCEPT: k->result = accept(k->fd, NULL, NULL); break;
    case E_WRITE: k->result = write(k->fd, buf, sizeof buf); break;
    }
    k->err = wt_errno();
    return 0;
}

static int root_errno(void *arg)
{
    struct keep_errno k = {.op = (int)(intptr_t)arg, .result = -2};
    int sv[2] = {-1, -1}, l = -1;
    uint16_t port = 0;
    size_t pre = 0;
    if (k.op == E_ACCEPT) {
        l = wt_tcp_listen(&port);
        WT_REQUIRE(l >= 0);
        k.fd = l;
    } else {
        WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        k.fd = sv[1];
        if (k.op == E_WRITE)
            pre = wt_fill_socket(sv[1]);
    }
    weft_thread *t = wt_go(errno_keeper, &k);
    WT_CHECK(wt_wait_io_waiting(1)); /* it parked */
    if (k.op == E_ACCEPT) {
        int c = connect_to(port);
        WT_CHECK(c >= 0);
        wt_join(t);
        weft_close(c);
    } else if (k.op == E_WRITE) {
        WT_CHECK_EQ(skip_bytes(sv[0], pre + 4096), pre + 4096);
        wt_join(t);
    } else {
        WT_CHECK_EQ(weft_write(sv[0], "x", 1), 1);
        wt_join(t);
    }
    WT_CHECK_MSG(k.result >= 0, "the call failed: errno %d", k.err);
    WT_CHECK_EQ(k.err, SENTINEL);
    if (k.op == E_ACCEPT)
        weft_close((int)k.result);
    weft_close(l);
    close_both(sv);
    return 0;
}

RUN_TEST(errno_survives_a_parked_read, root_errno, E_READ,
         .procs = 2, .timeout = 10)
RUN_TEST(errno_survives_a_parked_poll, root_errno, E_POLL,
         .procs = 2, .timeout = 10)
RUN_TEST(errno_survives_a_parked_accept, root_errno, E_ACCEPT,
         .procs = 2, .timeout = 10)
RUN_TEST(errno_survives_a_parked_write, root_errno, E_WRITE,
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
    WT_CHECK_EQ(handoffs(), 0);
    weft_close(p[1]);
    return 0;
}

Test(io, stdin_pipe_read_parks_and_stays_blocking, .timeout = 10)
{
    WT_RUN(root_stdin, NULL, .procs = 1, .hog_ms = WT_NO_HANDOFF_MS);
}

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

Test(io, thousand_socketpairs_ping_pong, .timeout = 60)
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

/* ================================================= backend, stats, dump */

static char g_backend[8];
static unsigned g_io_waiting[2];

static int root_backend(void *arg)
{
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    memcpy(g_backend, st.io_backend, sizeof g_backend);
    return 0;
}

static void expect_backend(const char *want)
{
    WT_RUN(root_backend, NULL, .procs = 1);
    cr_assert(!strcmp(g_backend, want), "backend '%s', not %s", g_backend,
              want);
}

Test(io, stats_name_the_backend_weft_io_asks_for, .timeout = 10)
{
    const char *env = getenv("WEFT_IO");
    WT_RUN(root_backend, NULL, .procs = 1);
    if (env && (!strcmp(env, "uring") || !strcmp(env, "epoll")))
        cr_assert(!strcmp(g_backend, env), "backend '%s', not %s",
                  g_backend, env);
    else
        cr_assert(!strcmp(g_backend, "uring") || !strcmp(g_backend, "epoll"),
                  "backend '%s'", g_backend);
}

Test(io, weft_io_epoll_is_honoured, .timeout = 10)
{
    setenv("WEFT_IO", "epoll", 1);
    expect_backend("epoll");
}

Test(io, weft_io_uring_is_honoured, .timeout = 10)
{
    setenv("WEFT_IO", "uring", 1);
    expect_backend("uring");
}

Test(io, config_io_picks_the_backend, .timeout = 10)
{
    unsetenv("WEFT_IO");
    weft_config cfg = {0};
    cfg.io = WEFT_IO_EPOLL;
    cr_assert_eq(weft_run(root_backend, NULL, &cfg), 0);
    cr_assert(!strcmp(g_backend, "epoll"), "backend '%s'", g_backend);
    cfg.io = WEFT_IO_URING;
    cr_assert_eq(weft_run(root_backend, NULL, &cfg), 0);
    cr_assert(!strcmp(g_backend, "uring"), "backend '%s'", g_backend);
    wt_assert_clean();
}

Test(io, config_io_out_of_range_is_einval, .timeout = 10)
{
    weft_config cfg = {0};
    cfg.io = 3;
    cr_assert_eq(weft_run(root_backend, NULL, &cfg), EINVAL);
}

static int root_io_waiting(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct eof_read e = {.fd = sv[0], .got = -2};
    weft_thread *t = wt_go(eof_reader, &e);
    WT_CHECK(wt_wait_io_waiting(1));
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    g_io_waiting[0] = st.io_waiting;
    WT_CHECK_EQ(weft_write(sv[1], "x", 1), 1);
    wt_join(t);
    WT_CHECK_EQ(weft_stats(&st), 0);
    g_io_waiting[1] = st.io_waiting;
    close_both(sv);
    return 0;
}

Test(io, stats_count_threads_waiting_on_fds, .timeout = 10)
{
    WT_RUN(root_io_waiting, NULL, .procs = 2);
    cr_assert_eq(g_io_waiting[0], 1);
    cr_assert_eq(g_io_waiting[1], 0);
}

static char g_dump[16384];
static int g_dump_fd;

static int root_dump_read(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    g_dump_fd = sv[0];
    struct eof_read e = {.fd = sv[0], .got = -2};
    weft_thread *t = wt_go_named("fd-reader", eof_reader, &e);
    WT_CHECK(wt_wait_io_waiting(1));
    int out = memfd_create("weft-dump", MFD_CLOEXEC);
    WT_REQUIRE(out >= 0);
    weft_dump(out);
    WT_CHECK(pread(out, g_dump, sizeof g_dump - 1, 0) > 0);
    weft_close(out);
    WT_CHECK_EQ(weft_cancel(t), 0);
    wt_join(t);
    close_both(sv);
    return 0;
}

Test(io, dump_shows_a_thread_parked_in_read, .timeout = 10)
{
    WT_RUN(root_dump_read, NULL, .procs = 2);
    char want[64];
    snprintf(want, sizeof want, "fd readable fd %d", g_dump_fd);
    const char *line = strstr(g_dump, "'fd-reader'");
    cr_assert_not_null(line, "no fd-reader in the dump:\n%s", g_dump);
    const char *end = strchr(line, '\n');
    cr_assert(end && strstr(line, want) && strstr(line, want) < end,
              "no '%s' on fd-reader's line:\n%s", want, g_dump);
}

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
