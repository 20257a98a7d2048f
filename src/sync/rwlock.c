/* SPDX-License-Identifier: MIT */
/*
 * rwlock.c — weft_rwlock: many readers or one writer, for virtual and OS
 * threads alike.
 *
 * state, one word: READERS (the count of read locks held, low bits), W (a
 * writer holds it), WQ (writers are queued), RQ (readers are queued).
 *
 * Policy: writers first, in turns. A reader does not enter while a writer
 * holds the lock or is queued for it, so readers cannot starve a writer.
 * A writer that leaves hands the lock to every queued reader at once, if
 * there is one, before the next writer; the last reader to leave hands it
 * to the first queued writer. So each side waits for at most one turn of
 * the other.
 *
 * Hand-off: a thread that leaves with waiters queued passes the lock on
 * under the queue lock, writing the state its successors hold it in (W,
 * or the count of readers it lets in) before it wakes them; a woken
 * waiter holds the lock when it runs, and never competes again. Waits are
 * neither interruptible nor timed (not a cancellation point, as
 * weft_mutex), so only a hand-off claims a queued wait.
 *
 * Invariants (lock: the queue lock, level 5 of the lock order):
 *   - RQ is set iff readers is non-empty, WQ iff writers is; both change
 *     only under the lock.
 *   - W and a non-zero READERS never hold together; RQ never holds
 *     without W or WQ (a reader queues only behind a writer, and the
 *     hand-off that clears both clears RQ in the same store).
 *   - A thread queues only while the lock is held or, for a reader,
 *     while a writer is queued (a holder, or a last reader on its way to
 *     the queue lock, will pass the lock on), and sets its queue's bit by
 *     a CAS that checks that in the same step. So the lock-free ways in
 *     (a reader's needs W and WQ clear; a writer's, a state of 0) fail
 *     from then on, so does the writer's lock-free way out (W to 0), and
 *     a reader's way out (one read lock less) sees the bit: whoever
 *     leaves last passes the lock on, under the lock. No wake-up is
 *     lost.
 *   - So, under the lock, with a queue bit set and no holder but the
 *     leaver, only the lock's holder changes the state.
 *   - owner is the writer's token (holder.h), written by the writer only,
 *     as in mutex.c: it names the thread allowed to unlock W.
 *
 * Memory order: ways in acquire, ways out release, on state; a hand-off
 * reads state with acquire (the earlier leavers' releases, chained by
 * their read-modify-writes) and passes it on through the wake (park.c).
 */
#include <errno.h>

#include "sched/park.h"
#include "sync/holder.h"
#include "sync/waitq.h"

#define W (1u << 29)
#define WQ (1u << 30)
#define RQ (1u << 31)
#define READERS (W - 1) /* mask of the read lock count */
#define QUEUED (WQ | RQ)

struct rwlock {
    _Atomic uint32_t state;
    weft__spinlock lock;     /* lock order 5: RWLOCK (sched/sched.h) */
    weft__list readers;      /* queued readers' waiters; under lock */
    weft__list writers;      /* queued writers' waiters; under lock */
    _Atomic uintptr_t owner; /* the writer's token; see above */
};
_Static_assert(sizeof(struct rwlock) <= sizeof(weft_rwlock),
               "weft_rwlock size");
_Static_assert(_Alignof(struct rwlock) <= _Alignof(weft_rwlock),
               "weft_rwlock alignment");

#define SPINS 100

static uint32_t load(struct rwlock *l, memory_order mo)
{
    return atomic_load_explicit(&l->state, mo);
}

/* One CAS of state to want: acquire for a way in, which is all it is used
 * for. On failure *s is the current state. */
static bool cas_in(struct rwlock *l, uint32_t *s, uint32_t want)
{
    return atomic_compare_exchange_weak_explicit(
        &l->state, s, want, memory_order_acquire, memory_order_relaxed);
}

/* Relaxed: see mutex.c's ownership invariants, which hold here for W. */
static void set_owner(struct rwlock *l, uintptr_t who)
{
    atomic_store_explicit(&l->owner, who, memory_order_relaxed);
}

static bool writes(struct rwlock *l, uintptr_t who)
{
    return atomic_load_explicit(&l->owner, memory_order_relaxed) == who;
}

/* The way in to read, lock-free: not while a writer holds the lock or
 * is queued for it. Returns 0, EBUSY, or EAGAIN (the count is full). */
