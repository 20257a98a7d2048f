/* SPDX-License-Identifier: MIT */
/*
 * thread.c — virtual threads: spawn, run, finish, join, cancel.
 *
 * Longer than our ~500-line aim: spawn, finish and join share the record
 * free lists and the home-scope accounting (the static helpers of the
 * records section), which would otherwise have to be exported from a
 * header on the spawn path. Join is the seam to cut along next.
 *
 * Life of a thread (weft_thread.state):
 *   NEW       spawned into its parent's innermost scope (its home): linked
 *             in home->children, counted in home->live, queued to run.
 *             It has its stack from the spawn on (untouched but for the
 *             top page): a spawn that cannot have one fails with ENOMEM,
 *             as pthread_create fails with EAGAIN, and nothing else
 *             happens; a thread never starts only to fail for want of a
 *             stack, which would cancel its siblings.
 *   RUNNING / RUNNABLE / WAITING
 *             while its function runs.
 *   (its function returned) it still owns its stack while it waits for
 *             its own children: every thread is a nursery.
 *   DONE      off its stack for good: the stack is back in a pool, result
 *             is set, home->live is decremented and a joiner is woken. A
 *             detached thread that succeeded pushes itself on home's done
 *             stack without taking home's lock; the owner frees it at its
 *             next spawn into home or when home closes. A joinable one
 *             stays in home->children until weft_join or until home
 *             closes.
 *
 * Failure. A thread fails when its result is non-zero, unless it is the
 * reason its own cancellation gave it (a thread cancelled with ECANCELED
 * that returns ECANCELED did what was asked), even if a shield lifted
 * that cancellation since. The first failure in a scope
 * is recorded there and cancels the scope (scope.c); if the scope was
 * already cancelled, what is recorded is the cancellation's reason
 * (ECANCELED or ETIMEDOUT), not the child's result, which is most likely
 * that cancellation translated by a library (record_failure_locked).
 *
 * Records are pooled for the life of the runtime (per P, then globally):
 * never returned to malloc while it runs. What callers hold is a handle
 * (handle.c), which names a record and its incarnation: a handle whose
 * thread was joined, ended detached or was reaped by its scope's close is
 * refused with ESRCH, never taken for the thread that reuses the record.
 * A thread is gone for its handle once it leaves its scope's children
 * (joined, reaped) or, detached, once it is DONE; its record is freed
 * after that, and its handles die before (handle.c): where a joiner,
 * detacher or the thread itself takes it out of its scope, holding its
 * handle lock (weft__thread_leave_home_locked), where a detached thread
 * ends (finish_detached), or where its scope's close reaps it.
 */
#include <errno.h>
#include <stddef.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fault.h"
#include "base/page.h"
#include "base/futex.h"
#include "sched/fiber.h"
#include "sched/bind.h"
#include "sched/carrier.h"
#include "sched/deadlock.h"
#include "sched/park.h"
#include "sched/proc.h"
#include "sched/scope.h"
#include "sched/stack.h"
#include "base/fence.h"
#include "sched/thread.h"
#include "sched/trace.h"

#define MIN_STACK (16u * 1024)
#define MAX_STACK (1024u * 1024 * 1024)

/* ------------------------------------------------------------- records */

#define G_BATCH (WEFT__G_CACHE / 2)

/* Moves up to G_BATCH records from the global pool to p's cache, or, when
 * spill, from p's cache to the global pool: one lock per batch, not one per
 * record, since a spawner and the carriers its threads finish on sit on
 * different P's. */
static WEFT_NOIPA void move_batch(weft__proc *p, bool spill)
{
    weft__spin_lock(&weft__S.g_lock, WEFT__LOCK_RECORDS);
    for (uint32_t i = 0; i < G_BATCH; i++) {
        weft_thread **from = spill ? &p->free_g : &weft__S.free_g;
        weft_thread **to = spill ? &weft__S.free_g : &p->free_g;
        weft_thread *g = *from;
        if (!g)
            break;
        *from = g->next;
        g->next = *to;
        *to = g;
        if (spill)
            p->nfree_g--;
        else
            p->nfree_g++;
    }
    weft__spin_unlock(&weft__S.g_lock);
}

static weft_thread *pop_free(weft__proc *p)
{
    if (p) {
        if (!p->free_g)
            move_batch(p, false);
        weft_thread *g = p->free_g;
        if (g) {
            p->free_g = g->next;
            p->nfree_g--;
        }
        return g;
    }
    weft__spin_lock(&weft__S.g_lock, WEFT__LOCK_RECORDS);
    weft_thread *g = weft__S.free_g;
    if (g)
        weft__S.free_g = g->next;
    weft__spin_unlock(&weft__S.g_lock);
    return g;
}

