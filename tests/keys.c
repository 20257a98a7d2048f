/* SPDX-License-Identifier: MIT */
/*
 * keys.c — pthread keys and C11 tss_* belong to the virtual thread: each
 * virtual thread sees its own values on a shared carrier, across yields,
 * parks and moves; OS threads and carriers keep glibc's values apart;
 * destructors run at the thread's end on its own stack, in POSIX rounds;
 * a recycled key number never returns an old value; the per-key and
 * global opt-outs; the error paths, with allocation failures injected.
 */
#include "wt.h"

#include <dlfcn.h>
#include <limits.h>
#include <threads.h>

/* keys.c's fault injection: while positive, key-table allocations count it
 * down and the one that brings it to 0 fails. An internal name: reached
 * only when libweft is linked in statically. */
#ifndef WT_LINK_SHARED
extern _Atomic int weft__keys_fail_alloc;
#endif

/* foreign/use_keys.c: pthread_getspecific/setspecific called from another
 * shared library, through glibc's versioned names. */
void *wt_keylib_get(pthread_key_t k);
int wt_keylib_set(pthread_key_t k, void *v);

static int v1 = 1, v2 = 2, v3 = 3;

/* glibc's own pthread_getspecific, past libweft's: the carrier's value.
 * Asked for by version, which libweft's unversioned definition does not
 * answer (whether it comes before or after this program). */
static void *glibc_get(pthread_key_t k)
{
    static void *(*real)(pthread_key_t);
    if (!real)
        real = (void *(*)(pthread_key_t))dlvsym(
            RTLD_NEXT, "pthread_getspecific", "GLIBC_2.34");
    return real(k);
}

static pthread_key_t g_key;

static void make_key(void (*dtor)(void *))
{
    cr_assert_eq(pthread_key_create(&g_key, dtor), 0);
}

/* --------------------------------------------------- one value per thread */

struct mine {
    void *value;
    pthread_t carrier;
    atomic_int *ready;
};

/* Sets its value, waits until both threads have, then checks its own
 * value at every yield. */
static int set_and_yield(void *arg)
{
    struct mine *m = arg;
    WT_REQUIRE_EQ(pthread_setspecific(g_key, m->value), 0);
    atomic_fetch_add(m->ready, 1);
    while (atomic_load(m->ready) < 2)
        weft_yield();
    m->carrier = wt_carrier();
    for (int i = 0; i < 100; i++) {
        WT_REQUIRE(pthread_getspecific(g_key) == m->value);
        weft_yield();
    }
    return 0;
}

static int root_two_on_one_carrier(void *arg)
{
    atomic_int ready = 0;
    struct mine a = {&v1, 0, &ready}, b = {&v2, 0, &ready};
    weft_thread *ta = wt_go(set_and_yield, &a);
    weft_thread *tb = wt_go(set_and_yield, &b);
    WT_REQUIRE(ta && tb);
    WT_CHECK_EQ(weft_join(ta, NULL), 0);
    WT_CHECK_EQ(weft_join(tb, NULL), 0);
    WT_CHECK(pthread_equal(a.carrier, b.carrier));
    WT_CHECK(pthread_getspecific(g_key) == NULL);
    return 0;
}

Test(keys, two_threads_on_one_carrier_keep_their_own_values, .timeout = 10)
{
    make_key(NULL);
    WT_RUN(root_two_on_one_carrier, NULL, .procs = 1);
}

/* Parks (a semaphore hand-off and sleeps) leave each value in place. */
static weft_sem g_turn[2] = {WEFT_SEM_INIT(0), WEFT_SEM_INIT(0)};

