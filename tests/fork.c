/* SPDX-License-Identifier: MIT */
/*
 * fork.c — fork(2) while a runtime runs: the child goes on as a plain
 * single-threaded process, never hangs, and leaves the parent's runtime
 * (its io_uring rings or epoll instance) alone.
 *
 * Each child reports through its exit status: a failed check prints where
 * on stderr and exits with CHILD_FAILED. The parent reaps it with a
 * deadline (reap): a child that hangs is killed and the test fails.
 * Children end with _exit unless the test is about how they end.
 */
#include "wt_io.h"

#include <sys/wait.h>

#define RUN_TEST(...) WT_RUN_TEST(fork, __VA_ARGS__)

#define CHILD_FAILED 99
#define REAP_HUNG (-1)
#define CHILD_MS (WT_SANITIZED ? 20000 : 5000)

#define CHILD_REQUIRE(cond)                                                \
    do {                                                                   \
        if (!(cond)) {                                                     \
            dprintf(STDERR_FILENO, "fork child: %s:%d: %s (errno %d)\n",   \
                    __FILE__, __LINE__, #cond, errno);                     \
            _exit(CHILD_FAILED);                                           \
        }                                                                  \
    } while (0)

/* Waits for pid up to ms (waitpid polled: it is not a parking call).
 * Returns its exit status, 128 + signal, or REAP_HUNG (killed). Runs on:
 * any thread. */
static int reap(pid_t pid, int64_t ms)
{
    int64_t until = weft_now() + WT_MS(ms);
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0)
            return -2;
        if (weft_now() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return REAP_HUNG;
        }
        weft_sleep(WT_MS(1));
    }
}

static pid_t fork_flushed(void)
{
    fflush(NULL); /* no buffered output written twice */
    return fork();
}

/* A pipe whose read end the poller watches: a virtual thread waited on it
 * (a read that parked until a late write). */
static int armed_pipe(int p[2])
{
    WT_REQUIRE_EQ(pipe2(p, O_CLOEXEC), 0);
    struct wt_late_write lw = {p[1], WT_MS(20)};
    weft_thread *w = wt_go(wt_write_later, &lw);
    char b[8];
    WT_CHECK_EQ(read(p[0], b, sizeof b), 4);
    wt_join(w);
    return 0;
}

/* The poller still delivers p[0]'s edges: a read parks until a late
 * write, within a deadline (a broken registration times out). */
static void check_poller_works(int p[2])
{
    struct wt_late_write lw = {p[1], WT_MS(30)};
    weft_thread *w = wt_go(wt_write_later, &lw);
    int r = weft_wait_fd(p[0], POLLIN, weft_now() + WT_MS(CHILD_MS));
    WT_CHECK_EQ(r, 0);
    char b[8];
    if (r == 0)
        WT_CHECK_EQ(read(p[0], b, sizeof b), 4);
    wt_join(w);
}

/* ============================================== the child uses libc, weft */

/* The pipes of child_io: data (its read end armed in the parent's
 * poller, "ready" in it), and sync, on which the child says it is about
 * to read what the parent writes next. */
struct io_pipes {
    int data[2], sync[2];
};

static int io_pipes_make(struct io_pipes *io)
{
    WT_REQUIRE_EQ(armed_pipe(io->data), 0);
    WT_REQUIRE_EQ(pipe2(io->sync, O_CLOEXEC), 0);
    WT_REQUIRE_EQ(write(io->data[1], "ready", 5), 5);
    return 0;
}

static void io_pipes_close(struct io_pipes *io)
{
    for (int i = 0; i < 2; i++) {
        close(io->data[i]);
        close(io->sync[i]);
    }
}

/* In the child: sleeps, a read of ready data, a read that blocks until
 * the parent writes, a close, all on an fd the parent's poller watches. */
static void child_io(struct io_pipes *io)
{
    int64_t t0 = weft_now();
    CHILD_REQUIRE(weft_sleep(WT_MS(20)) == 0);
    CHILD_REQUIRE(weft_now() - t0 >= WT_MS(20));
    CHILD_REQUIRE(usleep(1000) == 0);
    char b[16] = {0};
    CHILD_REQUIRE(read(io->data[0], b, 5) == 5 && !memcmp(b, "ready", 5));
    t0 = weft_now();
    CHILD_REQUIRE(write(io->sync[1], "g", 1) == 1);
    CHILD_REQUIRE(read(io->data[0], b, sizeof b) == 5 &&
                  !memcmp(b, "later", 5));
    CHILD_REQUIRE(weft_now() - t0 >= WT_MS(40)); /* it blocked */
    CHILD_REQUIRE(close(io->data[0]) == 0);
    CHILD_REQUIRE(weft_self() == NULL); /* a plain OS thread now */
    _exit(0);
}

/* The parent's side of child_io: once the child is about to read, writes
 * "later" 50 ms on. Returns the child's status (see reap). Runs on: any
 * thread. */
