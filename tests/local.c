/* SPDX-License-Identifier: MIT */
/*
 * local.c — context locals: inheritance at spawn, isolation between parent
 * and child, destructors, OS threads, migration between carriers.
 */
#include "wt.h"

static weft_local *g_key;
static weft_local *g_key2;

static int v1 = 1, v2 = 2, v3 = 3;

/* --------------------------------------------------------- inheritance */

static void *g_child_saw;

static int read_key(void *arg)
{
    g_child_saw = weft_local_get(g_key);
    return 0;
}

static int root_inherit(void *arg)
{
    g_key = weft_local_new(NULL);
    WT_REQUIRE(g_key != NULL);
    WT_CHECK(weft_local_get(g_key) == NULL);
    WT_CHECK_EQ(weft_local_set(g_key, &v1), 0);
    WT_CHECK(weft_local_get(g_key) == &v1);
    weft_thread *t = wt_go(read_key, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK(g_child_saw == &v1);
    return 0;
}

Test(local, child_sees_parent_value_at_spawn, .timeout = 10)
{
    WT_RUN(root_inherit, NULL, .procs = 2);
}

/* Grandchildren inherit through the chain. */
static void *g_grandchild_saw;

static int read_key_grand(void *arg)
{
    g_grandchild_saw = weft_local_get(g_key);
    return 0;
}

static int spawn_grand(void *arg)
{
    weft_thread *t = wt_go(read_key_grand, NULL);
    WT_REQUIRE(t != NULL);
    return weft_join(t, NULL);
}

static int root_inherit_chain(void *arg)
{
    g_key = weft_local_new(NULL);
    WT_REQUIRE(g_key != NULL);
    WT_CHECK_EQ(weft_local_set(g_key, &v2), 0);
    weft_thread *t = wt_go(spawn_grand, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK(g_grandchild_saw == &v2);
    return 0;
}

Test(local, grandchild_inherits_through_child, .timeout = 10)
{
    WT_RUN(root_inherit_chain, NULL, .procs = 2);
}

/* ------------------------------------------------------------ isolation */

static weft_sem g_go_on = WEFT_SEM_INIT(0);

static int read_key_later(void *arg)
{
    WT_REQUIRE_EQ(weft_sem_acquire(&g_go_on), 0);
    g_child_saw = weft_local_get(g_key);
    return 0;
}

static int root_parent_sets_after_spawn(void *arg)
{
    g_key = weft_local_new(NULL);
    WT_REQUIRE(g_key != NULL);
    WT_CHECK_EQ(weft_local_set(g_key, &v1), 0);
    weft_thread *t = wt_go(read_key_later, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(2)), 0); /* let it start, too */
    WT_CHECK_EQ(weft_local_set(g_key, &v2), 0);
    WT_CHECK_EQ(weft_sem_release(&g_go_on), 0);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK(g_child_saw == &v1);
    WT_CHECK(weft_local_get(g_key) == &v2);
    return 0;
}

Test(local, parent_setting_after_spawn_does_not_affect_child, .timeout = 10)
{
    WT_RUN(root_parent_sets_after_spawn, NULL, .procs = 2);
}

static int root_parent_sets_after_spawn_unset(void *arg)
{
    g_key = weft_local_new(NULL);
    WT_REQUIRE(g_key != NULL);
    weft_thread *t = wt_go(read_key_later, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_local_set(g_key, &v3), 0);
    g_child_saw = &v1; /* must be overwritten by NULL */
    WT_CHECK_EQ(weft_sem_release(&g_go_on), 0);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK(g_child_saw == NULL);
    return 0;
}

Test(local, value_set_after_spawn_is_unset_in_child, .timeout = 10)
{
    WT_RUN(root_parent_sets_after_spawn_unset, NULL, .procs = 1);
}

struct child_sets {
    void *before;
    void *after;
};

static int set_in_child(void *arg)
{
    struct child_sets *cs = arg;
    cs->before = weft_local_get(g_key);
    WT_CHECK_EQ(weft_local_set(g_key, &v3), 0);
    cs->after = weft_local_get(g_key);
    return 0;
}

static int read_key_sibling(void *arg)
{
    WT_REQUIRE_EQ(weft_sem_acquire(&g_go_on), 0);
    g_child_saw = weft_local_get(g_key);
    return 0;
}

static int root_child_sets(void *arg)
{
    g_key = weft_local_new(NULL);
    WT_REQUIRE(g_key != NULL);
    WT_CHECK_EQ(weft_local_set(g_key, &v1), 0);
    weft_thread *sib = wt_go(read_key_sibling, NULL);
    WT_REQUIRE(sib != NULL);
    struct child_sets cs = {0};
    weft_thread *t = wt_go(set_in_child, &cs);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK(cs.before == &v1);
    WT_CHECK(cs.after == &v3);
    WT_CHECK(weft_local_get(g_key) == &v1);
    WT_CHECK_EQ(weft_sem_release(&g_go_on), 0);
    WT_CHECK_EQ(weft_join(sib, NULL), 0);
    WT_CHECK(g_child_saw == &v1);
    return 0;
}

Test(local, child_setting_does_not_affect_parent_or_sibling, .timeout = 10)
{
    WT_RUN(root_child_sets, NULL, .procs = 2);
}

static int root_two_keys(void *arg)
{
    g_key = weft_local_new(NULL);
    g_key2 = weft_local_new(NULL);
    WT_REQUIRE(g_key != NULL && g_key2 != NULL);
    WT_CHECK(g_key != g_key2);
    WT_CHECK_EQ(weft_local_set(g_key, &v1), 0);
    WT_CHECK(weft_local_get(g_key2) == NULL);
    WT_CHECK_EQ(weft_local_set(g_key2, &v2), 0);
    WT_CHECK(weft_local_get(g_key) == &v1);
    WT_CHECK(weft_local_get(g_key2) == &v2);
    WT_CHECK_EQ(weft_local_set(g_key, NULL), 0);
    WT_CHECK(weft_local_get(g_key) == NULL);
    WT_CHECK(weft_local_get(g_key2) == &v2);
    return 0;
}

Test(local, keys_are_independent, .timeout = 10)
{
    WT_RUN(root_two_keys, NULL, .procs = 1);
}

/* ---------------------------------------------------------- destructors */

static atomic_int g_dtor_calls[4];
static int g_dtor_vals[4];
static weft_local *g_dkey;

static void counting_dtor(void *v)
{
    int i = (int *)v - g_dtor_vals;
    if (i >= 0 && i < 4)
        atomic_fetch_add(&g_dtor_calls[i], 1);
}

static atomic_int g_dtor_seen_by_grandchild;

static int grandchild_checks_dtor(void *arg)
{
    weft_sleep(WT_MS(30));
    /* the parent returned long ago, but it is not finished until we are */
    atomic_store(&g_dtor_seen_by_grandchild, atomic_load(&g_dtor_calls[0]));
    WT_CHECK(weft_local_get(g_dkey) == &g_dtor_vals[0]);
    return 0;
}

static int sets_and_returns(void *arg)
{
    WT_CHECK_EQ(weft_local_set(g_dkey, &g_dtor_vals[0]), 0);
    WT_REQUIRE(wt_go(grandchild_checks_dtor, NULL) != NULL);
    return 0;
}

static int inherits_only(void *arg)
{
    WT_CHECK(weft_local_get(g_dkey) == &g_dtor_vals[1]);
    return 0;
}

static int root_dtor(void *arg)
{
    g_dkey = weft_local_new(counting_dtor);
    WT_REQUIRE(g_dkey != NULL);

    /* called once, when the setting thread finishes (after its child) */
    weft_thread *t = wt_go(sets_and_returns, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(atomic_load(&g_dtor_seen_by_grandchild), 0);
    WT_CHECK_EQ(atomic_load(&g_dtor_calls[0]), 1);

    /* a child that only inherited a value does not destroy it */
    WT_CHECK_EQ(weft_local_set(g_dkey, &g_dtor_vals[1]), 0);
    t = wt_go(inherits_only, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(atomic_load(&g_dtor_calls[1]), 0);
    return 0;
}

Test(local, dtor_called_once_when_setting_thread_finishes, .timeout = 10)
{
    WT_RUN(root_dtor, NULL, .procs = 2);
    cr_assert_eq(atomic_load(&g_dtor_calls[0]), 1);
    /* the root set vals[1]: destroyed once, when the root finished */
    cr_assert_eq(atomic_load(&g_dtor_calls[1]), 1);
    cr_assert_eq(atomic_load(&g_dtor_calls[2]), 0);
}

static int sets_null(void *arg)
{
    WT_CHECK_EQ(weft_local_set(g_dkey, NULL), 0);
    return 0;
}

static int root_dtor_null(void *arg)
{
    g_dkey = weft_local_new(counting_dtor);
    WT_REQUIRE(g_dkey != NULL);
    weft_thread *t = wt_go(sets_null, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    return 0;
}

static int g_null_dtor_calls;

static void null_dtor(void *v)
{
    g_null_dtor_calls++;
}

static int root_dtor_null2(void *arg)
{
    weft_local *k = weft_local_new(null_dtor);
    WT_REQUIRE(k != NULL);
    WT_CHECK_EQ(weft_local_set(k, NULL), 0);
    return 0;
}

Test(local, dtor_not_called_for_null_value, .timeout = 10)
{
    WT_RUN(root_dtor_null, NULL, .procs = 1);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(atomic_load(&g_dtor_calls[i]), 0);
    WT_RUN(root_dtor_null2, NULL, .procs = 1);
    cr_assert_eq(g_null_dtor_calls, 0);
}

/* A cancelled thread's values are destroyed too. */
static int sets_then_sleeps(void *arg)
{
    WT_CHECK_EQ(weft_local_set(g_dkey, &g_dtor_vals[2]), 0);
    return weft_sleep(WT_MS(10000));
}

static int root_dtor_cancel(void *arg)
{
    g_dkey = weft_local_new(counting_dtor);
    WT_REQUIRE(g_dkey != NULL);
    weft_thread *t = wt_go(sets_then_sleeps, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    WT_CHECK_EQ(atomic_load(&g_dtor_calls[2]), 0);
    WT_CHECK_EQ(weft_cancel(t), 0);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, ECANCELED);
    WT_CHECK_EQ(atomic_load(&g_dtor_calls[2]), 1);
    return 0;
}

Test(local, dtor_runs_for_cancelled_thread, .timeout = 10)
{
    WT_RUN(root_dtor_cancel, NULL, .procs = 2);
    cr_assert_eq(atomic_load(&g_dtor_calls[2]), 1);
}

/* ------------------------------------------------------------ OS threads */

static void *os_local_main(void *arg)
{
    int *out = arg;
    out[0] = weft_local_get(g_key) == NULL;
    out[1] = weft_local_set(g_key, &v1);
    out[2] = weft_local_get(g_key) == NULL;
    return NULL;
}

Test(local, os_thread_get_is_null_and_set_is_eperm, .timeout = 10)
{
    g_key = weft_local_new(NULL);
    cr_assert_not_null(g_key);
    cr_assert_null(weft_local_get(g_key));
    cr_assert_eq(weft_local_set(g_key, &v1), EPERM);
    cr_assert_null(weft_local_get(g_key));
    cr_assert_null(weft_local_get(NULL));
}

static int root_os_thread_local(void *arg)
{
    WT_CHECK_EQ(weft_local_set(g_key, &v2), 0);
    int out[3] = {0, -1, 0};
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_local_main, out), 0);
    pthread_join(pt, NULL);
    WT_CHECK(out[0]);
    WT_CHECK_EQ(out[1], EPERM);
    WT_CHECK(out[2]);
    WT_CHECK(weft_local_get(g_key) == &v2);
    return 0;
}

Test(local, os_thread_during_run_has_no_values, .timeout = 10)
{
    g_key = weft_local_new(NULL);
    cr_assert_not_null(g_key);
    WT_RUN(root_os_thread_local, NULL, .procs = 2);
}

static int root_null_key(void *arg)
{
    WT_CHECK_EQ(weft_local_set(NULL, &v1), EINVAL);
    WT_CHECK(weft_local_get(NULL) == NULL);
    return 0;
}

Test(local, null_key_is_einval, .timeout = 10)
{
    WT_RUN(root_null_key, NULL, .procs = 1);
}

/* --------------------------------------------- survives carrier migration */

static atomic_int g_local_migrations;

static int local_migrator(void *arg)
{
    int *mine = arg;
    WT_REQUIRE_EQ(weft_local_set(g_key, mine), 0);
    for (int i = 0; i < 300; i++) {
        pthread_t before = wt_carrier();
        if (i % 2)
            weft_yield();
        else
            weft_sleep(WT_US(50));
        if (!pthread_equal(before, wt_carrier()))
            atomic_fetch_add(&g_local_migrations, 1);
        if (weft_local_get(g_key) != mine) {
            WT_CHECK_MSG(0, "value changed after park %d", i);
            return 0;
        }
    }
    return 0;
}

static int root_local_migration(void *arg)
{
    static int vals[16];
    g_key = weft_local_new(NULL);
    WT_REQUIRE(g_key != NULL);
    for (int i = 0; i < 16; i++)
        WT_REQUIRE(wt_go(local_migrator, &vals[i]) != NULL);
    return 0;
}

Test(local, value_survives_migration_between_carriers, .timeout = 30)
{
    WT_RUN(root_local_migration, NULL, .procs = 2);
    if (atomic_load(&g_local_migrations) == 0)
        cr_log_warn("no migration was observed");
}
