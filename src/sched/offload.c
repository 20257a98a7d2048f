/* SPDX-License-Identifier: MIT */
/*
 * offload.c — weft_offload: blocking calls run on a pool of OS threads
 * while the calling virtual thread is parked.
 *
 * A call is a job on the heap, with the caller's waiter inside it: the
 * caller may be cancelled and leave while a pool thread still runs fn, so
 * the job must outlive the caller's frame. Its phase decides who has the
 * last word, each step a CAS:
 *   QUEUED  -> RUNNING    a pool thread takes it
 *   QUEUED  -> ABANDONED  the caller left first: fn never runs
 *   RUNNING -> ABANDONED  the caller left while fn ran: the pool thread
 *                         drops the result and frees the job
 *   RUNNING -> DONE       fn returned first: the pool thread wakes the
 *                         caller, then sets released
 * Once DONE, the caller (woken, or cancelled too late) takes the result
 * and waits for released before freeing the job: so a pool thread never
 * touches a thread record after its wait is over, and never one of a
 * runtime that has ended.
 *
 * The pool is the process's, shared by successive runtimes: a thread is
 * started whenever queued jobs outnumber idle threads, up to `max`
 * (WEFT_OFFLOAD_THREADS, read once per runtime); idle ones wait on a
 * condition variable and exit after IDLE_EXIT_S, or when weft_run ends (a
 * generation count; any thread takes any job). They are detached: weft_run
 * does not wait for abandoned calls to return.
 *
 * While a caller waits for its call, the runtime is not deadlocked:
 * `waiting` counts those callers (not the jobs: an abandoned call that
 * never returns must not keep deadlock detection off).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "base/fault.h"
#include "sched/carrier.h"
#include "sched/offload.h"
#include "sched/park.h"
#include "base/real.h"

#define DEFAULT_MAX 64u
#define IDLE_EXIT_S 10

enum { QUEUED, RUNNING, ABANDONED, DONE };

typedef struct job {
    struct job *next;            /* in the pool's queue; pool lock */
    weft_fn fn;
    void *arg;
    void (*drop)(void *arg);     /* disposes of arg if abandoned; or NULL */
    int result;                  /* written before DONE */
    _Atomic int phase;
    _Atomic bool released;       /* the pool thread let go (after DONE) */
    weft__waiter w;
} job;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work;
    job *head, *tail;
    uint64_t gen;                /* bumped when a runtime ends */
    int max;                     /* -1: not read yet for this runtime */
    unsigned threads, idle, busy, queued;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
          NULL, NULL, 0, -1, 0, 0, 0, 0};

static _Atomic unsigned waiting; /* callers parked in weft_offload */

static unsigned env_max(void)
{
    const char *v = getenv("WEFT_OFFLOAD_THREADS");
    if (!v || !*v)
        return DEFAULT_MAX;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    return *end || n > 4096 ? DEFAULT_MAX : (unsigned)n;
}

static void free_abandoned(job *j)
{
    if (j->drop)
        j->drop(j->arg);
    free(j);
}

/* Runs on: a pool thread, without the pool lock (or weft_run's thread at
 * shutdown, for abandoned jobs). */
static void run_phases(job *j)
{
    int expect = QUEUED;
    if (!atomic_compare_exchange_strong_explicit(&j->phase, &expect, RUNNING,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)) {
        free_abandoned(j); /* abandoned before it ran */
        return;
    }
    j->result = j->fn(j->arg);
    expect = RUNNING;
    /* acq_rel: result is published with DONE. */
    if (!atomic_compare_exchange_strong_explicit(&j->phase, &expect, DONE,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)) {
        free_abandoned(j); /* abandoned while it ran: result dropped */
        return;
    }
    weft__wake(&j->w, WEFT__CASE);
    /* release: nothing of ours touches the job after this. */
    atomic_store_explicit(&j->released, true, memory_order_release);
}


/* Holds: pool.lock. Waits for a job; NULL: time to go (idle too long, or
 * the runtime that started this thread ended). */
static job *next_job(uint64_t gen)
{
    while (!pool.head) {
        if (gen != pool.gen)
            return NULL;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += IDLE_EXIT_S;
        pool.idle++;
        int err = weft__real(pthread_cond_timedwait)(&pool.work, &pool.lock, &ts);
        pool.idle--;
        if (err == ETIMEDOUT && !pool.head)
            return NULL;
    }
    job *j = pool.head;
    pool.head = j->next;
    if (!pool.head)
        pool.tail = NULL;
    pool.queued--;
    return j;
}

static void *pool_main(void *arg)
{
    uint64_t gen = (uint64_t)(uintptr_t)arg;
    weft__real(pthread_mutex_lock)(&pool.lock);
    for (job *j; (j = next_job(gen));) {
        pool.busy++;
        weft__real(pthread_mutex_unlock)(&pool.lock);
        run_phases(j);
        weft__real(pthread_mutex_lock)(&pool.lock);
        pool.busy--;
    }
    pool.threads--;
    weft__real(pthread_mutex_unlock)(&pool.lock);
    return NULL;
}

