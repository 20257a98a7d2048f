/* SPDX-License-Identifier: MIT */
/*
 * thread.c — virtual threads: spawn, join, detach, names, weft_run, yield,
 * errno across carriers, the structured rule that a thread waits for its
 * children.
 */
#include "wt.h"

#include <fenv.h>
#include <unistd.h>

/* ------------------------------------------------------------ spawn/join */

static atomic_int g_ran;

static int set_ran(void *arg)
{
    atomic_store(&g_ran, 1);
    return 0;
}

static int root_spawn_join(void *arg)
{
    weft_thread *t = wt_go(set_ran, NULL);
    WT_REQUIRE(t != NULL);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, 0);
    WT_CHECK(atomic_load(&g_ran) == 1);
    return 0;
}

Test(thread, spawn_join_runs_child, .timeout = 10)
{
    WT_RUN(root_spawn_join, NULL, .procs = 2);
    cr_assert_eq(atomic_load(&g_ran), 1);
}

static int ret_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

static int root_join_null_result(void *arg)
{
    weft_thread *t = wt_go(ret_arg, (void *)0);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    return 0;
}

Test(thread, join_with_null_result_pointer, .timeout = 10)
{
    WT_RUN(root_join_null_result, NULL, .procs = 1);
}

/* A cancelled child's result is ECANCELED (not a failure), seen via join. */
static int sleep_long(void *arg)
{
    return weft_sleep(WT_MS(10000));
}

static int root_join_cancelled_result(void *arg)
{
    weft_thread *t = wt_go(sleep_long, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    WT_CHECK_EQ(weft_cancel(t), 0);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, ECANCELED);
    return 0;
}

Test(thread, join_propagates_result_of_cancelled_child, .timeout = 10)
{
    WT_RUN(root_join_cancelled_result, NULL, .procs = 2);
}

/* A child that fails cancels its parent (the owner of the implicit scope it
 * belongs to): the parent's join is a cancellation point and returns
 * ECANCELED, leaving the child joinable; an OS thread (not cancelled) can
 * still join it and get its result. The failure reaches weft_run. */
static int root_join_failed_child(void *arg)
{
    weft_thread *t = wt_go(ret_arg, (void *)(intptr_t)EPROTO);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ECANCELED); /* t has failed */
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), ECANCELED);
    WT_CHECK_EQ(r, -1);
    static struct wt_os_join j;
    WT_REQUIRE_EQ(wt_join_from_os_thread(&j, t), 0); /* still joinable */
    WT_CHECK_EQ(j.rc, 0);
    WT_CHECK_EQ(j.result, EPROTO);
    return 0;
}

Test(thread, join_by_cancelled_parent_is_ecanceled_and_keeps_child_joinable,
     .timeout = 10)
{
    WT_RUN(root_join_failed_child, NULL, .procs = 1, .want = EPROTO);
}

/* A plain OS thread joins a virtual thread: it gets the child's result. */
static int fail_after_sleep(void *arg)
{
    weft_sleep(WT_MS(10));
    return (int)(intptr_t)arg;
}

static int root_os_thread_joins(void *arg)
{
    static struct wt_os_join j;
    weft_thread *t = wt_go(fail_after_sleep, (void *)(intptr_t)EIO);
    WT_REQUIRE(t != NULL);
    /* The child's failure cancels this thread: wait without a
     * cancellation point. */
    WT_REQUIRE_EQ(wt_join_from_os_thread(&j, t), 0);
    WT_CHECK_EQ(j.rc, 0);
    WT_CHECK_EQ(j.result, EIO);
    return 0;
}

Test(thread, os_thread_joins_virtual_thread, .timeout = 10)
{
    /* The root returned 0, its child failed: the child's error. */
    WT_RUN(root_os_thread_joins, NULL, .procs = 2, .want = EIO);
}

/* --------------------------------------------------------- self and name */

static weft_thread *g_self_seen;
static char g_name_seen[64];

static int record_self(void *arg)
{
    g_self_seen = weft_self();
    const char *n = g_self_seen ? weft_name(g_self_seen) : NULL;
    snprintf(g_name_seen, sizeof g_name_seen, "%s", n ? n : "(null)");
    return 0;
}

