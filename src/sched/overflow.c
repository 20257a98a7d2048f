/* SPDX-License-Identifier: MIT */
/*
 * overflow.c — the report of a virtual thread's stack overflow.
 *
 * A SIGSEGV runs this handler on the carrier's alternate signal stack
 * (sigstack.c), so a thread that has used up its own stack can still be
 * named. The fault is an overflow of the carrier's running thread g when
 *   - the interrupted stack pointer has left g's stack downwards, by at
 *     most weft__stack_reach(g's stack): a frame or an alloca bigger than
 *     what was left, whatever it touched first; or
 *   - the fault lies that far below g's stack while the stack pointer is
 *     within a page of its bottom: a call or a push on a full stack.
 * That holds for every kind of stack: a guarded one faults in its guard
 * page (or, for a frame that jumps the guard, in whatever unmapped memory
 * lies below); a slab stack (compact mode, or past the guard budget) runs
 * down through the stacks below it to the slab's own guard page.
 * Otherwise, a fault in the guard page of any other thread's stack (a
 * wild write into it) names that thread. Any other fault is not ours: it
 * goes back to the handler installed before the runtime's.
 *
 * An overflow that faults nothing (it wrote into a neighbour's slab slot)
 * is caught instead by the canary at its next switch (switch.c).
 *
 * Rejected: telling an overflow by the fault address alone. A frame that
 * jumps the guard faults far below it, and a slab stack's overflow faults
 * a whole slab below it; the stack pointer says which thread it was.
 *
 * Runs on: the alternate signal stack. Nothing here allocates or takes a
 * lock (no stdio, no libdw): the faulting thread may hold any of them.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/page.h"
#include "base/real.h"
#include "sched/poll.h"
#include "sched/carrier.h"
#include "sched/scope.h"
#include "sched/stack.h"
#include "sched/thread.h"
#include "sched/backtrace.h"
#include "sched/sched.h"

#define REPORT_MAX 320 /* bytes in one line of a report */

static struct sigaction old_segv;

/* The interrupted stack pointer, frame pointer and pc of a signal's
 * context, as each architecture's mcontext holds them. */
#if defined(__x86_64__)
#define UC_SP(uc) ((uintptr_t)(uc)->uc_mcontext.gregs[REG_RSP])
#define UC_FP(uc) ((uintptr_t)(uc)->uc_mcontext.gregs[REG_RBP])
#define UC_PC(uc) ((uintptr_t)(uc)->uc_mcontext.gregs[REG_RIP])
#elif defined(__aarch64__)
#define UC_SP(uc) ((uintptr_t)(uc)->uc_mcontext.sp)
#define UC_FP(uc) ((uintptr_t)(uc)->uc_mcontext.regs[29])
#define UC_PC(uc) ((uintptr_t)(uc)->uc_mcontext.pc)
#endif

static void say(const char *line, int n)
{
    if (n > REPORT_MAX - 1)
        n = REPORT_MAX - 1; /* snprintf's length if it was cut to fit */
    ssize_t w = weft__real(write)(STDERR_FILENO, line, (size_t)n);
    (void)w; /* a signal handler: no stdio, which may allocate */
}

/* Bytes x lies below s's base, or 0 if it is not within its reach. */
static size_t below(const weft__stack *s, uintptr_t x)
{
    uintptr_t lo = (uintptr_t)s->lo;
    return x < lo && lo - x <= weft__stack_reach(s) ? lo - x : 0;
}

/* A fault in a handler on the alternate stack (or its guard page) is
 * not the interrupted thread's overflow, wherever that stack lies. */
static bool on_altstack(const weft__carrier *m, uintptr_t sp)
{
    uintptr_t a = (uintptr_t)m->altstack;
    return a && sp + weft__page() >= a && sp < a + m->altstack_size;
}

/* A stack-clash probe of g's own frame that hit g's guard page. GCC
 * probes at sp on x86-64, but up to 1 KiB above it on AArch64 (the
 * caller-protected area of its stack-clash scheme): there sp may already
 * be a page below the guard, inside whatever is mapped next, this
 * carrier's alternate signal stack included. */
#define PROBE_ABOVE_SP 1024
static bool is_probe(const weft__stack *s, uintptr_t fault, uintptr_t sp)
{
    return weft__stack_guard_hit(s, (const void *)fault) && fault >= sp &&
           fault - sp <= PROBE_ABOVE_SP;
}

/* Whether the fault is g's overflow. */
static bool is_overflow(const weft__carrier *m, const weft_thread *g,
                        uintptr_t fault, uintptr_t sp)
{
    const weft__stack *s = g->stack;
    if (!s)
        return false;
    if (is_probe(s, fault, sp))
        return true;
    if (on_altstack(m, sp))
        return false;
    if (below(s, sp))
        return true;
    bool sp_at_bottom = sp >= (uintptr_t)s->lo &&
                        sp - (uintptr_t)s->lo < weft__page();
    return sp_at_bottom && below(s, fault);
}

/* Where the fault lies, relative to the stack: for the report. */
static const char *fault_place(const weft__stack *s, uintptr_t fault)
{
    if (fault >= (uintptr_t)s->lo)
        return "above its base";
    if (weft__stack_guard_hit(s, (const void *)fault))
        return "below its base, in its guard page";
    return s->map ? "below its base, past its guard page" : "below its base";
}

static const char *entry_name(const weft_thread *g)
{
    Dl_info info;
    if (dladdr((void *)(uintptr_t)g->fn, &info) && info.dli_sname)
        return info.dli_sname;
    return "?";
}

