/* SPDX-License-Identifier: MIT */
/*
 * runq.h — the owner's side of a P's local run queue, inline because it is
 * on the path of every switch. The protocol is described in proc.c.
 *
 * Thieves take from head and runnext with a CAS. The owner took the same
 * way, one locked instruction at every switch (about a sixth of a bare
 * switch), though steals are rare: a thief takes only threads their P
 * has left waiting (loop.c). So the owner announces itself (owner_in) and,
 * while no thief is at work, takes with plain loads and stores; a thief
 * announces itself (thieves), makes the owner's announcement visible with
 * the heavy side of the asymmetric fence (base/fence.h: membarrier, some
 * microseconds) and waits for the owner to leave. Either the owner sees
 * the thief and takes with a CAS as thieves do, or the thief sees the
 * owner and waits for it: never both on plain stores. Without membarrier
 * the owner always takes with the CAS.
 */
#ifndef WEFT_SCHED_RUNQ_H
#define WEFT_SCHED_RUNQ_H

#include "base/fence.h"
#include "sched/proc.h"
#include "sched/thread.h"

#define WEFT__RUNQ_MASK (WEFT__RUNQ_SIZE - 1)
_Static_assert((WEFT__RUNQ_SIZE & WEFT__RUNQ_MASK) == 0,
               "ring size: power of 2");

bool weft__runq_put_slow(weft__proc *p, weft_thread *g, uint32_t h,
                         uint32_t t);

/* Runs on: owner of p. Whether it may take from head and runnext with
 * plain loads and stores until weft__runq_owner_leave (see top of file). */
static inline bool weft__runq_owner_enter(weft__proc *p)
{
    if (unlikely(!weft__fence_asym))
        return false;
    atomic_store_explicit(&p->owner_in, 1, memory_order_relaxed);
    /* The light side of the fence: a compiler barrier (asym). */
    atomic_signal_fence(memory_order_seq_cst);
    /* acquire: a thief's CAS on head is seen once it has left. */
    if (likely(!atomic_load_explicit(&p->thieves, memory_order_acquire)))
        return true;
    atomic_store_explicit(&p->owner_in, 0, memory_order_release);
    return false;
}

/* release: the owner's plain stores are seen by a thief that saw it go. */
static inline void weft__runq_owner_leave(weft__proc *p)
{
    atomic_store_explicit(&p->owner_in, 0, memory_order_release);
}

/* Runs on: owner of p. Puts g at the ring's tail (yields, spawns, loot):
 * inline in full, since a yield's requeue is on the path of every switch
 * it makes. */
static inline __attribute__((always_inline)) void weft__runq_put_tail(
    weft__proc *p, weft_thread *g)
{
    for (;;) {
        /* acquire: pairs with thieves' CAS on head, so their reads of the
         * slots they took are done before we reuse those slots. */
        uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
        if (likely(t - h < WEFT__RUNQ_SIZE)) {
            atomic_store_explicit(&p->ring[t & WEFT__RUNQ_MASK], g,
                                  memory_order_relaxed);
            /* release: publishes the slot (and g) to thieves. */
            atomic_store_explicit(&p->tail, t + 1, memory_order_release);
            return;
        }
        if (weft__runq_put_slow(p, g, h, t))
            return;
    }
}

/* Runs on: owner of p. Puts g in runnext, to run next; the previous
 * occupant moves to the ring's tail. */
static inline void weft__runq_put_next(weft__proc *p, weft_thread *g)
{
    atomic_store_explicit(&p->runnext_puts,
                          atomic_load_explicit(&p->runnext_puts,
                                               memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* An empty runnext changes only by our own hand (thieves take a
     * thread out, never put one in): a plain store fills it, saving the
     * locked exchange on the path of every message exchange.
     * release: g's state is visible to a thief that takes it. */
    if (!atomic_load_explicit(&p->runnext, memory_order_relaxed)) {
        atomic_store_explicit(&p->runnext, g, memory_order_release);
        return;
    }
    if (likely(weft__runq_owner_enter(p))) {
        /* Read again: a thief may have taken it before we entered. */
        weft_thread *old =
            atomic_load_explicit(&p->runnext, memory_order_relaxed);
        atomic_store_explicit(&p->runnext, g, memory_order_release);
        weft__runq_owner_leave(p);
        g = old;
    } else {
        g = atomic_exchange_explicit(&p->runnext, g, memory_order_acq_rel);
    }
    if (g)
        weft__runq_put_tail(p, g);
}

/* Runs on: owner of p. */
static inline weft_thread *weft__runq_get(weft__proc *p)
{
    if (likely(weft__runq_owner_enter(p))) {
        weft_thread *g =
            atomic_load_explicit(&p->runnext, memory_order_relaxed);
        if (g) {
            atomic_store_explicit(&p->runnext, NULL, memory_order_relaxed);
        } else {
            uint32_t h = atomic_load_explicit(&p->head, memory_order_relaxed);
            if (h != atomic_load_explicit(&p->tail, memory_order_relaxed)) {
                g = atomic_load_explicit(&p->ring[h & WEFT__RUNQ_MASK],
                                         memory_order_relaxed);
                atomic_store_explicit(&p->head, h + 1, memory_order_relaxed);
            }
        }
        weft__runq_owner_leave(p);
        return g;
    }
    weft_thread *g = atomic_load_explicit(&p->runnext, memory_order_relaxed);
    if (g && atomic_compare_exchange_strong_explicit(
                 &p->runnext, &g, NULL, memory_order_acquire,
                 memory_order_relaxed))
        return g;
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
        if (t == h)
            return NULL;
        g = atomic_load_explicit(&p->ring[h & WEFT__RUNQ_MASK],
                                 memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&p->head, &h, h + 1,
                                                  memory_order_release,
                                                  memory_order_relaxed))
            return g;
    }
}

/* Runs on: owner of p. Whether p's own queues hold a thread. */
static inline bool weft__runq_busy(weft__proc *p)
{
    return atomic_load_explicit(&p->runnext, memory_order_relaxed) ||
           atomic_load_explicit(&p->tail, memory_order_relaxed) !=
               atomic_load_explicit(&p->head, memory_order_relaxed);
}

#endif
