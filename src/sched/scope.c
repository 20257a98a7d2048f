/* SPDX-License-Identifier: MIT */
/*
 * scope.c — scopes: nurseries that are also cancel scopes.
 *
 * Every thread has a root scope (its implicit nursery); weft_scope_open
 * pushes a nested one. The scopes of one thread form a stack (outer/inner);
 * across threads they form a tree: a child thread's root scope hangs off
 * the scope it was spawned in (its home).
 *
 * Invariants:
 *   - live counts the scope's children that are not DONE, plus the
 *     credit its owner took for spawns to come (scope.h):
 *     while credit is held, live stays above the children's count, and
 *     the owner gives it back, under the lock, before it waits for 0. A
 *     scope closes only when live == 0, and a thread finishes only when
 *     its root scope's live == 0. So no thread outlives its parent. live
 *     only reaches 0 under the lock (weft__scope_leave), so an owner that
 *     reads 0 under the lock may free the scope: no child will touch it
 *     again.
 *   - A scope's reason (the cancellation in force in it) is its own
 *     reason if it has one (own: the first cancel of the scope itself),
 *     else its parent's (the scope it is nested in, or for a root scope
 *     the scope its thread was spawned in), else 0; a shielded scope has
 *     no parent's. own, once set, stays; so a reason, once set, stays,
 *     but for the one change a shield makes (below).
 *   - Cancel sets own and spreads the reason down the tree (inner scopes
 *     and children's root scopes, transitively), holding each scope's
 *     lock (ancestor before descendant: the declared lock order), and
 *     stops at a shielded scope; a spawn or an open under a cancelled
 *     scope inherits the reason under the same lock, so no descendant
 *     that should have it escapes.
 *   - Cancel interrupts the current wait (if interruptible) of the owner
 *     of the innermost scope it reaches: that scope is the owner's
 *     innermost (g->cur), where its waits read their reason. A walk cut
 *     by a shield interrupts no one below the shield.
 *   - weft_scope_shield marks the owner's innermost scope shielded, then
 *     walks down from it recomputing each reason from the rule above: a
 *     reason inherited before the shield is lifted (and kept in lifted,
 *     thread.c). Only the owner shields, and only its innermost scope,
 *     so no cancel of the owner's own blocking calls is lost: the owner
 *     is running, not waiting. When the shielded scope closes, the
 *     owner's innermost scope is the outer one again, whose reason never
 *     changed: the enclosing cancel reaches its next blocking call.
 *
 * Spawn batches. A spawn into a scope took the scope's lock to link the
 * child in children: one locked instruction per spawn, and, being the
 * only one left on the way from a spawn to the child's exit, the one that
 * drained the spawner's store buffer (B1 spent about 5 ns of its ~75 on
 * it). So the owner of an opened scope (weft_scope_open) pushes its
 * children on the scope's batch without the lock, and links a full batch
 * (WEFT__SPAWN_BATCH) under the lock, with the scope's finished detached
 * children collected in the same hold. Everyone who reads or changes
 * children holds the lock and first links what the batch holds
 * (weft__scope_link_spawned_locked): the batch is children's unlinked
 * tail. Its first spawn takes the lock to mark the batch active, so that
 * a canceller knows, under the lock, that spawns may be under way: a
 * spawn pushes, then reads the scope's reason for its child; a cancel
 * stores the reason, then links the batch. The pair is an asymmetric
 * Dekker (base/fence.h): a compiler barrier on the spawn's side, a
 * membarrier on the cancel's, which is rare. A thread's root scope, in
 * its record where room is counted to the byte, has no batch: spawns
 * into it take the lock.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/fault.h"
#include "base/fence.h"
#include "sched/carrier.h"
#include "sched/deadlock.h"
#include "sched/park.h"
#include "sched/scope.h"
#include "sched/thread.h"
#include "sched/timer.h"

/* Holds: s->lock. Links the children s's owner pushed on its spawn batch
 * since the last call: after this, children lists every child of s. */
void weft__scope_link_spawned_locked(weft_scope *s)
{
    weft__spawn_batch *b = weft__scope_batch(s);
    if (!b)
        return;
    /* acquire: pairs with the owner's push, which wrote g[i] before. */
    uint32_t n = atomic_load_explicit(&b->n, memory_order_acquire);
    for (uint32_t i = b->linked; i < n; i++)
        weft__list_push_back(&s->children, &b->g[i]->home_link);
    b->linked = n;
}

/* Holds: s->lock. Calls fn(root, arg) on the root scope of each child of
 * s that is not done, holding that scope's lock: the way down the tree
 * through s's children (ancestor before descendant). */
static void each_child_root_locked(weft_scope *s,
                                   void (*fn)(weft_scope *, int), int arg)
{
    weft__scope_link_spawned_locked(s);
    weft__list_for_each(n, &s->children) {
        weft_thread *c = weft__container_of(n, weft_thread, home_link);
        if (atomic_load_explicit(&c->state, memory_order_relaxed) ==
            WEFT__G_DONE)
            continue;
        weft__scope_lock(&c->root);
        fn(&c->root, arg);
        weft__scope_unlock(&c->root);
    }
}

