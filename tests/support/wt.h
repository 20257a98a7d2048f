/* SPDX-License-Identifier: MIT */
/*
 * wt.h — shared helpers for weft's Criterion tests.
 *
 * How a test reads. A test runs a root virtual thread and states what
 * must hold, each label written out:
 *
 *   Test(io_poll, poll_timeout_expires, .timeout = 10)
 *   {
 *       WT_RUN(root_poll_expiry, NULL, .procs = 2);
 *   }
 *
 * or, for a test that is only that, the one line
 * RUN_TEST(poll_timeout_expires, root_poll_expiry, NULL, .procs = 2,
 * .timeout = 10) (WT_RUN_TEST; the suite file defines RUN_TEST).
 *
 * Criterion's assertions must only run on the test's main OS thread (a
 * failing cr_assert longjmps out of the test, which cannot cross a virtual
 * thread's stack). So code running inside weft_run records failures with
 * WT_CHECK / WT_CHECK_EQ / WT_REQUIRE*, and wt_run turns the recorded
 * failures into Criterion failures once weft_run has returned.
 *
 *   WT_CHECK(cond)          record a failure and continue
 *   WT_CHECK_EQ(a, b)       same, printing both values (with errno names
 *                           where a or b is an error number)
 *   WT_REQUIRE(cond)        record a failure and return WT_EFAIL
 *   WT_REQUIRE_EQ(a, b)     same, with values
 *
 *   WT_RUN(fn, arg, .procs = n [, .want = e] [, .hog_ms = ms] ...)
 *                           runs fn as the root (wt_run_opts: each field
 *                           left out is the default) and asserts that
 *                           nothing was recorded and that weft_run
 *                           returned .want (0 unless given)
 *   wt_run(fn, arg, ...)    the same without the assertion on the
 *                           result: returns weft_run's
 *
 * Where a failure is reported: at the test's own file:line, with the
 * values (wt_report.h). A recorded failure names the line of its
 * WT_CHECK; the count of them and a leak name the line of the WT_RUN; a
 * helper (wt_go, wt_join, wt_connect ...) names the line that called it.
 *
 * Skips: a test that cannot run here calls cr_skip_test("why"); it is
 * reported as SKIP with the reason, never as a pass. Each program ends
 * with a SKIPPED: line per skipped test and a line "<program>: N passed,
 * N failed, N skipped"; one whose every test skipped exits 77, which
 * ctest shows as "Skipped"; and ctest's run ends with weft.skipped, which
 * lists every test skipped in it (tests/CMakeLists.txt). A test for a
 * feature a build leaves out (a sanitizer build) is still registered,
 * and skips saying so. WT_RUN skips when WEFT_IO=uring and the kernel
 * refuses io_uring (wt_skip_without_backend).
 *
 * Leaks: in AddressSanitizer builds, every wt_assert_clean() (so every
 * wt_run) runs LeakSanitizer and fails the test if memory was lost. The
 * end-of-process check is turned off (LSAN_OPTIONS=leak_check_at_exit=0,
 * tests/CMakeLists.txt): Criterion's runner loses a few bytes of its own.
 */
#ifndef WT_H
#define WT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <sys/syscall.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#include "wt_noipa.h"
#include "wt_report.h"
#include "wt_sched.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define WT_LEAK_CHECK 1
#endif

#define WT_MS(n) ((int64_t)(n) * 1000000LL)
#define WT_US(n) ((int64_t)(n) * 1000LL)

/* The result a failed WT_REQUIRE returns from a virtual thread. */
#define WT_EFAIL ENOTRECOVERABLE

#define WT_MAXFAIL 32

struct wt_failure {
    const char *file;
    int line;
    char msg[256];
};

/* Spins, never switching, until the calling OS thread (carrier included)
 * has used ms of CPU time: a hog however busy the machine is. A spin by
 * the clock is not: on a loaded machine it may get little CPU, and the
 * monitor does not count the time the kernel keeps a carrier waiting. */
static inline void wt_spin_cpu_ms(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    int64_t now = ts.tv_sec * 1000000000LL + ts.tv_nsec;
    for (int64_t end = now + ms * 1000000LL; now < end;) {
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        now = ts.tv_sec * 1000000000LL + ts.tv_nsec;
    }
}

/* Blocks the calling OS thread (carrier included) for ms: a system call
 * made directly, which weft's libc hooks cannot turn into a park. */
static inline void wt_block_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (syscall(SYS_nanosleep, &ts, &ts) == -1 && errno == EINTR) {
    }
}

static struct wt_failure wt_failures[WT_MAXFAIL];
static atomic_int wt_nfail;

