/*
 * carrier.c — M's: the carrier OS threads, their scheduler loop, and the
 * switches between virtual threads.
 *
 * A carrier holds at most one P and runs that P's threads. Switching away
 * from a thread (park, yield, exit) goes straight to the next runnable
 * thread of the P when there is one (one machine switch); only when the P
 * has nothing does it go to the carrier's scheduler context, a loop on the
 * carrier's own OS stack that runs timers, steals, and finally idles.
 *
 * A thread that switches away cannot requeue itself or release the lock it
 * parks under: another carrier could resume it while its registers are
 * still being saved. So it leaves an "after" action in its carrier
 * (m->after*), and the next context to run on that carrier performs it,
 * once the previous thread is off its stack (weft__after_switch).
 *
 * Idle carriers. A carrier that finds no work spins for a short while
 * (waking a sleeping carrier costs tens of microseconds on small VMs), then
 * gives back its P and sleeps on its futex word. Making a thread runnable
 * wakes a sleeping carrier only when there is an idle P and no carrier is
 * spinning already (weft__wakep). The race between a carrier going idle and
 * a thread being queued is closed Dekker-style: the queuer publishes the
 * thread, then reads npidle; the idler publishes npidle, then re-checks
 * every queue (both seq_cst).
 *
 * Timers. Running carriers fire due timers of their own P right after each
 * switch (never inside one: see take_local) and of every P in the scheduler
 * loop. One sleeping carrier, the timer waiter,
 * sleeps only until the earliest timer; arming an earlier timer kicks it.
 *
 * The monitor (monitor.c) watches each P's stamp, which its carrier bumps
 * whenever it starts running a thread. A carrier whose P it marked stuck
 * notices at its next switch: it goes to its scheduler loop instead of the
 * next thread, and gives the P up there (weft__proc_retire).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "base/futex.h"
#include "base/real.h"
#include "sched/poll.h"
#include "sched/sched.h"
#include "sched/fiber.h"
#include "sched/runq.h"
#include "sched/trace.h"

struct weft__sched weft__S;
struct weft__poll_ops weft__poll;
_Atomic uint32_t weft__fd_waiters;

__thread weft__carrier *weft__tls_m __attribute__((tls_model("initial-exec")));

WEFT_NOIPA weft__carrier *weft__m(void)
{
    __asm__ volatile("" ::: "memory");
    return weft__tls_m;
}

WEFT_NOIPA void weft__set_m(weft__carrier *m)
{
    weft__tls_m = m;
    if (m)
        m->errno_loc = &errno;
}

weft_thread *weft__g(void)
{
    weft__carrier *m = weft__m();
    return m ? m->cur : NULL;
}

WEFT_NOIPA int *weft__errno_ptr(void)
{
    __asm__ volatile("" ::: "memory");
    return &errno;
}

#ifndef WEFT_NO_ERRNO_ACCESSOR
#error "libweft's sources keep glibc's errno (base/compiler.h)"
#endif

/* weft.h's errno for programs: weft__errno_ptr under its public name, a
 * separate function so that libweft's own calls to weft__errno_ptr stay
 * direct (no PLT). noipa (and the asm) keep the compiler, even with LTO,
 * from finding it const as __errno_location is. */
WEFT_NOIPA int *weft_errno_location(void)
{
    __asm__ volatile("" ::: "memory");
    return &errno;
}

#ifndef SPIN_NS
#define SPIN_NS 50000            /* how long an idle carrier looks for work */
#endif
/* A thread a running thread has just woken sits in its waker's runnext:
 * thieves leave it there this long. Go waits 3 us; here a carrier's wake-up
 * costs ~30 us and moving a producer/consumer pair apart costs every message
 * a cross-core lock transfer (B4 went from ~50 to ~22 ns per message), so
 * the wait is longer, still well under the cost of waking a carrier. */
#define STEAL_RUNNEXT_NS 12000
#define GLOBAL_FAIRNESS 61       /* check the global queue first this often */
#define IO_IDLE_RECHECK_NS 50000000 /* see idle_in_poller */
#define IO_SPIN_POLL_EVERY 4     /* a spinning carrier polls I/O this often
                                    (rounds of its steal loop) */
#define IO_POLL_EVERY 61         /* a busy carrier polls its I/O port this
                                    often (in switches) */
#define STEAL_PAUSES 128         /* pause instructions between steal rounds */
#define DEADLOCK_GRACE_NS 500000000 /* see deadlock.c */

