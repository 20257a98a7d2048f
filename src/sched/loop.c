/* SPDX-License-Identifier: MIT */
/*
 * loop.c — the scheduler loop: what a carrier runs on its own OS stack
 * when its P has nothing for the switch (switch.c) to go to. It reads as
 * phases: the thread a switch left for it, the hand-off of a stuck P,
 * timers, its own queues, I/O, stealing while it spins, and idling
 * (idle.c).
 *
 * Spinning. A carrier that finds no work spins for SPIN_NS, stealing
 * (waking a sleeping carrier costs tens of microseconds on small VMs)
 * only threads that have waited STEAL_AGE_NS where they are (see
 * ring_waited); at most half the busy P's' carriers spin at once (Go's
 * rule). The last spinner to find work wakes another carrier, since
 * there may be more work than one can take.
 *
 * Runs on: carrier m's scheduler context (m->cur is NULL), holding m->p
 * or no P.
 */
#include "sched/bind.h"
#include "sched/carrier.h"
#include "sched/fiber.h"
#include "sched/monitor.h"
#include "sched/pick.h"
#include "sched/poll.h"
#include "sched/stack.h"
#include "sched/timer.h"
#include "sched/trace.h"

#include <sched.h>

#ifndef SPIN_NS
#define SPIN_NS 50000            /* how long an idle carrier looks for work */
#endif
/* A thread a running thread has just woken sits in its waker's runnext:
 * thieves leave it there this long. Go waits 3 us; here a carrier's wake-up
 * costs ~30 us and moving a producer/consumer pair apart costs every message
 * a cross-core lock transfer (bench/RESULTS.md: history notes), so the
 * wait is longer, still well under the cost of waking a carrier. */
#define STEAL_RUNNEXT_NS 12000
/* A thread queued on a busy P is stolen only once it has waited there
 * this long (see ring_waited). */
#ifndef STEAL_AGE_NS
#define STEAL_AGE_NS 20000
#endif
#define IO_SPIN_POLL_EVERY 4     /* a spinning carrier polls I/O this often
                                    (rounds of its steal loop) */
#define STEAL_PAUSES 128         /* pause instructions between steal rounds
                                    while a carrier is stuck */

static uint32_t fastrand(weft__proc *p)
{
    p->rand ^= p->rand << 13;
    p->rand ^= p->rand >> 7;
    p->rand ^= p->rand << 17;
    return (uint32_t)p->rand;
}

/* Runs on: m's scheduler context. The thread a switch left for the loop,
 * if m may still run it; else it goes back to the queues. */
static weft_thread *take_fiber_next(weft__carrier *m)
{
    weft_thread *g = m->fiber_next;
    if (likely(!g))
        return NULL;
    m->fiber_next = NULL;
    if (!m->p || weft__proc_handed_off(m->p) ||
        atomic_load_explicit(&weft__S.done, memory_order_acquire)) {
        weft__globq_put(g);
        weft__wakep();
        return NULL;
    }
    return g;
}


static void stop_spinning(weft__carrier *m)
{
    if (!m->spinning)
        return;
    m->spinning = false;
    /* The last spinner to find work wakes another carrier: there may be
     * more work than one carrier can take. */
    if (atomic_fetch_sub_explicit(&weft__S.nmspinning, 1,
                                  memory_order_seq_cst) == 1)
        weft__wakep();
}

/* Between two rounds of a spin, which do not follow each other in a tight
 * loop: the victims' queue lines are written by their owners at every
 * switch, and each read of ours makes the owner's next write a miss.
 *
 * The wait is a sched_yield, not pause instructions, while no carrier is
 * stuck: on a shared machine the task waiting for this CPU is often the
 * one about to make our next work (a server's client on the same cores:
 * pausing held the CPU it needed, and B7's server spent about a quarter
 * more CPU per request, bench/RESULTS.md); on an idle CPU the call
 * returns after its ~0.2 us of system call (B5's ring, whose carriers
 * spin between hops, did not change). With a carrier stuck (a hog, whose
 * P was handed off) the tasks it would yield to are our own hogs, and the
 * thread it spins to run would wait behind their time slices: there it
 * pauses. */
static void spin_pause(void)
{
    if (likely(!atomic_load_explicit(&weft__S.nstuck, memory_order_relaxed))) {
        sched_yield();
        return;
    }
    for (int i = 0; i < STEAL_PAUSES; i++)
        weft__cpu_relax();
}

static bool try_spin(weft__carrier *m)
{
    if (m->spinning)
        return true;
    /* P's in circulation: nprocs, plus one per stuck carrier. */
    int64_t busy = (int64_t)weft__S.nprocs +
        atomic_load_explicit(&weft__S.nstuck, memory_order_relaxed) -
        atomic_load_explicit(&weft__S.npidle, memory_order_relaxed);
    /* Go's rule: at most half the busy P's' carriers spin at once. */
    if (2 * (int64_t)atomic_load_explicit(&weft__S.nmspinning,
                                          memory_order_relaxed) >= busy)
        return false;
    m->spinning = true;
    atomic_fetch_add_explicit(&weft__S.nmspinning, 1, memory_order_seq_cst);
    return true;
}

