/* SPDX-License-Identifier: MIT */
/*
 * offload.c — weft_offload: a blocking function runs on a pool OS thread
 * while only its caller parks; cancellation and deadlines release the
 * caller at once and the call's result is dropped safely.
 */
#include "wt_io.h" /* wt_min_ticks, wt_own_ms_since */

#include <unistd.h>

static int sleep_ms(void *arg)
{
    wt_block_ms((long)(intptr_t)arg);
    return (int)(intptr_t)arg;
}

static pthread_t g_fn_thread;

static int note_thread(void *arg)
{
    g_fn_thread = pthread_self();
    return 11;
}

static int root_result(void *arg)
{
    WT_CHECK_EQ(weft_offload(note_thread, NULL), 11);
    WT_CHECK(!pthread_equal(g_fn_thread, wt_carrier()));
    WT_CHECK_EQ(weft_offload(NULL, NULL), EINVAL);
    return 0;
}

Test(offload, returns_fns_result_from_another_os_thread, .timeout = 10)
{
    WT_RUN(root_result, NULL, .procs = 1);
}

Test(offload, runs_inline_on_an_os_thread, .timeout = 10)
{
    cr_assert_eq(weft_offload(note_thread, NULL), 11);
    cr_assert(pthread_equal(g_fn_thread, pthread_self()));
}

/* With one P, the others run while the caller waits for its call. */
static atomic_long g_ticks;
static atomic_int g_done;

static int counter(void *arg)
{
    while (!atomic_load(&g_done)) {
        atomic_fetch_add(&g_ticks, 1);
        weft_sleep(WT_MS(1));
    }
    return 0;
}

static int root_parks_only_caller(void *arg)
{
    weft_thread *c = wt_go(counter, NULL);
    WT_REQUIRE(c != NULL);
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t t0 = weft_now();
    long n0 = atomic_load(&g_ticks);
    WT_CHECK_EQ(weft_offload(sleep_ms, (void *)100), 100);
    long n = atomic_load(&g_ticks) - n0, ms = wt_ms_since(t0);
    int64_t waited = wt_sched_waited(&m);
    atomic_store(&g_done, 1);
    WT_CHECK_EQ(weft_join(c, NULL), 0);
    WT_CHECK_MSG(n >= wt_min_ticks(ms, waited), "the other thread ran %ld "
                 "times in %ld ms (%lld ms waiting for a CPU)", n, ms,
                 (long long)waited / 1000000);
    return 0;
}

Test(offload, only_the_caller_parks, .timeout = 10)
{
    WT_RUN(root_parks_only_caller, NULL, .procs = 1);
}

/* 16 calls of 100 ms from 16 threads overlap. */
static int offload_100ms(void *arg)
{
    WT_CHECK_EQ(weft_offload(sleep_ms, (void *)100), 100);
    return 0;
}

static int root_parallel(void *arg)
{
    enum { N = 16 };
    weft_thread *t[N];
    int64_t t0 = wt_mark_now();
    for (int i = 0; i < N; i++)
        WT_REQUIRE((t[i] = wt_go(offload_100ms, NULL)) != NULL);
    for (int i = 0; i < N; i++)
        WT_CHECK_EQ(weft_join(t[i], NULL), 0);
    /* Half the serial time, less the waits for a CPU of the carriers and
     * of the pool's threads (new ones each: wt_own_since counts them). */
    int64_t ms = wt_own_since(t0) / 1000000;
    WT_CHECK_MSG(ms < 800, "16 x 100 ms calls took %lld ms (less the waits "
                 "for a CPU)", (long long)ms);
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    WT_CHECK_MSG(st.offload_threads >= 8, "%u pool threads",
                 st.offload_threads);
    return 0;
}

Test(offload, calls_run_in_parallel, .timeout = 10)
{
    WT_RUN(root_parallel, NULL, .procs = 2);
}

/* ------------------------------------------------------- cancellation */

/* Blocks in read(2) on a pipe until the test writes to it. */
struct blocker {
    int fds[2];
    atomic_int started, finished;
};

static int block_on_pipe(void *arg)
{
    struct blocker *b = arg;
    atomic_store(&b->started, 1);
    char c;
    ssize_t n = read(b->fds[0], &c, 1);
    atomic_store(&b->finished, 1);
    return n == 1 ? 0 : EIO;
}

/* Waits (yielding) until the pool has no call running: the job of an
 * abandoned call is freed by then, before the leak check. */
