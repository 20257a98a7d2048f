/* SPDX-License-Identifier: MIT */
/*
 * deadlock.h — deadlock detection (deadlock.c): when every virtual thread
 * waits and nothing could wake one, the run is declared deadlocked and
 * the blocked threads are abandoned.
 *
 * Invariants. OS threads that touched a weft object are counted (they may
 * wake a virtual thread later); weft__S.deadlocked is declared once,
 * under the scheduler lock (idle.c).
 */
#ifndef WEFT_SCHED_DEADLOCK_H
#define WEFT_SCHED_DEADLOCK_H

#include "sched/carrier.h"

void weft__os_thread_register(void);
bool weft__os_threads_alive(void);
bool weft__deadlock_suspected(void);
void weft__deadlock_declare(void);
void weft__abandon_blocked_threads(void);

/* Runs on: any thread. An OS thread that touches a weft object may wake a
 * virtual thread later: it counts against deadlock reports while alive. */
static inline void weft__os_use(void)
{
    if (unlikely(!weft__m()))
        weft__os_thread_register();
}

#endif
