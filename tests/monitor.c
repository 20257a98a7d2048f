/* SPDX-License-Identifier: MIT */
/*
 * monitor.c — a carrier stuck in a loop with no calls or in a system call
 * weft cannot see does not hold up the other virtual threads: its P's work
 * moves to a spare carrier, and the carriers come back to the P count when
 * the stuck ones return.
 *
 * These tests measure latency: ctest runs this program alone (RUN_SERIAL)
 * and Criterion runs its tests one at a time (-j1).
 */
#include "wt.h"
#include "wt_sched.h"

#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define P99_LIMIT_US 5000
#define TICK_NS WT_MS(1)
#define HOG_MS 10

/* ------------------------------------------------------------- helpers */

static atomic_int g_stop;

/* Spins with no calls at all until g_stop. */
static int spinner(void *arg)
{
    volatile unsigned long n = 0;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed))
        n++;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

struct ticks {
    int64_t p50, p99, max;
    int n;
};

enum { MAX_TICKS = 20000 };

/* Sorts late[0..n) and takes its percentiles into *t. */
static void percentiles(int64_t *late, int n, struct ticks *t)
{
    qsort(late, n, sizeof late[0], cmp_i64);
    t->n = n;
    t->p50 = n ? late[n / 2] : 0;
    t->p99 = n ? late[n * 99 / 100] : 0;
    t->max = n ? late[n - 1] : 0;
}

/* The kernel's yardstick: a plain OS thread sleeping 1 ms in a loop beside
 * the ticker, under the same load at the same time. The bounds are weft's
 * allowance on top of its lateness. */
static struct {
    pthread_t pt;
    atomic_int stop, tid;
    int n;
    int64_t late[MAX_TICKS];
} g_os;

static struct ticks g_os_ticks;

static void *os_ticker(void *arg)
{
    struct timespec ts = {0, TICK_NS};
    atomic_store(&g_os.tid, (int)syscall(SYS_gettid));
    while (!atomic_load(&g_os.stop) && g_os.n < MAX_TICKS) {
        int64_t t0 = wt_clock_ns();
        syscall(SYS_nanosleep, &ts, NULL);
        g_os.late[g_os.n++] = wt_clock_ns() - t0 - TICK_NS;
    }
    return NULL;
}

/* Sleeps 1 ms in a loop for `ns`; lateness percentiles into *t, and the
 * OS thread's meanwhile into g_os_ticks. Each lateness is weft's part:
 * less the time that the carrier which resumed the ticker, and the threads
 * that woke one another to get there (the timer waiter, the monitor, a
 * spare), waited for a CPU meanwhile (wt_sched_chain_waited); on a loaded
 * machine that time is the kernel's. The spinners' waits are not taken
 * off. */
static int measure_ticks(int64_t ns, struct ticks *t)
{
    static int64_t late[MAX_TICKS];
    int n = 0;
    g_os.n = 0;
    atomic_store(&g_os.stop, 0);
    WT_REQUIRE_EQ(pthread_create(&g_os.pt, NULL, os_ticker, NULL), 0);
    int64_t end = weft_now() + ns;
    while (weft_now() < end && n < MAX_TICKS) {
        struct wt_sched_mark m;
        wt_sched_mark(&m);
        m.skip = atomic_load(&g_os.tid);
        int64_t t0 = weft_now();
        int rc = weft_sleep(TICK_NS);
        WT_CHECK_EQ(rc, 0);
        if (rc != 0)
            break;
        int64_t own = weft_now() - t0 - TICK_NS - wt_sched_chain_waited(&m);
        late[n++] = own > 0 ? own : 0;
    }
    atomic_store(&g_os.stop, 1);
    pthread_join(g_os.pt, NULL);
    percentiles(late, n, t);
    percentiles(g_os.late, g_os.n, &g_os_ticks);
    return 0;
}

static void log_ticks(const char *what, const struct ticks *t)
{
    cr_log_info("%s: %d ticks, lateness p50 %lld us, p99 %lld us, max %lld "
                "us; an OS thread's p99 %lld us, max %lld us", what, t->n,
                (long long)t->p50 / 1000, (long long)t->p99 / 1000,
                (long long)t->max / 1000, (long long)g_os_ticks.p99 / 1000,
                (long long)g_os_ticks.max / 1000);
}

