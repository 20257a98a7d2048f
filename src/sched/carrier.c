/* SPDX-License-Identifier: MIT */
/*
 * carrier.c — the carrier OS threads: starting one, reusing the record of
 * one that ended, what a carrier's thread runs around its scheduler loop
 * (loop.c), and the thread-local current carrier with its errno.
 *
 * Invariants. weft__S.carriers[0..ncarriers) are records, published under
 * weft__S.lock before their thread starts; a record whose thread ended
 * (exited) is reused by the monitor, the only thread that starts spares
 * and joins their threads. weft__tls_m is written by each carrier's own
 * thread only (weft__set_m), before it runs a virtual thread. Also here:
 * weft__S itself, the poller's hooks (sched/poll.h), and the two
 * process-wide flags that outlive a run (weft__S is reset by each
 * weft_run).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/fault.h"
#include "sched/fiber.h"
#include "sched/carrier.h"
#include "sched/poll.h"
#include "sched/stack.h"
#include "sched/trace.h"

struct weft__sched weft__S;
struct weft__poll_ops weft__poll;
_Atomic uint32_t weft__fd_waiters;

__thread weft__carrier *weft__tls_m __attribute__((tls_model("initial-exec")));

#if !defined(__x86_64__) /* x86-64: inline, carrier.h */
WEFT_NOIPA weft__carrier *weft__m(void)
{
    __asm__ volatile("" ::: "memory");
    return weft__tls_m;
}
#endif

WEFT_NOIPA void weft__set_m(weft__carrier *m)
{
    weft__tls_m = m;
    if (m)
        m->errno_loc = &errno;
}

weft_thread *weft__g(void)
{
    weft__carrier *m = weft__m();
    return m ? m->cur : NULL;
}

WEFT_NOIPA int *weft__errno_ptr(void)
{
    __asm__ volatile("" ::: "memory");
    return &errno;
}

#ifndef WEFT_NO_ERRNO_ACCESSOR
#error "libweft's sources keep glibc's errno (base/compiler.h)"
#endif

/* weft.h's errno for programs: weft__errno_ptr under its public name, a
 * separate function so that libweft's own calls to weft__errno_ptr stay
 * direct (no PLT). noipa (and the asm) keep the compiler, even with LTO,
 * from finding it const as __errno_location is. */
WEFT_NOIPA int *weft_errno_location(void)
{
    __asm__ volatile("" ::: "memory");
    return &errno;
}

_Atomic bool weft__in_run;
bool weft__forked_child;

/* Records the bounds of the carrier's own stack (for ASan's fiber API). */
static void carrier_stack_bounds(weft__carrier *m)
{
    pthread_attr_t a;
    void *lo = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, &lo, &size);
        pthread_attr_destroy(&a);
    }
    m->stack_lo = lo;
    m->stack_size = size;
    m->tsan_fiber = weft__fiber_current();
}

static void carrier_run(weft__carrier *m)
{
    weft__set_m(m);
    atomic_store_explicit(&m->tid, (int)syscall(SYS_gettid),
                          memory_order_release);
    carrier_stack_bounds(m);
    weft__altstack_init(m);
    weft__carrier_loop(m);
    weft__altstack_fini(m);
    weft__set_m(NULL);
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    weft__carrier *idler = NULL;
    if (m->demoted) { /* it ends before the runtime: its record is reused */
        m->exited = true;
        weft__S.nexited++;
        idler = weft__S.idle_m;
    }
    weft__spin_unlock(&weft__S.lock);
    /* Its I/O port has no carrier waiting in it now: an idle one idles
     * again, looking at every port now and then (carrier.c). */
    if (idler)
        weft__carrier_wake(idler);
}

static void *carrier_main(void *arg)
{
    carrier_run(arg);
    return NULL;
}

/* Runs on: the monitor. A carrier record for one more carrier: one whose
 * thread ended (joined here), or a new one. NULL: max_carriers reached. */
static weft__carrier *carrier_record(void)
{
    weft__carrier *m = NULL;
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    uint32_t n = atomic_load(&weft__S.ncarriers);
    for (uint32_t i = 0; i < n && weft__S.nexited; i++)
        if (weft__S.carriers[i]->exited) {
            m = weft__S.carriers[i];
            m->exited = false;
            weft__S.nexited--;
            break;
        }
    weft__spin_unlock(&weft__S.lock);
    if (m) {
        if (m->joinable)
            pthread_join(m->os_thread, NULL);
        m->joinable = false;
        atomic_store(&m->tid, 0);
        m->demoted = 0;
        __atomic_store_n(&m->cur, NULL, __ATOMIC_RELAXED); /* dump.c */
        m->nextp = NULL;
        m->seen_runnext = NULL;
        m->after = WEFT__AFTER_NONE;
        return m;
    }
    if (n >= weft__S.max_carriers || !(m = weft__calloc(1, sizeof *m)))
        return NULL;
    m->id = n;
    weft__trace_carrier(m);
    weft__S.carriers[n] = m;
    /* Published before it runs: wake-ups and the stop sweep see it. */
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    atomic_store(&weft__S.ncarriers, n + 1);
    weft__spin_unlock(&weft__S.lock);
    return m;
}

/* Runs on: the monitor. Starts one more carrier, holding p (taken off the
 * idle list by the caller). Returns 0, or EAGAIN (p is the caller's again). */
int weft__carrier_spawn(weft__proc *p)
{
    weft__carrier *m = carrier_record();
    if (!m)
        return EAGAIN;
    m->p = p;
    p->m = m;
    m->spinning = true;
    atomic_fetch_add(&weft__S.nmspinning, 1);
    if (weft__carrier_start(m) == 0) {
        m->joinable = true;
        return 0;
    }
    p->m = NULL;
    m->p = NULL;
    m->spinning = false;
    atomic_fetch_sub(&weft__S.nmspinning, 1);
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    m->exited = true;
    weft__S.nexited++;
    weft__spin_unlock(&weft__S.lock);
    return EAGAIN;
}

/* Runs on: weft_run, or the monitor. Starts m's OS thread. 0 or EAGAIN. */
int weft__carrier_start(weft__carrier *m)
{
    return weft__pthread_create(&m->os_thread, NULL, carrier_main, m);
}
