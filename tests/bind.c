/* SPDX-License-Identifier: MIT */
/*
 * bind.c — threads bound to their carrier: a park inside a hooked call
 * made from a separately compiled library (tests/foreign/keep_errno.c,
 * -O2, no weft.h) resumes on the same carrier OS thread; weft_pin and
 * weft_attr.pinned; the monitor's release of a bound thread whose carrier
 * is stuck. Run linked with libweft.a and with libweft.so.
 */
#include "wt_io.h"

#include <sys/syscall.h>

int foreign_keep_errno(int x, unsigned us);
int foreign_same_thread_across_sleep(unsigned us);

static long tid(void)
{
    return syscall(SYS_gettid);
}

/* Keeps both carriers busy and moving threads around: each yields often,
 * so parked threads that wake are picked up by whichever carrier is free. */
static atomic_bool g_stop;

static int churn(void *arg)
{
    while (!atomic_load(&g_stop)) {
        for (volatile int i = 0; i < 2000; i++) {
        }
        weft_yield();
    }
    return 0;
}

static void start_churn(weft_thread **t, int n)
{
    atomic_store(&g_stop, false);
    for (int i = 0; i < n; i++)
        t[i] = wt_go_named("churn", churn, NULL);
}

static void stop_churn(weft_thread **t, int n)
{
    atomic_store(&g_stop, true);
    for (int i = 0; i < n; i++)
        wt_join(t[i]);
}

/* A hog limit far above any preemption of a carrier by the OS on a
 * loaded machine: the monitor's release of bound threads from a carrier
 * it thinks stuck is tested on its own, below. */
#define PATIENT_HOG_MS 2000

/* ------------------------------------------- parks inside foreign code */

enum { CALLERS = 32, CALLS = 320 }; /* 10,240 foreign parks */

static atomic_int g_wrong_errno, g_moved, g_migrated;

static int foreign_caller(void *arg)
{
    int base = (int)(intptr_t)arg * CALLS;
    for (int i = 0; i < CALLS; i++) {
        int want = 1000 + base + i;
        if (foreign_keep_errno(want, 50) != want)
            atomic_fetch_add(&g_wrong_errno, 1);
        if (!foreign_same_thread_across_sleep(20))
            atomic_fetch_add(&g_moved, 1);
        long before = tid();
        weft_sleep(WT_US(20)); /* weft's own API: free to move */
        if (tid() != before)
            atomic_fetch_add(&g_migrated, 1);
    }
    return 0;
}

static int root_foreign(void *arg)
{
    weft_thread *c[2], *t[CALLERS];
    start_churn(c, 2);
    for (int i = 0; i < CALLERS; i++)
        t[i] = wt_go_named("foreign", foreign_caller, (void *)(intptr_t)i);
    for (int i = 0; i < CALLERS; i++)
        wt_join(t[i]);
    stop_churn(c, 2);
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    WT_CHECK_EQ(st.bound, 0);
    WT_CHECK_EQ(st.unbound_resumes, 0);
    return 0;
}

Test(bind, parks_in_foreign_code_resume_on_their_carrier, .timeout = 60)
{
    WT_RUN(root_foreign, NULL, .procs = 2, .hog_ms = PATIENT_HOG_MS);
    cr_log_info("%d foreign calls: %d wrong errno, %d moved; %d migrations "
                "at weft_sleep", CALLERS * CALLS, atomic_load(&g_wrong_errno),
                atomic_load(&g_moved), atomic_load(&g_migrated));
    cr_assert_eq(atomic_load(&g_wrong_errno), 0);
    cr_assert_eq(atomic_load(&g_moved), 0);
    /* The program's own parks still balance load between carriers: the
     * test would prove nothing if nothing ever moved. */
    cr_assert_gt(atomic_load(&g_migrated), 0);
}

/* ------------------------------------------------------------ weft_pin */

static atomic_int g_pinned_moves, g_unpinned_moves, g_pinned_now;
static atomic_bool g_counted; /* root has read weft_stats: unpin now */

static int pinned_sleeper(void *arg)
{
    bool by_attr = arg != NULL;
    if (!by_attr)
        WT_CHECK_EQ(weft_pin(), 0);
    WT_CHECK_EQ(weft_pin(), 0); /* nested */
    atomic_fetch_add(&g_pinned_now, 1);
    for (int i = 0; i < 400; i++) {
        long before = tid();
        if (i % 2)
            weft_sleep(WT_US(100));
        else
            weft_yield();
        if (tid() != before)
            atomic_fetch_add(&g_pinned_moves, 1);
    }
    while (!atomic_load(&g_counted)) /* still bound when root counts */
        weft_sleep(WT_US(100));
    WT_CHECK_EQ(weft_unpin(), 0);
    WT_CHECK_EQ(weft_unpin(), 0);
    WT_CHECK_EQ(weft_unpin(), EINVAL);
    for (int i = 0; i < 400; i++) {
        long before = tid();
        weft_sleep(WT_US(100));
        if (tid() != before)
            atomic_fetch_add(&g_unpinned_moves, 1);
    }
    return 0;
}

static int root_pin(void *arg)
{
    weft_thread *c[2], *t[8];
    start_churn(c, 2);
    for (int i = 0; i < 8; i++) {
        weft_attr a = {.name = "pinned", .pinned = i % 2};
        t[i] = weft_go_with(&a, pinned_sleeper, (void *)(intptr_t)(i % 2));
        WT_REQUIRE(t[i] != NULL);
    }
    while (atomic_load(&g_pinned_now) < 8)
        weft_sleep(WT_US(50));
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    WT_CHECK_EQ(st.bound, 8);
    atomic_store(&g_counted, true);
    for (int i = 0; i < 8; i++)
        wt_join(t[i]);
    stop_churn(c, 2);
    return 0;
}