static weft_runtime_stats stats(void)
{
    weft_runtime_stats st;
    int rc = weft_stats(&st);
    WT_CHECK_EQ(rc, 0);
    return st;
}

/* After the stuck threads are gone: within a second, no carrier is stuck
 * and no more carriers hold a P than there are P's. */
static int check_back_to_procs(unsigned procs)
{
    weft_runtime_stats st = stats();
    for (int i = 0; i < 1000 && (st.stuck || st.carriers_running > procs);
         i++) {
        weft_sleep(WT_MS(1));
        st = stats();
    }
    WT_CHECK_EQ(st.stuck, 0);
    WT_CHECK_MSG(st.carriers_running <= procs,
                 "%u carriers hold a P, for %u P's", st.carriers_running,
                 procs);
    return 0;
}

static weft_config config(unsigned procs, unsigned hog_ms)
{
    weft_config c = {0};
    c.procs = procs;
    c.hog_ms = hog_ms;
    return c;
}

/* ------------------------------------------------------- spinning hogs */

static struct ticks g_ticks;

static int root_spinners(void *arg)
{
    int nhogs = (int)(intptr_t)arg;
    atomic_store(&g_stop, 0);
    weft_thread *hogs[8];
    for (int i = 0; i < nhogs; i++)
        WT_REQUIRE((hogs[i] = wt_go(spinner, NULL)) != NULL);
    measure_ticks(WT_MS(2000), &g_ticks);
    weft_runtime_stats st = stats();
    atomic_store(&g_stop, 1);
    for (int i = 0; i < nhogs; i++)
        WT_CHECK_EQ(weft_join(hogs[i], NULL), 0);
    WT_CHECK_MSG(st.handoffs >= 2, "%llu hand-offs with %d hogs on 2 P's",
                 st.handoffs, nhogs);
    WT_CHECK_MSG(st.stuck >= 2, "%u carriers stuck while %d hogs spin",
                 st.stuck, nhogs);
    check_back_to_procs(2);
    WT_CHECK_MSG(g_ticks.p99 < WT_US(P99_LIMIT_US) + g_os_ticks.p99,
                 "ticker p99 lateness %lld us (limit %d us + an OS "
                 "thread's %lld us)", (long long)g_ticks.p99 / 1000,
                 P99_LIMIT_US, (long long)g_os_ticks.p99 / 1000);
    return 0;
}

Test(monitor, four_spinning_threads_do_not_delay_a_ticker, .timeout = 30)
{
    WT_RUN(root_spinners, (void *)4, .procs = 2, .hog_ms = HOG_MS);
    log_ticks("4 spinners on 2 P's", &g_ticks);
}

Test(monitor, two_spinning_threads_do_not_delay_a_ticker, .timeout = 30)
{
    WT_RUN(root_spinners, (void *)2, .procs = 2, .hog_ms = HOG_MS);
    log_ticks("2 spinners on 2 P's", &g_ticks);
}

/* ------------------------------------------------ raw blocking syscalls */

static int g_pipes[2][2];

/* A read the runtime cannot see: straight to the kernel. */
static int raw_reader(void *arg)
{
    int *fds = arg;
    char c = 0;
    long n = syscall(SYS_read, fds[0], &c, 1);
    WT_CHECK_EQ(n, 1);
    WT_CHECK_EQ(c, 'x');
    return 0;
}

static int root_raw_syscalls(void *arg)
{
    weft_thread *r[2];
    for (int i = 0; i < 2; i++) {
        WT_REQUIRE_EQ(pipe(g_pipes[i]), 0);
        WT_REQUIRE((r[i] = wt_go(raw_reader, g_pipes[i])) != NULL);
    }
    measure_ticks(WT_MS(2000), &g_ticks);
    weft_runtime_stats st = stats();
    for (int i = 0; i < 2; i++)
        WT_CHECK_EQ(write(g_pipes[i][1], "x", 1), 1);
    for (int i = 0; i < 2; i++) {
        WT_CHECK_EQ(weft_join(r[i], NULL), 0);
        close(g_pipes[i][0]);
        close(g_pipes[i][1]);
    }
    /* At least 2: the monitor sees wall time, and on a loaded machine a
     * carrier the kernel preempted for longer than HOG_MS looks stuck too. */
    WT_CHECK_MSG(st.stuck >= 2, "%u carriers stuck in read(2), expected 2+",
                 st.stuck);
    check_back_to_procs(2);
    WT_CHECK_MSG(g_ticks.p99 < WT_US(P99_LIMIT_US) + g_os_ticks.p99,
                 "ticker p99 lateness %lld us (limit %d us + an OS "
                 "thread's %lld us)", (long long)g_ticks.p99 / 1000,
                 P99_LIMIT_US, (long long)g_os_ticks.p99 / 1000);
    return 0;
}

