/* SPDX-License-Identifier: MIT */
/*
 * runq.h — the owner's side of a P's local run queue, inline because it is
 * on the path of every switch. The protocol is described in proc.c.
 */
#ifndef WEFT_SCHED_RUNQ_H
#define WEFT_SCHED_RUNQ_H

#include "sched/proc.h"
#include "sched/thread.h"

#define WEFT__RUNQ_MASK (WEFT__RUNQ_SIZE - 1)
_Static_assert((WEFT__RUNQ_SIZE & WEFT__RUNQ_MASK) == 0,
               "ring size: power of 2");

bool weft__runq_put_slow(weft__proc *p, weft_thread *g, uint32_t h,
                         uint32_t t);

/* Runs on: owner of p. next: put g in runnext (the previous occupant moves
 * to the ring's tail). */
static inline void weft__runq_put(weft__proc *p, weft_thread *g, bool next)
{
    if (next) {
        atomic_store_explicit(&p->runnext_puts,
                              atomic_load_explicit(&p->runnext_puts,
                                                   memory_order_relaxed) + 1,
                              memory_order_relaxed);
        /* An empty runnext changes only by our own hand (thieves take a
         * thread out, never put one in): a plain store fills it, saving
         * the locked exchange on the path of every message exchange.
         * release: g's state is visible to a thief that takes it. */
        if (!atomic_load_explicit(&p->runnext, memory_order_relaxed)) {
            atomic_store_explicit(&p->runnext, g, memory_order_release);
            return;
        }
        g = atomic_exchange_explicit(&p->runnext, g, memory_order_acq_rel);
        if (!g)
            return;
    }
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

/* Runs on: owner of p. */
static inline weft_thread *weft__runq_get(weft__proc *p)
{
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
