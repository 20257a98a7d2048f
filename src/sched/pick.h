/* SPDX-License-Identifier: MIT */
/*
 * pick.h — which thread a carrier runs next from its own queues: the
 * threads bound to it, its P's runnext and ring, and now and then the
 * global queue. Inline: both the switch (switch.c) and the scheduler loop
 * (loop.c) pick with it, the switch on the path of every park and yield.
 *
 * Invariant: only the owner of m->p picks, on carrier m.
 */
#ifndef WEFT_SCHED_PICK_H
#define WEFT_SCHED_PICK_H

#include "sched/bind.h"
#include "sched/runq.h"

/* Runs on: owner of m->p. The next thread to run from the P's own queues
 * (and, now and then or when they are empty, the global queue). Fires no
 * timers: it runs inside a switch, where the thread switching out may
 * still hold the lock it parks under, and a timer's callback (a scope
 * deadline) may need that very lock. Timers fire after the switch. */
static inline weft_thread *weft__pick_local(weft__carrier *m)
{
    weft__proc *p = m->p;
    weft_thread *g = weft__bound_take(m);
    if (unlikely(g))
        return g;
    if (unlikely(--p->fairness == 0)) {
        p->fairness = WEFT__GLOBAL_FAIRNESS;
        g = weft__globq_get(p);
    }
    if (!g)
        g = weft__runq_get(p);
    if (!g)
        g = weft__globq_get(p);
    return g;
}

#endif
