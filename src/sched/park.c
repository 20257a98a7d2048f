/* SPDX-License-Identifier: MIT */
/*
 * park.c — how a thread waits and how it is woken, for virtual threads and
 * OS threads alike.
 *
 * A wait has up to three kinds of party that may end it: the object's wakers
 * (who find the waiter record in the object's queue, under the object's
 * lock), a timer (the wait's own deadline) and interrupters (cancellation of
 * a scope the thread is in). Exactly one party *claims* the wait; only the
 * claimer writes the result and makes the thread run again. A waiter record
 * found in a queue but already claimed by someone else is skipped (and
 * unlinked) by wakers; its owner unlinks it otherwise.
 *
 * Virtual thread. The claim word g->claim = gen << 2 | interruptible << 1 |
 * claimed. weft__wait_begin starts generation gen + 1 with claimed = 0; a
 * waker holding a record of generation gen claims with a CAS that succeeds
 * only for that generation, so a stale record (a timer that fired late) can
 * never end a later wait. An interrupter claims whatever wait is current,
 * if it is interruptible.
 *
 * The park handshake (g->park) decides who requeues the thread, because a
 * claim may land before the thread is off its stack:
 *
 *   wait_begin:      RUNNING  -> PARKING          (g, on its stack)
 *   switched away:   PARKING  -> PARKED           (next context, CAS)
 *                    NOTIFIED -> RUNNING, requeue (next context, if CAS failed)
 *   claimer:         PARKING  -> NOTIFIED         (g will requeue itself)
 *                    PARKED   -> RUNNING, requeue (claimer requeues)
 *
 * The two parties race only on PARKING, and both leave it by a CAS, so
 * exactly one of them requeues the thread and no wake-up is lost: if the
 * claim comes first, the thread sees NOTIFIED when it tries to park; if the
 * park comes first, the claimer sees PARKED. PARKED is left only by the
 * claimer (a plain store: no one else may touch a parked thread).
 *
 * Cancellation is a Dekker pair: the canceller stores the scope's reason and
 * then reads the claim word; wait_begin stores the claim word and then reads
 * the reason. One of the two sees the other, so a wait that begins during a
 * cancellation either fails at once or is interrupted. The fences between
 * store and load are asymmetric (base/fence.h): a compiler barrier on the
 * waiter's side, which every channel operation crosses, and membarrier(2)
 * on the canceller's, which is rare.
 *
 * OS thread. The record's os_word goes from 0 to OS_CLAIMED by one CAS (the
 * claim), then to result + 1 (completion); the thread sleeps on it as a
 * futex until it holds a result. A waker that claims and completes in one
 * go (weft__wake) skips OS_CLAIMED.
 */
#include <errno.h>
#include <time.h>

#include "base/fence.h"
#include "base/futex.h"
#include "sched/carrier.h"
#include "sched/monitor.h"
#include "sched/park.h"
#include "sched/scope.h"
#include "sched/thread.h"
#include "sched/timer.h"

#define CLAIMED 1u
#define INTERRUPTIBLE 2u
#define OS_CLAIMED UINT32_MAX

static int os_block(weft__waiter *w, weft__spinlock *lk, int64_t deadline);

