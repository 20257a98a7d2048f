/* SPDX-License-Identifier: MIT */
/*
 * bind.h — threads bound to one carrier (bind.c): pinned ones, and those
 * in a hooked call from foreign code, which must resume on the OS thread
 * they left.
 *
 * Invariants. A thread's bound, pins and binds are written by the thread
 * itself only. A carrier's queue of runnable bound threads is filled by
 * wakers under its bound_lock and taken only by that carrier (or released
 * by the monitor, bind.c: sweep); nready_bound counts it, seq_cst against
 * the carrier's idling flag so that no bound wake-up is lost.
 */
#ifndef WEFT_SCHED_BIND_H
#define WEFT_SCHED_BIND_H

#include "sched/carrier.h"


void weft__bind(weft_thread *g, weft__carrier *m);
void weft__unbind(weft_thread *g);
void weft__unbind_if_free(weft_thread *g);
void weft__bound_resumed(weft_thread *g, weft__carrier *now_on);
void weft__bound_ready(weft_thread *g);
weft_thread *weft__bound_take_slow(weft__carrier *m);
bool weft__bound_pending(const weft__carrier *m);
void weft__bound_sweep(int64_t now);
unsigned weft__bound_count(void);
unsigned weft__lock_pinned_count(void);
weft_thread *weft__foreign_enter(void);
void weft__foreign_leave(weft_thread *g);

/* Runs on: carrier m only. The oldest runnable thread bound to m, or
 * NULL: an unlocked look on the path of every switch, inline. */
static inline weft_thread *weft__bound_take(weft__carrier *m)
{
    if (likely(!atomic_load_explicit(&m->nready_bound, memory_order_relaxed)))
        return NULL;
    return weft__bound_take_slow(m);
}

#endif
