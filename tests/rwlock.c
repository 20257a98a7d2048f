/* SPDX-License-Identifier: MIT */
/*
 * rwlock.c — weft_rwlock: readers share it, a writer holds it alone,
 * writers first (a waiting writer stops new readers), parked readers
 * enter together when the writer leaves and before the next writer,
 * trylocks, misuse and ownership, OS threads, static initialisation, not
 * a cancellation point, the dump, and a randomised stress of mutual
 * exclusion from virtual threads on two P's and OS threads at once (its
 * seed printed; WEFT_SEED=<n> replays the plans of run n).
 */
#include "wt_stress.h"

#include <inttypes.h>

#define RUN_TEST(...) WT_RUN_TEST(rwlock, __VA_ARGS__)

/* Yields until *c reaches n, for 5 s at most. Returns whether it did. */
static bool yield_until_at_least(atomic_int *c, int n)
{
    int64_t until = weft_now() + 5 * WEFT_SEC;
    while (atomic_load(c) < n && weft_now() < until)
        weft_yield();
    return atomic_load(c) >= n;
}

/* What the entrants of one test share. */
struct tally {
    atomic_int seq;     /* entries so far */
    atomic_int inside;  /* threads holding the lock now */
    atomic_int saw;     /* threads that saw their hold_until inside */
};

/* A thread taking a lock (to read or to write) and recording the order in
 * which it got in. With hold_until n it keeps the lock until n threads
 * hold it at once and all n have seen it (or 5 s have passed). */
struct entrant {
    weft_rwlock *l;
    bool write;
    struct tally *t;
    int hold_until;
    atomic_int arrived;  /* about to lock */
    int rc, order;       /* lock's result, entry number */
    bool met;            /* saw hold_until threads inside at once (a
                            writer: and no one else) */
};

static int entrant_body(void *arg)
{
    struct entrant *e = arg;
    struct tally *t = e->t;
    atomic_store(&e->arrived, 1);
    e->rc = e->write ? weft_rwlock_wrlock(e->l) : weft_rwlock_rdlock(e->l);
    e->order = atomic_fetch_add(&t->seq, 1);
    if (atomic_fetch_add(&t->inside, 1) != 0 && e->write)
        e->met = false;
    else
        e->met = yield_until_at_least(&t->inside, e->hold_until);
    atomic_fetch_add(&t->saw, 1);
    yield_until_at_least(&t->saw, e->hold_until);
    atomic_fetch_sub(&t->inside, 1);
    WT_CHECK_EQ(weft_rwlock_unlock(e->l), 0);
    return 0;
}

static struct entrant entrant(weft_rwlock *l, bool write, struct tally *t,
                              int hold_until)
{
    return (struct entrant){
        .l = l, .write = write, .t = t, .hold_until = hold_until};
}

/* Waits until every one of n entrants is about to lock, then a little
 * more, so that they are parked. */
static void let_them_park(struct entrant *e, int n)
{
    for (int i = 0; i < n; i++)
        while (!atomic_load(&e[i].arrived))
            weft_yield();
    weft_sleep(WT_MS(20));
}

/* ------------------------------------------------------------ sharing */

/* A trylock in another virtual thread, released at once if it worked. */
struct attempt {
    weft_rwlock *l;
    bool write;
    int rc;
};

static int attempt_body(void *arg)
{
    struct attempt *a = arg;
    a->rc = a->write ? weft_rwlock_trywrlock(a->l)
                     : weft_rwlock_tryrdlock(a->l);
    if (a->rc == 0)
        WT_CHECK_EQ(weft_rwlock_unlock(a->l), 0);
    return 0;
}

/* What a trylock in another virtual thread gets while the caller holds l. */
static int other_tries(weft_rwlock *l, bool write)
{
    struct attempt a = {l, write, -1};
    WT_CHECK_EQ(weft_join(wt_go(attempt_body, &a), NULL), 0);
    return a.rc;
}

