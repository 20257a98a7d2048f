/* SPDX-License-Identifier: MIT */
/*
 * scope.c — scopes: waiting for children, failure cancels siblings and the
 * owner, explicit cancellation, deadlines, nesting, weft_cancel on a
 * subtree, the implicit scope of every thread, misuse.
 */
#include "wt.h"

#if WT_SANITIZED
#define SLACK_MS 200
#else
#define SLACK_MS 50
#endif

static int ret_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

/* A child that sleeps, records how its sleep ended and when. */
struct sleeper {
    int64_t ns;
    int rc;
    int64_t woke_at;
    atomic_int done;
};

static int sleeper_body(void *arg)
{
    struct sleeper *s = arg;
    s->rc = weft_sleep(s->ns);
    s->woke_at = weft_now();
    atomic_store(&s->done, 1);
    return s->rc;
}

/* A child that sleeps, then fails with `code`, recording when. */
struct failer {
    int64_t ns;
    int code;
    int64_t failed_at;
};

static int failer_body(void *arg)
{
    struct failer *f = arg;
    if (f->ns)
        weft_sleep(f->ns);
    f->failed_at = weft_now();
    return f->code;
}

/* --------------------------------------------------------- close waits */

static int root_close_waits(void *arg)
{
    struct sleeper s[3] = {
        {.ns = WT_MS(20)}, {.ns = WT_MS(30)}, {.ns = WT_MS(40)}};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < 3; i++)
        WT_REQUIRE(wt_go(sleeper_body, &s[i]) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    for (int i = 0; i < 3; i++) {
        WT_CHECK_EQ(atomic_load(&s[i].done), 1);
        WT_CHECK_EQ(s[i].rc, 0);
    }
    return 0;
}

Test(scope, close_waits_for_children, .timeout = 10)
{
    WT_RUN(root_close_waits, NULL, .procs = 2);
}

static int root_close_empty(void *arg)
{
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    return 0;
}

Test(scope, close_of_empty_scope_is_zero, .timeout = 10)
{
    WT_RUN(root_close_empty, NULL, .procs = 1);
}

/* ------------------------------------------------ failure cancels siblings */

static int root_failure_cancels_sibling(void *arg)
{
    struct sleeper s = {.ns = WT_MS(10000)};
    struct failer f = {.ns = WT_MS(10), .code = EIO};
    int64_t t0 = wt_mark_now();
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_REQUIRE(wt_go(sleeper_body, &s) != NULL);
    WT_REQUIRE(wt_go(failer_body, &f) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), EIO);
    WT_CHECK_EQ(atomic_load(&s.done), 1);
    WT_CHECK_EQ(s.rc, ECANCELED);
    int64_t lag = s.woke_at - f.failed_at;
    WT_CHECK_MSG(lag < WT_MS(SLACK_MS),
                 "sibling woke %lld us after the failure", (long long)lag / 1000);
    WT_CHECK(wt_own_since(t0) < WT_MS(1000));
    return 0;
}

Test(scope, first_failure_cancels_sibling_and_close_returns_it, .timeout = 20)
{
    /* The failure stops at weft_scope_close: the root returns 0. */
    WT_RUN(root_failure_cancels_sibling, NULL, .procs = 2);
}

Test(scope, first_failure_cancels_sibling_one_proc, .timeout = 20)
{
    WT_RUN(root_failure_cancels_sibling, NULL, .procs = 1);
}

static int root_first_failure_wins(void *arg)
{
    struct failer f1 = {.ns = WT_MS(5), .code = EIO};
    struct failer f2 = {.ns = WT_MS(60), .code = ENOENT};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_REQUIRE(wt_go(failer_body, &f2) != NULL);
    WT_REQUIRE(wt_go(failer_body, &f1) != NULL);
    /* f2's sleep is cancelled by f1's failure; it then fails too. */
    WT_CHECK_EQ(weft_scope_close(sc), EIO);
    return 0;
}

Test(scope, close_returns_the_first_of_several_failures, .timeout = 10)
{
    WT_RUN(root_first_failure_wins, NULL, .procs = 2);
}

/* -------------------------------------- the owner is cancelled as well */

static int root_owner_cancelled(void *arg)
{
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_CHECK(!weft_cancelled());
    WT_REQUIRE(wt_go(ret_arg, (void *)(intptr_t)EIO) != NULL);
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ECANCELED);
    WT_CHECK_MSG(wt_own_since(t0) < WT_MS(SLACK_MS),
                 "owner's sleep took %lld us to be cancelled",
                 (long long)(weft_now() - t0) / 1000);
    WT_CHECK(weft_cancelled());

    /* Cancellation stays in force for the rest of the scope. */
    t0 = wt_mark_now();
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ECANCELED);
    WT_CHECK_EQ(weft_sleep(0), ECANCELED);
    WT_CHECK(wt_own_since(t0) < WT_MS(SLACK_MS)); /* at once, bar VM stalls */
    WT_CHECK(weft_cancelled());

    WT_CHECK_EQ(weft_scope_close(sc), EIO);

    /* ... and not after close. */
    WT_CHECK(!weft_cancelled());
    WT_CHECK_EQ(weft_sleep(WT_MS(1)), 0);
    WT_CHECK_EQ(weft_sleep(0), 0);
    return 0;
}

Test(scope, failure_cancels_owner_until_close, .timeout = 20)
{
    WT_RUN(root_owner_cancelled, NULL, .procs = 2);
}

