/* SPDX-License-Identifier: MIT */
/*
 * dump.c — weft_dump: every virtual thread as a tree, with what it waits on.
 *
 * The walk follows the scope tree from the root thread, holding each
 * scope's lock while it lists that scope's children (ancestor before
 * descendant, the declared lock order), so the lists it reads are never
 * torn and no record it visits is freed under it. Fields a thread writes
 * about itself (state, wait kind) are read with relaxed atomics: a dump
 * is a snapshot, each line true at the moment it was read.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/real.h"
#include "sched/poll.h"
#include "sched/carrier.h"
#include "sched/dump.h"
#include "sched/monitor.h"
#include "sched/park.h"
#include "sched/proc.h"
#include "sched/scope.h"
#include "sched/thread.h"
#include "sched/backtrace.h"
#include "sched/sched.h"

static const char *state_name(int s)
{
    switch (s) {
    case WEFT__G_NEW: return "new";
    case WEFT__G_RUNNABLE: return "runnable";
    case WEFT__G_RUNNING: return "running";
    case WEFT__G_WAITING: return "waiting";
    case WEFT__G_DONE: return "done";
    }
    return "?";
}

const char *weft__wait_kind_name(int k)
{
    switch (k) {
    case WEFT__WAIT_NONE: return NULL;
    case WEFT__WAIT_SLEEP: return "sleep";
    case WEFT__WAIT_JOIN: return "join";
    case WEFT__WAIT_SCOPE: return "scope close (children)";
    case WEFT__WAIT_CHILDREN: return "its children (function returned)";
    case WEFT__WAIT_MUTEX: return "mutex";
    case WEFT__WAIT_RWLOCK_READ: return "rwlock (to read)";
    case WEFT__WAIT_RWLOCK_WRITE: return "rwlock (to write)";
    case WEFT__WAIT_COND: return "cond";
    case WEFT__WAIT_SEM: return "semaphore";
    case WEFT__WAIT_CHAN_SEND: return "channel send";
    case WEFT__WAIT_CHAN_RECV: return "channel receive";
    case WEFT__WAIT_SELECT: return "select";
    case WEFT__WAIT_OFFLOAD: return "offloaded call";
    case WEFT__WAIT_FD_READ: return "fd readable";
    case WEFT__WAIT_FD_WRITE: return "fd writable";
    case WEFT__WAIT_FD_POLL: return "poll";
    case WEFT__WAIT_RING_IO: return "I/O in the ring";
    case WEFT__WAIT_PTHREAD_LOCK: return "pthread lock";
    case WEFT__WAIT_PTHREAD_COND: return "pthread condition";
    }
    return "?";
}

static void indent(int fd, int depth)
{
    for (int i = 0; i < depth; i++)
        dprintf(fd, "  ");
}

/* One dump in progress: where it goes, and the symbol tables its stacks
 * are printed with. */
struct dump {
    int fd;
    weft__symbols *sym;
};

static void dump_thread(const struct dump *d, weft_thread *g, int depth);

/* Holds: s->lock (taken here). */
static void dump_scope_children(const struct dump *d, weft_scope *s,
                                int depth)
{
    int fd = d->fd;
    weft__scope_lock(s);
    weft__scope_link_spawned_locked(s);
    weft__list_for_each(n, &s->children)
        dump_thread(d, weft__container_of(n, weft_thread, home_link), depth);
    weft_scope *inner = s->inner;
    if (inner) {
        indent(fd, depth);
        int reason = atomic_load_explicit(&inner->reason, memory_order_relaxed);
        bool shielded = atomic_load_explicit(&inner->shielded,
                                             memory_order_relaxed);
        const char *why = !reason               ? ""
                          : reason == ETIMEDOUT ? " [timed out]"
                                                : " [cancelled]";
        dprintf(fd, "scope %p%s%s\n", (void *)inner,
                shielded ? " [shielded]" : "", why);
        dump_scope_children(d, inner, depth + 1);
    }
    weft__scope_unlock(s);
}

/* g's name, or, for an unnamed thread, its function's. */
static const char *thread_label(const struct dump *d, const weft_thread *g,
                                char *buf, size_t size)
{
    if (g->name[0] || !weft__symbol_name(d->sym, (uintptr_t)g->fn, buf, size))
        return weft__thread_name(g, buf, size);
    return buf;
}

/* The carrier g runs on, or -1. Carriers switch as we look: a racy but
 * whole read of each one's cur (relaxed atomics on both sides). */
static int carrier_of(const weft_thread *g)
{
    for (uint32_t i = 0, n = atomic_load(&weft__S.ncarriers); i < n; i++)
        if (__atomic_load_n(&weft__S.carriers[i]->cur, __ATOMIC_RELAXED) == g)
            return (int)i;
    return -1;
}

/* A thread off its carrier has its stack as it left it: walk it. One
 * that has begun its wait but not yet switched out (its carrier may be
 * preempted right there) has no saved context yet: it is named, not
 * walked. */