/* Clears n bytes at p, n a constant, with 16-byte stores written out:
 * GCC turns a constant-size memset (or a loop it recognises as one) into
 * `rep stos`, whose start-up cost was the largest single cost of a spawn,
 * and a call to libc's memset cost some 45 instructions more per record
 * than these stores. */
typedef char weft__zero16 __attribute__((vector_size(16), aligned(8),
                                         may_alias));
static inline __attribute__((always_inline)) void zero_bytes(char *p,
                                                             size_t n)
{
    const weft__zero16 zero = {0};
    size_t i = 0;
#pragma GCC unroll 32
    for (; i + 16 <= n; i += 16) {
        *(weft__zero16 *)(p + i) = zero;
        __asm__("" : : "r"(p) : "memory"); /* no memset pattern to find */
    }
    for (; i < n; i++)
        p[i] = 0;
}

/* The handle state is kept too (handle.c), and sits right after claim. */
_Static_assert(offsetof(weft_thread, handle) ==
                   offsetof(weft_thread, claim) + sizeof(uint64_t),
               "the words kept across reuse are contiguous");
#ifdef __x86_64__
/* 376 bytes, 384 with malloc's header: six cache lines, at the same phase
 * for every record, which the spawner and the carriers that run its
 * children pass between them. The handle state went into padding. */
_Static_assert(sizeof(weft_thread) <= 376, "a record fits six lines");
#endif

static void zero_record(weft_thread *g)
{
    /* All but the claim word, which goes on counting generations across
     * incarnations: a wait timer of an earlier one may still be running
     * its callback (wait timers are not sync, timer.c), reading the claim
     * word with an old generation that must not match a wait of this one.
     * It starts claimed (park.c's CLAIMED bit), so nothing claims until
     * the first wait_begin. */
    size_t at = offsetof(weft_thread, claim);
    size_t end = offsetof(weft_thread, handle) + sizeof g->handle;
    zero_bytes((char *)g, at);
    zero_bytes((char *)g + end, sizeof *g - end);
    uint64_t c = atomic_load_explicit(&g->claim, memory_order_relaxed);
    atomic_store_explicit(&g->claim, (((c >> 2) + 1) << 2) | 1u,
                          memory_order_relaxed);
}

/* Runs on: any thread; p is its carrier's P, or NULL. */
static inline __attribute__((always_inline)) weft_thread *alloc_g(
    weft__proc *p)
{
    weft_thread *g = pop_free(p);
    if (g) {
        weft_thread *all_next = g->all_next;
        uint32_t slot = g->slot;
        zero_record(g);
        g->all_next = all_next;
        g->slot = slot;
        weft__handle_reborn(g);
        return g;
    }
    g = weft__calloc(1, sizeof *g);
    if (!g)
        return NULL;
    atomic_init(&g->claim, 1); /* generation 0, claimed: no wait yet */
    if (weft__handle_register(g)) {
        free(g);
        return NULL;
    }
    weft__spin_lock(&weft__S.g_lock, WEFT__LOCK_RECORDS);
    g->all_next = weft__S.all_g;
    weft__S.all_g = g;
    weft__spin_unlock(&weft__S.g_lock);
    return g;
}

/* Runs on: any thread with no P. Frees g to the global pool. */
static void free_g_global(weft_thread *g)
{
    weft__spin_lock(&weft__S.g_lock, WEFT__LOCK_RECORDS);
    g->next = weft__S.free_g;
    weft__S.free_g = g;
    weft__spin_unlock(&weft__S.g_lock);
}

/* Runs on: any thread; p is its carrier's P, or NULL. g is DONE,
 * unreachable from any scope, and its handles are dead. Inline: the
 * owner of a scope frees its detached children by the dozen. */
static inline void free_g_on(weft__proc *p, weft_thread *g)
{
    g->magic = WEFT__G_DEAD; /* its handles are dead already (handle.c) */
    if (unlikely(!p)) {
        free_g_global(g);
        return;
    }
    g->next = p->free_g;
    p->free_g = g;
    if (unlikely(++p->nfree_g > WEFT__G_CACHE))
        move_batch(p, true);
}

static weft__proc *my_p(void)
{
    weft__carrier *m = weft__m();
    return m ? m->p : NULL;
}