/* ------------------------------------------------------ explicit cancel */

static int root_scope_cancel(void *arg)
{
    struct sleeper s[4];
    memset(s, 0, sizeof s);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < 4; i++) {
        s[i].ns = WT_MS(10000);
        WT_REQUIRE(wt_go(sleeper_body, &s[i]) != NULL);
    }
    WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    int64_t t0 = wt_mark_now();
    weft_scope_cancel(sc);
    weft_scope_cancel(sc); /* idempotent */
    WT_CHECK(weft_cancelled());
    WT_CHECK_EQ(weft_scope_close(sc), ECANCELED);
    WT_CHECK(wt_own_since(t0) < WT_MS(SLACK_MS));
    for (int i = 0; i < 4; i++)
        WT_CHECK_EQ(s[i].rc, ECANCELED);
    return 0;
}

Test(scope, scope_cancel_cancels_children_and_close_returns_ecanceled,
     .timeout = 20)
{
    WT_RUN(root_scope_cancel, NULL, .procs = 2);
}

/* A child cancels its own scope (weft_scope_cancel runs on any thread). */
static int cancel_scope_body(void *arg)
{
    weft_sleep(WT_MS(5));
    weft_scope_cancel(arg);
    return 0;
}

static int root_child_cancels_scope(void *arg)
{
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_REQUIRE(wt_go(cancel_scope_body, sc) != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ECANCELED);
    WT_CHECK_EQ(weft_scope_close(sc), ECANCELED);
    return 0;
}

Test(scope, child_can_cancel_its_scope, .timeout = 20)
{
    WT_RUN(root_child_cancels_scope, NULL, .procs = 2);
}

/* Cancelled from a plain OS thread. */
static void *os_cancel_main(void *arg)
{
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    weft_scope_cancel(arg);
    return NULL;
}

static int root_os_cancels_scope(void *arg)
{
    struct sleeper s = {.ns = WT_MS(10000)};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_REQUIRE(wt_go(sleeper_body, &s) != NULL);
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_cancel_main, sc), 0);
    WT_CHECK_EQ(weft_scope_close(sc), ECANCELED);
    WT_CHECK_EQ(s.rc, ECANCELED);
    pthread_join(pt, NULL);
    return 0;
}

Test(scope, os_thread_can_cancel_a_scope, .timeout = 20)
{
    WT_RUN(root_os_cancels_scope, NULL, .procs = 2);
}

/* ------------------------------------------------------------- deadline */

static int root_deadline(void *arg)
{
    struct sleeper s = {.ns = WT_MS(10000)};
    int64_t t0 = wt_mark_now();
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_scope_deadline(sc, t0 + WT_MS(20));
    WT_REQUIRE(wt_go(sleeper_body, &s) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    int64_t took = wt_own_since(t0);
    WT_CHECK_EQ(s.rc, ETIMEDOUT);
    WT_CHECK_MSG(s.woke_at >= t0 + WT_MS(20), "woke %lld us early",
                 (long long)(t0 + WT_MS(20) - s.woke_at) / 1000);
    WT_CHECK_MSG(took < WT_MS(20 + SLACK_MS), "close took %lld us",
                 (long long)took / 1000);
    return 0;
}

Test(scope, deadline_times_out_children_and_close, .timeout = 20)
{
    WT_RUN(root_deadline, NULL, .procs = 2);
}

static int root_deadline_owner(void *arg)
{
    int64_t t0 = wt_mark_now();
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_scope_deadline(sc, t0 + WT_MS(20));
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ETIMEDOUT);
    int64_t t1 = weft_now();
    WT_CHECK(t1 >= t0 + WT_MS(20));
    WT_CHECK(wt_own_since(t0) < WT_MS(20 + SLACK_MS));
    WT_CHECK(weft_cancelled());
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ETIMEDOUT);
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    WT_CHECK_EQ(weft_sleep(WT_MS(1)), 0);
    return 0;
}

Test(scope, deadline_times_out_the_owner, .timeout = 20)
{
    WT_RUN(root_deadline_owner, NULL, .procs = 1);
}

static int root_deadline_replaced(void *arg)
{
    int64_t t0 = wt_mark_now();
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_scope_deadline(sc, t0 + WT_MS(10000));
    weft_scope_deadline(sc, t0 + WT_MS(20));
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ETIMEDOUT);
    WT_CHECK(wt_own_since(t0) < WT_MS(20 + SLACK_MS));
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);

    /* A later deadline replaces an earlier one that has not fired. */
    t0 = weft_now();
    sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_scope_deadline(sc, t0 + WT_MS(10));
    weft_scope_deadline(sc, t0 + WT_MS(60));
    WT_CHECK_EQ(weft_sleep(WT_MS(30)), 0);
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ETIMEDOUT);
    WT_CHECK(weft_now() - t0 >= WT_MS(60));
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    return 0;
}

Test(scope, later_deadline_replaces_earlier, .timeout = 20)
{
    WT_RUN(root_deadline_replaced, NULL, .procs = 2);
}

/* A deadline moved forward before each wait, as a server's idle deadline
 * is at every request, never fires while it keeps moving, however often
 * its old times come due; once it stops moving it fires at its last time. */