static int root_readers_share(void *arg)
{
    weft_rwlock l = WEFT_RWLOCK_INIT;
    WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
    WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0); /* no writer waits: allowed */
    WT_CHECK_EQ(other_tries(&l, false), 0);
    WT_CHECK_EQ(other_tries(&l, true), EBUSY);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    WT_CHECK_EQ(weft_rwlock_trywrlock(&l), 0);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    return 0;
}

RUN_TEST(readers_share_it_and_keep_writers_out, root_readers_share, NULL,
         .procs = 2, .timeout = 10)

static int root_writer_alone(void *arg)
{
    weft_rwlock l = WEFT_RWLOCK_INIT;
    WT_CHECK_EQ(weft_rwlock_wrlock(&l), 0);
    WT_CHECK_EQ(other_tries(&l, false), EBUSY);
    WT_CHECK_EQ(other_tries(&l, true), EBUSY);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    WT_CHECK_EQ(weft_rwlock_tryrdlock(&l), 0);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    return 0;
}

RUN_TEST(writer_holds_it_alone, root_writer_alone, NULL, .procs = 2,
         .timeout = 10)

/* ------------------------------------------------------- writers first */

static int root_writer_first(void *arg)
{
    weft_rwlock l = WEFT_RWLOCK_INIT;
    struct tally t = {0};
    struct entrant w = entrant(&l, true, &t, 1);
    struct entrant r = entrant(&l, false, &t, 1);
    WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    WT_REQUIRE(wt_go(entrant_body, &w) != NULL);
    /* The writer queued: a new reader is turned away, though only
     * readers hold the lock. */
    int64_t until = weft_now() + 5 * WEFT_SEC;
    while (weft_rwlock_tryrdlock(&l) == 0 && weft_now() < until) {
        WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
        weft_yield();
    }
    WT_CHECK_EQ(weft_rwlock_tryrdlock(&l), EBUSY);
    WT_REQUIRE(wt_go(entrant_body, &r) != NULL);
    let_them_park(&r, 1);
    WT_CHECK_EQ(atomic_load(&t.seq), 0);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    WT_CHECK_EQ(w.rc, 0);
    WT_CHECK_EQ(r.rc, 0);
    WT_CHECK_EQ(w.order, 0);
    WT_CHECK_EQ(r.order, 1);
    return 0;
}

RUN_TEST(waiting_writer_goes_before_readers_that_come_after_it,
         root_writer_first, NULL, .procs = 2, .timeout = 10)

enum { NREADERS = 4 };

/* Readers parked behind a writer all hold the lock at once after it. */
static int root_readers_together(void *arg)
{
    weft_rwlock l = WEFT_RWLOCK_INIT;
    struct tally t = {0};
    struct entrant r[NREADERS];
    for (int i = 0; i < NREADERS; i++)
        r[i] = entrant(&l, false, &t, NREADERS);
    WT_CHECK_EQ(weft_rwlock_wrlock(&l), 0);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    for (int i = 0; i < NREADERS; i++)
        WT_REQUIRE(wt_go(entrant_body, &r[i]) != NULL);
    let_them_park(r, NREADERS);
    WT_CHECK_EQ(atomic_load(&t.seq), 0);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    for (int i = 0; i < NREADERS; i++) {
        WT_CHECK_EQ(r[i].rc, 0);
        WT_CHECK(r[i].met);
    }
    return 0;
}

RUN_TEST(parked_readers_enter_together_when_the_writer_leaves,
         root_readers_together, NULL, .procs = 2, .timeout = 20)

/* Readers and then a writer parked behind a writer: the readers go first,
 * all of them, and the second writer after them. */
