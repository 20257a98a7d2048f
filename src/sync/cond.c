/* SPDX-License-Identifier: MIT */
/*
 * cond.c — weft_cond: condition variables for virtual and OS threads.
 *
 * A waiter queues itself under the cond's lock *before* it unlocks the
 * mutex, so a signal sent after the unlock always finds it. Lock order:
 * the cond's lock before the mutex's queue lock. A wait is a cancellation
 * point; whatever its result, the mutex is held again when it returns.
 * A caller that does not hold the mutex gets EPERM before anything is
 * touched: unlocking someone else's mutex would break its critical
 * section, and waiting without it would lose the signal it guards.
 */
#include <errno.h>

#include "sync/mutex.h"
#include "sync/waitq.h"
#include "sched/deadlock.h"
#include "sched/park.h"

struct cond {
    weft__spinlock lock;     /* lock order 4: COND (sched/sched.h) */
    uint32_t unused;
    weft__list waiters;
};
_Static_assert(sizeof(struct cond) <= sizeof(weft_cond), "weft_cond size");

int weft_cond_timedwait(weft_cond *pc, weft_mutex *m, int64_t deadline_ns)
{
    weft__os_use();
    struct cond *c = (struct cond *)pc;
    if (!c || !m)
        return EINVAL;
    if (!weft__mutex_held(m))
        return EPERM;
    weft__waiter w;
    int r = weft__wait_begin(&w, WEFT__WAIT_INTERRUPTIBLE, WEFT__WAIT_COND, c);
    if (r)
        return r;
    weft__spin_lock(&c->lock, WEFT__LOCK_COND);
    weft__list_push_back(weft__q(&c->waiters), &w.link);
    weft_mutex_unlock(m);
    r = weft__wait_block(&w, &c->lock, deadline_ns < 0 ? -1 : deadline_ns);
    if (r) {
        weft__spin_lock(&c->lock, WEFT__LOCK_COND);
        weft__q_forget(&w);
        weft__spin_unlock(&c->lock);
    }
    weft_mutex_lock(m);
    return r == WEFT__EXPIRED ? ETIMEDOUT : r;
}

int weft_cond_wait(weft_cond *c, weft_mutex *m)
{
    return weft_cond_timedwait(c, m, -1);
}

int weft_cond_signal(weft_cond *pc)
{
    weft__os_use();
    struct cond *c = (struct cond *)pc;
    if (!c)
        return EINVAL;
    weft__spin_lock(&c->lock, WEFT__LOCK_COND);
    weft__q_wake_one(&c->waiters, 0);
    weft__spin_unlock(&c->lock);
    return 0;
}

int weft_cond_broadcast(weft_cond *pc)
{
    weft__os_use();
    struct cond *c = (struct cond *)pc;
    if (!c)
        return EINVAL;
    weft__spin_lock(&c->lock, WEFT__LOCK_COND);
    while (weft__q_wake_one(&c->waiters, 0)) {
    }
    weft__spin_unlock(&c->lock);
    return 0;
}