/* Runs on: any thread. Frees g (free_g_on's conditions). */
void weft__free_g(weft_thread *g)
{
    free_g_on(my_p(), g);
}

/* Runs on: any thread, holding no runtime lock; p is its carrier's P, or
 * NULL. Frees a chain of records linked through next, each as
 * weft__free_g would. A detached child that ended is freed here only (its
 * handles ended without their lock): the fence and the wait are the
 * freer's half (handle.c). Inline: a spawn frees its finished siblings. */
static inline void free_chain_on(weft__proc *p, weft_thread *chain)
{
    if (!chain)
        return;
    weft__fence_full();
    while (chain) {
        weft_thread *next = chain->next;
        weft__handle_settle(chain);
        free_g_on(p, chain);
        chain = next;
    }
}

void weft__free_chain(weft_thread *chain)
{
    free_chain_on(my_p(), chain);
}

/* Runs on: weft_run's thread at teardown. */
void weft__free_all_g(void)
{
    weft__handles_reset();
    weft_thread *g = weft__S.all_g;
    while (g) {
        weft_thread *next = g->all_next;
        free(g);
        g = next;
    }
    weft__S.all_g = NULL;
    weft__S.free_g = NULL;
    for (uint32_t i = 0, n = weft__nallp(); i < n; i++) {
        weft__S.procs[i].free_g = NULL;
        weft__S.procs[i].nfree_g = 0;
    }
}

/* -------------------------------------------------------------- spawn */

#define ID_BLOCK 256

static uint64_t next_id(weft__proc *p)
{
    if (!p)
        return atomic_fetch_add_explicit(&weft__S.next_id, 1,
                                         memory_order_relaxed);
    if (p->id_next == p->id_end) {
        p->id_next = atomic_fetch_add_explicit(&weft__S.next_id, ID_BLOCK,
                                               memory_order_relaxed);
        p->id_end = p->id_next + ID_BLOCK;
    }
    return p->id_next++;
}

static void count_live(weft__proc *p, int64_t delta)
{
    if (!p) {
        atomic_fetch_add_explicit(&weft__S.live_off_p, delta,
                                  memory_order_release);
        return;
    }
    /* Owner only: a plain read-modify-write, published for readers. */
    int64_t v = atomic_load_explicit(&p->live, memory_order_relaxed);
    atomic_store_explicit(&p->live, v + delta, memory_order_release);
}

/* Runs on: any thread. Threads spawned and not yet finished (a snapshot). */
int64_t weft__live_threads(void)
{
    int64_t n = atomic_load_explicit(&weft__S.live_off_p, memory_order_acquire);
    for (uint32_t i = 0, np = weft__nallp(); i < np; i++)
        n += atomic_load_explicit(&weft__S.procs[i].live, memory_order_acquire);
    return n;
}

/* "fn@0x<address>" for threads spawned without a name: written by hand,
 * since snprintf would cost more than the rest of a spawn. */
static void default_name(char *out, size_t size, uintptr_t fn)
{
    static const char hex[] = "0123456789abcdef";
    char digits[2 * sizeof fn];
    int n = 0;
    do {
        digits[n++] = hex[fn & 15];
        fn >>= 4;
    } while (fn);
    size_t i = 0;
    for (const char *p = "fn@0x"; *p && i + 1 < size; p++)
        out[i++] = *p;
    while (n > 0 && i + 1 < size)
        out[i++] = digits[--n];
    out[i] = 0;
}

/* Runs on: any thread. g's name, or its default "fn@0x..." (formatted into
 * buf: unnamed threads keep no name, to keep a spawn cheap). */
const char *weft__thread_name(const weft_thread *g, char *buf, size_t size)
{
    if (g->name[0])
        return g->name;
    default_name(buf, size, (uintptr_t)g->fn);
    return buf;
}

static void set_name(weft_thread *g, const char *name)
{
    if (!name)
        return; /* the record is zeroed: name "" means the default */
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof g->name; i++)
        g->name[i] = name[i];
    g->name[i] = 0;
}

/* Runs on: the spawner; p is its carrier's P, or NULL. Gives g a stack
 * and the context that starts it there (a new stack's TSan fiber is made
 * at its first run: loop.c). False: no stack could be had. The stack
 * is published last (a dump walks a queued thread's stack from its
 * context: backtrace.c). */
