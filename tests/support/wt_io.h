/* SPDX-License-Identifier: MIT */
/*
 * wt_io.h — helpers for the I/O suites (tests/io_*.c, tests/hooks.c), on
 * top of wt.h.
 *
 *   WT_NO_HANDOFF_MS    the hog threshold (WT_RUN's .hog_ms) of tests
 *                       that prove a carrier stayed free: so large that
 *                       no hand-off can hide a blocked carrier
 *   wt_tcp_listen       a TCP listener on 127.0.0.1, ephemeral port
 *   wt_tcp_pair         a connected TCP pair on loopback (virtual thread)
 *   wt_kernel_flags     an fd's status flags as the kernel has them, read
 *                       past weft's fcntl, which hides its own O_NONBLOCK
 *   wt_pattern          byte i of a deterministic stream, to check order
 *   wt_fill_socket      fills a socket's send buffer without waiting
 *   wt_ticker_*         a virtual thread counting 1 ms sleeps: it advances
 *                       only while its carrier is free
 *   wt_seed / wt_rand   seeded randomness (WT_SEED=<n> replays a run)
 *   wt_wait_io_waiting  waits until n virtual threads wait on fds
 *   wt_join             joins, returning the thread's result
 *   wt_write_later      a thread writing "data" after a delay
 *   wt_pair_open        a connected pipe, socketpair or TCP pair (wt_pair)
 *   wt_used_socketpair  a socketpair weft has used (non-blocking beneath)
 *   wt_close_both       closes both fds of an array of two
 *   wt_tcp_connect      a TCP socket connected to 127.0.0.1:port
 *   wt_set_timeout      SO_RCVTIMEO / SO_SNDTIMEO in ms
 *   wt_read_once        a thread reading once, keeping result and errno
 *   wt_drain_exactly    reads n bytes of the pattern, then nothing more
 *   wt_skip_bytes       reads and drops n bytes
 *   wt_handoffs         the runtime's hand-offs so far
 *
 * The helpers that check something (wt_fill_socket, wt_ticker_*, wt_join)
 * record a failure at their caller's line (wt_report.h).
 */
#ifndef WT_IO_H
#define WT_IO_H

#include "wt.h"
#include "wt_sched.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

/* Time bounds: how much slower than asked a wait may end. */
#define WT_LATE_MS (WT_SANITIZED ? 2000 : 500)

/* The hog threshold of tests that prove a carrier stayed free: with one P
 * and no hand-off possible, the other threads run only if it did. */
#define WT_NO_HANDOFF_MS 10000

static inline int wt_kernel_flags(int fd)
{
    return (int)syscall(SYS_fcntl, fd, F_GETFL);
}

static inline struct sockaddr_in wt_loopback(uint16_t port)
{
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static inline uint16_t wt_local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &len))
        return 0;
    return ntohs(a.sin_port);
}

/* A socket of type bound to 127.0.0.1 on an ephemeral port; -1 on error. */
static inline int wt_bound_socket(int type, uint16_t *port)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = wt_loopback(0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0)
            weft_close(fd);
        return -1;
    }
    *port = wt_local_port(fd);
    return fd;
}

/* A listening TCP socket on 127.0.0.1; *port gets its port. -1 on error. */
static inline int wt_tcp_listen(uint16_t *port)
{
    int fd = wt_bound_socket(SOCK_STREAM, port);
    if (fd >= 0 && listen(fd, 128)) {
        weft_close(fd);
        return -1;
    }
    return fd;
}

/* A connected TCP pair on loopback, Nagle off (*a accepted, *c the client).
 * Returns 0 or an errno. Runs on: a virtual thread. */
static inline int wt_tcp_pair(int *a, int *c)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    if (l < 0)
        return wt_errno();
    struct sockaddr_in addr = wt_loopback(port);
    int one = 1;
    *c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*c < 0 || weft_connect(*c, (struct sockaddr *)&addr, sizeof addr) ||
        (*a = weft_accept(l, NULL, NULL)) < 0) {
        int e = wt_errno();
        if (*c >= 0)
            weft_close(*c);
        weft_close(l);
        return e;
    }
    weft_close(l);
    setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(*c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

static inline unsigned char wt_pattern(size_t i)
{
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    return (unsigned char)(x >> 56 ^ i);
}

static inline void wt_fill_pattern(unsigned char *buf, size_t from, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = wt_pattern(from + i);
}

/* The first index in buf[0..n) that is not the pattern from `from`, or n. */
static inline size_t wt_check_pattern(const unsigned char *buf, size_t from,
                                      size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != wt_pattern(from + i))
            return i;
    return n;
}

/* Fills the send buffer of fd without waiting, with the pattern from 0;
 * returns the bytes it took. A send that stops for another reason than a
 * full buffer is recorded at `at`. Runs on: a virtual thread. */
