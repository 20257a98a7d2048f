/* SPDX-License-Identifier: MIT */
/*
 * idle.c — an idle runtime sleeps. With every virtual thread waiting on a
 * pipe or a channel and no timer armed, the process makes (almost) no
 * context switch: no carrier, monitor or pool thread wakes to look around.
 * It still wakes at once when an fd becomes ready, and the monitor, asleep
 * meanwhile, still catches a hog once threads run again.
 *
 * Switches are counted (/proc/self/task/<tid>/status), not timed: a loaded
 * machine delays an idle process's wake-ups but adds none, so the bounds
 * hold under load.
 */
#include "wt.h"
#include "wt_io.h"

#include <dirent.h>

#define IDLE_MS 2000
#define MAX_SWITCHES 5   /* in IDLE_MS, by the runtime's OS threads */
#define NPIPES 2
#define NRECV 2

/* ------------------------------------------------------------ counting */

static long task_switches(const char *tid)
{
    char path[300], line[128];
    snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
    FILE *f = fopen(path, "r");
    long sum = 0, v;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
            sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
            sum += v;
    if (f)
        fclose(f);
    return sum;
}

/* Tasks that are not the runtime's: those alive before weft_run but the
 * main thread (which runs the monitor), such as ThreadSanitizer's
 * background thread (which wakes every 100 ms; it starts with the
 * process's second thread: one is started and joined first). */
#define MAX_FOREIGN 16
static long g_foreign[MAX_FOREIGN];
static int g_nforeign;

static void *nothing(void *arg)
{
    return NULL;
}

static void note_foreign_tasks(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) == 0)
        pthread_join(t, NULL);
    DIR *d = opendir("/proc/self/task");
    for (struct dirent *e; d && (e = readdir(d));) {
        long tid = atol(e->d_name);
        if (e->d_name[0] != '.' && tid != getpid() &&
            g_nforeign < MAX_FOREIGN)
            g_foreign[g_nforeign++] = tid;
    }
    if (d)
        closedir(d);
}

static bool counted(long tid)
{
    for (int i = 0; i < g_nforeign; i++)
        if (g_foreign[i] == tid)
            return false;
    return tid != (long)gettid();
}

/* Context switches of the runtime's tasks, the caller's excepted. The
 * runtime starts no thread while idle, so none is missed. */
static long runtime_switches(void)
{
    long sum = 0;
    DIR *d = opendir("/proc/self/task");
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.' && counted(atol(e->d_name)))
            sum += task_switches(e->d_name);
    if (d)
        closedir(d);
    return sum;
}

/* ------------------------------------------------------------- waiters */

static int g_pipes[NPIPES][2];
static int g_done[2];            /* the measurer's word to the root */
static weft_chan *g_gate;
static atomic_int g_parked;

static int pipe_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;
    atomic_fetch_add(&g_parked, 1);
    WT_CHECK_EQ(weft_read(fd, &c, 1), 1);
    return 0;
}

static int chan_receiver(void *arg)
{
    int v;
    atomic_fetch_add(&g_parked, 1);
    WT_CHECK_EQ(weft_chan_recv(g_gate, &v), EPIPE);
    return 0;
}

/* ------------------------------------------------------------ measurer */

static long g_switches;
static _Atomic int64_t g_written_at;

/* A plain OS thread: lets the root block, counts the others' switches
 * over IDLE_MS, then writes to the root's pipe. */
static void *measurer(void *arg)
{
    wt_block_ms(300); /* the root blocks in its read; the runtime settles */
    long before = runtime_switches();
    wt_block_ms(IDLE_MS);
    g_switches = runtime_switches() - before;
    atomic_store(&g_written_at, weft_now());
    if (write(g_done[1], "x", 1) != 1)
        g_switches = -1;
    return NULL;
}

/* Spawns the waiters and waits (its sleeps end before the window) until
 * they are parked. */
static int start_waiters(weft_thread **t)
{
    WT_REQUIRE((g_gate = weft_chan_make(sizeof(int), 0)) != NULL);
    for (int i = 0; i < NPIPES; i++) {
        WT_REQUIRE_EQ(pipe(g_pipes[i]), 0);
        t[i] = wt_go(pipe_reader, (void *)(intptr_t)g_pipes[i][0]);
        WT_REQUIRE(t[i] != NULL);
    }
    for (int i = 0; i < NRECV; i++)
        WT_REQUIRE((t[NPIPES + i] = wt_go(chan_receiver, NULL)) != NULL);
    WT_REQUIRE(wt_wait_io_waiting(NPIPES));
    while (atomic_load(&g_parked) < NPIPES + NRECV)
        weft_sleep(WT_MS(1));
    return 0;
}

