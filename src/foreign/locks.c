/* SPDX-License-Identifier: MIT */
/*
 * locks.c — pthread locks on virtual threads: holding one pins the thread
 * to its carrier; waiting for one parks it.
 *
 * A pthread mutex belongs to an OS thread (its owner field is a TID), and
 * so do rwlocks, spinlocks, stdio's flockfile, a running pthread_once and
 * a C++ static's initialiser (__cxa_guard_acquire).
 * A virtual thread that holds one must keep its carrier: if it switched
 * away, another thread of the same carrier that waits for the lock would
 * block the carrier the holder needs to come back to (SQLite's serialized
 * mode does exactly that). So while it holds one (g->plocks > 0) the
 * thread never switches away: its waits — hooked calls and weft's own API
 * alike — block the carrier, marked blocking so that the monitor moves
 * the carrier's other threads (sched/park.c: block_carrier, io/rw.c:
 * os_io), and it neither yields nor leaves a carrier whose P was handed
 * off (sched/switch.c): Loom's pinning. Counting is a plain increment by
 * the thread itself, nothing shared: a lock and an unlock cost a few
 * branches more than glibc's (bench/foreign_calls.c).
 *
 * Counting: a lock call that returned 0 (or EOWNERDEAD: the caller owns
 * the mutex) counts; EBUSY, ETIMEDOUT, EDEADLK do not. A successful unlock
 * uncounts; the count never goes below 0 (a lock taken before weft_run, or
 * on an OS thread, may be released on a virtual thread).
 *
 * Going past Loom: a thread that holds no pthread lock and finds a mutex
 * or rwlock taken does not block its carrier. It parks on the lock's
 * address (a hashed bucket of waiters) and tries again when an unlock
 * through these hooks wakes it, or after a short timed retry: unlocks the
 * hooks never see (glibc's own, inside pthread_cond_wait of an OS thread)
 * wake no one. pthread_cond_wait made while holding only its mutex parks
 * the same way on the condition's address; pthread_cond_signal and
 * _broadcast wake those threads as well as OS threads in the real wait.
 * A thread that holds another lock too waits in glibc, on its carrier.
 *
 * No lost wake-up. A parking waiter links itself into its bucket (under
 * the bucket lock, n raised) and only then tries the lock once more; an
 * unlocker releases the lock, then reads n. The waiter's side passes a
 * full fence (weft__fence_heavy: it is about to park anyway), the
 * unlocker's side a compiler barrier after glibc's unlock: on x86-64 that
 * unlock is a locked instruction, itself a full barrier; elsewhere it is
 * a store-release, which a later load may pass, so there the unlocker
 * passes the asymmetric fence's light side (base/fence.h: a compiler
 * barrier only while the waiter's side is membarrier(2), which puts a
 * full barrier into the unlocker's instruction stream). Should both
 * miss, the timed retry still ends the wait. A condition waiter links
 * itself before it releases the mutex, so a signaller that changed the
 * predicate under the mutex finds it.
 *
 * The plain mutex. glibc's default mutex (PTHREAD_MUTEX_INITIALIZER, or
 * default attributes: __kind 0, which also says private, not robust, no
 * priority protocol, no elision) is locked and unlocked here, as glibc's
 * own trylock and unlock do it: a CAS of the lock word from 0 to 1, then
 * the owner's TID and one more user; the owner cleared, one user less,
 * then the word from 1 back to 0. Those fields and the word's meaning
 * (0 free, 1 held, 2 held with sleepers in the futex) are the ABI every
 * glibc slow path shares (its lock, its condition variables): a word at 2
 * at unlock time goes back to glibc's unlock, which wakes a sleeper. That
 * spares each pair a call into glibc through the table (a mutex pair was
 * twice glibc's alone). Under TSan every call goes to glibc, so that its
 * interceptors see the locks.
 *
 * Pinned calls cannot be interrupted: a deadline or a cancellation waits
 * for the lock (or the condition) like an OS thread would. Process-shared
 * mutexes, rwlocks and conditions always wait in glibc.
 *
 * Runs on: any thread. On OS threads and with WEFT_HOOKS=0 every hook is
 * the glibc call and nothing more.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>

#include "base/fence.h"
#include "base/real.h"
#include "io/io.h"
#include "sched/sched.h"

#define HOOK __attribute__((visibility("default")))

/* ------------------------------------------------------------- counting */

