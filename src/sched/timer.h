/* SPDX-License-Identifier: MIT */
/*
 * timer.h — one-shot timers (timer.c), kept in a heap per P.
 *
 * Invariants. A timer is owned by whoever embeds it; while ARMED it sits
 * in the heap of exactly one P (p), and when, due, heap_index and p are
 * written only under that P's timer_lock (the heap's fields in weft__proc
 * belong to timer.c). state moves IDLE -> ARMED -> (FIRING ->) IDLE,
 * stored under that lock too, and read without it (timer.c: the states).
 */
#ifndef WEFT_SCHED_TIMER_H
#define WEFT_SCHED_TIMER_H

#include "base/compiler.h"

typedef struct weft__proc weft__proc;
typedef struct weft__timer weft__timer;

typedef enum { WEFT__TIMER_IDLE, WEFT__TIMER_ARMED, WEFT__TIMER_FIRING }
    weft__timer_state;

/* A one-shot timer. Owned by whoever embeds it; armed in the heap of one P.
 * fn(arg, gen) runs on some carrier, outside the heap lock, with copies of
 * the timer's fields. If sync is set, the timer is FIRING while fn runs and
 * weft__timer_disarm waits for fn to finish (fn may use what arg points
 * to); otherwise the timer is IDLE before fn starts, disarm never waits,
 * and fn must cope with arg's wait being over (a wait timer's claim of a
 * past generation fails). After disarm the timer's memory may be reused. */
struct weft__timer {
    int64_t when;                /* its place in the heap; under the lock */
    int64_t due;                 /* when it fires (>= when); under the lock */
    uint32_t heap_index;         /* under the heap lock, valid when ARMED */
    weft__proc *p;               /* the P whose heap holds it; under the
                                    heap lock */
    _Atomic int state;           /* weft__timer_state */
    void (*fn)(void *arg, uint64_t gen);
    void *arg;                   /* for fn */
    uint64_t gen;                /* for wait timers: the park generation */
    bool sync;                   /* disarm waits for a running fn */
};

int  weft__timer_arm(weft__timer *t, int64_t when); /* 0 / ENOMEM */
void weft__timer_disarm(weft__timer *t);
int  weft__timer_reset(weft__timer *t, int64_t when); /* 0 / ENOMEM */
bool weft__timers_run(weft__proc *p, int64_t now);  /* true: fired some */
int64_t weft__timers_next(void); /* earliest deadline of all P's, or -1 */
void weft__timers_free(weft__proc *p);

#endif