static void dump_stack(const struct dump *d, weft_thread *g, int state,
                       int depth)
{
    if (state != WEFT__G_WAITING && state != WEFT__G_RUNNABLE)
        return;
    int c = carrier_of(g);
    if (c >= 0) {
        indent(d->fd, depth + 2);
        dprintf(d->fd, "(still switching out on carrier %d)\n", c);
        return;
    }
    uintptr_t pcs[WEFT__BT_MAX];
    int n = weft__backtrace_parked(g, pcs, WEFT__BT_MAX);
    weft__backtrace_print(d->fd, pcs, n, depth + 2, d->sym);
}

static void dump_thread(const struct dump *d, weft_thread *g, int depth)
{
    int fd = d->fd;
    int state = atomic_load_explicit(&g->state, memory_order_relaxed);
    indent(fd, depth);
    char buf[128];
    dprintf(fd, "#%llu '%s' %s", (unsigned long long)g->id,
            thread_label(d, g, buf, sizeof buf), state_name(state));
    const char *w = weft__wait_kind_name(atomic_load_explicit(&g->wait_kind,
                                                   memory_order_relaxed));
    if (state == WEFT__G_WAITING && w) {
        int64_t since = atomic_load_explicit(&g->wait_since,
                                             memory_order_relaxed);
        /* Acquire: pairs with weft__wait_begin's release; obj (an fd
         * record) is read below. */
        const void *obj = atomic_load_explicit(&g->wait_obj,
                                               memory_order_acquire);
        double ms = (weft_now() - since) / 1e6;
        int kind = atomic_load_explicit(&g->wait_kind, memory_order_relaxed);
        dprintf(fd, " on %s", w);
        if (obj && kind >= WEFT__WAIT_FD_READ && kind <= WEFT__WAIT_FD_POLL)
            dprintf(fd, " fd %d", weft__fd_of_wait(obj));
        else if (obj && kind == WEFT__WAIT_JOIN)
            dprintf(fd, " of #%llu",
                    (unsigned long long)((const weft_thread *)obj)->id);
        else if (obj && kind == WEFT__WAIT_OFFLOAD &&
                 weft__symbol_name(d->sym, (uintptr_t)obj, buf, sizeof buf))
            dprintf(fd, " %s()", buf);
        else if (obj)
            dprintf(fd, " %p", obj);
        int64_t until = atomic_load_explicit(&g->wait_until,
                                             memory_order_relaxed);
        if (until > 0) {
            double left = (until - weft_now()) / 1e6;
            dprintf(fd, " (timer: %.0f ms left)", left < 0 ? 0 : left);
        }
        dprintf(fd, " for %.0f ms", ms < 0 ? 0 : ms);
    }
    if (state == WEFT__G_RUNNING) {
        int c = carrier_of(g);
        if (c >= 0)
            dprintf(fd, " on carrier %d", c);
    }
    if (state == WEFT__G_DONE)
        dprintf(fd, " result %d", g->result);
    /* Read racily, as the rest of the record: a snapshot for people. */
    weft__carrier *b = __atomic_load_n(&g->bound, __ATOMIC_RELAXED);
    if (b && state != WEFT__G_DONE)
        dprintf(fd, " [%s to carrier %u]",
                __atomic_load_n(&g->pins, __ATOMIC_RELAXED) ? "pinned"
                                                            : "bound",
                b->id);
    uint32_t locks = __atomic_load_n(&g->plocks, __ATOMIC_RELAXED);
    if (locks && state != WEFT__G_DONE)
        dprintf(fd, " [pinned (%u locks)]", locks);
    if (atomic_load_explicit(&g->root.reason, memory_order_relaxed))
        dprintf(fd, " [cancelled]");
    dprintf(fd, "\n");
    dump_stack(d, g, state, depth);
    if (state != WEFT__G_DONE)
        dump_scope_children(d, &g->root, depth + 1);
}

static void dump_sched(int fd)
{
    dprintf(fd, "procs %u, carriers %u, idle procs %u, spinning %u, "
                "global queue %u\n",
            weft__S.nprocs, atomic_load(&weft__S.ncarriers),
            atomic_load(&weft__S.npidle), atomic_load(&weft__S.nmspinning),
            atomic_load(&weft__S.gq_size));
    for (uint32_t i = 0, np = weft__nallp(); i < np; i++) {
        weft__proc *p = &weft__S.procs[i];
        uint32_t n = atomic_load(&p->tail) - atomic_load(&p->head);
        weft__spin_lock(&p->timer_lock, WEFT__LOCK_TIMERS);
        uint32_t ntimers = p->ntimers;
        weft__spin_unlock(&p->timer_lock);
        dprintf(fd, "  P%u: %u queued, %u timers%s\n", i, n, ntimers,
                atomic_load(&p->stuck) ? ", stuck (handed off)" : "");
    }
    weft__dump_monitor(fd);
}

void weft_dump(int fd)
{
    if (!atomic_load(&weft__S.running) || !weft__S.root) {
        dprintf(fd, "weft: no runtime running\n");
        return;
    }
    struct dump d = {.fd = fd, .sym = weft__symbols_open()};
    dprintf(fd, "weft dump: virtual threads\n");
    dump_thread(&d, weft__S.root, 1);
    weft__symbols_close(d.sym);
    dump_sched(fd);
}