static int set_and_park(void *arg)
{
    int me = (int)(intptr_t)arg;
    void *mine = me ? &v2 : &v1;
    WT_REQUIRE_EQ(pthread_setspecific(g_key, mine), 0);
    for (int i = 0; i < 20; i++) {
        if (me == 0)
            WT_REQUIRE_EQ(weft_sem_release(&g_turn[1]), 0);
        WT_REQUIRE_EQ(weft_sem_acquire(&g_turn[me]), 0);
        WT_REQUIRE(pthread_getspecific(g_key) == mine);
        if (me == 1)
            WT_REQUIRE_EQ(weft_sem_release(&g_turn[0]), 0);
        WT_REQUIRE_EQ(weft_sleep(WT_US(100)), 0);
        WT_REQUIRE(pthread_getspecific(g_key) == mine);
    }
    return 0;
}

static int root_parks(void *arg)
{
    weft_thread *a = wt_go(set_and_park, (void *)0);
    weft_thread *b = wt_go(set_and_park, (void *)1);
    WT_REQUIRE(a && b);
    WT_CHECK_EQ(weft_join(a, NULL), 0);
    WT_CHECK_EQ(weft_join(b, NULL), 0);
    return 0;
}

Test(keys, values_survive_parks, .timeout = 10)
{
    make_key(NULL);
    WT_RUN(root_parks, NULL, .procs = 1);
}

/* With two carriers, a thread that sleeps many times moves between them
 * and keeps its value. */
static int sleeper_keeps_value(void *arg)
{
    WT_REQUIRE_EQ(pthread_setspecific(g_key, arg), 0);
    for (int i = 0; i < 200; i++) {
        WT_REQUIRE_EQ(weft_sleep(WT_US(50)), 0);
        WT_REQUIRE(pthread_getspecific(g_key) == arg);
    }
    return 0;
}

static int root_migrate(void *arg)
{
    weft_thread *t[4];
    for (int i = 0; i < 4; i++)
        WT_REQUIRE((t[i] = wt_go(sleeper_keeps_value, (char *)&v1 + i)));
    for (int i = 0; i < 4; i++)
        WT_CHECK_EQ(weft_join(t[i], NULL), 0);
    return 0;
}

Test(keys, values_follow_threads_between_carriers, .timeout = 20)
{
    make_key(NULL);
    WT_RUN(root_migrate, NULL, .procs = 2);
}

/* ------------------------------------------------ virtual and OS threads */

struct os_read {
    void *saw;
    void *own;   /* what it sets and reads back */
    void *own_back;
};

static void *os_reader(void *arg)
{
    struct os_read *r = arg;
    r->saw = pthread_getspecific(g_key);
    pthread_setspecific(g_key, r->own);
    r->own_back = pthread_getspecific(g_key);
    return NULL;
}

static int root_not_seen_by_os(void *arg)
{
    WT_REQUIRE_EQ(pthread_setspecific(g_key, &v1), 0);
    WT_CHECK(glibc_get(g_key) == NULL); /* the carrier's own is untouched */
    struct os_read r = {&v3, &v2, NULL};
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_reader, &r), 0);
    pthread_join(pt, NULL);
    WT_CHECK(r.saw == NULL);
    WT_CHECK(r.own_back == &v2);
    WT_CHECK(pthread_getspecific(g_key) == &v1);
    return 0;
}

Test(keys, virtual_value_not_seen_by_os_thread_or_carrier, .timeout = 10)
{
    make_key(NULL);
    WT_RUN(root_not_seen_by_os, NULL, .procs = 1);
}

static int root_reads_null(void *arg)
{
    WT_CHECK(pthread_getspecific(g_key) == NULL);
    return 0;
}

Test(keys, os_thread_value_not_seen_by_virtual_thread, .timeout = 10)
{
    make_key(NULL);
    cr_assert_eq(pthread_setspecific(g_key, &v3), 0);
    WT_RUN(root_reads_null, NULL, .procs = 1);
    cr_assert(pthread_getspecific(g_key) == &v3);
}

/* A key created on a virtual thread works on OS threads too. */
static int root_create_inside(void *arg)
{
    WT_REQUIRE_EQ(pthread_key_create(&g_key, NULL), 0);
    WT_REQUIRE_EQ(pthread_setspecific(g_key, &v1), 0);
    struct os_read r = {&v3, &v2, NULL};
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_reader, &r), 0);
    pthread_join(pt, NULL);
    WT_CHECK(r.saw == NULL);
    WT_CHECK(r.own_back == &v2);
    WT_CHECK(pthread_getspecific(g_key) == &v1);
    return 0;
}