static inline size_t wt_fill_socket_at(struct wt_here at, int fd)
{
    unsigned char buf[4096];
    size_t total = 0;
    for (;;) {
        wt_fill_pattern(buf, total, sizeof buf);
        ssize_t r = weft_send(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r <= 0)
            break;
        total += (size_t)r;
    }
    int e = wt_errno();
    if (e != EAGAIN)
        wt_fail_eq(at.file, at.line, "errno after wt_fill_socket", "EAGAIN", e,
                   EAGAIN);
    return total;
}

#define wt_fill_socket(fd) wt_fill_socket_at(WT_HERE, fd)

/* ----------------------------------------------------------------- ticker */

struct wt_ticker {
    atomic_long ticks;
    atomic_int stop;
    weft_thread *t;
};

static int wt_ticker_main(void *arg)
{
    struct wt_ticker *k = arg;
    while (!atomic_load(&k->stop)) {
        atomic_fetch_add(&k->ticks, 1);
        weft_sleep(WT_MS(1));
    }
    return 0;
}

static inline void wt_ticker_start_at(struct wt_here at, struct wt_ticker *k)
{
    atomic_store(&k->ticks, 0);
    atomic_store(&k->stop, 0);
    k->t = wt_go_named_at(at, "ticker", wt_ticker_main, k);
}

static inline void wt_ticker_stop_at(struct wt_here at, struct wt_ticker *k)
{
    atomic_store(&k->stop, 1);
    int rc = k->t ? weft_join(k->t, NULL) : 0;
    if (rc)
        wt_fail_eq(at.file, at.line, "weft_join(ticker)", "0", rc, 0);
    k->t = NULL;
}

#define wt_ticker_start(k) wt_ticker_start_at(WT_HERE, k)
#define wt_ticker_stop(k) wt_ticker_stop_at(WT_HERE, k)

/* Ticks a free carrier makes at least while a call blocks for ~100 ms on
 * an idle machine. A carrier the call blocks makes at most 2. */
#define WT_MIN_TICKS (WT_SANITIZED ? 5 : 20)

/* The ticks to ask of a ticker whose carrier should have been free for the
 * `ms` a call took, and which waited `waited` ns for a CPU meanwhile
 * (wt_sched_waited on that carrier): WT_MIN_TICKS per 100 ms that the
 * carrier had a CPU when it wanted one. Each tick is a wake-up, and on a
 * loaded machine each wake-up waits for a CPU: that time is the kernel's.
 * A carrier blocked in the call is not runnable, waits for no CPU, and is
 * asked the full count; one the kernel kept off the CPU for nearly all of
 * the call (under 15 ms left) is asked for fewer than 3, which a blocked
 * carrier also makes: such a run tells nothing either way. */
static inline long wt_min_ticks(long ms, int64_t waited)
{
    long free_ms = ms - (long)(waited / 1000000);
    return WT_MIN_TICKS * free_ms / 100;
}

/* ------------------------------------------------------------ randomness */

/* The seed of this test process: WT_SEED from the environment, else the
 * clock. Printed, so that a failing run can be replayed. */
static inline uint64_t wt_seed(void)
{
    const char *s = getenv("WT_SEED");
    uint64_t seed = s && *s ? strtoull(s, NULL, 0) : (uint64_t)wt_clock_ns();
    fprintf(stderr, "seed %llu (WT_SEED=%llu replays it)\n",
            (unsigned long long)seed, (unsigned long long)seed);
    return seed;
}

/* splitmix64: a small, good generator with one word of state. */
static inline uint64_t wt_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* -------------------------------------------------------------- waiting */

/* Joins t and returns its result; a join that fails is recorded at `at`
 * (t NULL: a failed spawn, already recorded, gives -1). */
static inline int wt_join_at(struct wt_here at, weft_thread *t)
{
    int r = -1;
    int rc = t ? weft_join(t, &r) : 0;
    if (rc)
        wt_fail_eq(at.file, at.line, "weft_join(t, &r)", "0", rc, 0);
    return r;
}

#define wt_join(t) wt_join_at(WT_HERE, t)

/* A virtual thread that writes "data" to fd after delay ns. */
struct wt_late_write {
    int fd;
    int64_t delay;
};

static int wt_write_later(void *arg)
{
    struct wt_late_write *w = arg;
    weft_sleep(w->delay);
    WT_CHECK_EQ(weft_write(w->fd, "data", 4), 4);
    return 0;
}

/* Waits (1 ms sleeps, 5 s at most) until at least n virtual threads wait
 * on fds. Returns whether they do. Runs on: a virtual thread. */
static inline bool wt_wait_io_waiting(unsigned n)
{
    weft_runtime_stats st;
    for (int i = 0; i < 5000; i++) {
        if (weft_stats(&st) == 0 && st.io_waiting >= n)
            return true;
        weft_sleep(WT_MS(1));
    }
    return false;
}

