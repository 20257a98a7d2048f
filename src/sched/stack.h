/* SPDX-License-Identifier: MIT */
/*
 * stack.h — virtual threads' stacks: the pools they come from (stack.c),
 * why one could not be had (stackwhy.c), overflow detection (overflow.c)
 * and each carrier's alternate signal stack (sigstack.c).
 *
 * Invariants. A stack belongs to one thread from its spawn until it is
 * done, then to a pool: the P's cache (owner P only) or the shared pools
 * (under their lock, level 10 of the lock order). Its fields are written
 * by stack.c when it is made and never change while it is in use, so any
 * carrier may read them (the overflow handler does, in a signal); only
 * tsan_fiber is set later, by the scheduler loop (loop.c), before a thread
 * first runs on the stack.
 */
#ifndef WEFT_SCHED_STACK_H
#define WEFT_SCHED_STACK_H

#include "base/compiler.h"
#include "sched/carrier.h"

/* Default stacks smaller than this are "compact": carved from guard-less
 * slabs, several to a page, and checked by a canary (stack.c). */
#define WEFT__COMPACT_LIMIT (16u * 1024)
#define WEFT__COMPACT_MIN (2u * 1024)

struct weft__stack {
    size_t asked;           /* the size asked for (the pools' key) */
    char *lo;               /* lowest usable byte */
    size_t size;            /* usable bytes: asked, less a slab's canary */
    char *map;              /* the guarded mapping, or NULL: slab stack */
    union {
        size_t map_size;    /* a guarded stack: its mapping's size */
        size_t slab_below;  /* a slab stack: its slab's bytes below lo */
    };
    weft__stack *next;      /* in a pool */
    unsigned vg_id;         /* Valgrind stack id */
    void *tsan_fiber;
};

weft__stack *weft__stack_get_slow(weft__proc *p, size_t size);
void weft__stack_put_slow(weft__proc *p, weft__stack *s);

/* Runs on: any carrier or weft_run's thread (p: its P, or NULL). A stack
 * of size bytes, or NULL when memory is exhausted. Inline, for the path
 * of every spawn: a default stack from the P's cache; the rest in
 * stack.c. */
static inline weft__stack *weft__stack_get(weft__proc *p, size_t size)
{
    weft__stack *s = p ? p->stacks : NULL;
    if (likely(s && size == weft__S.stack_size)) {
        p->stacks = s->next;
        p->nstacks--;
        return s;
    }
    return weft__stack_get_slow(p, size);
}

/* Runs on: any carrier (p: its P, or NULL); s's thread is off it. Inline
 * like weft__stack_get: a default stack back to a P's cache with room. */
static inline void weft__stack_put(weft__proc *p, weft__stack *s)
{
    if (likely(p && s->asked == weft__S.stack_size &&
               p->nstacks < WEFT__STACK_CACHE)) {
        s->next = p->stacks;
        p->stacks = s;
        p->nstacks++;
        return;
    }
    weft__stack_put_slow(p, s);
}

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

#endif
