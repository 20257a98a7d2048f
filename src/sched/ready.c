/* SPDX-License-Identifier: MIT */
/*
 * ready.c — making threads runnable: queueing them (on the caller's P, or
 * globally), and waking an idle carrier to run them.
 *
 * Making a thread runnable wakes a sleeping carrier only when there is an
 * idle P and no carrier is spinning already (weft__wakep). The race
 * between a carrier going idle and a thread being queued is closed
 * Dekker-style: the queuer publishes the thread, then reads npidle; the
 * idler (idle.c) publishes npidle, then re-checks every queue (both
 * seq_cst). One sleeping carrier, the timer waiter, sleeps only until the
 * earliest timer; arming an earlier timer kicks it
 * (weft__timer_waiter_kick).
 *
 * weft__wakep's first look, which finds no idle P while every carrier is
 * busy, is inline (carrier.h), on the path of every wake-up and spawn.
 */
#include "sched/bind.h"
#include "sched/carrier.h"
#include "sched/monitor.h"
#include "sched/park.h"
#include "sched/poll.h"
#include "sched/runq.h"
#include "base/futex.h"
#include "sched/trace.h"

/* Runs on: any thread. Ends m's idle wait, in its futex word or in its
 * I/O port (the port's kick: see io/poller.c for the pairing). */
void weft__carrier_wake(weft__carrier *m)
{
    atomic_store_explicit(&m->wake_word, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&m->in_poll, memory_order_seq_cst))
        weft__poll.kick(m);
    else
        weft__futex_wake(&m->wake_word, 1);
}

/* Runs on: any thread, which saw an idle P (weft__wakep, carrier.h).
 * Wakes an idle carrier unless a carrier is already looking for work.
 * Returns false if there was an idle P but no idle carrier to give it to
 * (the monitor then starts one). */
bool weft__wakep_slow(void)
{
    uint32_t zero = 0;
    if (atomic_load_explicit(&weft__S.nmspinning, memory_order_relaxed) ||
        !atomic_compare_exchange_strong_explicit(&weft__S.nmspinning, &zero, 1,
                                                 memory_order_seq_cst,
                                                 memory_order_relaxed))
        return true;
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    weft__carrier *m = weft__S.idle_m;
    weft__proc *p = weft__S.idle_p;
    if (!m || !p) {
        weft__spin_unlock(&weft__S.lock);
        atomic_fetch_sub_explicit(&weft__S.nmspinning, 1, memory_order_seq_cst);
        if (p) /* every carrier busy or stuck: the monitor starts one */
            weft__monitor_poke();
        return !p;
    }
    weft__S.idle_m = m->idle_next;
    weft__S.nidle_m--;
    weft__S.idle_epoch++;
    weft__S.idle_p = p->idle_next;
    atomic_fetch_sub_explicit(&weft__S.npidle, 1, memory_order_seq_cst);
    m->idle = false;
    m->nextp = p;
    p->m = m;
    m->spinning = true;
    weft__spin_unlock(&weft__S.lock);
    weft__carrier_wake(m);
    return true;
}

/* Runs on: any thread. Queues a runnable thread: on the caller's P (in
 * runnext, so it runs next, near its waker) or, with no P, globally.
 * Threads woken by timers go to the back instead: a batch of expired
 * timers must wake its threads in deadline order, and runnext would
 * reverse it. */
void weft__ready(weft_thread *g)
{
    weft__carrier *m = weft__m_here(); /* never parks */
    /* A forked child wakes a thread of its parent (an object they share):
     * no carrier will ever run it here (fork.c). */
    if (unlikely(!m) && weft__forked_child)
        return;
    WEFT__TRACE(weft__trace_wake(g));
    atomic_store_explicit(&g->state, WEFT__G_RUNNABLE, memory_order_relaxed);
    if (unlikely(g->bound)) {
        weft__bound_ready(g);
        return;
    }
    if (m && m->p) {
        if (m->wake_fifo)
            weft__runq_put_tail(m->p, g);
        else
            weft__runq_put_next(m->p, g);
    } else
        weft__globq_put(g);
    weft__wakep();
}

/* Runs on: any thread; p is its carrier's P, or NULL; g is not bound.
 * Queues g at the back of p, or globally. Inline: it is all of a spawn's
 * queueing. */
static inline __attribute__((always_inline)) void enqueue_unbound(
    weft__proc *p, weft_thread *g)
{
    atomic_store_explicit(&g->state, WEFT__G_RUNNABLE, memory_order_relaxed);
    if (p)
        weft__runq_put_tail(p, g);
    else
        weft__globq_put(g);
    weft__wakep();
}

/* Runs on: any thread; m is the caller's carrier, or NULL. Queues g at
 * the back of m's P, or globally, or in its carrier's bound queue. */
void weft__enqueue_on(weft__carrier *m, weft_thread *g)
{
    /* Read before g is queued: once queued, it may run elsewhere and
     * bind itself. */
    if (likely(!g->bound)) {
        enqueue_unbound(m ? m->p : NULL, g);
        return;
    }
    atomic_store_explicit(&g->state, WEFT__G_RUNNABLE, memory_order_relaxed);
    weft__bound_ready(g);
}

/* Runs on: any thread. Queues g at the back, for yields and new threads. */
void weft__enqueue(weft_thread *g)
{
    weft__enqueue_on(weft__m(), g);
}

/* Runs on: the spawning virtual thread. Queues a new thread; if the P's
 * queue holds WEFT__SPAWN_BACKLOG threads already, the spawner first lets
 * the queued threads run.
 * This is back pressure on spawn storms: a loop spawning a million threads
 * holds a few dozen records and stacks at a time, hot in this P's caches
 * and within its pools of them (WEFT__STACK_CACHE, WEFT__G_CACHE),
 * instead of a million in the global queue. */
void weft__enqueue_spawned(weft_thread *g)
{
    weft__carrier *m = weft__m();
    weft__proc *p = m->p;
    if (p && !m->cur->plocks &&
        atomic_load_explicit(&p->tail, memory_order_relaxed) -
                atomic_load_explicit(&p->head, memory_order_relaxed) >=
            WEFT__SPAWN_BACKLOG) {
        weft__switch_out_on(m, m->cur, WEFT__AFTER_YIELD, NULL);
        p = weft__m()->p;
    }
    /* A new thread is never bound: a pinned one binds where it first
     * runs. */
    enqueue_unbound(p, g);
}

/* Runs on: any thread. The timer waiter sleeps until later than `when`:
 * wake it so that it sleeps again with the new deadline. */
void weft__timer_waiter_kick(int64_t when)
{
    /* INT64_MIN when no carrier waits for timers. */
    if (when >= atomic_load_explicit(&weft__S.timer_wait_until,
                                     memory_order_seq_cst))
        return;
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    weft__carrier *m = weft__S.timer_waiter;
    if (m) {
        weft__S.timer_waiter = NULL;
        atomic_store_explicit(&weft__S.timer_wait_until, INT64_MIN,
                              memory_order_release);
    }
    weft__spin_unlock(&weft__S.lock);
    if (m)
        weft__carrier_wake(m);
}