/* A victim's runnext is the thread its running thread just woke: it will
 * most likely run there within microseconds (a message exchange). A thief
 * takes it only if the same thread has sat there for STEAL_RUNNEXT_NS. */
static weft_thread *steal_runnext(weft__carrier *m, weft__proc *victim,
                                  int64_t now)
{
    uint32_t put = atomic_load_explicit(&victim->runnext_puts,
                                        memory_order_relaxed);
    weft_thread *g = atomic_load_explicit(&victim->runnext,
                                          memory_order_acquire);
    if (!g)
        return NULL;
    /* A stuck P's runnext would wait for nothing. */
    if (weft__proc_handed_off(victim))
        goto take;
    if (g != m->seen_runnext || put != m->seen_runnext_put) {
        m->seen_runnext = g;
        m->seen_runnext_put = put;
        m->seen_runnext_at = now;
        return NULL;
    }
    if (now - m->seen_runnext_at < STEAL_RUNNEXT_NS)
        return NULL;
take:
    m->seen_runnext = NULL;
    weft__runq_thief_enter(victim);
    bool took = atomic_compare_exchange_strong_explicit(
        &victim->runnext, &g, NULL, memory_order_acq_rel,
        memory_order_relaxed);
    weft__runq_thief_leave(victim);
    return took ? g : NULL;
}

/* Runnexts are read a few times per grace period, not at every round:
 * a thread handing messages on writes its runnext at each one, and each
 * read of ours would cost it a cache miss at its next. */
static bool runnext_look_due(weft__carrier *m, int64_t now)
{
    if (now - m->runnext_looked_at < STEAL_RUNNEXT_NS / 4)
        return false;
    m->runnext_looked_at = now;
    return true;
}

/* Whether victim's ring holds a thread that has waited STEAL_AGE_NS.
 *
 * A thread queued behind a running one usually runs where it is within
 * microseconds: a spawner's children (the spawner yields to them every
 * WEFT__SPAWN_BACKLOG spawns), a server's woken connections. Stealing it
 * moves its record and stack to another core, several cache misses on
 * each side, more than the thread's whole run (B1 at 2 P's took about 7
 * times as long per thread as at one). So a thief steals only what the owner
 * has left waiting: threads that were queued at a thief's last look and
 * are still there STEAL_AGE_NS later. The look records the tail; a head
 * short of it means one of those threads waits yet. No stamp per thread:
 * the owner's path is unchanged.
 *
 * Thieves look at most once per STEAL_AGE_NS per victim, and share the
 * look (victim's looked_*, a line the owner never touches): each read
 * of head and tail costs the owner a miss at its next queue operation,
 * and a spinner reading them at every round cost B1 a third. Relaxed: a
 * look torn between two thieves moves one steal by a period. A thief
 * that finds nothing keeps spinning, and an idler that sees queued work
 * does not sleep (idle.c), so aged work is always seen: a thread waits
 * at most two periods for a thief. A stuck P's threads wait for nothing:
 * taken at the next look, however long they have waited (stuck is read
 * only then: it shares a line with the stamp the owner writes at every
 * switch). */
static bool ring_waited(weft__proc *victim, int64_t now)
{
    int64_t at = atomic_load_explicit(&victim->looked_at,
                                      memory_order_relaxed);
    if (at && now - at < STEAL_AGE_NS)
        return false;
    if (weft__proc_handed_off(victim)) /* on the line of the owner's stamp */
        return !weft__runq_empty(victim);
    uint32_t h = atomic_load_explicit(&victim->head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&victim->tail, memory_order_relaxed);
    uint32_t seen = atomic_load_explicit(&victim->looked_tail,
                                         memory_order_relaxed);
    bool waited = at && (int32_t)(seen - h) > 0;
    atomic_store_explicit(&victim->looked_tail, t, memory_order_relaxed);
    atomic_store_explicit(&victim->looked_at, waited ? 0 : now,
                          memory_order_relaxed);
    return waited;
}

static weft_thread *steal(weft__carrier *m, int64_t now)
{
    weft__proc *p = m->p;
    uint32_t n = weft__nallp();
    uint32_t start = fastrand(p) % n;
    bool look_runnext = runnext_look_due(m, now);
    for (uint32_t i = 0; i < n; i++) {
        weft__proc *victim = &weft__S.procs[(start + i) % n];
        if (victim == p)
            continue;
        weft_thread *g =
            ring_waited(victim, now) ? weft__runq_steal(p, victim) : NULL;
        if (!g && look_runnext)
            g = steal_runnext(m, victim, now);
        if (g) {
            WEFT__TRACE(weft__trace_steal(m, g, victim));
            return g;
        }
    }
    return NULL;
}

