/* SPDX-License-Identifier: MIT */
/*
 * mutex.c — weft_mutex: one lock for virtual and OS threads alike.
 *
 * state: 0 unlocked, 1 locked, 2 locked and maybe waited on. Locking is
 * one CAS when uncontended. A contended locker sets state to 2 under the
 * queue lock before queueing, so an unlock that sees 2 knows to wake one
 * waiter, and one that sees 1 knows no one was queued when it unlocked.
 * The woken waiter competes again (no hand-off): a lock is not a queue,
 * and hand-off would make every contended unlock a context switch.
 * Not a cancellation point: a lock is always acquired.
 *
 * Ownership: `owner` names the holder (its token, holder.h), so that an
 * unlock (or a condition wait) by anyone else fails with EPERM instead of
 * breaking the lock, and a holder locking again gets EDEADLK instead of
 * hanging. Invariants:
 *   - only the holder writes owner: itself just after acquiring, 0 just
 *     before releasing; so a thread that reads its own token there holds
 *     the lock (it wrote the token and has not yet written the 0 after
 *     it; coherence forbids it reading an older value than its own last
 *     write). Any other reader sees some other value, 0 included, which
 *     is all the checks need: relaxed order suffices.
 *   - owner is 0 or stale only while state is 0, or in the instants
 *     between a CAS and the store that follows it.
 */
#include <errno.h>

#include "sync/holder.h"
#include "sync/mutex.h"
#include "sync/waitq.h"
#include "sched/park.h"

struct mutex {
    _Atomic uint32_t state;
    weft__spinlock lock;     /* lock order 5: MUTEX (sched/sched.h) */
    weft__list waiters;
    _Atomic uintptr_t owner; /* the holder's token; see above */
};
_Static_assert(sizeof(struct mutex) <= sizeof(weft_mutex), "weft_mutex size");
_Static_assert(_Alignof(struct mutex) <= _Alignof(weft_mutex),
               "weft_mutex alignment");

#define SPINS 100

static bool try_lock(struct mutex *m)
{
    uint32_t zero = 0;
    /* acquire: pairs with unlock's release exchange. */
    return atomic_compare_exchange_strong_explicit(&m->state, &zero, 1,
                                                   memory_order_acquire,
                                                   memory_order_relaxed);
}

/* Relaxed: see the ownership invariants at the top. */
static void set_owner(struct mutex *m, uintptr_t who)
{
    atomic_store_explicit(&m->owner, who, memory_order_relaxed);
}

static bool owned_by(struct mutex *m, uintptr_t who)
{
    return atomic_load_explicit(&m->owner, memory_order_relaxed) == who;
}

static void lock_slow(struct mutex *m)
{
    for (int i = 0; i < SPINS; i++) {
        weft__cpu_relax();
        if (atomic_load_explicit(&m->state, memory_order_relaxed) == 0 &&
            try_lock(m))
            return;
    }
    for (;;) {
        weft__waiter w;
        weft__wait_begin(&w, 0, WEFT__WAIT_MUTEX, m);
        weft__spin_lock(&m->lock, WEFT__LOCK_MUTEX);
        if (atomic_exchange_explicit(&m->state, 2, memory_order_acquire) == 0) {
            weft__spin_unlock(&m->lock);
            weft__wait_abort(&w);
            return;
        }
        weft__list_push_back(weft__q(&m->waiters), &w.link);
        weft__wait_block(&w, &m->lock, -1);
    }
}

int weft_mutex_lock(weft_mutex *pm)
{
    struct mutex *m = (struct mutex *)pm;
    uintptr_t me = weft__holder_self();
    if (!m)
        return EINVAL;
    if (unlikely(!try_lock(m))) {
        if (owned_by(m, me))
            return EDEADLK;
        lock_slow(m);
    }
    set_owner(m, me);
    return 0;
}

int weft_mutex_trylock(weft_mutex *pm)
{
    struct mutex *m = (struct mutex *)pm;
    if (!m)
        return EINVAL;
    if (!try_lock(m))
        return EBUSY;
    set_owner(m, weft__holder_self());
    return 0;
}

bool weft__mutex_held(weft_mutex *pm)
{
    return owned_by((struct mutex *)pm, weft__holder_self());
}

int weft_mutex_unlock(weft_mutex *pm)
{
    struct mutex *m = (struct mutex *)pm;
    uintptr_t me = weft__holder_self();
    if (!m)
        return EINVAL;
    if (!owned_by(m, me))
        return EPERM; /* unlocked, or held by another thread */
    set_owner(m, 0);
    /* release: the critical section happens-before the next locker. */
    if (atomic_exchange_explicit(&m->state, 0, memory_order_release) == 2) {
        weft__spin_lock(&m->lock, WEFT__LOCK_MUTEX);
        weft__q_wake_one(&m->waiters, 0);
        weft__spin_unlock(&m->lock);
    }
    return 0;
}
