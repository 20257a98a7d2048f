/*
 * sched.h — the runtime's internal model: G (virtual thread), P (processor
 * slot), M (carrier OS thread), the waiter records of the park protocol,
 * timers and stacks. Internal only; never include from weft.h.
 *
 * Lock order (outer first). A lock may only be taken while holding locks
 * that come before it:
 *   0. thread handle locks (weft_thread.handle.lock), by address
 *   1. scope locks, ancestor before descendant (a thread's home scope before
 *      the scopes of that thread's root)
 *   2. object wait-queue locks (mutex, cond, sem)
 *   3. timer heap locks (one per P)
 *   4. the scheduler lock (idle P's and M's, global run queue)
 *   5. stack pool and record pool locks
 * Waking a thread (weft__wake*) only takes locks 4 and 5, so it may be done
 * while holding any lock of levels 1-3.
 *
 * Thread-local state: the current carrier is read through weft__m(), which
 * the compiler cannot fold: never keep its result across a call that may
 * park (see base/compiler.h, WEFT_NOIPA).
 */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include <errno.h>
#include <pthread.h>

#include "arch/context.h"
#include "base/compiler.h"
#include "base/list.h"
#include "base/spinlock.h"

typedef struct weft__proc weft__proc;
typedef struct weft__carrier weft__carrier;
typedef struct weft__stack weft__stack;
typedef struct weft__waiter weft__waiter;
typedef struct weft__timer weft__timer;
typedef struct weft__locals weft__locals;
typedef struct weft__keys weft__keys;

/* -------------------------------------------------------------- waiters */

/* One wait of one thread on one object. Lives on the waiting thread's stack
 * for the duration of the wait. See park.c for the protocol. */
struct weft__waiter {
    weft__list link;        /* in the object's queue; under the object lock */
    weft_thread *g;         /* the waiting virtual thread, or NULL: OS thread */
    uint64_t gen;           /* g's park generation when the wait began */
    _Atomic uint32_t os_word; /* OS thread: 0 waiting, else result + 1 */
    _Atomic uint32_t *osw;  /* OS thread: the word claimed, &os_word or
                               the one all cases of a select share */
    void *data;             /* object-specific payload (channels: the
                               element to send, or where to receive) */
    uint32_t index;         /* select: the case this waiter stands for */
    int err;                /* set by a channel's waker: 0 or EPIPE */
};

/* What a thread waits on, kept for the dump (and, later, deadlock reports). */
typedef enum weft__wait_kind {
    WEFT__WAIT_NONE,
    WEFT__WAIT_SLEEP,
    WEFT__WAIT_JOIN,
    WEFT__WAIT_SCOPE,      /* closing a scope: waits for its children */
    WEFT__WAIT_CHILDREN,   /* finished its function, waits for children */
    WEFT__WAIT_MUTEX,
    WEFT__WAIT_COND,
    WEFT__WAIT_SEM,
    WEFT__WAIT_CHAN_SEND,
    WEFT__WAIT_CHAN_RECV,
    WEFT__WAIT_SELECT,
    WEFT__WAIT_OFFLOAD,
    WEFT__WAIT_FD_READ,    /* obj: the fd's record (io/io.h) */
    WEFT__WAIT_FD_WRITE,
    WEFT__WAIT_FD_POLL,    /* several fds, or both directions */
    WEFT__WAIT_RING_IO,    /* an io_uring operation (file I/O, a batched
                              transfer) */
    WEFT__WAIT_PTHREAD_LOCK, /* a contended pthread mutex or rwlock */
    WEFT__WAIT_PTHREAD_COND, /* pthread_cond_wait */
} weft__wait_kind;

#define WEFT__WAIT_INTERRUPTIBLE 1 /* cancellation ends the wait */
#define WEFT__WAIT_LOCKED 2        /* begun holding a spinlock: never parks */

/* --------------------------------------------------------------- timers */

typedef enum { WEFT__TIMER_IDLE, WEFT__TIMER_ARMED, WEFT__TIMER_FIRING }
    weft__timer_state;

/* A one-shot timer. Owned by whoever embeds it; armed in the heap of one P.
 * fn(arg, gen) runs on some carrier, outside the heap lock, with copies of
 * the timer's fields. If sync is set, the timer is FIRING while fn runs and
 * weft__timer_disarm waits for fn to finish (fn may use what arg points
 * to); otherwise the timer is IDLE before fn starts, disarm never waits,
 * and fn must cope with arg's wait being over (a wait timer's claim of a
 * past generation fails). After disarm the timer's memory may be reused. */