static int root_turns(void *arg)
{
    weft_rwlock l = WEFT_RWLOCK_INIT;
    struct tally t = {0};
    struct entrant e[NREADERS + 1];
    for (int i = 0; i < NREADERS; i++)
        e[i] = entrant(&l, false, &t, NREADERS);
    e[NREADERS] = entrant(&l, true, &t, 1);
    WT_CHECK_EQ(weft_rwlock_wrlock(&l), 0);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    for (int i = 0; i <= NREADERS; i++) {
        WT_REQUIRE(wt_go(entrant_body, &e[i]) != NULL);
        let_them_park(&e[i], 1); /* queued in this order */
    }
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    for (int i = 0; i < NREADERS; i++) {
        WT_CHECK(e[i].met);
        WT_CHECK(e[i].order < NREADERS);
    }
    WT_CHECK_EQ(e[NREADERS].order, NREADERS);
    WT_CHECK(e[NREADERS].met); /* alone */
    return 0;
}

RUN_TEST(queued_readers_go_before_the_next_writer, root_turns, NULL,
         .procs = 2, .timeout = 20)

/* ----------------------------------------------------- misuse, ownership */

static int root_misuse(void *arg)
{
    weft_rwlock l = WEFT_RWLOCK_INIT;
    WT_CHECK_EQ(weft_rwlock_unlock(&l), EPERM);
    WT_CHECK_EQ(weft_rwlock_rdlock(NULL), EINVAL);
    WT_CHECK_EQ(weft_rwlock_wrlock(NULL), EINVAL);
    WT_CHECK_EQ(weft_rwlock_tryrdlock(NULL), EINVAL);
    WT_CHECK_EQ(weft_rwlock_trywrlock(NULL), EINVAL);
    WT_CHECK_EQ(weft_rwlock_unlock(NULL), EINVAL);
    WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), EPERM);
    return 0;
}

RUN_TEST(unlock_of_unlocked_is_eperm_and_null_is_einval, root_misuse, NULL,
         .procs = 1, .timeout = 10)

static int root_relock(void *arg)
{
    weft_rwlock l = WEFT_RWLOCK_INIT;
    WT_CHECK_EQ(weft_rwlock_wrlock(&l), 0);
    WT_CHECK_EQ(weft_rwlock_wrlock(&l), EDEADLK);
    WT_CHECK_EQ(weft_rwlock_rdlock(&l), EDEADLK);
    WT_CHECK_EQ(weft_rwlock_trywrlock(&l), EBUSY);
    WT_CHECK_EQ(weft_rwlock_tryrdlock(&l), EBUSY);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), EPERM);
    return 0;
}

RUN_TEST(locking_again_by_the_writer_is_edeadlk, root_relock, NULL,
         .procs = 1, .timeout = 10)

Test(rwlock, locking_again_by_a_writing_os_thread_is_edeadlk, .timeout = 10)
{
    weft_rwlock l = WEFT_RWLOCK_INIT;
    cr_assert_eq(weft_rwlock_wrlock(&l), 0);
    cr_assert_eq(weft_rwlock_wrlock(&l), EDEADLK);
    cr_assert_eq(weft_rwlock_rdlock(&l), EDEADLK);
    cr_assert_eq(weft_rwlock_unlock(&l), 0);
    cr_assert_eq(weft_rwlock_unlock(&l), EPERM);
}

/* Someone else's write lock: an unlock is refused and changes nothing. */
struct foreign {
    weft_rwlock *l;
    int unlock, trywr;
};

static int unlock_foreign(void *arg)
{
    struct foreign *f = arg;
    f->unlock = weft_rwlock_unlock(f->l);
    f->trywr = weft_rwlock_trywrlock(f->l);
    return 0;
}

static void *os_unlock_foreign(void *arg)
{
    unlock_foreign(arg);
    return NULL;
}

