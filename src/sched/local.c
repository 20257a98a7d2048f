/* SPDX-License-Identifier: MIT */
/*
 * local.c — context locals: values that a thread passes down to the
 * threads it spawns, as they were at the spawn.
 *
 * A thread's values live in an immutable-once-shared array (weft__locals):
 * a spawn shares the parent's array (refs + 1); a set on a shared array
 * copies it first (copy on write), so neither the parent nor an already
 * spawned child ever sees the change.
 *
 * Destructors. Structure makes them simple: a value set by thread T is seen
 * only by T and by threads spawned after the set, which are all T's
 * descendants and so finish before T does. So T calls the destructor of
 * every value it set when it finishes (after its children), once per
 * distinct (key, value).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/fault.h"
#include "sched/carrier.h"
#include "sched/thread.h"

struct weft_local {
    uint32_t index;
    void (*dtor)(void *);
    weft_local *next;          /* registry: keys live until exit */
};

struct weft__locals {
    _Atomic uint32_t refs;
    uint32_t n;
    void *v[];
};

struct weft__local_log {
    uint32_t n, cap;
    struct { weft_local *k; void *v; } e[];
};

static _Atomic uint32_t next_index;
static weft_local *_Atomic registry;

weft_local *weft_local_new(void (*dtor)(void *))
{
    weft_local *k = weft__calloc(1, sizeof *k);
    if (!k) {
        errno = ENOMEM;
        return NULL;
    }
    k->index = atomic_fetch_add(&next_index, 1);
    k->dtor = dtor;
    k->next = atomic_load(&registry);
    while (!atomic_compare_exchange_weak(&registry, &k->next, k)) {
    }
    return k;
}

void *weft_local_get(weft_local *k)
{
    weft_thread *g = weft__g();
    if (!g || !k || !g->locals || k->index >= g->locals->n)
        return NULL;
    return g->locals->v[k->index];
}

static void locals_unref(weft__locals *l)
{
    if (l && atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
        free(l);
}

/* Makes g's array private and at least n long. */
static int own_locals(weft_thread *g, uint32_t n)
{
    weft__locals *old = g->locals;
    if (old && old->n >= n &&
        atomic_load_explicit(&old->refs, memory_order_acquire) == 1)
        return 0;
    uint32_t len = old && old->n > n ? old->n : n;
    weft__locals *l = weft__calloc(1, sizeof *l + len * sizeof l->v[0]);
    if (!l)
        return ENOMEM;
    atomic_init(&l->refs, 1);
    l->n = len;
    if (old)
        memcpy(l->v, old->v, old->n * sizeof l->v[0]);
    locals_unref(old);
    g->locals = l;
    return 0;
}

static int log_value(weft_thread *g, weft_local *k, void *v)
{
    struct weft__local_log *log = g->local_log;
    for (uint32_t i = 0; log && i < log->n; i++)
        if (log->e[i].k == k && log->e[i].v == v)
            return 0;
    if (!log || log->n == log->cap) {
        uint32_t cap = log ? 2 * log->cap : 4;
        log = weft__realloc(log, sizeof *log + cap * sizeof log->e[0]);
        if (!log)
            return ENOMEM;
        if (!g->local_log)
            log->n = 0;
        log->cap = cap;
        g->local_log = log;
    }
    log->e[log->n].k = k;
    log->e[log->n].v = v;
    log->n++;
    return 0;
}

int weft_local_set(weft_local *k, void *value)
{
    if (!k)
        return EINVAL;
    weft_thread *g = weft__g();
    if (!g)
        return weft__no_vthread();
    if (value && k->dtor && log_value(g, k, value))
        return ENOMEM;
    if (own_locals(g, k->index + 1))
        return ENOMEM;
    g->locals->v[k->index] = value;
    return 0;
}

void weft__locals_inherit(weft_thread *child, weft_thread *parent)
{
    weft__locals *l = parent->locals;
    if (l)
        atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    child->locals = l;
}

/* Runs on: g finishing, after its children. */
void weft__locals_release(weft_thread *g)
{
    struct weft__local_log *log = g->local_log;
    for (uint32_t i = 0; log && i < log->n; i++)
        log->e[i].k->dtor(log->e[i].v);
    free(log);
    g->local_log = NULL;
    locals_unref(g->locals);
    g->locals = NULL;
}

/* Runs on: teardown after a deadlock: frees without calling destructors,
 * since the thread never finished. */
void weft__locals_release_nodtor(weft_thread *g)
{
    free(g->local_log);
    g->local_log = NULL;
    locals_unref(g->locals);
    g->locals = NULL;
}
