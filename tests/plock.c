/* SPDX-License-Identifier: MIT */
/*
 * plock.c — pthread locks on virtual threads (foreign/locks.c): a thread
 * that holds one stays on its carrier and its waits block the carrier; a
 * contended lock or a condition wait made holding no other lock parks;
 * counting follows what glibc returned.
 */
#include "wt_io.h"

#include <sys/syscall.h>

static long tid(void)
{
    return syscall(SYS_gettid);
}

/* CLOCK_REALTIME ms from now, as pthread's timed calls take it. */
static struct timespec realtime_in_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

/* Joins n threads, then checks one weft_stats counter. */
#define JOIN_ALL_THEN_STAT(t, n, field, want)                              \
    do {                                                                   \
        for (int i_ = 0; i_ < (n); i_++)                                   \
            wt_join((t)[i_]);                                              \
        weft_runtime_stats st_;                                            \
        WT_CHECK_EQ(weft_stats(&st_), 0);                                  \
        WT_CHECK_EQ(st_.field, (want));                                    \
    } while (0)

/* ------------------------------------------------- waiters do not multiply */

enum { WAITERS = 300 };

static pthread_mutex_t g_mx = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_got;
static unsigned g_max_carriers;

static int waiter(void *arg)
{
    WT_CHECK_EQ(pthread_mutex_lock(&g_mx), 0);
    atomic_fetch_add(&g_got, 1);
    WT_CHECK_EQ(pthread_mutex_unlock(&g_mx), 0);
    return 0;
}

static int root_many_waiters(void *arg)
{
    WT_REQUIRE_EQ(pthread_mutex_lock(&g_mx), 0);
    weft_thread *t[WAITERS];
    for (int i = 0; i < WAITERS; i++)
        t[i] = wt_go_named("waiter", waiter, NULL);
    /* Held across a block of the carrier: the waiters park meanwhile. */
    wt_block_ms(100);
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    g_max_carriers = st.carriers;
    WT_CHECK_EQ(pthread_mutex_unlock(&g_mx), 0);
    for (int i = 0; i < WAITERS; i++)
        wt_join(t[i]);
    return 0;
}

Test(plock, contended_mutex_waiters_park, .timeout = 30)
{
    WT_RUN(root_many_waiters, NULL, .procs = 2, .hog_ms = 10);
    cr_log_info("%d waiters: %u carriers", WAITERS, g_max_carriers);
    cr_assert_eq(atomic_load(&g_got), WAITERS);
    cr_assert_lt(g_max_carriers, 8, "%u carriers", g_max_carriers);
}

/* ---------------------------------------------- the plain mutex, as glibc */

/* A default mutex locked on a virtual thread looks to glibc as if its
 * carrier had locked it: owner, users, lock word. */
static pthread_mutex_t g_plain = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_os_try = -1;

static void *os_trylock(void *arg)
{
    int r = pthread_mutex_trylock(&g_plain);
    if (r == 0)
        pthread_mutex_unlock(&g_plain);
    atomic_store(&g_os_try, r);
    return NULL;
}

static int os_trylock_now(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, os_trylock, NULL))
        return -1;
    pthread_join(t, NULL); /* blocks this carrier: short */
    return atomic_load(&g_os_try);
}

static int root_plain_state(void *arg)
{
    WT_REQUIRE_EQ(pthread_mutex_lock(&g_plain), 0);
    WT_CHECK_EQ(g_plain.__data.__owner, (int)tid());
    WT_CHECK_EQ(g_plain.__data.__nusers, 1u);
    WT_CHECK_EQ(g_plain.__data.__lock, 1);
    WT_CHECK_EQ(os_trylock_now(), EBUSY);
    WT_CHECK_EQ(pthread_mutex_trylock(&g_plain), EBUSY);
    WT_CHECK_EQ(pthread_mutex_unlock(&g_plain), 0);
    WT_CHECK_EQ(g_plain.__data.__owner, 0);
    WT_CHECK_EQ(g_plain.__data.__nusers, 0u);
    WT_CHECK_EQ(g_plain.__data.__lock, 0);
    WT_CHECK_EQ(os_trylock_now(), 0);
    return 0;
}

Test(plock, a_default_mutex_shows_glibc_its_carrier_as_owner, .timeout = 10)
{
    WT_RUN(root_plain_state, NULL, .procs = 1);
}

/* Virtual threads on two P's and OS threads share a default mutex: the OS
 * threads sleep in glibc's futex, so unlocks on virtual threads find
 * sleepers and leave the wake to glibc. Exclusion: a counter incremented
 * in two steps with a yield between them never loses an increment. */