/* The virtual thread running on carrier m (or NULL) if the hooks are on,
 * else NULL. Read inline: nothing parks between this and the thread's
 * last use of it. */
static inline weft_thread *self_on(weft__carrier *m)
{
    weft_thread *g = m ? m->cur : NULL;
    return g && likely(weft__hooks_on()) ? g : NULL;
}

static inline weft_thread *self(void)
{
    return self_on(weft__m_here());
}

/* Atomic stores, not read-modify-writes: only g writes the count; the
 * dump and weft_stats read it from other threads. */
static inline void held(weft_thread *g, int r)
{
    if (g && (r == 0 || r == EOWNERDEAD))
        __atomic_store_n(&g->plocks, g->plocks + 1, __ATOMIC_RELAXED);
}

static inline void released(weft_thread *g, int r)
{
    if (g && r == 0 && g->plocks)
        __atomic_store_n(&g->plocks, g->plocks - 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------ parking on an address */

#define NBUCKETS 256 /* a power of 2 */
#define RETRY_MIN_NS 1000000LL  /* first timed retry of a parked lock */
#define RETRY_MAX_NS 16000000LL
#define COND_RETRY_NS 100000000LL /* a spurious wake-up, allowed */

typedef struct bucket {
    weft__spinlock lock;    /* lock order 5: PTHREAD (sched/sched.h) */
    weft__list waiters;     /* addr_waiter.w.link; under lock */
    _Atomic uint32_t n;     /* waiters linked; read without the lock */
} bucket;

typedef struct addr_waiter {
    weft__waiter w;
    const void *addr;
} addr_waiter;

static bucket buckets[NBUCKETS];

static bucket *bucket_of(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    return &buckets[(a ^ (a >> 9)) >> 4 & (NBUCKETS - 1)];
}

/* Runs on: a virtual thread holding no pthread lock. Links a wait for
 * addr into its bucket. */
static void link_wait(addr_waiter *a, const void *addr, weft__wait_kind kind)
{
    bucket *b = bucket_of(addr);
    a->addr = addr;
    weft__wait_begin(&a->w, 0, kind, addr);
    weft__spin_lock(&b->lock, WEFT__LOCK_PTHREAD);
    weft__list_push_back(&b->waiters, &a->w.link);
    atomic_fetch_add_explicit(&b->n, 1, memory_order_relaxed);
    weft__spin_unlock(&b->lock);
}

static void unlink_wait(addr_waiter *a)
{
    bucket *b = bucket_of(a->addr);
    weft__spin_lock(&b->lock, WEFT__LOCK_PTHREAD);
    if (weft__list_linked(&a->w.link)) {
        weft__list_remove(&a->w.link);
        atomic_fetch_sub_explicit(&b->n, 1, memory_order_relaxed);
    }
    weft__spin_unlock(&b->lock);
}

/* The unlocker's half of the Dekker pair (see top of file). On x86 the
 * glibc unlock just made was a locked instruction, a full barrier: the
 * compiler must only keep the load after it. Elsewhere (AArch64: glibc
 * unlocks with a store-release, which the load of n may pass), the
 * asymmetric fence's light side, paired with the waiter's heavy one. */
static inline void unlocker_fence(void)
{
#if defined(__x86_64__)
    atomic_signal_fence(memory_order_seq_cst);
#else
    weft__fence_light();
#endif
}

/* Runs on: any thread. Wakes up to max threads parked on addr, in its
 * bucket b. Out of line: the unlock path only tests the bucket. */
static __attribute__((noinline)) void wake_slow(bucket *b, const void *addr,
                                                int max)
{
    weft__spin_lock(&b->lock, WEFT__LOCK_PTHREAD);
    weft__list *l = b->waiters.next;
    while (max && l != &b->waiters) {
        addr_waiter *a = (addr_waiter *)((char *)l - offsetof(addr_waiter,
                                                              w.link));
        l = l->next;
        if (a->addr != addr)
            continue;
        weft__list_remove(&a->w.link);
        atomic_fetch_sub_explicit(&b->n, 1, memory_order_relaxed);
        if (weft__wake(&a->w, 0))
            max--;
    }
    weft__spin_unlock(&b->lock);
}

/* Runs on: any thread. Wakes up to max threads parked on addr. */
static inline void wake_addr(const void *addr, int max)
{
    bucket *b = bucket_of(addr);
    unlocker_fence();
    if (unlikely(atomic_load_explicit(&b->n, memory_order_relaxed)))
        wake_slow(b, addr, max);
}

/* The TID of the calling carrier, for "do I own it?" */
static int my_tid(void)
{
    weft__carrier *m = weft__m();
    return m ? atomic_load_explicit(&m->tid, memory_order_relaxed) : 0;
}

/* Runs on: a virtual thread holding no pthread lock, whose try found the
 * lock at addr taken. Parks until try succeeds or fails otherwise, or the
 * deadline (weft_now clock; < 0: none) passes. A call from foreign code
 * keeps its carrier across the park (sched/bind.c). */
static int park_for_lock(const void *addr, int (*try)(void *), void *obj,
                         int64_t deadline, const void *ra)
{
    weft_thread *bound = weft__caller_foreign(ra) ? weft__foreign_enter()
                                                  : NULL;
    int64_t retry = RETRY_MIN_NS;
    int r;
    for (;;) {
        addr_waiter a;
        link_wait(&a, addr, WEFT__WAIT_PTHREAD_LOCK);
        weft__fence_heavy(); /* the waiter's half: see top of file */
        r = try(obj);
        if (r != EBUSY) {
            unlink_wait(&a);
            weft__wait_abort(&a.w);
            break;
        }
        int64_t until = weft_now() + retry;
        if (deadline >= 0 && deadline < until)
            until = deadline;
        weft__wait_block(&a.w, NULL, until);
        unlink_wait(&a);
        r = try(obj);
        if (r != EBUSY)
            break;
        if (deadline >= 0 && weft_now() >= deadline) {
            r = ETIMEDOUT;
            break;
        }
        retry = retry * 2 > RETRY_MAX_NS ? RETRY_MAX_NS : retry * 2;
    }
    weft__foreign_leave(bound);
    return r;
}

/* A deadline on clock clk, as weft_now() time. */
static int64_t deadline_of(clockid_t clk, const struct timespec *abs)
{
    struct timespec now;
    clock_gettime(clk, &now);
    int64_t left = (int64_t)(abs->tv_sec - now.tv_sec) * 1000000000 +
                   (abs->tv_nsec - now.tv_nsec);
    return weft_now() + (left < 0 ? 0 : left);
}

static bool bad_time(const struct timespec *t)
{
    return !t || t->tv_nsec < 0 || t->tv_nsec >= 1000000000;
}

/* Runs fn(obj) with the carrier marked blocking: a lock-pinned thread
 * waiting in glibc. */
#define BLOCKING(call)                                                     \
    ({                                                                     \
        weft__blocking_enter();                                            \
        int br_ = (call);                                                  \
        weft__blocking_leave();                                            \
        br_;                                                               \
    })

/* ---------------------------------------------------------------- mutex */

static bool mutex_pshared(const pthread_mutex_t *mx)
{
    return mx->__data.__kind & 128; /* glibc: PTHREAD_MUTEX_PSHARED_BIT */
}

static int try_mutex(void *mx)
{
    return weft__real(pthread_mutex_trylock)(mx);
}

/* A virtual thread with no pthread lock wants mx, taken. Parks, unless the
 * owner is its own carrier (a recursive or error-checking mutex, or a
 * plain one relocked: glibc gives what it gives an OS thread). */
static int mutex_park(pthread_mutex_t *mx, int64_t deadline, const void *ra)
{
    if (mutex_pshared(mx) || mx->__data.__owner == my_tid())
        return -1;
    return park_for_lock(mx, try_mutex, mx, deadline, ra);
}

/* The plain mutex (see top of file): __kind 0. Read atomically: glibc
 * may mark a mutex for elision at its first lock. */
static inline bool mutex_plain(const pthread_mutex_t *mx)
{
#ifdef WEFT_TSAN
    (void)mx;
    return false;
#else
    return __atomic_load_n(&mx->__data.__kind, __ATOMIC_RELAXED) == 0;
#endif
}

/* Runs on: a virtual thread on carrier m. glibc's trylock of a plain
 * mutex: the owner is the carrier, as it would be in glibc. */
static inline int plain_trylock(pthread_mutex_t *mx, weft__carrier *m)
{
    int free_word = 0;
    if (!__atomic_compare_exchange_n(&mx->__data.__lock, &free_word, 1,
                                     false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return EBUSY;
    mx->__data.__owner = atomic_load_explicit(&m->tid, memory_order_relaxed);
    mx->__data.__nusers++;
    return 0;
}

/* glibc's unlock of a plain mutex held by the caller, unless a thread
 * sleeps on it (word 2) or it was not locked (0): then the fields are put
 * back (no one else writes them meanwhile: the word is still not 0) and
 * false says glibc's unlock must do it. */
static inline bool plain_unlock(pthread_mutex_t *mx)
{
    int owner = mx->__data.__owner;
    mx->__data.__owner = 0;
    mx->__data.__nusers--;
    int held_word = 1;
    if (likely(__atomic_compare_exchange_n(&mx->__data.__lock, &held_word,
                                           0, false, __ATOMIC_RELEASE,
                                           __ATOMIC_RELAXED)))
        return true;
    mx->__data.__nusers++;
    mx->__data.__owner = owner;
    return false;
}

/* Runs on: a virtual thread on carrier m. */
static inline int mutex_trylock_on(pthread_mutex_t *mx, weft__carrier *m)
{
    return mutex_plain(mx) ? plain_trylock(mx, m)
                           : weft__real(pthread_mutex_trylock)(mx);
}

HOOK int pthread_mutex_lock(pthread_mutex_t *mx)
{
    weft__carrier *m = weft__m_here();
    weft_thread *g = self_on(m);
    if (!g)
        return weft__real(pthread_mutex_lock)(mx);
    int r = mutex_trylock_on(mx, m);
    if (r == EBUSY && (g->plocks ||
                       (r = mutex_park(mx, -1, __builtin_return_address(0)))
                           < 0))
        r = BLOCKING(weft__real(pthread_mutex_lock)(mx));
    held(g, r);
    return r;
}

HOOK int pthread_mutex_trylock(pthread_mutex_t *mx)
{
    weft__carrier *m = weft__m_here();
    weft_thread *g = self_on(m);
    int r = g ? mutex_trylock_on(mx, m) : weft__real(pthread_mutex_trylock)(mx);
    held(g, r);
    return r;
}

static int mutex_timed(pthread_mutex_t *mx, clockid_t clk,
                       const struct timespec *abs, const void *ra)
{
    weft_thread *g = self();
    int r;
    if (!g || bad_time(abs))
        r = -1;
    else if ((r = weft__real(pthread_mutex_trylock)(mx)) == EBUSY && !g->plocks)
        r = mutex_park(mx, deadline_of(clk, abs), ra);
    else if (r == EBUSY)
        r = -1;
    if (r < 0) {
        weft__blocking_enter();
        r = clk == CLOCK_REALTIME ? weft__real(pthread_mutex_timedlock)(mx, abs)
                                  : weft__real(pthread_mutex_clocklock)(mx, clk, abs);
        weft__blocking_leave();
    }
    held(g, r);
    return r;
}

HOOK int pthread_mutex_timedlock(pthread_mutex_t *mx,
                                 const struct timespec *abs)
{
    return mutex_timed(mx, CLOCK_REALTIME, abs, __builtin_return_address(0));
}

HOOK int pthread_mutex_clocklock(pthread_mutex_t *mx, clockid_t clk,
                                 const struct timespec *abs)
{
    if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC)
        return EINVAL;
    return mutex_timed(mx, clk, abs, __builtin_return_address(0));
}

HOOK int pthread_mutex_unlock(pthread_mutex_t *mx)
{
    weft_thread *g = self();
    int r = g && mutex_plain(mx) && plain_unlock(mx)
                ? 0
                : weft__real(pthread_mutex_unlock)(mx);
    if (r == 0) {
        released(g, r);
        wake_addr(mx, 1);
    }
    return r;
}

/* --------------------------------------------------------------- rwlock */

static bool rwlock_pshared(const pthread_rwlock_t *rw)
{
    return rw->__data.__shared != 0;
}

static int try_rd(void *rw)
{
    return weft__real(pthread_rwlock_tryrdlock)(rw);
}

static int try_wr(void *rw)
{
    return weft__real(pthread_rwlock_trywrlock)(rw);
}

/* As mutex_park; a write-locked rwlock's writer TID tells self-deadlock. */
static int rw_park(pthread_rwlock_t *rw, bool wr, int64_t deadline,
                   const void *ra)
{
    if (rwlock_pshared(rw) || rw->__data.__cur_writer == my_tid())
        return -1;
    return park_for_lock(rw, wr ? try_wr : try_rd, rw, deadline, ra);
}

static int rw_lock(pthread_rwlock_t *rw, bool wr, const struct timespec *abs,
                   const void *ra)
{
    weft_thread *g = self();
    int r = -1;
    if (g && !(abs && bad_time(abs))) {
        r = wr ? weft__real(pthread_rwlock_trywrlock)(rw) : weft__real(pthread_rwlock_tryrdlock)(rw);
        if (r == EBUSY)
            r = g->plocks ? -1 : rw_park(rw, wr, abs ? deadline_of(
                                             CLOCK_REALTIME, abs) : -1, ra);
    }
    if (r < 0) {
        weft__blocking_enter();
        if (abs)
            r = wr ? weft__real(pthread_rwlock_timedwrlock)(rw, abs) : weft__real(pthread_rwlock_timedrdlock)(rw, abs);
        else
            r = wr ? weft__real(pthread_rwlock_wrlock)(rw) : weft__real(pthread_rwlock_rdlock)(rw);
        weft__blocking_leave();
    }
    held(g, r);
    return r;
}

HOOK int pthread_rwlock_rdlock(pthread_rwlock_t *rw)
{
    if (!self())
        return weft__real(pthread_rwlock_rdlock)(rw);
    return rw_lock(rw, false, NULL, __builtin_return_address(0));
}

HOOK int pthread_rwlock_wrlock(pthread_rwlock_t *rw)
{
    if (!self())
        return weft__real(pthread_rwlock_wrlock)(rw);
    return rw_lock(rw, true, NULL, __builtin_return_address(0));
}

HOOK int pthread_rwlock_timedrdlock(pthread_rwlock_t *rw,
                                    const struct timespec *abs)
{
    if (!self())
        return weft__real(pthread_rwlock_timedrdlock)(rw, abs);
    return rw_lock(rw, false, abs, __builtin_return_address(0));
}

HOOK int pthread_rwlock_timedwrlock(pthread_rwlock_t *rw,
                                    const struct timespec *abs)
{
    if (!self())
        return weft__real(pthread_rwlock_timedwrlock)(rw, abs);
    return rw_lock(rw, true, abs, __builtin_return_address(0));
}

HOOK int pthread_rwlock_tryrdlock(pthread_rwlock_t *rw)
{
    int r = weft__real(pthread_rwlock_tryrdlock)(rw);
    held(self(), r);
    return r;
}

HOOK int pthread_rwlock_trywrlock(pthread_rwlock_t *rw)
{
    int r = weft__real(pthread_rwlock_trywrlock)(rw);
    held(self(), r);
    return r;
}

HOOK int pthread_rwlock_unlock(pthread_rwlock_t *rw)
{
    int r = weft__real(pthread_rwlock_unlock)(rw);
    if (r == 0) {
        released(self(), r);
        wake_addr(rw, INT32_MAX); /* readers may all go on */
    }
    return r;
}

/* ---------------------------------------------- spinlocks, stdio, once */

HOOK int pthread_spin_lock(pthread_spinlock_t *s)
{
    int r = weft__real(pthread_spin_lock)(s);
    held(self(), r);
    return r;
}

HOOK int pthread_spin_trylock(pthread_spinlock_t *s)
{
    int r = weft__real(pthread_spin_trylock)(s);
    held(self(), r);
    return r;
}

HOOK int pthread_spin_unlock(pthread_spinlock_t *s)
{
    int r = weft__real(pthread_spin_unlock)(s);
    released(self(), r);
    return r;
}

HOOK void flockfile(FILE *f)
{
    weft__real(flockfile)(f);
    held(self(), 0);
}

HOOK int ftrylockfile(FILE *f)
{
    int r = weft__real(ftrylockfile)(f);
    held(self(), r);
    return r;
}

HOOK void funlockfile(FILE *f)
{
    weft__real(funlockfile)(f);
    released(self(), 0);
}

/* An initialiser that runs may take locks of its own, and other threads
 * of the process wait for it in glibc: it runs pinned. */
HOOK int pthread_once(pthread_once_t *once, void (*fn)(void))
{
    weft_thread *g = self();
    held(g, 0);
    int r = weft__real(pthread_once)(once, fn);
    released(g, 0);
    return r;
}

HOOK void call_once(once_flag *once, void (*fn)(void))
{
    weft_thread *g = self();
    held(g, 0);
    weft__real(call_once)(once, fn);
    released(g, 0);
}

/* A C++ function-local static's initialiser runs pinned, as
 * pthread_once's: other threads wait for it in libstdc++, on their
 * carriers. Nothing calls these in a process without libstdc++; in a
 * fully static one, libstdc++'s are out of reach (base/real_static.c). */
HOOK int __cxa_guard_acquire(int64_t *guard)
{
    if (!weft__real(__cxa_guard_acquire))
        weft__panic("no libstdc++ __cxa_guard_acquire behind weft's (a "
                    "fully static C++ program? README: Linking)");
    int first = weft__real(__cxa_guard_acquire)(guard);
    if (first)
        held(self(), 0);
    return first;
}

HOOK void __cxa_guard_release(int64_t *guard)
{
    weft__real(__cxa_guard_release)(guard);
    released(self(), 0);
}

HOOK void __cxa_guard_abort(int64_t *guard)
{
    weft__real(__cxa_guard_abort)(guard);
    released(self(), 0);
}

/* ------------------------------------------------------------ conditions */

/* glibc's __wrefs: bit 0 process-shared, bit 1 the clock (1: MONOTONIC). */
static bool cond_pshared(const pthread_cond_t *c)
{
    return c->__data.__wrefs & 1;
}

static clockid_t cond_clock(const pthread_cond_t *c)
{
    return (c->__data.__wrefs & 2) ? CLOCK_MONOTONIC : CLOCK_REALTIME;
}

/* Runs on: g, holding mx and no other pthread lock. Waits on c parked,
 * then takes mx again. Returns 0, ETIMEDOUT, or mx's relock error. */
static int cond_park(weft_thread *g, pthread_cond_t *c, pthread_mutex_t *mx,
                     int64_t deadline, const void *ra)
{
    weft_thread *bound = weft__caller_foreign(ra) ? weft__foreign_enter()
                                                  : NULL;
    addr_waiter a;
    link_wait(&a, c, WEFT__WAIT_PTHREAD_COND);
    int r = weft__real(pthread_mutex_unlock)(mx);
    if (r) { /* not ours to wait with: as glibc, fail without waiting */
        unlink_wait(&a);
        weft__wait_abort(&a.w);
        weft__foreign_leave(bound);
        return r;
    }
    released(g, 0);
    weft__wait_may_switch(g); /* begun holding mx: it may park now */
    wake_addr(mx, 1);
    int64_t until = weft_now() + COND_RETRY_NS;
    if (deadline >= 0 && deadline < until)
        until = deadline;
    weft__wait_block(&a.w, NULL, until);
    unlink_wait(&a);
    bool late = deadline >= 0 && weft_now() >= deadline;
    r = weft__real(pthread_mutex_trylock)(mx);
    if (r == EBUSY && (r = mutex_park(mx, -1, ra)) < 0)
        r = BLOCKING(weft__real(pthread_mutex_lock)(mx));
    held(g, r);
    weft__foreign_leave(bound);
    return r ? r : late ? ETIMEDOUT : 0;
}

static bool cond_parks(weft_thread *g, pthread_cond_t *c)
{
    return g && g->plocks == 1 && !cond_pshared(c);
}

HOOK int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *mx)
{
    weft_thread *g = self();
    if (cond_parks(g, c))
        return cond_park(g, c, mx, -1, __builtin_return_address(0));
    return BLOCKING(weft__real(pthread_cond_wait)(c, mx));
}

HOOK int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *mx,
                                const struct timespec *abs)
{
    weft_thread *g = self();
    if (cond_parks(g, c) && !bad_time(abs))
        return cond_park(g, c, mx, deadline_of(cond_clock(c), abs),
                         __builtin_return_address(0));
    return BLOCKING(weft__real(pthread_cond_timedwait)(c, mx, abs));
}

HOOK int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *mx,
                                clockid_t clk, const struct timespec *abs)
{
    weft_thread *g = self();
    if (cond_parks(g, c) && !bad_time(abs) &&
        (clk == CLOCK_REALTIME || clk == CLOCK_MONOTONIC))
        return cond_park(g, c, mx, deadline_of(clk, abs),
                         __builtin_return_address(0));
    return BLOCKING(weft__real(pthread_cond_clockwait)(c, mx, clk, abs));
}

