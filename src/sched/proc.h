/* SPDX-License-Identifier: MIT */
/*
 * proc.h — P's, the processor slots (proc.c): each P's run queues, timer
 * heap, caches and the stamp the monitor watches.
 *
 * Invariants. A P is held by at most one carrier (m), its owner; fields
 * marked "owner only" are written by that carrier alone. The ring's head
 * is advanced by the owner and thieves (runq.h), tail, owner_in and
 * runnext_puts by the owner; thieves and looked_* by thieves only
 * (proc.c, loop.c). The timer heap belongs to timer.c, under
 * timer_lock (level 6 of the lock order). stamp is the owner's, stuck and
 * hog_* the monitor's (monitor.c). idle_next and m change under the
 * scheduler lock, when the P goes idle or is handed to a carrier.
 */
#ifndef WEFT_SCHED_PROC_H
#define WEFT_SCHED_PROC_H

#include "base/compiler.h"
#include "base/spinlock.h"

typedef struct weft__proc weft__proc;
typedef struct weft__carrier weft__carrier;
typedef struct weft__stack weft__stack;
typedef struct weft__timer weft__timer;

/* A P's ring: room for a server's burst of wake-ups (1,000 connections on
 * 2 P's overflowed 256 slots into the global queue at every batch). */
#define WEFT__RUNQ_SIZE 1024u
/* The most threads moved between queues at once, through an array on the
 * stack of the caller, which may be a virtual thread's small one. */
#define WEFT__RUNQ_BATCH 128u
/* Queued threads at which a spawner yields to them (ready.c): fewer
 * records and stacks in flight, hotter in the caches, than a full ring
 * (bench/RESULTS.md: history notes). Below WEFT__STACK_CACHE, so that
 * the stacks in flight never leave the P's pool for the global one. */
#define WEFT__SPAWN_BACKLOG 31u
#define WEFT__STACK_CACHE 32u    /* stacks a P keeps (stack.c) */
#define WEFT__G_CACHE 64u        /* thread records a P keeps (thread.c) */

/* Cache-line aligned (the array of P's too), so that one P's owner-only
 * fields never share a line with the next P's queue. */
struct __attribute__((aligned(WEFT_CACHELINE))) weft__proc {
    /* Local run queue: the owner pushes at tail; the owner and thieves take
     * from head (runq.h: the owner without a locked instruction while no
     * thief is at work). */
    _Atomic uint32_t head;
    _Atomic uint32_t tail;
    _Atomic uint32_t owner_in;   /* the owner is taking without a CAS */
    _Atomic uint32_t thieves;    /* thieves taking from head or runnext */
    /* runnext on a line of its own: a hand-off writes it at every message,
     * and a spinning thief's look at head and tail must not take that
     * line from the owner each time (see loop.c, steal_runnext). */
    _Atomic(weft_thread *) runnext __attribute__((aligned(WEFT_CACHELINE)));
    _Atomic uint32_t runnext_puts;  /* owner only writes: tells thieves a
                                       runnext apart from a later one */
    _Atomic(weft_thread *) ring[WEFT__RUNQ_SIZE]
        __attribute__((aligned(WEFT_CACHELINE)));
    /* Thieves' shared look at the ring (loop.c, ring_waited): the tail
     * when a thief last looked and when. Thief-written, on a line of its
     * own so that the owner's queue operations never miss on it. */
    _Atomic uint32_t looked_tail __attribute__((aligned(WEFT_CACHELINE)));
    _Atomic int64_t looked_at;
    uint32_t id __attribute__((aligned(WEFT_CACHELINE)));
    uint32_t fairness;           /* countdown to a global-queue check */
    uint64_t rand;               /* owner only */
    /* For the monitor (monitor.c): the owner bumps stamp each time it
     * starts running a thread, with WEFT__STAMP_* bits; the monitor sets
     * stuck when a stamp stays the same too long, and the owner clears it
     * when it comes back and gives the P up. Away from the queue's line,
     * which thieves poll: a store there at every switch would cost the
     * owner a miss at its next queue operation. */
    _Atomic uint64_t stamp;
    _Atomic bool stuck;
    uint64_t hog_stamp;          /* the stamp judged stuck, and since ...  */
    int64_t hog_since;           /* ... when: written before stuck is set */
    weft__proc *idle_next;       /* under the scheduler lock */
    weft__carrier *m;            /* the carrier that holds it, or NULL */
    /* Timer heap. */
    weft__spinlock timer_lock;   /* lock order 6: TIMERS (sched.h) */
    weft__timer **timers;
    uint32_t ntimers, timer_cap;
    _Atomic int64_t timer_next;  /* earliest when, INT64_MAX if none */
    /* Caches: owner only, on a line of their own with the counters
     * below: the owner writes them at every spawn and finish, and a
     * spinning carrier reads timer_next (above) at every round. */
    weft__stack *stacks __attribute__((aligned(WEFT_CACHELINE)));
    uint32_t nstacks;
    weft_thread *free_g;
    uint32_t nfree_g;
    /* Counters kept per P so that spawning and finishing threads on
     * different carriers write no shared line: owner only writes. */
    _Atomic int64_t live;        /* spawns minus finishes counted here */
    uint64_t id_next, id_end;    /* block of thread ids */
};

/* A P's owner takes from the global queue first once in this many picks
 * (and whenever its own queues are empty), so that the global queue is
 * never starved by a busy P. */
#define WEFT__GLOBAL_FAIRNESS 61

#define WEFT__STAMP_IN_G 1u      /* a thread runs on the P */
#define WEFT__STAMP_BLOCKING 2u  /* ... inside a marked blocking call */

/* Runs on: p's owner. Records that it starts running a thread (bits
 * WEFT__STAMP_IN_G), or went back to its scheduler loop (0). A plain
 * load and store: the monitor only reads it. */
static inline void weft__proc_stamp(weft__proc *p, uint64_t bits)
{
    uint64_t s = atomic_load_explicit(&p->stamp, memory_order_relaxed);
    atomic_store_explicit(&p->stamp, ((s + 4) & ~(uint64_t)3) | bits,
                          memory_order_relaxed);
}

/* Runs on: any carrier. Whether the monitor found p stuck and handed it
 * off: its carrier must give it up at its next switch. */
static inline bool weft__proc_handed_off(weft__proc *p)
{
    return unlikely(atomic_load_explicit(&p->stuck, memory_order_relaxed));
}

/* proc.c: run queues. "owner" = the carrier holding p. */
bool weft__runq_empty(weft__proc *p);
weft_thread *weft__runq_steal(weft__proc *p, weft__proc *victim);
void weft__runq_thief_enter(weft__proc *victim);
void weft__runq_thief_leave(weft__proc *victim);
void weft__globq_put(weft_thread *g);
void weft__globq_put_chain(weft_thread *first, weft_thread *last, uint32_t n);
weft_thread *weft__globq_get(weft__proc *p);
void weft__proc_init(weft__proc *p, uint32_t id);

#endif