static int root_self_name(void *arg)
{
    WT_CHECK(weft_self() != NULL);
    weft_thread *t = wt_go_named("worker-1", record_self, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK(t != weft_self());
    WT_CHECK(strcmp(weft_name(t), "worker-1") == 0);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK(g_self_seen == t);
    WT_CHECK_MSG(strcmp(g_name_seen, "worker-1") == 0,
                 "name seen by the thread: '%s'", g_name_seen);
    return 0;
}

Test(thread, self_and_name, .timeout = 10)
{
    cr_assert_null(weft_self(), "weft_self on an OS thread must be NULL");
    WT_RUN(root_self_name, NULL, .procs = 2);
}

static int root_name_truncated(void *arg)
{
    const char *longname = "0123456789abcdefghijklmnopqrstuvwxyz-long-name";
    weft_thread *t = wt_go_named(longname, record_self, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_MSG(strncmp(weft_name(t), longname, 31) == 0 &&
                     strlen(weft_name(t)) == 31,
                 "name '%s' is not the first 31 bytes", weft_name(t));
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    return 0;
}

Test(thread, long_name_is_truncated_to_31_bytes, .timeout = 10)
{
    WT_RUN(root_name_truncated, NULL, .procs = 1);
}

static int root_name_copied(void *arg)
{
    char buf[32];
    snprintf(buf, sizeof buf, "copied-name");
    weft_attr a = {0};
    a.name = buf;
    weft_thread *t = weft_go_with(&a, record_self, NULL);
    WT_REQUIRE(t != NULL);
    memset(buf, 'X', sizeof buf - 1);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_MSG(strcmp(g_name_seen, "copied-name") == 0,
                 "name seen: '%s'", g_name_seen);
    return 0;
}

Test(thread, name_is_copied_at_spawn, .timeout = 10)
{
    WT_RUN(root_name_copied, NULL, .procs = 1);
}

static int root_default_name(void *arg)
{
    weft_thread *t = wt_go(record_self, NULL);
    WT_REQUIRE(t != NULL);
    const char *n = weft_name(t);
    WT_CHECK_MSG(n != NULL && strchr(n, '@') != NULL,
                 "default name '%s' is not fn@address", n ? n : "(null)");
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    return 0;
}

Test(thread, default_name_is_fn_at_address, .timeout = 10)
{
    WT_RUN(root_default_name, NULL, .procs = 1);
}

/* ------------------------------------------------------------ join errors */

static weft_sem g_gate = WEFT_SEM_INIT(0);

static int wait_gate(void *arg)
{
    return weft_sem_acquire(&g_gate);
}

static int root_join_errors(void *arg)
{
    WT_CHECK_EQ(weft_join(NULL, NULL), EINVAL);
    WT_CHECK_EQ(weft_join(weft_self(), NULL), EDEADLK);

    weft_thread *t = wt_go(ret_arg, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(weft_join(t, NULL), ESRCH); /* already joined */
    return 0;
}

Test(thread, join_errors_null_self_twice, .timeout = 10)
{
    WT_RUN(root_join_errors, NULL, .procs = 1);
}

static int join_self_child(void *arg)
{
    WT_CHECK_EQ(weft_join(weft_self(), NULL), EDEADLK);
    return 0;
}

static int root_child_join_self(void *arg)
{
    weft_thread *t = wt_go(join_self_child, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    return 0;
}

Test(thread, join_self_in_child_is_edeadlk, .timeout = 10)
{
    WT_RUN(root_child_join_self, NULL, .procs = 2);
}

struct joiner {
    weft_thread *t;
    int rc;
    int result;
    atomic_int joining;
};

static int join_it(void *arg)
{
    struct joiner *j = arg;
    atomic_store(&j->joining, 1); /* no switch before the join begins */
    j->rc = weft_join(j->t, &j->result);
    return 0;
}

static int root_join_being_joined(void *arg)
{
    weft_thread *t = wt_go(wait_gate, NULL);
    WT_REQUIRE(t != NULL);
    struct joiner j = {t, -1, -1, 0};
    weft_thread *jt = wt_go(join_it, &j);
    WT_REQUIRE(jt != NULL);
    while (!atomic_load(&j.joining)) /* jt may start late on a busy CI */
        WT_CHECK_EQ(weft_sleep(WT_MS(1)), 0);
    WT_CHECK_EQ(weft_sleep(WT_MS(20)), 0); /* jt is now waiting in join */
    WT_CHECK_EQ(weft_join(t, NULL), EINVAL);
    WT_CHECK_EQ(weft_detach(t), EINVAL);
    WT_CHECK_EQ(weft_sem_release(&g_gate), 0);
    WT_CHECK_EQ(weft_join(jt, NULL), 0);
    WT_CHECK_EQ(j.rc, 0);
    WT_CHECK_EQ(j.result, 0);
    return 0;
}

Test(thread, join_while_being_joined_is_einval, .timeout = 10)
{
    WT_RUN(root_join_being_joined, NULL, .procs = 2);
}

/* --------------------------------------------------------------- detached */

static atomic_int g_detached_done;

static int detached_body(void *arg)
{
    weft_sleep(WT_MS(30));
    atomic_store(&g_detached_done, 1);
    return 0;
}

static int root_detached_attr(void *arg)
{
    weft_attr a = {0};
    a.name = "detached";
    a.detached = true;
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    weft_thread *t = weft_go_with(&a, detached_body, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), EINVAL);   /* still running: valid */
    WT_CHECK_EQ(weft_detach(t), EINVAL);
    WT_CHECK_EQ(weft_scope_close(s), 0);       /* waits for it */
    WT_CHECK_EQ(atomic_load(&g_detached_done), 1);
    return 0;
}

Test(thread, detached_thread_is_waited_for_by_scope, .timeout = 10)
{
    WT_RUN(root_detached_attr, NULL, .procs = 2);
}

static int root_detach_call(void *arg)
{
    WT_CHECK_EQ(weft_detach(NULL), EINVAL);
    weft_thread *t = wt_go(detached_body, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_detach(t), 0);
    /* Returns at once: the implicit scope still waits for it. */
    return 0;
}

Test(thread, weft_detach_then_run_waits, .timeout = 10)
{
    WT_RUN(root_detach_call, NULL, .procs = 2);
    cr_assert_eq(atomic_load(&g_detached_done), 1);
}

/* A detached child's failure still fails its scope. */
static int root_detached_failure(void *arg)
{
    weft_attr a = {0};
    a.detached = true;
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    WT_REQUIRE(weft_go_with(&a, ret_arg, (void *)(intptr_t)EXDEV) != NULL);
    WT_CHECK_EQ(weft_scope_close(s), EXDEV);
    return 0;
}

Test(thread, detached_child_failure_reaches_scope, .timeout = 10)
{
    WT_RUN(root_detached_failure, NULL, .procs = 2);
}

/* ---------------------------------------------------------------- weft_run */

Test(thread, run_returns_root_result, .timeout = 10)
{
    WT_RUN(ret_arg, (void *)(intptr_t)17, .procs = 1, .want = 17);
    WT_RUN(ret_arg, (void *)(intptr_t)0, .procs = 2);
}

Test(thread, run_can_be_called_again_after_return, .timeout = 10)
{
    for (int i = 0; i < 3; i++) {
        atomic_store(&g_ran, 0);
        WT_RUN(root_spawn_join, NULL, .procs = 1 + (i & 1));
        cr_assert_eq(atomic_load(&g_ran), 1);
    }
}

Test(thread, run_null_fn_is_einval, .timeout = 10)
{
    cr_assert_eq(weft_run(NULL, NULL, NULL), EINVAL);
}

Test(thread, run_with_absurd_procs_is_einval, .timeout = 10)
{
    weft_config cfg = {.procs = UINT32_MAX};
    cr_assert_eq(weft_run(ret_arg, NULL, &cfg), EINVAL);
}

Test(thread, run_with_null_config_uses_defaults, .timeout = 10)
{
    cr_assert_eq(weft_run(root_spawn_join, NULL, NULL), 0);
    wt_assert_clean();
}

static int root_nested_run(void *arg)
{
    WT_CHECK_EQ(weft_run(ret_arg, NULL, NULL), EBUSY);
    return 0;
}

Test(thread, run_inside_virtual_thread_is_ebusy, .timeout = 10)
{
    WT_RUN(root_nested_run, NULL, .procs = 1);
}

static void *os_run_main(void *arg)
{
    *(int *)arg = weft_run(ret_arg, NULL, NULL);
    return NULL;
}

static int root_run_from_other_os_thread(void *arg)
{
    int rc = -1;
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_run_main, &rc), 0);
    pthread_join(pt, NULL);
    WT_CHECK_EQ(rc, EBUSY);
    return 0;
}

Test(thread, run_from_another_os_thread_while_running_is_ebusy, .timeout = 10)
{
    WT_RUN(root_run_from_other_os_thread, NULL, .procs = 2);
}

/* --------------------------------------------------- calls on an OS thread */

static void *os_go_main(void *arg)
{
    errno = 0;
    weft_thread *t = weft_go(ret_arg, NULL);
    int *out = arg;
    out[0] = t == NULL;
    out[1] = errno;
    errno = 0;
    out[2] = weft_scope_open() == NULL;
    out[3] = errno;
    out[4] = weft_self() == NULL;
    out[5] = weft_cancelled();
    return NULL;
}

Test(thread, go_from_os_thread_is_eperm, .timeout = 10)
{
    errno = 0;
    cr_assert_null(weft_go(ret_arg, NULL));
    cr_assert_eq(errno, EPERM);
    weft_attr a = {0};
    errno = 0;
    cr_assert_null(weft_go_with(&a, ret_arg, NULL));
    cr_assert_eq(errno, EPERM);
}

static int root_os_thread_go(void *arg)
{
    int out[6] = {0};
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_go_main, out), 0);
    pthread_join(pt, NULL);
    WT_CHECK(out[0]);
    WT_CHECK_EQ(out[1], EPERM);
    WT_CHECK(out[2]);
    WT_CHECK_EQ(out[3], EPERM);
    WT_CHECK(out[4]);
    WT_CHECK(!out[5]);
    return 0;
}