struct weft__timer {
    int64_t when;                /* its place in the heap; under the lock */
    int64_t due;                 /* when it fires (>= when); under the lock */
    uint32_t heap_index;         /* under the heap lock, valid when ARMED */
    weft__proc *heap;            /* where it is armed; under the heap lock */
    _Atomic int state;           /* weft__timer_state */
    void (*fn)(void *arg, uint64_t gen);
    void *arg;                   /* for fn */
    uint64_t gen;                /* for wait timers: the park generation */
    bool sync;                   /* disarm waits for a running fn */
};

int  weft__timer_arm(weft__timer *t, int64_t when); /* 0 / ENOMEM */
void weft__timer_disarm(weft__timer *t);
int  weft__timer_reset(weft__timer *t, int64_t when); /* 0 / ENOMEM */
bool weft__timers_run(weft__proc *p, int64_t now);  /* true: fired some */
int64_t weft__timers_next(void); /* earliest deadline of all P's, or -1 */
void weft__timers_free(weft__proc *p);

/* --------------------------------------------------------------- stacks */

/* Default stacks smaller than this are "compact": carved from guard-less
 * slabs, several to a page, and checked by a canary (stack.c). */
#define WEFT__COMPACT_LIMIT (16u * 1024)
#define WEFT__COMPACT_MIN (2u * 1024)

struct weft__stack {
    size_t asked;           /* the size asked for (the pools' key) */
    char *lo;               /* lowest usable byte */
    size_t size;            /* usable bytes: asked, less a slab's canary */
    char *map;              /* the guarded mapping, or NULL: slab stack */
    size_t map_size;
    weft__stack *next;      /* in a pool */
    unsigned vg_id;         /* Valgrind stack id */
    void *tsan_fiber;
};

weft__stack *weft__stack_get(weft__proc *p, size_t size); /* NULL: ENOMEM */
void weft__stack_put(weft__proc *p, weft__stack *s);

/* stackwhy.c: why a stack could not be had, in words on stderr. */
long weft__max_map_count(void);
bool weft__maps_exhausted(void);
void weft__warn_no_guards(uint32_t budget);
void weft__warn_no_stack(size_t size, int err);
void weft__stackwhy_reset(void);

bool weft__stack_canary_ok(const weft__stack *s);
bool weft__stack_guard_hit(const weft__stack *s, const void *addr);
/* A fault this far below a stack is taken for its overflow (overflow.c):
 * frames that jump a guard page by less are reported. */
#define WEFT__OVERFLOW_REACH ((size_t)1 << 20)
size_t weft__stack_reach(const weft__stack *s);
void weft__stacks_free(weft__proc *p);
void weft__stacks_teardown(void);
void weft__stacks_init(void);
void weft__stacks_trim(void);
void weft__overflow_handler_install(void);
void weft__overflow_handler_remove(void);
_Noreturn void weft__canary_overwritten(weft__carrier *m, weft_thread *g);
/* sigstack.c: each carrier's alternate signal stack. */
bool weft__altstack_init(weft__carrier *m);
void weft__altstack_fini(weft__carrier *m);

/* ---------------------------------------------------------------- scopes */

struct weft_scope {
    weft__spinlock lock;
    _Atomic int reason;      /* 0, or ECANCELED / ETIMEDOUT once cancelled */
    int first_error;         /* first failure of a child (reason instead,
                                if s was cancelled before it); under lock */
    /* Children not yet finished. Raised under lock by the owner's spawns;
     * lowered by finishing children, without the lock unless it goes to
     * 0: so once the owner sees 0 under the lock, no child touches the
     * scope again (scope.c). */
    _Atomic uint32_t live;
    /* Detached children that finished, pushed by themselves (lock-free,
     * linked through weft_thread.next), unlinked and freed by the owner. */
    weft_thread *_Atomic done;
    weft__list children;     /* weft_thread.home_link; under lock */
    weft_scope *outer;       /* enclosing scope of the same owner; NULL for
                                a thread's root scope */
    weft_scope *inner;       /* scope opened inside this one; under lock */
    weft_thread *owner;
    weft__waiter *closer;    /* owner waiting for live == 0; under lock */
    weft__timer *deadline;   /* NULL until weft_scope_deadline */
    weft__spinlock deadline_lock; /* serialises weft_scope_deadline */
    bool used;               /* a child was ever spawned in it: owner only */
    uint32_t spawns;         /* owner only, under lock */
};