static void report_overflow(const weft_thread *g, uintptr_t fault)
{
    const weft__stack *s = g->stack;
    uintptr_t lo = (uintptr_t)s->lo;
    char buf[32], line[REPORT_MAX];
    int n = snprintf(line, sizeof line,
                     "weft: stack overflow in virtual thread #%llu '%s' "
                     "(stack %zu KiB, %s; fault %zu bytes %s; running %s)\n",
                     (unsigned long long)g->id,
                     weft__thread_name(g, buf, sizeof buf), s->asked / 1024,
                     s->map ? "guarded" : "no guard page of its own",
                     fault < lo ? lo - fault : fault - lo,
                     fault_place(s, fault), entry_name(g));
    say(line, n);
}

/* The faulting thread's frames, from the signal's saved registers; with
 * dladdr only (libdw allocates, and this is a signal handler). Frames
 * below the stack's base are walked too: the overflow put them there. */
static void report_stack(const weft_thread *g, const ucontext_t *uc)
{
    uintptr_t pcs[WEFT__BT_MAX];
    const weft__stack *s = g->stack;
    uintptr_t lo = (uintptr_t)s->lo;
    int n = weft__backtrace_from(UC_FP(uc), UC_PC(uc),
                                 lo - weft__stack_reach(s), lo + s->size,
                                 pcs, WEFT__BT_MAX);
    weft__backtrace_print(STDERR_FILENO, pcs, n, 1, NULL);
    static const char hint[] =
        "  (static functions: addr2line -f -e MODULE OFFSET)\n";
    say(hint, (int)sizeof hint - 1);
}

/* A thread (running or not) whose guard page holds the fault: records
 * are never freed while the runtime runs, so the list is safe to walk.
 * A stack record may be, under the walk (it stays readable heap memory,
 * and a wrong answer costs only a wrong name in a dying process). */
static const weft_thread *guard_owner(const void *fault)
{
    for (const weft_thread *g = weft__S.all_g; g; g = g->all_next) {
        const weft__stack *s = __atomic_load_n(&g->stack, __ATOMIC_ACQUIRE);
        if (s && weft__stack_guard_hit(s, fault))
            return g;
    }
    return NULL;
}

static void report_wild_write(const weft_thread *g, const void *fault)
{
    char buf[32], line[REPORT_MAX];
    int n = snprintf(line, sizeof line,
                     "weft: fault at %p in the guard page of virtual thread "
                     "#%llu '%s' (stack %zu KiB), made by other code\n",
                     fault, (unsigned long long)g->id,
                     weft__thread_name(g, buf, sizeof buf),
                     g->stack ? g->stack->asked / 1024 : 0);
    say(line, n);
}

static void on_segv(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    weft__carrier *m = weft__m();
    weft_thread *g = m ? m->cur : NULL;
    uintptr_t sp = UC_SP(uc);
    if (g && is_overflow(m, g, (uintptr_t)si->si_addr, sp)) {
        report_overflow(g, (uintptr_t)si->si_addr);
        report_stack(g, uc);
        abort();
    }
    const weft_thread *owner = guard_owner(si->si_addr);
    if (owner) {
        report_wild_write(owner, si->si_addr);
        abort();
    }
    /* Not ours: give the fault back to whoever handled it before, by
     * returning into the faulting instruction with their handler. */
    sigaction(SIGSEGV, &old_segv, NULL);
    (void)sig;
}

/* ------------------------------------------------- canary, at a switch */

/* The panic's own stack: libdw, symbolizing the dump's frames, wants
 * well over the 64 KiB of a carrier's alternate stack. */
#define PANIC_STACK ((size_t)1 << 20)

static struct {
    weft__ctx ctx;              /* the panic's, on a stack of its own */
    weft__ctx from;             /* never resumed */
    const weft_thread *g;
} canary_panic;

static _Noreturn void panic_canary(void *arg)
{
    const weft_thread *g = canary_panic.g;
    char buf[32];
    /* The carrier runs no virtual thread from here on: the dump's own
     * reads (libdw's of /proc) go to the kernel rather than park g, whose
     * switch would find the canary again and abort before any dump. */
    weft__m()->cur = NULL;
    weft__panic("stack overflow in virtual thread #%llu '%s' "
                "(stack %zu KiB, no guard page: canary overwritten)",
                (unsigned long long)g->id,
                weft__thread_name(g, buf, sizeof buf),
                g->stack->asked / 1024);
    (void)arg;
}

/* Runs on: g, switching out of carrier m, its canary found overwritten.
 * The panic (stdio, the dump) needs more stack than a compact thread has
 * left: it runs on a stack mapped for it or, without the memory, on the
 * carrier's alternate signal stack, which no handler uses outside a
 * signal (the dump may then be cut short). The first panic ends the
 * process. */
_Noreturn void weft__canary_overwritten(weft__carrier *m, weft_thread *g)
{
    canary_panic.g = g;
    char *stack = weft__mmap(NULL, PANIC_STACK, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                                 MAP_STACK,
                             -1, 0);
    size_t size = PANIC_STACK;
    if (stack == MAP_FAILED) {
        stack = m->altstack;
        size = m->altstack_size;
    }
    if (!stack)
        panic_canary(NULL);
    weft__ctx_make(&canary_panic.ctx, stack, size,
                   (void (*)(void *))panic_canary, NULL);
    weft__ctx_switch(&canary_panic.from, &canary_panic.ctx);
    abort(); /* never resumed */
}

/* ------------------------------------------------------ fault handler */

void weft__overflow_handler_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
}

void weft__overflow_handler_remove(void)
{
    sigaction(SIGSEGV, &old_segv, NULL);
}