Test(monitor, threads_blocked_in_raw_syscalls_do_not_delay_a_ticker,
     .timeout = 30)
{
    WT_RUN(root_raw_syscalls, NULL, .procs = 2, .hog_ms = HOG_MS);
    log_ticks("2 raw read(2)s on 2 P's", &g_ticks);
}

/* ---------------------------------------------------- counters, limits */

/* Spins (never switching) for arg ms of CPU time. */
static int timed_spinner(void *arg)
{
    wt_spin_cpu_ms((long)(intptr_t)arg);
    return 0;
}

static int root_named_hog(void *arg)
{
    weft_attr a = {.name = "number-cruncher"};
    weft_thread *t = weft_go_with(&a, timed_spinner, (void *)60);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    /* The hog is recorded by its carrier's scheduler loop, after the
     * switch that woke this joiner: a demoted carrier on a loaded machine
     * may get there a while later. */
    weft_runtime_stats st = stats();
    for (int i = 0; i < 200 && !st.longest_hog_ns; i++) {
        weft_sleep(WT_MS(10));
        st = stats();
    }
    WT_CHECK_MSG(st.handoffs >= 1, "%llu hand-offs", st.handoffs);
    WT_CHECK_MSG(st.handoffs_blocking == 0, "a hog counted as %llu "
                 "blocking-call hand-offs", st.handoffs_blocking);
    WT_CHECK_MSG(st.longest_hog_ns >= (unsigned long long)WT_MS(40),
                 "longest hog %llu ns, expected >= 40 ms",
                 st.longest_hog_ns);
    WT_CHECK_MSG(strcmp(st.longest_hog_name, "number-cruncher") == 0,
                 "longest hog named '%s'", st.longest_hog_name);
    return 0;
}

Test(monitor, a_hand_off_is_counted_with_the_hogs_name, .timeout = 20)
{
    WT_RUN(root_named_hog, NULL, .procs = 1, .hog_ms = HOG_MS);
}

static int root_short_run(void *arg)
{
    weft_thread *t = wt_go(timed_spinner, (void *)20);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(stats().handoffs, 0);
    return 0;
}

Test(monitor, runs_shorter_than_hog_ms_are_left_alone, .timeout = 20)
{
    WT_RUN(root_short_run, NULL, .procs = 1, .hog_ms = 1000);
}

Test(monitor, hog_ms_comes_from_the_environment, .timeout = 20)
{
    setenv("WEFT_HOG_MS", "1000", 1);
    WT_RUN(root_short_run, NULL, .procs = 1, .hog_ms = 0);
}

/* A thread that was handed off keeps using the runtime from its carrier
 * (which lost its P): yield, sleep, spawn and join, channels. */
static int echo(void *arg)
{
    weft_chan *c = arg;
    int v;
    WT_REQUIRE_EQ(weft_chan_recv(c, &v), 0);
    v++;
    WT_REQUIRE_EQ(weft_chan_send(c, &v), 0);
    return 0;
}

static atomic_int g_worked;

static int hog_then_work(void *arg)
{
    timed_spinner((void *)40);
    WT_CHECK_EQ(weft_yield(), 0);
    WT_CHECK_EQ(weft_sleep(WT_MS(2)), 0);
    weft_chan *c = weft_chan_make(sizeof(int), 0);
    WT_REQUIRE(c != NULL);
    weft_thread *t = wt_go(echo, c);
    WT_REQUIRE(t != NULL);
    int v = 41;
    WT_CHECK_EQ(weft_chan_send(c, &v), 0);
    WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
    WT_CHECK_EQ(v, 42);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    atomic_fetch_add(&g_worked, 1);
    return 0;
}

static int root_hog_then_work(void *arg)
{
    weft_thread *t[3];
    for (int i = 0; i < 3; i++)
        WT_REQUIRE((t[i] = wt_go(hog_then_work, NULL)) != NULL);
    for (int i = 0; i < 3; i++)
        WT_CHECK_EQ(weft_join(t[i], NULL), 0);
    WT_CHECK_EQ(atomic_load(&g_worked), 3);
    WT_CHECK_MSG(stats().handoffs >= 1, "no hand-off");
    check_back_to_procs(2);
    return 0;
}