void weft__scope_init(weft_scope *s, weft_thread *owner, weft_scope *outer);
void weft__scope_cancel_locked(weft_scope *s, int reason);
void weft__scope_wait_children(weft_scope *s, weft__wait_kind kind);
void weft__scope_reap(weft_scope *s);
void weft__scope_leave(weft_scope *s, uint32_t n);
void weft__finish_flush(weft__carrier *m);
void weft__scope_collect_done_locked(weft_scope *s, weft_thread **freed);
void weft__free_chain(weft_thread *chain);

/* --------------------------------------------------------------- threads */

/* Park states (weft_thread.park): who may touch the thread's stack.
 *   RUNNING   the thread runs, or is on a run queue (its stack belongs to
 *             the carrier that dequeues it)
 *   PARKING   it began a wait and is still on its stack
 *   PARKED    it is off its stack, in no run queue: the waker owns it
 *   NOTIFIED  a waker claimed the wait while it was PARKING; it requeues
 *             itself once off its stack (park.c) */
enum { WEFT__RUNNING, WEFT__PARKING, WEFT__PARKED, WEFT__NOTIFIED };

/* Life states, for the dump and for join. */
typedef enum {
    WEFT__G_NEW,        /* spawned, never ran: no stack yet */
    WEFT__G_RUNNABLE,   /* on a run queue */
    WEFT__G_RUNNING,    /* on a carrier */
    WEFT__G_WAITING,    /* parked */
    WEFT__G_DONE,       /* finished: stack released, result set */
} weft__gstate;

#define WEFT__G_MAGIC 0x77656674u  /* "weft" */
#define WEFT__G_DEAD  0xdeadbeefu

struct weft_thread {
    weft__ctx ctx;               /* valid while not running */
    weft__stack *stack;          /* from its spawn on; NULL when done */
    _Atomic uint32_t park;       /* WEFT__RUNNING ... WEFT__NOTIFIED */
    int wake_result;             /* written by the claimer, read by g */
    /* Claim word of the current wait: gen << 2 | interruptible << 1 |
     * claimed. Exactly one party claims each wait (park.c). */
    _Atomic uint64_t claim;
    /* Handle state (handle.c), kept like claim when the record is reused:
     * the generation (even while its handles are current; made odd under
     * lock). Here, and slot and saved_errno in what was padding: a
     * record's size and the place of its hot fields are tuned for
     * spawning (thread.c). */
    struct {
        weft__spinlock lock;
        _Atomic uint32_t gen;
    } handle;
    void *asan_fake;             /* ASan fake-stack slot while switched out */
    weft_thread *next;           /* run queue / free list link */
    weft_thread *all_next;       /* every record ever allocated; g_lock */
    _Atomic int state;           /* weft__gstate */
    uint32_t magic;
    _Atomic bool detached;       /* set under home->lock; never cleared */
    bool joining;                /* under home->lock */
    int saved_errno;
    weft_fn fn;
    void *arg;
    int result;                  /* valid once DONE */
    size_t stack_size;
    uint64_t id;
    weft_scope root;             /* its nursery */
    weft_scope *cur;             /* innermost open scope: owner only */
    weft_scope *home;            /* the parent's scope it belongs to */
    weft__list home_link;        /* in home->children; under home->lock */
    weft__waiter *joiner;        /* under home->lock */
    weft__locals *locals;        /* owner only */
    struct weft__local_log *local_log; /* values it set, for dtors */
    weft__keys *keys;            /* its pthread key values (keys.c): owner
                                    only; NULL until its first set */
    /* Wait record, for the dump: written by the thread before it parks. */
    _Atomic int wait_kind;
    const void *_Atomic wait_obj;
    _Atomic int64_t wait_since;
    _Atomic int64_t wait_until;  /* its deadline (weft_now clock), or 0 */
    /* Binding (bind.c): the carrier it resumes on, or NULL: free to move.
     * Written by the thread itself only. Bound while pins or binds > 0. */
    weft__carrier *bound;
    uint32_t pins;               /* weft_pin nesting (and attr.pinned) */
    uint32_t binds;              /* hooked calls from foreign code under way */
    uint32_t unbatched;          /* hooked writes under way: never batched
                                    (foreign/io.c, io/poller.c) */
    /* pthread locks it holds (foreign/locks.c): while > 0 it never
     * switches away: its waits block the carrier (park.c). Written by
     * the thread itself only. */
    uint32_t plocks;
    _Atomic bool carrier_waits;  /* its current wait blocks the carrier
                                    (park.c: block_carrier); set at
                                    wait_begin, read by notify() */
    char name[32];
    uint32_t slot;               /* in the handle table, for life */
};

