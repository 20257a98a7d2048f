/* SPDX-License-Identifier: MIT */
/*
 * thread.h — the virtual thread record (thread.c), its handles
 * (handle.c), its locals (local.c) and the hooks through which foreign/
 * frees its pthread key values.
 *
 * Invariants. A record is reused after its thread is done (free lists of
 * the P's and of weft__S), so what survives a reuse is said per field:
 * claim and handle.gen keep counting. Fields set at spawn (fn, arg, id,
 * stack_size, name, home) are written by the spawner (thread.c) before the
 * thread is queued and only read after. The run-queue fields (next, state)
 * belong to whoever holds the thread off-CPU (a run queue, a waker, the
 * switch); the park fields (park, claim, wake_result) follow park.c's
 * protocol; the rest are marked with their owner or lock. The life
 * states say which queue the thread is on; the park states (park.h) who
 * owns its stack.
 */
#ifndef WEFT_SCHED_THREAD_H
#define WEFT_SCHED_THREAD_H

#include "arch/context.h"
#include "base/compiler.h"
#include "base/list.h"
#include "base/spinlock.h"
#include "sched/park.h"
#include "sched/scope.h"

typedef struct weft__carrier weft__carrier;
typedef struct weft__stack weft__stack;
typedef struct weft__locals weft__locals;
typedef struct weft__keys weft__keys;

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
    weft__ctx ctx;               /* valid while not running; the switch's */
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
        weft__spinlock lock;     /* lock order 1: HANDLE (sched.h) */
        _Atomic uint32_t gen;
    } handle;
    void *asan_fake;             /* ASan fake-stack slot while switched out
                                    (the switch's) */
    weft_thread *next;           /* run queue / free list link: whoever
                                    holds the thread off-CPU */
    weft_thread *all_next;       /* every record ever allocated; g_lock */
    _Atomic int state;           /* weft__gstate: written by whoever moves
                                    it between queues (relaxed) */
    uint32_t magic;              /* thread.c: G_MAGIC while a record */
    _Atomic bool detached;       /* set under home->lock; never cleared */
    bool joining;                /* under home->lock */
    int saved_errno;             /* its errno while switched out */
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
                                    (foreign/libc.c, io/poller.c) */
    /* pthread locks it holds (foreign/locks.c): while > 0 it never
     * switches away: its waits block the carrier (park.c). Written by
     * the thread itself only. */
    uint32_t plocks;
    _Atomic bool carrier_waits;  /* its current wait blocks the carrier
                                    (park.c: block_carrier); set at
                                    wait_begin, read by notify() */
    char name[32];               /* set at spawn (thread.c) */
    uint32_t slot;               /* in the handle table, for life */
};

/* thread.c */
const char *weft__thread_name(const weft_thread *g, char *buf, size_t size);
void weft__thread_entry(void *unused);
void weft__thread_finish(weft__carrier *m, weft_thread *g);
void weft__finish_flush(weft__carrier *m);
void weft__free_g(weft_thread *g);
void weft__free_chain(weft_thread *chain);
bool weft__thread_gone_locked(const weft_thread *t);
void weft__thread_leave_home_locked(weft_thread *g);
void weft__join_forget(weft_thread *t, const weft_thread *h,
                       const weft__waiter *w);
int64_t weft__live_threads(void);

/* handle.c: what the public API calls a weft_thread * is a handle, a
 * number that names a record and its incarnation, never a record. */
int  weft__handle_register(weft_thread *g);          /* 0 / ENOMEM */
weft_thread *weft__handle_of(const weft_thread *g);
weft_thread *weft__handle_record(const weft_thread *h); /* unchecked */
bool weft__handle_current(const weft_thread *g, const weft_thread *h);
weft_thread *weft__handle_lock(const weft_thread *h); /* NULL: stale */
void weft__handle_unlock(weft_thread *g);
void weft__handle_end_slow(weft_thread *g);
void weft__handle_settle_slow(weft_thread *g);
void weft__handle_reborn(weft_thread *g);
void weft__handles_reset(void);

/* Holds: g's handle lock; g's thread is DONE. Makes every handle of g
 * stale (idempotent; handle.c). */
static inline void weft__handle_end_locked(weft_thread *g)
{
    uint32_t gen = atomic_load_explicit(&g->handle.gen, memory_order_relaxed);
    atomic_store_explicit(&g->handle.gen, gen | 1u, memory_order_relaxed);
}

/* Runs on: any thread, holding no runtime lock; g's thread is DONE. Ends
 * g's handles under its handle lock (handle.c). */
static inline void weft__handle_end(weft_thread *g)
{
    if (unlikely(!weft__spin_trylock(&g->handle.lock, WEFT__LOCK_HANDLE))) {
        weft__handle_end_slow(g);
        return;
    }
    weft__handle_end_locked(g);
    weft__spin_unlock(&g->handle.lock);
}

/* Runs on: whoever frees g, holding no runtime lock, after a seq_cst
 * fence that follows g's end (weft__free_chain). A detached thread ends
 * its handles without the lock (weft__handle_end_unlocked), then fences
 * (thread.c: weft__finish_flush) before its record can reach a freer.
 * A caller of weft__handle_lock whose lock came first in the fences'
 * order may still hold it, having seen the old generation: we wait for
 * it. One whose lock comes after sees the odd generation and lets go.
 * Inline: a spawner frees its detached children by the dozen. */
static inline void weft__handle_settle(weft_thread *g)
{
    /* acquire: the holder's writes to g come before g's reuse. */
    if (unlikely(atomic_load_explicit(&g->handle.lock.held,
                                      memory_order_acquire)))
        weft__handle_settle_slow(g);
}

/* Runs on: the carrier a detached thread g ended on; g is DONE. Ends g's
 * handles without the lock, for the exit of every detached thread: a
 * caller that locked g before may still hold the lock, trusting the
 * generation it saw, so g is freed only by weft__free_chain, which
 * waits for it, and only after a fence of the ender (handle.c). */
static inline void weft__handle_end_unlocked(weft_thread *g)
{
    weft__handle_end_locked(g);
}

/* local.c */
void weft__locals_release(weft_thread *g);
void weft__locals_release_nodtor(weft_thread *g);
void weft__locals_inherit(weft_thread *child, weft_thread *parent);

/* thread.c holds these. A thread's pthread key values (keys) belong to foreign/keys.c, which
 * sets these at load: exit runs their destructors and frees them, drop
 * frees them without destructors (a thread that never finished). Called
 * only for a thread whose keys is set, which only keys.c does. */
extern struct weft__keys_hooks {
    void (*exit)(weft_thread *g);
    void (*drop)(weft_thread *g);
} weft__keys_hooks;

#endif
