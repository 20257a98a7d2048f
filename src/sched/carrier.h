/* SPDX-License-Identifier: MIT */
/*
 * carrier.h — M's, the carrier OS threads, and weft__S, the scheduler's
 * shared state: the carrier record, the current carrier, and the calls of
 * the files that make a carrier run threads: carrier.c (its OS thread),
 * switch.c (switching between threads), ready.c (making threads runnable
 * and waking a carrier for them), loop.c (the scheduler loop), idle.c
 * (idling until woken).
 *
 * Invariants. A carrier's fields are written by the carrier itself,
 * except those marked "sched lock" (weft__S.lock, level 8 of the lock
 * order: the idle lists, nextp, idle), the monitor's (demoted,
 * nice_before, stat_*, exited: monitor.c, cpuwatch.c) and the bound
 * queue's (bind.c, under bound_lock). weft__S's fields marked "lock" are
 * under weft__S.lock; the rest are set before the carriers start, or are
 * atomics whose pairing is described where they are used.
 */
#ifndef WEFT_SCHED_CARRIER_H
#define WEFT_SCHED_CARRIER_H

#include <errno.h>
#include <pthread.h>

#include "arch/context.h"
#include "base/compiler.h"
#include "base/spinlock.h"
#include "sched/proc.h"
#include "sched/thread.h"

typedef struct weft__carrier weft__carrier;

/* What the next context does once the thread that switched out is off
 * its stack (switch.c). */
typedef enum {
    WEFT__AFTER_NONE, WEFT__AFTER_PARK, WEFT__AFTER_YIELD, WEFT__AFTER_EXIT
} weft__after_kind;

struct weft__carrier {
    weft__ctx sched_ctx;         /* the carrier's scheduler loop */
    weft_thread *cur;            /* running thread, NULL in the loop */
    weft_thread *fiber_next;     /* taken in a switch, its stack without a
                                    TSan fiber: the loop makes one */
    weft__proc *p;               /* held P, or NULL */
    weft__proc *nextp;           /* P handed over by a waker; sched lock */
    weft__carrier *idle_next;    /* under the scheduler lock */
    _Atomic uint32_t wake_word;  /* futex: 0 asleep, 1 woken */
    _Atomic bool in_poll;        /* idle in its I/O port (io/poller.c) */
    struct weft__port *_Atomic io_port; /* set by itself on first use */
    bool spinning;
    bool idle;                   /* on the idle list; sched lock */
    /* Threads it readies go to the back of its P's queue, in order, not
     * to runnext: set while it fires timers (a batch of expired timers
     * wakes its threads in deadline order) and while it dispatches I/O
     * events (io/poller.c). */
    bool wake_fifo;
    uint32_t io_countdown;       /* switches to the next I/O poll */
    weft_thread *seen_runnext;   /* stealing: a victim's runnext seen ... */
    uint32_t seen_runnext_put;   /* ... which put it was ... */
    int64_t seen_runnext_at;     /* ... since then */
    int64_t runnext_looked_at;   /* stealing: when runnexts were last read */
    uint32_t id;
    int *errno_loc;              /* its OS thread's errno (set by itself) */
    pthread_t os_thread;
    _Atomic int tid;             /* kernel thread id; 0 until it runs */
    int demoted;                 /* stuck: its nice value raised by this
                                    (0: not), from ... */
    int nice_before;             /* ... this one; monitor.c */
    int stat_fd;                 /* its /proc stat file, open while ... */
    int stat_tid;                /* ... this is its tid (0: not open):
                                    the monitor's only (cpuwatch.c) */
    bool hog;                    /* the thread found stuck on it is back: */
    int64_t hog_ns;              /* ... how long it held the carrier, */
    uint64_t hog_id;             /* ... its id and name (copied: it may */
    char hog_name[32];           /* be gone by the time they are used) */
    bool exited;                 /* its OS thread ended (monitor.c); lock */
    bool joinable;               /* os_thread started, not joined */
    /* Work the next context does once this one is off its stack. */
    weft__after_kind after;
    weft_thread *after_g;
    weft__spinlock *after_lock;
    /* Detached children of one scope that finished on this carrier and
     * are not yet counted out of it (thread.c: finish_detached). */
    weft_scope *fin_scope;
    weft_thread *fin_head, *fin_tail;
    uint32_t fin_count;
    /* Sanitizer bookkeeping. */
    void *fake_stack;
    void *tsan_fiber;
    const void *stack_lo;
    size_t stack_size;
    void *altstack;              /* its alternate signal stack mapping */
    size_t altstack_size;        /* ... usable bytes, above a guard page */
    struct weft__trace_ring *trace; /* WEFT_TRACE: its events (trace.c) */
    /* Threads bound to this carrier (bind.c). The queue of runnable ones
     * is taken only by this carrier (or released by the monitor). */
    _Atomic uint32_t nbound;     /* bound to it: it must not end */
    _Atomic uint32_t nready_bound; /* in the queue; seq_cst vs idling */
    _Atomic bool idling;         /* in idle(): wakers of bound threads wake
                                    it (pairs with nready_bound) */
    _Atomic int64_t bound_since; /* when the queue's head was queued */
    weft__spinlock bound_lock;   /* lock order 9: BOUND (sched.h) */
    weft_thread *bound_head, *bound_tail; /* under bound_lock */
};


