/* SPDX-License-Identifier: MIT */
/*
 * cond.c — weft_cond: signal, broadcast, timedwait, cancellation, waiting
 * without the mutex (EPERM), sharing with plain OS threads, static
 * initialisation.
 */
#include "wt.h"

#include <unistd.h>

#if WT_SANITIZED
#define SLACK_MS 200
#else
#define SLACK_MS 50
#endif

struct box {
    weft_mutex m;
    weft_cond c;
    int tokens;        /* guarded by m */
    int generation;    /* guarded by m */
    atomic_int woken;
    atomic_int waiting;
};

/* Waits for a token, consumes it. */
static int take_token(void *arg)
{
    struct box *b = arg;
    WT_REQUIRE_EQ(weft_mutex_lock(&b->m), 0);
    atomic_fetch_add(&b->waiting, 1);
    while (b->tokens == 0)
        WT_REQUIRE_EQ(weft_cond_wait(&b->c, &b->m), 0);
    b->tokens--;
    atomic_fetch_add(&b->woken, 1);
    WT_REQUIRE_EQ(weft_mutex_unlock(&b->m), 0);
    return 0;
}

static int root_signal(void *arg)
{
    static struct box b = {WEFT_MUTEX_INIT, WEFT_COND_INIT, 0, 0, 0, 0};
    enum { N = 5 };
    weft_thread *t[N];
    for (int i = 0; i < N; i++)
        WT_REQUIRE((t[i] = wt_go(take_token, &b)) != NULL);
    while (atomic_load(&b.waiting) < N)
        weft_yield();
    for (int i = 0; i < N; i++) {
        WT_CHECK_EQ(weft_mutex_lock(&b.m), 0);
        b.tokens++;
        WT_CHECK_EQ(weft_cond_signal(&b.c), 0);
        WT_CHECK_EQ(weft_mutex_unlock(&b.m), 0);
        /* each signal lets exactly one more thread through, eventually */
        for (int k = 0; k < 1000000 && atomic_load(&b.woken) < i + 1; k++)
            weft_yield();
        WT_CHECK_EQ(atomic_load(&b.woken), i + 1);
    }
    for (int i = 0; i < N; i++)
        WT_CHECK_EQ(weft_join(t[i], NULL), 0);
    return 0;
}

Test(cond, signal_wakes_waiters_one_token_at_a_time, .timeout = 20)
{
    WT_RUN(root_signal, NULL, .procs = 2);
}

Test(cond, signal_one_proc, .timeout = 20)
{
    WT_RUN(root_signal, NULL, .procs = 1);
}

/* Waits until the generation changes. */
static int wait_generation(void *arg)
{
    struct box *b = arg;
    WT_REQUIRE_EQ(weft_mutex_lock(&b->m), 0);
    int gen = b->generation;
    atomic_fetch_add(&b->waiting, 1);
    while (b->generation == gen)
        WT_REQUIRE_EQ(weft_cond_wait(&b->c, &b->m), 0);
    atomic_fetch_add(&b->woken, 1);
    WT_REQUIRE_EQ(weft_mutex_unlock(&b->m), 0);
    return 0;
}

static int root_broadcast(void *arg)
{
    static struct box b = {WEFT_MUTEX_INIT, WEFT_COND_INIT, 0, 0, 0, 0};
    enum { N = 10 };
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < N; i++)
        WT_REQUIRE(wt_go(wait_generation, &b) != NULL);
    while (atomic_load(&b.waiting) < N)
        weft_yield();
    WT_CHECK_EQ(atomic_load(&b.woken), 0);
    WT_CHECK_EQ(weft_mutex_lock(&b.m), 0);
    b.generation++;
    WT_CHECK_EQ(weft_cond_broadcast(&b.c), 0);
    WT_CHECK_EQ(weft_mutex_unlock(&b.m), 0);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    WT_CHECK_EQ(atomic_load(&b.woken), N);
    return 0;
}

Test(cond, broadcast_wakes_all, .timeout = 20)
{
    WT_RUN(root_broadcast, NULL, .procs = 2);
}