Test(thread, go_from_os_thread_while_running_is_eperm, .timeout = 10)
{
    WT_RUN(root_os_thread_go, NULL, .procs = 2);
}

static int root_go_einval(void *arg)
{
    errno = 0;
    WT_CHECK(weft_go(NULL, NULL) == NULL);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    weft_attr a = {0};
    errno = 0;
    WT_CHECK(weft_go_with(&a, NULL, NULL) == NULL);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    return 0;
}

Test(thread, go_null_fn_is_einval, .timeout = 10)
{
    WT_RUN(root_go_einval, NULL, .procs = 1);
}

/* ------------------------------------------- a thread waits for children */

static atomic_int g_child_flag;

static int slow_set_flag(void *arg)
{
    weft_sleep(WT_MS(50));
    atomic_store(&g_child_flag, 1);
    return 0;
}

static int root_returns_first(void *arg)
{
    WT_REQUIRE(wt_go(slow_set_flag, NULL) != NULL);
    return 0;
}

Test(thread, run_waits_for_children_of_returned_root, .timeout = 10)
{
    WT_RUN(root_returns_first, NULL, .procs = 2);
    cr_assert_eq(atomic_load(&g_child_flag), 1,
                 "weft_run returned before the root's child finished");
}

static int middle_returns_first(void *arg)
{
    WT_REQUIRE(wt_go(slow_set_flag, NULL) != NULL);
    return 0;
}