static void wait_pool_idle(void)
{
    weft_runtime_stats st;
    for (int i = 0; i < 2000; i++) {
        if (weft_stats(&st) == 0 && st.offload_busy == 0)
            return;
        weft_sleep(WT_MS(1));
    }
    WT_CHECK_MSG(0, "pool still busy");
}

static int offload_blocker(void *arg)
{
    return weft_offload(block_on_pipe, arg);
}

/* Spawns a thread whose offloaded call blocks on b's pipe; returns once
 * the call runs. */
static weft_thread *spawn_blocked_call(struct blocker *b)
{
    WT_CHECK_EQ(pipe(b->fds), 0);
    weft_thread *t = wt_go(offload_blocker, b);
    while (t && !atomic_load(&b->started))
        weft_sleep(WT_MS(1));
    return t;
}

static void release_blocked_call(struct blocker *b)
{
    WT_CHECK_EQ(write(b->fds[1], "x", 1), 1);
}

/* Once the calls are over: waits for the pool to let go of them. */
static void close_blocker(struct blocker *b)
{
    wait_pool_idle();
    close(b->fds[0]);
    close(b->fds[1]);
}

static int root_cancel(void *arg)
{
    static struct blocker b;
    weft_thread *t = spawn_blocked_call(&b);
    WT_REQUIRE(t != NULL);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_cancel(t), 0);
    int r = 0;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, ECANCELED);
    WT_CHECK_MSG(weft_now() - t0 < WT_MS(100), "release took %lld us",
                 (long long)(weft_now() - t0) / 1000);
    WT_CHECK_EQ(atomic_load(&b.finished), 0); /* the call goes on */
    release_blocked_call(&b);
    while (!atomic_load(&b.finished))
        weft_sleep(WT_MS(1));
    close_blocker(&b);
    return 0;
}

Test(offload, cancel_releases_the_caller_and_drops_the_result, .timeout = 10)
{
    WT_RUN(root_cancel, NULL, .procs = 2);
}

static int root_deadline(void *arg)
{
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    weft_scope_deadline(s, weft_now() + WT_MS(20));
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_offload(sleep_ms, (void *)300), ETIMEDOUT);
    int64_t ms = wt_own_ms_since(t0, &m); /* less the wait for a CPU */
    WT_CHECK_MSG(ms < (WT_SANITIZED ? 1000 : 150),
                 "deadline of 20 ms released after %lld ms", (long long)ms);
    weft_scope_close(s);
    wait_pool_idle();
    return 0;
}

Test(offload, scope_deadline_gives_etimedout, .timeout = 10)
{
    WT_RUN(root_deadline, NULL, .procs = 1);
}

/* With a pool of one, a queued call whose caller is cancelled never runs. */
static atomic_int g_ran;

static int mark_ran(void *arg)
{
    atomic_store(&g_ran, 1);
    return 0;
}

static int offload_mark(void *arg)
{
    return weft_offload(mark_ran, NULL);
}

static int root_queued_cancel(void *arg)
{
    static struct blocker b;
    weft_thread *first = spawn_blocked_call(&b);
    WT_REQUIRE(first != NULL);
    weft_thread *second = wt_go(offload_mark, NULL);
    WT_REQUIRE(second != NULL);
    weft_sleep(WT_MS(10)); /* second is queued behind first */
    WT_CHECK_EQ(weft_cancel(second), 0);
    int r = 0;
    WT_CHECK_EQ(weft_join(second, &r), 0);
    WT_CHECK_EQ(r, ECANCELED);
    release_blocked_call(&b);
    WT_CHECK_EQ(weft_join(first, &r), 0);
    WT_CHECK_EQ(r, 0);
    close_blocker(&b);
    WT_CHECK_EQ(atomic_load(&g_ran), 0);
    return 0;
}

Test(offload, a_cancelled_queued_call_never_runs, .timeout = 10)
{
    setenv("WEFT_OFFLOAD_THREADS", "1", 1);
    WT_RUN(root_queued_cancel, NULL, .procs = 2);
}

/* ----------------------------------------------------- dump, deadlock */

