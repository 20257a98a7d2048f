/* SPDX-License-Identifier: MIT */
/*
 * lockrank.c — the lock order, checked (WEFT_LOCK_ORDER builds): each OS
 * thread's held spinlocks, and a panic at the first one taken out of the
 * order that sched/sched.h declares.
 *
 * The rule. Taking lock B while holding lock A is in order when
 *   - A's level comes before B's, or
 *   - A and B are of one class that orders its own locks, and A comes
 *     before B in that order: by address for handle and channel locks (a
 *     select sorts them so), by (depth, address) for scope locks, so that
 *     an ancestor comes before its descendants (a cancel walks down the
 *     tree; a select sorts the scopes of its joins so).
 * Classes that share a level and do not order their own locks never nest.
 * B is compared with every lock held, not only the last one taken: a
 * trylock cannot deadlock and is recorded unchecked (fork.c), so the held
 * locks need not be in order among themselves.
 *
 * Held locks are kept per OS thread, not per virtual thread: a virtual
 * thread holds no spinlock across a switch but the one it hands to the
 * switch, which the next context on the same carrier (the same OS thread)
 * releases (sched/switch.c); weft__lockrank_switch checks that at every
 * switch. The first INLINE_HELD sit in thread-local storage. A select over
 * many channels holds more (two per case at most): they go to a mapping
 * made then, and unmapped once the thread is back to INLINE_HELD; mmap,
 * not malloc, since locks are taken in signal handlers too (a panic's
 * dump from the overflow handler).
 *
 * A violation panics, naming both locks' classes and levels and where
 * each was taken. The panic's dump takes locks of its own, so a thread
 * that reported stops checking the order (it still records, and aborts
 * rather than spin for ever on a lock it holds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/spinlock.h"

#ifdef WEFT_LOCK_ORDER

/* How a class orders locks of its own: never nested, by address, or by
 * key (a scope's depth) then address. */
enum nesting { NEVER, BY_ADDRESS, BY_KEY };

static const struct lock_class {
    const char *name;
    unsigned level;
    enum nesting nests;
} classes[WEFT__LOCK_NCLASSES] = {
    [WEFT__LOCK_HANDLE] = {"thread handle lock", 1, BY_ADDRESS},
    [WEFT__LOCK_SCOPE] = {"scope lock", 2, BY_KEY},
    [WEFT__LOCK_DEADLINE] = {"scope deadline lock", 3, NEVER},
    [WEFT__LOCK_COND] = {"condition variable's queue lock", 4, NEVER},
    [WEFT__LOCK_MUTEX] = {"mutex's queue lock", 5, NEVER},
    [WEFT__LOCK_RWLOCK] = {"rwlock's queue lock", 5, NEVER},
    [WEFT__LOCK_SEM] = {"semaphore's queue lock", 5, NEVER},
    [WEFT__LOCK_CHAN] = {"channel lock", 5, BY_ADDRESS},
    [WEFT__LOCK_PTHREAD] = {"pthread lock waiters' bucket lock", 5, NEVER},
    [WEFT__LOCK_FD] = {"fd record lock", 5, NEVER},
    [WEFT__LOCK_TIMERS] = {"timer heap lock", 6, NEVER},
    [WEFT__LOCK_RING_SQ] = {"io_uring submission queue lock", 7, NEVER},
    [WEFT__LOCK_RING_PORTS] = {"io_uring port table lock", 7, NEVER},
    [WEFT__LOCK_SCHED] = {"scheduler lock", 8, NEVER},
    [WEFT__LOCK_BOUND] = {"bound queue lock", 9, NEVER},
    [WEFT__LOCK_STACK_POOL] = {"stack pool lock", 10, NEVER},
    [WEFT__LOCK_STACK_MAP] = {"stack mapping lock", 10, NEVER},
    [WEFT__LOCK_RECORDS] = {"thread record pool lock", 10, NEVER},
    [WEFT__LOCK_HANDLE_TABLE] = {"handle table lock", 10, NEVER},
    [WEFT__LOCK_HOG] = {"hog record lock", 11, NEVER},
    [WEFT__LOCK_TRACE] = {"trace ring lock", 12, NEVER},
};

#define INLINE_HELD 64
/* A select holds at most 2 locks per case (sync/select.c: MAX_CASES) and
 * nothing else. */
#define MAX_HELD 4096u

struct held {
    const weft__spinlock *lock;
    const char *where;        /* "file:line" of its lock call */
    uint32_t key;
    weft__lock_class cls;
};

/* The calling OS thread's held locks, oldest first. */
static __thread struct {
    uint32_t n;
    bool reported;            /* it panicked: stop checking */
    struct held *spill;       /* held[INLINE_HELD...], while n is above */
    struct held first[INLINE_HELD];
} T;

static struct held *held_at(uint32_t i)
{
    return i < INLINE_HELD ? &T.first[i] : &T.spill[i - INLINE_HELD];
}

static size_t spill_bytes(void)
{
    return (MAX_HELD - INLINE_HELD) * sizeof(struct held);
}

/* The path from the source tree's root on: "src/sched/ready.c:52". */
static const char *short_where(const char *where)
{
    const char *p = strstr(where, "/src/");
    if (!p)
        p = strstr(where, "/tests/");
    return p ? p + 1 : where;
}

