/* SPDX-License-Identifier: MIT */
/*
 * deadlock.c — ending a run in which no virtual thread can ever run again.
 *
 * The run is deadlocked when every carrier is idle, no thread is queued,
 * no timer is armed, and no OS thread that has used a weft object is
 * alive (it could still release a semaphore or cancel a thread). A false
 * report is worse than none, and an OS thread is only known once it first
 * calls into weft, so the condition must hold for a grace period with no
 * carrier waking meanwhile (weft__S.idle_epoch unchanged) before it is
 * declared.
 * The report names how many threads are blocked and dumps them; weft_run
 * then returns EDEADLK, and the blocked threads are torn down with it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/real.h"
#include "sched/poll.h"
#include "sched/carrier.h"
#include "sched/deadlock.h"
#include "sched/offload.h"
#include "sched/scope.h"
#include "sched/stack.h"
#include "sched/thread.h"
#include "sched/timer.h"
#include "sched/sched.h"
#include "base/real.h"

static pthread_key_t os_key;
static pthread_once_t os_once = PTHREAD_ONCE_INIT;
static _Atomic uint32_t os_threads;     /* registered and alive */
static __thread bool os_registered;     /* plain OS threads only */

static void os_thread_exit(void *unused)
{
    (void)unused;
    atomic_fetch_sub_explicit(&os_threads, 1, memory_order_release);
}

static void make_key(void)
{
    weft__real(pthread_key_create)(&os_key, os_thread_exit);
}

/* Runs on: an OS thread that is not a carrier. */
void weft__os_thread_register(void)
{
    if (os_registered)
        return;
    os_registered = true;
    weft__real(pthread_once)(&os_once, make_key);
    atomic_fetch_add_explicit(&os_threads, 1, memory_order_acq_rel);
    weft__real(pthread_setspecific)(os_key, (void *)1);
}

bool weft__os_threads_alive(void)
{
    return atomic_load_explicit(&os_threads, memory_order_acquire) != 0;
}

/* Holds: the scheduler lock. True when nothing can run now, nor later
 * except through an OS thread weft has not met yet. */
bool weft__deadlock_suspected(void)
{
    return weft__S.nidle_m + weft__S.nexited == weft__S.ncarriers &&
           !atomic_load_explicit(&weft__S.gq_size, memory_order_seq_cst) &&
           weft__timers_next() < 0 && !weft__os_threads_alive() &&
           !weft__offload_in_flight() && !weft__fd_waiting() &&
           weft__live_threads() > 0;
}

/* Runs on: the last idle carrier, the condition having held throughout the
 * grace period. */
void weft__deadlock_declare(void)
{
    unsigned long long n = (unsigned long long)weft__live_threads();
    fprintf(stderr, "weft: all %llu virtual threads are blocked: deadlock\n",
            n);
    fflush(stderr);
    weft_dump(STDERR_FILENO);
    weft__S.root_result = EDEADLK;
    atomic_store_explicit(&weft__S.done, true, memory_order_release);
}

static void free_open_scopes(weft_thread *g)
{
    while (g->cur && g->cur != &g->root) {
        weft_scope *s = g->cur;
        g->cur = s->outer;
        free(s->deadline);
        free(s);
    }
}

/* Runs on: weft_run's thread after a deadlock, every carrier stopped.
 * Gives back what the blocked threads held. */
void weft__abandon_blocked_threads(void)
{
    for (weft_thread *g = weft__S.all_g; g; g = g->all_next) {
        if (g->magic != WEFT__G_MAGIC ||
            atomic_load(&g->state) == WEFT__G_DONE)
            continue;
        free_open_scopes(g);
        weft__locals_release_nodtor(g);
        if (g->keys)
            weft__keys_hooks.drop(g);
        if (g->stack)
            weft__stack_put(NULL, g->stack);
        g->stack = NULL;
    }
}
