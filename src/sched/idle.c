/* SPDX-License-Identifier: MIT */
/*
 * idle.c — idle carriers: giving back the P, sleeping on the futex word
 * or in the I/O port until a waker hands a P over (ready.c), the earliest
 * timer is due, I/O events arrive or the runtime stops; and suspecting,
 * then declaring, a deadlock while every carrier is idle.
 *
 * The idler's half of the Dekker pair with the queuer (ready.c): it
 * publishes npidle (and its idling flag, for bound threads), then
 * re-checks every queue, all seq_cst. One idle carrier at a time is the
 * timer waiter (weft__S.timer_waiter): it sleeps only until the earliest
 * timer, and arming an earlier one kicks it.
 *
 * Runs on: carrier m's scheduler context; takes the scheduler lock
 * (weft__S.lock) for the idle lists and the timer waiter's post.
 */
#include "base/futex.h"
#include "sched/bind.h"
#include "sched/carrier.h"
#include "sched/deadlock.h"
#include "sched/monitor.h"
#include "sched/poll.h"
#include "sched/stack.h"
#include "sched/timer.h"
#include "sched/trace.h"

#define IO_IDLE_RECHECK_NS 50000000 /* see idle_in_poller */
#define DEADLOCK_GRACE_NS 500000000 /* see deadlock.c */

/* Under the scheduler lock: gives m an idle P if there is one. */
bool weft__take_idle_p_locked(weft__carrier *m)
{
    weft__proc *p = weft__S.idle_p;
    if (!p)
        return false;
    weft__S.idle_p = p->idle_next;
    atomic_fetch_sub_explicit(&weft__S.npidle, 1, memory_order_seq_cst);
    p->m = m;
    m->p = p;
    return true;
}

static void remove_idle_m_locked(weft__carrier *m)
{
    for (weft__carrier **pp = &weft__S.idle_m; *pp; pp = &(*pp)->idle_next)
        if (*pp == m) {
            *pp = m->idle_next;
            break;
        }
    m->idle = false;
    weft__S.nidle_m--;
    weft__S.idle_epoch++;
}

/* Leaves the idle state: takes the P a waker handed over, or an idle P. */
static void leave_idle(weft__carrier *m)
{
    atomic_store_explicit(&m->idling, false, memory_order_relaxed);
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    if (weft__S.timer_waiter == m) {
        weft__S.timer_waiter = NULL;
        atomic_store_explicit(&weft__S.timer_wait_until, INT64_MIN,
                              memory_order_release);
    }
    if (m->idle) {
        remove_idle_m_locked(m);
        weft__take_idle_p_locked(m);
    } else {
        m->p = m->nextp;
        m->nextp = NULL;
    }
    weft__spin_unlock(&weft__S.lock);
    weft__monitor_kick();
}

/* A deadlock is suspected when it looks like one (deadlock.c), and
 * confirmed when it still does a grace period later with no carrier having
 * woken in between. Several idle carriers may suspect it at once: only the
 * first to confirm it declares it. */
static bool deadlock_check(uint64_t *epoch, bool confirm)
{
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    bool yes = weft__deadlock_suspected() && !weft__work_anywhere() &&
               (!confirm || (*epoch == weft__S.idle_epoch &&
                             !weft__S.deadlocked));
    if (yes && confirm)
        weft__S.deadlocked = true;
    *epoch = weft__S.idle_epoch;
    weft__spin_unlock(&weft__S.lock);
    return yes;
}

/* Runs on: any thread, weft__S.done set: the carriers and the monitor
 * return. */
void weft__wake_all(void)
{
    for (uint32_t i = 0; i < weft__S.ncarriers; i++)
        weft__carrier_wake(weft__S.carriers[i]);
    weft__monitor_poke();
}

static void idle_in_futex(weft__carrier *m, int64_t until)
{
    while (!atomic_load_explicit(&m->wake_word, memory_order_acquire) &&
           !atomic_load(&weft__S.done)) {
        if (until >= 0 && weft_now() >= until)
            break;
        weft__futex_wait(&m->wake_word, 0, until);
    }
}

/* Returns the port holding events, if the wait ended with some. */
static weft__port *idle_in_poller(weft__carrier *m, int64_t until,
                                  bool orphans)
{
    weft__port *events = NULL;
    atomic_store_explicit(&m->in_poll, true, memory_order_seq_cst);
    while (!events &&
           !atomic_load_explicit(&m->wake_word, memory_order_seq_cst) &&
           !atomic_load(&weft__S.done)) {
        if (until >= 0 && weft_now() >= until)
            break;
        /* A carrier that ended (monitor.c: a demoted one) left its port
         * with nobody waiting in it: while threads wait on fds, idle
         * carriers look at every port every IO_IDLE_RECHECK_NS. Else
         * they sleep until woken: an idle runtime makes no wake-up. */
        int64_t bound = until;
        if (orphans && weft__fd_waiting() &&
            (bound < 0 || bound > weft_now() + IO_IDLE_RECHECK_NS))
            bound = weft_now() + IO_IDLE_RECHECK_NS;
        events = weft__poll.wait(m, bound, &m->wake_word);
        if (!events && bound != until)
            break; /* leave idle and look for work */
    }
    atomic_store_explicit(&m->in_poll, false, memory_order_relaxed);
    return events;
}

