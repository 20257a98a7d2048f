/* SPDX-License-Identifier: MIT */
/*
 * sem.c — weft_sem: counting semaphores for virtual and OS threads.
 *
 * count is the number of free units; acquiring when count > 0 is one CAS.
 * nwaiters equals the queue's length whenever the lock is free. A releaser
 * adds its unit and then reads nwaiters; a queuing acquirer raises nwaiters
 * and then re-reads count (both seq_cst): one of the two sees the other, so
 * a unit is never left free while a thread waits for it. A released unit is
 * handed to the longest waiter by claiming its wait (the claim makes the
 * hand-over exactly-once even against a time-out or a cancel racing it).
 * Acquire is a cancellation point: a cancelled caller gets ECANCELED even
 * when a unit is free.
 */
#include <errno.h>

#include "sync/waitq.h"
#include "sched/carrier.h"
#include "sched/deadlock.h"
#include "sched/park.h"
#include "sched/thread.h"

struct sem {
    _Atomic int64_t count;
    weft__spinlock lock;     /* lock order 5: SEM (sched/sched.h) */
    _Atomic uint32_t nwaiters;
    weft__list waiters;
};
_Static_assert(sizeof(struct sem) <= sizeof(weft_sem), "weft_sem size");
_Static_assert(offsetof(struct sem, count) == 0, "WEFT_SEM_INIT sets count");

/* A waiter raises nwaiters, then tries count; a poster raises count,
 * then reads nwaiters: a Dekker pair, so each side's load is seq_cst.
 * x86-64 would order a relaxed load after the waiter's locked increment
 * anyway (the same mov is emitted for both); AArch64 would not: after
 * the increment's store-release (STLXR), a plain load of count may be
 * satisfied before the increment is visible, and waiter and poster could
 * each miss the other, the waiter then sleeping on a count of 1. The
 * load-acquire that seq_cst gives (LDAR) is ordered after it. */
static bool try_take(struct sem *s)
{
    int64_t c = atomic_load_explicit(&s->count, memory_order_seq_cst);
    while (c > 0)
        if (atomic_compare_exchange_weak_explicit(&s->count, &c, c - 1,
                                                  memory_order_seq_cst,
                                                  memory_order_seq_cst))
            return true;
    return false;
}

int weft_sem_init(weft_sem *ps, unsigned n)
{
    if (!ps || n > INT32_MAX)
        return EINVAL;
    *ps = (weft_sem)WEFT_SEM_INIT(n);
    return 0;
}

static int cancel_reason(void)
{
    weft_thread *g = weft__g();
    return g ? atomic_load_explicit(&g->cur->reason, memory_order_relaxed) : 0;
}

static int acquire_slow(struct sem *s, int64_t deadline)
{
    weft__waiter w;
    int r = weft__wait_begin(&w, WEFT__WAIT_INTERRUPTIBLE, WEFT__WAIT_SEM, s);
    if (r)
        return r;
    weft__spin_lock(&s->lock, WEFT__LOCK_SEM);
    atomic_fetch_add_explicit(&s->nwaiters, 1, memory_order_seq_cst);
    if (try_take(s)) {
        atomic_fetch_sub_explicit(&s->nwaiters, 1, memory_order_relaxed);
        weft__spin_unlock(&s->lock);
        weft__wait_abort(&w); /* a racing cancel stays in force */
        return 0;
    }
    weft__list_push_back(weft__q(&s->waiters), &w.link);
    r = weft__wait_block(&w, &s->lock, deadline);
    if (r) {
        weft__spin_lock(&s->lock, WEFT__LOCK_SEM);
        if (weft__list_linked(&w.link)) {
            weft__list_remove(&w.link);
            atomic_fetch_sub_explicit(&s->nwaiters, 1, memory_order_relaxed);
        }
        weft__spin_unlock(&s->lock);
    }
    return r == WEFT__EXPIRED ? ETIMEDOUT : r;
}

int weft_sem_timedacquire(weft_sem *ps, int64_t deadline_ns)
{
    weft__os_use();
    struct sem *s = (struct sem *)ps;
    if (!s)
        return EINVAL;
    int reason = cancel_reason();
    if (reason)
        return reason;
    if (try_take(s))
        return 0;
    if (deadline_ns == 0)
        return ETIMEDOUT;
    return acquire_slow(s, deadline_ns < 0 ? -1 : deadline_ns);
}

int weft_sem_acquire(weft_sem *s)
{
    return weft_sem_timedacquire(s, -1);
}

/* Holds: s->lock. Hands free units to waiters while both exist. */
static void hand_over(struct sem *s)
{
    weft__list *q = weft__q(&s->waiters);
    while (!weft__list_empty(q) && try_take(s)) {
        weft__waiter *w = weft__container_of(weft__list_pop_front(q),
                                             weft__waiter, link);
        atomic_fetch_sub_explicit(&s->nwaiters, 1, memory_order_relaxed);
        if (!weft__wake(w, 0))
            atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    }
}

int weft_sem_release(weft_sem *ps)
{
    weft__os_use();
    struct sem *s = (struct sem *)ps;
    if (!s)
        return EINVAL;
    int64_t c = atomic_load_explicit(&s->count, memory_order_relaxed);
    do {
        if (c >= INT32_MAX)
            return EOVERFLOW;
    } while (!atomic_compare_exchange_weak_explicit(&s->count, &c, c + 1,
                                                    memory_order_seq_cst,
                                                    memory_order_relaxed));
    if (atomic_load_explicit(&s->nwaiters, memory_order_seq_cst)) {
        weft__spin_lock(&s->lock, WEFT__LOCK_SEM);
        hand_over(s);
        weft__spin_unlock(&s->lock);
    }
    return 0;
}