static int root_foreign_unlock(void *arg)
{
    weft_rwlock l = WEFT_RWLOCK_INIT;
    WT_CHECK_EQ(weft_rwlock_wrlock(&l), 0);
    struct foreign v = {&l, -1, -1}, o = {&l, -1, -1};
    weft_thread *t = wt_go(unlock_foreign, &v);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_unlock_foreign, &o), 0);
    pthread_join(pt, NULL);
    WT_CHECK_EQ(v.unlock, EPERM);
    WT_CHECK_EQ(v.trywr, EBUSY);
    WT_CHECK_EQ(o.unlock, EPERM);
    WT_CHECK_EQ(o.trywr, EBUSY);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0); /* the writer still can */
    return 0;
}

RUN_TEST(unlock_of_another_threads_write_lock_is_eperm, root_foreign_unlock,
         NULL, .procs = 2, .timeout = 10)

/* ------------------------------------------------------------ OS threads */

struct os_reader {
    weft_rwlock *l;
    atomic_int *seq;
    int rc, order;
};

static void *os_reader_main(void *arg)
{
    struct os_reader *r = arg;
    r->rc = weft_rwlock_rdlock(r->l);
    r->order = atomic_fetch_add(r->seq, 1);
    if (r->rc == 0)
        weft_rwlock_unlock(r->l);
    return NULL;
}

/* OS threads wait for a virtual thread's write lock, and get in after it;
 * a virtual thread waits for an OS thread's. */
static int root_os_threads(void *arg)
{
    weft_rwlock l = WEFT_RWLOCK_INIT;
    atomic_int seq = 0;
    struct os_reader r[2] = {{&l, &seq, -1, -1}, {&l, &seq, -1, -1}};
    WT_CHECK_EQ(weft_rwlock_wrlock(&l), 0);
    pthread_t pt[2];
    for (int i = 0; i < 2; i++)
        WT_REQUIRE_EQ(pthread_create(&pt[i], NULL, os_reader_main, &r[i]), 0);
    weft_sleep(WT_MS(20));
    WT_CHECK_EQ(atomic_fetch_add(&seq, 1), 0); /* they waited for us */
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(pt[i], NULL);
        WT_CHECK_EQ(r[i].rc, 0);
        WT_CHECK(r[i].order > 0);
    }
    return 0;
}

RUN_TEST(os_threads_wait_for_a_virtual_writer, root_os_threads, NULL,
         .procs = 2, .timeout = 10)

static weft_rwlock g_static = WEFT_RWLOCK_INIT;

static void *os_writer_main(void *arg)
{
    atomic_int *held = arg;
    weft_rwlock_wrlock(&g_static);
    atomic_store(held, 1);
    usleep(20000);
    atomic_store(held, 2);
    weft_rwlock_unlock(&g_static);
    return NULL;
}

static int root_waits_for_os_writer(void *arg)
{
    atomic_int held = 0;
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_writer_main, &held), 0);
    while (!atomic_load(&held))
        weft_yield();
    WT_CHECK_EQ(weft_rwlock_rdlock(&g_static), 0);
    WT_CHECK_EQ(atomic_load(&held), 2);
    WT_CHECK_EQ(weft_rwlock_unlock(&g_static), 0);
    pthread_join(pt, NULL);
    return 0;
}

RUN_TEST(virtual_thread_waits_for_an_os_writer_of_a_static_lock,
         root_waits_for_os_writer, NULL, .procs = 2, .timeout = 10)

/* ------------------------------------------------------- cancellation */

struct cancelled_reader {
    weft_rwlock *l;
    atomic_int arrived;
    int lock, sleep;
};

static int cancelled_reader_body(void *arg)
{
    struct cancelled_reader *c = arg;
    atomic_store(&c->arrived, 1);
    c->lock = weft_rwlock_rdlock(c->l);
    c->sleep = weft_sleep(WT_MS(10000));
    if (c->lock == 0)
        WT_CHECK_EQ(weft_rwlock_unlock(c->l), 0);
    return 0;
}

