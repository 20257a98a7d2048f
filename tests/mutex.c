/* SPDX-License-Identifier: MIT */
/*
 * mutex.c — weft_mutex: mutual exclusion under contention, trylock,
 * misuse, ownership (only the holder unlocks), sharing with plain OS
 * threads, static initialisation, not a cancellation point.
 */
#include "wt.h"

#include <unistd.h>

#if WT_SANITIZED
#define WORKERS 16
#define ITERS 2000
#else
#define WORKERS 64
#define ITERS 10000
#endif

struct counter {
    weft_mutex m;
    long value;          /* guarded by m */
    atomic_int inside;   /* threads inside the critical section */
    atomic_int overlap;  /* times two were inside at once */
};

static void critical(struct counter *c, int i)
{
    if (atomic_fetch_add(&c->inside, 1) != 0)
        atomic_fetch_add(&c->overlap, 1);
    long v = c->value;
    if (i % 64 == 0)
        weft_yield(); /* park while holding: others must wait */
    c->value = v + 1;
    atomic_fetch_sub(&c->inside, 1);
}

static int incr_body(void *arg)
{
    struct counter *c = arg;
    for (int i = 0; i < ITERS; i++) {
        WT_REQUIRE_EQ(weft_mutex_lock(&c->m), 0);
        critical(c, i);
        WT_REQUIRE_EQ(weft_mutex_unlock(&c->m), 0);
    }
    return 0;
}

static int root_contention(void *arg)
{
    struct counter *c = arg;
    for (int i = 0; i < WORKERS; i++)
        WT_REQUIRE(wt_go(incr_body, c) != NULL);
    return 0;
}

static struct counter g_counter;

Test(mutex, mutual_exclusion_under_contention_two_procs, .timeout = 60)
{
    WT_RUN(root_contention, &g_counter, .procs = 2);
    cr_assert_eq(g_counter.value, (long)WORKERS * ITERS);
    cr_assert_eq(atomic_load(&g_counter.overlap), 0);
}

Test(mutex, mutual_exclusion_under_contention_one_proc, .timeout = 60)
{
    WT_RUN(root_contention, &g_counter, .procs = 1);
    cr_assert_eq(g_counter.value, (long)WORKERS * ITERS);
    cr_assert_eq(atomic_load(&g_counter.overlap), 0);
}

/* ---------------------------------------------------------------- trylock */

static int g_trylock_rc = -1;

static int trylock_other(void *arg)
{
    g_trylock_rc = weft_mutex_trylock(arg);
    return 0;
}

static int root_trylock(void *arg)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    WT_CHECK_EQ(weft_mutex_trylock(&m), 0);
    WT_CHECK_EQ(weft_mutex_trylock(&m), EBUSY);
    weft_thread *t = wt_go(trylock_other, &m);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(g_trylock_rc, EBUSY);
    WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
    WT_CHECK_EQ(weft_mutex_trylock(&m), 0);
    WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
    return 0;
}

Test(mutex, trylock_on_held_mutex_is_ebusy, .timeout = 10)
{
    WT_RUN(root_trylock, NULL, .procs = 2);
}

Test(mutex, trylock_on_os_thread, .timeout = 10)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    cr_assert_eq(weft_mutex_trylock(&m), 0);
    cr_assert_eq(weft_mutex_trylock(&m), EBUSY);
    cr_assert_eq(weft_mutex_unlock(&m), 0);
}

/* ------------------------------------------------------------------ misuse */

static int root_misuse(void *arg)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    WT_CHECK_EQ(weft_mutex_unlock(&m), EPERM);
    WT_CHECK_EQ(weft_mutex_lock(&m), 0);
    WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
    WT_CHECK_EQ(weft_mutex_unlock(&m), EPERM);
    WT_CHECK_EQ(weft_mutex_lock(NULL), EINVAL);
    WT_CHECK_EQ(weft_mutex_trylock(NULL), EINVAL);
    WT_CHECK_EQ(weft_mutex_unlock(NULL), EINVAL);
    return 0;
}

Test(mutex, unlock_of_unlocked_is_eperm_and_null_is_einval, .timeout = 10)
{
    WT_RUN(root_misuse, NULL, .procs = 1);
}

Test(mutex, misuse_on_os_thread, .timeout = 10)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    cr_assert_eq(weft_mutex_unlock(&m), EPERM);
    cr_assert_eq(weft_mutex_lock(NULL), EINVAL);
    cr_assert_eq(weft_mutex_unlock(NULL), EINVAL);
    cr_assert_eq(weft_mutex_trylock(NULL), EINVAL);
}

