/* SPDX-License-Identifier: MIT */
/*
 * timer.c — per-P timer heaps: the deadlines of sleeps, timed waits and
 * scope deadlines; the clock (weft_now) and weft_sleep.
 *
 * Each P has a binary min-heap of armed timers under its own lock, so that
 * threads arming timers on different P's do not contend. A timer is armed
 * on the P of the carrier that arms it (P 0 from an OS thread or a carrier
 * without a P); any carrier may fire any P's due timers, so a timer never
 * waits for its own P to come back from a long-running thread if another
 * carrier is free.
 *
 * States (weft__timer.state):
 *   IDLE    in no heap; its owner may arm or free it
 *   ARMED   in t->p's heap (heap lock guards heap_index and when)
 *   FIRING  popped by a carrier that is running fn outside the lock, for
 *           a sync timer; disarm waits for it to go back to IDLE. A wait
 *           timer is not sync: the thread it wakes may run on another
 *           carrier before the firing carrier is back from waking it (and
 *           that carrier may be preempted for milliseconds), so it must
 *           not wait for the callback to return.
 * p->timer_next caches the heap's minimum so that the scheduler can skip
 * the lock (and the clock read) when nothing is due.
 *
 * An armed timer's due time may be later than its place in the heap
 * (when): weft__timer_reset pushes a timer back by writing due alone, and
 * the carrier that finds it at the top files it again at due instead of
 * firing it. A server that moves a connection's idle deadline forward at
 * every request pays a lock, not two walks of a heap holding every other
 * connection's deadline; the price is one early look per push-back.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "base/fault.h"
#include "base/real.h"
#include "sched/carrier.h"
#include "sched/park.h"
#include "sched/proc.h"
#include "sched/scope.h"
#include "sched/thread.h"
#include "sched/timer.h"

int64_t weft_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void heap_set(weft__proc *p, uint32_t i, weft__timer *t)
{
    p->timers[i] = t;
    t->heap_index = i;
}

static void sift_up(weft__proc *p, uint32_t i)
{
    weft__timer *t = p->timers[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (p->timers[parent]->when <= t->when)
            break;
        heap_set(p, i, p->timers[parent]);
        i = parent;
    }
    heap_set(p, i, t);
}

static void sift_down(weft__proc *p, uint32_t i)
{
    weft__timer *t = p->timers[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= p->ntimers)
            break;
        if (c + 1 < p->ntimers && p->timers[c + 1]->when < p->timers[c]->when)
            c++;
        if (t->when <= p->timers[c]->when)
            break;
        heap_set(p, i, p->timers[c]);
        i = c;
    }
    heap_set(p, i, t);
}

/* Under p's heap lock. */
static void heap_remove(weft__proc *p, uint32_t i)
{
    weft__timer *last = p->timers[--p->ntimers];
    if (i < p->ntimers) {
        heap_set(p, i, last);
        sift_down(p, i);
        sift_up(p, last->heap_index);
    }
}

static void update_next(weft__proc *p)
{
    int64_t next = p->ntimers ? p->timers[0]->when : INT64_MAX;
    /* seq_cst: read by an idling timer waiter (idle.c). */
    atomic_store_explicit(&p->timer_next, next, memory_order_seq_cst);
}

static bool heap_reserve(weft__proc *p)
{
    if (p->ntimers < p->timer_cap)
        return true;
    uint32_t cap = p->timer_cap ? 2 * p->timer_cap : 64;
    weft__timer **timers = weft__realloc(p->timers, cap * sizeof *timers);
    if (!timers)
        return false;
    p->timers = timers;
    p->timer_cap = cap;
    return true;
}

/* Runs on: any thread. t must be IDLE. Returns 0, or ENOMEM. */
int weft__timer_arm(weft__timer *t, int64_t when)
{
    weft__carrier *m = weft__m();
    weft__proc *p = m && m->p ? m->p : &weft__S.procs[0];
    weft__spin_lock(&p->timer_lock, WEFT__LOCK_TIMERS);
    if (!heap_reserve(p)) {
        weft__spin_unlock(&p->timer_lock);
        return ENOMEM;
    }
    t->when = t->due = when;
    t->p = p;
    p->timers[p->ntimers] = t;
    t->heap_index = p->ntimers++;
    sift_up(p, t->heap_index);
    /* release: when and heap are visible to a disarm that sees ARMED. */
    atomic_store_explicit(&t->state, WEFT__TIMER_ARMED, memory_order_release);
    bool earliest = p->timers[0] == t;
    if (earliest)
        update_next(p);
    weft__spin_unlock(&p->timer_lock);
    if (earliest)
        weft__timer_waiter_kick(when);
    return 0;
}

/* Runs on: any thread. After it returns, t is IDLE and its callback is not
 * running: t may be freed. */
