/* SPDX-License-Identifier: MIT */
/*
 * sigstack.c — signal handlers run on the carrier's alternate stack.
 *
 * A virtual thread's stack may be 2 KiB (compact mode) and has, at best,
 * one guard page below it. A signal handler the kernel runs on that
 * stack overflows it silently, into the stacks of other threads. So:
 *   - every carrier has an alternate signal stack of ALTSTACK_MIN bytes
 *     or the system's SIGSTKSZ, whichever is more, with a guard page
 *     below it (mapped, not malloc'd: an overflow of it faults instead of
 *     running into the heap);
 *   - sigaction() and signal() are interposed (exported unversioned,
 *     src/weft.map): every handler the program or its libraries install
 *     gets SA_ONSTACK, so it runs on the carrier's alternate stack while
 *     a virtual thread runs, and where no alternate stack is set (an OS
 *     thread that is no carrier) on the interrupted stack as before.
 * SIG_DFL and SIG_IGN are passed through as they are. WEFT_HOOKS=0 turns
 * the rewrite off with the other hooks. The old action a call returns is
 * the kernel's, with the SA_ONSTACK that was added.
 *
 * Not covered: handlers installed by a direct rt_sigaction system call,
 * or through sigvec, sysv_signal, bsd_signal and sigset: they run on the
 * interrupted stack. Under ThreadSanitizer, asynchronous signals are
 * deferred by its runtime and run at its next safe point, on whatever
 * stack that is.
 *
 * Rejected: blocking signals on carriers and taking them on one OS thread
 * of the runtime's. A handler that expects to interrupt the code it
 * signals (a profiler's SIGPROF, a timeout's SIGALRM) would no longer do
 * that.
 */
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/page.h"
#include "base/real.h"
#include "sched/poll.h"
#include "sched/carrier.h"
#include "sched/stack.h"
#include "sched/sched.h"

#define HOOK __attribute__((visibility("default")))
#define ALTSTACK_MIN (64u * 1024)

static size_t altstack_bytes(size_t page)
{
    long sys = sysconf(_SC_SIGSTKSZ);
    size_t want = sys > (long)ALTSTACK_MIN ? (size_t)sys : ALTSTACK_MIN;
    return (want + page - 1) & ~(page - 1);
}

/* Runs on: carrier m's own OS thread, before it runs any virtual thread.
 * False: no alternate stack (no memory); handlers then run on the
 * interrupted stack. */
bool weft__altstack_init(weft__carrier *m)
{
    size_t page = weft__page();
    size_t size = altstack_bytes(page);
    char *map = weft__mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return false;
    (void)mprotect(map, page, PROT_NONE); /* no map entry to spare: none */
    stack_t ss = {.ss_sp = map + page, .ss_size = size};
    if (sigaltstack(&ss, NULL)) {
        munmap(map, size + page);
        return false;
    }
    m->altstack = map + page;
    m->altstack_size = size;
    return true;
}

/* Runs on: carrier m's own OS thread, after its last virtual thread. */
void weft__altstack_fini(weft__carrier *m)
{
    if (!m->altstack)
        return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    size_t page = weft__page();
    munmap((char *)m->altstack - page, m->altstack_size + page);
    m->altstack = NULL;
    m->altstack_size = 0;
}

static bool is_handler(const struct sigaction *act)
{
    return act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN;
}

/* Returns 0, or -1 with errno as libc's sigaction: EINVAL for a signal
 * number out of range or one that cannot be caught, EFAULT for a bad
 * pointer. */
HOOK int sigaction(int sig, const struct sigaction *act,
                   struct sigaction *old)
{
    if (!act || !is_handler(act) || (act->sa_flags & SA_ONSTACK) ||
        !weft__hooks_on())
        return weft__real(sigaction)(sig, act, old);
    struct sigaction onstack = *act;
    onstack.sa_flags |= SA_ONSTACK;
    return weft__real(sigaction)(sig, &onstack, old);
}

/* libc's signal() with BSD semantics (the handler stays installed, its
 * signal is blocked while it runs, system calls restart), through the
 * hook above. Returns the previous handler, or SIG_ERR with errno
 * EINVAL: a signal number out of range or one that cannot be caught. */
HOOK sighandler_t signal(int sig, sighandler_t handler)
{
    if (handler == SIG_ERR || sig < 1 || sig >= NSIG) {
        errno = EINVAL;
        return SIG_ERR;
    }
    struct sigaction act = {.sa_handler = handler, .sa_flags = SA_RESTART};
    struct sigaction old;
    sigemptyset(&act.sa_mask);
    sigaddset(&act.sa_mask, sig);
    if (sigaction(sig, &act, &old) < 0)
        return SIG_ERR;
    return old.sa_handler;
}