static void describe(char *buf, size_t size, weft__lock_class c, uint32_t key,
                     const weft__spinlock *l)
{
    const struct lock_class *k = &classes[c];
    if (k->nests == BY_KEY)
        snprintf(buf, size, "%s %p (level %u, depth %u)", k->name,
                 (const void *)l, k->level, key);
    else
        snprintf(buf, size, "%s %p (level %u)", k->name, (const void *)l,
                 k->level);
}

/* Why taking (c, key, l) while holding h breaks the order, or NULL. */
static const char *out_of_order(const struct held *h, weft__lock_class c,
                                uint32_t key, const weft__spinlock *l)
{
    const struct lock_class *hk = &classes[h->cls], *k = &classes[c];
    uintptr_t a = (uintptr_t)h->lock, b = (uintptr_t)l;
    if (a == b)
        return "the thread holds it already";
    if (hk->level != k->level)
        return hk->level < k->level ? NULL
             : "a lock may only be taken after every lock its thread holds";
    if (h->cls != c)
        return "locks of different classes on one level never nest";
    switch (k->nests) {
    case BY_ADDRESS:
        return a < b ? NULL : "locks of this class nest by address, lowest "
                              "first";
    case BY_KEY:
        return h->key < key || (h->key == key && a < b) ? NULL
             : "scope locks nest ancestor first (by depth, then address)";
    default:
        return "two locks of this class never nest";
    }
}

static _Noreturn void report(const struct held *h, weft__lock_class c,
                             uint32_t key, const weft__spinlock *l,
                             const char *where, const char *why)
{
    char taking[160], holding[160];
    describe(taking, sizeof taking, c, key, l);
    describe(holding, sizeof holding, h->cls, h->key, h->lock);
    T.reported = true;
    weft__panic("lock order violated: taking the %s at %s while holding "
                "the %s taken at %s: %s (sched/sched.h)",
                taking, short_where(where), holding, short_where(h->where),
                why);
}

static void check(weft__lock_class c, uint32_t key, const weft__spinlock *l,
                  const char *where)
{
    weft__assert((unsigned)c < WEFT__LOCK_NCLASSES && classes[c].name,
                 "a lock of a known class");
    for (uint32_t i = T.n; i-- > 0;) {
        const struct held *h = held_at(i);
        if (T.reported) {
            if (h->lock == l)
                abort(); /* a panic's dump would spin here for ever */
            continue;
        }
        const char *why = out_of_order(h, c, key, l);
        if (why)
            report(h, c, key, l, where, why);
    }
}

static void push(weft__spinlock *l, weft__lock_class c, uint32_t key,
                 const char *where)
{
    if (T.n == MAX_HELD)
        weft__panic("lock order: more than %u spinlocks held at %s",
                    MAX_HELD, short_where(where));
    if (T.n == INLINE_HELD && !T.spill) {
        void *p = mmap(NULL, spill_bytes(), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            weft__panic("lock order: no memory to record held locks");
        T.spill = p;
    }
    *held_at(T.n++) = (struct held){l, where, key, c};
}

static void pop(const weft__spinlock *l, const char *where)
{
    uint32_t i = T.n;
    while (i > 0 && held_at(i - 1)->lock != l)
        i--;
    if (i == 0)
        weft__panic("lock order: releasing at %s a spinlock %p that this "
                    "OS thread does not hold", short_where(where),
                    (const void *)l);
    for (; i < T.n; i++)
        *held_at(i - 1) = *held_at(i);
    T.n--;
    if (T.spill && T.n <= INLINE_HELD) {
        munmap(T.spill, spill_bytes());
        T.spill = NULL;
    }
}

WEFT_NOIPA void weft__lockrank_lock(weft__spinlock *l, weft__lock_class c,
                                    uint32_t key, const char *where)
{
    check(c, key, l, where);
    weft__spin_raw_lock(l);
    push(l, c, key, where);
}

WEFT_NOIPA bool weft__lockrank_trylock(weft__spinlock *l,
                                       weft__lock_class c, uint32_t key,
                                       const char *where)
{
    if (!weft__spin_raw_trylock(l))
        return false;
    push(l, c, key, where);
    return true;
}

WEFT_NOIPA void weft__lockrank_unlock(weft__spinlock *l,
                                      const char *where)
{
    pop(l, where);
    weft__spin_raw_unlock(l);
}

WEFT_NOIPA void weft__lockrank_switch(const weft__spinlock *handed,
                                      const char *where)
{
    bool handed_held = !handed;
    for (uint32_t i = 0; i < T.n && !T.reported; i++) {
        const struct held *h = held_at(i);
        if (h->lock == handed) {
            handed_held = true;
            continue;
        }
        char holding[160];
        describe(holding, sizeof holding, h->cls, h->key, h->lock);
        T.reported = true;
        weft__panic("lock order violated: a thread switches out at %s "
                    "holding the %s taken at %s: no spinlock is held "
                    "across a switch but the one handed to it",
                    short_where(where), holding, short_where(h->where));
    }
    if (!handed_held && !T.reported)
        weft__panic("lock order: a thread switches out at %s handing over "
                    "a spinlock %p it does not hold", short_where(where),
                    (const void *)handed);
}

WEFT_NOIPA unsigned weft__lockrank_held(void)
{
    return T.n;
}

#endif