static int root_signal_nobody(void *arg)
{
    weft_cond c = WEFT_COND_INIT;
    WT_CHECK_EQ(weft_cond_signal(&c), 0);
    WT_CHECK_EQ(weft_cond_broadcast(&c), 0);
    WT_CHECK_EQ(weft_cond_signal(NULL), EINVAL);
    WT_CHECK_EQ(weft_cond_broadcast(NULL), EINVAL);
    weft_mutex m = WEFT_MUTEX_INIT;
    WT_CHECK_EQ(weft_cond_wait(NULL, &m), EINVAL);
    WT_CHECK_EQ(weft_cond_wait(&c, NULL), EINVAL);
    WT_CHECK_EQ(weft_cond_timedwait(NULL, &m, -1), EINVAL);
    WT_CHECK_EQ(weft_cond_timedwait(&c, NULL, -1), EINVAL);
    return 0;
}

Test(cond, signal_without_waiters_and_null_args, .timeout = 10)
{
    WT_RUN(root_signal_nobody, NULL, .procs = 1);
}

/* ------------------------------------------------ waiting without the mutex */

struct foreign_hold {
    weft_mutex m;
    weft_sem held, done;
};

/* Holds m until told to let go. */
static int hold_until_done(void *arg)
{
    struct foreign_hold *f = arg;
    WT_REQUIRE_EQ(weft_mutex_lock(&f->m), 0);
    WT_REQUIRE_EQ(weft_sem_release(&f->held), 0);
    WT_REQUIRE_EQ(weft_sem_acquire(&f->done), 0);
    WT_REQUIRE_EQ(weft_mutex_unlock(&f->m), 0);
    return 0;
}

/* Each wait must fail at once with EPERM and leave m as it was. The scope
 * deadline turns a wait that wrongly blocks into a quick failure. */
static int root_wait_without_mutex(void *arg)
{
    static struct foreign_hold f = {WEFT_MUTEX_INIT, WEFT_SEM_INIT(0),
                                    WEFT_SEM_INIT(0)};
    weft_cond c = WEFT_COND_INIT;
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    int64_t t0 = weft_now();
    weft_scope_deadline(sc, t0 + WT_MS(300));
    WT_CHECK_EQ(weft_cond_timedwait(&c, &f.m, t0 + WT_MS(200)), EPERM);
    WT_CHECK_EQ(weft_cond_wait(&c, &f.m), EPERM);
    WT_CHECK_EQ(weft_mutex_trylock(&f.m), 0); /* not left locked */
    WT_CHECK_EQ(weft_mutex_unlock(&f.m), 0);
    weft_thread *t = wt_go(hold_until_done, &f);
    WT_REQUIRE(t != NULL);
    WT_REQUIRE_EQ(weft_sem_acquire(&f.held), 0);
    WT_CHECK_EQ(weft_cond_timedwait(&c, &f.m, t0 + WT_MS(200)), EPERM);
    WT_CHECK_EQ(weft_cond_wait(&c, &f.m), EPERM);
    WT_CHECK_EQ(weft_mutex_trylock(&f.m), EBUSY); /* still the other's */
    WT_CHECK(weft_now() - t0 < WT_MS(SLACK_MS));
    WT_CHECK_EQ(weft_sem_release(&f.done), 0);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    return 0;
}

Test(cond, wait_without_holding_the_mutex_is_eperm, .timeout = 20)
{
    WT_RUN(root_wait_without_mutex, NULL, .procs = 2);
}

Test(cond, wait_without_holding_the_mutex_on_os_thread_is_eperm,
     .timeout = 20)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_cond c = WEFT_COND_INIT;
    int64_t t0 = weft_now();
    cr_assert_eq(weft_cond_timedwait(&c, &m, t0 + WT_MS(200)), EPERM);
    cr_assert_lt(weft_now() - t0, WT_MS(SLACK_MS));
    cr_assert_eq(weft_mutex_trylock(&m), 0); /* not left locked */
    cr_assert_eq(weft_mutex_unlock(&m), 0);
}

