/* SPDX-License-Identifier: MIT */
/*
 * sem.c — weft_sem: counting, polling, time-outs, cancellation, direct
 * handoff to the longest waiter, sharing with plain OS threads, static
 * initialisation, limits.
 */
#include "wt.h"

#include <limits.h>
#include <unistd.h>

#if WT_SANITIZED
#define SLACK_MS 200
#else
#define SLACK_MS 50
#endif

/* ------------------------------------------------------------- counting */

static int root_counting(void *arg)
{
    weft_sem s;
    WT_CHECK_EQ(weft_sem_init(&s, 3), 0);
    for (int i = 0; i < 3; i++)
        WT_CHECK_EQ(weft_sem_acquire(&s), 0);
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_sem_timedacquire(&s, 0), ETIMEDOUT);
    WT_CHECK(wt_own_since(t0) < WT_MS(SLACK_MS));
    WT_CHECK_EQ(weft_sem_release(&s), 0);
    WT_CHECK_EQ(weft_sem_timedacquire(&s, 0), 0);
    WT_CHECK_EQ(weft_sem_timedacquire(&s, 0), ETIMEDOUT);
    return 0;
}

Test(sem, counts_units_and_polls, .timeout = 10)
{
    WT_RUN(root_counting, NULL, .procs = 1);
}

Test(sem, counts_on_os_thread_without_runtime, .timeout = 10)
{
    weft_sem s;
    cr_assert_eq(weft_sem_init(&s, 2), 0);
    cr_assert_eq(weft_sem_acquire(&s), 0);
    cr_assert_eq(weft_sem_timedacquire(&s, 0), 0);
    cr_assert_eq(weft_sem_timedacquire(&s, 0), ETIMEDOUT);
    int64_t t0 = weft_now();
    cr_assert_eq(weft_sem_timedacquire(&s, t0 + WT_MS(10)), ETIMEDOUT);
    cr_assert_geq(weft_now() - t0, WT_MS(10));
    cr_assert_eq(weft_sem_release(&s), 0);
    cr_assert_eq(weft_sem_acquire(&s), 0);
}

/* ---------------------------------------------------------- timedacquire */

static int root_timed(void *arg)
{
    weft_sem s = WEFT_SEM_INIT(0);
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_sem_timedacquire(&s, t0 + WT_MS(20)), ETIMEDOUT);
    int64_t dt = weft_now() - t0;
    WT_CHECK_MSG(dt >= WT_MS(20), "timed out after %lld us",
                 (long long)dt / 1000);
    WT_CHECK_MSG(wt_own_since(t0) < WT_MS(20 + SLACK_MS),
                 "timed out after %lld us", (long long)dt / 1000);
    t0 = wt_mark_now();
    WT_CHECK_EQ(weft_sem_timedacquire(&s, t0 - WT_MS(5)), ETIMEDOUT);
    WT_CHECK(wt_own_since(t0) < WT_MS(SLACK_MS));
    return 0;
}

Test(sem, timedacquire_times_out, .timeout = 10)
{
    WT_RUN(root_timed, NULL, .procs = 1);
}

static int release_after_10ms(void *arg)
{
    weft_sleep(WT_MS(10));
    WT_CHECK_EQ(weft_sem_release(arg), 0);
    return 0;
}

static int root_timed_success(void *arg)
{
    static weft_sem s = WEFT_SEM_INIT(0);
    WT_REQUIRE(wt_go(release_after_10ms, &s) != NULL);
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_sem_timedacquire(&s, t0 + WT_MS(5000)), 0);
    int64_t dt = weft_now() - t0;
    WT_CHECK(dt >= WT_MS(5) && wt_own_since(t0) < WT_MS(1000));
    WT_REQUIRE(wt_go(release_after_10ms, &s) != NULL);
    WT_CHECK_EQ(weft_sem_timedacquire(&s, -1), 0); /* no deadline */
    return 0;
}

Test(sem, timedacquire_gets_unit_released_before_deadline, .timeout = 10)
{
    WT_RUN(root_timed_success, NULL, .procs = 2);
}

/* ---------------------------------------------------------- cancellation */

struct waiter {
    weft_sem *s;
    int rc;
    atomic_int started;
};

static int acquire_body(void *arg)
{
    struct waiter *w = arg;
    atomic_store(&w->started, 1);
    w->rc = weft_sem_acquire(w->s);
    return w->rc == 0 ? 0 : w->rc;
}