weft_thread *weft__g(void);           /* current thread, or NULL */
const char *weft__thread_name(const weft_thread *g, char *buf, size_t size);
void weft__thread_finish(weft__carrier *m, weft_thread *g);
void weft__thread_free(weft_thread *g);
bool weft__thread_gone_locked(const weft_thread *t);
void weft__thread_leave_home_locked(weft_thread *g);
void weft__join_forget(weft_thread *t, const weft_thread *h,
                       const weft__waiter *w);

/* handle.c: what the public API calls a weft_thread * is a handle, a
 * number that names a record and its incarnation, never a record. */
int  weft__handle_register(weft_thread *g);          /* 0 / ENOMEM */
weft_thread *weft__handle_of(const weft_thread *g);
weft_thread *weft__handle_record(const weft_thread *h); /* unchecked */
bool weft__handle_current(const weft_thread *g, const weft_thread *h);
weft_thread *weft__handle_lock(const weft_thread *h); /* NULL: stale */
void weft__handle_unlock(weft_thread *g);
void weft__handle_end_locked(weft_thread *g);
void weft__handle_end(weft_thread *g);
void weft__handle_reborn(weft_thread *g);
void weft__handles_reset(void);
void weft__thread_entry(void *unused);
void weft__locals_release(weft_thread *g);
void weft__locals_release_nodtor(weft_thread *g);
void weft__locals_inherit(weft_thread *child, weft_thread *parent);
/* A thread's pthread key values (keys) belong to foreign/keys.c, which
 * sets these at load: exit runs their destructors and frees them, drop
 * frees them without destructors (a thread that never finished). Called
 * only for a thread whose keys is set, which only keys.c does. */
extern struct weft__keys_hooks {
    void (*exit)(weft_thread *g);
    void (*drop)(weft_thread *g);
} weft__keys_hooks;

/* ---------------------------------------------------------- park / wake */

int  weft__wait_begin(weft__waiter *w, int flags, weft__wait_kind kind,
                      const void *obj);
int  weft__wait_block(weft__waiter *w, weft__spinlock *lk, int64_t deadline);
int  weft__wait_abort(weft__waiter *w);
int  weft__wait_begin_g(weft_thread *g, weft__waiter *w, int flags,
                        weft__wait_kind kind, const void *obj);
/* weft__wait_block's result when its own deadline passed: callers turn it
 * into ETIMEDOUT (or success, for a sleep). Distinct from the ETIMEDOUT of a
 * scope deadline. */
#define WEFT__EXPIRED 0x10000
/* A waker that completes a case of a select (or a channel operation or a
 * join, which are one-case selects) wakes the thread with CASE + index. */
#define WEFT__CASE 0x20000
/* Claiming and completing a wait in two steps, for wakers that must move
 * data into the waiter between the two (under the object's lock). */
bool weft__claim(weft__waiter *w);
void weft__complete(weft__waiter *w, int result);
bool weft__wake(weft__waiter *w, int result);
bool weft__interrupt(weft_thread *g, int reason);
void weft__ready(weft_thread *g);   /* make a PARKED-and-claimed g run */
void weft__park_commit(weft_thread *g);
void weft__wait_may_switch(weft_thread *g);

/* -------------------------------------------------------------- P and M */

/* A P's ring: room for a server's burst of wake-ups (1,000 connections on
 * 2 P's overflowed 256 slots into the global queue at every batch). */
#define WEFT__RUNQ_SIZE 1024u
/* The most threads moved between queues at once, through an array on the
 * stack of the caller, which may be a virtual thread's small one. */
#define WEFT__RUNQ_BATCH 128u
/* Queued threads at which a spawner yields to them (carrier.c): fewer
 * records and stacks in flight, hotter in the caches, than a full ring
 * (spawn_join: ~15% faster than at 1,023). */
#define WEFT__SPAWN_BACKLOG 255u
#define WEFT__STACK_CACHE 32u
#define WEFT__G_CACHE 64u