static int root_deadline_kept_moving(void *arg)
{
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    /* 50 ms ahead: a loaded machine can keep a 1 ms sleep from resuming
     * for tens of ms. 200 ms of this: 150 ms of old times come due. */
    int64_t end = weft_now() + WT_MS(200);
    while (weft_now() < end) {
        weft_scope_deadline(sc, weft_now() + WT_MS(50));
        int rc = weft_sleep(WT_MS(1));
        WT_CHECK_EQ(rc, 0);
        if (rc != 0)
            break;
    }
    int64_t last = weft_now() + WT_MS(5);
    weft_scope_deadline(sc, last);
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ETIMEDOUT);
    WT_CHECK(weft_now() >= last);
    WT_CHECK(weft_now() < last + WT_MS(SLACK_MS));
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    return 0;
}

Test(scope, deadline_moved_forward_before_each_wait_never_fires, .timeout = 20)
{
    WT_RUN(root_deadline_kept_moving, NULL, .procs = 2);
}

/* Sets a scope's deadline to first_ms, then later_ms, then newest_ms from
 * now, and checks that it fires at newest_ms. */
static int check_fires_at_newest(int first_ms, int later_ms, int newest_ms)
{
    int64_t t0 = wt_mark_now();
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_scope_deadline(sc, t0 + WT_MS(first_ms));
    weft_scope_deadline(sc, t0 + WT_MS(later_ms));
    weft_scope_deadline(sc, t0 + WT_MS(newest_ms));
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ETIMEDOUT);
    int64_t took = weft_now() - t0;
    WT_CHECK_MSG(took >= WT_MS(newest_ms) &&
                     wt_own_since(t0) < WT_MS(newest_ms + SLACK_MS),
                 "%d, %d, %d ms: fired after %lld us", first_ms, later_ms,
                 newest_ms, (long long)took / 1000);
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    return 0;
}

/* After a deadline was moved later, moving it earlier again (to a time
 * after the first or before it) takes effect: the scope fires at the
 * newest time, neither at the first nor at the later one. */
static int root_deadline_back_and_forth(void *arg)
{
    WT_REQUIRE_EQ(check_fires_at_newest(20, 2000, 60), 0);
    WT_REQUIRE_EQ(check_fires_at_newest(60, 2000, 20), 0);
    return 0;
}

Test(scope, deadline_moved_later_then_earlier_fires_at_the_newest, .timeout = 20)
{
    WT_RUN(root_deadline_back_and_forth, NULL, .procs = 2);
}

/* weft_scope_deadline from several threads at once, as its contract
 * allows: the scope keeps one deadline, and fires once the movers stop. */
struct mover {
    weft_scope *sc;
    int rounds;
};

static int mover_body(void *arg)
{
    struct mover *mv = arg;
    for (int i = 0; i < mv->rounds; i++) {
        weft_scope_deadline(mv->sc, weft_now() + WT_MS(1000 + i % 7));
        if (i % 64 == 0)
            weft_yield();
    }
    return 0;
}

static int root_deadline_concurrent_movers(void *arg)
{
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    struct mover mv = {.sc = sc, .rounds = 20000};
    weft_scope *movers = weft_scope_open();
    WT_REQUIRE(movers != NULL);
    for (int i = 0; i < 4; i++)
        WT_REQUIRE(wt_go(mover_body, &mv) != NULL);
    WT_CHECK_EQ(weft_scope_close(movers), 0);
    int64_t t0 = wt_mark_now();
    weft_scope_deadline(sc, t0 + WT_MS(10));
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ETIMEDOUT);
    WT_CHECK(wt_own_since(t0) < WT_MS(10 + SLACK_MS));
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    return 0;
}

Test(scope, deadline_set_from_several_threads_at_once, .timeout = 30)
{
    WT_RUN(root_deadline_concurrent_movers, NULL, .procs = 2);
}

static int root_deadline_removed(void *arg)
{
    /* 300 ms: a loaded machine may stall the owner between the two calls
     * for longer than a shorter deadline; the sleeper outlasts it. */
    struct sleeper s = {.ns = WT_MS(600)};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_scope_deadline(sc, weft_now() + WT_MS(300));
    weft_scope_deadline(sc, -1);
    WT_REQUIRE(wt_go(sleeper_body, &s) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    WT_CHECK_EQ(s.rc, 0);
    return 0;
}

Test(scope, negative_deadline_removes_it, .timeout = 20)
{
    WT_RUN(root_deadline_removed, NULL, .procs = 2);
}

static int root_deadline_past(void *arg)
{
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_scope_deadline(sc, weft_now() - WT_MS(1));
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ETIMEDOUT);
    WT_CHECK(wt_own_since(t0) < WT_MS(SLACK_MS));
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    return 0;
}

Test(scope, deadline_in_the_past_fires_at_once, .timeout = 20)
{
    WT_RUN(root_deadline_past, NULL, .procs = 1);
}

/* A child's failure before the deadline wins over the deadline. */
static int root_failure_before_deadline(void *arg)
{
    struct failer f = {.ns = WT_MS(5), .code = EIO};
    struct sleeper s = {.ns = WT_MS(10000)};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    /* Far later than the failure: under a sanitizer on a loaded machine,
     * starting the two threads alone can take 100 ms. */
    weft_scope_deadline(sc, weft_now() + WT_MS(5000));
    WT_REQUIRE(wt_go(failer_body, &f) != NULL);
    WT_REQUIRE(wt_go(sleeper_body, &s) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), EIO);
    WT_CHECK_EQ(s.rc, ECANCELED);
    return 0;
}