static int root_cancel(void *arg)
{
    static weft_sem s = WEFT_SEM_INIT(0);
    struct waiter w = {&s, -1, 0};
    weft_thread *t = wt_go(acquire_body, &w);
    WT_REQUIRE(t != NULL);
    WT_CHECK(wt_yield_until(&w.started, 100000000L));
    WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_cancel(t), 0);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK(wt_own_since(t0) < WT_MS(SLACK_MS));
    WT_CHECK_EQ(w.rc, ECANCELED);
    WT_CHECK_EQ(r, ECANCELED);
    /* the cancelled waiter took nothing: a release is still available */
    WT_CHECK_EQ(weft_sem_release(&s), 0);
    WT_CHECK_EQ(weft_sem_timedacquire(&s, 0), 0);
    return 0;
}

Test(sem, acquire_returns_ecanceled_when_thread_cancelled, .timeout = 10)
{
    WT_RUN(root_cancel, NULL, .procs = 2);
}

static int root_cancel_scope(void *arg)
{
    static weft_sem s = WEFT_SEM_INIT(0);
    struct waiter w[3];
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < 3; i++) {
        w[i] = (struct waiter){&s, -1, 0};
        WT_REQUIRE(wt_go(acquire_body, &w[i]) != NULL);
    }
    WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    weft_scope_cancel(sc);
    WT_CHECK_EQ(weft_sem_acquire(&s), ECANCELED); /* the owner, too */
    WT_CHECK_EQ(weft_scope_close(sc), ECANCELED);
    for (int i = 0; i < 3; i++)
        WT_CHECK_EQ(w[i].rc, ECANCELED);
    return 0;
}

Test(sem, acquire_returns_ecanceled_when_scope_cancelled, .timeout = 10)
{
    WT_RUN(root_cancel_scope, NULL, .procs = 2);
}

static int root_sem_deadline(void *arg)
{
    weft_sem s = WEFT_SEM_INIT(0);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_scope_deadline(sc, weft_now() + WT_MS(10));
    WT_CHECK_EQ(weft_sem_acquire(&s), ETIMEDOUT);
    WT_CHECK_EQ(weft_sem_timedacquire(&s, weft_now() + WT_MS(5000)),
                ETIMEDOUT);
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    return 0;
}

Test(sem, acquire_returns_etimedout_at_scope_deadline, .timeout = 10)
{
    WT_RUN(root_sem_deadline, NULL, .procs = 1);
}

/* A release racing a cancellation is never lost: every unit released is
 * either taken by a waiter that returned 0 or still in the semaphore. */
struct race {
    weft_sem s;
    atomic_int taken;
};

static int race_waiter(void *arg)
{
    struct race *r = arg;
    int rc = weft_sem_acquire(&r->s);
    if (rc == 0)
        atomic_fetch_add(&r->taken, 1);
    else
        WT_CHECK_EQ(rc, ECANCELED);
    return 0;
}

static int root_release_vs_cancel(void *arg)
{
    static struct race r;
    for (int round = 0; round < 200; round++) {
        weft_sem_init(&r.s, 0);
        atomic_store(&r.taken, 0);
        weft_scope *sc = weft_scope_open();
        WT_REQUIRE(sc != NULL);
        for (int i = 0; i < 4; i++)
            WT_REQUIRE(wt_go(race_waiter, &r) != NULL);
        weft_yield();
        WT_CHECK_EQ(weft_sem_release(&r.s), 0);
        WT_CHECK_EQ(weft_sem_release(&r.s), 0);
        weft_scope_cancel(sc);
        weft_scope_close(sc);
        int left = 0;
        while (weft_sem_timedacquire(&r.s, 0) == 0)
            left++;
        if (atomic_load(&r.taken) + left != 2) {
            WT_CHECK_MSG(0, "round %d: %d taken + %d left != 2 released",
                         round, atomic_load(&r.taken), left);
            break;
        }
    }
    return 0;
}

Test(sem, release_racing_cancel_loses_no_unit, .timeout = 30)
{
    WT_RUN(root_release_vs_cancel, NULL, .procs = 2);
}

/* ------------------------------------------ direct handoff, FIFO waiters */

static atomic_int g_order_seq;
static int g_order[3];
static weft_sem g_fifo = WEFT_SEM_INIT(0);