static int root_join_middle(void *arg)
{
    weft_thread *t = wt_go(middle_returns_first, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_MSG(atomic_load(&g_child_flag) == 1,
                 "join returned before the joined thread's child finished");
    return 0;
}

Test(thread, join_waits_for_grandchildren, .timeout = 10)
{
    WT_RUN(root_join_middle, NULL, .procs = 2);
}

/* ------------------------------------------------------ errno and carriers */

struct errno_worker {
    int id;
    weft_sem *go;   /* released by an OS thread: wakes us from off-P */
    atomic_int migrations;
};

static atomic_int g_errno_migrations;

static int errno_body(void *arg)
{
    struct errno_worker *w = arg;
    for (int i = 0; i < 200; i++) {
        int v = 1000 + w->id * 1000 + i;
        wt_set_errno(v);
        pthread_t before = wt_carrier();
        switch (i % 3) {
        case 0: weft_yield(); break;
        case 1: weft_sleep(WT_US(100)); break;
        case 2: WT_CHECK_EQ(weft_sem_acquire(w->go), 0); break;
        }
        if (!pthread_equal(before, wt_carrier()))
            atomic_fetch_add(&g_errno_migrations, 1);
        int got = wt_errno();
        if (got != v) {
            WT_CHECK_EQ(got, v);
            return 0;
        }
    }
    return 0;
}

struct releaser {
    weft_sem *sems;
    int n;
    atomic_int stop;
};

static void *release_loop(void *arg)
{
    struct releaser *r = arg;
    while (!atomic_load(&r->stop)) {
        for (int i = 0; i < r->n; i++)
            weft_sem_release(&r->sems[i]);
        usleep(50);
    }
    return NULL;
}

#define ERRNO_WORKERS 8

static int root_errno(void *arg)
{
    static weft_sem sems[ERRNO_WORKERS];
    static struct errno_worker w[ERRNO_WORKERS];
    static struct releaser rel;
    for (int i = 0; i < ERRNO_WORKERS; i++) {
        weft_sem_init(&sems[i], 0);
        w[i].id = i;
        w[i].go = &sems[i];
    }
    rel.sems = sems;
    rel.n = ERRNO_WORKERS;
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, release_loop, &rel), 0);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    for (int i = 0; i < ERRNO_WORKERS; i++)
        WT_CHECK(wt_go(errno_body, &w[i]) != NULL);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    atomic_store(&rel.stop, 1);
    pthread_join(pt, NULL);
    return 0;
}

