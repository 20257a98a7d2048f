/* SPDX-License-Identifier: MIT */
/*
 * bind.c — threads bound to their carrier: parks inside foreign code, and
 * weft_pin.
 *
 * A library compiled without weft keeps thread-local addresses (errno's,
 * its own __thread state, the thread pointer itself) in registers across
 * the libc calls it makes. If a virtual thread parks inside such a call
 * and resumes on another carrier, the library goes on with the first
 * carrier's addresses. So a thread that parks inside a hooked call made
 * from another shared object is *bound*: it resumes only on the carrier it
 * parked on (its errno is restored there as everywhere). weft_pin binds
 * a thread for as long as the program asks. (A thread that holds a
 * pthread lock needs no binding: it never switches away at all,
 * foreign/locks.c.) Code that includes weft.h reads errno through an
 * accessor and never needs this: its parks migrate freely, which keeps
 * load balancing.
 *
 * Invariants:
 *   - g->bound is written only by g itself (bind/unbind, and the rebind
 *     after a resume elsewhere), while it runs; wakers read it after the
 *     park handshake, which orders it (park.c).
 *   - A bound thread that becomes runnable never enters a P's run queue
 *     or the global queue: it goes to its carrier's bound queue (below),
 *     which only that carrier takes from. So no path that moves queued
 *     threads between P's and carriers (stealing, hand-offs, retiring a
 *     P) can move it. The one exception is the monitor's release, below.
 *   - m->nbound counts the threads bound to m; a carrier with bound
 *     threads never ends (loop.c).
 *
 * A bound thread's carrier may hold no P when the thread is woken (it went
 * idle and gave its P up). It wakes, takes an idle P if there is one, and
 * otherwise runs the thread without a P, as a carrier back from a blocking
 * call would; the thread parks again soon (it is inside a library call).
 *
 * Latency wins over binding: if a bound thread has waited in its carrier's
 * queue longer than hog_ms (the carrier runs a hog, or is stuck in a call
 * weft cannot park), the monitor moves it to the global queue and it
 * resumes elsewhere. The library then sees another carrier's thread-local
 * state; weft counts each such resume (weft_stats, dump).
 *
 * Lock order: a carrier's bound_lock is a leaf (level 9 in sched.h): taken
 * by wakers, which may hold handle, scope, object and timer locks.
 */
#include <errno.h>

#include "sched/bind.h"
#include "sched/carrier.h"
#include "sched/proc.h"
#include "sched/scope.h"
#include "sched/thread.h"

/* Runs on: g itself, on carrier m. */
void weft__bind(weft_thread *g, weft__carrier *m)
{
    if (g->bound)
        return;
    g->bound = m;
    atomic_fetch_add_explicit(&m->nbound, 1, memory_order_relaxed);
}

/* Runs on: g itself. */
void weft__unbind(weft_thread *g)
{
    weft__carrier *m = g->bound;
    if (!m)
        return;
    g->bound = NULL;
    atomic_fetch_sub_explicit(&m->nbound, 1, memory_order_relaxed);
}

/* Runs on: g itself. Unbinds g unless something still binds it: a pin,
 * or a foreign call under way. */
void weft__unbind_if_free(weft_thread *g)
{
    if (!g->pins && !g->binds)
        weft__unbind(g);
}

/* Runs on: g, resumed on carrier now_on. A bound thread the monitor let
 * go resumes elsewhere: it binds to where it is now. */
void weft__bound_resumed(weft_thread *g, weft__carrier *now_on)
{
    if (likely(g->bound == now_on))
        return;
    atomic_fetch_add_explicit(&weft__S.unbound_resumes, 1,
                              memory_order_relaxed);
    weft__unbind(g);
    weft__bind(g, now_on);
}

/* Runs on: any thread. Queues a runnable bound thread for its carrier and
 * wakes the carrier if it idles. The idler's side is in idle.c (weft__carrier_idle):
 * it sets m->idling, then looks at nready_bound; here the thread is
 * published, then m->idling is read (both seq_cst), so one of the two
 * sees the other. */
void weft__bound_ready(weft_thread *g)
{
    weft__carrier *m = g->bound;
    g->next = NULL;
    weft__spin_lock(&m->bound_lock, WEFT__LOCK_BOUND);
    if (m->bound_tail)
        m->bound_tail->next = g;
    else {
        m->bound_head = g;
        /* A clock, not the monitor's tick: that one stands still while
         * the monitor sleeps, and would make a fresh wait look old. */
        atomic_store_explicit(&m->bound_since, weft_now(),
                              memory_order_relaxed);
    }
    m->bound_tail = g;
    atomic_fetch_add_explicit(&m->nready_bound, 1, memory_order_seq_cst);
    weft__spin_unlock(&m->bound_lock);
    if (m != weft__m_here() &&
        atomic_load_explicit(&m->idling, memory_order_seq_cst))
        weft__carrier_wake(m);
}

