/* SPDX-License-Identifier: MIT */
/*
 * hooks.c — libweft's libc interposition: read(), poll(), nanosleep() and
 * the other blocking libc entry points, called by their libc names from
 * virtual threads, park the thread instead of blocking its carrier; code
 * that was never written for weft (a binary run with LD_PRELOAD) keeps
 * working; WEFT_HOOKS=0 turns the hooks off. Real libraries (libcurl and
 * the others) are the compatibility matrix's, tests/compat/.
 *
 * Parking is proved with one P and a hog threshold of 10 s: a ticker
 * thread on the same P advances while the call waits only if the carrier
 * was free, since no hand-off can move it. What ends the wait is done by a
 * plain OS thread with raw system calls, so a call that wrongly blocks its
 * carrier still returns and the test fails instead of hanging.
 */
#include "wt_io.h"

#include <limits.h>
#include <netdb.h>
#include <spawn.h>
#include <sys/wait.h>

#define RUN_TEST(...) WT_RUN_TEST(hooks, __VA_ARGS__)

extern char **environ;

/* The fortified read that _FORTIFY_SOURCE builds call instead of read(). */
extern ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);

/* ============================================== each blocking call parks */

enum {
    H_READ, H_READ_CHK, H_RECV, H_WRITE, H_SEND, H_ACCEPT, H_POLL, H_PPOLL,
    H_NANOSLEEP, H_USLEEP, H_SLEEP, H_CLOCK_REL, H_CLOCK_ABS,
};

struct blocked {
    int op;
    int fd;        /* what the call waits on */
    int peer;      /* what the OS thread acts on */
    uint16_t port; /* H_ACCEPT: where the OS thread connects */
    size_t pre;    /* H_WRITE, H_SEND: bytes already in the full socket */
    struct wt_ticker tick;
    long ticks, ms, result;
    int64_t waited; /* the carrier's wait for a CPU during the call */
    int err;
    atomic_bool started; /* the call's clock runs: the OS thread's may too */
};

static struct timespec in_ms(clockid_t clk, long ms)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_nsec += (ms % 1000) * 1000000;
    ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    return ts;
}

/* The call under test, by its libc name. */
static long blocking_call(struct blocked *b)
{
    char buf[4096] = {0};
    struct pollfd p = {b->fd, POLLIN, 0};
    struct timespec ms100 = {0, 100 * 1000000}, s5 = {5, 0};
    struct timespec at = in_ms(CLOCK_MONOTONIC, 100);
    switch (b->op) {
    case H_READ: return read(b->fd, buf, 64);
    case H_READ_CHK: return __read_chk(b->fd, buf, 64, sizeof buf);
    case H_RECV: return recv(b->fd, buf, 64, 0);
    case H_WRITE: return write(b->fd, buf, sizeof buf);
    case H_SEND: return send(b->fd, buf, sizeof buf, 0);
    case H_ACCEPT: return accept(b->fd, NULL, NULL);
    case H_POLL: return poll(&p, 1, 5000);
    case H_PPOLL: return ppoll(&p, 1, &s5, NULL);
    case H_NANOSLEEP: return nanosleep(&ms100, NULL);
    case H_USLEEP: return usleep(100000);
    case H_SLEEP: return sleep(1);
    case H_CLOCK_REL: return clock_nanosleep(CLOCK_MONOTONIC, 0, &ms100, NULL);
    case H_CLOCK_ABS:
        return clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
    }
    return -1;
}

/* What the call returns once unblocked, and about how long it waits. */
static long expected_result(int op)
{
    switch (op) {
    case H_READ: case H_READ_CHK: case H_RECV: return 5;
    case H_WRITE: case H_SEND: return 4096;
    case H_POLL: case H_PPOLL: return 1;
    default: return 0;
    }
}

