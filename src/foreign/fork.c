/* SPDX-License-Identifier: MIT */
/*
 * fork.c — fork(2) while a runtime runs: the child has no runtime.
 *
 * The child of fork has one OS thread, the one that called fork: the
 * other carriers, the monitor, the offload pool, the SIGQUIT dumper and
 * the trace writer stay behind in the parent, and so do every virtual
 * thread but (if a virtual thread forked) the caller. The io_uring rings
 * and the epoll instance are the parent's kernel objects, shared through
 * the inherited fds (a ring's queues through a shared mapping too): a
 * child that submitted to them, waited on them or unregistered an fd
 * there would take events and registrations from the parent.
 *
 * So in the child the runtime is shut off, and the thread that forked
 * goes on as a plain OS thread of a single-threaded process:
 *   - it is no carrier: weft_self() is NULL, libc hooks and "any thread"
 *     calls take their OS-thread paths (a read blocks the thread, on fds
 *     weft made non-blocking too; weft_sleep sleeps; channels,
 *     semaphores and mutexes wait on a futex);
 *   - the poller is dropped without a word to the kernel objects: the
 *     child's copies of their fds are closed and the rings unmapped;
 *   - calls that need a virtual thread or the runtime fail with ECHILD
 *     (sched.h: weft__no_vthread), as do weft_run and a join of a thread
 *     that cannot finish here;
 *   - waking a virtual thread of the parent (an object shared with it)
 *     does nothing: it will never run here (ready.c: weft__ready);
 *   - when the virtual thread that forked returns, the child exits with
 *     its result, as a program returns from main (thread.c).
 * A fresh runtime in the child (new carriers, new rings) was rejected:
 * the forking thread belongs to a tree of scopes whose other threads,
 * its parent and its children, stay behind, so its own end (a nursery
 * waits for its children) could never come.
 *
 * Locks. glibc runs the handlers below around the fork, in the thread
 * that forks (and those of other threads' forks meanwhile). prepare
 * takes the scheduler lock and the record pool's lock, so that the
 * child finds them free with consistent structures; parent and child
 * release them. One still held after a bound (its holder is this very
 * thread, in a signal handler that forks, or another thread's fork under
 * way) is reset in the child instead. The records whose locks any
 * carrier takes and the child may still touch (fd records, pthread lock
 * buckets) are reset in the child: their waiters were the parent's
 * threads. Objects of the program (channels, mutexes, scopes) are as
 * fork found them, as pthread's own objects are: one that another thread
 * was in the middle of using may be left locked.
 *
 * Runs on: glibc's fork, in the thread that forks.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "base/real.h"
#include "foreign/foreign.h"
#include "io/io.h"
#include "sched/trace.h"

/* How long prepare waits for a lock: critical sections under them are
 * sub-microsecond, so one held longer has a holder that cannot go on:
 * this very thread, interrupted by a signal handler that forks, or
 * another thread, holding it across its own fork. The child then resets
 * the lock instead. */
#define LOCK_WAIT_NS 100000000

/* The locks prepare takes, in lock order (sched.h), and which it got:
 * per OS thread, since glibc runs the handlers of one fork in the thread
 * that forks, and those of forks in other threads meanwhile (it holds no
 * lock of its own across them). */
static const struct {
    weft__spinlock *lock;
    weft__lock_class cls;
} locks[] = {
    {&weft__S.lock, WEFT__LOCK_SCHED},
    {&weft__S.g_lock, WEFT__LOCK_RECORDS},
};
#define NLOCKS (sizeof locks / sizeof locks[0])
static __thread bool taken[NLOCKS];
static __thread bool tried;

/* A trylock: no order is checked (base/lockrank.c), the one above is
 * the declared one. */
static bool take(weft__spinlock *l, weft__lock_class cls)
{
    int64_t until = weft_now() + LOCK_WAIT_NS;
    while (!weft__spin_trylock(l, cls)) {
        if (weft_now() > until)
            return false;
        sched_yield();
    }
    return true;
}

static void prepare(void)
{
    if (!atomic_load_explicit(&weft__S.running, memory_order_acquire))
        return;
    tried = true;
    for (size_t i = 0; i < NLOCKS; i++)
        taken[i] = take(locks[i].lock, locks[i].cls);
}

/* in_child: the locks prepare could not take are free too, since their
 * holders stayed behind. */
static void release(bool in_child)
{
    if (!tried)
        return;
    tried = false;
    for (size_t i = NLOCKS; i-- > 0;) {
        if (taken[i])
            weft__spin_unlock(locks[i].lock);
        else if (in_child)
            weft__spin_reset(locks[i].lock);
        taken[i] = false;
    }
}

static void in_parent(void)
{
    release(false);
}

static void in_child(void)
{
    release(true);
    if (!atomic_load(&weft__in_run))
        return;
    weft__forked_child = true;
    weft__set_m(NULL);
    atomic_store_explicit(&weft__S.running, false, memory_order_relaxed);
#ifndef WEFT_NO_TRACE
    weft__tracing = false; /* its writer thread stayed behind */
#endif
    weft__io_forked();
    weft__fd_forked();
    weft__locks_forked();
    weft__dump_signal_forked();
}

static void register_handlers(void)
{
    pthread_atfork(prepare, in_parent, in_child);
}

/* Runs on: weft_run's thread, before the runtime starts. */
void weft__fork_handlers_install(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    weft__real(pthread_once)(&once, register_handlers);
}