/* Runs on: any thread. Claims wait gen of g. */
static bool claim_gen(weft_thread *g, uint64_t gen)
{
    uint64_t c = atomic_load_explicit(&g->claim, memory_order_acquire);
    while ((c >> 2) == gen && !(c & CLAIMED)) {
        /* acq_rel: acquire pairs with wait_begin's store (so the claimer
         * sees PARKING or later); release orders nothing the thread reads
         * (wake_result travels with the park handshake). */
        if (atomic_compare_exchange_weak_explicit(&g->claim, &c, c | CLAIMED,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            return true;
    }
    return false;
}

/* Runs on: any thread. After a successful claim: makes g run again. */
static void notify(weft_thread *g)
{
    /* Read before the handshake: once g is NOTIFIED it may run on, end,
     * and its record be reused. Set by g at wait_begin, before the claim
     * word our claim acquired. */
    bool carrier_waits = atomic_load_explicit(&g->carrier_waits,
                                              memory_order_relaxed);
    uint32_t s = atomic_load_explicit(&g->park, memory_order_acquire);
    for (;;) {
        if (s == WEFT__PARKING) {
            /* release: publishes wake_result to g, which reads it after
             * seeing NOTIFIED (acquire). */
            if (atomic_compare_exchange_weak_explicit(
                    &g->park, &s, WEFT__NOTIFIED, memory_order_acq_rel,
                    memory_order_acquire)) {
                /* A lock-pinned thread waits on its carrier, with park as
                 * its futex word (block_carrier). */
                if (unlikely(carrier_waits))
                    weft__futex_wake(&g->park, 1);
                return;
            }
        } else if (s == WEFT__PARKED) {
            /* The load's acquire pairs with park_commit's release: g's
             * saved context is complete. PARKED is final for everyone but
             * the claimer, and we are the claimer: a plain store will do. */
            atomic_store_explicit(&g->park, WEFT__RUNNING, memory_order_relaxed);
            weft__ready(g);
            return;
        } else {
            weft__panic("wake of thread #%llu that is not waiting (park %u)",
                        (unsigned long long)g->id, s);
        }
    }
}

/* Runs on: the next context on g's carrier, once g is off its stack. */
void weft__park_commit(weft_thread *g)
{
    uint32_t s = WEFT__PARKING;
    /* release: g's saved context (written by the switch) happens-before a
     * claimer's acquire of PARKED. */
    if (atomic_compare_exchange_strong_explicit(&g->park, &s, WEFT__PARKED,
                                                memory_order_acq_rel,
                                                memory_order_acquire))
        return;
    weft__assert(s == WEFT__NOTIFIED, "park of a thread not parking");
    atomic_store_explicit(&g->park, WEFT__RUNNING, memory_order_relaxed);
    weft__ready(g);
}

/* Runs on: the waiting thread. Starts a wait; w must then be either
 * blocked on (weft__wait_block) or abandoned (weft__wait_abort).
 * Returns 0, or the cancel reason of the caller's scope (then the wait is
 * already over: do not block or abort). */
int weft__wait_begin(weft__waiter *w, int flags, weft__wait_kind kind,
                     const void *obj)
{
    return weft__wait_begin_g(weft__g(), w, flags, kind, obj);
}

/* As weft__wait_begin, for a caller that knows its thread (g: NULL on an
 * OS thread). */
int weft__wait_begin_g(weft_thread *g, weft__waiter *w, int flags,
                       weft__wait_kind kind, const void *obj)
{
    w->link.next = w->link.prev = NULL;
    w->g = g;
    w->data = NULL;
    w->index = 0;
    w->err = 0;
    if (!g) {
        w->osw = &w->os_word;
        atomic_store_explicit(w->osw, 0, memory_order_relaxed);
        return 0;
    }
    /* Release: pairs with the dump's acquire, which reads the object (an
     * fd record's number) made before the wait. */
    atomic_store_explicit(&g->wait_obj, obj, memory_order_release);
    atomic_store_explicit(&g->wait_since, weft__tick_now(),
                          memory_order_relaxed);
    atomic_store_explicit(&g->wait_kind, kind, memory_order_relaxed);
    atomic_store_explicit(&g->state, WEFT__G_WAITING, memory_order_relaxed);
    atomic_store_explicit(&g->park, WEFT__PARKING, memory_order_relaxed);
    /* A thread holding a pthread lock waits on its carrier (block_carrier);
     * published with the claim word, for notify. */
    atomic_store_explicit(&g->carrier_waits, g->plocks != 0,
                          memory_order_relaxed);
    uint64_t interruptible = (flags & WEFT__WAIT_INTERRUPTIBLE) ? INTERRUPTIBLE : 0;
    w->gen = (atomic_load_explicit(&g->claim, memory_order_relaxed) >> 2) + 1;
    /* release: publishes park = PARKING to whoever claims. */
    atomic_store_explicit(&g->claim, w->gen << 2 | interruptible,
                          memory_order_release);
    if (!interruptible)
        return 0;
    /* The waiter's half of the Dekker pair with the canceller (see top of
     * file): the claim word is stored before the reason is read. */
    weft__fence_light();
    int reason = atomic_load_explicit(&g->cur->reason, memory_order_relaxed);
    if (!reason)
        return 0;
    if (!(flags & WEFT__WAIT_LOCKED)) {
        int r = weft__wait_abort(w);
        return r ? r : reason;
    }
    /* The caller holds a spinlock, so we must not park. If an interrupter
     * claimed the wait first, its notify is a few instructions away. */
    if (!claim_gen(g, w->gen))
        while (atomic_load_explicit(&g->park, memory_order_acquire) !=
               WEFT__NOTIFIED)
            weft__cpu_relax();
    atomic_store_explicit(&g->park, WEFT__RUNNING, memory_order_relaxed);
    atomic_store_explicit(&g->state, WEFT__G_RUNNING, memory_order_relaxed);
    atomic_store_explicit(&g->wait_kind, WEFT__WAIT_NONE, memory_order_relaxed);
    return reason;
}

/* Runs on: the waiting thread. Ends a wait that it decided not to block
 * on. Returns 0, or the result of the party that claimed the wait first
 * (then the caller must act on that result: a value handed over is its). */
int weft__wait_abort(weft__waiter *w)
{
    weft_thread *g = w->g;
    if (!g) {
        uint32_t zero = 0;
        if (atomic_compare_exchange_strong_explicit(
                w->osw, &zero, 1, memory_order_acq_rel,
                memory_order_acquire))
            return 0;
        return os_block(w, NULL, -1);
    }
    if (claim_gen(g, w->gen)) {
        atomic_store_explicit(&g->park, WEFT__RUNNING, memory_order_relaxed);
        atomic_store_explicit(&g->state, WEFT__G_RUNNING, memory_order_relaxed);
        atomic_store_explicit(&g->wait_kind, WEFT__WAIT_NONE,
                              memory_order_relaxed);
        return 0;
    }
    return weft__wait_block(w, NULL, -1);
}

/* Not sync: g's wait may be over by now; then the claim of its old
 * generation fails (g's record outlives any wait of it). */
static void wait_timer_fire(void *arg, uint64_t gen)
{
    weft_thread *g = arg;
    if (claim_gen(g, gen)) {
        g->wake_result = WEFT__EXPIRED;
        notify(g);
    }
}

static int os_block(weft__waiter *w, weft__spinlock *lk, int64_t deadline)
{
    if (lk)
        weft__spin_unlock(lk);
    for (;;) {
        uint32_t v = atomic_load_explicit(w->osw, memory_order_acquire);
        if (v == OS_CLAIMED) { /* claimed: the result is on its way */
            weft__futex_wait(w->osw, OS_CLAIMED, -1);
            continue;
        }
        if (v)
            return (int)v - 1;
        if (deadline >= 0 && weft_now() >= deadline) {
            uint32_t zero = 0;
            if (atomic_compare_exchange_strong_explicit(
                    w->osw, &zero, WEFT__EXPIRED + 1,
                    memory_order_acq_rel, memory_order_acquire))
                return WEFT__EXPIRED;
            continue;
        }
        weft__futex_wait(w->osw, 0, deadline);
    }
}

/* Runs on: g, between weft__wait_begin and weft__wait_block, having just
 * released its last pthread lock (a condition wait, foreign/locks.c): the
 * wait may switch after all. A notify that read the old value only makes
 * a futex wake no one waits for. */
void weft__wait_may_switch(weft_thread *g)
{
    atomic_store_explicit(&g->carrier_waits, g->plocks != 0,
                          memory_order_relaxed);
}

/* Runs on: g, which holds a pthread lock (foreign/locks.c): a wait that
 * must not switch, since another thread of this carrier could block it
 * waiting for that lock. The carrier waits with g on it, marked blocking
 * so that the monitor moves its P's other threads; notify() wakes it. */
static void block_carrier(weft_thread *g, weft__spinlock *lk)
{
    if (lk)
        weft__spin_unlock(lk);
    weft__blocking_enter();
    /* notify() wakes the futex after it moves park off PARKING; the
     * futex checks the value, so a wake before the wait is not lost. */
    while (atomic_load_explicit(&g->park, memory_order_acquire) ==
           WEFT__PARKING)
        weft__futex_wait(&g->park, WEFT__PARKING, -1);
    atomic_store_explicit(&g->park, WEFT__RUNNING, memory_order_relaxed);
    atomic_store_explicit(&g->state, WEFT__G_RUNNING, memory_order_relaxed);
    weft__blocking_leave(); /* never switches while g holds a lock */
}

/* Runs on: the waiting thread, after weft__wait_begin and after linking w
 * where wakers find it. Releases lk (if not NULL) once the thread can no
 * longer miss a wake-up. Blocks until the wait is claimed; deadline_ns < 0:
 * none. Returns the claimer's result (WEFT__EXPIRED: the deadline passed).
 * If the result is not a waker's, w may still be linked: the caller unlinks
 * it under the object's lock. */
int weft__wait_block(weft__waiter *w, weft__spinlock *lk, int64_t deadline)
{
    weft_thread *g = w->g;
    if (!g)
        return os_block(w, lk, deadline);
    weft__timer t;
    bool timed = deadline >= 0;
    if (timed) {
        atomic_store_explicit(&g->wait_until, deadline, memory_order_relaxed);
        t.fn = wait_timer_fire;
        t.arg = g;
        t.gen = w->gen;
        t.sync = false;
        atomic_init(&t.state, WEFT__TIMER_IDLE);
        /* A timer that cannot be armed (ENOMEM) ends the wait with that
         * error: reported as the deadline passing, a sleep or a time-out
         * would return early and look successful. */
        int ended = deadline <= weft_now() ? WEFT__EXPIRED
                                           : weft__timer_arm(&t, deadline);
        if (ended) {
            timed = false;
            atomic_store_explicit(&g->wait_until, 0, memory_order_relaxed);
            if (claim_gen(g, w->gen)) {
                g->wake_result = ended;
                atomic_store_explicit(&g->park, WEFT__NOTIFIED,
                                      memory_order_relaxed);
            }
        }
    }
    if (atomic_load_explicit(&g->park, memory_order_acquire) == WEFT__NOTIFIED) {
        atomic_store_explicit(&g->park, WEFT__RUNNING, memory_order_relaxed);
        atomic_store_explicit(&g->state, WEFT__G_RUNNING, memory_order_relaxed);
        if (lk)
            weft__spin_unlock(lk);
    } else if (unlikely(atomic_load_explicit(&g->carrier_waits,
                                             memory_order_relaxed))) {
        block_carrier(g, lk);
    } else {
        weft__switch_out(g, WEFT__AFTER_PARK, lk);
    }
    if (timed) {
        weft__timer_disarm(&t);
        atomic_store_explicit(&g->wait_until, 0, memory_order_relaxed);
    }
    atomic_store_explicit(&g->wait_kind, WEFT__WAIT_NONE, memory_order_relaxed);
    return g->wake_result;
}

/* Runs on: any thread, usually holding the lock of the object w waits on.
 * Claims w's wait; on success the caller owns w (it may write what w->data
 * points to) until it calls weft__complete. Returns false if another party
 * claimed it first (w is then its owner's to unlink). */
bool weft__claim(weft__waiter *w)
{
    if (w->g)
        return claim_gen(w->g, w->gen);
    uint32_t zero = 0;
    return atomic_compare_exchange_strong_explicit(
        w->osw, &zero, OS_CLAIMED, memory_order_acq_rel,
        memory_order_acquire);
}

/* Runs on: any thread, after a successful weft__claim. Makes w's thread
 * run with result. w may be gone once this returns. */
void weft__complete(weft__waiter *w, int result)
{
    weft_thread *g = w->g;
    if (g) {
        g->wake_result = result;
        notify(g);
        return;
    }
    /* Read the word's address first: once the result is stored the waiter
     * may return, and w (on its stack) is gone. Waking a futex word that
     * is no longer waited on is harmless (waiters re-check). */
    _Atomic uint32_t *word = w->osw;
    /* release: what the waker wrote through w->data is visible once the
     * waiter sees its result. */
    atomic_store_explicit(word, (uint32_t)result + 1, memory_order_release);
    weft__futex_wake(word, 1);
}

/* Runs on: any thread, usually holding the lock of the object w waits on.
 * Claims w's wait with result and makes its thread run. Returns false if
 * another party claimed it first (w is then its owner's to unlink). */
bool weft__wake(weft__waiter *w, int result)
{
    weft_thread *g = w->g;
    if (!g) {
        _Atomic uint32_t *word = w->osw; /* w may be gone after the CAS */
        uint32_t zero = 0;
        /* release: the object's state handed to the waiter (a value, a
         * lock) is visible once it sees os_word != 0. */
        if (!atomic_compare_exchange_strong_explicit(
                word, &zero, (uint32_t)result + 1, memory_order_acq_rel,
                memory_order_acquire))
            return false;
        weft__futex_wake(word, 1);
        return true;
    }
    if (!claim_gen(g, w->gen))
        return false;
    g->wake_result = result;
    notify(g);
    return true;
}

/* Runs on: any thread. Ends g's current wait with reason if it is
 * interruptible (a cancellation). Returns whether it did. */
bool weft__interrupt(weft_thread *g, int reason)
{
    /* The canceller's half: the reasons stored before, the claim word
     * read after. */
    weft__fence_heavy();
    uint64_t c = atomic_load_explicit(&g->claim, memory_order_seq_cst);
    for (;;) {
        if (!(c & INTERRUPTIBLE) || (c & CLAIMED))
            return false;
        if (atomic_compare_exchange_weak_explicit(&g->claim, &c, c | CLAIMED,
                                                  memory_order_seq_cst,
                                                  memory_order_seq_cst))
            break;
    }
    g->wake_result = reason;
    notify(g);
    return true;
}