Test(bind, pinned_threads_resume_only_on_their_carrier, .timeout = 30)
{
    /* The unpinned moves are the control: a run in which the kernel gave
     * the process too little CPU for any thread to move proves nothing,
     * and is made again. Pinned threads never move in any run. */
    for (int run = 0; run < 5; run++) {
        atomic_store(&g_pinned_now, 0);
        atomic_store(&g_unpinned_moves, 0);
        atomic_store(&g_counted, false);
        WT_RUN(root_pin, NULL, .procs = 2, .hog_ms = PATIENT_HOG_MS);
        cr_log_info("pinned: %d moves; unpinned: %d moves",
                    atomic_load(&g_pinned_moves),
                    atomic_load(&g_unpinned_moves));
        cr_assert_eq(atomic_load(&g_pinned_moves), 0);
        if (atomic_load(&g_unpinned_moves) > 0)
            break;
    }
    cr_assert_gt(atomic_load(&g_unpinned_moves), 0);
}

static int pin_errors(void *arg)
{
    WT_CHECK_EQ(weft_unpin(), EINVAL);
    return 0;
}

Test(bind, pin_errors, .timeout = 10)
{
    cr_assert_eq(weft_pin(), EPERM);
    cr_assert_eq(weft_unpin(), EPERM);
    WT_RUN(pin_errors, NULL, .procs = 1);
}

/* ------------------------------------------- latency wins over binding */

static atomic_bool g_hog_done, g_pinned_woke;

/* Holds its carrier until the pinned thread woke elsewhere (a loaded
 * machine may delay that: no fixed length), or for 5 s. */
static int hog(void *arg)
{
    int64_t end = weft_now() + WT_MS(5000);
    while (weft_now() < end && !atomic_load(&g_pinned_woke)) {
    }
    atomic_store(&g_hog_done, true);
    return 0;
}

static int64_t g_late_ms;

/* Lateness less the waits for a CPU of the threads that resumed it
 * (wt_sched_chain_waited: the monitor, a spare carrier). */
static int pinned_waker(void *arg)
{
    WT_CHECK_EQ(weft_pin(), 0);
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t due = weft_now() + WT_MS(20);
    weft_sleep(WT_MS(20));
    g_late_ms = (weft_now() - due - wt_sched_chain_waited(&m)) / 1000000;
    WT_CHECK(!atomic_load(&g_hog_done));
    atomic_store(&g_pinned_woke, true);
    WT_CHECK_EQ(weft_unpin(), 0);
    return 0;
}

static int root_stuck(void *arg)
{
    weft_thread *p = wt_go_named("pinned", pinned_waker, NULL);
    weft_yield(); /* the pinned thread binds to the only P's carrier */
    weft_thread *h = wt_go_named("hog", hog, NULL);
    wt_join(p);
    wt_join(h);
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    WT_CHECK(st.unbound_resumes >= 1);
    return 0;
}

Test(bind, a_pinned_thread_leaves_a_stuck_carrier, .timeout = 20)
{
    WT_RUN(root_stuck, NULL, .procs = 1);
    cr_log_info("the pinned thread woke %lld ms late", (long long)g_late_ms);
    cr_assert_lt(g_late_ms, WT_SANITIZED ? 200 : 100);
}

/* ---------------------------------------------------------------- stress */

/* Foreign parks, weft_pin, hogs that make the monitor hand carriers off
 * and release bound threads, all at once on 2 P's with a 1 ms hog limit:
 * every call must come back (the sanitizer builds look for races). */
static atomic_int g_calls_done;

static int stress_caller(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < 200; i++) {
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 7 == 0) {
            WT_CHECK_EQ(weft_pin(), 0);
            weft_sleep(WT_US((seed >> 8) % 200));
            WT_CHECK_EQ(weft_unpin(), 0);
        } else {
            /* Not foreign_keep_errno: a thread the monitor releases from
             * a stuck carrier runs on with that carrier's errno address
             * (the trade the README states), a race by design. */
            (void)foreign_same_thread_across_sleep((seed >> 8) % 300);
        }
        atomic_fetch_add(&g_calls_done, 1);
    }
    return 0;
}

static int stress_hog(void *arg)
{
    for (int i = 0; i < 20; i++) {
        int64_t end = weft_now() + WT_MS(3);
        while (weft_now() < end) {
        }
        weft_sleep(WT_MS(2));
    }
    return 0;
}

static int root_stress(void *arg)
{
    weft_thread *t[40], *h[2];
    for (int i = 0; i < 2; i++)
        h[i] = wt_go_named("hog", stress_hog, NULL);
    for (int i = 0; i < 40; i++)
        t[i] = wt_go_named("caller", stress_caller,
                           (void *)(uintptr_t)(i * 7919 + 1));
    for (int i = 0; i < 40; i++)
        wt_join(t[i]);
    for (int i = 0; i < 2; i++)
        wt_join(h[i]);
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    WT_CHECK_EQ(st.bound, 0);
    return 0;
}

Test(bind, foreign_parks_pins_and_hogs_together, .timeout = 60)
{
    weft_config cfg = {.procs = 2, .hog_ms = 1};
    cr_assert_eq(weft_run(root_stress, NULL, &cfg), 0);
    wt_assert_clean();
    cr_assert_eq(atomic_load(&g_calls_done), 40 * 200);
}