static uint32_t fastrand(weft__proc *p)
{
    p->rand ^= p->rand << 13;
    p->rand ^= p->rand >> 7;
    p->rand ^= p->rand << 17;
    return (uint32_t)p->rand;
}

/* ------------------------------------------------------------ wake-ups */

/* Runs on: any thread. Ends m's idle wait, in its futex word or in its
 * I/O port (the port's kick: see io/poller.c for the pairing). */
void weft__carrier_wake(weft__carrier *m)
{
    atomic_store_explicit(&m->wake_word, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&m->in_poll, memory_order_seq_cst))
        weft__poll.kick(m);
    else
        weft__futex_wake(&m->wake_word, 1);
}

/* Runs on: any thread. Wakes an idle carrier if there is an idle P and no
 * carrier is already looking for work. Returns false if there was an idle P
 * but no idle carrier to give it to (the monitor then starts one). */
bool weft__wakep(void)
{
    /* seq_cst: the queuer's half of the Dekker pair with an idling carrier
     * (see top of file); the thread it queued is already published. */
    if (!atomic_load_explicit(&weft__S.npidle, memory_order_seq_cst))
        return true;
    uint32_t zero = 0;
    if (atomic_load_explicit(&weft__S.nmspinning, memory_order_relaxed) ||
        !atomic_compare_exchange_strong_explicit(&weft__S.nmspinning, &zero, 1,
                                                 memory_order_seq_cst,
                                                 memory_order_relaxed))
        return true;
    weft__spin_lock(&weft__S.lock);
    weft__carrier *m = weft__S.idle_m;
    weft__proc *p = weft__S.idle_p;
    if (!m || !p) {
        weft__spin_unlock(&weft__S.lock);
        atomic_fetch_sub_explicit(&weft__S.nmspinning, 1, memory_order_seq_cst);
        if (p) /* every carrier busy or stuck: the monitor starts one */
            weft__monitor_poke();
        return !p;
    }
    weft__S.idle_m = m->idle_next;
    weft__S.nidle_m--;
    weft__S.idle_epoch++;
    weft__S.idle_p = p->idle_next;
    atomic_fetch_sub_explicit(&weft__S.npidle, 1, memory_order_seq_cst);
    m->idle = false;
    m->nextp = p;
    p->m = m;
    m->spinning = true;
    weft__spin_unlock(&weft__S.lock);
    weft__carrier_wake(m);
    return true;
}

/* Runs on: p's owner. Records that it starts running a thread (bits
 * WEFT__STAMP_IN_G), or went back to its scheduler loop (0). A plain
 * load and store: the monitor only reads it. */
static inline void stamp(weft__proc *p, uint64_t bits)
{
    uint64_t s = atomic_load_explicit(&p->stamp, memory_order_relaxed);
    atomic_store_explicit(&p->stamp, ((s + 4) & ~(uint64_t)3) | bits,
                          memory_order_relaxed);
}

static inline bool handed_off(weft__proc *p)
{
    return unlikely(atomic_load_explicit(&p->stuck, memory_order_relaxed));
}

/* Runs on: a virtual thread about to make a blocking call the runtime
 * cannot park it in. If the call lasts, the monitor hands the P off. */
void weft__blocking_enter(void)
{
    weft__carrier *m = weft__m();
    if (m && m->p)
        stamp(m->p, WEFT__STAMP_IN_G | WEFT__STAMP_BLOCKING);
}

/* Runs on: the same thread, back from the call. If its P was handed off
 * meanwhile, it queues itself and leaves the carrier to the spares. */
void weft__blocking_leave(void)
{
    weft__carrier *m = weft__m();
    if (!m || !m->p)
        return;
    stamp(m->p, WEFT__STAMP_IN_G);
    /* A thread holding a pthread lock stays (foreign/locks.c): it runs on
     * as a hog would, and the P goes at its next switch. */
    if (handed_off(m->p) && !m->cur->plocks)
        weft__switch_out_on(m, m->cur, WEFT__AFTER_YIELD, NULL);
}

/* Runs on: any thread. Queues a runnable thread: on the caller's P (in
 * runnext, so it runs next, near its waker) or, with no P, globally.
 * Threads woken by timers go to the back instead: a batch of expired
 * timers must wake its threads in deadline order, and runnext would
 * reverse it. */