Test(monitor, a_handed_off_thread_goes_on_using_the_runtime, .timeout = 20)
{
    WT_RUN(root_hog_then_work, NULL, .procs = 2, .hog_ms = HOG_MS);
}

/* max_carriers bounds the spares: sampled from a plain OS thread while
 * three hogs share one P and two carriers. */
static atomic_int g_sampling;
static atomic_uint g_max_carriers_seen;

static void *sampler(void *arg)
{
    while (atomic_load(&g_sampling)) {
        weft_runtime_stats st;
        if (weft_stats(&st) == 0 &&
            st.carriers > atomic_load(&g_max_carriers_seen))
            atomic_store(&g_max_carriers_seen, st.carriers);
        usleep(500);
    }
    return NULL;
}

static int root_capped(void *arg)
{
    pthread_t s;
    atomic_store(&g_sampling, 1);
    WT_REQUIRE_EQ(pthread_create(&s, NULL, sampler, NULL), 0);
    weft_thread *t[3];
    for (int i = 0; i < 3; i++)
        WT_REQUIRE((t[i] = wt_go(timed_spinner, (void *)80)) != NULL);
    for (int i = 0; i < 3; i++)
        WT_CHECK_EQ(weft_join(t[i], NULL), 0);
    atomic_store(&g_sampling, 0);
    pthread_join(s, NULL);
    weft_runtime_stats st = stats();
    WT_CHECK_MSG(st.handoffs >= 1, "no hand-off");
    WT_CHECK_MSG(atomic_load(&g_max_carriers_seen) <= 2,
                 "%u carriers with max_carriers 2",
                 atomic_load(&g_max_carriers_seen));
    return 0;
}

Test(monitor, max_carriers_bounds_the_spares, .timeout = 20)
{
    WT_RUN(root_capped, NULL, .procs = 1, .hog_ms = HOG_MS,
           .max_carriers = 2);
}

static int root_noop(void *arg)
{
    return 0;
}

Test(monitor, bad_configurations_are_refused, .timeout = 10)
{
    weft_config c = config(2, 60001);
    cr_assert_eq(weft_run(root_noop, NULL, &c), EINVAL);
    c = config(4, 0);
    c.max_carriers = 3;
    cr_assert_eq(weft_run(root_noop, NULL, &c), EINVAL);
    c.max_carriers = 5000;
    cr_assert_eq(weft_run(root_noop, NULL, &c), EINVAL);
    weft_runtime_stats st;
    cr_assert_eq(weft_stats(&st), ESRCH);
    cr_assert_eq(weft_stats(NULL), EINVAL);
}

/* ------------------------------------------------------ marked blocking */

/* WEFT_OFFLOAD_THREADS=0 runs offloaded calls on the caller's carrier,
 * marked as blocking: with one P and a hog limit of 10 s, only the marker
 * can get the ticker running again, within a couple of ms. */
static int blocking_call(void *arg)
{
    wt_block_ms(300);
    return 5;
}

static int offloader(void *arg)
{
    WT_CHECK_EQ(weft_offload(blocking_call, NULL), 5);
    return 0;
}

static int root_marked(void *arg)
{
    weft_thread *t = wt_go(offloader, NULL);
    WT_REQUIRE(t != NULL);
    weft_sleep(WT_MS(2)); /* the offloader is in its call now */
    measure_ticks(WT_MS(200), &g_ticks);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    weft_runtime_stats st = stats();
    WT_CHECK_MSG(st.handoffs >= 1, "no hand-off");
    WT_CHECK_MSG(st.handoffs_blocking >= 1, "%llu hand-offs, none counted "
                 "as in a marked blocking call", st.handoffs);
    WT_CHECK_MSG(g_ticks.max < WT_MS(20) + g_os_ticks.max,
                 "ticker max lateness %lld us (an OS thread's %lld us)",
                 (long long)g_ticks.max / 1000,
                 (long long)g_os_ticks.max / 1000);
    return 0;
}

Test(monitor, a_marked_blocking_call_is_handed_off_within_ms, .timeout = 20)
{
    setenv("WEFT_OFFLOAD_THREADS", "0", 1);
    WT_RUN(root_marked, NULL, .procs = 1, .hog_ms = 10000);
    log_ticks("ticker beside a 300 ms marked call, 1 P", &g_ticks);
}