/* Cache-line aligned (the array of P's too), so that one P's owner-only
 * fields never share a line with the next P's queue. */
struct __attribute__((aligned(WEFT_CACHELINE))) weft__proc {
    /* Local run queue: the owner pushes at tail; the owner and thieves take
     * from head with a CAS. */
    _Atomic uint32_t head;
    _Atomic uint32_t tail;
    /* runnext on a line of its own: a hand-off writes it at every message,
     * and a spinning thief's look at head and tail must not take that
     * line from the owner each time (see carrier.c, steal_runnext). */
    _Atomic(weft_thread *) runnext __attribute__((aligned(WEFT_CACHELINE)));
    _Atomic uint32_t runnext_puts;  /* owner only writes: tells thieves a
                                       runnext apart from a later one */
    _Atomic(weft_thread *) ring[WEFT__RUNQ_SIZE]
        __attribute__((aligned(WEFT_CACHELINE)));
    uint32_t id;
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
    weft__spinlock timer_lock;
    weft__timer **timers;
    uint32_t ntimers, timer_cap;
    _Atomic int64_t timer_next;  /* earliest when, INT64_MAX if none */
    /* Counters kept per P so that spawning and finishing threads on
     * different carriers write no shared line: owner only writes. */
    _Atomic int64_t live;        /* spawns minus finishes counted here */
    uint64_t id_next, id_end;    /* block of thread ids */
    /* Caches: owner only. */
    weft__stack *stacks;
    uint32_t nstacks;
    weft_thread *free_g;
    uint32_t nfree_g;
};

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
    bool firing_timers;          /* readied threads go to the back */
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
    weft__spinlock bound_lock;
    weft_thread *bound_head, *bound_tail; /* under bound_lock */
};

#define WEFT__STAMP_IN_G 1u      /* a thread runs on the P */
#define WEFT__STAMP_BLOCKING 2u  /* ... inside a marked blocking call */

struct weft__sched {
    weft__spinlock lock;
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
    weft__spinlock g_lock;
    weft_thread *free_g;
    weft_thread *all_g;               /* every record; g_lock */
};

extern struct weft__sched weft__S;

weft__carrier *weft__m(void);
void weft__set_m(weft__carrier *m);
/* The current carrier read inline, for the hottest paths: only in a
 * function that cannot park between this read and its last use of the
 * result, and that reads it no second time after a park (the compiler
 * may keep the thread pointer in a register across the switch, and the
 * thread may resume on another carrier). Everywhere else: weft__m(). */
extern __thread weft__carrier *weft__tls_m
    __attribute__((tls_model("initial-exec")));
static inline weft__carrier *weft__m_here(void)
{
    return weft__tls_m;
}
/* errno's address on the calling carrier, never cached by the compiler:
 * code that may park reads and writes errno through it (WEFT_ERRNO), since
 * the thread may resume on another carrier, with another errno. */
int *weft__errno_ptr(void);
#define WEFT_ERRNO (*weft__errno_ptr())

/* proc.c: run queues. "owner" = the carrier holding p. */
bool weft__runq_empty(weft__proc *p);
weft_thread *weft__runq_steal(weft__proc *p, weft__proc *victim);
void weft__globq_put(weft_thread *g);
void weft__globq_put_chain(weft_thread *first, weft_thread *last, uint32_t n);
weft_thread *weft__globq_get(weft__proc *p);
void weft__proc_init(weft__proc *p, uint32_t id);

/* carrier.c */
void weft__enqueue(weft_thread *g);   /* runnable: current P or global */
void weft__enqueue_spawned(weft_thread *g);
bool weft__wakep(void);  /* false: an idle P has no carrier */
bool weft__work_anywhere(void);
void weft__switch_out(weft_thread *g, weft__after_kind after,
                      weft__spinlock *lk);
void weft__after_switch(void);
void weft__switch_out_on(weft__carrier *m, weft_thread *g,
                         weft__after_kind after, weft__spinlock *lk);
void weft__after_switch_on(weft__carrier *m);
int  weft__carriers_start(void);
void weft__carrier_loop(weft__carrier *m);
void weft__carriers_stop(void);
void weft__timer_waiter_kick(int64_t when);
void weft__carrier_wake(weft__carrier *m);
void weft__wake_all(void);
void weft__free_g(weft_thread *g);