Test(scope, failure_before_deadline_is_reported, .timeout = 20)
{
    WT_RUN(root_failure_before_deadline, NULL, .procs = 2);
}

/* ------------------------------------------------------------- nesting */

static int cancel_after_5ms(void *arg)
{
    weft_sleep(WT_MS(5));
    weft_scope_cancel(arg);
    return 0;
}

static int root_nested_same_owner(void *arg)
{
    struct sleeper s = {.ns = WT_MS(10000)};
    weft_scope *outer = weft_scope_open();
    WT_REQUIRE(outer != NULL);
    WT_REQUIRE(wt_go(cancel_after_5ms, outer) != NULL);
    weft_scope *inner = weft_scope_open();
    WT_REQUIRE(inner != NULL);
    WT_REQUIRE(wt_go(sleeper_body, &s) != NULL);
    WT_CHECK_EQ(weft_scope_close(inner), ECANCELED);
    WT_CHECK_EQ(s.rc, ECANCELED);
    WT_CHECK(weft_cancelled()); /* still inside the cancelled outer scope */
    WT_CHECK_EQ(weft_scope_close(outer), ECANCELED);
    WT_CHECK(!weft_cancelled());
    return 0;
}

Test(scope, cancelling_outer_cancels_inner, .timeout = 20)
{
    WT_RUN(root_nested_same_owner, NULL, .procs = 2);
}

/* The inner scope belongs to a child: cancelling the outer scope reaches a
 * grandchild through the child's own scope. */
struct nest {
    struct sleeper gs;
    int inner_close;
};

static int child_with_scope(void *arg)
{
    struct nest *n = arg;
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_REQUIRE(wt_go(sleeper_body, &n->gs) != NULL);
    n->inner_close = weft_scope_close(sc);
    return 0;
}

static int root_nested_child_scope(void *arg)
{
    struct nest n = {.gs = {.ns = WT_MS(10000)}, .inner_close = -1};
    weft_scope *outer = weft_scope_open();
    WT_REQUIRE(outer != NULL);
    WT_REQUIRE(wt_go(child_with_scope, &n) != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(10)), 0);
    weft_scope_cancel(outer);
    WT_CHECK_EQ(weft_scope_close(outer), ECANCELED);
    WT_CHECK_EQ(n.gs.rc, ECANCELED);
    WT_CHECK_EQ(n.inner_close, ECANCELED);
    return 0;
}

Test(scope, cancelling_outer_reaches_grandchild_scope, .timeout = 20)
{
    WT_RUN(root_nested_child_scope, NULL, .procs = 2);
}

/* Cancelling the inner scope does not touch the outer one. */
static int root_inner_cancel_only(void *arg)
{
    struct sleeper outer_s = {.ns = WT_MS(40)};
    weft_scope *outer = weft_scope_open();
    WT_REQUIRE(outer != NULL);
    WT_REQUIRE(wt_go(sleeper_body, &outer_s) != NULL);
    weft_scope *inner = weft_scope_open();
    WT_REQUIRE(inner != NULL);
    weft_scope_cancel(inner);
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ECANCELED);
    WT_CHECK_EQ(weft_scope_close(inner), ECANCELED);
    WT_CHECK(!weft_cancelled());
    WT_CHECK_EQ(weft_sleep(WT_MS(1)), 0);
    WT_CHECK_EQ(weft_scope_close(outer), 0);
    WT_CHECK_EQ(outer_s.rc, 0);
    return 0;
}

Test(scope, cancelling_inner_leaves_outer_alone, .timeout = 20)
{
    WT_RUN(root_inner_cancel_only, NULL, .procs = 2);
}

/* An outer deadline times out work in an inner scope. */
static int root_outer_deadline(void *arg)
{
    struct sleeper s = {.ns = WT_MS(10000)};
    int64_t t0 = wt_mark_now();
    weft_scope *outer = weft_scope_open();
    WT_REQUIRE(outer != NULL);
    weft_scope_deadline(outer, t0 + WT_MS(20));
    weft_scope *inner = weft_scope_open();
    WT_REQUIRE(inner != NULL);
    WT_REQUIRE(wt_go(sleeper_body, &s) != NULL);
    int rc = weft_scope_close(inner);
    WT_CHECK_MSG(rc == ETIMEDOUT || rc == ECANCELED,
                 "inner close returned %d", rc);
    WT_CHECK_MSG(s.rc == ETIMEDOUT || s.rc == ECANCELED,
                 "inner child's sleep returned %d", s.rc);
    WT_CHECK(wt_own_since(t0) < WT_MS(20 + SLACK_MS));
    WT_CHECK_EQ(weft_scope_close(outer), ETIMEDOUT);
    return 0;
}

Test(scope, outer_deadline_reaches_inner_scope, .timeout = 20)
{
    WT_RUN(root_outer_deadline, NULL, .procs = 2);
}

/* ---------------------------------------------------- weft_cancel(thread) */

struct subtree {
    struct sleeper gs;
    int own_rc;
};

static int parent_of_sleeper(void *arg)
{
    struct subtree *st = arg;
    WT_REQUIRE(wt_go(sleeper_body, &st->gs) != NULL);
    st->own_rc = weft_sleep(WT_MS(10000));
    return st->own_rc;
}

