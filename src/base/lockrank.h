/* SPDX-License-Identifier: MIT */
/*
 * lockrank.h — the lock classes of the runtime's spinlocks, and the check
 * of their order in WEFT_LOCK_ORDER builds (lockrank.c).
 *
 * The order is declared in sched/sched.h: a lock may be taken only while
 * every lock its thread holds comes before it. Each class below belongs
 * to one level of that order, listed here outer first; classes of one
 * level never nest, except where a class orders its own locks (rules in
 * lockrank.c): handle and channel locks by address, scope locks ancestor
 * first (by depth in the scope tree, then by address).
 *
 * The class is given where a lock is taken (spinlock.h: weft__spin_lock),
 * not where it is initialised: the public weft_mutex, weft_cond and
 * weft_sem are all-zero when initialised statically, and thread records,
 * channels and fd records come from calloc, so a class stored in the lock
 * would be missing from every one of those. Named at each lock call, a
 * class cannot be left out (the call does not compile without it), and
 * the call says which level it takes.
 *
 * With WEFT_LOCK_ORDER (on by default in Debug builds: CMakeLists.txt)
 * each OS thread keeps the locks it holds; taking one out of order, or
 * releasing one it does not hold, panics, naming both locks' classes,
 * levels and the file:line where each was taken. Without it, the class
 * argument is not even evaluated: the spinlock is the same atomic word
 * and its fast path the same instructions.
 */
#ifndef WEFT_BASE_LOCKRANK_H
#define WEFT_BASE_LOCKRANK_H

#include <stdbool.h>
#include <stdint.h>

typedef struct weft__spinlock weft__spinlock;

/* Outer first; the level is in the comment (sched/sched.h says more). */
typedef enum weft__lock_class {
    WEFT__LOCK_HANDLE,       /*  1 weft_thread.handle.lock (by address) */
    WEFT__LOCK_SCOPE,        /*  2 weft_scope.lock (ancestor first) */
    WEFT__LOCK_DEADLINE,     /*  3 weft_scope.deadline_lock */
    WEFT__LOCK_COND,         /*  4 a weft_cond's queue */
    WEFT__LOCK_MUTEX,        /*  5 a weft_mutex's queue */
    WEFT__LOCK_RWLOCK,       /*  5 a weft_rwlock's queue */
    WEFT__LOCK_SEM,          /*  5 a weft_sem's queue */
    WEFT__LOCK_CHAN,         /*  5 a channel (by address) */
    WEFT__LOCK_PTHREAD,      /*  5 a bucket of pthread lock waiters */
    WEFT__LOCK_FD,           /*  5 an fd record */
    WEFT__LOCK_TIMERS,       /*  6 a P's timer heap */
    WEFT__LOCK_RING_SQ,      /*  7 an io_uring submission queue */
    WEFT__LOCK_RING_PORTS,   /*  7 the io_uring port table */
    WEFT__LOCK_SCHED,        /*  8 the scheduler lock, weft__S.lock */
    WEFT__LOCK_BOUND,        /*  9 a carrier's bound-thread queue */
    WEFT__LOCK_STACK_POOL,   /* 10 the stack pools */
    WEFT__LOCK_STACK_MAP,    /* 10 stack mapping, one at a time */
    WEFT__LOCK_RECORDS,      /* 10 the thread record pool, weft__S.g_lock */
    WEFT__LOCK_HANDLE_TABLE, /* 10 the handle table's growth */
    WEFT__LOCK_HOG,          /* 11 the monitor's longest-hog record */
    WEFT__LOCK_TRACE,        /* 12 the trace's shared ring */
    WEFT__LOCK_NCLASSES
} weft__lock_class;

#ifdef WEFT_LOCK_ORDER

#define WEFT__LOCK_STR_(x) #x
#define WEFT__LOCK_STR(x) WEFT__LOCK_STR_(x)
#define WEFT__LOCK_HERE __FILE__ ":" WEFT__LOCK_STR(__LINE__)

/* Out of line, never inlined: they keep the calling OS thread's held
 * locks in thread-local storage, whose address must be taken afresh at
 * each call (a virtual thread that parks between a lock and its unlock
 * may resume on another carrier: base/compiler.h, WEFT_NOIPA). key
 * orders the locks of a class that nests (a scope's depth), else 0. */
void weft__lockrank_lock(weft__spinlock *l, weft__lock_class c, uint32_t key,
                         const char *where);
bool weft__lockrank_trylock(weft__spinlock *l, weft__lock_class c,
                            uint32_t key, const char *where);
void weft__lockrank_unlock(weft__spinlock *l, const char *where);
/* Runs on: a virtual thread switching out, handing `handed` (or NULL) to
 * the next context to release (sched/switch.c). Panics if it holds any
 * other lock: a lock held across a switch could be released on another
 * carrier, or never. */
void weft__lockrank_switch(const weft__spinlock *handed, const char *where);
/* How many locks the calling OS thread holds (tests). */
unsigned weft__lockrank_held(void);

#define weft__lockrank_switching(handed) \
    weft__lockrank_switch((handed), WEFT__LOCK_HERE)
#else
#define weft__lockrank_switching(handed) ((void)0)
#endif

#endif
