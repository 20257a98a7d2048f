/* SPDX-License-Identifier: MIT */
/*
 * spinlock.h — the lock that guards every short critical section of the
 * runtime (a queue of waiters, a run queue, a timer heap, a scope).
 *
 * Critical sections under a spinlock are a few dozen instructions and never
 * park, so spinning beats a futex. A holder's carrier may be descheduled by
 * the kernel, though (this matters on small VMs), so after a while a waiter
 * calls sched_yield instead of burning its whole time slice.
 *
 * Every lock and trylock names the lock's class (base/lockrank.h), its
 * place in the lock order (sched/sched.h); a scope lock adds its depth
 * (weft__spin_lock_keyed). In WEFT_LOCK_ORDER builds the calls go through
 * lockrank.c, which checks the order; otherwise the class is not evaluated
 * and the calls are the raw ones below.
 */
#ifndef WEFT_BASE_SPINLOCK_H
#define WEFT_BASE_SPINLOCK_H

#include <sched.h>

#include "base/compiler.h"
#include "base/lockrank.h"

/* Looks at a held lock before yielding: with the back-off below, 255
 * pauses (~6 µs at 25 ns a pause). A critical section is well under
 * a microsecond, so a lock held that long has a holder the kernel
 * descheduled, often for this very carrier (two carriers sharing a CPU
 * with a busy program): spinning on would only delay it. */
#ifndef WEFT__SPIN_LOOKS
#define WEFT__SPIN_LOOKS 10
#endif

typedef struct weft__spinlock {
    _Atomic uint32_t held;
} weft__spinlock;

#define WEFT__SPINLOCK_INIT {0}

static inline bool weft__spin_raw_trylock(weft__spinlock *l)
{
    /* acquire: pairs with the release in weft__spin_raw_unlock, so the previous
     * holder's writes are visible to us. */
    return atomic_exchange_explicit(&l->held, 1, memory_order_acquire) == 0;
}

static inline void weft__spin_raw_lock(weft__spinlock *l)
{
    /* Exponential back-off between looks: a waiter that reads the lock's
     * line while it is held steals it from the holder, whose unlock then
     * misses; two carriers hammering one channel lose most of their time
     * that way. */
    for (unsigned spins = 0, pause = 1; !weft__spin_raw_trylock(l);) {
        while (atomic_load_explicit(&l->held, memory_order_relaxed)) {
            if (++spins < WEFT__SPIN_LOOKS) {
                for (unsigned i = 0; i < pause; i++)
                    weft__cpu_relax();
                if (pause < 64)
                    pause <<= 1;
            } else {
                sched_yield();
            }
        }
    }
}

static inline void weft__spin_raw_unlock(weft__spinlock *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

#ifdef WEFT_LOCK_ORDER
#define weft__spin_lock_keyed(l, cls, key) \
    weft__lockrank_lock((l), (cls), (key), WEFT__LOCK_HERE)
#define weft__spin_trylock_keyed(l, cls, key) \
    weft__lockrank_trylock((l), (cls), (key), WEFT__LOCK_HERE)
#define weft__spin_unlock(l) weft__lockrank_unlock((l), WEFT__LOCK_HERE)
#else
#define weft__spin_lock_keyed(l, cls, key) \
    ((void)sizeof(cls), (void)sizeof(key), weft__spin_raw_lock(l))
#define weft__spin_trylock_keyed(l, cls, key) \
    ((void)sizeof(cls), (void)sizeof(key), weft__spin_raw_trylock(l))
#define weft__spin_unlock(l) weft__spin_raw_unlock(l)
#endif
/* Takes l, of class cls (base/lockrank.h). */
#define weft__spin_lock(l, cls) weft__spin_lock_keyed(l, cls, 0)
#define weft__spin_trylock(l, cls) weft__spin_trylock_keyed(l, cls, 0)

/* Runs on: the child of a fork only (fork.c), whose one thread is not a
 * holder: a holder at the fork stayed behind, and the lock is free. */
static inline void weft__spin_reset(weft__spinlock *l)
{
    /* Written only if held: a store would copy the page for nothing. */
    if (atomic_load_explicit(&l->held, memory_order_relaxed))
        atomic_store_explicit(&l->held, 0, memory_order_relaxed);
}

#endif