static atomic_int g_fifo_started;

static int fifo_waiter(void *arg)
{
    int id = (int)(intptr_t)arg;
    atomic_fetch_add(&g_fifo_started, 1);
    WT_REQUIRE_EQ(weft_sem_acquire(&g_fifo), 0);
    g_order[atomic_fetch_add(&g_order_seq, 1)] = id;
    return 0;
}

static int root_fifo(void *arg)
{
    for (int i = 0; i < 3; i++) {
        WT_REQUIRE(wt_go(fifo_waiter, (void *)(intptr_t)i) != NULL);
        /* It has started (which can take ms under TSan), then it is
         * queued before the next. */
        while (atomic_load(&g_fifo_started) <= i)
            WT_CHECK_EQ(weft_sleep(WT_MS(1)), 0);
        WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    }
    for (int i = 0; i < 3; i++) {
        WT_CHECK_EQ(weft_sem_release(&g_fifo), 0);
        /* direct handoff: the unit went to the waiter, not back to s */
        WT_CHECK_EQ(weft_sem_timedacquire(&g_fifo, 0), ETIMEDOUT);
        WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    }
    return 0;
}

Test(sem, release_hands_unit_to_longest_waiter, .timeout = 10)
{
    WT_RUN(root_fifo, NULL, .procs = 2);
    cr_assert_eq(atomic_load(&g_order_seq), 3);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(g_order[i], i, "wake %d went to waiter %d", i,
                     g_order[i]);
}

/* ------------------------------------------ as a lock, under contention */

struct guarded {
    weft_sem s;
    long value;
    atomic_int inside;
    atomic_int overlap;
};

static int sem_incr(void *arg)
{
    struct guarded *g = arg;
    for (int i = 0; i < 2000; i++) {
        WT_REQUIRE_EQ(weft_sem_acquire(&g->s), 0);
        if (atomic_fetch_add(&g->inside, 1) != 0)
            atomic_fetch_add(&g->overlap, 1);
        long v = g->value;
        if (i % 50 == 0)
            weft_yield();
        g->value = v + 1;
        atomic_fetch_sub(&g->inside, 1);
        WT_REQUIRE_EQ(weft_sem_release(&g->s), 0);
    }
    return 0;
}

static struct guarded g_guarded = {WEFT_SEM_INIT(1), 0, 0, 0};

static int root_sem_lock(void *arg)
{
    for (int i = 0; i < 32; i++)
        WT_REQUIRE(wt_go(sem_incr, &g_guarded) != NULL);
    return 0;
}

Test(sem, binary_semaphore_excludes_under_contention, .timeout = 60)
{
    WT_RUN(root_sem_lock, NULL, .procs = 2);
    cr_assert_eq(g_guarded.value, 32L * 2000);
    cr_assert_eq(atomic_load(&g_guarded.overlap), 0);
}

/* ------------------------------------ handoff with a plain pthread */

#define ROUNDS 2000

struct pingpong {
    weft_sem ping;   /* virtual thread -> pthread */
    weft_sem pong;   /* pthread -> virtual thread */
    long os_seen;    /* written by the pthread */
    int os_errors;
};

static void *os_pong(void *arg)
{
    struct pingpong *p = arg;
    for (int i = 0; i < ROUNDS; i++) {
        if (weft_sem_acquire(&p->ping) != 0)
            p->os_errors++;
        p->os_seen++;
        if (weft_sem_release(&p->pong) != 0)
            p->os_errors++;
    }
    return NULL;
}

static int root_pingpong(void *arg)
{
    static struct pingpong p;
    weft_sem_init(&p.ping, 0);
    weft_sem_init(&p.pong, 0);
    p.os_seen = 0;
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_pong, &p), 0);
    for (int i = 0; i < ROUNDS; i++) {
        WT_REQUIRE_EQ(weft_sem_release(&p.ping), 0);
        WT_REQUIRE_EQ(weft_sem_acquire(&p.pong), 0);
        WT_REQUIRE_EQ(p.os_seen, i + 1);
    }
    pthread_join(pt, NULL);
    WT_CHECK_EQ(p.os_errors, 0);
    return 0;
}

Test(sem, handoff_between_pthread_and_virtual_thread_one_proc, .timeout = 30)
{
    WT_RUN(root_pingpong, NULL, .procs = 1);
}