enum { SHARERS = 4, OS_SHARERS = 2, SHARES = 20000 };

static pthread_mutex_t g_shared = PTHREAD_MUTEX_INITIALIZER;
static long g_count;

static void add_one(void)
{
    pthread_mutex_lock(&g_shared);
    long c = g_count;
    if (c % 64 == 0)
        sched_yield(); /* a holder is pinned: this yields the carrier */
    g_count = c + 1;
    pthread_mutex_unlock(&g_shared);
}

static void *os_sharer(void *arg)
{
    for (int i = 0; i < SHARES; i++)
        add_one();
    return NULL;
}

static int sharer(void *arg)
{
    for (int i = 0; i < SHARES; i++) {
        add_one();
        if (i % 128 == 0)
            weft_yield();
    }
    return 0;
}

static int root_shared(void *arg)
{
    pthread_t os[OS_SHARERS];
    for (int i = 0; i < OS_SHARERS; i++)
        WT_REQUIRE_EQ(pthread_create(&os[i], NULL, os_sharer, NULL), 0);
    weft_thread *t[SHARERS];
    for (int i = 0; i < SHARERS; i++)
        t[i] = wt_go_named("sharer", sharer, NULL);
    for (int i = 0; i < SHARERS; i++)
        wt_join(t[i]);
    for (int i = 0; i < OS_SHARERS; i++)
        pthread_join(os[i], NULL); /* blocks this carrier: short */
    return 0;
}

Test(plock, a_default_mutex_excludes_across_virtual_and_os_threads,
     .timeout = 60)
{
    WT_RUN(root_shared, NULL, .procs = 2, .hog_ms = 10);
    cr_assert_eq(g_count, (long)(SHARERS + OS_SHARERS) * SHARES);
    cr_assert_eq(g_shared.__data.__lock, 0);
    cr_assert_eq(g_shared.__data.__nusers, 0u);
    cr_assert_eq(g_shared.__data.__owner, 0);
}

/* --------------------------------------------------- holding one pins */

static atomic_int g_moves;

static int holder(void *arg)
{
    pthread_mutex_t *mx = arg;
    for (int i = 0; i < 50; i++) {
        WT_CHECK_EQ(pthread_mutex_lock(mx), 0);
        long before = tid();
        weft_sleep(WT_US(200)); /* blocks the carrier: it holds a lock */
        usleep(100);
        if (tid() != before)
            atomic_fetch_add(&g_moves, 1);
        WT_CHECK_EQ(pthread_mutex_unlock(mx), 0);
        weft_sleep(WT_US(50));
    }
    return 0;
}

static int root_holders(void *arg)
{
    pthread_mutex_t mx[8];
    weft_thread *t[8];
    for (int i = 0; i < 8; i++) {
        pthread_mutex_init(&mx[i], NULL);
        t[i] = wt_go_named("holder", holder, &mx[i]);
    }
    JOIN_ALL_THEN_STAT(t, 8, lock_pinned, 0);
    return 0;
}

Test(plock, a_thread_holding_a_mutex_keeps_its_carrier, .timeout = 30)
{
    WT_RUN(root_holders, NULL, .procs = 2, .hog_ms = 10);
    cr_assert_eq(atomic_load(&g_moves), 0);
}

/* --------------------------------------------- recursive, held across I/O */

/* SQLite's serialized mode: a recursive mutex per connection, held across
 * a sleep of its busy handler, by threads that share carriers. */
static pthread_mutex_t g_rec;
static atomic_int g_txns;

static int txn_loop(void *arg)
{
    for (int i = 0; i < 40; i++) {
        WT_CHECK_EQ(pthread_mutex_lock(&g_rec), 0);
        WT_CHECK_EQ(pthread_mutex_lock(&g_rec), 0);
        usleep(200);
        WT_CHECK_EQ(pthread_mutex_unlock(&g_rec), 0);
        WT_CHECK_EQ(pthread_mutex_unlock(&g_rec), 0);
        atomic_fetch_add(&g_txns, 1);
        usleep(100);
    }
    return 0;
}

static int root_recursive(void *arg)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&g_rec, &a);
    weft_thread *t[8];
    for (int i = 0; i < 8; i++)
        t[i] = wt_go_named("txn", txn_loop, NULL);
    for (int i = 0; i < 8; i++)
        wt_join(t[i]);
    pthread_mutex_destroy(&g_rec);
    return 0;
}

Test(plock, recursive_mutex_held_across_sleeps_on_one_p, .timeout = 30)
{
    atomic_store(&g_txns, 0);
    WT_RUN(root_recursive, NULL, .procs = 1, .hog_ms = 10);
    cr_assert_eq(atomic_load(&g_txns), 8 * 40);
}