static bool give_stack(weft__proc *p, weft_thread *g)
{
    weft__stack *st = weft__stack_get(p, g->stack_size);
    if (!st)
        return false;
    weft__fiber_stack_fresh(st->lo, st->size);
    weft__ctx_make(&g->ctx, st->lo, st->size, weft__thread_entry, NULL);
    __atomic_store_n(&g->stack, st, __ATOMIC_RELEASE);
    return true;
}

/* Runs on: home's owner, spawning g into it. Pushes g on home's spawn
 * batch without the lock, if home has one, active and not full (scope.c:
 * "Spawn batches"). */
static inline bool push_spawned(weft_scope *home, weft_thread *g)
{
    weft__spawn_batch *b = weft__scope_batch(home);
    if (!b || !b->active)
        return false;
    uint32_t n = atomic_load_explicit(&b->n, memory_order_relaxed);
    if (n == WEFT__SPAWN_BATCH)
        return false;
    b->g[n] = g;
    /* release: g and its slot are written before a linker reads them. */
    atomic_store_explicit(&b->n, n + 1, memory_order_release);
    /* The frequent half of the pair with a cancel of home (scope.c):
     * the push stored, then the reason read. */
    weft__fence_light();
    int reason = atomic_load_explicit(&home->reason, memory_order_relaxed);
    if (unlikely(reason))
        atomic_store_explicit(&g->root.reason, reason, memory_order_relaxed);
    return true;
}

/* Runs on: home's owner, spawning g into it. Links g in home's children
 * under the lock, after what home's batch holds, which it empties and
 * marks active; frees the finished detached children, now and then in a
 * scope without a batch (every 32 spawns: each collection pulls the done
 * stack's line from the carriers that push to it), at each full batch in
 * one with. */
static void link_spawned(weft__proc *p, weft_scope *home, weft_thread *g)
{
    weft__spawn_batch *b = weft__scope_batch(home);
    weft_thread *freed = NULL;
    weft__scope_lock(home);
    if (b || (++home->spawns & 31) == 0)
        weft__scope_collect_done_locked(home, &freed); /* links the batch */
    if (b) {
        atomic_store_explicit(&b->n, 0, memory_order_relaxed);
        b->linked = 0;
        b->active = true;
    }
    weft__list_push_back(&home->children, &g->home_link);
    int reason = atomic_load_explicit(&home->reason, memory_order_relaxed);
    if (reason)
        atomic_store_explicit(&g->root.reason, reason, memory_order_relaxed);
    weft__scope_unlock(home);
    free_chain_on(p, freed);
}

/* Runs on: a virtual thread (the parent) or weft_run (the root: parent
 * NULL, home NULL). NULL when there is no memory for the record or the
 * stack: then nothing of the spawn is left. Inline in weft_go_with, on
 * the path of every spawn: its own call, prologue and epilogue were a
 * twentieth of a spawn's instructions. */
static inline __attribute__((always_inline)) weft_thread *spawn(
    weft_thread *parent, const weft_attr *a, weft_fn fn, void *arg)
{
    weft__carrier *m = weft__m();
    weft__proc *p = m ? m->p : NULL;
    weft_thread *g = alloc_g(p);
    if (!g)
        return NULL;
    g->fn = fn;
    g->stack_size = a && a->stack_size ? a->stack_size : weft__S.stack_size;
    if (!give_stack(p, g)) {
        weft__handle_end(g); /* never handed out; the pool wants it dead */
        weft__free_g(g);
        return NULL;
    }
    g->magic = WEFT__G_MAGIC;
    g->arg = arg;
    atomic_init(&g->detached, a && a->detached);
    g->id = next_id(p);
    set_name(g, a ? a->name : NULL);
    /* g->claim is left as alloc_g made it: claimed, and in a reused
     * record at a generation past every wait of its earlier lives. */
    atomic_init(&g->park, WEFT__RUNNING);
    atomic_init(&g->state, WEFT__G_NEW);
    g->bound = NULL;
    g->pins = a && a->pinned; /* bound where it first runs */
    g->binds = 0;
    g->unbatched = 0;
    __atomic_store_n(&g->plocks, 0, __ATOMIC_RELAXED); /* weft_stats reads it */
    atomic_init(&g->carrier_waits, false);
    weft__scope_init(&g->root, g, NULL);
    g->cur = &g->root;
    count_live(p, +1);
    if (parent) {
        weft__locals_inherit(g, parent);
        weft_scope *home = parent->cur;
        home->used = true; /* the owner's own field: parent is its owner */
        g->home = home;
        g->root.depth = home->depth + 1;
        weft__scope_count_spawn(home);
        if (!push_spawned(home, g))
            link_spawned(p, home, g);
    }
    return g;
}