static int blocked_main(void *arg)
{
    struct blocked *b = arg;
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    long k0 = atomic_load(&b->tick.ticks);
    int64_t t0 = weft_now();
    atomic_store(&b->started, true);
    b->result = blocking_call(b);
    b->err = wt_errno();
    b->ms = wt_ms_since(t0);
    b->ticks = atomic_load(&b->tick.ticks) - k0;
    b->waited = wt_sched_waited(&m);
    return 0;
}

/* 100 ms after the virtual thread started its clock (on a loaded machine
 * it may start well after this thread), with raw system calls: data for
 * a reader, room for a writer, a client for accept. */
static void *os_unblock(void *arg)
{
    struct blocked *b = arg;
    while (!atomic_load(&b->started))
        wt_block_ms(1);
    wt_block_ms(100);
    if (b->op == H_WRITE || b->op == H_SEND) {
        char buf[8192];
        for (size_t got = 0; got < b->pre + 4096;) {
            long r = syscall(SYS_read, b->peer, buf, sizeof buf);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
    } else if (b->op == H_ACCEPT) {
        struct sockaddr_in a = wt_loopback(b->port);
        b->peer = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
        syscall(SYS_connect, b->peer, (struct sockaddr *)&a, sizeof a);
    } else {
        long r = syscall(SYS_write, b->peer, "later", 5);
        (void)r;
    }
    return NULL;
}

static bool is_sleep(int op)
{
    return op >= H_NANOSLEEP;
}

/* Sets up b->fd (and b->peer) for b's call. */
static int blocked_setup(struct blocked *b)
{
    int sv[2];
    if (b->op == H_ACCEPT) {
        b->fd = wt_tcp_listen(&b->port);
        return b->fd >= 0 ? 0 : wt_errno();
    }
    if (is_sleep(b->op))
        return 0;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return wt_errno();
    b->fd = sv[0];
    b->peer = sv[1];
    if (b->op == H_WRITE || b->op == H_SEND)
        b->pre = wt_fill_socket(b->fd);
    return 0;
}

static int root_parks(void *arg)
{
    struct blocked b = {.op = (int)(intptr_t)arg, .fd = -1, .peer = -1,
                        .result = -2};
    WT_REQUIRE_EQ(blocked_setup(&b), 0);
    wt_ticker_start(&b.tick);
    weft_sleep(WT_MS(10)); /* the ticker runs */
    pthread_t pt;
    bool os = !is_sleep(b.op);
    if (os)
        WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_unblock, &b), 0);
    wt_join(wt_go_named("blocked", blocked_main, &b));
    if (os)
        pthread_join(pt, NULL);
    wt_ticker_stop(&b.tick);
    long want_ms = b.op == H_SLEEP ? 1000 : 100;
    if (b.op == H_ACCEPT)
        WT_CHECK_MSG(b.result >= 0, "accept: -1, errno %d", b.err);
    else
        WT_CHECK_EQ(b.result, expected_result(b.op));
    WT_CHECK_MSG(b.ms >= want_ms - 10, "returned after %ld ms", b.ms);
    WT_CHECK_MSG(b.ticks >= wt_min_ticks(b.ms, b.waited),
                 "the ticker ran %ld times while the call waited %ld ms "
                 "(%lld ms of it for a CPU)", b.ticks, b.ms,
                 (long long)b.waited / 1000000);
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    WT_CHECK_EQ(st.handoffs, 0);
    if (b.op == H_ACCEPT)
        weft_close((int)b.result);
    weft_close(b.fd);
    weft_close(b.peer);
    return 0;
}