Test(plock, recursive_mutex_held_across_sleeps_on_two_ps, .timeout = 30)
{
    atomic_store(&g_txns, 0);
    WT_RUN(root_recursive, NULL, .procs = 2, .hog_ms = 10);
    cr_assert_eq(atomic_load(&g_txns), 8 * 40);
}

/* ------------------------------------------------------ condition waits */

static pthread_mutex_t g_cmx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_items, g_taken;

static int consumer(void *arg)
{
    for (int i = 0; i < 200; i++) {
        WT_CHECK_EQ(pthread_mutex_lock(&g_cmx), 0);
        while (g_items == 0)
            WT_CHECK_EQ(pthread_cond_wait(&g_cv, &g_cmx), 0);
        g_items--;
        g_taken++;
        WT_CHECK_EQ(pthread_mutex_unlock(&g_cmx), 0);
    }
    return 0;
}

static int root_cond(void *arg)
{
    weft_thread *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = wt_go_named("consumer", consumer, NULL);
    for (int i = 0; i < 800; i++) {
        WT_CHECK_EQ(pthread_mutex_lock(&g_cmx), 0);
        g_items++;
        WT_CHECK_EQ(pthread_cond_signal(&g_cv), 0);
        WT_CHECK_EQ(pthread_mutex_unlock(&g_cmx), 0);
        if (i % 8 == 0)
            weft_yield();
    }
    JOIN_ALL_THEN_STAT(t, 4, handoffs, 0);
    return 0;
}

/* One P and hand-offs held off: a condition wait that blocked the carrier
 * would stop the producer for good. */
Test(plock, cond_wait_parks_on_one_p, .timeout = 30)
{
    WT_RUN(root_cond, NULL, .procs = 1, .hog_ms = 10000);
    cr_assert_eq(g_taken, 800);
}

static int timed_waiter(void *arg)
{
    pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    struct timespec abs = realtime_in_ms(30);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(pthread_mutex_lock(&mx), 0);
    WT_CHECK_EQ(pthread_cond_timedwait(&cv, &mx, &abs), ETIMEDOUT);
    WT_CHECK_EQ(pthread_mutex_unlock(&mx), 0);
    int64_t ms = (weft_now() - t0) / 1000000;
    WT_CHECK_MSG(ms >= 25 && ms < 500, "timed wait took %lld ms",
                 (long long)ms);
    return 0;
}

Test(plock, cond_timedwait_times_out, .timeout = 10)
{
    WT_RUN(timed_waiter, NULL, .procs = 1, .hog_ms = 10000);
}

/* ----------------------------------------------------- errors and counts */

static int root_errorcheck(void *arg)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t mx;
    pthread_mutex_init(&mx, &a);
#ifndef __SANITIZE_THREAD__ /* TSan reports the misuse itself, and stops */
    WT_CHECK_EQ(pthread_mutex_unlock(&mx), EPERM);
#endif
    WT_CHECK_EQ(pthread_mutex_lock(&mx), 0);
    WT_CHECK_EQ(pthread_mutex_lock(&mx), EDEADLK);
    WT_CHECK_EQ(pthread_mutex_trylock(&mx), EBUSY);
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    WT_CHECK_EQ(st.lock_pinned, 1); /* one lock held */
    WT_CHECK_EQ(pthread_mutex_unlock(&mx), 0);
    WT_CHECK_EQ(weft_stats(&st), 0);
    WT_CHECK_EQ(st.lock_pinned, 0);
    pthread_mutex_destroy(&mx);
    return 0;
}

Test(plock, only_successful_locks_count, .timeout = 10)
{
    WT_RUN(root_errorcheck, NULL, .procs = 1, .hog_ms = 10);
}

static pthread_mutex_t g_tmx = PTHREAD_MUTEX_INITIALIZER;

static int timed_locker(void *arg)
{
    struct timespec abs = realtime_in_ms(20);
    WT_CHECK_EQ(pthread_mutex_timedlock(&g_tmx, &abs), ETIMEDOUT);
    return 0;
}

/* The lock stays held until the locker has returned: a locker that a
 * loaded machine starts late must still find it taken, whatever the
 * delay (a fixed 60 ms hold let it in once). */
static int root_timedlock(void *arg)
{
    WT_CHECK_EQ(pthread_mutex_lock(&g_tmx), 0);
    weft_thread *t = wt_go_named("timed", timed_locker, NULL);
    wt_join(t);
    WT_CHECK_EQ(pthread_mutex_unlock(&g_tmx), 0);
    return 0;
}