/* ------------------------------------------------------------ ownership */

struct held {
    weft_mutex m;
    int rc_unlock;       /* what the non-owner's unlock returned */
    int rc_trylock;      /* what a trylock returned after it */
};

/* Tries to unlock a mutex another thread holds, then checks it is still
 * held. */
static int unlock_someone_elses(void *arg)
{
    struct held *h = arg;
    h->rc_unlock = weft_mutex_unlock(&h->m);
    h->rc_trylock = weft_mutex_trylock(&h->m);
    return 0;
}

static int root_non_owner_unlock(void *arg)
{
    struct held *h = arg;
    WT_CHECK_EQ(weft_mutex_lock(&h->m), 0);
    weft_thread *t = wt_go(unlock_someone_elses, h);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(h->rc_unlock, EPERM);
    WT_CHECK_EQ(h->rc_trylock, EBUSY);
    WT_CHECK_EQ(weft_mutex_unlock(&h->m), 0); /* the owner still can */
    WT_CHECK_EQ(weft_mutex_unlock(&h->m), EPERM);
    return 0;
}

Test(mutex, unlock_by_another_virtual_thread_is_eperm, .timeout = 10)
{
    static struct held h = {WEFT_MUTEX_INIT, -1, -1};
    WT_RUN(root_non_owner_unlock, &h, .procs = 2);
}

static void *os_unlock_someone_elses(void *arg)
{
    unlock_someone_elses(arg);
    return NULL;
}

/* A virtual thread holds it: an OS thread may not unlock it. */
static int root_os_thread_unlocks(void *arg)
{
    struct held *h = arg;
    WT_CHECK_EQ(weft_mutex_lock(&h->m), 0);
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_unlock_someone_elses, h), 0);
    pthread_join(pt, NULL);
    WT_CHECK_EQ(h->rc_unlock, EPERM);
    WT_CHECK_EQ(h->rc_trylock, EBUSY);
    WT_CHECK_EQ(weft_mutex_unlock(&h->m), 0);
    return 0;
}

Test(mutex, unlock_by_an_os_thread_that_does_not_hold_it_is_eperm,
     .timeout = 10)
{
    static struct held h = {WEFT_MUTEX_INIT, -1, -1};
    WT_RUN(root_os_thread_unlocks, &h, .procs = 1);
}

/* An OS thread holds it: neither another OS thread nor a virtual thread
 * may unlock it. */
Test(mutex, unlock_of_an_os_threads_lock_by_others_is_eperm, .timeout = 10)
{
    static struct held h = {WEFT_MUTEX_INIT, -1, -1};
    cr_assert_eq(weft_mutex_lock(&h.m), 0);
    pthread_t pt;
    cr_assert_eq(pthread_create(&pt, NULL, os_unlock_someone_elses, &h), 0);
    pthread_join(pt, NULL);
    cr_assert_eq(h.rc_unlock, EPERM);
    cr_assert_eq(h.rc_trylock, EBUSY);
    WT_RUN(unlock_someone_elses, &h, .procs = 1);
    cr_assert_eq(h.rc_unlock, EPERM);
    cr_assert_eq(h.rc_trylock, EBUSY);
    cr_assert_eq(weft_mutex_unlock(&h.m), 0);
    cr_assert_eq(weft_mutex_unlock(&h.m), EPERM);
}

/* The owner is the virtual thread, not the carrier it runs on: it still
 * unlocks once it has moved to another carrier (its gettid changes), and
 * the threads it spawns meanwhile, which run on either carrier, never
 * may. */
static atomic_int g_owner_moves;

static int root_owner_moves(void *arg)
{
    struct held *h = arg;
    pid_t first = (pid_t)syscall(SYS_gettid);
    WT_CHECK_EQ(weft_mutex_lock(&h->m), 0);
    int moves = 0;
    for (int i = 0; i < 2000 && moves < 3; i++) {
        weft_thread *t = wt_go(unlock_someone_elses, h);
        WT_REQUIRE(t != NULL);
        WT_CHECK_EQ(weft_sleep(WT_US(200)), 0);
        WT_CHECK_EQ(weft_join(t, NULL), 0);
        WT_CHECK_EQ(h->rc_unlock, EPERM);
        moves += (pid_t)syscall(SYS_gettid) != first;
    }
    atomic_store(&g_owner_moves, moves);
    WT_CHECK_EQ(weft_mutex_unlock(&h->m), 0);
    return 0;
}