#define PARKS(name, op)                                                    \
    Test(hooks, name##_parks_only_its_thread, .timeout = 10)               \
    {                                                                      \
        WT_RUN(root_parks, (void *)(op),                                   \
               .procs = 1, .hog_ms = WT_NO_HANDOFF_MS);                    \
    }

PARKS(read, H_READ)
PARKS(read_chk, H_READ_CHK)
PARKS(recv, H_RECV)
PARKS(write, H_WRITE)
PARKS(send, H_SEND)
PARKS(accept, H_ACCEPT)
PARKS(poll, H_POLL)
PARKS(ppoll, H_PPOLL)
PARKS(nanosleep, H_NANOSLEEP)
PARKS(usleep, H_USLEEP)
PARKS(sleep, H_SLEEP)
PARKS(clock_nanosleep, H_CLOCK_REL)
PARKS(clock_nanosleep_abstime, H_CLOCK_ABS)

/* ------------------------------------------------------ the other calls */

static int root_short_sleeps(void *arg)
{
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(sleep(0), 0);
    WT_CHECK_EQ(usleep(0), 0);
    struct timespec past = {0, 0};
    WT_CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL),
                0);
    WT_CHECK(wt_own_ms_since(t0, &m) < 50);
    struct timespec bad = {0, 1000000000};
    WT_CHECK_EQ(nanosleep(&bad, NULL), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    t0 = weft_now();
    struct timespec ms5 = {0, 5 * 1000000};
    WT_CHECK_EQ(nanosleep(&ms5, NULL), 0);
    WT_CHECK(weft_now() - t0 >= WT_MS(5));
    return 0;
}

RUN_TEST(zero_past_and_invalid_sleeps_return_at_once, root_short_sleeps, NULL,
         .procs = 1, .timeout = 10)

struct cancelled_sleep {
    int rc, err;
    struct timespec rem;
    int64_t start;
    atomic_int started; /* start is set */
};

static int long_nanosleep(void *arg)
{
    struct cancelled_sleep *c = arg;
    struct timespec s5 = {5, 0};
    c->start = weft_now();
    atomic_store(&c->started, 1);
    c->rc = nanosleep(&s5, &c->rem);
    c->err = wt_errno();
    return 0;
}

static int root_cancel_sleep(void *arg)
{
    struct cancelled_sleep c = {.rc = -2};
    weft_thread *t = wt_go(long_nanosleep, &c);
    /* Cancelled 50 ms into its sleep, however late it first runs. */
    for (int i = 0; i < 5000 && !atomic_load(&c.started); i++)
        weft_sleep(WT_MS(1));
    weft_sleep(WT_MS(50));
    int64_t cancelled = weft_now();
    WT_CHECK_EQ(weft_cancel(t), 0);
    wt_join(t);
    WT_CHECK_EQ(c.rc, -1);
    WT_CHECK_EQ(c.err, ECANCELED);
    /* What is left is 5 s less the time it slept, which began when the
     * thread first ran (later than the root's sleep, on a loaded machine). */
    int64_t left = c.rem.tv_sec * 1000000000LL + c.rem.tv_nsec;
    int64_t slept = cancelled - c.start;
    WT_CHECK_MSG(slept > 0 && left <= WT_MS(5000) - slept + WT_MS(5) &&
                     left > WT_MS(3000),
                 "%lld ms left of 5 s after %lld ms of sleep",
                 (long long)(left / 1000000), (long long)(slept / 1000000));
    return 0;
}

RUN_TEST(cancelled_nanosleep_gives_ecanceled_and_the_time_left,
         root_cancel_sleep, NULL, .procs = 2, .timeout = 10)

struct forever_sleep {
    int rc, err;
    long ms;
};

/* nanosleep({LONG_MAX, 0}): a common way to say "for ever". */
static int sleep_forever(void *arg)
{
    struct forever_sleep *f = arg;
    struct timespec ever = {LONG_MAX, 999999999};
    int64_t t0 = weft_now();
    f->rc = nanosleep(&ever, NULL);
    f->err = wt_errno();
    f->ms = wt_ms_since(t0);
    return 0;
}

static int root_sleep_forever(void *arg)
{
    struct forever_sleep f = {.rc = -2};
    weft_thread *t = wt_go(sleep_forever, &f);
    weft_sleep(WT_MS(50));
    WT_CHECK_EQ(weft_cancel(t), 0);
    wt_join(t);
    WT_CHECK_MSG(f.rc == -1 && f.err == ECANCELED,
                 "nanosleep for ever returned %d (errno %d) after %ld ms",
                 f.rc, f.err, f.ms);
    return 0;
}