Test(keys, key_created_on_virtual_thread_works_on_os_threads, .timeout = 10)
{
    WT_RUN(root_create_inside, NULL, .procs = 1);
    cr_assert(pthread_getspecific(g_key) == NULL);
}

/* A shared library's calls (versioned references, as OpenSSL's) reach
 * the virtual thread's values too. */
static int lib_own_value(void *arg)
{
    WT_REQUIRE_EQ(wt_keylib_set(g_key, arg), 0);
    weft_yield();
    WT_CHECK(wt_keylib_get(g_key) == arg);
    WT_CHECK(pthread_getspecific(g_key) == arg);
    return 0;
}

static int root_lib(void *arg)
{
    WT_REQUIRE_EQ(pthread_setspecific(g_key, &v3), 0);
    weft_thread *a = wt_go(lib_own_value, &v1);
    weft_thread *b = wt_go(lib_own_value, &v2);
    WT_REQUIRE(a && b);
    WT_CHECK_EQ(weft_join(a, NULL), 0);
    WT_CHECK_EQ(weft_join(b, NULL), 0);
    WT_CHECK(wt_keylib_get(g_key) == &v3);
    WT_CHECK(glibc_get(g_key) == NULL);
    return 0;
}

Test(keys, calls_from_a_shared_library_reach_thread_values, .timeout = 10)
{
    make_key(NULL);
    WT_RUN(root_lib, NULL, .procs = 1);
}

/* ----------------------------------------------------------- destructors */

static struct {
    atomic_int calls;
    void *value;
    weft_thread *self;
    uintptr_t stack_addr;
    void *value_during;  /* pthread_getspecific inside the destructor */
} g_dtor;

static void record_dtor(void *v)
{
    int here;
    atomic_fetch_add(&g_dtor.calls, 1);
    g_dtor.value = v;
    g_dtor.self = weft_self();
    g_dtor.stack_addr = (uintptr_t)&here;
    g_dtor.value_during = pthread_getspecific(g_key);
}

static uintptr_t g_body_stack;

static int set_v1(void *arg)
{
    int here;
    g_body_stack = (uintptr_t)&here;
    return pthread_setspecific(g_key, &v1);
}

