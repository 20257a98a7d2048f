/* SPDX-License-Identifier: MIT */
/*
 * switch.c — switching between virtual threads on a carrier, and the work
 * the next context does once the previous thread is off its stack.
 *
 * Switching away from a thread (park, yield, exit) goes straight to the
 * next runnable thread of the P when there is one (one machine switch);
 * only when the P has nothing does it go to the carrier's scheduler
 * context, a loop on the carrier's own OS stack (loop.c).
 *
 * A thread that switches away cannot requeue itself or release the lock it
 * parks under: another carrier could resume it while its registers are
 * still being saved. So it leaves an "after" action in its carrier
 * (m->after*), and the next context to run on that carrier performs it,
 * once the previous thread is off its stack (weft__after_switch).
 *
 * Timers. Running carriers fire due timers of their own P right after each
 * switch (never inside one: see weft__pick_local), with m->wake_fifo set
 * so that the threads they wake keep their deadline order.
 *
 * The monitor (monitor.c) watches each P's stamp, which its carrier bumps
 * whenever it starts running a thread. A carrier whose P it marked stuck
 * notices at its next switch: it goes to its scheduler loop instead of the
 * next thread, and gives the P up there (weft__proc_retire).
 *
 * Runs on: the thread switching out, then the context switched to, both
 * on the same carrier m; nothing here takes the scheduler lock.
 */
#include "sched/bind.h"
#include "sched/carrier.h"
#include "sched/fiber.h"
#include "sched/monitor.h"
#include "sched/park.h"
#include "sched/pick.h"
#include "sched/poll.h"
#include "sched/stack.h"
#include "sched/timer.h"
#include "sched/trace.h"

#define IO_POLL_EVERY 61         /* a busy carrier polls its I/O port this
                                    often (in switches) */

/* Runs on: a virtual thread about to make a blocking call the runtime
 * cannot park it in. If the call lasts, the monitor hands the P off. */
void weft__blocking_enter(void)
{
    weft__carrier *m = weft__m();
    if (m && m->p)
        weft__proc_stamp(m->p, WEFT__STAMP_IN_G | WEFT__STAMP_BLOCKING);
}

/* Runs on: the same thread, back from the call. If its P was handed off
 * meanwhile, it queues itself and leaves the carrier to the spares. */
void weft__blocking_leave(void)
{
    weft__carrier *m = weft__m();
    if (!m || !m->p)
        return;
    weft__proc_stamp(m->p, WEFT__STAMP_IN_G);
    /* A thread holding a pthread lock stays (foreign/locks.c): it runs on
     * as a hog would, and the P goes at its next switch. */
    if (weft__proc_handed_off(m->p) && !m->cur->plocks)
        weft__switch_out_on(m, m->cur, WEFT__AFTER_YIELD, NULL);
}

/* A yielding thread goes back on its own P: no other carrier needs waking
 * for it, since this one is about to run something. */
static inline __attribute__((always_inline)) void requeue_yielded(
    weft__carrier *m, weft_thread *g)
{
    atomic_store_explicit(&g->state, WEFT__G_RUNNABLE, memory_order_relaxed);
    if (likely(m->p && !g->bound))
        weft__runq_put_tail(m->p, g);
    else
        weft__enqueue_on(m, g);
}

static inline void check_stack(weft__carrier *m, weft_thread *g)
{
    if (unlikely(!g->stack->map) && !weft__stack_canary_ok(g->stack))
        weft__canary_overwritten(m, g);
}

static inline __attribute__((always_inline)) void after_switch(
    weft__carrier *m);

/* Runs on: g, switching out. The thread to switch to directly, or NULL
 * to go through the scheduler loop. Under TSan, a thread whose stack has
 * no fiber yet is left to the loop (m->fiber_next): making one takes
 * milliseconds, which must not be counted as a thread's running time by
 * the monitor (it would hand the P off). */
static weft_thread *next_in_switch(weft__carrier *m)
{
    weft_thread *g = weft__pick_local(m);
    if (g && unlikely(weft__fiber_missing(g->stack->tsan_fiber))) {
        m->fiber_next = g;
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
    weft__lockrank_switching(lk);
    weft__proc *p = m->p;
    weft_thread *next = NULL;
    WEFT__TRACE(weft__trace_switch_out(m, g, after));
    if (likely(p)) {
        if (weft__proc_handed_off(p))
            weft__hog_seen(m, g);
        else if (!weft__S.compact)
            next = next_in_switch(m);
        weft__proc_stamp(p, next ? WEFT__STAMP_IN_G : 0);
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
    after_switch(now_on);
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
    m->wake_fifo = true;
    weft__timers_run(p, weft_now());
    m->wake_fifo = false;
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
 * that no lock of the previous thread is held). Inline in the switch,
 * which runs it on every park and yield, as is the yield's requeue. */
static inline __attribute__((always_inline)) void after_switch(
    weft__carrier *m)
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

void weft__after_switch_on(weft__carrier *m)
{
    after_switch(m);
}

void weft__after_switch(void)
{
    weft__after_switch_on(weft__m());
}