Test(plock, mutex_timedlock_times_out_parked, .timeout = 10)
{
    WT_RUN(root_timedlock, NULL, .procs = 2, .hog_ms = 10000);
}

/* ------------------------------------------------------------- rwlocks */

static pthread_rwlock_t g_rw = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int g_readers_in, g_max_readers;

/* Raises g_max_readers to the readers in now. */
static void note_readers(void)
{
    int n = atomic_load(&g_readers_in), m = atomic_load(&g_max_readers);
    while (n > m && !atomic_compare_exchange_weak(&g_max_readers, &m, n)) {
    }
}

static int reader(void *arg)
{
    WT_CHECK_EQ(pthread_rwlock_rdlock(&g_rw), 0);
    atomic_fetch_add(&g_readers_in, 1);
    note_readers();
    /* Holds the read lock (pinned: each sleep blocks the carrier) until
     * another reader is in beside it, or 200 ms: a fixed 2 ms hold missed
     * the overlap on a loaded machine, when the woken readers queued on
     * one P and the other carrier was slow to take them. */
    for (int i = 0; i < 100 && atomic_load(&g_readers_in) < 2; i++)
        usleep(2000);
    note_readers();
    atomic_fetch_sub(&g_readers_in, 1);
    WT_CHECK_EQ(pthread_rwlock_unlock(&g_rw), 0);
    return 0;
}

static int root_rwlock(void *arg)
{
    WT_CHECK_EQ(pthread_rwlock_wrlock(&g_rw), 0);
    weft_thread *t[16];
    for (int i = 0; i < 16; i++)
        t[i] = wt_go_named("reader", reader, NULL);
    wt_block_ms(20);
    WT_CHECK_EQ(atomic_load(&g_readers_in), 0);
    WT_CHECK_EQ(pthread_rwlock_unlock(&g_rw), 0);
    for (int i = 0; i < 16; i++)
        wt_join(t[i]);
    return 0;
}

Test(plock, rwlock_writer_holds_off_parked_readers, .timeout = 20)
{
    WT_RUN(root_rwlock, NULL, .procs = 2, .hog_ms = 10);
    cr_assert_geq(atomic_load(&g_max_readers), 2);
}

/* -------------------------------------- shared with OS threads in glibc */

/* A work queue served by OS threads waiting in pthread_cond_timedwait and
 * fed by virtual threads: both sides on one mutex and one condition. */
enum { OS_WORKERS = 4, PRODUCERS = 100, JOBS_EACH = 20 };

static struct {
    pthread_mutex_t mx;
    pthread_cond_t cv;
    int queued, done;
    bool stop;
} g_q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, false};

static void *os_worker(void *arg)
{
    pthread_mutex_lock(&g_q.mx);
    while (!g_q.stop || g_q.queued) {
        if (!g_q.queued) {
            struct timespec abs = realtime_in_ms(5);
            pthread_cond_timedwait(&g_q.cv, &g_q.mx, &abs);
            continue;
        }
        g_q.queued--;
        g_q.done++;
    }
    pthread_mutex_unlock(&g_q.mx);
    return NULL;
}

static int producer(void *arg)
{
    for (int i = 0; i < JOBS_EACH; i++) {
        WT_CHECK_EQ(pthread_mutex_lock(&g_q.mx), 0);
        g_q.queued++;
        WT_CHECK_EQ(pthread_cond_signal(&g_q.cv), 0);
        WT_CHECK_EQ(pthread_mutex_unlock(&g_q.mx), 0);
        weft_yield();
    }
    return 0;
}

static int root_os_pool(void *arg)
{
    pthread_t os[OS_WORKERS];
    for (int i = 0; i < OS_WORKERS; i++)
        WT_REQUIRE_EQ(pthread_create(&os[i], NULL, os_worker, NULL), 0);
    weft_thread *t[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        t[i] = wt_go_named("producer", producer, NULL);
    for (int i = 0; i < PRODUCERS; i++)
        wt_join(t[i]);
    pthread_mutex_lock(&g_q.mx);
    g_q.stop = true;
    pthread_cond_broadcast(&g_q.cv);
    pthread_mutex_unlock(&g_q.mx);
    for (int i = 0; i < OS_WORKERS; i++)
        pthread_join(os[i], NULL); /* blocks this carrier: short */
    return 0;
}

Test(plock, virtual_threads_feed_os_threads_through_a_condition, .timeout = 30)
{
    WT_RUN(root_os_pool, NULL, .procs = 2, .hog_ms = 10);
    cr_assert_eq(g_q.done, PRODUCERS * JOBS_EACH);
}