/* Runs on: carrier m only, which saw nready_bound > 0 (bind.h:
 * weft__bound_take). The oldest runnable thread bound to m, or NULL. */
weft_thread *weft__bound_take_slow(weft__carrier *m)
{
    weft__spin_lock(&m->bound_lock, WEFT__LOCK_BOUND);
    weft_thread *g = m->bound_head;
    if (g) {
        m->bound_head = g->next;
        if (!m->bound_head)
            m->bound_tail = NULL;
        else
            atomic_store_explicit(&m->bound_since, weft_now(),
                                  memory_order_relaxed);
        atomic_fetch_sub_explicit(&m->nready_bound, 1, memory_order_relaxed);
    }
    weft__spin_unlock(&m->bound_lock);
    return g;
}

/* Runs on: any thread. Whether m has bound threads waiting to run. */
bool weft__bound_pending(const weft__carrier *m)
{
    return atomic_load_explicit(&m->nready_bound, memory_order_seq_cst) != 0;
}

/* Runs on: the monitor. Releases to the global queue the bound threads
 * that have waited for their carrier longer than the hog limit. */
void weft__bound_sweep(int64_t now)
{
    for (uint32_t i = 0, n = atomic_load(&weft__S.ncarriers); i < n; i++) {
        weft__carrier *m = weft__S.carriers[i];
        if (!m || !atomic_load_explicit(&m->nready_bound, memory_order_relaxed)
            || now - atomic_load_explicit(&m->bound_since,
                                          memory_order_relaxed) <
                   weft__S.hog_ns)
            continue;
        weft__spin_lock(&m->bound_lock, WEFT__LOCK_BOUND);
        weft_thread *first = m->bound_head, *last = m->bound_tail;
        uint32_t k = atomic_exchange_explicit(&m->nready_bound, 0,
                                              memory_order_relaxed);
        m->bound_head = m->bound_tail = NULL;
        weft__spin_unlock(&m->bound_lock);
        if (first) {
            weft__globq_put_chain(first, last, k);
            weft__wakep();
        }
    }
}

/* Runs on: any thread. Threads bound to a carrier, for weft_stats. */
unsigned weft__bound_count(void)
{
    unsigned n = 0;
    for (uint32_t i = 0, k = atomic_load(&weft__S.ncarriers); i < k; i++)
        if (weft__S.carriers[i])
            n += atomic_load_explicit(&weft__S.carriers[i]->nbound,
                                      memory_order_relaxed);
    return n;
}

/* Runs on: any thread. Threads holding a pthread lock, for weft_stats: a
 * snapshot read off every record. */
unsigned weft__lock_pinned_count(void)
{
    unsigned n = 0;
    weft__spin_lock(&weft__S.g_lock, WEFT__LOCK_RECORDS);
    for (weft_thread *g = weft__S.all_g; g; g = g->all_next)
        if (atomic_load_explicit(&g->state, memory_order_relaxed) !=
                WEFT__G_DONE &&
            __atomic_load_n(&g->plocks, __ATOMIC_RELAXED))
            n++;
    weft__spin_unlock(&weft__S.g_lock);
    return n;
}

/* ------------------------------------------------------------ weft_pin */

int weft_pin(void)
{
    weft_thread *g = weft__g();
    if (!g)
        return weft__no_vthread();
    if (g->pins == UINT32_MAX)
        return EOVERFLOW;
    if (g->pins++ == 0)
        weft__bind(g, weft__m());
    return 0;
}

int weft_unpin(void)
{
    weft_thread *g = weft__g();
    if (!g)
        return weft__no_vthread();
    if (!g->pins)
        return EINVAL;
    g->pins--;
    weft__unbind_if_free(g);
    return 0;
}

/* ------------------------------------------------- calls from foreign code */

/* Runs on: any thread, at the start of a hooked call that may park, whose
 * caller is foreign code (io/caller.c). Returns the thread to hand to
 * weft__foreign_leave, or NULL (an OS thread). */
weft_thread *weft__foreign_enter(void)
{
    weft__carrier *m = weft__m();
    weft_thread *g = m ? m->cur : NULL;
    if (g && g->binds++ == 0)
        weft__bind(g, m);
    return g;
}

void weft__foreign_leave(weft_thread *g)
{
    if (g) {
        g->binds--;
        weft__unbind_if_free(g);
    }
}