Test(thread, errno_survives_park_on_other_carrier, .timeout = 30)
{
    WT_RUN(root_errno, NULL, .procs = 2);
    int m = atomic_load(&g_errno_migrations);
    if (m == 0)
        cr_log_warn("no migration between carriers was observed: errno was "
                    "only checked on one carrier");
    else
        cr_log_info("%d migrations observed", m);
}

/* ------------------------------------------------------------ many threads */

static atomic_long g_many_count;

static int count_one(void *arg)
{
    atomic_fetch_add(&g_many_count, 1);
    return 0;
}

#if WT_SANITIZED
#define MANY_THREADS 20000L
#else
#define MANY_THREADS 100000L
#endif

static int root_many(void *arg)
{
    weft_attr a = {0};
    a.detached = true;
    for (long i = 0; i < MANY_THREADS; i++) {
        weft_thread *t = (i & 1) ? weft_go(count_one, NULL)
                                 : weft_go_with(&a, count_one, NULL);
        if (t == NULL) {
            WT_CHECK_MSG(0, "spawn %ld failed: errno %d", i, wt_errno());
            return WT_EFAIL;
        }
    }
    return 0;
}

Test(thread, hundred_thousand_threads_all_finish, .timeout = 60)
{
    WT_RUN(root_many, NULL, .procs = 2);
    cr_assert_eq(atomic_load(&g_many_count), MANY_THREADS);
}

/* ------------------------------------------------------------------ yield */

static atomic_int g_yield_flag;

static int set_yield_flag(void *arg)
{
    atomic_store(&g_yield_flag, 1);
    return 0;
}

static int root_yield(void *arg)
{
    weft_thread *t = wt_go(set_yield_flag, NULL);
    WT_REQUIRE(t != NULL);
    long n = 0;
    while (!atomic_load(&g_yield_flag) && n < 1000000) {
        WT_CHECK_EQ(weft_yield(), 0);
        n++;
    }
    WT_CHECK_MSG(atomic_load(&g_yield_flag) == 1,
                 "child never ran in %ld yields on one P", n);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    return 0;
}

Test(thread, yield_lets_others_run_on_one_proc, .timeout = 10)
{
    WT_RUN(root_yield, NULL, .procs = 1);
}

/* Two threads that only yield take turns on one P: neither starves. */
static atomic_long g_turns[2];

static int turn_taker(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int i = 0; i < 1000; i++) {
        atomic_fetch_add(&g_turns[me], 1);
        weft_yield();
    }
    return 0;
}

static int root_turns(void *arg)
{
    weft_thread *a = wt_go(turn_taker, (void *)0);
    weft_thread *b = wt_go(turn_taker, (void *)1);
    WT_REQUIRE(a && b);
    /* While both run, the counts never drift far apart. */
    long maxgap = 0;
    for (int i = 0; i < 500; i++) {
        long g = atomic_load(&g_turns[0]) - atomic_load(&g_turns[1]);
        if (g < 0)
            g = -g;
        if (g > maxgap && atomic_load(&g_turns[0]) < 1000 &&
            atomic_load(&g_turns[1]) < 1000)
            maxgap = g;
        weft_yield();
    }
    WT_CHECK_EQ(weft_join(a, NULL), 0);
    WT_CHECK_EQ(weft_join(b, NULL), 0);
    WT_CHECK_MSG(maxgap < 100, "yielding threads drifted %ld turns apart",
                 maxgap);
    return 0;
}

