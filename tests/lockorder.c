/* SPDX-License-Identifier: MIT */
/*
 * lockorder.c — the lock order checked (WEFT_LOCK_ORDER builds only):
 * spinlocks taken in the declared order (src/sched/sched.h) go through,
 * one taken out of it ends the program with a panic that names both
 * locks' classes and levels and where each was taken. Seen from outside,
 * through the helper progs/lockorder.c, one case per run.
 */
#include "wt.h"
#include "wt_child.h"

#include <signal.h>

/* Runs the helper's case `name`; returns its result. */
static const struct wt_child *run_case(const char *name)
{
    static struct wt_child res;
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1); /* it dies holding memory */
    char *argv[] = {(char *)WT_LOCKORDER_PROG, (char *)name, NULL};
    wt_run_child(argv, &res);
    cr_log_info("%s: helper stderr:\n%s", name, res.err);
    return &res;
}

/* The case ran to its end and said all was well. */
static void expect_lives(const char *name)
{
    const struct wt_child *r = run_case(name);
    cr_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
              "%s: helper status 0x%x; stderr:\n%s", name, r->status, r->err);
    cr_assert_null(strstr(r->err, "panic"), "%s:\n%s", name, r->err);
}

/* The case died of the panic, whose message has each of `says` (NULL-
 * ended) in that order. */
static void expect_panic(const char *name, const char *const *says)
{
    const struct wt_child *r = run_case(name);
    cr_assert(WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGABRT,
              "%s: helper status 0x%x, not SIGABRT; stderr:\n%s", name,
              r->status, r->err);
    const char *at = strstr(r->err, "weft: panic: lock order");
    cr_assert_not_null(at, "%s: no lock order panic:\n%s", name, r->err);
    for (; *says; says++) {
        const char *next = strstr(at, *says);
        cr_assert_not_null(next, "%s: the panic does not say '%s' where "
                           "expected:\n%s", name, *says, r->err);
        at = next + strlen(*says);
    }
}

#define PANICS(name, ...) \
    expect_panic(name, (const char *const[]){__VA_ARGS__, NULL})

Test(lockorder, levels_in_order_live, .timeout = 30)
{
    expect_lives("right_levels");
}

Test(lockorder, a_level_before_a_held_one_panics, .timeout = 30)
{
    PANICS("wrong_levels", "taking the channel lock", "(level 5)",
           "tests/progs/lockorder.c:", "while holding the scheduler lock",
           "(level 8)", "taken at tests/progs/lockorder.c:",
           "after every lock its thread holds");
}

Test(lockorder, same_class_by_ascending_address_lives, .timeout = 30)
{
    expect_lives("address_ascending");
}

Test(lockorder, same_class_by_descending_address_panics, .timeout = 30)
{
    PANICS("address_descending", "taking the channel lock",
           "holding the channel lock", "by address, lowest first");
}

Test(lockorder, a_class_that_never_nests_panics, .timeout = 30)
{
    PANICS("never_nest", "taking the timer heap lock", "(level 6)",
           "holding the timer heap lock", "never nest");
}

Test(lockorder, two_classes_of_one_level_panic, .timeout = 30)
{
    PANICS("level_peers", "taking the semaphore's queue lock",
           "holding the mutex's queue lock",
           "different classes on one level never nest");
}

Test(lockorder, scopes_ancestor_first_live, .timeout = 30)
{
    expect_lives("scope_ancestor_first");
}

Test(lockorder, scopes_descendant_first_panic, .timeout = 30)
{
    PANICS("scope_descendant_first", "taking the scope lock",
           "(level 2, depth 1)", "holding the scope lock",
           "(level 2, depth 2)", "ancestor first");
}

Test(lockorder, relocking_a_held_lock_panics, .timeout = 30)
{
    PANICS("relock", "taking the fd record lock", "holds it already");
}

Test(lockorder, releasing_an_unheld_lock_panics, .timeout = 30)
{
    PANICS("unlock_unheld", "releasing at tests/progs/lockorder.c:",
           "does not hold");
}

Test(lockorder, hundreds_held_in_order_live, .timeout = 30)
{
    expect_lives("spill_in_order");
}

Test(lockorder, out_of_order_past_hundreds_held_panics, .timeout = 30)
{
    PANICS("spill_out_of_order", "taking the channel lock",
           "by address, lowest first");
}

/* The runtime's own call sites name their classes. */
Test(lockorder, a_channel_under_the_scheduler_lock_panics, .timeout = 30)
{
    PANICS("real_locks", "taking the channel lock", "at src/sync/chan.c:",
           "holding the scheduler lock", "(level 8)");
}

Test(lockorder, switching_out_holding_a_lock_panics, .timeout = 30)
{
    PANICS("switch_holding", "switches out at src/sched/switch.c:",
           "holding the channel lock", "taken at tests/progs/lockorder.c:");
}