HOOK int pthread_cond_signal(pthread_cond_t *c)
{
    int r = weft__real(pthread_cond_signal)(c);
    wake_addr(c, 1);
    return r;
}

HOOK int pthread_cond_broadcast(pthread_cond_t *c)
{
    int r = weft__real(pthread_cond_broadcast)(c);
    wake_addr(c, INT32_MAX);
    return r;
}

/* Called by weft_run, so that a program linked with libweft.a always
 * gets this file (see libc.c: weft__io_hooks_linked). */
void weft__locks_linked(void)
{
}

/* Buckets start with empty lists: done at load, before any hook can park
 * (no virtual thread exists before weft_run). */
__attribute__((constructor)) static void init_buckets(void)
{
    for (unsigned i = 0; i < NBUCKETS; i++)
        weft__list_init(&buckets[i].waiters);
}

/* Runs on: a forked child's only thread (fork.c). The threads parked on
 * pthread locks were the parent's; only buckets with some are written. */
void weft__locks_forked(void)
{
    for (unsigned i = 0; i < NBUCKETS; i++) {
        bucket *b = &buckets[i];
        weft__spin_reset(&b->lock);
        if (atomic_load_explicit(&b->n, memory_order_relaxed)) {
            weft__list_init(&b->waiters);
            atomic_store_explicit(&b->n, 0, memory_order_relaxed);
        }
    }
}