static int root_not_cancellation_point(void *arg)
{
    weft_rwlock l = WEFT_RWLOCK_INIT;
    struct cancelled_reader c = {.l = &l, .lock = -1, .sleep = -1};
    WT_CHECK_EQ(weft_rwlock_wrlock(&l), 0);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    WT_REQUIRE(wt_go(cancelled_reader_body, &c) != NULL);
    while (!atomic_load(&c.arrived))
        weft_yield();
    WT_CHECK_EQ(weft_sleep(WT_MS(20)), 0);
    weft_scope_cancel(s);
    for (int i = 0; i < 1000; i++)
        weft_yield(); /* the reader keeps waiting for the lock */
    WT_CHECK_EQ(c.lock, -1);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    WT_CHECK_EQ(weft_scope_close(s), ECANCELED);
    WT_CHECK_EQ(c.lock, 0);
    WT_CHECK_EQ(c.sleep, ECANCELED);
    return 0;
}

RUN_TEST(lock_is_not_a_cancellation_point, root_not_cancellation_point,
         NULL, .procs = 2, .timeout = 10)

/* ---------------------------------------------------------------- dump */

static int root_dump(void *arg)
{
    static char text[65536];
    weft_rwlock l = WEFT_RWLOCK_INIT;
    struct tally t = {0};
    struct entrant w = entrant(&l, true, &t, 1);
    WT_CHECK_EQ(weft_rwlock_rdlock(&l), 0);
    weft_thread *th = wt_go(entrant_body, &w);
    let_them_park(&w, 1);
    WT_REQUIRE(wt_dump_text(text, sizeof text) != NULL);
    WT_CHECK_EQ(weft_rwlock_unlock(&l), 0);
    WT_CHECK_EQ(weft_join(th, NULL), 0);
    WT_CHECK_MSG(strstr(text, "waiting on rwlock (to write)"), "dump: %.300s",
                 text);
    return 0;
}

RUN_TEST(dump_names_a_wait_for_a_write_lock, root_dump, NULL, .procs = 1,
         .timeout = 10)

/* ---------------------------------------------------------------- stress */

#if WT_SANITIZED
#define STRESS_VTHREADS 24
#define STRESS_OPS 300
#else
#define STRESS_VTHREADS 64
#define STRESS_OPS 2000
#endif
#define STRESS_OS 2
#define STRESS_RUNS 2

/* The shared state: a and b are written only under the write lock and
 * always equal outside it; readers check them under the read lock. */
static struct stress {
    weft_rwlock l;
    uint64_t seed;
    long a, b;             /* guarded by l */
    atomic_int readers, writers; /* inside now */
    atomic_int violations;
    atomic_long writes_planned, reads_done;
    atomic_int os_done;
} g;

static void violation(const char *what)
{
    if (atomic_fetch_add(&g.violations, 1) == 0)
        wt_fail(__FILE__, __LINE__, "seed %" PRIu64 ": %s", g.seed, what);
}

/* Waits a random while inside a critical section: a yield (which parks
 * a virtual thread and lets others in), a short sleep, or nothing. */
static void linger(uint64_t *rs)
{
    int k = wt_rnd(rs, 8);
    if (k == 0)
        weft_yield();
    else if (k == 1)
        weft_sleep(WT_US(wt_rnd(rs, 50)));
}

static int lock_for(bool write, bool try_first)
{
    int rc = try_first ? (write ? weft_rwlock_trywrlock(&g.l)
                                : weft_rwlock_tryrdlock(&g.l))
                       : EBUSY;
    if (rc == EBUSY)
        rc = write ? weft_rwlock_wrlock(&g.l) : weft_rwlock_rdlock(&g.l);
    return rc;
}

static void write_once(uint64_t *rs)
{
    if (atomic_fetch_add(&g.writers, 1) != 0 || atomic_load(&g.readers))
        violation("a writer was not alone");
    g.a++;
    linger(rs);
    g.b++;
    atomic_fetch_sub(&g.writers, 1);
}