static int root_cancel_thread(void *arg)
{
    struct subtree st = {.gs = {.ns = WT_MS(10000)}, .own_rc = -1};
    struct sleeper bystander = {.ns = WT_MS(30)};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_thread *t = wt_go(parent_of_sleeper, &st);
    WT_REQUIRE(t != NULL);
    WT_REQUIRE(wt_go(sleeper_body, &bystander) != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    WT_CHECK_EQ(weft_cancel(t), 0);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, ECANCELED);
    WT_CHECK_EQ(st.own_rc, ECANCELED);
    WT_CHECK_EQ(atomic_load(&st.gs.done), 1); /* t waited for its child */
    WT_CHECK_EQ(st.gs.rc, ECANCELED);
    WT_CHECK(!weft_cancelled());
    /* t returned ECANCELED because it was cancelled: not a failure. */
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    WT_CHECK_EQ(bystander.rc, 0);
    return 0;
}

Test(scope, cancel_thread_cancels_it_and_descendants_only, .timeout = 20)
{
    WT_RUN(root_cancel_thread, NULL, .procs = 2);
}

/* Cancelled and not joined: still not a failure of its scope. */
static int root_cancel_not_failure(void *arg)
{
    struct sleeper a = {.ns = WT_MS(10000)};
    struct sleeper b = {.ns = WT_MS(40)};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_thread *ta = wt_go(sleeper_body, &a);
    WT_REQUIRE(ta != NULL);
    WT_REQUIRE(wt_go(sleeper_body, &b) != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    WT_CHECK_EQ(weft_cancel(ta), 0);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    WT_CHECK_EQ(a.rc, ECANCELED);
    WT_CHECK_EQ(b.rc, 0); /* the sibling was not cancelled */
    return 0;
}

Test(scope, cancelled_thread_returning_ecanceled_is_not_a_failure,
     .timeout = 20)
{
    WT_RUN(root_cancel_not_failure, NULL, .procs = 2);
}

/* A thread cancelled before it first runs still runs and sees ECANCELED. */
static atomic_int g_early_ran;

static int early_body(void *arg)
{
    atomic_store(&g_early_ran, 1);
    WT_CHECK(weft_cancelled());
    return weft_sleep(WT_MS(10000));
}

static int root_cancel_before_run(void *arg)
{
    weft_thread *t = wt_go(early_body, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_cancel(t), 0);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, ECANCELED);
    return 0;
}

Test(scope, thread_cancelled_before_first_run, .timeout = 20)
{
    WT_RUN(root_cancel_before_run, NULL, .procs = 1);
}

/* ----------------------------------------------------- the implicit scope */

static int returns_zero_child_fails(void *arg)
{
    WT_REQUIRE(wt_go(ret_arg, (void *)(intptr_t)EIO) != NULL);
    return 0;
}

static int root_implicit_top(void *arg)
{
    WT_REQUIRE(wt_go(ret_arg, (void *)(intptr_t)ENOSPC) != NULL);
    return 0;
}

Test(scope, implicit_scope_child_failure_reaches_weft_run, .timeout = 20)
{
    WT_RUN(root_implicit_top, NULL, .procs = 2, .want = ENOSPC);
}

/* The thread's own non-zero result wins over its child's failure. */
static int root_own_result_wins(void *arg)
{
    WT_REQUIRE(wt_go(ret_arg, (void *)(intptr_t)ENOSPC) != NULL);
    weft_sleep(WT_MS(20)); /* cancelled by the child's failure */
    return EMLINK;
}

Test(scope, thread_own_failure_wins_over_child_failure, .timeout = 20)
{
    WT_RUN(root_own_result_wins, NULL, .procs = 2, .want = EMLINK);
}

/* Joined from an OS thread (which is not cancelled by the failure). */
static int root_implicit_join(void *arg)
{
    static struct wt_os_join j;
    weft_thread *t = wt_go(returns_zero_child_fails, NULL);
    WT_REQUIRE(t != NULL);
    WT_REQUIRE_EQ(wt_join_from_os_thread(&j, t), 0);
    WT_CHECK_EQ(j.rc, 0);
    WT_CHECK_EQ(j.result, EIO);
    return 0;
}

Test(scope, implicit_scope_child_failure_is_thread_result, .timeout = 20)
{
    WT_RUN(root_implicit_join, NULL, .procs = 2, .want = EIO);
}

/* An explicit scope stops the failure: the owner's implicit scope does not
 * see it. */
static int child_catches_in_scope(void *arg)
{
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_REQUIRE(wt_go(ret_arg, (void *)(intptr_t)EIO) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), EIO);
    return 0;
}

static int root_explicit_stops(void *arg)
{
    weft_thread *t = wt_go(child_catches_in_scope, NULL);
    WT_REQUIRE(t != NULL);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, 0);
    return 0;
}

Test(scope, explicit_scope_stops_failure_propagation, .timeout = 20)
{
    WT_RUN(root_explicit_stops, NULL, .procs = 2);
}

/* ------------------------------------------- cancellation attribution */

/* A child that calls a "library" which, when its wait is cancelled, turns
 * the cancellation into an error of its own (as libcurl returns "bad
 * argument"): returns `code` in place of ECANCELED / ETIMEDOUT. */
struct translator {
    int64_t ns;
    int code;
    int saw;          /* what the wait returned */
    atomic_int done;
};