/* Holds: s->lock. Puts reason in force in s, unless one is already, and
 * in every scope below it that is not shielded (a root never is). */
static void spread_locked(weft_scope *s, int reason)
{
    int zero = 0;
    /* seq_cst: the canceller's half of the Dekker pair with wait_begin
     * (park.c); the interrupt below reads the owner's claim word after. */
    if (!atomic_compare_exchange_strong_explicit(&s->reason, &zero, reason,
                                                 memory_order_seq_cst,
                                                 memory_order_relaxed))
        return;
    /* The rare half of the pair with a spawn that pushes on s's batch
     * without the lock (see top of file): the reason stored, then the
     * batch read. */
    weft__spawn_batch *b = weft__scope_batch(s);
    if (b && b->active)
        weft__fence_heavy();
    each_child_root_locked(s, spread_locked, reason);
    weft_scope *in = s->inner;
    if (!in) {
        weft__interrupt(s->owner, reason); /* s is its innermost scope */
        return;
    }
    weft__scope_lock(in);
    if (!atomic_load_explicit(&in->shielded, memory_order_relaxed))
        spread_locked(in, reason);
    weft__scope_unlock(in);
}

/* Holds: s->lock. Cancels s itself with reason, and so everything below
 * it up to the shields. */
void weft__scope_cancel_locked(weft_scope *s, int reason)
{
    if (!s->own)
        s->own = (uint8_t)reason;
    spread_locked(s, reason);
}

/* Holds: s->lock. Recomputes s's reason now that its parent's is above
 * (scope rule at the top), and below it where that changed it. Only ever
 * lifts or swaps a reason (a shield never adds one: a scope that is not
 * shielded already has its parent's), so it interrupts no one. */
static void recompute_locked(weft_scope *s, int above)
{
    int want = s->own;
    if (!want && !atomic_load_explicit(&s->shielded, memory_order_relaxed))
        want = above;
    int had = atomic_load_explicit(&s->reason, memory_order_relaxed);
    if (want == had)
        return;
    if (had)
        atomic_store_explicit(&s->lifted, (uint8_t)had, memory_order_relaxed);
    /* release: a finishing thread that reads the new reason (acquire,
     * thread.c: is_failure) also reads the lifted one. */
    atomic_store_explicit(&s->reason, want, memory_order_release);
    each_child_root_locked(s, recompute_locked, want);
    if (s->inner) {
        weft__scope_lock(s->inner);
        recompute_locked(s->inner, want);
        weft__scope_unlock(s->inner);
    }
}

/* Runs on: s's owner. Waits (not interruptibly) until s has no live
 * children. */
void weft__scope_wait_children(weft_scope *s, weft__wait_kind kind)
{
    for (;;) {
        weft__waiter w;
        weft__wait_begin(&w, 0, kind, s);
        weft__scope_lock(s);
        if (s->credit) {
            atomic_fetch_sub_explicit(&s->live, s->credit,
                                      memory_order_relaxed);
            s->credit = 0;
        }
        if (atomic_load_explicit(&s->live, memory_order_acquire) == 0) {
            weft__scope_unlock(s);
            weft__wait_abort(&w);
            return;
        }
        s->closer = &w;
        weft__wait_block(&w, &s->lock, -1);
    }
}

/* Runs on: any carrier, as n children of s finish. Counts them out of s.
 * The decrement that takes live to 0 is done under the lock, and wakes the
 * closer; any other is a CAS that cannot reach 0, so it needs no lock. */
void weft__scope_leave(weft_scope *s, uint32_t n)
{
    uint32_t v = atomic_load_explicit(&s->live, memory_order_relaxed);
    for (;;) {
        if (v == n) {
            weft__scope_lock(s);
            if (atomic_fetch_sub_explicit(&s->live, n, memory_order_acq_rel) ==
                    n &&
                s->closer) {
                weft__wake(s->closer, 0);
                s->closer = NULL;
            }
            weft__scope_unlock(s);
            return;
        }
        /* release: the children's results and DONE states precede it. */
        if (atomic_compare_exchange_weak_explicit(&s->live, &v, v - n,
                                                  memory_order_release,
                                                  memory_order_relaxed))
            return;
    }
}

/* Holds: s->lock; runs on s's owner. Unlinks the detached children that
 * finished since the last call and chains them on *freed (to be freed
 * once the lock is dropped). */
void weft__scope_collect_done_locked(weft_scope *s, weft_thread **freed)
{
    weft__scope_link_spawned_locked(s);
    /* acquire: pairs with the finishing children's release pushes. */
    weft_thread *g = atomic_exchange_explicit(&s->done, NULL,
                                              memory_order_acquire);
    while (g) {
        weft_thread *next = g->next;
        weft__list_remove(&g->home_link);
        g->next = *freed;
        *freed = g;
        g = next;
    }
}