RUN_TEST(nanosleep_for_ever_sleeps_until_cancelled, root_sleep_forever, NULL,
         .procs = 2, .timeout = 10)

static int root_connect(void *arg)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    WT_REQUIRE(l >= 0);
    struct sockaddr_in to = wt_loopback(port);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    WT_CHECK_EQ(connect(c, (struct sockaddr *)&to, sizeof to), 0);
    /* It went through weft: non-blocking underneath, blocking as seen. */
    WT_CHECK(wt_kernel_flags(c) & O_NONBLOCK);
    WT_CHECK_EQ(fcntl(c, F_GETFL) & O_NONBLOCK, 0);
    int a = accept(l, NULL, NULL);
    WT_CHECK(a >= 0);
    close(a);
    close(c);
    close(l); /* now refused */
    c = socket(AF_INET, SOCK_STREAM, 0);
    WT_CHECK_EQ(connect(c, (struct sockaddr *)&to, sizeof to), -1);
    WT_CHECK_EQ(wt_errno(), ECONNREFUSED);
    close(c);
    return 0;
}

RUN_TEST(connect_goes_through_weft_and_reports_refusal, root_connect, NULL,
         .procs = 2, .timeout = 10)

/* arg: 0 duplicates with dup2, 1 with fcntl(F_DUPFD). */
static int root_dup(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char c;
    WT_CHECK_EQ(write(sv[0], "u", 1), 1);
    WT_CHECK_EQ(read(sv[1], &c, 1), 1); /* weft knows sv[1] now */
    int d = arg ? fcntl(sv[1], F_DUPFD, 100) : dup2(sv[1], 100);
    WT_REQUIRE_EQ(d, 100);
    WT_CHECK(wt_kernel_flags(d) & O_NONBLOCK); /* shared with sv[1] */
    WT_CHECK_EQ(fcntl(d, F_GETFL) & O_NONBLOCK, 0);
    struct wt_late_write w = {sv[0], WT_MS(30)};
    weft_thread *t = wt_go(wt_write_later, &w);
    char buf[8];
    WT_CHECK_EQ(read(d, buf, sizeof buf), 4); /* parks, no EAGAIN */
    wt_join(t);
    close(d);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

RUN_TEST(dup2_copy_keeps_blocking_semantics, root_dup, 0,
         .procs = 2, .timeout = 10)
RUN_TEST(f_dupfd_copy_keeps_blocking_semantics, root_dup, 1,
         .procs = 2, .timeout = 10)

/* ============================================================ getaddrinfo */

enum { NRESOLVERS = 50 };

/* The name to resolve: "localhost" where the system resolves it (a
 * minimal chroot may have no /etc/hosts), else the numeric address, which
 * goes through the same hook and pool. Decided on an OS thread, where
 * getaddrinfo is plain libc. */
static const char *g_host = "localhost";

static void *probe_localhost(void *arg)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo("localhost", "80", &hints, &res) == 0)
        freeaddrinfo(res);
    else
        g_host = "127.0.0.1";
    return arg;
}

static int resolve_localhost(void *arg)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    WT_REQUIRE_EQ(getaddrinfo(g_host, "80", &hints, &res), 0);
    WT_REQUIRE(res != NULL);
    const struct sockaddr_in *a = (const struct sockaddr_in *)res->ai_addr;
    WT_CHECK_EQ(res->ai_family, AF_INET);
    WT_CHECK_EQ(ntohl(a->sin_addr.s_addr), INADDR_LOOPBACK);
    WT_CHECK_EQ(ntohs(a->sin_port), 80);
    freeaddrinfo(res);
    return 0;
}

static int root_resolve(void *arg)
{
    pthread_t probe;
    WT_REQUIRE_EQ(pthread_create(&probe, NULL, probe_localhost, NULL), 0);
    pthread_join(probe, NULL);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    for (int i = 0; i < NRESOLVERS; i++)
        WT_REQUIRE(wt_go(resolve_localhost, NULL) != NULL);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    WT_CHECK_EQ(getaddrinfo("not-a-number", NULL, &hints, &res), EAI_NONAME);
    return 0;
}