/* ------------------------------------------------------------- timedwait */

static int root_timedwait(void *arg)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_cond c = WEFT_COND_INIT;
    WT_CHECK_EQ(weft_mutex_lock(&m), 0);
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_cond_timedwait(&c, &m, t0 + WT_MS(20)), ETIMEDOUT);
    int64_t dt = weft_now() - t0;
    WT_CHECK_MSG(dt >= WT_MS(20), "timed out after %lld us",
                 (long long)dt / 1000);
    WT_CHECK_MSG(wt_own_since(t0) < WT_MS(20 + SLACK_MS),
                 "timed out after %lld us", (long long)dt / 1000);
    /* m is held again */
    WT_CHECK_EQ(weft_mutex_trylock(&m), EBUSY);

    /* a deadline in the past times out at once */
    t0 = wt_mark_now();
    WT_CHECK_EQ(weft_cond_timedwait(&c, &m, t0 - 1), ETIMEDOUT);
    WT_CHECK_EQ(weft_cond_timedwait(&c, &m, 0), ETIMEDOUT);
    WT_CHECK(wt_own_since(t0) < WT_MS(SLACK_MS));
    WT_CHECK_EQ(weft_mutex_trylock(&m), EBUSY);
    WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
    return 0;
}

Test(cond, timedwait_times_out_and_relocks, .timeout = 20)
{
    WT_RUN(root_timedwait, NULL, .procs = 1);
}

struct timed_signal {
    weft_mutex m;
    weft_cond c;
    int flag;
};

static int signal_after_10ms(void *arg)
{
    struct timed_signal *ts = arg;
    weft_sleep(WT_MS(10));
    weft_mutex_lock(&ts->m);
    ts->flag = 1;
    weft_cond_signal(&ts->c);
    weft_mutex_unlock(&ts->m);
    return 0;
}

static int root_timedwait_signalled(void *arg)
{
    static struct timed_signal ts = {WEFT_MUTEX_INIT, WEFT_COND_INIT, 0};
    WT_REQUIRE(wt_go(signal_after_10ms, &ts) != NULL);
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_mutex_lock(&ts.m), 0);
    int rc = 0;
    while (!ts.flag && rc == 0)
        rc = weft_cond_timedwait(&ts.c, &ts.m, t0 + WT_MS(5000));
    WT_CHECK_EQ(rc, 0);
    WT_CHECK(ts.flag);
    WT_CHECK(wt_own_since(t0) < WT_MS(1000));
    WT_CHECK_EQ(weft_mutex_unlock(&ts.m), 0);
    return 0;
}

Test(cond, timedwait_returns_zero_when_signalled, .timeout = 20)
{
    WT_RUN(root_timedwait_signalled, NULL, .procs = 2);
}

/* ---------------------------------------------------------- cancellation */

struct cancel_wait {
    weft_mutex m;
    weft_cond c;
    int rc;
    int relocked;
};

static int wait_forever(void *arg)
{
    struct cancel_wait *cw = arg;
    WT_REQUIRE_EQ(weft_mutex_lock(&cw->m), 0);
    cw->rc = weft_cond_wait(&cw->c, &cw->m);
    cw->relocked = weft_mutex_trylock(&cw->m) == EBUSY;
    WT_REQUIRE_EQ(weft_mutex_unlock(&cw->m), 0);
    return cw->rc;
}

static int root_cond_cancel(void *arg)
{
    static struct cancel_wait cw = {WEFT_MUTEX_INIT, WEFT_COND_INIT, -1, 0};
    weft_thread *t = wt_go(wait_forever, &cw);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(10)), 0);
    WT_CHECK_EQ(weft_cancel(t), 0);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, ECANCELED);
    WT_CHECK_EQ(cw.rc, ECANCELED);
    WT_CHECK(cw.relocked);
    return 0;
}