void weft__ready(weft_thread *g)
{
    weft__carrier *m = weft__m_here(); /* never parks */
    /* A forked child wakes a thread of its parent (an object they share):
     * no carrier will ever run it here (fork.c). */
    if (unlikely(!m) && weft__forked_child)
        return;
    WEFT__TRACE(weft__trace_wake(g));
    atomic_store_explicit(&g->state, WEFT__G_RUNNABLE, memory_order_relaxed);
    if (unlikely(g->bound)) {
        weft__bound_ready(g);
        return;
    }
    if (m && m->p)
        weft__runq_put(m->p, g, !m->firing_timers);
    else
        weft__globq_put(g);
    weft__wakep();
}

static void enqueue_on(weft__carrier *m, weft_thread *g)
{
    atomic_store_explicit(&g->state, WEFT__G_RUNNABLE, memory_order_relaxed);
    /* Read once: once queued, g may run elsewhere and bind itself. */
    bool bound = g->bound != NULL;
    if (unlikely(bound))
        weft__bound_ready(g);
    else if (m && m->p)
        weft__runq_put(m->p, g, false);
    else
        weft__globq_put(g);
    if (likely(!bound))
        weft__wakep();
}

/* A yielding thread goes back on its own P: no other carrier needs waking
 * for it, since this one is about to run something. */
static void requeue_yielded(weft__carrier *m, weft_thread *g)
{
    atomic_store_explicit(&g->state, WEFT__G_RUNNABLE, memory_order_relaxed);
    if (likely(m->p && !g->bound))
        weft__runq_put(m->p, g, false);
    else
        enqueue_on(m, g);
}

/* Runs on: any thread. Queues g at the back, for yields and new threads. */
void weft__enqueue(weft_thread *g)
{
    enqueue_on(weft__m(), g);
}

/* Runs on: the spawning virtual thread. Queues a new thread; if the P's
 * queue holds WEFT__SPAWN_BACKLOG threads already, the spawner first lets
 * the queued threads run.
 * This is back pressure on spawn storms: a loop spawning a million threads
 * holds a few hundred records and stacks at a time, hot in this P's caches,
 * instead of a million in the global queue. */
void weft__enqueue_spawned(weft_thread *g)
{
    weft__carrier *m = weft__m();
    weft__proc *p = m->p;
    if (p && !m->cur->plocks &&
        atomic_load_explicit(&p->tail, memory_order_relaxed) -
                atomic_load_explicit(&p->head, memory_order_relaxed) >=
            WEFT__SPAWN_BACKLOG) {
        weft__switch_out_on(m, m->cur, WEFT__AFTER_YIELD, NULL);
        m = weft__m();
    }
    enqueue_on(m, g);
}

/* Runs on: any thread. The timer waiter sleeps until later than `when`:
 * wake it so that it sleeps again with the new deadline. */
void weft__timer_waiter_kick(int64_t when)
{
    /* INT64_MIN when no carrier waits for timers. */
    if (when >= atomic_load_explicit(&weft__S.timer_wait_until,
                                     memory_order_seq_cst))
        return;
    weft__spin_lock(&weft__S.lock);
    weft__carrier *m = weft__S.timer_waiter;
    if (m) {
        weft__S.timer_waiter = NULL;
        atomic_store_explicit(&weft__S.timer_wait_until, INT64_MIN,
                              memory_order_release);
    }
    weft__spin_unlock(&weft__S.lock);
    if (m)
        weft__carrier_wake(m);
}

/* ------------------------------------------------------------ switching */

/* Runs on: owner of m->p. The next thread to run from the P's own queues
 * (and, now and then or when they are empty, the global queue). Fires no
 * timers: it runs inside a switch, where the thread switching out may
 * still hold the lock it parks under, and a timer's callback (a scope
 * deadline) may need that very lock. Timers fire after the switch. */
static weft_thread *take_local(weft__carrier *m)
{
    weft__proc *p = m->p;
    weft_thread *g = weft__bound_take(m);
    if (unlikely(g))
        return g;
    if (unlikely(--p->fairness == 0)) {
        p->fairness = GLOBAL_FAIRNESS;
        g = weft__globq_get(p);
    }
    if (!g)
        g = weft__runq_get(p);
    if (!g)
        g = weft__globq_get(p);
    return g;
}

static inline void check_stack(weft__carrier *m, weft_thread *g)
{
    if (unlikely(!g->stack->map) && !weft__stack_canary_ok(g->stack))
        weft__canary_overwritten(m, g);
}

/* Runs on: g, switching out. The thread to switch to directly, or NULL
 * to go through the scheduler loop. Under TSan, a thread whose stack has
 * no fiber yet is left to the loop (m->fiber_next): making one takes
 * milliseconds, which must not be counted as a thread's running time by
 * the monitor (it would hand the P off). */
