/* SPDX-License-Identifier: MIT */
/*
 * scope.h — structured concurrency's scopes (scope.c): each thread's root
 * scope (its nursery) and the scopes it opens inside it.
 *
 * Invariants. A scope belongs to its owner thread; the fields marked
 * "under lock" are written under s->lock (level 2 of the lock order,
 * ancestor before descendant), those marked "owner only" by the owner
 * without it, and live and done are the lock-free paths of finishing
 * children (see the fields).
 */
#ifndef WEFT_SCHED_SCOPE_H
#define WEFT_SCHED_SCOPE_H

#include <errno.h>

#include "base/compiler.h"
#include "base/list.h"
#include "base/spinlock.h"
#include "sched/park.h"

typedef struct weft__timer weft__timer;

struct weft_scope {
    weft__spinlock lock;     /* lock order 2: SCOPE, by depth (sched.h) */
    /* In force: 0, or ECANCELED / ETIMEDOUT. Its own reason if it has
     * one, else its parent's unless it is shielded (scope.c); written
     * under lock, read anywhere. */
    _Atomic int reason;
    int first_error;         /* first failure of a child (reason instead,
                                if s was cancelled before it); under lock */
    /* Children not yet finished, plus credit. Raised by the owner's
     * spawns, a block of credit at a time; lowered by finishing
     * children, without the lock unless it goes to 0: so once the owner
     * sees 0 under the lock, no child touches the scope again (scope.c). */
    _Atomic uint32_t live;
    /* Detached children that finished, pushed by themselves (lock-free,
     * linked through weft_thread.next), unlinked and freed by the owner. */
    weft_thread *_Atomic done;
    /* weft_thread.home_link; under lock, read and changed only after
     * weft__scope_link_spawned_locked (an opened scope's spawn batch) */
    weft__list children;
    weft_scope *outer;       /* enclosing scope of the same owner; NULL for
                                a thread's root scope */
    weft_scope *inner;       /* scope opened inside this one; under lock */
    weft_thread *owner;
    weft__waiter *closer;    /* owner waiting for live == 0; under lock */
    weft__timer *deadline;   /* NULL until weft_scope_deadline */
    weft__spinlock deadline_lock; /* serialises weft_scope_deadline; lock
                                     order 3: DEADLINE */
    bool used;               /* a child was ever spawned in it: owner only */
    /* The three below fit what was padding: a thread record, which holds
     * its root scope, is sized to the byte (thread.c). Reasons are
     * ECANCELED or ETIMEDOUT, which fit a byte. */
    uint8_t own;             /* 0, or the reason of the first cancel of s
                                itself (weft_scope_cancel, its deadline,
                                a child's failure, weft_cancel of a root
                                scope's thread); under lock */
    /* An inherited reason a shield took away, kept so that a thread that
     * returns it is not counted as failing (thread.c); under lock. */
    _Atomic uint8_t lifted;
    _Atomic bool shielded;   /* set under lock by the owner, never cleared */
    uint16_t spawns;         /* owner only; wraps */
    /* Counted in live ahead of the spawns that use it up, so that a spawn
     * needs no locked add; given back before the owner waits for live to
     * reach 0. Owner only (under lock when it is given back). */
    uint16_t credit;
    /* Distance from the root thread's root scope: its outer's + 1, or for
     * a thread's root scope its home's + 1. Set before the scope can be
     * reached, never changed: scope locks nest by depth (sched.h). */
    uint32_t depth;
};

_Static_assert(ECANCELED < 256 && ETIMEDOUT < 256, "a reason fits a byte");

/* Children an opened scope's owner spawned without the scope's lock, not
 * yet linked in its children (scope.c: "Spawn batches"). */
#define WEFT__SPAWN_BATCH 32u
typedef struct weft__spawn_batch {
    _Atomic uint32_t n;      /* g[0 .. n) pushed; raised by the owner alone,
                                reset to 0 by it under lock */
    uint32_t linked;         /* g[0 .. linked) linked in children; under
                                lock */
    bool active;             /* spawns go here; set and cleared by the
                                owner under lock, read under lock */
    weft_thread *g[WEFT__SPAWN_BATCH]; /* g[i] written before n passes i */
} weft__spawn_batch;

/* What weft_scope_open allocates: a thread's root scope (in its record)
 * has no batch, and is told apart by having no outer scope. */
typedef struct weft__opened_scope {
    weft_scope s;
    weft__spawn_batch batch;
} weft__opened_scope;

/* s's spawn batch, or NULL for a root scope. */
static inline weft__spawn_batch *weft__scope_batch(weft_scope *s)
{
    return s->outer ? &((weft__opened_scope *)s)->batch : NULL;
}

/* s's lock: level 2 of the lock order, where an ancestor comes before its
 * descendants; the depth says which is which (base/lockrank.h). */
#define weft__scope_lock(s) \
    weft__spin_lock_keyed(&(s)->lock, WEFT__LOCK_SCOPE, (s)->depth)
#define weft__scope_trylock(s) \
    weft__spin_trylock_keyed(&(s)->lock, WEFT__LOCK_SCOPE, (s)->depth)
#define weft__scope_unlock(s) weft__spin_unlock(&(s)->lock)

/* live counted ahead at a time (weft__scope_count_spawn). */
#define WEFT__SPAWN_CREDIT 64u

/* Runs on: s's owner, spawning a child into s. Counts it in live, from
 * credit taken a block at a time: one locked add per block, not per spawn
 * (inline: it is on the path of every spawn). */
static inline void weft__scope_count_spawn(weft_scope *s)
{
    if (unlikely(!s->credit)) {
        atomic_fetch_add_explicit(&s->live, WEFT__SPAWN_CREDIT,
                                  memory_order_relaxed);
        s->credit = WEFT__SPAWN_CREDIT;
    }
    s->credit--;
}

/* Initialises s in zeroed memory (a thread's record is zeroed at its
 * spawn: thread.c), where every field but these starts at 0. Inline: a
 * spawn makes one. */
static inline void weft__scope_init(weft_scope *s, weft_thread *owner,
                                    weft_scope *outer)
{
    weft__list_init(&s->children);
    s->outer = outer;
    s->owner = owner;
    s->depth = outer ? outer->depth + 1 : 0; /* a root's: see weft__spawn */
}

void weft__scope_cancel_locked(weft_scope *s, int reason);
void weft__scope_wait_children(weft_scope *s, weft__wait_kind kind);
void weft__scope_reap(weft_scope *s);
void weft__scope_leave(weft_scope *s, uint32_t n);
void weft__scope_collect_done_locked(weft_scope *s, weft_thread **freed);
void weft__scope_link_spawned_locked(weft_scope *s);

#endif