static int feed_child_io(pid_t pid, struct io_pipes *io)
{
    char b;
    if (weft_wait_fd(io->sync[0], POLLIN, weft_now() + WT_MS(CHILD_MS)) ||
        read(io->sync[0], &b, 1) != 1)
        return reap(pid, 0);
    weft_sleep(WT_MS(50));
    if (write(io->data[1], "later", 5) != 5)
        return -3;
    return reap(pid, CHILD_MS);
}

static int child_uses_io(void *arg)
{
    struct io_pipes io;
    WT_REQUIRE_EQ(io_pipes_make(&io), 0);
    pid_t pid = fork_flushed();
    WT_REQUIRE(pid >= 0);
    if (pid == 0)
        child_io(&io);
    WT_CHECK_EQ(feed_child_io(pid, &io), 0);
    check_poller_works(io.data);
    io_pipes_close(&io);
    return 0;
}
RUN_TEST(child_sleeps_and_reads, child_uses_io, NULL, .procs = 2, .timeout = 60)

/* ====================================== what needs the runtime: ECHILD */

static int never_runs(void *arg) { return 0; }

/* Waits on a channel until it is closed: 0, else what the wait gave. */
static int wait_on_chan(void *arg)
{
    int v;
    int r = weft_chan_recv(arg, &v);
    return r == EPIPE ? 0 : r ? r : EINVAL;
}

/* In the child: spawning and the other virtual-thread calls fail with
 * ECHILD; a join of a thread that cannot finish here too; what works on
 * any thread (channels, semaphores) works without blocking forever. */
static void child_runtime_calls(weft_thread *waiter)
{
    CHILD_REQUIRE(weft_go(never_runs, NULL) == NULL && errno == ECHILD);
    weft_attr a = {.name = "x"};
    CHILD_REQUIRE(weft_go_with(&a, never_runs, NULL) == NULL &&
                  errno == ECHILD);
    CHILD_REQUIRE(weft_scope_open() == NULL && errno == ECHILD);
    CHILD_REQUIRE(weft_pin() == ECHILD);
    CHILD_REQUIRE(weft_join(waiter, NULL) == ECHILD);
    CHILD_REQUIRE(weft_run(never_runs, NULL, NULL) == ECHILD);
    weft_runtime_stats st;
    CHILD_REQUIRE(weft_stats(&st) != 0); /* no runtime runs here */
    weft_chan *c = weft_chan_make(sizeof(int), 1);
    int v = 7, got = 0;
    CHILD_REQUIRE(c && weft_chan_send(c, &v) == 0);
    CHILD_REQUIRE(weft_chan_recv(c, &got) == 0 && got == 7);
    weft_sem s = WEFT_SEM_INIT(1);
    CHILD_REQUIRE(weft_sem_acquire(&s) == 0);
    _exit(0);
}

static int child_runtime_errors(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 0);
    WT_REQUIRE(c != NULL);
    weft_thread *waiter = wt_go(wait_on_chan, c);
    weft_sleep(WT_MS(5));
    pid_t pid = fork_flushed();
    WT_REQUIRE(pid >= 0);
    if (pid == 0)
        child_runtime_calls(waiter);
    WT_CHECK_EQ(reap(pid, CHILD_MS), 0);
    weft_chan_close(c);
    WT_CHECK_EQ(wt_join(waiter), 0); /* untouched by the child */
    weft_chan_free(c);
    return 0;
}
RUN_TEST(child_runtime_calls_fail_with_echild, child_runtime_errors, NULL,
         .procs = 2, .timeout = 60)

/* ========================= the forking thread's return ends the child */

static int fork_and_return(void *arg)
{
    pid_t *pid = arg;
    *pid = fork_flushed();
    if (*pid == 0)
        return ETIMEDOUT; /* in the child: its exit status */
    return 0;
}

static int child_exits_with_result(void *arg)
{
    pid_t pid = -1;
    weft_thread *t = wt_go(fork_and_return, &pid);
    WT_CHECK_EQ(wt_join(t), 0);
    WT_REQUIRE(pid > 0);
    WT_CHECK_EQ(reap(pid, CHILD_MS), ETIMEDOUT);
    return 0;
}
RUN_TEST(child_return_exits_with_result, child_exits_with_result, NULL,
         .procs = 2, .timeout = 60)

/* ======================================= fork from a plain OS thread */

struct os_fork {
    struct io_pipes io;
    int status;
};

static void *os_forker(void *arg)
{
    struct os_fork *f = arg;
    pid_t pid = fork_flushed();
    if (pid == 0)
        child_io(&f->io);
    f->status = pid < 0 ? -4 : feed_child_io(pid, &f->io);
    return NULL;
}

static int fork_from_os_thread(void *arg)
{
    struct os_fork f = {.status = -5};
    WT_REQUIRE_EQ(io_pipes_make(&f.io), 0);
    pthread_t th;
    WT_REQUIRE_EQ(pthread_create(&th, NULL, os_forker, &f), 0);
    WT_CHECK_EQ(pthread_join(th, NULL), 0);
    WT_CHECK_EQ(f.status, 0);
    check_poller_works(f.io.data);
    io_pipes_close(&f.io);
    return 0;
}
RUN_TEST(fork_from_os_thread, fork_from_os_thread, NULL,
         .procs = 2, .timeout = 60)