static int root_dtor_at_end(void *arg)
{
    weft_thread *t = wt_go(set_v1, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(atomic_load(&g_dtor.calls), 1);
    WT_CHECK(g_dtor.value == &v1);
    WT_CHECK(g_dtor.self == t);
    uintptr_t d = g_dtor.stack_addr > g_body_stack
                      ? g_dtor.stack_addr - g_body_stack
                      : g_body_stack - g_dtor.stack_addr;
    WT_CHECK_MSG(d < 64 * 1024, "destructor frame %zu bytes from the "
                 "thread's body: not on its stack", (size_t)d);
    return 0;
}

Test(keys, destructor_runs_at_thread_end_on_its_stack, .timeout = 10)
{
    make_key(record_dtor);
    WT_RUN(root_dtor_at_end, NULL, .procs = 2);
}

static int root_dtor_sees_null(void *arg)
{
    weft_thread *t = wt_go(set_v1, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(atomic_load(&g_dtor.calls), 1);
    WT_CHECK(g_dtor.value_during == NULL);
    return 0;
}

Test(keys, destructor_runs_with_the_value_already_null, .timeout = 10)
{
    make_key(record_dtor);
    WT_RUN(root_dtor_sees_null, NULL, .procs = 1);
}

static int set_then_clear(void *arg)
{
    WT_REQUIRE_EQ(pthread_setspecific(g_key, &v1), 0);
    WT_REQUIRE_EQ(pthread_setspecific(g_key, NULL), 0);
    return 0;
}

static int root_null_no_dtor(void *arg)
{
    weft_thread *t = wt_go(set_then_clear, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(atomic_load(&g_dtor.calls), 0);
    return 0;
}

Test(keys, destructor_not_called_for_null_value, .timeout = 10)
{
    make_key(record_dtor);
    WT_RUN(root_null_no_dtor, NULL, .procs = 1);
}

/* A destructor that sets its value again is called again, up to
 * PTHREAD_DESTRUCTOR_ITERATIONS times in all. */
static atomic_int g_resets;

static void resetting_dtor(void *v)
{
    atomic_fetch_add(&g_resets, 1);
    pthread_setspecific(g_key, v);
}

static int root_rounds(void *arg)
{
    weft_thread *t = wt_go(set_v1, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(atomic_load(&g_resets), PTHREAD_DESTRUCTOR_ITERATIONS);
    return 0;
}

Test(keys, destructor_rounds_stop_at_the_limit, .timeout = 10)
{
    make_key(resetting_dtor);
    WT_RUN(root_rounds, NULL, .procs = 1);
}

/* A destructor that sets another key's value (a key of a lower number,
 * already passed in its round) has that one destroyed in the next. */
static pthread_key_t g_low, g_high;
static atomic_int g_low_calls;

static void low_dtor(void *v)
{
    atomic_fetch_add(&g_low_calls, 1);
}

static void high_dtor(void *v)
{
    pthread_setspecific(g_low, &v2);
}

static int set_high(void *arg)
{
    return pthread_setspecific(g_high, &v1);
}

static int root_next_round(void *arg)
{
    weft_thread *t = wt_go(set_high, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(atomic_load(&g_low_calls), 1);
    return 0;
}

Test(keys, value_set_by_a_destructor_is_destroyed_next_round, .timeout = 10)
{
    cr_assert_eq(pthread_key_create(&g_low, low_dtor), 0);
    cr_assert_eq(pthread_key_create(&g_high, high_dtor), 0);
    cr_assert_lt(g_low, g_high);
    WT_RUN(root_next_round, NULL, .procs = 1);
}

/* A destructor may park: it runs as part of its virtual thread. */
static atomic_int g_slept;

static void sleeping_dtor(void *v)
{
    if (weft_sleep(WT_MS(2)) == 0)
        atomic_store(&g_slept, 1);
}

static int root_dtor_parks(void *arg)
{
    weft_thread *t = wt_go(set_v1, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(atomic_load(&g_slept), 1);
    return 0;
}

Test(keys, destructor_may_park, .timeout = 10)
{
    make_key(sleeping_dtor);
    WT_RUN(root_dtor_parks, NULL, .procs = 1);
}

/* ------------------------------------------------- delete and recycling */

static int set_then_delete(void *arg)
{
    WT_REQUIRE_EQ(pthread_setspecific(g_key, &v1), 0);
    WT_REQUIRE_EQ(pthread_key_delete(g_key), 0);
    return 0;
}

static int root_deleted_no_dtor(void *arg)
{
    weft_thread *t = wt_go(set_then_delete, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(atomic_load(&g_dtor.calls), 0);
    return 0;
}

Test(keys, deleted_key_has_no_destructor_call, .timeout = 10)
{
    make_key(record_dtor);
    WT_RUN(root_deleted_no_dtor, NULL, .procs = 1);
}

/* glibc gives the lowest free number: a key deleted and created again gets
 * its old number back, and a thread that set the old key reads NULL (and
 * the old value's destructor is not called). */
static int root_recycled(void *arg)
{
    pthread_key_t old = g_key;
    WT_REQUIRE_EQ(pthread_setspecific(g_key, &v1), 0);
    WT_REQUIRE_EQ(pthread_key_delete(g_key), 0);
    WT_REQUIRE_EQ(pthread_key_create(&g_key, record_dtor), 0);
    WT_REQUIRE_EQ(g_key, old);
    WT_CHECK(pthread_getspecific(g_key) == NULL);
    return 0;
}

Test(keys, recycled_key_number_reads_null, .timeout = 10)
{
    make_key(record_dtor);
    WT_RUN(root_recycled, NULL, .procs = 1);
    cr_assert_eq(atomic_load(&g_dtor.calls), 0);
}

/* ----------------------------------------------------------- opt-outs */

static atomic_int g_step;

static int carrier_writer(void *arg)
{
    WT_REQUIRE_EQ(pthread_setspecific(g_key, &v1), 0);
    atomic_store(&g_step, 1);
    while (atomic_load(&g_step) < 2)
        weft_yield();
    WT_CHECK(glibc_get(g_key) == &v1);
    return 0;
}

static int carrier_reader(void *arg)
{
    while (atomic_load(&g_step) < 1)
        weft_yield();
    WT_CHECK(pthread_getspecific(g_key) == &v1); /* the carrier's */
    atomic_store(&g_step, 2);
    return 0;
}

static int root_per_carrier(void *arg)
{
    weft_thread *a = wt_go(carrier_writer, NULL);
    weft_thread *b = wt_go(carrier_reader, NULL);
    WT_REQUIRE(a && b);
    WT_CHECK_EQ(weft_join(a, NULL), 0);
    WT_CHECK_EQ(weft_join(b, NULL), 0);
    return 0;
}

Test(keys, per_carrier_key_is_shared_by_threads_on_a_carrier, .timeout = 10)
{
    make_key(NULL);
    cr_assert_eq(weft_key_per_carrier(g_key), 0);
    cr_assert_eq(weft_key_per_carrier(g_key), 0); /* idempotent */
    WT_RUN(root_per_carrier, NULL, .procs = 1);
}

Test(keys, environment_makes_keys_per_carrier, .timeout = 10)
{
    cr_assert_eq(setenv("WEFT_KEYS", "carrier", 1), 0);
    make_key(NULL);
    WT_RUN(root_per_carrier, NULL, .procs = 1);
}

Test(keys, per_carrier_rejects_keys_that_are_not_live, .timeout = 10)
{
    cr_assert_eq(weft_key_per_carrier(PTHREAD_KEYS_MAX), EINVAL);
    cr_assert_eq(weft_key_per_carrier((pthread_key_t)-1), EINVAL);
    make_key(NULL);
    cr_assert_eq(weft_key_per_carrier(g_key + 1), EINVAL); /* never made */
    cr_assert_eq(pthread_key_delete(g_key), 0);
    cr_assert_eq(weft_key_per_carrier(g_key), EINVAL);
}

/* ---------------------------------------------------------------- tss */

static tss_t g_tss;

static int tss_own_value(void *arg)
{
    WT_REQUIRE_EQ(tss_set(g_tss, arg), thrd_success);
    weft_yield();
    WT_CHECK(tss_get(g_tss) == arg);
    return 0;
}

static int root_tss(void *arg)
{
    WT_REQUIRE_EQ(tss_set(g_tss, &v3), thrd_success);
    weft_thread *a = wt_go(tss_own_value, &v1);
    weft_thread *b = wt_go(tss_own_value, &v2);
    WT_REQUIRE(a && b);
    WT_CHECK_EQ(weft_join(a, NULL), 0);
    WT_CHECK_EQ(weft_join(b, NULL), 0);
    WT_CHECK(tss_get(g_tss) == &v3);
    WT_CHECK(glibc_get(g_tss) == NULL);
    WT_CHECK_EQ(atomic_load(&g_dtor.calls), 2);
    return 0;
}

Test(keys, tss_values_are_per_virtual_thread, .timeout = 10)
{
    cr_assert_eq(tss_create(&g_tss, record_dtor), thrd_success);
    g_key = g_tss; /* record_dtor reads it */
    WT_RUN(root_tss, NULL, .procs = 1);
    cr_assert_eq(atomic_load(&g_dtor.calls), 3);
    tss_delete(g_tss);
    cr_assert_eq(weft_key_per_carrier(g_tss), EINVAL);
}

/* --------------------------------------------------------- error paths */
#ifndef WT_LINK_SHARED

/* The nth allocation of a first set fails (1: the table, 2: the block);
 * the set returns ENOMEM, the value stays unset, and a retry works. */
static int set_fails_nth(void *arg)
{
    atomic_store(&weft__keys_fail_alloc, (int)(intptr_t)arg);
    WT_CHECK_EQ(pthread_setspecific(g_key, &v1), ENOMEM);
    WT_CHECK(pthread_getspecific(g_key) == NULL);
    WT_CHECK_EQ(pthread_setspecific(g_key, &v2), 0);
    WT_CHECK(pthread_getspecific(g_key) == &v2);
    return 0;
}

Test(keys, set_is_enomem_when_the_table_cannot_be_made, .timeout = 10)
{
    make_key(NULL);
    WT_RUN(set_fails_nth, (void *)1, .procs = 1);
}

Test(keys, set_is_enomem_when_a_block_cannot_be_made, .timeout = 10)
{
    make_key(NULL);
    WT_RUN(set_fails_nth, (void *)2, .procs = 1);
}

static int tss_set_fails(void *arg)
{
    atomic_store(&weft__keys_fail_alloc, 1);
    WT_CHECK_EQ(tss_set(g_tss, &v1), thrd_nomem);
    WT_CHECK(tss_get(g_tss) == NULL);
    return 0;
}

Test(keys, tss_set_is_thrd_nomem_without_memory, .timeout = 10)
{
    cr_assert_eq(tss_create(&g_tss, NULL), thrd_success);
    WT_RUN(tss_set_fails, NULL, .procs = 1);
}

/* Setting NULL where nothing was set makes no table. */
static int set_null_first(void *arg)
{
    atomic_store(&weft__keys_fail_alloc, 1);
    WT_CHECK_EQ(pthread_setspecific(g_key, NULL), 0);
    WT_CHECK_EQ(atomic_load(&weft__keys_fail_alloc), 1);
    atomic_store(&weft__keys_fail_alloc, 0);
    return 0;
}

Test(keys, setting_null_first_allocates_nothing, .timeout = 10)
{
    make_key(NULL);
    WT_RUN(set_null_first, NULL, .procs = 1);
}
#endif /* WT_LINK_SHARED */

static int root_invalid(void *arg)
{
    pthread_key_t dead = g_key;
    WT_REQUIRE_EQ(pthread_key_delete(dead), 0);
    WT_CHECK_EQ(pthread_setspecific(dead, &v1), EINVAL);
    WT_CHECK(pthread_getspecific(dead) == NULL);
    WT_CHECK_EQ(pthread_setspecific(PTHREAD_KEYS_MAX, &v1), EINVAL);
    WT_CHECK(pthread_getspecific(PTHREAD_KEYS_MAX) == NULL);
    WT_CHECK_EQ(pthread_key_delete(dead), EINVAL);
    WT_CHECK_EQ(pthread_key_delete(PTHREAD_KEYS_MAX), EINVAL);
    return 0;
}

Test(keys, invalid_and_deleted_keys_are_einval, .timeout = 10)
{
    make_key(NULL);
    WT_RUN(root_invalid, NULL, .procs = 1);
}

/* A run that ends in a deadlock frees the blocked threads' values (the
 * leak check of ASan builds), without calling their destructors. */
static weft_sem g_never = WEFT_SEM_INIT(0);

static int root_deadlocks(void *arg)
{
    WT_REQUIRE_EQ(pthread_setspecific(g_key, &v1), 0);
    weft_sem_acquire(&g_never); /* nobody releases it */
    return 0;
}

Test(keys, deadlock_frees_values_without_destructors, .timeout = 10)
{
    make_key(record_dtor);
    WT_RUN(root_deadlocks, NULL, .procs = 1, .want = EDEADLK);
    cr_assert_eq(atomic_load(&g_dtor.calls), 0);
}