static int try_read(struct rwlock *l)
{
    uint32_t s = load(l, memory_order_relaxed);
    while (!(s & (W | WQ))) {
        if ((s & READERS) == READERS)
            return EAGAIN;
        if (cas_in(l, &s, s + 1))
            return 0;
    }
    return EBUSY;
}

/* The way in to write, lock-free: only into a free lock no one waits
 * for (a state of 0). */
static bool fast_write(struct rwlock *l)
{
    uint32_t s = 0;
    return atomic_compare_exchange_strong_explicit(
        &l->state, &s, W, memory_order_acquire, memory_order_relaxed);
}

/* Holds: l->lock. Takes the lock to write if no one holds it. Writers
 * may be queued: a free lock with WQ set is a hand-off in the making
 * (the last reader left and waits for this lock), which the caller may
 * pass; the leaver then finds it held and lets it pass the lock on. */
static bool enter_write_locked(struct rwlock *l)
{
    uint32_t s = load(l, memory_order_relaxed);
    while (!(s & (W | READERS)))
        if (cas_in(l, &s, s | W))
            return true;
    return false;
}

/* Holds: l->lock. Queues w behind q, setting bit, if the lock is still
 * held as `busy` says (a mask of state); false if it no longer is. */
static bool queue_locked(struct rwlock *l, weft__list *q, uint32_t bit,
                         uint32_t busy, weft__waiter *w)
{
    uint32_t s = load(l, memory_order_relaxed);
    while (s & busy)
        if (atomic_compare_exchange_weak_explicit(&l->state, &s, s | bit,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
            weft__list_push_back(weft__q(q), &w->link);
            return true;
        }
    return false;
}

/* The read side's wait: enter, or queue and be let in by a hand-off.
 * Returns 0 or EAGAIN. */
static int read_slow(struct rwlock *l)
{
    int r = EBUSY;
    for (int i = 0; i < SPINS && r == EBUSY; i++) {
        weft__cpu_relax();
        r = try_read(l);
    }
    while (r == EBUSY) {
        weft__waiter w;
        weft__wait_begin(&w, 0, WEFT__WAIT_RWLOCK_READ, l);
        weft__spin_lock(&l->lock, WEFT__LOCK_RWLOCK);
        if ((r = try_read(l)) == EBUSY &&
            queue_locked(l, &l->readers, RQ, W | WQ, &w))
            return weft__wait_block(&w, &l->lock, -1);
        weft__spin_unlock(&l->lock);
        weft__wait_abort(&w);
    }
    return r;
}

/* The write side's wait: enter, or queue and be handed the lock. */
static void write_slow(struct rwlock *l)
{
    for (int i = 0; i < SPINS; i++) {
        weft__cpu_relax();
        if (load(l, memory_order_relaxed) == 0 && fast_write(l))
            return;
    }
    for (;;) {
        weft__waiter w;
        weft__wait_begin(&w, 0, WEFT__WAIT_RWLOCK_WRITE, l);
        weft__spin_lock(&l->lock, WEFT__LOCK_RWLOCK);
        if (enter_write_locked(l)) {
            weft__spin_unlock(&l->lock);
            weft__wait_abort(&w);
            return;
        }
        if (queue_locked(l, &l->writers, WQ, W | READERS, &w)) {
            weft__wait_block(&w, &l->lock, -1);
            return;
        }
        weft__spin_unlock(&l->lock);
        weft__wait_abort(&w);
    }
}

/* Holds: l->lock. Claims the first waiter of q onto *woken; true if q
 * is empty after it. */
static bool take_one_locked(weft__list *q, weft__list *woken)
{
    weft__list *n = weft__list_pop_front(weft__q(q));
    weft__waiter *w = weft__container_of(n, weft__waiter, link);
    if (!weft__claim(w))
        weft__panic("rwlock waiter claimed by someone else");
    weft__list_push_back(woken, n);
    return weft__list_empty(q);
}

/* Holds: l->lock. Claims every waiter of q onto *woken; returns how many. */
static uint32_t take_all_locked(weft__list *q, weft__list *woken)
{
    uint32_t n = 1;
    while (!take_one_locked(q, woken))
        n++;
    return n;
}

/* Holds: l->lock. The caller leaves, holding `mine` of the state (W for a
 * writer; 0 for the last reader, whose count is already given back), and
 * a queue bit was set: passes the lock on to the next in turn, whom it
 * claims onto *woken, unless another thread holds it now (it will pass
 * it on). readers_first: the leaver wrote, so queued readers go next. */
static void pass_on_locked(struct rwlock *l, uint32_t mine,
                           bool readers_first, weft__list *woken)
{
    /* acquire: the earlier leavers' critical sections, for the thread we
     * wake (module comment). */
    uint32_t s = load(l, memory_order_acquire);
    if ((s & (W | READERS) & ~mine) || !(s & QUEUED))
        return;
    s &= ~mine;
    if ((s & RQ) && (readers_first || !(s & WQ)))
        s = (s & ~RQ) + take_all_locked(&l->readers, woken);
    else if (take_one_locked(&l->writers, woken))
        s = (s & ~WQ) | W;
    else
        s |= W;
    /* No one else changes state now (module invariants). release: pairs
     * with the next leaver's acquire. */
    atomic_store_explicit(&l->state, s, memory_order_release);
}

/* Wakes the waiters pass_on_locked claimed: they hold the lock now. */
static void wake_all(weft__list *woken)
{
    weft__list *n;
    while ((n = weft__list_pop_front(woken)))
        weft__complete(weft__container_of(n, weft__waiter, link), 0);
}

/* The slow way out, with waiters queued. */
static void leave_slow(struct rwlock *l, uint32_t mine, bool readers_first)
{
    weft__list woken;
    weft__list_init(&woken);
    weft__spin_lock(&l->lock, WEFT__LOCK_RWLOCK);
    pass_on_locked(l, mine, readers_first, &woken);
    weft__spin_unlock(&l->lock);
    wake_all(&woken);
}

/* The writer, me, leaves. */
static int write_leave(struct rwlock *l)
{
    set_owner(l, 0);
    uint32_t s = W;
    /* release: the critical section happens-before the next holder. */
    if (!atomic_compare_exchange_strong_explicit(&l->state, &s, 0,
                                                 memory_order_release,
                                                 memory_order_relaxed))
        leave_slow(l, W, true); /* queued: W is still ours to pass on */
    return 0;
}

/* One reader leaves. EPERM if no read lock is held. */
static int read_leave(struct rwlock *l)
{
    uint32_t s = load(l, memory_order_relaxed);
    do {
        if ((s & W) || !(s & READERS))
            return EPERM;
    } while (!atomic_compare_exchange_weak_explicit(
        &l->state, &s, s - 1, memory_order_release, memory_order_relaxed));
    if ((s & READERS) == 1 && (s & QUEUED))
        leave_slow(l, 0, false);
    return 0;
}

int weft_rwlock_rdlock(weft_rwlock *prl)
{
    struct rwlock *l = (struct rwlock *)prl;
    uintptr_t me = weft__holder_self();
    if (!l)
        return EINVAL;
    int r = try_read(l);
    if (likely(r != EBUSY))
        return r;
    if ((load(l, memory_order_relaxed) & W) && writes(l, me))
        return EDEADLK;
    return read_slow(l);
}

int weft_rwlock_wrlock(weft_rwlock *prl)
{
    struct rwlock *l = (struct rwlock *)prl;
    uintptr_t me = weft__holder_self();
    if (!l)
        return EINVAL;
    if (unlikely(!fast_write(l))) {
        if ((load(l, memory_order_relaxed) & W) && writes(l, me))
            return EDEADLK;
        write_slow(l);
    }
    set_owner(l, me);
    return 0;
}

int weft_rwlock_tryrdlock(weft_rwlock *prl)
{
    struct rwlock *l = (struct rwlock *)prl;
    return l ? try_read(l) : EINVAL;
}

int weft_rwlock_trywrlock(weft_rwlock *prl)
{
    struct rwlock *l = (struct rwlock *)prl;
    if (!l)
        return EINVAL;
    if (!fast_write(l)) {
        if (load(l, memory_order_relaxed) & (W | READERS))
            return EBUSY;
        /* free, a hand-off under way */
        weft__spin_lock(&l->lock, WEFT__LOCK_RWLOCK);
        bool in = enter_write_locked(l);
        weft__spin_unlock(&l->lock);
        if (!in)
            return EBUSY;
    }
    set_owner(l, weft__holder_self());
    return 0;
}

int weft_rwlock_unlock(weft_rwlock *prl)
{
    struct rwlock *l = (struct rwlock *)prl;
    uintptr_t me = weft__holder_self();
    if (!l)
        return EINVAL;
    if (!(load(l, memory_order_relaxed) & W))
        return read_leave(l);
    if (!writes(l, me))
        return EPERM; /* another thread writes */
    return write_leave(l);
}