/* ------------------------------------------------ without CAP_SYS_NICE */

/* A process that may not undo a demotion (no CAP_SYS_NICE, RLIMIT_NICE 0:
 * any unprivileged user) ends each demoted carrier when it comes back and
 * reuses its record: several rounds of hogs neither pile up carriers nor
 * stop the hand-offs. As root, the test gives its privileges up first. */
static int root_rounds(void *arg)
{
    enum { ROUNDS = 4 };
    unsigned most = 0;
    for (int round = 0; round < ROUNDS; round++) {
        weft_thread *t[2];
        for (int i = 0; i < 2; i++)
            WT_REQUIRE((t[i] = wt_go(timed_spinner, (void *)40)) != NULL);
        for (int i = 0; i < 2; i++)
            WT_CHECK_EQ(weft_join(t[i], NULL), 0);
        check_back_to_procs(2);
        weft_runtime_stats st = stats();
        if (st.carriers > most)
            most = st.carriers;
    }
    weft_runtime_stats st = stats();
    WT_CHECK_MSG(st.handoffs >= ROUNDS, "%llu hand-offs in %d rounds",
                 st.handoffs, ROUNDS);
    WT_CHECK_MSG(most <= 5, "%u carriers alive (2 P's, 2 hogs at a time)",
                 most);
    return 0;
}

Test(monitor, unprivileged_spares_are_reused_round_after_round,
     .timeout = 30)
{
    wt_drop_privileges();
    /* max_carriers 3: every record, carrier 0's too, gets reused */
    WT_RUN(root_rounds, NULL, .procs = 2, .hog_ms = HOG_MS,
           .max_carriers = 3);
}

/* Compact stacks (2 KiB) hold nothing but the thread's own frames: a
 * hand-off is recorded from the carrier's scheduler loop, not on them. */
static int root_compact_hogs(void *arg)
{
    weft_attr a = {.name = "compact-hog"};
    weft_thread *t[3];
    for (int i = 0; i < 3; i++)
        WT_REQUIRE((t[i] = weft_go_with(&a, timed_spinner, (void *)30)));
    for (int i = 0; i < 3; i++)
        WT_CHECK_EQ(weft_join(t[i], NULL), 0);
    weft_runtime_stats st = stats();
    WT_CHECK_MSG(st.handoffs >= 1, "no hand-off");
    WT_CHECK_MSG(strcmp(st.longest_hog_name, "compact-hog") == 0,
                 "longest hog named '%s'", st.longest_hog_name);
    return 0;
}

Test(monitor, hand_offs_work_in_compact_mode, .timeout = 20)
{
    /* 2 KiB stacks; sanitizers' frames need more */
    WT_RUN(root_compact_hogs, NULL, .procs = 1, .hog_ms = HOG_MS,
           .stack_size = WT_SANITIZED ? 12 * 1024 : 2048);
}

/* Unprivileged, both carriers are found stuck and end when they come
 * back, while a thread sleeps: a carrier must be there to wake it (and
 * to notice a deadlock). As root, the test gives its privileges up. */
static int spin_then_sleep(void *arg)
{
    timed_spinner((void *)60);
    WT_CHECK_EQ(weft_sleep(WT_MS(100)), 0);
    return 0;
}

static int root_all_carriers_end(void *arg)
{
    weft_thread *t = wt_go(spin_then_sleep, NULL);
    WT_REQUIRE(t != NULL);
    timed_spinner((void *)60);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    return 0;
}

Test(monitor, a_sleeper_wakes_after_every_carrier_ended, .timeout = 20)
{
    wt_drop_privileges();
    for (int i = 0; i < 5; i++)
        WT_RUN(root_all_carriers_end, NULL, .procs = 2, .hog_ms = HOG_MS);
}

/* ------------------------------------------- preempted by other processes */

/* The runtime shares one CPU with BUSY_PROCS processes that spin: its
 * carriers are preempted for longer than hog_ms again and again. That is
 * not a hog: the monitor leaves such carriers alone, while it still hands
 * off a thread that really spins and one blocked in a system call it
 * cannot see. */
#define BUSY_PROCS 3

static pid_t g_busy[BUSY_PROCS];