struct weft__sched {
    weft__spinlock lock;              /* lock order 8: SCHED (sched.h) */
    weft_thread *gq_head, *gq_tail;   /* global run queue; lock */
    _Atomic uint32_t gq_size;
    weft__proc *idle_p;               /* lock */
    _Atomic uint32_t npidle;
    weft__carrier *idle_m;            /* lock */
    _Atomic uint32_t nmspinning;
    weft__carrier *timer_waiter;      /* lock */
    _Atomic int64_t timer_wait_until;
    /* P's: nprocs of them in circulation, plus one for each carrier the
     * monitor found stuck (monitor.c). procs has room for pcap; the first
     * nallp are initialised (the monitor adds them, never removes). */
    weft__proc *procs;
    uint32_t nprocs;                  /* configured */
    uint32_t ncpus;                   /* online CPUs */
    uint32_t pcap;
    _Atomic uint32_t nallp;
    weft__proc *retired_p;            /* out of circulation; lock */
    _Atomic uint32_t nstuck;          /* P's marked stuck, not yet back */
    /* Carriers: room for max_carriers; the monitor adds spares. */
    weft__carrier **carriers;
    _Atomic uint32_t ncarriers;
    uint32_t nexited;                 /* records whose thread ended; lock */
    uint32_t max_carriers;
    int64_t hog_ns;
    _Atomic bool running;
    _Atomic bool done;
    int root_result;
    weft_thread *root;
    size_t stack_size;
    bool compact;                     /* stack_size < WEFT__COMPACT_LIMIT */
    unsigned io;                      /* weft_config.io asked for */
    _Atomic uint64_t next_id;
    _Atomic int64_t live_off_p;       /* live count changes made without a P */
    /* weft_now() at the monitor's last tick: the "since" of wait records,
     * read instead of a clock on the path of every wait. Behind by up to a
     * tick while P's are busy; refreshed as soon as a carrier leaves idle
     * (the monitor is woken then). */
    _Atomic int64_t tick_ns;
    uint64_t idle_epoch;              /* bumped when a carrier wakes; lock */
    uint32_t nidle_m;                 /* lock */
    bool deadlocked;                  /* declared; lock */
    _Atomic uint64_t unbound_resumes; /* bound threads the monitor let
                                         resume elsewhere (bind.c) */
    /* Thread record pool shared by all P's. */
    weft__spinlock g_lock;            /* lock order 10: RECORDS */
    weft_thread *free_g;
    weft_thread *all_g;               /* every record; g_lock */
};

extern struct weft__sched weft__S;

/* carrier.c: the current carrier and thread, and errno. */
void weft__set_m(weft__carrier *m);
extern __thread weft__carrier *weft__tls_m
    __attribute__((tls_model("initial-exec")));
