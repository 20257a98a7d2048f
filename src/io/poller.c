/* SPDX-License-Identifier: MIT */
/*
 * poller.c — the runtime's side of the poller: picks the backend, and
 * decides who fetches events.
 *
 * One party at a time owns the poller (owner): the idle carrier that
 * waits in it (the timer waiter, sched/idle.c), a carrier whose P ran dry
 * polling it without blocking, or the monitor doing the same on its tick
 * while every carrier is busy. The owner fetches events and delivers them
 * (weft__fd_event wakes the waiting threads: onto the owner's P if it has
 * one, else the global queue). Ownership makes each backend's event
 * buffer single-consumer, and a blocked owner is ended by a kick.
 *
 * A waiting carrier announces itself (sched/idle.c: in_poll) before it
 * reads its wake word and fetches; its wakers store the word and then read
 * in_poll, both seq_cst, and kick when it is set: so either the waiter
 * sees the word or the waker kicks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "sched/runq.h"

#ifdef WEFT_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#endif

const weft__backend *weft__io_backend;
/* weft__io_backend->name while a backend runs, else NULL: weft_stats reads
 * it from any thread (the SIGQUIT dumper among them) while weft_run may
 * be tearing the poller down. Release/acquire: the name is a constant
 * string. */
static const char *_Atomic backend_name;
_Atomic bool weft__io_used;

static void register_with_scheduler(void);

/* The first use (poller.h: weft__io_mark_used). */
void weft__io_mark_used_slow(void)
{
    atomic_store_explicit(&weft__io_used, true, memory_order_seq_cst);
    /* The timer waiter may be asleep on its futex: it must move into the
     * poller, where the events of this fd will arrive. */
    weft__timer_waiter_kick(INT64_MIN + 1);
}

static bool try_own(weft__port *pt)
{
    if (atomic_load_explicit(&pt->owner, memory_order_relaxed) ||
        atomic_exchange_explicit(&pt->owner, true, memory_order_acquire))
        return false;
    /* Owned: no other writer, so no read-modify-write. */
    atomic_store_explicit(&pt->fetches,
        atomic_load_explicit(&pt->fetches, memory_order_relaxed) + 1,
        memory_order_relaxed);
    return true;
}

static void disown(weft__port *pt)
{
    atomic_store_explicit(&pt->owner, false, memory_order_release);
}

static unsigned backend_from_env(unsigned configured)
{
    const char *e = getenv("WEFT_IO");
    if (!e || !*e)
        return configured;
    if (!strcmp(e, "uring"))
        return WEFT_IO_URING;
    if (!strcmp(e, "epoll"))
        return WEFT_IO_EPOLL;
    return WEFT_IO_AUTO;
}

/* io_uring where it can be had (WEFT_IO_AUTO falls back to epoll when the
 * kernel lacks it or a seccomp profile forbids it); epoll when asked. */
int weft__io_init(unsigned backend)
{
    backend = backend_from_env(backend);
    int err = ENOSYS;
#ifdef WEFT_HAVE_VALGRIND
    /* Valgrind does not know that io_uring_enter blocks: a carrier waiting
     * in its ring would hold Valgrind's lock and stop every other one. */
    if (RUNNING_ON_VALGRIND && backend == WEFT_IO_AUTO)
        backend = WEFT_IO_EPOLL;
#endif
    if (backend != WEFT_IO_EPOLL) {
        err = weft__uring_backend.init(weft__S.max_carriers);
        if (!err)
            weft__io_backend = &weft__uring_backend;
        else if (backend == WEFT_IO_URING)
            return err;
    }
    if (!weft__io_backend) {
        err = weft__epoll_backend.init(weft__S.max_carriers);
        if (err)
            return err;
        weft__io_backend = &weft__epoll_backend;
    }
    atomic_store_explicit(&backend_name, weft__io_backend->name,
                          memory_order_release);
    register_with_scheduler();
    return 0;
}

void weft__io_fini(void)
{
    atomic_store_explicit(&backend_name, NULL, memory_order_release);
    if (weft__io_backend)
        weft__io_backend->fini();
    weft__io_backend = NULL;
    atomic_store(&weft__io_used, false);
}

/* Runs on: a forked child's only thread (fork.c). */
void weft__io_forked(void)
{
    const weft__backend *o = weft__io_backend;
    weft__io_backend = NULL;
    atomic_store_explicit(&backend_name, NULL, memory_order_relaxed);
    atomic_store_explicit(&weft__io_used, false, memory_order_relaxed);
    if (o)
        o->forked();
}

bool weft__io_on(void)
{
    return weft__io_backend != NULL;
}

static const char *backend(void)
{
    const char *name = atomic_load_explicit(&backend_name,
                                            memory_order_acquire);
    return name ? name : "none";
}

/* Runs on: m's own thread. m's first port (poller.h: weft__io_port). */
weft__port *weft__io_port_new(weft__carrier *m)
{
    weft__port *pt = weft__io_backend->port_new();
    if (pt)
        atomic_store_explicit(&m->io_port, pt, memory_order_release);
    return pt;
}