/* Holds: pool.lock, about to queue a job. Starts a pool thread if queued
 * jobs would outnumber idle threads (an idle thread counts as idle until
 * it wakes, so the queue's length is what tells) and the pool may grow.
 * Returns false if the job would wait for a thread that never comes. */
static bool staff(void)
{
    if (pool.idle > pool.queued || pool.threads >= (unsigned)pool.max)
        return pool.threads > 0;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int err = weft__pthread_create(&t, &a, pool_main,
                                   (void *)(uintptr_t)pool.gen);
    pthread_attr_destroy(&a);
    if (err)
        return pool.threads > 0;
    pool.threads++;
    return true;
}

/* Queues j. Returns 0, or EAGAIN if no pool thread can run it. */
static int submit(job *j)
{
    weft__real(pthread_mutex_lock)(&pool.lock);
    if (!staff()) {
        weft__real(pthread_mutex_unlock)(&pool.lock);
        return EAGAIN;
    }
    j->next = NULL;
    if (pool.tail)
        pool.tail->next = j;
    else
        pool.head = j;
    pool.tail = j;
    pool.queued++;
    weft__real(pthread_cond_signal)(&pool.work);
    weft__real(pthread_mutex_unlock)(&pool.lock);
    return 0;
}

/* 0 in WEFT_OFFLOAD_THREADS: fn runs here, the carrier marked as blocked
 * so that the monitor hands its other threads to a spare. */
static int run_marked(weft_fn fn, void *arg)
{
    weft__blocking_enter();
    int r = fn(arg);
    weft__blocking_leave();
    return r;
}

static int pool_max(void)
{
    weft__real(pthread_mutex_lock)(&pool.lock);
    if (pool.max < 0)
        pool.max = (int)env_max();
    int max = pool.max;
    weft__real(pthread_mutex_unlock)(&pool.lock);
    return max;
}

/* The caller's wait ended with r: settles the job with the pool thread and
 * returns what weft_offload returns; *done tells whether fn's result it is
 * (else the job is the pool thread's to drop). */
static int settle(job *j, int r, bool *done)
{
    int phase = atomic_load_explicit(&j->phase, memory_order_acquire);
    while (phase != DONE) {
        if (atomic_compare_exchange_weak_explicit(&j->phase, &phase, ABANDONED,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            return r; /* the pool thread frees the job */
    }
    *done = true;
    /* DONE: fn returned, and its result stands even if r is a
     * cancellation that came too late. The pool thread is at most a wake
     * away from letting go. */
    for (unsigned spins = 0;
         !atomic_load_explicit(&j->released, memory_order_acquire); spins++) {
        if (spins < 64)
            weft__cpu_relax();
        else
            weft_yield();
    }
    r = j->result;
    free(j);
    return r;
}

int weft__offload_owned(weft_fn fn, void *arg, void (*drop)(void *arg),
                        bool *done)
{
    *done = false;
    if (!weft__g() || pool_max() == 0) {
        *done = true;
        return weft__g() ? run_marked(fn, arg) : fn(arg);
    }
    job *j = weft__calloc(1, sizeof *j);
    if (!j) {
        if (drop)
            drop(arg);
        return ENOMEM;
    }
    j->fn = fn;
    j->arg = arg;
    j->drop = drop;
    int r = weft__wait_begin(&j->w, WEFT__WAIT_INTERRUPTIBLE,
                             WEFT__WAIT_OFFLOAD, (const void *)(uintptr_t)fn);
    if (r) {
        free_abandoned(j);
        return r;
    }
    atomic_fetch_add_explicit(&waiting, 1, memory_order_relaxed);
    r = submit(j);
    if (r) {
        int claimed = weft__wait_abort(&j->w);
        free_abandoned(j);
        r = claimed ? claimed : r;
    } else {
        r = settle(j, weft__wait_block(&j->w, NULL, -1), done);
    }
    atomic_fetch_sub_explicit(&waiting, 1, memory_order_release);
    return r;
}

int weft_offload(weft_fn fn, void *arg)
{
    if (!fn)
        return EINVAL;
    bool done;
    return weft__offload_owned(fn, arg, NULL, &done);
}

/* Runs on: weft_run's thread, every virtual thread finished. Jobs still
 * queued were abandoned by their callers; pool threads of this runtime
 * leave once idle. */
void weft__offload_shutdown(void)
{
    weft__real(pthread_mutex_lock)(&pool.lock);
    job *j = pool.head;
    pool.head = pool.tail = NULL;
    pool.queued = 0;
    pool.gen++;
    pool.max = -1;
    weft__real(pthread_cond_broadcast)(&pool.work);
    weft__real(pthread_mutex_unlock)(&pool.lock);
    while (j) {
        job *next = j->next;
        run_phases(j); /* abandoned: only frees it */
        j = next;
    }
}

bool weft__offload_in_flight(void)
{
    return atomic_load_explicit(&waiting, memory_order_acquire) != 0;
}

void weft__offload_counts(unsigned *threads, unsigned *busy)
{
    weft__real(pthread_mutex_lock)(&pool.lock);
    *threads = pool.threads;
    *busy = pool.busy;
    weft__real(pthread_mutex_unlock)(&pool.lock);
}