Test(cond, wait_returns_ecanceled_and_relocks, .timeout = 20)
{
    WT_RUN(root_cond_cancel, NULL, .procs = 2);
}

static int root_cond_scope_deadline(void *arg)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_cond c = WEFT_COND_INIT;
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_scope_deadline(sc, weft_now() + WT_MS(20));
    WT_CHECK_EQ(weft_mutex_lock(&m), 0);
    WT_CHECK_EQ(weft_cond_wait(&c, &m), ETIMEDOUT);
    WT_CHECK_EQ(weft_mutex_trylock(&m), EBUSY);
    WT_CHECK_EQ(weft_mutex_unlock(&m), 0);
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    return 0;
}

Test(cond, wait_returns_etimedout_at_scope_deadline, .timeout = 20)
{
    WT_RUN(root_cond_scope_deadline, NULL, .procs = 1);
}

/* --------------------------------------------- shared with plain pthreads */

struct mixed {
    weft_mutex m;
    weft_cond c;
    int turn;      /* 0: the virtual thread's turn, 1: the pthread's */
    int rounds;
    int errors;
};

static void *os_pingpong(void *arg)
{
    struct mixed *mx = arg;
    for (int i = 0; i < mx->rounds; i++) {
        weft_mutex_lock(&mx->m);
        while (mx->turn != 1)
            if (weft_cond_wait(&mx->c, &mx->m) != 0)
                mx->errors++;
        mx->turn = 0;
        weft_cond_broadcast(&mx->c);
        weft_mutex_unlock(&mx->m);
    }
    return NULL;
}

static int root_mixed(void *arg)
{
    static struct mixed mx = {WEFT_MUTEX_INIT, WEFT_COND_INIT, 0, 500, 0};
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_pingpong, &mx), 0);
    for (int i = 0; i < mx.rounds; i++) {
        WT_CHECK_EQ(weft_mutex_lock(&mx.m), 0);
        while (mx.turn != 0)
            WT_CHECK_EQ(weft_cond_wait(&mx.c, &mx.m), 0);
        mx.turn = 1;
        WT_CHECK_EQ(weft_cond_broadcast(&mx.c), 0);
        WT_CHECK_EQ(weft_mutex_unlock(&mx.m), 0);
    }
    WT_CHECK_EQ(weft_mutex_lock(&mx.m), 0);
    while (mx.turn != 0)
        WT_CHECK_EQ(weft_cond_wait(&mx.c, &mx.m), 0);
    WT_CHECK_EQ(weft_mutex_unlock(&mx.m), 0);
    pthread_join(pt, NULL);
    WT_CHECK_EQ(mx.errors, 0);
    return 0;
}

Test(cond, ping_pong_between_pthread_and_virtual_thread, .timeout = 30)
{
    WT_RUN(root_mixed, NULL, .procs = 1);
}

Test(cond, ping_pong_between_pthread_and_virtual_thread_two_procs,
     .timeout = 30)
{
    WT_RUN(root_mixed, NULL, .procs = 2);
}

/* ---------------------------------------------------------- static init */

static weft_mutex g_m = WEFT_MUTEX_INIT;
static weft_cond g_c = WEFT_COND_INIT;
static int g_ready;

static int static_waiter(void *arg)
{
    WT_REQUIRE_EQ(weft_mutex_lock(&g_m), 0);
    while (!g_ready)
        WT_REQUIRE_EQ(weft_cond_wait(&g_c, &g_m), 0);
    WT_REQUIRE_EQ(weft_mutex_unlock(&g_m), 0);
    return 0;
}

static int root_static(void *arg)
{
    weft_thread *t = wt_go(static_waiter, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    WT_CHECK_EQ(weft_mutex_lock(&g_m), 0);
    g_ready = 1;
    WT_CHECK_EQ(weft_cond_signal(&g_c), 0);
    WT_CHECK_EQ(weft_mutex_unlock(&g_m), 0);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    return 0;
}

Test(cond, static_initializer_works, .timeout = 20)
{
    WT_RUN(root_static, NULL, .procs = 2);
}