Test(thread, yielding_threads_take_turns, .timeout = 10)
{
    WT_RUN(root_turns, NULL, .procs = 1);
    cr_assert_eq(atomic_load(&g_turns[0]), 1000);
    cr_assert_eq(atomic_load(&g_turns[1]), 1000);
}

/* A thread queued behind one that keeps its carrier busy is taken by the
 * idle carrier (a thief takes what has waited a few microseconds), long
 * before the monitor would hand the busy carrier's P off: hog_ms is 2 s
 * here, and the busy thread gives up after 1.5 s. */
static atomic_int g_queued_ran;

static int mark_queued_ran(void *arg)
{
    atomic_store(&g_queued_ran, 1);
    return 0;
}

static int busy_until_marked(void *arg)
{
    int64_t t0 = weft_now();
    while (!atomic_load(&g_queued_ran) && weft_now() - t0 < WT_MS(1500))
        ;
    *(int64_t *)arg = weft_now() - t0;
    return 0;
}

static int root_queued_behind_busy(void *arg)
{
    int64_t busy_for = -1;
    weft_thread *busy = wt_go(busy_until_marked, &busy_for);
    weft_thread *queued = wt_go(mark_queued_ran, NULL);
    WT_REQUIRE(busy && queued);
    WT_CHECK_EQ(weft_join(busy, NULL), 0);
    WT_CHECK_EQ(weft_join(queued, NULL), 0);
    WT_CHECK_MSG(busy_for < WT_MS(500),
                 "the queued thread ran only after %lld ms",
                 (long long)(busy_for / 1000000));
    return 0;
}

Test(thread, a_thread_queued_behind_a_busy_one_runs_on_an_idle_carrier,
     .timeout = 10)
{
    WT_RUN(root_queued_behind_busy, NULL, .procs = 2, .hog_ms = 2000);
}

/* Floating-point modes and SSE status flags belong to each thread: one
 * that rounds upward and has raised "inexact" in SSE arithmetic keeps both
 * across switches, while the thread it takes turns with keeps the default
 * mode and clear flags. (Not the x87 status word: the ABI leaves it to the
 * caller, and feraiseexcept(FE_INEXACT) sets it there.) */
static volatile double g_third = 3.0;

static int fp_keeper(void *arg)
{
    bool upward = arg != NULL;
    int mode = upward ? FE_UPWARD : FE_TONEAREST;
    WT_REQUIRE(fesetround(mode) == 0);
    feclearexcept(FE_ALL_EXCEPT);
    if (upward)
        g_third = 1.0 / g_third; /* inexact, in MXCSR */
    for (int i = 0; i < 1000; i++) {
        weft_yield();
        WT_CHECK_EQ(fegetround(), mode);
        WT_CHECK_EQ(fetestexcept(FE_INEXACT) != 0, upward);
    }
    return 0;
}

static int root_fp_modes(void *arg)
{
    weft_thread *a = wt_go(fp_keeper, (void *)1);
    weft_thread *b = wt_go(fp_keeper, NULL);
    WT_REQUIRE(a && b);
    WT_CHECK_EQ(weft_join(a, NULL), 0);
    WT_CHECK_EQ(weft_join(b, NULL), 0);
    return 0;
}

Test(thread, floating_point_modes_and_flags_are_per_thread, .timeout = 10)
{
    WT_RUN(root_fp_modes, NULL, .procs = 1);
}

Test(thread, yield_on_os_thread_returns_zero, .timeout = 10)
{
    cr_assert_eq(weft_yield(), 0);
}

/* ---------------------------------------------------------------- cancel */

static int root_cancel_errors(void *arg)
{
    WT_CHECK_EQ(weft_cancel(NULL), EINVAL);
    weft_thread *t = wt_go(sleep_long, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_cancel(t), 0);
    WT_CHECK_EQ(weft_cancel(t), 0); /* idempotent */
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, ECANCELED);
    WT_CHECK_EQ(weft_cancel(t), ESRCH); /* already joined */
    return 0;
}

Test(thread, cancel_null_is_einval_and_cancel_is_idempotent, .timeout = 10)
{
    WT_RUN(root_cancel_errors, NULL, .procs = 2);
}

/* ------------------------------------------------------------- deadlock */

static int root_deadlock(void *arg)
{
    static weft_sem never = WEFT_SEM_INIT(0);
    return weft_sem_acquire(&never);
}