/* Milliseconds since t0 (weft_now clock). */
static inline long wt_ms_since(int64_t t0)
{
    return (long)((weft_now() - t0) / 1000000);
}

/* Milliseconds since t0 that were weft's: less the time the calling
 * thread's carrier waited for a CPU since mark m (taken just before t0),
 * which a loaded machine adds to a call that returns at once. */
static inline long wt_own_ms_since(int64_t t0, const struct wt_sched_mark *m)
{
    return (long)((weft_now() - t0 - wt_sched_waited(m)) / 1000000);
}

/* ------------------------------------------------ pairs of connected fds */

enum wt_pair_kind { WT_PIPE, WT_UNIX, WT_TCP };

struct wt_pair {
    int rd, wr;
};

/* A connected pair of `kind`: rd reads what wr writes. Returns 0 / errno.
 * Runs on: a virtual thread. */
static inline int wt_pair_open(int kind, struct wt_pair *p)
{
    int fds[2];
    if (kind == WT_TCP)
        return wt_tcp_pair(&p->rd, &p->wr);
    int r = kind == WT_PIPE
                ? pipe2(fds, O_CLOEXEC)
                : socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
    if (r)
        return wt_errno();
    p->rd = fds[0];
    p->wr = fds[1];
    return 0;
}

static inline void wt_pair_close(struct wt_pair *p)
{
    weft_close(p->rd);
    weft_close(p->wr);
}

static inline void wt_close_both(int fds[2])
{
    weft_close(fds[0]);
    weft_close(fds[1]);
}

/* A socketpair weft has used (a byte each way): it made both ends
 * non-blocking underneath. Returns 0 / errno. */
static inline int wt_used_socketpair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return wt_errno();
    char c;
    if (weft_write(sv[0], "u", 1) != 1 || weft_read(sv[1], &c, 1) != 1)
        return EIO;
    return 0;
}

/* A TCP socket connected to 127.0.0.1:port; -1 on error. */
static inline int wt_tcp_connect(uint16_t port)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = wt_loopback(port);
    if (c >= 0 && weft_connect(c, (struct sockaddr *)&a, sizeof a)) {
        weft_close(c);
        return -1;
    }
    return c;
}

/* Sets SO_RCVTIMEO or SO_SNDTIMEO (opt) of fd to ms. */
static inline int wt_set_timeout(int fd, int opt, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

/* ------------------------------------------------- reading what arrives */

/* What wt_read_once got: a virtual thread reads fd once (up to 8 bytes). */
struct wt_one_read {
    int fd;
    ssize_t got;
    int err;
};

static inline int wt_read_once(void *arg)
{
    struct wt_one_read *e = arg;
    char b[8];
    e->got = weft_read(e->fd, b, sizeof b);
    e->err = wt_errno();
    return 0;
}

/* Reads exactly n bytes from fd, checking they are the pattern from
 * `from`; then checks that nothing more arrives within 50 ms. A failure
 * is recorded at `at`. Runs on: a virtual thread. */
static inline void wt_drain_exactly_at(struct wt_here at, int fd,
                                       size_t from, size_t n)
{
    unsigned char buf[8192];
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < sizeof buf ? n - got : sizeof buf;
        ssize_t r = weft_read(fd, buf, want);
        if (r <= 0) {
            wt_fail(at.file, at.line, "read after %zu of %zu bytes: %zd",
                    got, n, r);
            return;
        }
        size_t bad = wt_check_pattern(buf, from + got, (size_t)r);
        if (bad != (size_t)r)
            wt_fail(at.file, at.line, "byte %zu is wrong", from + got + bad);
        got += (size_t)r;
    }
    int rc = weft_wait_fd(fd, POLLIN, weft_now() + WT_MS(50));
    if (rc != ETIMEDOUT)
        wt_fail_eq(at.file, at.line, "nothing more: weft_wait_fd", "ETIMEDOUT",
                   rc, ETIMEDOUT);
}

#define wt_drain_exactly(fd, from, n) wt_drain_exactly_at(WT_HERE, fd, from, n)

/* Reads and drops n bytes from fd; returns how many it got. */
static inline size_t wt_skip_bytes(int fd, size_t n)
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

/* The hand-offs so far (0 proves no carrier was found stuck); a failed
 * weft_stats is recorded at `at`. */
static inline unsigned long long wt_handoffs_at(struct wt_here at)
{
    weft_runtime_stats st;
    int rc = weft_stats(&st);
    if (rc)
        wt_fail_eq(at.file, at.line, "weft_stats(&st)", "0", rc, 0);
    return rc ? ~0ull : st.handoffs;
}

#define wt_handoffs() wt_handoffs_at(WT_HERE)

#endif /* WT_IO_H */