/* ===================================== exec, system, popen still work */

static int exec_system_popen(void *arg)
{
    int st = system("exit 3");
    WT_CHECK(WIFEXITED(st));
    WT_CHECK_EQ(WEXITSTATUS(st), 3);
    FILE *f = popen("echo weft", "r");
    WT_REQUIRE(f != NULL);
    char line[16] = {0};
    WT_CHECK(fgets(line, sizeof line, f) != NULL);
    WT_CHECK(!strcmp(line, "weft\n"));
    WT_CHECK_EQ(pclose(f), 0);
    pid_t pid = fork_flushed();
    WT_REQUIRE(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exit 5", (char *)NULL);
        _exit(CHILD_FAILED);
    }
    WT_CHECK_EQ(reap(pid, CHILD_MS), 5);
    return 0;
}
RUN_TEST(exec_system_popen_work, exec_system_popen, NULL,
         .procs = 2, .timeout = 60)

/* ============================ forks while other carriers are busy */

#define STRESS_FORKS (WT_SANITIZED ? 8 : 30)

struct stress {
    atomic_int stop;
    atomic_long pongs;
};

struct pair {
    struct stress *s;
    weft_chan *ping, *pong;
};

static int pinger(void *arg)
{
    struct pair *pr = arg;
    int v = 0;
    while (!atomic_load(&pr->s->stop)) {
        if (weft_chan_send(pr->ping, &v) || weft_chan_recv(pr->pong, &v))
            break;
        atomic_fetch_add(&pr->s->pongs, 1);
    }
    weft_chan_close(pr->ping);
    return 0;
}

/* Answers until ping closes, now and then sleeping (timers in play). */
static int ponger(void *arg)
{
    struct pair *pr = arg;
    int v;
    for (long i = 0; weft_chan_recv(pr->ping, &v) == 0; i++) {
        if (weft_chan_send(pr->pong, &v))
            break;
        if (i % 8 == 0)
            weft_sleep(WT_US(50));
    }
    return 0;
}

/* Forks again and again, each child reading its byte and sleeping. */
static int forker(void *arg)
{
    int p[2];
    WT_REQUIRE_EQ(armed_pipe(p), 0);
    for (int i = 0; i < STRESS_FORKS; i++) {
        WT_REQUIRE_EQ(write(p[1], "b", 1), 1);
        pid_t pid = fork_flushed();
        WT_REQUIRE(pid >= 0);
        if (pid == 0) {
            char b;
            CHILD_REQUIRE(read(p[0], &b, 1) == 1 && b == 'b');
            CHILD_REQUIRE(weft_sleep(WT_MS(1)) == 0);
            CHILD_REQUIRE(weft_go(never_runs, NULL) == NULL);
            _exit(7);
        }
        WT_CHECK_EQ(reap(pid, CHILD_MS), 7);
    }
    check_poller_works(p);
    close(p[0]);
    close(p[1]);
    return 0;
}

static void *os_stress_forker(void *arg)
{
    for (int i = 0; i < STRESS_FORKS; i++) {
        pid_t pid = fork_flushed();
        if (pid == 0) {
            CHILD_REQUIRE(weft_sleep(WT_MS(1)) == 0);
            _exit(8);
        }
        WT_CHECK_EQ(reap(pid, CHILD_MS), 8);
    }
    return NULL;
}

static int fork_stress(void *arg)
{
    struct stress s = {0};
    struct pair pr[2];
    weft_thread *busy[4];
    for (int i = 0; i < 2; i++) {
        pr[i].s = &s;
        pr[i].ping = weft_chan_make(sizeof(int), 0);
        pr[i].pong = weft_chan_make(sizeof(int), 0);
        WT_REQUIRE(pr[i].ping && pr[i].pong);
        busy[2 * i] = wt_go(pinger, &pr[i]);
        busy[2 * i + 1] = wt_go(ponger, &pr[i]);
    }
    pthread_t th;
    WT_REQUIRE_EQ(pthread_create(&th, NULL, os_stress_forker, NULL), 0);
    weft_thread *f[2] = {wt_go(forker, NULL), wt_go(forker, NULL)};
    wt_join(f[0]);
    wt_join(f[1]);
    WT_CHECK_EQ(pthread_join(th, NULL), 0);
    long before = atomic_load(&s.pongs);
    weft_sleep(WT_MS(20));
    WT_CHECK(atomic_load(&s.pongs) > before); /* the runtime runs on */
    atomic_store(&s.stop, 1);
    for (int i = 0; i < 4; i++)
        wt_join(busy[i]);
    for (int i = 0; i < 2; i++) {
        weft_chan_free(pr[i].ping);
        weft_chan_free(pr[i].pong);
    }
    return 0;
}
RUN_TEST(forks_while_carriers_busy, fork_stress, NULL,
         .procs = 2, .timeout = 120)