static int stop_waiters(weft_thread **t)
{
    for (int i = 0; i < NPIPES; i++)
        WT_CHECK_EQ(write(g_pipes[i][1], "x", 1), 1);
    WT_CHECK_EQ(weft_chan_close(g_gate), 0);
    for (int i = 0; i < NPIPES + NRECV; i++)
        WT_CHECK_EQ(weft_join(t[i], NULL), 0);
    for (int i = 0; i < NPIPES; i++) {
        close(g_pipes[i][0]);
        close(g_pipes[i][1]);
    }
    weft_chan_free(g_gate);
    return 0;
}

/* The root: waiters parked, it blocks in a read of g_done (no timer
 * anywhere) while the measurer counts; then checks how fast the write
 * woke it. */
static int root_idle(void *arg)
{
    weft_thread *t[NPIPES + NRECV];
    WT_REQUIRE_EQ(pipe(g_done), 0);
    WT_REQUIRE_EQ(start_waiters(t), 0);
    pthread_t m;
    WT_REQUIRE_EQ(pthread_create(&m, NULL, measurer, NULL), 0);
    char c;
    WT_CHECK_EQ(read(g_done[0], &c, 1), 1);
    long woke_ms = wt_ms_since(atomic_load(&g_written_at));
    pthread_join(m, NULL);
    WT_CHECK_MSG(g_switches >= 0 && g_switches <= MAX_SWITCHES,
                 "%ld context switches in %d ms idle (at most %d)",
                 g_switches, IDLE_MS, MAX_SWITCHES);
    WT_CHECK_MSG(woke_ms < WT_LATE_MS / 5,
                 "a ready fd woke its reader after %ld ms", woke_ms);
    cr_log_info("%ld switches in %d ms idle; woken %ld ms after the write",
                g_switches, IDLE_MS, woke_ms);
    close(g_done[0]);
    close(g_done[1]);
    return stop_waiters(t);
}

Test(idle, an_idle_runtime_makes_no_context_switches, .timeout = 30)
{
    note_foreign_tasks();
    WT_RUN(root_idle, NULL, .procs = 2, .hog_ms = 0);
}

/* ------------------------------------------------- hogs after idleness */

static _Atomic int64_t g_queued_ran_at;

#define HOG_MS 10
#define SPIN_MS (WT_SANITIZED ? 2000 : 300) /* of CPU time */

static int spin(void *arg)
{
    wt_spin_cpu_ms(SPIN_MS);
    return 0;
}

static int note_run(void *arg)
{
    atomic_store(&g_queued_ran_at, weft_now());
    return 0;
}

/* After a second with every thread parked (the monitor asleep), a thread
 * spins on the only P with another queued behind it: the monitor, woken
 * when the carrier left idle, hands the P's queue off after hog_ms. */
static int root_hog_after_idle(void *arg)
{
    weft_thread *t[NPIPES + NRECV];
    WT_REQUIRE_EQ(start_waiters(t), 0);
    WT_CHECK_EQ(weft_read(g_done[0], &(char){0}, 1), 1);
    int64_t t0 = weft_now();
    weft_thread *hog = wt_go(spin, NULL);
    weft_thread *queued = wt_go(note_run, NULL);
    WT_REQUIRE(hog && queued);
    WT_CHECK_EQ(weft_join(queued, NULL), 0);
    WT_CHECK_EQ(weft_join(hog, NULL), 0);
    long waited_ms = (long)((atomic_load(&g_queued_ran_at) - t0) / 1000000);
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    WT_CHECK_MSG(st.handoffs >= 1, "no hand-off");
    WT_CHECK_MSG(waited_ms < SPIN_MS / 2, "the thread queued behind a hog "
                 "ran after %ld ms (hog_ms %d, the hog spins %d ms of CPU)",
                 waited_ms, HOG_MS, SPIN_MS);
    return stop_waiters(t);
}

static void *write_after_1s(void *arg)
{
    wt_block_ms(1000);
    if (write(g_done[1], "x", 1) != 1)
        abort();
    return NULL;
}

Test(idle, the_monitor_catches_a_hog_after_a_long_idle, .timeout = 30)
{
    wt_skip_without_backend();
    cr_assert_eq(pipe(g_done), 0);
    pthread_t w;
    cr_assert_eq(pthread_create(&w, NULL, write_after_1s, NULL), 0);
    weft_config c = {.procs = 1, .hog_ms = HOG_MS};
    int rc = weft_run(root_hog_after_idle, NULL, &c);
    pthread_join(w, NULL);
    wt_assert_clean();
    cr_assert_eq(rc, 0);
}