Test(mutex, owner_is_the_virtual_thread_not_its_carrier, .timeout = 60)
{
    /* A run in which the owner never moved proves nothing (on a busy
     * machine one in four or so: the other carrier idles, or gets no
     * CPU), and is made again, as bind.c's pinning test does. */
    static struct held h = {WEFT_MUTEX_INIT, -1, -1};
    for (int run = 0; run < 5; run++) {
        atomic_store(&g_owner_moves, 0);
        WT_RUN(root_owner_moves, &h, .procs = 2);
        if (atomic_load(&g_owner_moves) > 0)
            break;
    }
    cr_assert_gt(atomic_load(&g_owner_moves), 0,
                 "the owner never ran on another carrier in 5 runs");
}

static int root_relock(void *arg)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    WT_CHECK_EQ(weft_mutex_lock(&m), 0);
    WT_CHECK_EQ(weft_mutex_lock(&m), EDEADLK);
    WT_CHECK_EQ(weft_mutex_trylock(&m), EBUSY);
    WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
    WT_CHECK_EQ(weft_mutex_unlock(&m), EPERM);
    return 0;
}

Test(mutex, relocking_by_its_owner_is_edeadlk, .timeout = 10)
{
    WT_RUN(root_relock, NULL, .procs = 1);
    weft_mutex m = WEFT_MUTEX_INIT; /* and on an OS thread */
    cr_assert_eq(weft_mutex_lock(&m), 0);
    cr_assert_eq(weft_mutex_lock(&m), EDEADLK);
    cr_assert_eq(weft_mutex_unlock(&m), 0);
}

/* ------------------------------------------- shared with a plain pthread */

#define MIXED_ITERS 20000

struct mixed {
    struct counter c;
    weft_sem to_os;    /* virtual -> OS thread */
    long os_value;     /* OS-thread-side copy, for the handoff check */
    int os_errors;
};

static void *os_incr_main(void *arg)
{
    struct mixed *mx = arg;
    for (int i = 0; i < MIXED_ITERS; i++) {
        if (weft_mutex_lock(&mx->c.m) != 0) {
            mx->os_errors++;
            continue;
        }
        if (atomic_fetch_add(&mx->c.inside, 1) != 0)
            atomic_fetch_add(&mx->c.overlap, 1);
        long v = mx->c.value;
        if (i % 256 == 0)
            sched_yield();
        mx->c.value = v + 1;
        atomic_fetch_sub(&mx->c.inside, 1);
        if (weft_mutex_unlock(&mx->c.m) != 0)
            mx->os_errors++;
    }
    return NULL;
}

static int vt_incr(void *arg)
{
    struct mixed *mx = arg;
    for (int i = 0; i < MIXED_ITERS / 4; i++) {
        WT_REQUIRE_EQ(weft_mutex_lock(&mx->c.m), 0);
        critical(&mx->c, i);
        WT_REQUIRE_EQ(weft_mutex_unlock(&mx->c.m), 0);
    }
    return 0;
}

static int root_mixed(void *arg)
{
    struct mixed *mx = arg;
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_incr_main, mx), 0);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < 4; i++)
        WT_CHECK(wt_go(vt_incr, mx) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    pthread_join(pt, NULL);
    WT_CHECK_EQ(mx->os_errors, 0);
    return 0;
}

static struct mixed g_mixed;

Test(mutex, shared_between_pthread_and_virtual_threads_two_procs,
     .timeout = 60)
{
    WT_RUN(root_mixed, &g_mixed, .procs = 2);
    cr_assert_eq(g_mixed.c.value, 2L * MIXED_ITERS);
    cr_assert_eq(atomic_load(&g_mixed.c.overlap), 0);
}

Test(mutex, shared_between_pthread_and_virtual_threads_one_proc,
     .timeout = 60)
{
    WT_RUN(root_mixed, &g_mixed, .procs = 1);
    cr_assert_eq(g_mixed.c.value, 2L * MIXED_ITERS);
    cr_assert_eq(atomic_load(&g_mixed.c.overlap), 0);
}

/* A virtual thread holds the lock while a pthread waits for it, and the
 * other way round; each side sees the other's writes. */
static void *os_handoff_main(void *arg)
{
    struct mixed *mx = arg;
    for (int i = 0; i < 100; i++) {
        if (weft_sem_acquire(&mx->to_os) != 0)
            mx->os_errors++;
        weft_mutex_lock(&mx->c.m); /* the virtual thread holds it now */
        mx->c.value++;
        mx->os_value = mx->c.value;
        weft_mutex_unlock(&mx->c.m);
    }
    return NULL;
}