weft_thread *weft__spawn(weft_thread *parent, const weft_attr *a, weft_fn fn,
                         void *arg)
{
    return spawn(parent, a, fn, arg);
}

static size_t round_stack(size_t size)
{
    size_t page = weft__page();
    return (size + page - 1) & ~(page - 1);
}

weft_thread *weft_go_with(const weft_attr *a, weft_fn fn, void *arg)
{
    weft_thread *self = weft__g();
    if (!self) {
        errno = weft__no_vthread();
        return NULL;
    }
    if (!fn || (a && a->stack_size &&
                (a->stack_size < MIN_STACK || a->stack_size > MAX_STACK))) {
        errno = EINVAL;
        return NULL;
    }
    weft_attr attr = a ? *a : (weft_attr){0};
    attr.stack_size = round_stack(attr.stack_size);
    weft_thread *g = spawn(self, &attr, fn, arg);
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    WEFT__TRACE(weft__trace_spawn(self, g));
    weft_thread *h = weft__handle_of(g); /* before g can run, end, be freed */
    weft__enqueue_spawned(g);
    return h;
}

weft_thread *weft_go(weft_fn fn, void *arg)
{
    return weft_go_with(NULL, fn, arg);
}

/* ---------------------------------------------------------- run, finish */

/* A thread's final result: its function's, or its first child failure. */
struct weft__keys_hooks weft__keys_hooks;

/* Runs on: the child of a fork, on the virtual thread that forked, which
 * returned r: the child ends as a program that returns r from main (a
 * non-zero r whose low byte is 0 gives 1, not success). */
static _Noreturn void forked_child_exit(int r)
{
    int status = r & 0xff;
    exit(r && !status ? 1 : status);
}

/* What a thread leaves behind when its function returns r: scopes left
 * open, pthread key values, children. Its final result. Out of line:
 * most threads leave none of it, and thread_body then needs no
 * registers of its own. */
static __attribute__((noinline)) int thread_wind_up(weft_thread *g, int r)
{
    while (g->cur != &g->root) {
        int e = weft_scope_close(g->cur); /* scopes left open */
        if (!r)
            r = e;
    }
    /* Its pthread keys' destructors, before the wait for its children:
     * one that spawns has its children waited for like the others. */
    if (g->keys)
        weft__keys_hooks.exit(g);
    if (!g->root.used)
        return r; /* never spawned into its root scope: nothing to wait for */
    weft__scope_wait_children(&g->root, WEFT__WAIT_CHILDREN);
    if (!r)
        r = g->root.first_error;
    weft__scope_reap(&g->root);
    return r;
}

static inline int thread_body(weft_thread *g)
{
    int r = g->fn(g->arg);
    if (unlikely(weft__forked_child)) /* it forked, and this is the child */
        forked_child_exit(r);
    if (unlikely(g->cur != &g->root || g->keys || g->root.used))
        r = thread_wind_up(g, r);
    return r;
}

/* Runs on: g's own stack: the first code of every virtual thread. */
void weft__thread_entry(void *unused)
{
    (void)unused;
    weft__fiber_arrive(NULL);
    weft__carrier *m = weft__m();
    weft__after_switch_on(m);
    weft_thread *g = m->cur;
    if (g->pins)
        weft__bind(g, m);
    g->result = thread_body(g);
    if (g->local_log || g->locals) /* most threads have neither */
        weft__locals_release(g);
    g->pins = 0;
    weft__unbind(g);
    weft__switch_out(g, WEFT__AFTER_EXIT, NULL);
    weft__panic("finished thread #%llu resumed", (unsigned long long)g->id);
}

/* A thread fails unless it returns 0 or the reason of a cancellation it
 * was given: the one in force, or one a shield lifted (scope.c). */
static bool is_failure(weft_thread *g)
{
    /* acquire: pairs with the shield's release of a lifted reason. */
    int reason = atomic_load_explicit(&g->root.reason, memory_order_acquire);
    int lifted = atomic_load_explicit(&g->root.lifted, memory_order_relaxed);
    return g->result != 0 && g->result != reason && g->result != lifted;
}

static void finish_root(weft_thread *g)
{
    count_live(weft__m()->p, -1);
    atomic_store_explicit(&g->state, WEFT__G_DONE, memory_order_relaxed);
    weft__S.root_result = g->result;
    atomic_store_explicit(&weft__S.done, true, memory_order_release);
    weft__wake_all();
}