static weft_thread *next_in_switch(weft__carrier *m)
{
    weft_thread *g = take_local(m);
    if (g && unlikely(weft__fiber_missing(g->stack->tsan_fiber))) {
        m->fiber_next = g;
        return NULL;
    }
    return g;
}

/* Runs on: m's scheduler context. The thread a switch left for the loop,
 * if m may still run it; else it goes back to the queues. */
static weft_thread *take_fiber_next(weft__carrier *m)
{
    weft_thread *g = m->fiber_next;
    if (likely(!g))
        return NULL;
    m->fiber_next = NULL;
    if (!m->p || handed_off(m->p) ||
        atomic_load_explicit(&weft__S.done, memory_order_acquire)) {
        weft__globq_put(g);
        weft__wakep();
        return NULL;
    }
    return g;
}

/* Runs on: g, on its own stack, on carrier m. Switches to the next thread
 * of the P, or to the scheduler loop; `after` is done once g is off its
 * stack (see top of file). Returns when g runs again, possibly on another
 * carrier. */
void weft__switch_out_on(weft__carrier *m, weft_thread *g,
                         weft__after_kind after, weft__spinlock *lk)
{
    /* In compact mode a thread's stack is too small for the runtime's own
     * slow paths (running timers): always go through
     * the scheduler loop, which runs on the carrier's OS stack. A carrier
     * whose P was handed off goes there too, to give it up. */
    weft__proc *p = m->p;
    weft_thread *next = NULL;
    WEFT__TRACE(weft__trace_switch_out(m, g, after));
    if (likely(p)) {
        if (handed_off(p))
            weft__hog_seen(m, g);
        else if (!weft__S.compact)
            next = next_in_switch(m);
        stamp(p, next ? WEFT__STAMP_IN_G : 0);
    }
    check_stack(m, g);
    m->after = after;
    m->after_g = g;
    m->after_lock = lk;
    g->saved_errno = *m->errno_loc;
    void **save = after == WEFT__AFTER_EXIT ? NULL : &g->asan_fake;
    if (next) {
        WEFT__TRACE(weft__trace_run(m, next));
        __atomic_store_n(&m->cur, next, __ATOMIC_RELAXED); /* dump.c */
        atomic_store_explicit(&next->state, WEFT__G_RUNNING,
                              memory_order_relaxed);
        weft__fiber_leave(save, next->stack->lo, next->stack->size,
                          next->stack->tsan_fiber);
        weft__ctx_switch(&g->ctx, &next->ctx);
    } else {
        __atomic_store_n(&m->cur, NULL, __ATOMIC_RELAXED);
        weft__fiber_leave(save, m->stack_lo, m->stack_size, m->tsan_fiber);
        weft__ctx_switch(&g->ctx, &m->sched_ctx);
    }
    /* Resumed, maybe on another carrier: re-read everything thread-local. */
    weft__fiber_arrive(g->asan_fake);
    weft__carrier *now_on = weft__m();
    if (unlikely(g->bound))
        weft__bound_resumed(g, now_on);
    weft__after_switch_on(now_on);
    /* Last: the after action, timers and I/O polling may set errno. */
    *now_on->errno_loc = g->saved_errno;
}

void weft__switch_out(weft_thread *g, weft__after_kind after,
                      weft__spinlock *lk)
{
    weft__switch_out_on(weft__m_here(), g, after, lk);
}

/* A batch of finished children may wait only while the thread now running
 * belongs to the same scope (see thread.c: finish_detached). */
static inline void flush_finished(weft__carrier *m)
{
    if (unlikely(m->fin_count) && !(m->cur && m->cur->home == m->fin_scope))
        weft__finish_flush(m);
}

static void fire_own_timers(weft__carrier *m)
{
    weft__proc *p = m->p;
    if (unlikely(weft__S.compact) && m->cur)
        return; /* not on a compact stack: the scheduler loop fires them */
    if (unlikely(!p) || likely(atomic_load_explicit(&p->timer_next,
                                                  memory_order_relaxed) ==
                             INT64_MAX))
        return;
    m->firing_timers = true;
    weft__timers_run(p, weft_now());
    m->firing_timers = false;
}

/* A busy carrier delivers its port's I/O events every so many switches,
 * so that threads whose fd became ready do not wait for its queue to run
 * dry. */