RUN_TEST(getaddrinfo_from_many_threads, root_resolve, NULL,
         .procs = 2, .timeout = 20)

static int resolve_cancelled(void *arg)
{
    struct addrinfo *res = NULL;
    weft_cancel(weft_self());
    WT_CHECK_EQ(getaddrinfo("localhost", "80", NULL, &res), EAI_SYSTEM);
    WT_CHECK_EQ(wt_errno(), ECANCELED);
    WT_CHECK(res == NULL);
    return 0;
}

RUN_TEST(getaddrinfo_on_a_cancelled_thread_gives_eai_system,
         resolve_cancelled, NULL, .procs = 1, .timeout = 10)

/* ================================================ helper programs outside */

/* Runs path with extra environment entries; returns its exit status and
 * its standard output in out. */
static int run_prog(const char *path, const char *const *env, char *out,
                    size_t outlen)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    char *envp[256];
    int n = 0;
    for (int i = 0; env[i]; i++)
        envp[n++] = (char *)env[i];
    for (char **e = environ; *e && n < 255; e++)
        envp[n++] = *e; /* the first of a name wins */
    envp[n] = NULL;
    char *argv[] = {(char *)path, NULL};
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, path, &fa, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    size_t got = 0;
    ssize_t r;
    while (got < outlen - 1 &&
           (r = read(p[0], out + got, outlen - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = 0;
    close(p[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* Runs the hooks_off helper; returns the ticks its ticker made while its
 * reader waited, and checks the read itself. *min: the ticks to ask of a
 * free carrier (wt_min_ticks of the wait and of its carrier's wait for a
 * CPU meanwhile). */
static long hooks_off_ticks(const char *hooks, long *min)
{
    wt_skip_without_backend();
    char env[32], out[512];
    snprintf(env, sizeof env, "WEFT_HOOKS=%s", hooks);
    const char *const extra[] = {env, NULL};
    int st = run_prog(WT_HOOKS_OFF_PROG, extra, out, sizeof out);
    cr_log_info("WEFT_HOOKS=%s: %s", hooks, out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "helper: status %d, %s",
              st, out);
    long got, ms, ticks, waited_ms;
    cr_assert_eq(sscanf(out, "hooks_off: got %ld after %ld ms, ticker ran "
                             "%ld times, %ld ms waiting for a CPU", &got, &ms,
                        &ticks, &waited_ms), 4, "%s", out);
    cr_assert_eq(got, 4);
    cr_assert_geq(ms, 140);
    *min = wt_min_ticks(ms, WT_MS(waited_ms));
    return ticks;
}

Test(hooks, weft_hooks_0_makes_read_block_the_carrier, .timeout = 20)
{
    long min;
    cr_assert_leq(hooks_off_ticks("0", &min), 2,
                  "with hooks off, the ticker ran beside a blocking read");
}

Test(hooks, weft_hooks_1_read_parks, .timeout = 20)
{
    long min;
    long ticks = hooks_off_ticks("1", &min);
    cr_assert_geq(ticks, min);
}

Test(hooks, preloaded_into_a_plain_program_calls_pass_through,
     .timeout = 30)
{
    char out[4096];
    const char *const extra[] = {
        "LD_PRELOAD=" WT_LIBWEFT_SO,
        /* ASan wants its runtime first; libweft.so is first here. */
        "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0", NULL};
    int st = run_prog(WT_PLAIN_IO_PROG, extra, out, sizeof out);
    cr_log_info("%s", out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d:\n%s", st,
              out);
    cr_assert(strstr(out, "plain_io: preloaded yes, ") != NULL,
              "libweft.so was not preloaded:\n%s", out);
    cr_assert(strstr(out, ", 0 failed") != NULL, "%s", out);
}