/* Runs on: any thread. P's initialised so far: every loop over all P's
 * (stealing, timers, counters) runs to this bound. */
static inline uint32_t weft__nallp(void)
{
    return atomic_load_explicit(&weft__S.nallp, memory_order_acquire);
}

/* monitor.c */
static inline int64_t weft__tick_now(void)
{
    return atomic_load_explicit(&weft__S.tick_ns, memory_order_relaxed);
}
int  weft__monitor_init(void);
void weft__monitor_run(void);
void weft__monitor_fini(void);
void weft__monitor_kick(void);
bool weft__proc_retire(weft__carrier *m);
void weft__monitor_poke(void);
void weft__hog_seen(weft__carrier *m, weft_thread *g);
void weft__hog_returned(weft__carrier *m);

/* cpuwatch.c: the monitor's look at a carrier's OS thread. */
int64_t weft__carrier_cpu_ns(weft__carrier *m);  /* -1: unknown */
char weft__carrier_run_state(weft__carrier *m);  /* 'R', 'S'...; 0 */
void weft__carrier_stat_close(weft__carrier *m);
void weft__blocking_enter(void);
void weft__blocking_leave(void);
void weft__dump_monitor(int fd);

/* bind.c */
void weft__bind(weft_thread *g, weft__carrier *m);
void weft__unbind(weft_thread *g);
void weft__unbind_if_free(weft_thread *g);
void weft__bound_resumed(weft_thread *g, weft__carrier *now_on);
void weft__bound_ready(weft_thread *g);
weft_thread *weft__bound_take_slow(weft__carrier *m);
bool weft__bound_pending(const weft__carrier *m);
void weft__bound_sweep(int64_t now);
unsigned weft__bound_count(void);
unsigned weft__lock_pinned_count(void);
weft_thread *weft__foreign_enter(void);
void weft__foreign_leave(weft_thread *g);

/* Runs on: carrier m only. The oldest runnable thread bound to m, or
 * NULL: an unlocked look on the path of every switch, inline. */
static inline weft_thread *weft__bound_take(weft__carrier *m)
{
    if (likely(!atomic_load_explicit(&m->nready_bound, memory_order_relaxed)))
        return NULL;
    return weft__bound_take_slow(m);
}

/* carriers.c: starts a spare carrier holding p (idle when p is NULL);
 * starts m's OS thread. */
int  weft__carrier_spawn(weft__proc *p);
int  weft__carrier_start(weft__carrier *m);

/* offload.c */
/* weft_offload for callers whose arg must outlive an abandoned call: *done
 * tells whether fn ran to its end for the caller (arg is the caller's
 * again); otherwise drop(arg) runs (now, or once the pool is through with
 * it) and the caller must not touch arg. */
int  weft__offload_owned(weft_fn fn, void *arg, void (*drop)(void *arg),
                         bool *done);
void weft__offload_shutdown(void);
void weft__offload_counts(unsigned *threads, unsigned *busy);
bool weft__offload_in_flight(void);

/* thread.c */
int64_t weft__live_threads(void);

/* deadlock.c */
void weft__os_thread_register(void);
bool weft__os_threads_alive(void);
bool weft__deadlock_suspected(void);
void weft__deadlock_declare(void);
void weft__abandon_blocked_threads(void);

/* Runs on: any thread. An OS thread that touches a weft object may wake a
 * virtual thread later: it counts against deadlock reports while alive. */
static inline void weft__os_use(void)
{
    if (unlikely(!weft__m()))
        weft__os_thread_register();
}

/* dumpsig.c */
void weft__dump_signal_start(void);
void weft__dump_signal_stop(void);
void weft__dump_signal_forked(void);

/* carriers.c: true in the child of a fork made while a runtime ran, where
 * the runtime is shut off. Written once, by that child's only thread
 * (foreign/fork.c). */
extern bool weft__forked_child;
/* carriers.c: weft_run is under way in this process (set up, running or
 * torn down). */
extern _Atomic bool weft__in_run;

/* The error of a call that needs a virtual thread, made on any other
 * thread: EPERM, or ECHILD in a forked child, where none can run. */
static inline int weft__no_vthread(void)
{
    return unlikely(weft__forked_child) ? ECHILD : EPERM;
}

/* dump.c */
void weft__dump_locked_free(int fd);
const char *weft__wait_kind_name(int kind); /* NULL: not waiting */

#endif