/* A detached child that succeeded owes its scope nothing but the count:
 * it goes on the scope's done stack, for the owner to free, and is counted
 * out without the scope's lock. Consecutive such finishes of one scope's
 * children on one carrier are batched (one push, one count for many), so
 * that a spawner and the carriers running its children do not fight over
 * the scope's cache line for each thread. A batch is held only while the
 * carrier goes on running a thread of the same scope, which keeps the
 * scope open anyway; any other switch flushes it (weft__after_switch_on).
 */
static void finish_detached(weft__carrier *m, weft_thread *g, weft_scope *home)
{
    atomic_store_explicit(&g->state, WEFT__G_DONE, memory_order_relaxed);
    /* here, where g's first line is hot; the flush fences (handle.c) */
    weft__handle_end_unlocked(g);
    if (m->fin_scope != home)
        weft__finish_flush(m);
    m->fin_scope = home;
    g->next = m->fin_head;
    m->fin_head = g;
    if (!m->fin_tail)
        m->fin_tail = g;
    if (++m->fin_count >= 64)
        weft__finish_flush(m);
}

/* Runs on: carrier m. Publishes m's batch of finished detached children. */
void weft__finish_flush(weft__carrier *m)
{
    weft_scope *home = m->fin_scope;
    if (!m->fin_count)
        return;
    /* The ender's half of the pair with a holder of a handle lock: the
     * batch's handles ended before it can reach a freer (handle.c). */
    weft__fence_full();
    weft_thread *top = atomic_load_explicit(&home->done, memory_order_relaxed);
    do
        m->fin_tail->next = top;
    while (!atomic_compare_exchange_weak_explicit(
        &home->done, &top, m->fin_head, memory_order_release,
        memory_order_relaxed));
    uint32_t n = m->fin_count;
    m->fin_scope = NULL;
    m->fin_head = m->fin_tail = NULL;
    m->fin_count = 0;
    weft__scope_leave(home, n);
}

/* Holds: s->lock; s has no failure recorded yet. Records a child's failure
 * and cancels s. A failure that comes after s was cancelled is recorded as
 * the cancellation's reason: it is most likely that cancellation, turned
 * by a library into an error of its own (ECANCELED into EIO), and a scope
 * that was cancelled or timed out should say so. A failure before the
 * cancellation caused it, and is recorded as it is. The reason is read
 * under s->lock, which every cancellation of s holds: "before" is exact. */
static void record_failure_locked(weft_scope *s, int result)
{
    int reason = atomic_load_explicit(&s->reason, memory_order_relaxed);
    s->first_error = reason ? reason : result;
    weft__scope_cancel_locked(s, ECANCELED);
}

/* Holds: g's handle lock, then g->home->lock. g leaves its scope's
 * children for good (its record is freed by the caller or a joiner): its
 * handles die now, not when the record is freed, since the scope may be
 * closed and freed in between. */
void weft__thread_leave_home_locked(weft_thread *g)
{
    weft__scope_link_spawned_locked(g->home);
    weft__list_remove(&g->home_link);
    weft__handle_end_locked(g);
}

/* Holds: g's handle lock, then g->home->lock; g is DONE. Claims the wait
 * of g's joiner, if it has one that nobody claimed first: the join is then
 * made here. g leaves its scope now, so that the scope's close (which may
 * come before the joiner runs again) leaves the record to the joiner,
 * which frees it. The caller completes the returned wait once it is done
 * with g. */
static weft__waiter *take_joiner_locked(weft_thread *g)
{
    weft__waiter *w = g->joiner;
    if (!w || !weft__claim(w))
        return NULL;
    g->joiner = NULL;
    g->joining = false;
    weft__thread_leave_home_locked(g);
    return w;
}

/* Runs on: any carrier, g off its stack, g not a detached success.
 * Publishes g's result to its scope, its joiner and its scope's closer.
 * Out of line: the common end (finish) pays no registers for it. */
