/* SPDX-License-Identifier: MIT */
/*
 * errno.c — compatibility row: a library compiled separately at -O2,
 * without weft's headers (keep_errno.c, libweft_compat_keep_errno.so),
 * that keeps errno across a blocking call:
 *
 *     int keep_errno(int x) { errno = x; usleep(1000); return errno; }
 *
 * glibc declares __errno_location const, so the compiled function asks
 * for errno's address once and reads the same address after usleep. Its
 * usleep parks the virtual thread (weft's hook); if the thread resumes
 * on another carrier, that address is the first carrier's errno. Many
 * callers on two P's, beside busy threads that keep both carriers
 * loaded, so that parks do resume elsewhere (a control, weft_sleep
 * between the calls, shows that they do); every call must return its own
 * x: 0 wrong values over CALLERS * CALLS calls.
 *
 * Hand-offs are held off (hog_ms 10 s): a thread bound to a carrier that
 * the monitor finds stuck past hog_ms may resume elsewhere on purpose
 * (latency over binding, counted in weft_stats.unbound_resumes), and a
 * loaded machine can stall a carrier that long. The migrations this row
 * is about come from wake-ups and stealing, not from hand-offs.
 */
#include "compat.h"

int keep_errno(int x); /* libweft_compat_keep_errno.so */

enum { CALLERS = 100, CALLS = 100, BUSY = 2 };

static atomic_int g_wrong, g_moved, g_control_moved, g_done;

static int caller(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int k = 0; k < CALLS; k++) {
        int x = 1000 + id * CALLS + k; /* unique, never 0 */
        pthread_t before = wt_carrier();
        int got = keep_errno(x);
        if (!pthread_equal(before, wt_carrier()))
            atomic_fetch_add(&g_moved, 1);
        if (got != x && atomic_fetch_add(&g_wrong, 1) < 5)
            WT_CHECK_MSG(0, "keep_errno(%d) returned %d", x, got);
        /* The control: a park in weft's own API may migrate, and under
         * this load does; keep_errno's parks would too, unbound. */
        before = wt_carrier();
        weft_sleep(WT_US(500));
        if (!pthread_equal(before, wt_carrier()))
            atomic_fetch_add(&g_control_moved, 1);
    }
    atomic_fetch_add(&g_done, 1);
    return 0;
}

/* Spins in 200 us slices with a yield between them, until the callers
 * are done: its carrier is always busy, never a hog. */
static int busy(void *arg)
{
    while (atomic_load(&g_done) < CALLERS) {
        int64_t until = wt_clock_ns() + 200000;
        while (wt_clock_ns() < until) {
        }
        weft_yield();
    }
    return 0;
}

static weft_runtime_stats g_st;

static int root(void *arg)
{
    weft_thread *b[BUSY], *c[CALLERS];
    for (int i = 0; i < BUSY; i++)
        b[i] = wt_go_named("busy", busy, NULL);
    for (int i = 0; i < CALLERS; i++)
        c[i] = wt_go_named("caller", caller, (void *)(intptr_t)i);
    for (int i = 0; i < CALLERS; i++)
        WT_CHECK_EQ(wt_join(c[i]), 0);
    for (int i = 0; i < BUSY; i++)
        WT_CHECK_EQ(wt_join(b[i]), 0);
    WT_CHECK_EQ(weft_stats(&g_st), 0);
    return 0;
}

Test(errno, kept_across_a_park_in_a_foreign_library, .timeout = 60)
{
    weft_config cfg = {.procs = 2, .hog_ms = WT_NO_HANDOFF_MS};
    int rc = weft_run(root, NULL, &cfg);
    cr_log_info("%d calls of keep_errno on 2 P's: %d wrong values, %d calls "
                "resumed on another carrier; %d of as many weft_sleep calls "
                "did (%llu hand-offs, %llu unbound resumes, %u carriers, I/O "
                "%s)", CALLERS * CALLS, atomic_load(&g_wrong),
                atomic_load(&g_moved), atomic_load(&g_control_moved),
                g_st.handoffs, g_st.unbound_resumes, g_st.carriers,
                g_st.io_backend);
    cr_expect_gt(atomic_load(&g_control_moved), 0, "no park migrated at "
                 "all: the row did not test what it is about");
    wt_assert_clean();
    cr_assert_eq(rc, 0, "weft_run returned %d", rc);
}