static void read_once(uint64_t *rs)
{
    atomic_fetch_add(&g.readers, 1);
    if (atomic_load(&g.writers))
        violation("a reader met a writer");
    if (g.a != g.b)
        violation("a reader saw a write half done");
    linger(rs);
    atomic_fetch_sub(&g.readers, 1);
    atomic_fetch_add(&g.reads_done, 1);
}

/* One worker's plan, drawn from the seed and its id: a quarter writes. */
static void work(int id)
{
    uint64_t rs = g.seed ^ ((uint64_t)id << 32);
    for (int i = 0; i < STRESS_OPS; i++) {
        bool write = wt_rnd(&rs, 4) == 0;
        if (write)
            atomic_fetch_add(&g.writes_planned, 1);
        if (lock_for(write, wt_rnd(&rs, 2)) != 0) {
            violation("a lock failed");
            continue;
        }
        write ? write_once(&rs) : read_once(&rs);
        if (weft_rwlock_unlock(&g.l) != 0)
            violation("an unlock failed");
    }
}

static int vworker(void *arg)
{
    work((int)(intptr_t)arg);
    return 0;
}

static void *os_worker(void *arg)
{
    work((int)(intptr_t)arg);
    atomic_fetch_add(&g.os_done, 1);
    return NULL;
}

static int stress_root(void *arg)
{
    pthread_t pt[STRESS_OS];
    for (int i = 0; i < STRESS_OS; i++)
        WT_REQUIRE_EQ(pthread_create(&pt[i], NULL, os_worker,
                                     (void *)(intptr_t)(STRESS_VTHREADS + i)),
                      0);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    for (int i = 0; i < STRESS_VTHREADS; i++)
        WT_CHECK(wt_go(vworker, (void *)(intptr_t)i) != NULL);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    while (atomic_load(&g.os_done) < STRESS_OS)
        weft_sleep(WT_MS(1));
    for (int i = 0; i < STRESS_OS; i++)
        pthread_join(pt[i], NULL);
    return 0;
}

static void stress_reset(uint64_t seed)
{
    weft_rwlock fresh = WEFT_RWLOCK_INIT;
    g.l = fresh;
    g.seed = seed;
    g.a = g.b = 0;
    atomic_store(&g.readers, 0);
    atomic_store(&g.writers, 0);
    atomic_store(&g.violations, 0);
    atomic_store(&g.writes_planned, 0);
    atomic_store(&g.reads_done, 0);
    atomic_store(&g.os_done, 0);
}

static void stress_check(uint64_t seed, int rc, int64_t took)
{
    cr_expect_eq(rc, 0, "seed %" PRIu64 ": weft_run returned %d", seed, rc);
    wt_assert_clean();
    long writes = atomic_load(&g.writes_planned);
    long total = (long)(STRESS_VTHREADS + STRESS_OS) * STRESS_OPS;
    cr_expect_eq(g.a, writes, "seed %" PRIu64 ": %ld writes of %ld", seed,
                 g.a, writes);
    cr_expect_eq(g.b, writes, "seed %" PRIu64, seed);
    cr_expect_eq(atomic_load(&g.reads_done) + writes, total,
                 "seed %" PRIu64 ": every operation done once", seed);
    cr_expect_eq(weft_rwlock_trywrlock(&g.l), 0,
                 "seed %" PRIu64 ": the lock is free at the end", seed);
    fprintf(stderr, "rwlock stress: seed %" PRIu64 ": %ld writes, %ld reads"
                    " in %lld ms\n", seed, writes, atomic_load(&g.reads_done),
            (long long)(took / WEFT_MSEC));
}

Test(rwlock, stress_virtual_threads_on_two_procs_and_os_threads,
     .timeout = 240)
{
    wt_stress_runs("rwlock", 2, STRESS_RUNS, WT_MS(120000), stress_reset,
                   stress_root, NULL, stress_check);
}