/* Runs on: s's owner, once s has no live children. Frees the records of
 * children that finished without being joined, whose handles die here
 * (detached ones' died as they ended), before s can be freed. */
void weft__scope_reap(weft_scope *s)
{
    weft_thread *freed = NULL, *unjoined = NULL;
    weft__scope_lock(s);
    weft__scope_collect_done_locked(s, &freed); /* links the batch first */
    weft__spawn_batch *b = weft__scope_batch(s);
    if (b) {
        atomic_store_explicit(&b->n, 0, memory_order_relaxed);
        b->linked = 0;
        b->active = false;
    }
    weft__list *n;
    while ((n = weft__list_pop_front(&s->children))) {
        weft_thread *g = weft__container_of(n, weft_thread, home_link);
        g->next = unjoined;
        unjoined = g;
    }
    weft__scope_unlock(s);
    for (weft_thread *g = unjoined; g; g = g->next)
        weft__handle_end(g); /* handle locks come before s's */
    weft__free_chain(freed);
    weft__free_chain(unjoined);
}

weft_scope *weft_scope_open(void)
{
    weft_thread *g = weft__g();
    if (!g) {
        errno = weft__no_vthread();
        return NULL;
    }
    weft__opened_scope *o = weft__calloc(1, sizeof *o);
    if (!o) {
        errno = ENOMEM;
        return NULL;
    }
    weft_scope *s = &o->s;
    weft_scope *outer = g->cur;
    weft__scope_init(s, g, outer);
    weft__scope_lock(outer);
    outer->inner = s;
    atomic_store_explicit(&s->reason,
                          atomic_load_explicit(&outer->reason,
                                               memory_order_relaxed),
                          memory_order_relaxed);
    weft__scope_unlock(outer);
    g->cur = s;
    return s;
}

int weft_scope_close(weft_scope *s)
{
    weft_thread *g = weft__g();
    if (!g)
        return weft__no_vthread();
    if (!s)
        return EINVAL;
    if (s->owner != g)
        return EPERM;
    if (s != g->cur || s == &g->root)
        return EINVAL;
    weft__scope_wait_children(s, WEFT__WAIT_SCOPE);
    if (s->deadline) {
        weft__timer_disarm(s->deadline);
        free(s->deadline);
    }
    weft__scope_reap(s);
    weft__scope_lock(s->outer);
    s->outer->inner = NULL;
    weft__scope_unlock(s->outer);
    g->cur = s->outer;
    int r = s->first_error;
    if (!r)
        r = atomic_load_explicit(&s->reason, memory_order_relaxed);
    free(s); /* the weft__opened_scope it heads */
    return r;
}

int weft_scope_shield(weft_scope *s)
{
    weft_thread *g = weft__g();
    if (!g)
        return weft__no_vthread();
    if (!s || s != g->cur || s == &g->root)
        return EINVAL;
    weft__scope_lock(s);
    atomic_store_explicit(&s->shielded, true, memory_order_relaxed);
    recompute_locked(s, 0);
    weft__scope_unlock(s);
    return 0;
}

void weft_scope_cancel(weft_scope *s)
{
    weft__os_use();
    if (!s)
        return;
    weft__scope_lock(s);
    weft__scope_cancel_locked(s, ECANCELED);
    weft__scope_unlock(s);
}

static void deadline_fire(void *arg, uint64_t gen)
{
    weft_scope *s = arg;
    (void)gen;
    weft__scope_lock(s);
    weft__scope_cancel_locked(s, ETIMEDOUT);
    weft__scope_unlock(s);
}

/* Holds: s->deadline_lock. Sets the deadline; false if it must be
 * enforced at once (no memory for its timer: a deadline that cannot be
 * kept is not silently dropped). */
static bool set_deadline_locked(weft_scope *s, int64_t deadline_ns)
{
    weft__timer *t = s->deadline;
    if (!t) {
        if (deadline_ns < 0)
            return true;
        t = weft__calloc(1, sizeof *t);
        if (!t)
            return false;
        t->fn = deadline_fire;
        t->arg = s;
        t->sync = true; /* close frees s after disarm */
        s->deadline = t;
    }
    if (deadline_ns < 0) {
        weft__timer_disarm(t);
        return true;
    }
    /* A server moves this forward at every request: reset only records
     * a later deadline (timer.c). */
    return weft__timer_reset(t, deadline_ns) == 0;
}

void weft_scope_deadline(weft_scope *s, int64_t deadline_ns)
{
    if (!s)
        return;
    weft__spin_lock(&s->deadline_lock, WEFT__LOCK_DEADLINE);
    bool kept = set_deadline_locked(s, deadline_ns);
    weft__spin_unlock(&s->deadline_lock);
    if (!kept)
        deadline_fire(s, 0);
}