/* "EINVAL (22)" — readable names for error numbers in failure messages. */
static inline const char *wt_errname(long long v, char *buf, size_t n)
{
    const char *name = (v > 0 && v < 4096) ? strerrorname_np((int)v) : NULL;
    if (name)
        snprintf(buf, n, "%lld %s", v, name);
    else
        snprintf(buf, n, "%lld", v);
    return buf;
}

__attribute__((format(printf, 3, 4))) static void
wt_fail(const char *file, int line, const char *fmt, ...)
{
    int i = atomic_fetch_add(&wt_nfail, 1);
    if (i >= WT_MAXFAIL)
        return;
    struct wt_failure *f = &wt_failures[i];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    f->file = file;
    f->line = line;
}

/* Whether `expr` (a check's text) stands for an error number: errno,
 * an E... constant, a variable named for an error, or a weft call
 * compared with 0 (against `other`) that returns one (the libc mirrors,
 * which return counts, do not). A count of 3 is not named "ESRCH". */
static inline bool wt_is_errno_expr(const char *expr, const char *other)
{
    static const char *const counts[] = {
        "weft_read", "weft_write", "weft_recv", "weft_send", "weft_pread",
        "weft_pwrite", "weft_poll", "weft_accept", "weft_fcntl"};
    if (strstr(expr, "err") || (expr[0] == 'E' && isupper(expr[1])))
        return true;
    if (strncmp(expr, "weft_", 5) || strcmp(other, "0"))
        return false;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (!strncmp(expr, counts[i], strlen(counts[i])))
            return false;
    return true;
}

/* "a == b: got 2, expected 3", with errno names where a or b is one. */
static inline void wt_fail_eq(const char *file, int line, const char *sa,
                              const char *sb, long long a, long long b)
{
    char ba[64], bb[64];
    bool named = wt_is_errno_expr(sa, sb) || wt_is_errno_expr(sb, sa);
    if (named) {
        wt_errname(a, ba, sizeof ba);
        wt_errname(b, bb, sizeof bb);
    } else {
        snprintf(ba, sizeof ba, "%lld", a);
        snprintf(bb, sizeof bb, "%lld", b);
    }
    wt_fail(file, line, "%s == %s: got %s, expected %s", sa, sb, ba, bb);
}

#define WT_CHECK(cond)                                                     \
    do {                                                                   \
        if (!(cond))                                                       \
            wt_fail(__FILE__, __LINE__, "check failed: %s", #cond);        \
    } while (0)

#define WT_CHECK_MSG(cond, ...)                                            \
    do {                                                                   \
        if (!(cond))                                                       \
            wt_fail(__FILE__, __LINE__, __VA_ARGS__);                      \
    } while (0)

#define WT_CHECK_EQ(a, b)                                                  \
    do {                                                                   \
        long long wt_a_ = (long long)(a), wt_b_ = (long long)(b);          \
        if (wt_a_ != wt_b_)                                                \
            wt_fail_eq(__FILE__, __LINE__, #a, #b, wt_a_, wt_b_);          \
    } while (0)

#define WT_REQUIRE(cond)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            wt_fail(__FILE__, __LINE__, "required: %s", #cond);            \
            return WT_EFAIL;                                               \
        }                                                                  \
    } while (0)