static weft__port *own_port(weft__carrier *m)
{
    return weft__io_port(m);
}

void weft__io_submit_deferred(void)
{
    const weft__backend *b = weft__io_backend;
    if (!b || !b->ring)
        return;
    weft__port *pt;
    for (uint32_t i = 0; (pt = b->port_at(i)); i++)
        b->ring->submit_deferred(pt);
}

static void batch_counts(unsigned long long *n_ops,
                         unsigned long long *n_submits)
{
    *n_ops = *n_submits = 0;
    const weft__backend *o = weft__io_backend;
    if (o && o->ring)
        o->ring->batch_counts(n_ops, n_submits);
}

static bool idles_in_poller(weft__carrier *m, bool timer_waiter)
{
    return weft__io_backend &&
           atomic_load_explicit(&weft__io_used, memory_order_relaxed) &&
           (timer_waiter || weft__io_backend->per_carrier) && own_port(m);
}

static weft__port *wait_in_port(weft__carrier *m, int64_t until,
                                _Atomic uint32_t *wake_word)
{
    weft__port *pt = own_port(m);
    /* A shared port (epoll) may be held by a carrier blocked in it, and
     * the kick meant for this one may have woken that one instead, which
     * then blocks again: a carrier woken while it waits for the port
     * leaves rather than wait for a fetch that may never end. */
    while (!try_own(pt)) {
        if (atomic_load_explicit(wake_word, memory_order_seq_cst))
            return NULL;
        weft__cpu_relax(); /* a non-blocking poll is brief */
    }
    int n = atomic_load_explicit(wake_word, memory_order_seq_cst)
                ? 0 : weft__io_backend->fetch(pt, until);
    if (n > 0)
        return pt; /* ownership passes to weft__io_dispatch */
    disown(pt);
    return NULL;
}

static void dispatch(weft__port *pt)
{
    weft__carrier *m = weft__m();
    bool batch = m && m->wake_fifo;
    if (m) /* a batch of wake-ups goes to the back, in order */
        m->wake_fifo = true;
    weft__io_backend->dispatch(pt);
    if (m)
        m->wake_fifo = batch;
    disown(pt);
}

static bool poll_port(weft__port *pt)
{
    if (!pt || !try_own(pt))
        return false;
    if (weft__io_backend->fetch(pt, 0) > 0) {
        dispatch(pt);
        return true;
    }
    disown(pt);
    return false;
}

static bool fetch_own(weft__carrier *m)
{
    if (!weft__io_backend || !weft__fd_waiting())
        return false;
    return poll_port(own_port(m));
}

/* A port fetched from since the last sweep has someone looking at it: a
 * busy carrier (its own, every IO_POLL_EVERY switches), or one looking
 * for work. Sweeping it too would take its events from that carrier's
 * P (the threads they wake would go to the global queue) and make the
 * system calls of its batch on whatever CPU the monitor preempted. The
 * ports left are those of carriers held by one thread (a hog, a call the
 * runtime does not intercept) or gone; a port an idle carrier blocks in
 * stays owned by it. */
static void sweep(void)
{
    if (!weft__io_backend || !weft__fd_waiting())
        return;
    weft__port *pt;
    for (uint32_t i = 0; (pt = weft__io_backend->port_at(i)); i++) {
        uint32_t f = atomic_load_explicit(&pt->fetches, memory_order_relaxed);
        if (f == pt->swept) {
            poll_port(pt);
            /* Our own taking of it, if we could: not a sign of life. */
            f = atomic_load_explicit(&pt->fetches, memory_order_relaxed);
            if (f == pt->swept)
                continue; /* an idle carrier blocks in it */
        }
        pt->swept = f;
    }
}

static bool fetch_others(weft__carrier *m)
{
    if (!weft__io_backend || !weft__io_backend->per_carrier ||
        !atomic_load_explicit(&weft__fd_waiters, memory_order_relaxed))
        return false;
    weft__port *mine = atomic_load_explicit(&m->io_port, memory_order_relaxed);
    weft__port *pt;
    for (uint32_t i = 0; (pt = weft__io_backend->port_at(i)); i++)
        if (pt != mine && poll_port(pt))
            return true;
    return false;
}

static void kick(weft__carrier *m)
{
    weft__port *pt = weft__io_backend ? atomic_load_explicit(&m->io_port,
                                                memory_order_acquire) : NULL;
    if (pt)
        weft__io_backend->kick(pt);
}

void weft__kick_eventfd(int fd)
{
    uint64_t one = 1;
    ssize_t r = weft__real(write)(fd, &one, sizeof one);
    (void)r;
}

/* Runs on: weft_run, before any carrier runs (sched/poll.h). Each entry
 * copes with a poller that is gone (after weft__io_fini, or in a forked
 * child). */
static void register_with_scheduler(void)
{
    weft__poll = (struct weft__poll_ops){
        .idles_in_poller = idles_in_poller,
        .wait = wait_in_port,
        .dispatch = dispatch,
        .fetch = fetch_own,
        .fetch_others = fetch_others,
        .sweep = sweep,
        .kick = kick,
        .name = backend,
        .batch_counts = batch_counts,
    };
}