bool weft__work_anywhere(void)
{
    if (atomic_load_explicit(&weft__S.gq_size, memory_order_seq_cst))
        return true;
    for (uint32_t i = 0, n = weft__nallp(); i < n; i++)
        if (!weft__runq_empty(&weft__S.procs[i]))
            return true;
    for (uint32_t i = 0, n = atomic_load(&weft__S.ncarriers); i < n; i++)
        if (weft__bound_pending(weft__S.carriers[i]))
            return true;
    return false;
}

static void run_all_timers(weft__carrier *m)
{
    int64_t now = weft_now();
    m->wake_fifo = true;
    for (uint32_t i = 0, n = weft__nallp(); i < n; i++)
        weft__timers_run(&weft__S.procs[i], now);
    m->wake_fifo = false;
}

/* Runs on: m's scheduler context, m holding no P. A thread bound to m
 * that is runnable, with an idle P taken for it if there is one; else it
 * runs without a P (bind.c). */
static weft_thread *bound_without_p(weft__carrier *m)
{
    weft_thread *g = weft__bound_take(m);
    if (!g)
        return NULL;
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    bool took = weft__take_idle_p_locked(m);
    weft__spin_unlock(&weft__S.lock);
    if (took) /* a P is busy: the monitor watches it */
        weft__monitor_kick();
    stop_spinning(m);
    return g;
}

/* Runs on: m's scheduler context. Returns the next thread to run on m, or
 * NULL when the runtime stops (or m must end: see weft__proc_retire). */
static weft_thread *find_runnable(weft__carrier *m)
{
    weft_thread *pending = take_fiber_next(m);
    if (pending)
        return pending;
    for (;;) {
        if (atomic_load_explicit(&weft__S.done, memory_order_acquire))
            return NULL;
        if (unlikely(m->hog))
            weft__hog_returned(m);
        if (m->p && weft__proc_handed_off(m->p) && weft__proc_retire(m) &&
            !atomic_load_explicit(&m->nbound, memory_order_relaxed)) {
            stop_spinning(m); /* another carrier looks for work instead */
            weft__timer_waiting_hand_on();
            return NULL;      /* demoted for good: this carrier ends */
        }
        if (!m->p) {
            weft_thread *b = bound_without_p(m);
            if (b)
                return b;
            run_all_timers(m);
            weft__carrier_idle(m);
            continue;
        }
        run_all_timers(m);
        weft_thread *g = weft__pick_local(m);
        if (!g && (weft__poll.fetch(m) || weft__poll.fetch_others(m)))
            g = weft__pick_local(m);
        if (g) {
            stop_spinning(m);
            return g;
        }
        if (try_spin(m)) {
            int64_t start = weft_now(), now = start;
            unsigned round = 0;
            do {
                g = steal(m, now);
                if (!g)
                    g = weft__pick_local(m);
                /* I/O events count as work found: a spinning carrier
                 * makes no system call, so under io_uring its own ring's
                 * completions wait for it to look. */
                if (!g && (++round % IO_SPIN_POLL_EVERY) == 0 &&
                    (weft__poll.fetch(m) || weft__poll.fetch_others(m)))
                    g = weft__pick_local(m);
                if (g) {
                    stop_spinning(m);
                    return g;
                }
                int64_t next_timer = weft__timers_next();
                if (next_timer >= 0 && next_timer <= now)
                    break;
                spin_pause();
                now = weft_now();
            } while (now - start < SPIN_NS &&
                     !atomic_load_explicit(&weft__S.done,
                                           memory_order_relaxed));
            if (g || now - start < SPIN_NS)
                continue;
        }
        weft__carrier_idle(m);
    }
}

/* Runs on: m's own OS thread. The scheduler loop. */
void weft__carrier_loop(weft__carrier *m)
{
    for (;;) {
        weft_thread *g = find_runnable(m);
        if (!g)
            return;
        if (unlikely(weft__fiber_missing(g->stack->tsan_fiber)))
            g->stack->tsan_fiber = weft__fiber_create();
        __atomic_store_n(&m->cur, g, __ATOMIC_RELAXED);
        atomic_store_explicit(&g->state, WEFT__G_RUNNING, memory_order_relaxed);
        if (likely(m->p))
            weft__proc_stamp(m->p, WEFT__STAMP_IN_G);
        WEFT__TRACE(weft__trace_run(m, g));
        weft__fiber_leave(&m->fake_stack, g->stack->lo, g->stack->size,
                          g->stack->tsan_fiber);
        weft__ctx_switch(&m->sched_ctx, &g->ctx);
        weft__fiber_arrive(m->fake_stack);
        weft__after_switch_on(m);
    }
}
