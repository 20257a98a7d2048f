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
 */
#include <errno.h>

#include "sync/waitq.h"

struct mutex {
    _Atomic uint32_t state;
    weft__spinlock lock;
    weft__list waiters;
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
        weft__spin_lock(&m->lock);
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
    weft__os_use();
    struct mutex *m = (struct mutex *)pm;
    if (!m)
        return EINVAL;
    if (!try_lock(m))
        lock_slow(m);
    return 0;
}

int weft_mutex_trylock(weft_mutex *pm)
{
    struct mutex *m = (struct mutex *)pm;
    if (!m)
        return EINVAL;
    return try_lock(m) ? 0 : EBUSY;
}

int weft_mutex_unlock(weft_mutex *pm)
{
    weft__os_use();
    struct mutex *m = (struct mutex *)pm;
    if (!m)
        return EINVAL;
    if (atomic_load_explicit(&m->state, memory_order_relaxed) == 0)
        return EPERM;
    /* release: the critical section happens-before the next locker. */
    if (atomic_exchange_explicit(&m->state, 0, memory_order_release) == 2) {
        weft__spin_lock(&m->lock);
        weft__q_wake_one(&m->waiters, 0);
        weft__spin_unlock(&m->lock);
    }
    return 0;
}