static __attribute__((noinline)) void
finish_locked_path(weft__carrier *m, weft_thread *g, weft_scope *home)
{
    bool failed = is_failure(g);
    if (!failed && atomic_load_explicit(&g->detached, memory_order_acquire)) {
        finish_detached(m, g, home); /* cancelled, and said so */
        return;
    }
    /* g may leave its scope */
    weft__spin_lock(&g->handle.lock, WEFT__LOCK_HANDLE);
    weft__scope_lock(home);
    atomic_store_explicit(&g->state, WEFT__G_DONE, memory_order_relaxed);
    /* The joiner first: it asked for this result, and a failure's cancel
     * below must not take it away (its next blocking call sees it). */
    weft__waiter *joiner = take_joiner_locked(g);
    if (failed && !home->first_error)
        record_failure_locked(home, g->result);
    bool detached = atomic_load_explicit(&g->detached, memory_order_relaxed);
    if (detached)
        weft__thread_leave_home_locked(g);
    weft__scope_unlock(home);
    weft__spin_unlock(&g->handle.lock);
    if (joiner) /* the last use of g: the joiner may free it at once */
        weft__complete(joiner, WEFT__CASE + (int)joiner->index);
    if (detached)
        weft__free_g(g);
    weft__scope_leave(home, 1);
}

/* Runs on: any carrier, g off its stack. A detached thread that returned
 * 0 (no failure, whatever its cancellation) is the common end: it takes
 * no lock (finish_detached). */
static void finish(weft__carrier *m, weft_thread *g)
{
    weft_scope *home = g->home;
    if (unlikely(!home)) {
        finish_root(g);
        return;
    }
    count_live(m->p, -1);
    if (likely(g->result == 0) &&
        atomic_load_explicit(&g->detached, memory_order_acquire))
        finish_detached(m, g, home);
    else
        finish_locked_path(m, g, home);
}

/* Runs on: the context after g's last switch. */
void weft__thread_finish(weft__carrier *m, weft_thread *g)
{
    weft__stack_put(m->p, g->stack);
    __atomic_store_n(&g->stack, NULL, __ATOMIC_RELAXED); /* backtrace.c */
    finish(m, g);
}

/* ------------------------------------------------------ join and friends */

static bool ended_detached(const weft_thread *t)
{
    return atomic_load_explicit(&t->detached, memory_order_relaxed) &&
           atomic_load_explicit(&t->state, memory_order_relaxed) ==
               WEFT__G_DONE;
}

/* Holds: t's handle lock (t current) and t->home->lock. Whether t is gone
 * for its handle although its record is not freed yet: joined or reaped
 * (out of its scope's children), or detached and ended. */
bool weft__thread_gone_locked(const weft_thread *t)
{
    weft__scope_link_spawned_locked(t->home);
    return !weft__list_linked(&t->home_link) || ended_detached(t);
}

/* Holds: t's handle lock, t current. Whether t is gone for its handle
 * (weft__thread_gone_locked). Only its scope knows: the root thread, which
 * has none, is never gone while its handle is current. */
static bool gone(weft_thread *t)
{
    weft_scope *home = t->home; /* alive: t, current, is not freed */
    if (!home)
        return false;
    weft__scope_lock(home);
    bool r = weft__thread_gone_locked(t);
    weft__scope_unlock(home);
    return r;
}

/* Runs on: any thread, holding nothing. Locks the thread that handle h
 * names, then its scope, and returns its record, linked in the scope's
 * children. Else NULL, holding nothing, with *err: ESRCH (h is stale) or
 * EINVAL (h is the root thread, which has no scope). */
static weft_thread *lock_home(const weft_thread *h, int *err)
{
    *err = ESRCH;
    weft_thread *t = weft__handle_lock(h);
    if (!t)
        return NULL;
    weft_scope *home = t->home; /* alive: t, current, is not freed */
    if (!home) {
        *err = EINVAL;
    } else {
        weft__scope_lock(home);
        if (!weft__thread_gone_locked(t))
            return t;
        weft__scope_unlock(home); /* before t, then home, is freed */
    }
    weft__handle_unlock(t);
    return NULL;
}

/* Holds: what lock_home took. Drops it. */
static void unlock_home(weft_thread *t)
{
    weft__scope_unlock(t->home);
    weft__handle_unlock(t);
}

/* Runs on: a joiner of t (handle h) whose wait w ended without t's result
 * (cancelled, timed out, or another select case won), holding nothing.
 * Takes w back from t, unless t's record was freed meanwhile (its scope
 * closed): then nothing refers to w any more. */
void weft__join_forget(weft_thread *t, const weft_thread *h,
                       const weft__waiter *w)
{
    weft__spin_lock(&t->handle.lock, WEFT__LOCK_HANDLE);
    if (weft__handle_current(t, h)) {
        weft__scope_lock(t->home);
        if (t->joiner == w) {
            t->joiner = NULL;
            t->joining = false;
        }
        weft__scope_unlock(t->home);
    }
    weft__spin_unlock(&t->handle.lock);
}

