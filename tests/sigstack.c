/* SPDX-License-Identifier: MIT */
/*
 * sigstack.c — signal handlers run on the carrier's alternate stack: one
 * installed without SA_ONSTACK gets it, and a handler using far more stack
 * than a compact thread has runs while such a thread is interrupted, with
 * no harm to it or to the stacks beside it.
 */
#include "wt.h"

#include <signal.h>

/* Sanitizer frames are much larger: compact stacks as in tests/stack.c. */
#if WT_SANITIZED
#define COMPACT_STACK (12 * 1024)
#else
#define COMPACT_STACK 2048
#endif

#define HANDLER_BYTES 8192

static volatile sig_atomic_t g_handled;

/* About 8 KiB of stack, every 64th byte written. */
__attribute__((noinline)) static void big_handler(int sig)
{
    volatile char buf[HANDLER_BYTES];
    for (size_t i = 0; i < sizeof buf; i += 64)
        buf[i] = (char)sig;
    g_handled += buf[HANDLER_BYTES - 64] == (char)sig;
}

/* ------------------------------------------------------ SA_ONSTACK added */

static void nop_handler(int sig)
{
    (void)sig;
}

static int flags_of(int sig)
{
    struct sigaction old;
    cr_assert_eq(sigaction(sig, NULL, &old), 0);
    return old.sa_flags;
}

Test(sigstack, handlers_get_sa_onstack, .timeout = 10)
{
    struct sigaction sa = {.sa_handler = nop_handler};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    cr_assert(flags_of(SIGUSR2) & SA_ONSTACK, "sigaction: no SA_ONSTACK");
    cr_assert_neq(signal(SIGINT, nop_handler), SIG_ERR);
    cr_assert(flags_of(SIGINT) & SA_ONSTACK, "signal: no SA_ONSTACK");
    cr_assert(flags_of(SIGINT) & SA_RESTART, "signal: no SA_RESTART");
    /* Dispositions that are no handler pass through as they are. */
    cr_assert_eq(signal(SIGINT, SIG_IGN), nop_handler);
    cr_assert_eq(flags_of(SIGINT) & SA_ONSTACK, 0);
}

Test(sigstack, bad_signal_numbers_are_einval, .timeout = 10)
{
    errno = 0;
    cr_assert_eq(signal(0, nop_handler), SIG_ERR);
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_eq(signal(SIGKILL, nop_handler), SIG_ERR);
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_eq(signal(SIGUSR1, SIG_ERR), SIG_ERR);
    cr_assert_eq(errno, EINVAL);
    struct sigaction sa = {.sa_handler = nop_handler};
    errno = 0;
    cr_assert_eq(sigaction(NSIG + 1, &sa, NULL), -1);
    cr_assert_eq(errno, EINVAL);
}

/* ---------------------------------------- a big handler on a tiny thread */

/* Compact threads parked beside the interrupted one, each with a pattern
 * on its stack that it checks once woken. */
enum { NEIGHBOURS = 16, PATTERN = 256 };
static weft_sem g_gate = WEFT_SEM_INIT(0);
static _Atomic int g_parked;

static int neighbour(void *arg)
{
    char tag = (char)(uintptr_t)arg;
    volatile char pattern[PATTERN];
    for (int i = 0; i < PATTERN; i++)
        pattern[i] = tag;
    atomic_fetch_add(&g_parked, 1);
    int r = weft_sem_acquire(&g_gate);
    int bad = 0;
    for (int i = 0; i < PATTERN; i++)
        bad += pattern[i] != tag;
    return r ? r : bad ? EIO : 0;
}

/* Signals its own OS thread: the handler runs before the system call
 * returns, while this compact thread is the one running. */
static int interrupted(void *arg)
{
    int sig = (int)(uintptr_t)arg;
    volatile int before = 7;
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
    weft_yield(); /* its canary is checked at the switch */
    return before == 7 ? 0 : EIO;
}

static int root_signalled(void *arg)
{
    /* Bind the libc calls the compact thread makes here, on a full stack:
     * the dynamic linker's lazy binding alone needs more than 2 KiB. */
    (void)syscall(SYS_gettid);
    (void)getpid();
    weft_thread *n[NEIGHBOURS];
    for (int i = 0; i < NEIGHBOURS; i++)
        WT_REQUIRE((n[i] = weft_go(neighbour, (void *)(uintptr_t)(i + 1))));
    while (atomic_load(&g_parked) < NEIGHBOURS)
        WT_REQUIRE_EQ(weft_sleep(WT_MS(1)), 0);
    /* Launched after the neighbours: its slab slot lies above theirs. */
    weft_thread *t = weft_go(interrupted, arg);
    WT_REQUIRE(t != NULL);
    int r = 0;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, 0);
    WT_CHECK_EQ(g_handled, 1);
    for (int i = 0; i < NEIGHBOURS; i++)
        WT_CHECK_EQ(weft_sem_release(&g_gate), 0);
    for (int i = 0; i < NEIGHBOURS; i++) {
        WT_CHECK_EQ(weft_join(n[i], &r), 0);
        WT_CHECK_MSG(r == 0, "neighbour %d: stack pattern overwritten", i);
    }
    return 0;
}

static void run_signalled(int sig)
{
    weft_config cfg = {.procs = 1, .stack_size = COMPACT_STACK};
    int rc = weft_run(root_signalled, (void *)(uintptr_t)sig, &cfg);
    wt_assert_clean();
    cr_assert_eq(rc, 0, "weft_run returned %d", rc);
}

Test(sigstack, sigusr1_handler_by_signal_runs_beside_compact_thread,
     .timeout = 30)
{
    cr_assert_neq(signal(SIGUSR1, big_handler), SIG_ERR);
    run_signalled(SIGUSR1);
}

Test(sigstack, sigint_handler_by_sigaction_runs_beside_compact_thread,
     .timeout = 30)
{
    struct sigaction sa = {.sa_handler = big_handler};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGINT, &sa, NULL), 0);
    run_signalled(SIGINT);
}