static inline void poll_io_sometimes(weft__carrier *m)
{
    if (likely(++m->io_countdown < IO_POLL_EVERY))
        return;
    m->io_countdown = 0;
    if (!(weft__S.compact && m->cur) && m->p)
        weft__poll.fetch(m);
}

/* Runs on: the context that has just been switched to, on carrier m. Does
 * the previous thread's after action, then fires the P's due timers (now
 * that no lock of the previous thread is held). */
void weft__after_switch_on(weft__carrier *m)
{
    weft__after_kind after = m->after;
    if (after == WEFT__AFTER_NONE) {
        flush_finished(m);
        fire_own_timers(m);
        poll_io_sometimes(m);
        return;
    }
    weft_thread *g = m->after_g;
    m->after = WEFT__AFTER_NONE;
    switch (after) {
    case WEFT__AFTER_NONE:
        break;
    case WEFT__AFTER_PARK:
        weft__park_commit(g);
        if (m->after_lock)
            weft__spin_unlock(m->after_lock);
        break;
    case WEFT__AFTER_YIELD:
        requeue_yielded(m, g);
        break;
    case WEFT__AFTER_EXIT:
        weft__thread_finish(m, g);
        break;
    }
    flush_finished(m);
    fire_own_timers(m);
    poll_io_sometimes(m);
}

void weft__after_switch(void)
{
    weft__after_switch_on(weft__m());
}

/* ------------------------------------------------------- scheduler loop */

static void stop_spinning(weft__carrier *m)
{
    if (!m->spinning)
        return;
    m->spinning = false;
    /* The last spinner to find work wakes another carrier: there may be
     * more work than one carrier can take. */
    if (atomic_fetch_sub_explicit(&weft__S.nmspinning, 1,
                                  memory_order_seq_cst) == 1)
        weft__wakep();
}

static bool try_spin(weft__carrier *m)
{
    if (m->spinning)
        return true;
    /* P's in circulation: nprocs, plus one per stuck carrier. */
    int64_t busy = (int64_t)weft__S.nprocs +
        atomic_load_explicit(&weft__S.nstuck, memory_order_relaxed) -
        atomic_load_explicit(&weft__S.npidle, memory_order_relaxed);
    /* Go's rule: at most half the busy P's' carriers spin at once. */
    if (2 * (int64_t)atomic_load_explicit(&weft__S.nmspinning,
                                          memory_order_relaxed) >= busy)
        return false;
    m->spinning = true;
    atomic_fetch_add_explicit(&weft__S.nmspinning, 1, memory_order_seq_cst);
    return true;
}

/* A victim's runnext is the thread its running thread just woke: it will
 * most likely run there within microseconds (a message exchange). A thief
 * takes it only if the same thread has sat there for STEAL_RUNNEXT_NS. */
static weft_thread *steal_runnext(weft__carrier *m, weft__proc *victim,
                                  int64_t now)
{
    uint32_t put = atomic_load_explicit(&victim->runnext_puts,
                                        memory_order_relaxed);
    weft_thread *g = atomic_load_explicit(&victim->runnext,
                                          memory_order_acquire);
    if (!g)
        return NULL;
    /* A stuck P's runnext would wait for nothing. */
    if (handed_off(victim))
        goto take;
    if (g != m->seen_runnext || put != m->seen_runnext_put) {
        m->seen_runnext = g;
        m->seen_runnext_put = put;
        m->seen_runnext_at = now;
        return NULL;
    }
    if (now - m->seen_runnext_at < STEAL_RUNNEXT_NS)
        return NULL;
take:
    m->seen_runnext = NULL;
    if (!atomic_compare_exchange_strong_explicit(&victim->runnext, &g, NULL,
                                                 memory_order_acq_rel,
                                                 memory_order_relaxed))
        return NULL;
    return g;
}

/* Runnexts are read a few times per grace period, not at every round:
 * a thread handing messages on writes its runnext at each one, and each
 * read of ours would cost it a cache miss at its next. */
static bool runnext_look_due(weft__carrier *m, int64_t now)
{
    if (now - m->runnext_looked_at < STEAL_RUNNEXT_NS / 4)
        return false;
    m->runnext_looked_at = now;
    return true;
}

static weft_thread *steal(weft__carrier *m, int64_t now)
{
    weft__proc *p = m->p;
    uint32_t n = weft__nallp();
    uint32_t start = fastrand(p) % n;
    bool look_runnext = runnext_look_due(m, now);
    for (uint32_t i = 0; i < n; i++) {
        weft__proc *victim = &weft__S.procs[(start + i) % n];
        if (victim == p)
            continue;
        weft_thread *g = weft__runq_steal(p, victim);
        if (!g && look_runnext)
            g = steal_runnext(m, victim, now);
        if (g) {
            WEFT__TRACE(weft__trace_steal(m, g, victim));
            return g;
        }
    }
    return NULL;
}