/* Holds: what lock_home took, t not being joined; w begun. Waits for t to
 * finish and takes its record (to free): 0, or the error that ended the
 * wait. Returns holding nothing. */
static int join_locked(weft_thread *t, const weft_thread *h, weft__waiter *w)
{
    if (atomic_load_explicit(&t->state, memory_order_relaxed) ==
        WEFT__G_DONE) {
        weft__thread_leave_home_locked(t);
        unlock_home(t);
        weft__wait_abort(w); /* a cancel that lands now stays in force */
        return 0;
    }
    t->joining = true;
    t->joiner = w;
    weft__handle_unlock(t); /* t is linked: it stays until home->lock */
    int r = weft__wait_block(w, &t->home->lock, -1);
    if (r == WEFT__CASE)
        return 0; /* finish() made the join: t is ours */
    weft__join_forget(t, h, w);
    return r;
}

int weft_join(weft_thread *h, int *result)
{
    weft__os_use();
    weft_thread *self = weft__g();
    if (!h)
        return EINVAL;
    if (self && h == weft__handle_of(self))
        return EDEADLK;
    weft_thread *t = weft__handle_record(h);
    if (!t)
        return ESRCH;
    if (unlikely(weft__forked_child) && atomic_load_explicit(
            &t->state, memory_order_relaxed) != WEFT__G_DONE)
        return ECHILD; /* it can never finish in this process */
    weft__waiter w;
    int r = weft__wait_begin(&w, WEFT__WAIT_INTERRUPTIBLE, WEFT__WAIT_JOIN, t);
    if (r)
        return r;
    if (!lock_home(h, &r)) {
        weft__wait_abort(&w);
        return r;
    }
    if (atomic_load(&t->detached) || t->joining) {
        unlock_home(t);
        weft__wait_abort(&w);
        return EINVAL;
    }
    r = join_locked(t, h, &w);
    if (r)
        return r;
    int res = t->result;
    weft__free_g(t);
    if (result)
        *result = res;
    return 0;
}

int weft_detach(weft_thread *h)
{
    weft__os_use();
    if (!h)
        return EINVAL;
    int err;
    weft_thread *t = lock_home(h, &err);
    if (!t)
        return err;
    if (atomic_load(&t->detached) || t->joining) {
        unlock_home(t);
        return EINVAL;
    }
    bool done = atomic_load_explicit(&t->state, memory_order_relaxed) ==
                WEFT__G_DONE;
    if (done)
        weft__thread_leave_home_locked(t);
    else
        atomic_store(&t->detached, true);
    unlock_home(t);
    if (done)
        weft__free_g(t);
    return 0;
}

int weft_cancel(weft_thread *h)
{
    weft__os_use();
    if (!h)
        return EINVAL;
    weft_thread *t = weft__handle_lock(h);
    if (!t)
        return ESRCH;
    bool dead = gone(t);
    if (!dead) {
        weft__scope_lock(&t->root);
        weft__scope_cancel_locked(&t->root, ECANCELED);
        weft__scope_unlock(&t->root);
    }
    weft__handle_unlock(t);
    return dead ? ESRCH : 0;
}

int weft_yield(void)
{
    weft__carrier *m = weft__m();
    /* A thread holding a pthread lock must not let the carrier's other
     * threads run: one of them could block the carrier on that lock. */
    if (!m || !m->cur || m->cur->plocks) {
        sched_yield();
        return 0;
    }
    weft__switch_out_on(m, m->cur, WEFT__AFTER_YIELD, NULL);
    return 0;
}

weft_thread *weft_self(void)
{
    weft_thread *g = weft__g();
    return g ? weft__handle_of(g) : NULL;
}

bool weft_cancelled(void)
{
    weft_thread *g = weft__g();
    return g && atomic_load_explicit(&g->cur->reason, memory_order_relaxed);
}

const char *weft_name(const weft_thread *h)
{
    weft_thread *g = h ? weft__handle_lock(h) : NULL;
    if (!g || gone(g)) {
        if (g)
            weft__handle_unlock(g);
        errno = h ? ESRCH : EINVAL;
        return NULL;
    }
    if (!g->name[0]) /* the default name, formatted on first request */
        default_name(g->name, sizeof g->name, (uintptr_t)g->fn);
    weft__handle_unlock(g);
    return g->name;
}
