/* SPDX-License-Identifier: MIT */
/*
 * errno.c — code that writes errno, parks and reads errno sees its own
 * value even when it resumed on another carrier, compiled at -O2.
 *
 * glibc declares __errno_location const, so at -O2 the compiler computes
 * errno's address once and keeps it across calls: across a park, that is
 * the address of the carrier the thread left. weft.h defines errno through
 * weft_errno_location(), which the compiler must call again. This file is
 * compiled with -O2 in every build type (tests/CMakeLists.txt), and the
 * workers below use errno in plain code, as a program would.
 *
 * Built a second time with WEFT_NO_ERRNO_ACCESSOR (test_errno_optout, not
 * under TSan: the stale reads race with the other carrier), the same
 * workers must read wrong values: that proves the first test could fail.
 */
#include "wt.h"

#include <sys/syscall.h>
#include <unistd.h>

#define WORKERS 8       /* four ping-pong pairs */
#define BUSY 2          /* siblings that keep both P's busy */
#define PROCS 2
#define ROUNDS 1500     /* per worker and batch: 12,000 parks a batch */
#define MIN_PARKS 10000
/* Batches run until the workers have migrated this often (or the time is
 * up), so that a quiet run cannot pass by hardly ever migrating. A batch
 * sees about a thousand migrations, at times (under TSan) only tens. */
#if WT_SANITIZED
#define MIN_MIGRATIONS 500
#define MAX_SECONDS 40
#else
#define MIN_MIGRATIONS 1000
#define MAX_SECONDS 20
#endif

struct worker {
    int id;
    weft_chan *out, *in; /* rendezvous channels shared with the partner */
    long parks, migrations, wrong;
    int first_wrong_want, first_wrong_got;
};

static atomic_int g_stop_busy;

static pid_t tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* One round's park through weft's API: a sleep (the timer may fire on
 * either carrier: the most migrations), a yield, or a ping-pong with the
 * partner (each side parks until the other arrives). */
static int park_once(struct worker *w, int round)
{
    int x = round;
    switch (round % 4) {
    case 0:
        return weft_yield();
    case 1:
    case 3:
        return weft_sleep(WT_US(20));
    default:
        if (w->id % 2 == 0) {
            int rc = weft_chan_send(w->out, &x);
            return rc ? rc : weft_chan_recv(w->in, &x);
        } else {
            int rc = weft_chan_recv(w->in, &x);
            return rc ? rc : weft_chan_send(w->out, &x);
        }
    }
}

static int worker_body(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        int want = 100000 + w->id * 1000000 + (int)w->parks;
        errno = want;
        pid_t before = tid();
        int rc = park_once(w, i);
        pid_t after = tid();
        int got = errno;
        WT_REQUIRE_EQ(rc, 0);
        w->parks++;
        if (before != after)
            w->migrations++;
        if (got != want && w->wrong++ == 0) {
            w->first_wrong_want = want;
            w->first_wrong_got = got;
        }
    }
    return 0;
}

/* Computes for about 50 us between yields: both carriers keep running
 * threads, so either may be the one that fires a sleeper's timer and
 * takes it. */
static int busy_body(void *arg)
{
    volatile unsigned long sink = 0;
    while (!atomic_load(&g_stop_busy)) {
        int64_t until = weft_now() + WT_US(50);
        while (weft_now() < until)
            sink++;
        weft_yield();
    }
    return 0;
}

static struct worker g_w[WORKERS];

static long total(size_t field)
{
    long n = 0;
    for (int i = 0; i < WORKERS; i++)
        n += *(long *)((char *)&g_w[i] + field);
    return n;
}

/* Runs ROUNDS rounds of every worker. */
static int run_batch(void)
{
    weft_scope *work = weft_scope_open();
    WT_REQUIRE(work != NULL);
    for (int i = 0; i < WORKERS; i++)
        WT_REQUIRE(wt_go(worker_body, &g_w[i]) != NULL);
    return weft_scope_close(work);
}

static int root_errno(void *arg)
{
    weft_chan *ch[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        WT_REQUIRE((ch[i] = weft_chan_make(sizeof(int), 0)) != NULL);
    for (int i = 0; i < WORKERS; i++) {
        g_w[i].id = i;
        g_w[i].out = ch[i];
        g_w[i].in = ch[i ^ 1];
    }
    weft_scope *busy = weft_scope_open();
    WT_REQUIRE(busy != NULL);
    for (int i = 0; i < BUSY; i++)
        WT_REQUIRE(wt_go(busy_body, NULL) != NULL);
    int64_t until = weft_now() + WT_MS(1000) * MAX_SECONDS;
    do
        WT_CHECK_EQ(run_batch(), 0);
    while ((total(offsetof(struct worker, parks)) < MIN_PARKS ||
            total(offsetof(struct worker, migrations)) < MIN_MIGRATIONS) &&
           weft_now() < until && !atomic_load(&wt_nfail));
    atomic_store(&g_stop_busy, 1);
    WT_CHECK_EQ(weft_scope_close(busy), 0);
    for (int i = 0; i < WORKERS; i++)
        WT_CHECK_EQ(weft_chan_free(ch[i]), 0);
    return 0;
}

struct totals {
    long parks, migrations, wrong;
};

static struct totals run_workers(void)
{
    WT_RUN(root_errno, NULL, .procs = PROCS);
    struct totals t = {total(offsetof(struct worker, parks)),
                       total(offsetof(struct worker, migrations)),
                       total(offsetof(struct worker, wrong))};
    cr_log_info("%ld parks, %ld migrations, %ld wrong errno values", t.parks,
                t.migrations, t.wrong);
    for (int i = 0; i < WORKERS; i++)
        if (g_w[i].wrong)
            cr_log_info("worker %d: %ld wrong, first: wanted %d, got %d", i,
                        g_w[i].wrong, g_w[i].first_wrong_want,
                        g_w[i].first_wrong_got);
    cr_assert_geq(t.parks, MIN_PARKS);
    cr_assert_geq(t.migrations, MIN_MIGRATIONS,
                  "only %ld migrations between carriers in %d s: errno was "
                  "hardly checked across carriers", t.migrations, MAX_SECONDS);
    return t;
}

#ifndef WEFT_NO_ERRNO_ACCESSOR
Test(errno, kept_across_parks_that_migrate, .timeout = 60)
{
    struct totals t = run_workers();
    cr_assert_eq(t.wrong, 0, "%ld of %ld reads of errno after a park were "
                 "wrong", t.wrong, t.parks);
}
#else
Test(errno, glibc_errno_is_stale_after_migrating, .timeout = 60)
{
    struct totals t = run_workers();
    cr_assert_gt(t.wrong, 0, "glibc's errno read no wrong value in %ld "
                 "migrations: the test would not catch a missing accessor",
                 t.migrations);
}
#endif