bool weft__work_anywhere(void)
{
    if (atomic_load_explicit(&weft__S.gq_size, memory_order_seq_cst))
        return true;
    for (uint32_t i = 0, n = weft__nallp(); i < n; i++)
        if (!weft__runq_empty(&weft__S.procs[i]))
            return true;
    for (uint32_t i = 0, n = atomic_load(&weft__S.ncarriers); i < n; i++)
        if (weft__bound_pending(weft__S.carriers[i]))
            return true;
    return false;
}

static void run_all_timers(weft__carrier *m)
{
    int64_t now = weft_now();
    m->firing_timers = true;
    for (uint32_t i = 0, n = weft__nallp(); i < n; i++)
        weft__timers_run(&weft__S.procs[i], now);
    m->firing_timers = false;
}

/* Under the scheduler lock: gives m an idle P if there is one. */
static bool take_idle_p_locked(weft__carrier *m)
{
    weft__proc *p = weft__S.idle_p;
    if (!p)
        return false;
    weft__S.idle_p = p->idle_next;
    atomic_fetch_sub_explicit(&weft__S.npidle, 1, memory_order_seq_cst);
    p->m = m;
    m->p = p;
    return true;
}

static void remove_idle_m_locked(weft__carrier *m)
{
    for (weft__carrier **pp = &weft__S.idle_m; *pp; pp = &(*pp)->idle_next)
        if (*pp == m) {
            *pp = m->idle_next;
            break;
        }
    m->idle = false;
    weft__S.nidle_m--;
    weft__S.idle_epoch++;
}

/* Leaves the idle state: takes the P a waker handed over, or an idle P. */
static void leave_idle(weft__carrier *m)
{
    atomic_store_explicit(&m->idling, false, memory_order_relaxed);
    weft__spin_lock(&weft__S.lock);
    if (weft__S.timer_waiter == m) {
        weft__S.timer_waiter = NULL;
        atomic_store_explicit(&weft__S.timer_wait_until, INT64_MIN,
                              memory_order_release);
    }
    if (m->idle) {
        remove_idle_m_locked(m);
        take_idle_p_locked(m);
    } else {
        m->p = m->nextp;
        m->nextp = NULL;
    }
    weft__spin_unlock(&weft__S.lock);
    weft__monitor_kick();
}

/* A deadlock is suspected when it looks like one (deadlock.c), and
 * confirmed when it still does a grace period later with no carrier having
 * woken in between. Several idle carriers may suspect it at once: only the
 * first to confirm it declares it. */
static bool deadlock_check(uint64_t *epoch, bool confirm)
{
    weft__spin_lock(&weft__S.lock);
    bool yes = weft__deadlock_suspected() && !weft__work_anywhere() &&
               (!confirm || (*epoch == weft__S.idle_epoch &&
                             !weft__S.deadlocked));
    if (yes && confirm)
        weft__S.deadlocked = true;
    *epoch = weft__S.idle_epoch;
    weft__spin_unlock(&weft__S.lock);
    return yes;
}

/* Runs on: any thread, weft__S.done set: the carriers and the monitor
 * return. */
void weft__wake_all(void)
{
    for (uint32_t i = 0; i < weft__S.ncarriers; i++)
        weft__carrier_wake(weft__S.carriers[i]);
    weft__monitor_poke();
}

static void idle_in_futex(weft__carrier *m, int64_t until)
{
    while (!atomic_load_explicit(&m->wake_word, memory_order_acquire) &&
           !atomic_load(&weft__S.done)) {
        if (until >= 0 && weft_now() >= until)
            break;
        weft__futex_wait(&m->wake_word, 0, until);
    }
}