static int root_dump(void *arg)
{
    static struct blocker b;
    weft_thread *t = spawn_blocked_call(&b);
    WT_REQUIRE(t != NULL);
    weft_sleep(WT_MS(5));
    char path[] = "/tmp/weft-offload-dump-XXXXXX";
    int fd = mkstemp(path);
    WT_REQUIRE(fd >= 0);
    unlink(path);
    weft_dump(fd);
    char buf[8192] = {0};
    WT_CHECK(pread(fd, buf, sizeof buf - 1, 0) > 0);
    close(fd);
    WT_CHECK_MSG(strstr(buf, "on offloaded call") != NULL,
                 "dump lacks the offload wait:\n%.400s", buf);
    /* The pool's size is not checked: under epoll, mkstemp's open went
     * through the pool too (io/fileio.c), and that thread may still be
     * there, idle. */
    WT_CHECK_MSG(strstr(buf, "threads (1 busy)") != NULL,
                 "dump lacks the pool:\n%.400s", buf);
    release_blocked_call(&b);
    int r = 0;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, 0);
    close_blocker(&b);
    return 0;
}

Test(offload, a_waiting_caller_shows_in_the_dump, .timeout = 10)
{
    WT_RUN(root_dump, NULL, .procs = 1);
}

/* A call in flight is not a deadlock, however long it takes (the grace
 * period of the deadlock check is 0.5 s). */
static int root_long_call(void *arg)
{
    WT_CHECK_EQ(weft_offload(sleep_ms, (void *)900), 900);
    return 0;
}

Test(offload, a_long_call_is_not_a_deadlock, .timeout = 10)
{
    WT_RUN(root_long_call, NULL, .procs = 2);
}

/* ------------------------------------------------- pool bookkeeping */

/* Two calls at once where the first waits for the second: the pool must
 * start a second thread even though the first was idle a moment ago. */
static int g_pair[2];

static int read_pair(void *arg)
{
    char c;
    return read(g_pair[0], &c, 1) == 1 ? 0 : EIO;
}

static int write_pair(void *arg)
{
    return write(g_pair[1], "x", 1) == 1 ? 0 : EIO;
}

static int offload_fn(void *arg)
{
    return weft_offload((weft_fn)arg, NULL);
}

static int root_pair(void *arg)
{
    WT_REQUIRE_EQ(pipe(g_pair), 0);
    weft_thread *r = wt_go(offload_fn, (void *)read_pair);
    weft_thread *w = wt_go(offload_fn, (void *)write_pair);
    WT_REQUIRE(r && w);
    WT_CHECK_EQ(weft_join(r, NULL), 0);
    WT_CHECK_EQ(weft_join(w, NULL), 0);
    close(g_pair[0]);
    close(g_pair[1]);
    return 0;
}

Test(offload, calls_queued_together_get_a_thread_each, .timeout = 10)
{
    for (int i = 0; i < 20; i++)
        WT_RUN(root_pair, NULL, .procs = 1);
}

/* A call of a new run, queued behind a pool thread still busy with an
 * abandoned call of the run before, is taken by that thread once it is
 * free (with a pool of one). */
static struct blocker g_left;

static int root_abandon(void *arg)
{
    weft_thread *t = spawn_blocked_call(&g_left);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_cancel(t), 0);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    return 0;
}

static int offload_note(void *arg)
{
    WT_CHECK_EQ(weft_offload(note_thread, NULL), 11);
    return 0;
}

static int root_after(void *arg)
{
    weft_thread *t = wt_go(offload_note, NULL);
    WT_REQUIRE(t != NULL);
    weft_sleep(WT_MS(20)); /* queued behind the abandoned call */
    release_blocked_call(&g_left);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    return 0;
}

Test(offload, a_call_abandoned_in_one_run_does_not_block_the_next,
     .timeout = 10)
{
    setenv("WEFT_OFFLOAD_THREADS", "1", 1);
    WT_RUN(root_abandon, NULL, .procs = 1);
    WT_RUN(root_after, NULL, .procs = 1);
    cr_assert_eq(atomic_load(&g_left.finished), 1);
    close(g_left.fds[0]);
    close(g_left.fds[1]);
}

/* An abandoned call that never returns does not hide a real deadlock. */
static weft_sem g_never = WEFT_SEM_INIT(0);

static int root_abandon_then_deadlock(void *arg)
{
    root_abandon(NULL);
    weft_sem_acquire(&g_never); /* nobody releases it */
    return 0;
}

Test(offload, an_abandoned_call_does_not_hide_a_deadlock, .timeout = 10)
{
    cr_assert_eq(weft_run(root_abandon_then_deadlock, NULL, NULL), EDEADLK);
    release_blocked_call(&g_left);
    while (!atomic_load(&g_left.finished))
        usleep(1000);
}