static int translator_body(void *arg)
{
    struct translator *t = arg;
    t->saw = weft_sleep(t->ns);
    atomic_store(&t->done, 1);
    return t->saw ? t->code : 0;
}

/* The deadline passes, then the child fails with EIO: close says
 * ETIMEDOUT. */
static int root_deadline_then_failure(void *arg)
{
    struct translator t = {.ns = WT_MS(10000), .code = EIO};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_scope_deadline(sc, weft_now() + WT_MS(10));
    WT_REQUIRE(wt_go(translator_body, &t) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    WT_CHECK_EQ(t.saw, ETIMEDOUT);
    return 0;
}

Test(scope, failure_after_deadline_reports_etimedout, .timeout = 20)
{
    WT_RUN(root_deadline_then_failure, NULL, .procs = 2);
}

/* A child fails with EIO first: it caused the cancellation, so close says
 * EIO, although a sibling then fails too (translating its ECANCELED) and
 * the scope's deadline passes before close. */
static int root_failure_then_translated(void *arg)
{
    struct failer f = {.ns = WT_MS(5), .code = EIO};
    struct translator t = {.ns = WT_MS(10000), .code = EPIPE};
    struct sleeper s = {.ns = WT_MS(10000)};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_REQUIRE(wt_go(translator_body, &t) != NULL);
    WT_REQUIRE(wt_go(sleeper_body, &s) != NULL);
    WT_REQUIRE(wt_go(failer_body, &f) != NULL);
    /* The failure cancels the owner too: after this, it has happened. */
    WT_CHECK_EQ(weft_sleep(WT_MS(10000)), ECANCELED);
    weft_scope_deadline(sc, weft_now());
    WT_CHECK_EQ(weft_scope_close(sc), EIO);
    WT_CHECK_EQ(t.saw, ECANCELED); /* the siblings were cancelled */
    WT_CHECK_EQ(s.rc, ECANCELED);
    return 0;
}

Test(scope, failure_before_cancellation_still_wins, .timeout = 20)
{
    WT_RUN(root_failure_then_translated, NULL, .procs = 2);
}

/* weft_scope_cancel, then the child fails with EPIPE: close says
 * ECANCELED. */
static int root_cancel_then_failure(void *arg)
{
    struct translator t = {.ns = WT_MS(10000), .code = EPIPE};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_REQUIRE(wt_go(translator_body, &t) != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    weft_scope_cancel(sc);
    WT_CHECK_EQ(weft_scope_close(sc), ECANCELED);
    WT_CHECK_EQ(t.saw, ECANCELED);
    return 0;
}

Test(scope, failure_after_scope_cancel_reports_ecanceled, .timeout = 20)
{
    WT_RUN(root_cancel_then_failure, NULL, .procs = 2);
}

/* The implicit scope: a parent whose function returns 0 while its child
 * fails (translating) after the parent was cancelled finishes with the
 * cancellation's reason; that is no failure of the parent's own scope. */
static int parent_of_translator(void *arg)
{
    WT_REQUIRE(wt_go(translator_body, arg) != NULL);
    return 0;
}

static int root_implicit_cancel_then_failure(void *arg)
{
    struct translator t = {.ns = WT_MS(10000), .code = EIO};
    struct sleeper bystander = {.ns = WT_MS(30)};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_thread *p = wt_go(parent_of_translator, &t);
    WT_REQUIRE(p != NULL);
    WT_REQUIRE(wt_go(sleeper_body, &bystander) != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    WT_CHECK_EQ(weft_cancel(p), 0);
    int r = -1;
    WT_CHECK_EQ(weft_join(p, &r), 0);
    WT_CHECK_EQ(r, ECANCELED);
    WT_CHECK_EQ(t.saw, ECANCELED);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    WT_CHECK_EQ(bystander.rc, 0); /* p's result was not a failure */
    return 0;
}

Test(scope, implicit_scope_failure_after_cancel_is_ecanceled, .timeout = 20)
{
    WT_RUN(root_implicit_cancel_then_failure, NULL, .procs = 2);
}

/* The same through a deadline of the parent's home, joined from an OS
 * thread (which the deadline does not cancel). */
static int root_implicit_deadline_then_failure(void *arg)
{
    static struct wt_os_join j;
    struct translator t = {.ns = WT_MS(10000), .code = EIO};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_scope_deadline(sc, weft_now() + WT_MS(10));
    weft_thread *p = wt_go(parent_of_translator, &t);
    WT_REQUIRE(p != NULL);
    WT_REQUIRE_EQ(wt_join_from_os_thread(&j, p), 0);
    WT_CHECK_EQ(j.rc, 0);
    WT_CHECK_EQ(j.result, ETIMEDOUT);
    WT_CHECK_EQ(t.saw, ETIMEDOUT);
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    return 0;
}

Test(scope, implicit_scope_failure_after_deadline_is_etimedout,
     .timeout = 20)
{
    WT_RUN(root_implicit_deadline_then_failure, NULL, .procs = 2);
}

/* At the top: the root cancels itself, then its child fails: weft_run
 * returns ECANCELED. */
static int root_self_cancel_then_failure(void *arg)
{
    static struct translator t = {.ns = WT_MS(10000), .code = EIO};
    WT_REQUIRE(wt_go(translator_body, &t) != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    WT_CHECK_EQ(weft_cancel(weft_self()), 0);
    return 0;
}

Test(scope, weft_run_reports_cancellation_before_child_failure,
     .timeout = 20)
{
    WT_RUN(root_self_cancel_then_failure, NULL, .procs = 2, .want = ECANCELED);
}

/* ----------------------------------------------------------------- misuse */

static int root_close_not_innermost(void *arg)
{
    WT_CHECK_EQ(weft_scope_close(NULL), EINVAL);
    weft_scope *outer = weft_scope_open();
    WT_REQUIRE(outer != NULL);
    weft_scope *inner = weft_scope_open();
    WT_REQUIRE(inner != NULL);
    WT_CHECK(inner != outer);
    WT_CHECK_EQ(weft_scope_close(outer), EINVAL);
    WT_CHECK_EQ(weft_scope_close(inner), 0);
    WT_CHECK_EQ(weft_scope_close(outer), 0);
    return 0;
}

Test(scope, close_of_non_innermost_scope_is_einval, .timeout = 20)
{
    WT_RUN(root_close_not_innermost, NULL, .procs = 1);
}

static int close_foreign(void *arg)
{
    int rc = weft_scope_close(arg);
    /* s is neither this thread's innermost scope nor opened by it. */
    WT_CHECK_MSG(rc == EPERM || rc == EINVAL,
                 "closing another thread's scope returned %d", rc);
    return 0;
}

static int root_close_foreign(void *arg)
{
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_thread *t = wt_go(close_foreign, sc);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    return 0;
}

Test(scope, close_from_another_thread_is_refused, .timeout = 20)
{
    WT_RUN(root_close_foreign, NULL, .procs = 2);
}

Test(scope, open_on_os_thread_is_eperm, .timeout = 10)
{
    errno = 0;
    cr_assert_null(weft_scope_open());
    cr_assert_eq(errno, EPERM);
}

/* ------------------------------------------------------ weft_cancelled() */

struct spinner {
    atomic_int started;
    atomic_long spins;
    int was_cancelled_at_start;
};

static int spin_until_cancelled(void *arg)
{
    struct spinner *sp = arg;
    sp->was_cancelled_at_start = weft_cancelled();
    atomic_store(&sp->started, 1);
    while (!weft_cancelled()) {
        atomic_fetch_add(&sp->spins, 1);
        if ((atomic_load(&sp->spins) & 1023) == 0)
            weft_yield();
    }
    return ECANCELED;
}

static int root_cancelled_flag(void *arg)
{
    struct spinner sp = {0};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_REQUIRE(wt_go(spin_until_cancelled, &sp) != NULL);
    WT_CHECK(wt_yield_until(&sp.started, 100000000L));
    WT_CHECK_EQ(weft_sleep(WT_MS(10)), 0);
    WT_CHECK(!weft_cancelled());
    weft_scope_cancel(sc);
    WT_CHECK(weft_cancelled());
    WT_CHECK_EQ(weft_scope_close(sc), ECANCELED);
    WT_CHECK(!sp.was_cancelled_at_start);
    WT_CHECK(atomic_load(&sp.spins) > 0);
    WT_CHECK(!weft_cancelled());
    return 0;
}

Test(scope, weft_cancelled_becomes_true, .timeout = 20)
{
    cr_assert(!weft_cancelled(), "weft_cancelled on an OS thread");
    WT_RUN(root_cancelled_flag, NULL, .procs = 2);
}

static int root_cancelled_by_thread_cancel(void *arg)
{
    struct spinner sp = {0};
    weft_thread *t = wt_go(spin_until_cancelled, &sp);
    WT_REQUIRE(t != NULL);
    WT_CHECK(wt_yield_until(&sp.started, 100000000L));
    WT_CHECK_EQ(weft_cancel(t), 0);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, ECANCELED);
    return 0;
}

Test(scope, weft_cancelled_true_after_weft_cancel, .timeout = 20)
{
    WT_RUN(root_cancelled_by_thread_cancel, NULL, .procs = 1);
}

/* --------------------------------- deadline firing at a scheduling point */

/* A child whose function returns while its own child still runs, exactly
 * when an enclosing scope's deadline is due: the deadline must cancel the
 * grandchild, and the child must finish. (The deadline timer runs during
 * the child's switch-out, while the child waits for its children.) */
struct due {
    int64_t deadline;
    struct sleeper gs;
};

static int spin_past_deadline_then_return(void *arg)
{
    struct due *d = arg;
    WT_REQUIRE(wt_go(sleeper_body, &d->gs) != NULL);
    weft_yield(); /* the grandchild starts its sleep */
    while (weft_now() < d->deadline + WT_MS(1))
        ; /* no scheduling point: the timer is due when we switch out */
    return 0;
}

static int root_deadline_at_switch(void *arg)
{
    struct due a = {0, {.ns = WT_MS(10000)}};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    a.deadline = weft_now() + WT_MS(5);
    weft_scope_deadline(sc, a.deadline);
    WT_REQUIRE(wt_go(spin_past_deadline_then_return, &a) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    WT_CHECK_EQ(a.gs.rc, ETIMEDOUT);
    return 0;
}

Test(scope, deadline_due_while_child_waits_for_its_children, .timeout = 10)
{
    WT_RUN(root_deadline_at_switch, NULL, .procs = 1);
}

/* The same, for a thread that parks on a semaphore just as the deadline of
 * its scope is due: the deadline interrupts the very wait being entered. */
static int spin_past_deadline_then_acquire(void *arg)
{
    struct due *d = arg;
    static weft_sem never = WEFT_SEM_INIT(0);
    while (weft_now() < d->deadline + WT_MS(1))
        ;
    d->gs.rc = weft_sem_acquire(&never);
    return 0;
}

static int root_deadline_at_sem_park(void *arg)
{
    struct due a = {0, {.ns = 0, .rc = -1}};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    a.deadline = weft_now() + WT_MS(5);
    weft_scope_deadline(sc, a.deadline);
    WT_REQUIRE(wt_go(spin_past_deadline_then_acquire, &a) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    WT_CHECK_EQ(a.gs.rc, ETIMEDOUT);
    return 0;
}

Test(scope, deadline_due_while_thread_parks_on_sem, .timeout = 10)
{
    WT_RUN(root_deadline_at_sem_park, NULL, .procs = 1);
}

/* ------------------------------------------------------ spawn batches */
/* The owner of an opened scope links its children into the scope in
 * batches (src/sched/scope.c: "Spawn batches"): a child spawned since the
 * last batch is not yet in the scope's list, yet every call and every
 * cancel must find it. */

enum { BATCH_KIDS = 1500, BATCH_ROUNDS = 12 };

struct batch_round {
    weft_scope *sc;
    atomic_int cancelled;   /* children whose sleep ended in ECANCELED */
    atomic_int other;       /* children whose sleep ended otherwise */
    int delay_us;           /* the canceller's wait before it cancels */
};

static int batch_sleeper(void *arg)
{
    struct batch_round *r = arg;
    int rc = weft_sleep(WT_MS(60000));
    atomic_fetch_add(rc == ECANCELED ? &r->cancelled : &r->other, 1);
    return 0;
}

static int batch_canceller(void *arg)
{
    struct batch_round *r = arg;
    int64_t until = weft_now() + WT_US(r->delay_us);
    while (weft_now() < until)
        ; /* on the other carrier, while the owner spawns */
    weft_scope_cancel(r->sc);
    return 0;
}

/* A cancel lands while the owner spawns a burst of children: each child,
 * spawned before or after it, in a batch or not, ends its sleep with
 * ECANCELED (one that missed it would sleep a minute: the time-out). */
static int root_cancel_reaches_batched_children(void *arg)
{
    for (int round = 0; round < BATCH_ROUNDS; round++) {
        struct batch_round r = {.delay_us = 20 * round};
        r.sc = weft_scope_open();
        WT_REQUIRE(r.sc != NULL);
        WT_REQUIRE(wt_go(batch_canceller, &r) != NULL);
        int spawned = 0;
        for (; spawned < BATCH_KIDS; spawned++)
            WT_REQUIRE(wt_go(batch_sleeper, &r) != NULL);
        WT_CHECK_EQ(weft_scope_close(r.sc), ECANCELED);
        WT_CHECK_EQ(atomic_load(&r.cancelled), spawned);
        WT_CHECK_EQ(atomic_load(&r.other), 0);
    }
    return 0;
}

Test(scope, cancel_reaches_every_child_of_an_owner_spawning_a_burst,
     .timeout = 40)
{
    WT_RUN(root_cancel_reaches_batched_children, NULL, .procs = 2);
}

static int sleep_ms_arg(void *arg)
{
    int rc = weft_sleep(WT_MS((intptr_t)arg));
    return rc == ECANCELED ? 0 : rc;
}

/* Handles of children still in the owner's batch work as any other:
 * name, cancel, detach and join, before the batch is linked. */
static int root_calls_on_batched_children(void *arg)
{
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_thread *t[5];
    for (int i = 0; i < 5; i++)
        WT_REQUIRE((t[i] = wt_go(sleep_ms_arg, (void *)(intptr_t)60000)));
    WT_CHECK(weft_name(t[4]) != NULL);
    WT_CHECK_EQ(weft_cancel(t[3]), 0);
    int r = -1;
    WT_CHECK_EQ(weft_join(t[3], &r), 0);
    WT_CHECK_EQ(r, 0);
    WT_CHECK_EQ(weft_detach(t[2]), 0);
    WT_CHECK_EQ(weft_join(t[2], NULL), EINVAL);
    weft_scope_cancel(sc); /* the owner's own joins now fail: close */
    WT_CHECK_EQ(weft_scope_close(sc), ECANCELED);
    WT_CHECK_EQ(weft_join(t[4], NULL), ESRCH); /* reaped by the close */
    return 0;
}

Test(scope, calls_on_children_still_in_the_owners_batch, .timeout = 10)
{
    WT_RUN(root_calls_on_batched_children, NULL, .procs = 1);
}

/* A child that fails cancels its siblings, those spawned in the same
 * batch after it included. */
static int root_failure_in_a_batch(void *arg)
{
    struct batch_round r = {0};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < 100; i++)
        WT_REQUIRE(wt_go(batch_sleeper, &r) != NULL);
    WT_REQUIRE(wt_go(ret_arg, (void *)(intptr_t)EIO) != NULL);
    for (int i = 0; i < 100; i++)
        WT_REQUIRE(wt_go(batch_sleeper, &r) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), EIO);
    WT_CHECK_EQ(atomic_load(&r.cancelled), 200);
    return 0;
}

Test(scope, failure_in_a_batch_cancels_the_siblings_spawned_after,
     .timeout = 20)
{
    WT_RUN(root_failure_in_a_batch, NULL, .procs = 2);
}