#define WT_REQUIRE_EQ(a, b)                                                \
    do {                                                                   \
        long long wt_a_ = (long long)(a), wt_b_ = (long long)(b);          \
        if (wt_a_ != wt_b_) {                                              \
            wt_fail_eq(__FILE__, __LINE__, #a, #b, wt_a_, wt_b_);          \
            return WT_EFAIL;                                               \
        }                                                                  \
    } while (0)

/* Turns failures recorded off the main thread into Criterion failures,
 * each at the line of its check; then fails the test at `at` (the
 * caller's line) if there were any, or if memory leaked.
 * Runs on: the test's main OS thread only. */
static inline void wt_assert_clean_at(struct wt_here at)
{
    int n = atomic_load(&wt_nfail);
    for (int i = 0; i < n && i < WT_MAXFAIL; i++) {
        struct wt_here f = {wt_failures[i].file, wt_failures[i].line};
        wt_report(f, false, wt_failures[i].msg, " ");
    }
    if (n)
        wt_report(at, true, "no check failed inside the runtime",
                  "%d did (%s)", n,
                  n > WT_MAXFAIL ? "the first 32 are above" : "above");
#ifdef WT_LEAK_CHECK
    if (__lsan_do_recoverable_leak_check())
        wt_report(at, true, "no memory leaked",
                  "LeakSanitizer's report is on stderr");
#endif
}

#define wt_assert_clean() wt_assert_clean_at(WT_HERE)

/* How WT_RUN and wt_run run a root. A field left out (zero) is weft's
 * default, as in weft_config. */
struct wt_run_opts {
    unsigned procs;        /* P slots */
    unsigned hog_ms;       /* hog threshold */
    unsigned max_carriers; /* carrier OS threads at most */
    size_t stack_size;     /* default stack size */
    int want;              /* WT_RUN: weft_run's expected result */
};

/* Runs fn(arg) as the root with procs P's (0: the default), recording
 * nothing: for callers that check the run themselves. */
static inline int wt_run_raw(weft_fn fn, void *arg, unsigned procs)
{
    weft_config cfg = {0};
    cfg.procs = procs;
    return weft_run(fn, arg, &cfg);
}

/* Runs fn(arg) as the root as o says, then fails the test at `at` for
 * anything recorded meanwhile (wt_assert_clean). Skips the test when the
 * backend WEFT_IO asks for is refused. Returns weft_run's result. */
static inline int wt_run_at(struct wt_here at, weft_fn fn, void *arg,
                            struct wt_run_opts o)
{
    wt_skip_without_backend();
    weft_config cfg = {0};
    cfg.procs = o.procs;
    cfg.hog_ms = o.hog_ms;
    cfg.max_carriers = o.max_carriers;
    cfg.stack_size = o.stack_size;
    int rc = weft_run(fn, arg, &cfg);
    wt_assert_clean_at(at);
    return rc;
}

/* As wt_run_at, then asserts that weft_run returned o.want. */
static inline void wt_run_expect_at(struct wt_here at, const char *name,
                                    weft_fn fn, void *arg,
                                    struct wt_run_opts o)
{
    int rc = wt_run_at(at, fn, arg, o);
    char got[64], want[64];
    WT_ASSERT_AT(at, rc == o.want, "weft_run(%s) returned %s, expected %s",
                 name, wt_errname(rc, got, sizeof got),
                 wt_errname(o.want, want, sizeof want));
}

#define wt_run(fn, arg, ...)                                               \
    wt_run_at(WT_HERE, (fn), (void *)(intptr_t)(arg),                      \
              (struct wt_run_opts){__VA_ARGS__})

#define WT_RUN(fn, arg, ...)                                               \
    wt_run_expect_at(WT_HERE, #fn, (fn), (void *)(intptr_t)(arg),          \
                     (struct wt_run_opts){__VA_ARGS__})

/* A Test whose whole body is WT_RUN(root, arg, run_opt): its two labelled
 * options, in this order, are one of WT_RUN's (.procs = 2) and one of
 * Test's (.timeout = 10). A suite file defines
 * #define RUN_TEST(...) WT_RUN_TEST(<suite>, __VA_ARGS__). */
#define WT_RUN_TEST(suite, name, root, arg, run_opt, test_opt)             \
    Test(suite, name, test_opt)                                            \
    {                                                                      \
        WT_RUN(root, arg, run_opt);                                        \
    }

/* errno read through a call the compiler cannot fold or cache: a virtual
 * thread may resume on another carrier, whose errno lives elsewhere. */
WT_NOIPA static int wt_errno(void)
{
    WT_OPAQUE_BODY();
    return errno;
}
WT_NOIPA static void wt_set_errno(int v)
{
    WT_OPAQUE_BODY();
    errno = v;
}

/* weft_dump's text, read back from a memory file into buf (size bytes,
 * NUL-terminated, cut if longer). NULL if no memory file could be made.
 * Read by a raw system call: weft's pread is a cancellation point, and
 * the caller may be in a cancelled scope. Runs on: any thread. */
static inline char *wt_dump_text(char *buf, size_t size)
{
    int fd = memfd_create("weft-dump", MFD_CLOEXEC);
    if (fd < 0)
        return NULL;
    weft_dump(fd);
    ssize_t n = syscall(SYS_pread64, fd, buf, size - 1, (off_t)0);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* The carrier the caller runs on, read through an opaque call (glibc
 * declares pthread_self const: a compiler may reuse its result). */
WT_NOIPA static pthread_t wt_carrier(void)
{
    WT_OPAQUE_BODY();
    return pthread_self();
}

/* Upper time bounds hold weft's part of a span: on a loaded machine the
 * carriers that wake one another wait for a CPU, and that time, which the
 * kernel counts (wt_sched.h), is taken off. Lower bounds (a deadline never
 * fires early) read weft_now() alone. One span at a time per program, on
 * one thread at a time. */
static struct wt_sched_mark wt_span_mark_;

/* weft_now(), marking the threads' waits for a CPU for wt_own_since. The
 * clock is read first: marking reads /proc, which on a loaded machine can
 * take ms, and a lower bound must not start late. */
static inline int64_t wt_mark_now(void)
{
    int64_t now = weft_now();
    wt_sched_mark(&wt_span_mark_);
    return now;
}

/* ns since t0 (from wt_mark_now) less the waits for a CPU since then. */
static inline int64_t wt_own_since(int64_t t0)
{
    return weft_now() - t0 - wt_sched_chain_waited(&wt_span_mark_);
}

/* Monotonic clock straight from the kernel, for cross-checking weft_now. */
static inline int64_t wt_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* As root, becomes uid/gid 65534 (nobody): for tests of what a process
 * without CAP_SYS_NICE sees. Call at the start of a Test (each runs in a
 * process of its own). */
static inline void wt_drop_privileges_at(struct wt_here at)
{
    if (geteuid() != 0)
        return;
    WT_ASSERT_AT(at, setgid(65534) == 0, "setgid: %s", strerror(errno));
    WT_ASSERT_AT(at, setuid(65534) == 0, "setuid: %s", strerror(errno));
    prctl(PR_SET_DUMPABLE, 1); /* LeakSanitizer attaches to itself */
}

#define wt_drop_privileges() wt_drop_privileges_at(WT_HERE)

/* Spawns fn named `name` (joinable); records a failure at `at` if the
 * spawn fails. */
static inline weft_thread *wt_go_named_at(struct wt_here at, const char *name,
                                          weft_fn fn, void *arg)
{
    weft_attr a = {0};
    a.name = name;
    weft_thread *t = weft_go_with(&a, fn, arg);
    char e[64];
    if (!t)
        wt_fail(at.file, at.line, "weft_go_with(%s) failed: errno %s", name,
                wt_errname(errno, e, sizeof e));
    return t;
}

/* Spawns fn; records a failure at `at` if the spawn fails. */
static inline weft_thread *wt_go_at(struct wt_here at, weft_fn fn, void *arg)
{
    weft_thread *t = weft_go(fn, arg);
    char e[64];
    if (!t)
        wt_fail(at.file, at.line, "weft_go failed: errno %s",
                wt_errname(errno, e, sizeof e));
    return t;
}

#define wt_go_named(name, fn, arg) wt_go_named_at(WT_HERE, name, fn, arg)
#define wt_go(fn, arg) wt_go_at(WT_HERE, fn, arg)

/* Yields until *flag is non-zero or `limit` yields have passed (no
 * cancellation point involved). Returns the flag. */
static inline int wt_yield_until(atomic_int *flag, long limit)
{
    for (long i = 0; i < limit && !atomic_load(flag); i++)
        weft_yield();
    return atomic_load(flag);
}

/* A plain OS thread joining a virtual thread: unlike a virtual thread, it
 * is not cancelled by a failure that cancels the caller. */
struct wt_os_join {
    weft_thread *t;
    int rc;          /* weft_join's result */
    int result;      /* the thread's result */
    atomic_int done;
};

static void *wt_os_join_main(void *arg)
{
    struct wt_os_join *j = arg;
    j->rc = weft_join(j->t, &j->result);
    atomic_store(&j->done, 1);
    return NULL;
}

/* Joins t from a new OS thread into *j; the caller waits by yielding (no
 * cancellation point), and a wait that never ends is recorded at `at`.
 * Returns pthread_create's result (0: j is filled).
 * Runs on: a virtual thread. */
static inline int wt_join_from_os_thread_at(struct wt_here at,
                                            struct wt_os_join *j,
                                            weft_thread *t)
{
    j->t = t;
    j->rc = -1;
    j->result = -1;
    atomic_store(&j->done, 0);
    pthread_t pt;
    int e = pthread_create(&pt, NULL, wt_os_join_main, j);
    if (e != 0)
        return e;
    if (!wt_yield_until(&j->done, 100000000L))
        wt_fail(at.file, at.line, "the OS thread's join did not return");
    pthread_join(pt, NULL);
    return 0;
}

#define wt_join_from_os_thread(j, t) wt_join_from_os_thread_at(WT_HERE, j, t)

/* Evaluates expr (a poll: try_send, try_recv, a select with deadline 0)
 * every millisecond while it gives `busy`, for at most 5 s of weft_now.
 * The value is expr's last. Runs on: a virtual thread. */
#define WT_POLL(expr, busy)                                                \
    __extension__({                                                        \
        int64_t wt_until_ = weft_now() + WT_MS(5000);                      \
        __typeof__(expr) wt_v_;                                            \
        while ((wt_v_ = (expr)) == (busy) && weft_now() < wt_until_)       \
            weft_sleep(WT_MS(1));                                          \
        wt_v_;                                                             \
    })

#endif /* WT_H */