/* Returns the port holding events, if the wait ended with some. */
static weft__port *idle_in_poller(weft__carrier *m, int64_t until,
                                  bool orphans)
{
    weft__port *events = NULL;
    atomic_store_explicit(&m->in_poll, true, memory_order_seq_cst);
    while (!events &&
           !atomic_load_explicit(&m->wake_word, memory_order_seq_cst) &&
           !atomic_load(&weft__S.done)) {
        if (until >= 0 && weft_now() >= until)
            break;
        /* A carrier that ended (monitor.c: a demoted one) left its port
         * with nobody waiting in it: while threads wait on fds, idle
         * carriers look at every port every IO_IDLE_RECHECK_NS. Else
         * they sleep until woken: an idle runtime makes no wake-up. */
        int64_t bound = until;
        if (orphans && weft__fd_waiting() &&
            (bound < 0 || bound > weft_now() + IO_IDLE_RECHECK_NS))
            bound = weft_now() + IO_IDLE_RECHECK_NS;
        events = weft__poll.wait(m, bound, &m->wake_word);
        if (!events && bound != until)
            break; /* leave idle and look for work */
    }
    atomic_store_explicit(&m->in_poll, false, memory_order_relaxed);
    return events;
}

/* Gives back m's P and sleeps until a waker hands one over, the earliest
 * timer is due (if m is the timer waiter), I/O events arrive (if m waits
 * in the poller), or the runtime stops. */
static void idle(weft__carrier *m)
{
    weft__spin_lock(&weft__S.lock);
    if (m->p && handed_off(m->p)) { /* find_runnable retires it first */
        weft__spin_unlock(&weft__S.lock);
        return;
    }
    if (m->p) {
        m->p->m = NULL;
        m->p->idle_next = weft__S.idle_p;
        weft__S.idle_p = m->p;
        m->p = NULL;
        atomic_fetch_add_explicit(&weft__S.npidle, 1, memory_order_seq_cst);
    }
    if (m->spinning) {
        m->spinning = false;
        atomic_fetch_sub_explicit(&weft__S.nmspinning, 1, memory_order_seq_cst);
    }
    m->idle = true;
    m->idle_next = weft__S.idle_m;
    weft__S.idle_m = m;
    weft__S.nidle_m++;
    atomic_store_explicit(&m->wake_word, 0, memory_order_relaxed);
    /* seq_cst: pairs with weft__bound_ready, which queues, then reads
     * idling; we set idling, then look at our bound queue below. */
    atomic_store_explicit(&m->idling, true, memory_order_seq_cst);
    bool orphans = weft__S.nexited != 0; /* see idle_in_poller */
    bool timer_waiter = !weft__S.timer_waiter;
    if (timer_waiter) {
        weft__S.timer_waiter = m;
        /* seq_cst: Dekker pair with weft__timer_waiter_kick's caller, which
         * pushes its timer, then reads timer_wait_until. */
        atomic_store_explicit(&weft__S.timer_wait_until, INT64_MAX,
                              memory_order_seq_cst);
    }
    weft__spin_unlock(&weft__S.lock);
    /* The idler's half of the Dekker pair: npidle and nmspinning are
     * published; work queued before that is seen here, work queued after
     * it finds an idle P and calls for a carrier. Work seen while no P is
     * idle is left to the carriers holding the P's (one giving its P up
     * sees it here): leaving would only find no P and come back, a spin
     * that steals their CPU. */
    if (atomic_load(&weft__S.done) || weft__bound_pending(m) ||
        (atomic_load_explicit(&weft__S.npidle, memory_order_seq_cst) &&
         weft__work_anywhere())) {
        leave_idle(m);
        return;
    }
    weft__stacks_trim();
    int64_t until = -1;
    uint64_t epoch = 0;
    bool suspect = false;
    if (timer_waiter) {
        until = weft__timers_next();
        /* A CAS, not a store: a kick that came meanwhile took m off the
         * waiter's post (INT64_MIN) and woke it; a deadline written over
         * that would turn later kicks away while nobody waits. */
        int64_t unset = INT64_MAX;
        if (until >= 0)
            atomic_compare_exchange_strong_explicit(
                &weft__S.timer_wait_until, &unset, until,
                memory_order_seq_cst, memory_order_relaxed);
    }
    if (until < 0 && (suspect = deadlock_check(&epoch, false)))
        until = weft_now() + DEADLOCK_GRACE_NS;
    weft__port *events = NULL;
    WEFT__TRACE(weft__trace_idle(m, true));
    if (weft__poll.idles_in_poller(m, timer_waiter))
        events = idle_in_poller(m, until, orphans);
    else
        idle_in_futex(m, until);
    WEFT__TRACE(weft__trace_idle(m, false));
    if (suspect && !atomic_load_explicit(&m->wake_word, memory_order_acquire)
        && deadlock_check(&epoch, true)) {
        weft__deadlock_declare();
        weft__wake_all();
    }
    leave_idle(m);
    if (events)
        weft__poll.dispatch(events);
}