/* Gives back m's P and sleeps until a waker hands one over, the earliest
 * timer is due (if m is the timer waiter), I/O events arrive (if m waits
 * in the poller), or the runtime stops. */
void weft__carrier_idle(weft__carrier *m)
{
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    /* A handed-off P: find_runnable retires it first. */
    if (m->p && weft__proc_handed_off(m->p)) {
        weft__spin_unlock(&weft__S.lock);
        return;
    }
    if (m->p) {
        m->p->m = NULL;
        m->p->idle_next = weft__S.idle_p;
        weft__S.idle_p = m->p;
        m->p = NULL;
        atomic_fetch_add_explicit(&weft__S.npidle, 1, memory_order_seq_cst);
    }
    if (m->spinning) {
        m->spinning = false;
        atomic_fetch_sub_explicit(&weft__S.nmspinning, 1, memory_order_seq_cst);
    }
    m->idle = true;
    m->idle_next = weft__S.idle_m;
    weft__S.idle_m = m;
    weft__S.nidle_m++;
    atomic_store_explicit(&m->wake_word, 0, memory_order_relaxed);
    /* seq_cst: pairs with weft__bound_ready, which queues, then reads
     * idling; we set idling, then look at our bound queue below. */
    atomic_store_explicit(&m->idling, true, memory_order_seq_cst);
    bool orphans = weft__S.nexited != 0; /* see idle_in_poller */
    bool timer_waiter = !weft__S.timer_waiter;
    if (timer_waiter) {
        weft__S.timer_waiter = m;
        /* seq_cst: Dekker pair with weft__timer_waiter_kick's caller, which
         * pushes its timer, then reads timer_wait_until. */
        atomic_store_explicit(&weft__S.timer_wait_until, INT64_MAX,
                              memory_order_seq_cst);
    }
    weft__spin_unlock(&weft__S.lock);
    /* The idler's half of the Dekker pair: npidle and nmspinning are
     * published; work queued before that is seen here, work queued after
     * it finds an idle P and calls for a carrier. Work seen while no P is
     * idle is left to the carriers holding the P's (one giving its P up
     * sees it here): leaving would only find no P and come back, a spin
     * that steals their CPU. */
    if (atomic_load(&weft__S.done) || weft__bound_pending(m) ||
        (atomic_load_explicit(&weft__S.npidle, memory_order_seq_cst) &&
         weft__work_anywhere())) {
        leave_idle(m);
        return;
    }
    weft__stacks_trim();
    int64_t until = -1;
    uint64_t epoch = 0;
    bool suspect = false;
    if (timer_waiter) {
        until = weft__timers_next();
        /* A CAS, not a store: a kick that came meanwhile took m off the
         * waiter's post (INT64_MIN) and woke it; a deadline written over
         * that would turn later kicks away while nobody waits. */
        int64_t unset = INT64_MAX;
        if (until >= 0)
            atomic_compare_exchange_strong_explicit(
                &weft__S.timer_wait_until, &unset, until,
                memory_order_seq_cst, memory_order_relaxed);
    }
    if (until < 0 && (suspect = deadlock_check(&epoch, false)))
        until = weft_now() + DEADLOCK_GRACE_NS;
    weft__port *events = NULL;
    WEFT__TRACE(weft__trace_idle(m, true));
    if (weft__poll.idles_in_poller(m, timer_waiter))
        events = idle_in_poller(m, until, orphans);
    else
        idle_in_futex(m, until);
    WEFT__TRACE(weft__trace_idle(m, false));
    if (suspect && !atomic_load_explicit(&m->wake_word, memory_order_acquire)
        && deadlock_check(&epoch, true)) {
        weft__deadlock_declare();
        weft__wake_all();
    }
    leave_idle(m);
    if (events)
        weft__poll.dispatch(events);
}

/* A carrier that ends may have been the timer waiter until it last left
 * idle; carriers that went idle meanwhile wait without a deadline. One of
 * them is woken to idle again, taking the timer waiter's place. */
void weft__timer_waiting_hand_on(void)
{
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    weft__carrier *w = weft__S.timer_waiter ? NULL : weft__S.idle_m;
    weft__spin_unlock(&weft__S.lock);
    if (w)
        weft__carrier_wake(w);
}