static int root_handoff(void *arg)
{
    struct mixed *mx = arg;
    weft_sem_init(&mx->to_os, 0);
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_handoff_main, mx), 0);
    for (int i = 0; i < 100; i++) {
        WT_CHECK_EQ(weft_mutex_lock(&mx->c.m), 0);
        WT_CHECK_EQ(weft_sem_release(&mx->to_os), 0);
        weft_sleep(WT_US(200)); /* the pthread blocks on the lock */
        mx->c.value++;
        WT_CHECK_EQ(weft_mutex_unlock(&mx->c.m), 0);
        /* now the pthread gets the lock; wait for its increment */
        for (int k = 0; k < 1000000; k++) {
            WT_CHECK_EQ(weft_mutex_lock(&mx->c.m), 0);
            long v = mx->c.value;
            WT_CHECK_EQ(weft_mutex_unlock(&mx->c.m), 0);
            if (v == 2L * (i + 1))
                break;
            weft_yield();
        }
    }
    pthread_join(pt, NULL);
    WT_CHECK_EQ(mx->os_errors, 0);
    WT_CHECK_EQ(mx->os_value, 200);
    return 0;
}

Test(mutex, pthread_waits_for_virtual_thread_holder, .timeout = 30)
{
    WT_RUN(root_handoff, &g_mixed, .procs = 1);
    cr_assert_eq(g_mixed.c.value, 200);
}

/* ---------------------------------------------------------- static init */

static weft_mutex g_static_mutex = WEFT_MUTEX_INIT;
static long g_static_value;

static int static_incr(void *arg)
{
    for (int i = 0; i < 1000; i++) {
        WT_REQUIRE_EQ(weft_mutex_lock(&g_static_mutex), 0);
        long v = g_static_value;
        if (i % 100 == 0)
            weft_yield();
        g_static_value = v + 1;
        WT_REQUIRE_EQ(weft_mutex_unlock(&g_static_mutex), 0);
    }
    return 0;
}

static int root_static(void *arg)
{
    for (int i = 0; i < 8; i++)
        WT_REQUIRE(wt_go(static_incr, NULL) != NULL);
    return 0;
}

Test(mutex, static_initializer_works, .timeout = 20)
{
    WT_RUN(root_static, NULL, .procs = 2);
    cr_assert_eq(g_static_value, 8000);
    /* and it is unlocked again */
    cr_assert_eq(weft_mutex_trylock(&g_static_mutex), 0);
    cr_assert_eq(weft_mutex_unlock(&g_static_mutex), 0);
}

/* Only OS threads, no runtime at all. */
static void *os_only_main(void *arg)
{
    for (int i = 0; i < 20000; i++) {
        weft_mutex_lock(&g_static_mutex);
        long v = g_static_value;
        if (i % 1000 == 0)
            sched_yield();
        g_static_value = v + 1;
        weft_mutex_unlock(&g_static_mutex);
    }
    return NULL;
}

Test(mutex, works_between_os_threads_without_runtime, .timeout = 30)
{
    pthread_t pt[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&pt[i], NULL, os_only_main, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(pt[i], NULL);
    cr_assert_eq(g_static_value, 80000);
}

/* ------------------------------------------- lock is not a cancellation point */

static _Atomic int g_holder_unlocked;

static int hold_for_30ms(void *arg)
{
    WT_REQUIRE_EQ(weft_mutex_lock(arg), 0);
    weft_sleep(WT_MS(30));
    atomic_store(&g_holder_unlocked, 1);
    WT_REQUIRE_EQ(weft_mutex_unlock(arg), 0);
    return 0;
}

static int root_lock_in_cancelled_scope(void *arg)
{
    static weft_mutex m = WEFT_MUTEX_INIT;
    weft_thread *h = wt_go(hold_for_30ms, &m);
    WT_REQUIRE(h != NULL);
    /* Wait until h holds the lock (trylock fails), however slow the
     * machine is. */
    while (weft_mutex_trylock(&m) == 0) {
        WT_REQUIRE_EQ(weft_mutex_unlock(&m), 0);
        weft_sleep(WT_MS(1));
    }
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_scope_cancel(sc);
    WT_CHECK_EQ(weft_mutex_lock(&m), 0);
    WT_CHECK_MSG(atomic_load(&g_holder_unlocked),
                 "lock returned while another thread held it");
    WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
    WT_CHECK_EQ(weft_scope_close(sc), ECANCELED);
    WT_CHECK_EQ(weft_join(h, NULL), 0);
    return 0;
}

Test(mutex, lock_is_not_a_cancellation_point, .timeout = 20)
{
    WT_RUN(root_lock_in_cancelled_scope, NULL, .procs = 2);
}