/* A carrier that ends may have been the timer waiter until it last left
 * idle; carriers that went idle meanwhile wait without a deadline. One of
 * them is woken to idle again, taking the timer waiter's place. */
static void hand_on_timer_waiting(void)
{
    weft__spin_lock(&weft__S.lock);
    weft__carrier *w = weft__S.timer_waiter ? NULL : weft__S.idle_m;
    weft__spin_unlock(&weft__S.lock);
    if (w)
        weft__carrier_wake(w);
}

/* Runs on: m's scheduler context, m holding no P. A thread bound to m
 * that is runnable, with an idle P taken for it if there is one; else it
 * runs without a P (bind.c). */
static weft_thread *bound_without_p(weft__carrier *m)
{
    weft_thread *g = weft__bound_take(m);
    if (!g)
        return NULL;
    weft__spin_lock(&weft__S.lock);
    bool took = take_idle_p_locked(m);
    weft__spin_unlock(&weft__S.lock);
    if (took) /* a P is busy: the monitor watches it */
        weft__monitor_kick();
    stop_spinning(m);
    return g;
}

/* Runs on: m's scheduler context. Returns the next thread to run on m, or
 * NULL when the runtime stops (or m must end: see weft__proc_retire). */
static weft_thread *find_runnable(weft__carrier *m)
{
    weft_thread *pending = take_fiber_next(m);
    if (pending)
        return pending;
    for (;;) {
        if (atomic_load_explicit(&weft__S.done, memory_order_acquire))
            return NULL;
        if (unlikely(m->hog))
            weft__hog_returned(m);
        if (m->p && handed_off(m->p) && weft__proc_retire(m) &&
            !atomic_load_explicit(&m->nbound, memory_order_relaxed)) {
            stop_spinning(m); /* another carrier looks for work instead */
            hand_on_timer_waiting();
            return NULL;      /* demoted for good: this carrier ends */
        }
        if (!m->p) {
            weft_thread *b = bound_without_p(m);
            if (b)
                return b;
            run_all_timers(m);
            idle(m);
            continue;
        }
        run_all_timers(m);
        weft_thread *g = take_local(m);
        if (!g && (weft__poll.fetch(m) || weft__poll.fetch_others(m)))
            g = take_local(m);
        if (g) {
            stop_spinning(m);
            return g;
        }
        if (try_spin(m)) {
            int64_t start = weft_now(), now = start;
            unsigned round = 0;
            do {
                g = steal(m, now);
                if (!g)
                    g = take_local(m);
                /* I/O events count as work found: a spinning carrier
                 * makes no system call, so under io_uring its own ring's
                 * completions wait for it to look. */
                if (!g && (++round % IO_SPIN_POLL_EVERY) == 0 &&
                    (weft__poll.fetch(m) || weft__poll.fetch_others(m)))
                    g = take_local(m);
                if (g) {
                    stop_spinning(m);
                    return g;
                }
                int64_t next_timer = weft__timers_next();
                if (next_timer >= 0 && next_timer <= now)
                    break;
                /* Poll the victims' queues every half microsecond or so,
                 * not in a tight loop: their cache lines are written by
                 * their owners at every switch, and each read of ours
                 * makes the owner's next write a miss. */
                for (int i = 0; i < STEAL_PAUSES; i++)
                    weft__cpu_relax();
                now = weft_now();
            } while (now - start < SPIN_NS &&
                     !atomic_load_explicit(&weft__S.done,
                                           memory_order_relaxed));
            if (g || now - start < SPIN_NS)
                continue;
        }
        idle(m);
    }
}

/* Runs on: m's own OS thread. The scheduler loop. */
void weft__carrier_loop(weft__carrier *m)
{
    for (;;) {
        weft_thread *g = find_runnable(m);
        if (!g)
            return;
        if (unlikely(weft__fiber_missing(g->stack->tsan_fiber)))
            g->stack->tsan_fiber = weft__fiber_create();
        __atomic_store_n(&m->cur, g, __ATOMIC_RELAXED);
        atomic_store_explicit(&g->state, WEFT__G_RUNNING, memory_order_relaxed);
        if (likely(m->p))
            stamp(m->p, WEFT__STAMP_IN_G);
        WEFT__TRACE(weft__trace_run(m, g));
        weft__fiber_leave(&m->fake_stack, g->stack->lo, g->stack->size,
                          g->stack->tsan_fiber);
        weft__ctx_switch(&m->sched_ctx, &g->ctx);
        weft__fiber_arrive(m->fake_stack);
        weft__after_switch_on(m);
    }
}