Test(thread, all_threads_blocked_ends_run_with_edeadlk, .timeout = 10)
{
    /* DESIGN.md §3: no runnable thread, no timer, no I/O, no OS thread
     * that used a weft object -> the run ends with EDEADLK. */
    WT_RUN(root_deadlock, NULL, .procs = 2, .want = EDEADLK);
}

/* No false positives: a wait that an OS thread holding the other end of a
 * channel, or a pending timer, will end is not a deadlock, even when it
 * lasts longer than the detector's grace (500 ms). */
static weft_chan *g_late;

static void *late_os_sender(void *arg)
{
    int v = 7;
    /* Touching the channel makes this OS thread known to the runtime. */
    WT_CHECK_EQ(weft_chan_try_recv(g_late, &v), EAGAIN);
    wt_block_ms(800);
    WT_CHECK_EQ(weft_chan_send(g_late, &v), 0);
    return NULL;
}

static int late_vt_sender(void *arg)
{
    int v = 7;
    WT_CHECK_EQ(weft_sleep(WT_MS(800)), 0);
    return weft_chan_send(g_late, &v);
}

static int root_waits_for_late_value(void *arg)
{
    bool from_os = arg != NULL;
    pthread_t pt;
    if (from_os)
        WT_REQUIRE_EQ(pthread_create(&pt, NULL, late_os_sender, NULL), 0);
    else
        WT_REQUIRE(wt_go(late_vt_sender, NULL) != NULL);
    int v = 0;
    WT_CHECK_EQ(weft_chan_recv(g_late, &v), 0);
    WT_CHECK_EQ(v, 7);
    if (from_os)
        pthread_join(pt, NULL);
    return 0;
}

static void run_late_value(bool from_os)
{
    g_late = weft_chan_make(sizeof(int), 0);
    cr_assert_not_null(g_late);
    WT_RUN(root_waits_for_late_value, from_os ? (void *)1 : NULL, .procs = 2);
    weft_chan_free(g_late);
}

Test(thread, os_thread_holding_a_channel_end_is_not_a_deadlock, .timeout = 10)
{
    run_late_value(true);
}

Test(thread, pending_timer_is_not_a_deadlock, .timeout = 10)
{
    run_late_value(false);
}

/* A P's owner takes from its queue without a locked instruction while no
 * thief is at work (src/sched/runq.h), and thieves take threads that
 * waited. Here threads yield, some after a spin long enough for the
 * threads queued behind them to be stolen: each thread is queued and
 * taken thousands of times between the two carriers, and none may ever
 * run twice at once or be lost (the scope's close would then hang: the
 * time-out). */
enum { STEAL_THREADS = 48, STEAL_TURNS = 3000 };

struct steal_race {
    atomic_int running[STEAL_THREADS];
    atomic_int twice;
    atomic_long turns;
};

struct steal_kid {
    struct steal_race *race;
    int index;
};

static int steal_kid_main(void *arg)
{
    struct steal_kid *k = arg;
    struct steal_race *r = k->race;
    for (int i = 0; i < STEAL_TURNS; i++) {
        if (atomic_fetch_add(&r->running[k->index], 1) != 0)
            atomic_fetch_add(&r->twice, 1);
        if (i % 7 == k->index % 7) { /* hold the carrier ~30 us */
            int64_t until = weft_now() + WT_US(30);
            while (weft_now() < until)
                ;
        }
        atomic_fetch_sub(&r->running[k->index], 1);
        atomic_fetch_add(&r->turns, 1);
        weft_yield();
    }
    return 0;
}

static int root_steals_race_owner(void *arg)
{
    struct steal_race *r = calloc(1, sizeof *r);
    struct steal_kid *k = calloc(STEAL_THREADS, sizeof *k);
    WT_REQUIRE(r && k);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < STEAL_THREADS; i++) {
        k[i] = (struct steal_kid){r, i};
        WT_REQUIRE(wt_go(steal_kid_main, &k[i]) != NULL);
    }
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    WT_CHECK_EQ(atomic_load(&r->twice), 0);
    WT_CHECK_EQ(atomic_load(&r->turns), (long)STEAL_THREADS * STEAL_TURNS);
    free(k);
    free(r);
    return 0;
}

Test(thread, threads_stolen_while_their_owner_takes_run_once, .timeout = 60)
{
    WT_RUN(root_steals_race_owner, NULL, .procs = 2);
}