Test(sem, handoff_between_pthread_and_virtual_thread_two_procs,
     .timeout = 30)
{
    WT_RUN(root_pingpong, NULL, .procs = 2);
}

/* A pthread and several virtual threads increment a counter under one
 * weft_mutex, and hand a token around through one weft_sem. */
struct shared {
    weft_mutex m;
    weft_sem token;
    long counter;
    int os_errors;
};

static void *os_shared(void *arg)
{
    struct shared *sh = arg;
    for (int i = 0; i < 5000; i++) {
        if (weft_mutex_lock(&sh->m) != 0)
            sh->os_errors++;
        sh->counter++;
        if (weft_mutex_unlock(&sh->m) != 0)
            sh->os_errors++;
        if (i % 10 == 0) {
            if (weft_sem_acquire(&sh->token) != 0)
                sh->os_errors++;
            if (weft_sem_release(&sh->token) != 0)
                sh->os_errors++;
        }
    }
    return NULL;
}

static int vt_shared(void *arg)
{
    struct shared *sh = arg;
    for (int i = 0; i < 5000; i++) {
        WT_REQUIRE_EQ(weft_mutex_lock(&sh->m), 0);
        sh->counter++;
        WT_REQUIRE_EQ(weft_mutex_unlock(&sh->m), 0);
        if (i % 10 == 0) {
            WT_REQUIRE_EQ(weft_sem_acquire(&sh->token), 0);
            weft_yield();
            WT_REQUIRE_EQ(weft_sem_release(&sh->token), 0);
        }
    }
    return 0;
}

static int root_shared(void *arg)
{
    static struct shared sh = {WEFT_MUTEX_INIT, WEFT_SEM_INIT(1), 0, 0};
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_shared, &sh), 0);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < 4; i++)
        WT_REQUIRE(wt_go(vt_shared, &sh) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    pthread_join(pt, NULL);
    WT_CHECK_EQ(sh.os_errors, 0);
    WT_CHECK_EQ(sh.counter, 5L * 5000);
    WT_CHECK_EQ(weft_sem_timedacquire(&sh.token, 0), 0);
    WT_CHECK_EQ(weft_sem_timedacquire(&sh.token, 0), ETIMEDOUT);
    return 0;
}

Test(sem, mutex_and_sem_shared_by_pthread_and_virtual_threads,
     .timeout = 30)
{
    WT_RUN(root_shared, NULL, .procs = 2);
}

/* ---------------------------------------------------------- static init */

static weft_sem g_static = WEFT_SEM_INIT(2);

static int root_static(void *arg)
{
    WT_CHECK_EQ(weft_sem_timedacquire(&g_static, 0), 0);
    WT_CHECK_EQ(weft_sem_acquire(&g_static), 0);
    WT_CHECK_EQ(weft_sem_timedacquire(&g_static, 0), ETIMEDOUT);
    WT_CHECK_EQ(weft_sem_release(&g_static), 0);
    WT_CHECK_EQ(weft_sem_timedacquire(&g_static, 0), 0);
    return 0;
}

Test(sem, static_initializer_holds_n_units, .timeout = 10)
{
    WT_RUN(root_static, NULL, .procs = 1);
}

Test(sem, static_zero_initializer, .timeout = 10)
{
    static weft_sem z = WEFT_SEM_INIT(0);
    cr_assert_eq(weft_sem_timedacquire(&z, 0), ETIMEDOUT);
    cr_assert_eq(weft_sem_release(&z), 0);
    cr_assert_eq(weft_sem_timedacquire(&z, 0), 0);
}

/* ---------------------------------------------------------------- limits */

Test(sem, init_and_release_limits, .timeout = 10)
{
    weft_sem s;
    cr_assert_eq(weft_sem_init(NULL, 0), EINVAL);
    cr_assert_eq(weft_sem_init(&s, (unsigned)INT32_MAX + 1u), EINVAL);
    cr_assert_eq(weft_sem_init(&s, INT32_MAX), 0);
    cr_assert_eq(weft_sem_release(&s), EOVERFLOW);
    cr_assert_eq(weft_sem_timedacquire(&s, 0), 0);
    cr_assert_eq(weft_sem_release(&s), 0);
    cr_assert_eq(weft_sem_release(NULL), EINVAL);
    cr_assert_eq(weft_sem_acquire(NULL), EINVAL);
    cr_assert_eq(weft_sem_timedacquire(NULL, 0), EINVAL);
}