/* Pins this process (and the threads it starts later) and BUSY_PROCS
 * spinning children to one CPU. The children die with the test. */
static void share_a_cpu_with_busy_processes(void)
{
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    int cpu = 0;
    while (!CPU_ISSET(cpu, &set))
        cpu++;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    cr_assert_eq(sched_setaffinity(0, sizeof set, &set), 0);
    for (int i = 0; i < BUSY_PROCS; i++) {
        g_busy[i] = fork();
        cr_assert(g_busy[i] >= 0);
        if (g_busy[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (volatile unsigned long n = 0;; n++) {
            }
        }
    }
}

static void stop_busy_processes(void)
{
    for (int i = 0; i < BUSY_PROCS; i++) {
        kill(g_busy[i], SIGKILL);
        waitpid(g_busy[i], NULL, 0);
    }
}

/* Short bursts of work (tens of microseconds) between yields, for 2 s. */
static int short_bursts(void *arg)
{
    int64_t end = weft_now() + WT_MS(2000);
    while (weft_now() < end) {
        for (volatile int i = 0; i < 20000; i++) {
        }
        WT_CHECK_EQ(weft_yield(), 0);
    }
    return 0;
}

static int root_short_bursts(void *arg)
{
    weft_thread *t[4];
    for (int i = 0; i < 4; i++)
        WT_REQUIRE((t[i] = wt_go(short_bursts, NULL)) != NULL);
    for (int i = 0; i < 4; i++)
        WT_CHECK_EQ(weft_join(t[i], NULL), 0);
    weft_runtime_stats st = stats();
    cr_log_info("%llu hand-offs, %u carriers, beside %d busy processes",
                st.handoffs, st.carriers, BUSY_PROCS);
    WT_CHECK_MSG(st.handoffs <= 2, "%llu hand-offs of carriers the kernel "
                 "preempted (short bursts, %d busy processes on their CPU)",
                 st.handoffs, BUSY_PROCS);
    return 0;
}

Test(monitor, carriers_preempted_by_other_processes_are_not_hogs,
     .timeout = 30)
{
    share_a_cpu_with_busy_processes();
    WT_RUN(root_short_bursts, NULL, .procs = 2, .hog_ms = HOG_MS);
    stop_busy_processes();
}

/* A real hog, or a raw blocking system call, beside the same processes:
 * handed off, and the thread queued behind it runs before it is over
 * (STUCK_MS of CPU time, or of sleep; sanitizers start a spare carrier
 * slowly on a CPU shared this way). */
#define STUCK_MS (WT_SANITIZED ? 2000 : 200)
static _Atomic int64_t g_ran_at;

static int note_time(void *arg)
{
    atomic_store(&g_ran_at, weft_now());
    return 0;
}

static int raw_sleep(void *arg)
{
    wt_block_ms((long)(intptr_t)arg);
    return 0;
}

static int root_stuck_beside_busy(void *arg)
{
    int64_t t0 = weft_now();
    weft_thread *stuck = wt_go((weft_fn)arg, (void *)STUCK_MS);
    weft_thread *queued = wt_go(note_time, NULL);
    WT_REQUIRE(stuck && queued);
    WT_CHECK_EQ(weft_join(queued, NULL), 0);
    WT_CHECK_EQ(weft_join(stuck, NULL), 0);
    long ms = (long)((atomic_load(&g_ran_at) - t0) / 1000000);
    weft_runtime_stats st = stats();
    WT_CHECK_MSG(st.handoffs >= 1, "no hand-off");
    WT_CHECK_MSG(ms < STUCK_MS * 3 / 4, "the queued thread ran after %ld "
                 "ms (the stuck one holds its carrier for %d ms)", ms,
                 STUCK_MS);
    return 0;
}

Test(monitor, a_hog_beside_busy_processes_is_handed_off, .timeout = 30)
{
    share_a_cpu_with_busy_processes();
    WT_RUN(root_stuck_beside_busy, (void *)timed_spinner,
           .procs = 1, .hog_ms = HOG_MS);
    stop_busy_processes();
}

Test(monitor, a_raw_syscall_beside_busy_processes_is_handed_off,
     .timeout = 30)
{
    share_a_cpu_with_busy_processes();
    WT_RUN(root_stuck_beside_busy, (void *)raw_sleep,
           .procs = 1, .hog_ms = HOG_MS);
    stop_busy_processes();
}