/* The current carrier, read afresh at each call: safe after a park, which
 * may resume the thread on another carrier. On x86-64 the read is inline:
 * a volatile asm that goes through %fs itself (so no thread pointer the
 * compiler may have kept from before a switch is used), with a memory
 * clobber so that it is never moved across a switch either. Elsewhere, a
 * call the compiler cannot see into (carrier.c). */
#if defined(__x86_64__)
static inline weft__carrier *weft__m(void)
{
    weft__carrier *m;
    __asm__ volatile("movq weft__tls_m@gottpoff(%%rip), %0\n\t"
                     "movq %%fs:(%0), %0"
                     : "=r"(m)
                     :
                     : "memory");
    return m;
}
#else
weft__carrier *weft__m(void);
#endif
/* The current carrier read inline, for the hottest paths: only in a
 * function that cannot park between this read and its last use of the
 * result, and that reads it no second time after a park (the compiler
 * may keep the thread pointer in a register across the switch, and the
 * thread may resume on another carrier). Everywhere else: weft__m(). */
static inline weft__carrier *weft__m_here(void)
{
    return weft__tls_m;
}
/* errno's address on the calling carrier, never cached by the compiler:
 * code that may park reads and writes errno through it (WEFT_ERRNO), since
 * the thread may resume on another carrier, with another errno. */
int *weft__errno_ptr(void);
#define WEFT_ERRNO (*weft__errno_ptr())
weft_thread *weft__g(void);           /* current thread, or NULL */

/* Runs on: any thread. P's initialised so far: every loop over all P's
 * (stealing, timers, counters) runs to this bound. */
static inline uint32_t weft__nallp(void)
{
    return atomic_load_explicit(&weft__S.nallp, memory_order_acquire);
}

/* carrier.c: starts a spare carrier holding p (idle when p is NULL);
 * starts m's OS thread. */
int  weft__carrier_spawn(weft__proc *p);
int  weft__carrier_start(weft__carrier *m);

/* carrier.c: true in the child of a fork made while a runtime ran, where
 * the runtime is shut off. Written once, by that child's only thread
 * (foreign/fork.c). */
extern bool weft__forked_child;
/* carrier.c: weft_run is under way in this process (set up, running or
 * torn down). */
extern _Atomic bool weft__in_run;

/* The error of a call that needs a virtual thread, made on any other
 * thread: EPERM, or ECHILD in a forked child, where none can run. */
static inline int weft__no_vthread(void)
{
    return unlikely(weft__forked_child) ? ECHILD : EPERM;
}

/* switch.c */
void weft__switch_out(weft_thread *g, weft__after_kind after,
                      weft__spinlock *lk);
void weft__switch_out_on(weft__carrier *m, weft_thread *g,
                         weft__after_kind after, weft__spinlock *lk);
void weft__after_switch(void);
void weft__after_switch_on(weft__carrier *m);
void weft__blocking_enter(void);
void weft__blocking_leave(void);

/* ready.c (and weft__ready: park.h) */
void weft__enqueue(weft_thread *g);   /* runnable: current P or global */
void weft__enqueue_on(weft__carrier *m, weft_thread *g);
void weft__enqueue_spawned(weft_thread *g);
bool weft__wakep_slow(void);

/* Runs on: any thread that has just queued a thread. Wakes an idle
 * carrier if there is an idle P and no carrier is already looking for
 * work (ready.c); false: an idle P has no carrier. */
static inline bool weft__wakep(void)
{
    /* seq_cst: the queuer's half of the Dekker pair with an idling carrier
     * (ready.c); the thread it queued is already published. */
    if (!atomic_load_explicit(&weft__S.npidle, memory_order_seq_cst))
        return true;
    return weft__wakep_slow();
}
void weft__carrier_wake(weft__carrier *m);
void weft__timer_waiter_kick(int64_t when);

/* loop.c */
void weft__carrier_loop(weft__carrier *m);
bool weft__work_anywhere(void);

/* idle.c */
void weft__carrier_idle(weft__carrier *m);
bool weft__take_idle_p_locked(weft__carrier *m);
void weft__timer_waiting_hand_on(void);
void weft__wake_all(void);

#endif