void weft__timer_disarm(weft__timer *t)
{
    for (unsigned spins = 0;;) {
        int st = atomic_load_explicit(&t->state, memory_order_acquire);
        if (st == WEFT__TIMER_IDLE)
            return;
        if (st == WEFT__TIMER_FIRING) {
            if (++spins < 256)
                weft__cpu_relax();
            else
                sched_yield(); /* the firing carrier may be preempted */
            continue;
        }
        weft__proc *p = t->p;
        weft__spin_lock(&p->timer_lock, WEFT__LOCK_TIMERS);
        if (atomic_load_explicit(&t->state, memory_order_relaxed) ==
            WEFT__TIMER_ARMED) {
            heap_remove(p, t->heap_index);
            atomic_store_explicit(&t->state, WEFT__TIMER_IDLE,
                                  memory_order_relaxed);
            update_next(p);
            weft__spin_unlock(&p->timer_lock);
            return;
        }
        weft__spin_unlock(&p->timer_lock);
    }
}

/* Runs on: any thread that may arm t. Moves t's deadline to when, arming
 * it if it is idle: as disarm then arm, but a later deadline for an armed
 * timer is only recorded (see the top of the file). Returns 0, or ENOMEM
 * (t is then idle). */
int weft__timer_reset(weft__timer *t, int64_t when)
{
    if (atomic_load_explicit(&t->state, memory_order_acquire) ==
        WEFT__TIMER_ARMED) {
        weft__proc *p = t->p;
        weft__spin_lock(&p->timer_lock, WEFT__LOCK_TIMERS);
        bool later = atomic_load_explicit(&t->state, memory_order_relaxed) ==
                         WEFT__TIMER_ARMED &&
                     when >= t->when;
        if (later)
            t->due = when;
        weft__spin_unlock(&p->timer_lock);
        if (later)
            return 0;
    }
    weft__timer_disarm(t);
    return weft__timer_arm(t, when);
}

/* Under p's heap lock: if p's earliest timer was pushed back past now,
 * files it again at its due time. Returns whether it did. */
static bool refile_top(weft__proc *p, int64_t now)
{
    weft__timer *t = p->timers[0];
    if (t->due <= now)
        return false;
    t->when = t->due;
    sift_down(p, 0);
    update_next(p);
    return true;
}

/* Runs on: any carrier. Fires p's timers due at now. */
bool weft__timers_run(weft__proc *p, int64_t now)
{
    bool fired = false;
    while (atomic_load_explicit(&p->timer_next, memory_order_acquire) <= now) {
        weft__spin_lock(&p->timer_lock, WEFT__LOCK_TIMERS);
        if (!p->ntimers || p->timers[0]->when > now) {
            weft__spin_unlock(&p->timer_lock);
            break;
        }
        if (refile_top(p, now)) {
            weft__spin_unlock(&p->timer_lock);
            continue;
        }
        weft__timer *t = p->timers[0];
        heap_remove(p, 0);
        void (*fn)(void *, uint64_t) = t->fn;
        void *arg = t->arg;
        uint64_t gen = t->gen;
        bool sync = t->sync;
        /* release (IDLE): the copies above are taken before the owner may
         * reuse the timer. */
        atomic_store_explicit(&t->state,
                              sync ? WEFT__TIMER_FIRING : WEFT__TIMER_IDLE,
                              memory_order_release);
        update_next(p);
        weft__spin_unlock(&p->timer_lock);
        fn(arg, gen);
        /* release: the callback's effects precede disarm's return. */
        if (sync)
            atomic_store_explicit(&t->state, WEFT__TIMER_IDLE,
                                  memory_order_release);
        fired = true;
    }
    return fired;
}

/* Runs on: any thread. The earliest armed deadline, or -1 if none. */
int64_t weft__timers_next(void)
{
    int64_t next = INT64_MAX;
    for (uint32_t i = 0, n = weft__nallp(); i < n; i++) {
        int64_t w = atomic_load_explicit(&weft__S.procs[i].timer_next,
                                         memory_order_seq_cst);
        if (w < next)
            next = w;
    }
    return next == INT64_MAX ? -1 : next;
}

void weft__timers_free(weft__proc *p)
{
    free(p->timers);
    p->timers = NULL;
    p->ntimers = p->timer_cap = 0;
}

/* ----------------------------------------------------------------- sleep */

static void os_sleep(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (weft__real(nanosleep)(&ts, &ts) == -1 && errno == EINTR) {
    }
}

int weft_sleep(int64_t ns)
{
    weft_thread *g = weft__g();
    if (!g) {
        if (ns > 0)
            os_sleep(ns);
        return 0;
    }
    if (ns <= 0)
        return atomic_load_explicit(&g->cur->reason, memory_order_relaxed);
    int64_t deadline = weft_now() + ns;
    weft__waiter w;
    int r = weft__wait_begin(&w, WEFT__WAIT_INTERRUPTIBLE, WEFT__WAIT_SLEEP,
                             NULL);
    if (r)
        return r;
    r = weft__wait_block(&w, NULL, deadline);
    return r == WEFT__EXPIRED ? 0 : r;
}
