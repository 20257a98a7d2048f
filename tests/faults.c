/* SPDX-License-Identifier: MIT */
/*
 * faults.c — every call weft makes for a resource (memory, mappings, OS
 * threads, rings, fds) is failed on purpose, one at a time, and the error
 * paths are checked: the failing API call returns its documented error,
 * nothing crashes, hangs or leaks, and the runtime works afterwards.
 *
 * Linked with weft_faults, libweft with its fault sites live
 * (src/base/fault.h). For each kind of resource a workload is first run
 * to count the calls it makes of that kind; then, for each i, a fresh
 * child process fails the i-th call (and, in the *_from tests, every call
 * from the i-th on), runs the workload and checks that:
 *   - weft_run returned 0 (the runtime did without: an alternate signal
 *     stack, a spare carrier, the io_uring probe) or the kind's error as
 *     weft.h documents it (ENOMEM, EAGAIN, EMFILE) — the workload returns
 *     the first error an API call reported, and WT_EFAIL for wrong data;
 *   - it finished within the case's time-out (no hang);
 *   - a second run, with nothing failing, returns 0 (nothing corrupted);
 *   - under AddressSanitizer, nothing leaked (LeakSanitizer in the child).
 * A failed case prints its replay: WT_FAULT=<kind>:<i>[+] runs only that
 * case ('+': from i on). The workload: spawn and join, a channel with a
 * select and its time-out, sleeps, a scope deadline, context locals, I/O
 * on a pipe, a socketpair and TCP on loopback (accept, connect), and
 * weft_offload; registered once per I/O backend.
 *
 * Beside the sweeps, one test per error path that a sweep reaches only
 * now and then: a sleep whose timer cannot be armed, a read on an fd whose
 * record cannot be allocated, and (suite faults_spawn, registered on its
 * own as weft.faults.spawn_stack) a spawn when no stack can be had.
 */
#include "wt_io.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "base/fault.h"

#define PROCS 2
#define CASE_TIMEOUT_MS (WT_SANITIZED ? 60000 : 15000)

/* ---------------------------------------------------------- workload */

static int sleeper(void *arg)
{
    return weft_sleep(WT_MS(1));
}

/* Spawn four threads and join them: 0 or the first error. */
static int step_spawn(void)
{
    weft_thread *t[4];
    int err = 0, n = 0;
    for (; n < 4 && !err; n++)
        if (!(t[n] = weft_go(sleeper, NULL)))
            err = wt_errno();
    for (int i = 0; i < n; i++) {
        int r = 0, j = t[i] ? weft_join(t[i], &r) : 0;
        if (!err)
            err = j ? j : r;
    }
    return err;
}

static int sender(void *arg)
{
    for (int i = 0; i < 3; i++) {
        int e = weft_chan_send(arg, &i);
        if (e)
            return e == EPIPE ? 0 : e; /* the receiver gave up first */
    }
    return 0;
}

/* Three values through a channel, received by select with a deadline,
 * then a select that times out. */
static int step_chan(void)
{
    weft_chan *c = weft_chan_make(sizeof(int), 1);
    if (!c)
        return wt_errno();
    weft_thread *t = weft_go(sender, c);
    int err = t ? 0 : wt_errno();
    for (int i = 0; i < 3 && !err; i++) {
        int v = -1;
        weft_case cs = WEFT_RECV(c, &v);
        if (weft_select(&cs, 1, weft_now() + WT_MS(5000)) != 0)
            err = wt_errno();
        else if (v != i)
            err = WT_EFAIL;
    }
    int v;
    weft_case idle = WEFT_RECV(c, &v);
    if (!err) /* ENOMEM (no timer) is an error; a case chosen is wrong */
        err = weft_select(&idle, 1, weft_now() + WT_MS(1)) != -1 ? WT_EFAIL
              : wt_errno() == ETIMEDOUT                           ? 0
                                                                  : wt_errno();
    weft_chan_close(c);
    int r = 0, j = t ? weft_join(t, &r) : 0;
    if (!err)
        err = j ? j : r;
    weft_chan_free(c);
    return err;
}

static int long_sleeper(void *arg)
{
    return weft_sleep(WT_MS(10000));
}

/* A scope whose deadline passes while its child sleeps: ETIMEDOUT is the
 * expected outcome, so it counts as success. */
static int step_scope(void)
{
    weft_scope *s = weft_scope_open();
    if (!s)
        return wt_errno();
    weft_scope_deadline(s, weft_now() + WT_MS(2));
    int err = weft_go(long_sleeper, NULL) ? 0 : wt_errno();
    int r = weft_scope_close(s);
    if (err)
        return err;
    return r == ETIMEDOUT ? 0 : r ? r : WT_EFAIL;
}

static weft_local *key; /* made once per process: keys live until exit */

static int step_local(void)
{
    if (!key && !(key = weft_local_new(NULL)))
        return wt_errno();
    int v = 7, err = weft_local_set(key, &v);
    if (!err && weft_local_get(key) != &v)
        err = WT_EFAIL;
    return err;
}

/* Writes "ping" after a millisecond (so that the reader parks), then
 * closes its end: a reader whose peer failed sees the end of the stream. */
static int pinger(void *arg)
{
    int fd = *(int *)arg, err = weft_sleep(WT_MS(1));
    if (!err && weft_write(fd, "ping", 4) != 4)
        err = wt_errno();
    weft_close(fd);
    return err;
}

/* fds[0] reads what fds[1] writes; both are closed on return. */
static int step_pair(int fds[2])
{
    weft_thread *t = weft_go(pinger, &fds[1]);
    int err = t ? 0 : wt_errno();
    if (!t)
        weft_close(fds[1]);
    char b[4];
    ssize_t n = err ? 0 : weft_read(fds[0], b, sizeof b);
    if (n < 0)
        err = wt_errno();
    int r = 0, j = t ? weft_join(t, &r) : 0;
    if (!err)
        err = j ? j : r;
    if (!err && (n != 4 || memcmp(b, "ping", 4)))
        err = WT_EFAIL;
    weft_close(fds[0]);
    return err;
}

static int step_io(void)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC))
        return wt_errno();
    int err = step_pair(fds);
    if (!err && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds))
        return wt_errno();
    if (!err)
        err = step_pair(fds);
    if (!err && (err = wt_tcp_pair(&fds[0], &fds[1])) == 0)
        err = step_pair(fds);
    return err;
}

static int offloaded(void *arg)
{
    return *(int *)arg == 42 ? 0 : WT_EFAIL;
}

static int step_offload(void)
{
    int v = 42;
    return weft_offload(offloaded, &v);
}

/* Runs step in a scope of its own: a child's failure cancels the scope
 * (and so the step's own calls, with ECANCELED), and the scope's close
 * reports the failure that caused it. */
static int in_scope(int (*step)(void))
{
    weft_scope *s = weft_scope_open();
    if (!s)
        return wt_errno();
    int err = step(), closed = weft_scope_close(s);
    return (!err || err == ECANCELED) && closed ? closed : err;
}

static int workload(void *arg)
{
    int (*const steps[])(void) = {step_spawn, step_chan, step_scope,
                                  step_local, step_io, step_offload};
    int err = 0;
    for (size_t i = 0; i < sizeof steps / sizeof *steps && !err; i++)
        err = in_scope(steps[i]);
    return err;
}

static int run_workload(void)
{
    weft_config cfg = {.procs = PROCS};
    return weft_run(workload, NULL, &cfg);
}

/* ------------------------------------------------------------- kinds */

struct kind {
    const char *name;
    weft__fault_kind kind;
    int errs[2]; /* what weft.h documents for this kind's failure */
};

static const struct kind kinds[] = {
    {"alloc", WEFT__FAULT_ALLOC, {ENOMEM}},
    {"mmap", WEFT__FAULT_MMAP, {ENOMEM}},
    {"thread", WEFT__FAULT_THREAD, {EAGAIN}},
    {"ring", WEFT__FAULT_RING, {ENOMEM}},
    /* A carrier's ring without its eventfd is no ring: ENOMEM. */
    {"fd", WEFT__FAULT_FD, {EMFILE, ENOMEM}},
};

static const struct kind *kind_named(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strlen(kinds[i].name) == len && !strncmp(kinds[i].name, name, len))
            return &kinds[i];
    return NULL;
}

static bool documented(const struct kind *k, int r)
{
    return r == 0 || r == k->errs[0] || (k->errs[1] && r == k->errs[1]);
}

/* ------------------------------------------------------ one case */

enum { CASE_OK, CASE_WRONG_ERROR, CASE_BROKEN_AFTER, CASE_LEAK };

/* What a case's child tells: the calls it counted, weft_run's result. */
struct report {
    unsigned calls;
    int result;
};

/* Runs in the forked child. n == 0: no fault (a counting run). */
static int case_child(const struct kind *k, unsigned n, bool from, int out)
{
    signal(SIGPIPE, SIG_IGN);
    weft__fault_arm(k->kind, n, from);
    int r = run_workload();
    unsigned failed = weft__fault_failed(k->kind);
    struct report rep = {weft__fault_calls(k->kind), r};
    weft__fault_arm(k->kind, 0, false);
    if (write(out, &rep, sizeof rep) != sizeof rep)
        return CASE_BROKEN_AFTER;
    char b[64];
    if (n ? !documented(k, r) : r != 0) {
        dprintf(2, "fault %s:%u%s (%u failed): weft_run returned %s\n",
                k->name, n, from ? "+" : "", failed, wt_errname(r, b, 64));
        return CASE_WRONG_ERROR;
    }
    if (n && (r = run_workload())) {
        dprintf(2, "fault %s:%u%s: the next run returned %s\n", k->name, n,
                from ? "+" : "", wt_errname(r, b, sizeof b));
        return CASE_BROKEN_AFTER;
    }
#ifdef WT_LEAK_CHECK
    if (__lsan_do_recoverable_leak_check())
        return CASE_LEAK;
#endif
    return CASE_OK;
}

/* Waits for pid at most CASE_TIMEOUT_MS; past that, has it print a dump
 * of its threads (SIGQUIT) and kills it. Returns its exit status, or -1 if
 * it was killed or died of a signal. */
static int reap(pid_t pid)
{
    int status;
    for (int ms = 0; ms < CASE_TIMEOUT_MS; ms++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        wt_block_ms(1);
    }
    kill(pid, SIGQUIT);
    wt_block_ms(1000);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Runs one case in a child process; returns its outcome (-1: crashed or
 * hung) and its report in *rep. */
static int run_case(const struct kind *k, unsigned n, bool from,
                    struct report *rep)
{
    int p[2] = {-1, -1};
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        _exit(case_child(k, n, from, p[1]));
    }
    close(p[1]);
    int rc = reap(pid);
    if (read(p[0], rep, sizeof *rep) != sizeof *rep)
        *rep = (struct report){0, -1};
    close(p[0]);
    return rc;
}

static const char *const outcome[] = {
    [CASE_OK] = "ok",
    [CASE_WRONG_ERROR] = "an undocumented error",
    [CASE_BROKEN_AFTER] = "a runtime broken afterwards",
    [CASE_LEAK] = "a leak",
};

/* Returns weft_run's result in the case (-1 if it never returned). */
static int check_case(const struct kind *k, unsigned n, bool from)
{
    struct report rep;
    int rc = run_case(k, n, from, &rep);
    cr_expect_eq(rc, CASE_OK, "fault %s:%u%s: %s; replay: WT_FAULT=%s:%u%s",
                 k->name, n, from ? "+" : "",
                 rc < 0 || rc > CASE_LEAK ? "crashed or hung" : outcome[rc],
                 k->name, n, from ? "+" : "");
    return rep.result;
}

/* WT_FAULT=<kind>:<n>[+] replays one case (it must be of this kind). */
static bool replay(const struct kind *k)
{
    const char *v = getenv("WT_FAULT"), *colon = v ? strchr(v, ':') : NULL;
    if (!colon)
        return false;
    if (kind_named(v, (size_t)(colon - v)) == k) {
        char *end;
        unsigned n = (unsigned)strtoul(colon + 1, &end, 10);
        check_case(k, n, *end == '+');
    }
    return true;
}

/* Counts the calls of kind k the workload makes, then fails each. */
static void sweep(const char *name, bool from)
{
    wt_skip_without_backend();
    const struct kind *k = kind_named(name, strlen(name));
    cr_assert(k);
    if (replay(k))
        return;
    struct report count;
    cr_assert_eq(run_case(k, 0, false, &count), CASE_OK,
                 "the workload fails with no fault injected");
    /* A few more than counted: scheduling may make one more call. */
    unsigned errors = 0, last = count.calls + 2;
    for (unsigned n = 1; n <= last; n++)
        errors += check_case(k, n, from) != 0;
    cr_log_info("%s%s: %u calls counted; of %u cases, %u made weft_run "
                "fail, the others ran on\n", name, from ? " (from n on)" : "",
                count.calls, last, errors);
}

/* ------------------------------------------------------------- tests */

#define SWEEPS(name)                                                       \
    Test(faults, name##_each, .timeout = 300) { sweep(#name, false); }     \
    Test(faults, name##_from, .timeout = 300) { sweep(#name, true); }

SWEEPS(alloc)
SWEEPS(mmap)
SWEEPS(thread)
SWEEPS(ring)
SWEEPS(fd)

/* ------------------------------------------------- spawn without stack */

static int spawn_without_stack(void *arg)
{
    weft__fault_arm(WEFT__FAULT_MMAP, 1, true); /* no mapping from now on */
    weft_thread *t = weft_go(sleeper, NULL);
    int err = t ? 0 : wt_errno();
    int r = -1;
    if (t)
        weft_join(t, &r);
    weft__fault_arm(WEFT__FAULT_MMAP, 0, false);
    WT_CHECK_MSG(!t, "weft_go returned a thread (its result: %d)", r);
    WT_CHECK_EQ(err, ENOMEM);
    return 0;
}

/* weft_go fails with ENOMEM (errno) when no stack can be had for the
 * child: the failure belongs to the spawner, not to a child that finishes
 * without running. The parent's own stack stays valid. */
Test(faults_spawn, enomem_when_no_stack, .timeout = 30)
{
    WT_RUN(spawn_without_stack, NULL, .procs = 1);
}

/* ------------------------------------------------- timer without memory */

static int sleep_without_timer_memory(void *arg)
{
    /* The first allocation from here on is the P's timer heap (empty
     * until the first timer). */
    weft__fault_arm(WEFT__FAULT_ALLOC, 1, false);
    int64_t t0 = weft_now();
    int r = weft_sleep(WT_MS(20));
    unsigned failed = weft__fault_failed(WEFT__FAULT_ALLOC);
    weft__fault_arm(WEFT__FAULT_ALLOC, 0, false);
    WT_REQUIRE_EQ(failed, 1);
    WT_CHECK_EQ(r, ENOMEM);
    WT_CHECK_EQ(weft_sleep(WT_MS(1)), 0); /* and the next sleep sleeps */
    WT_CHECK(weft_now() - t0 >= WT_MS(1));
    return 0;
}

/* A sleep whose timer cannot be armed fails with ENOMEM: it does not
 * return at once as if it had slept. */
Test(faults, sleep_without_timer_memory_fails_enomem, .timeout = 30)
{
    WT_RUN(sleep_without_timer_memory, NULL, .procs = 1);
}

static int select_without_timer_memory(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 1);
    WT_REQUIRE(c);
    int v;
    weft_case k = WEFT_RECV(c, &v);
    weft__fault_arm(WEFT__FAULT_ALLOC, 1, false); /* the P's timer heap */
    int r = weft_select(&k, 1, weft_now() + WT_MS(20));
    int e = wt_errno();
    unsigned failed = weft__fault_failed(WEFT__FAULT_ALLOC);
    weft__fault_arm(WEFT__FAULT_ALLOC, 0, false);
    WT_REQUIRE_EQ(failed, 1);
    WT_CHECK_EQ(r, -1);
    WT_CHECK_EQ(e, ENOMEM);
    /* With memory again, the same select times out. */
    WT_CHECK_EQ(weft_select(&k, 1, weft_now() + WT_MS(1)), -1);
    WT_CHECK_EQ(wt_errno(), ETIMEDOUT);
    weft_chan_free(c);
    return 0;
}

/* A select whose deadline's timer cannot be armed fails with ENOMEM, as
 * weft.h documents for every wait with a deadline: not ETIMEDOUT at once,
 * and not a wait without end. */
Test(faults, select_without_timer_memory_fails_enomem, .timeout = 30)
{
    WT_RUN(select_without_timer_memory, NULL, .procs = 1);
}

/* ---------------------------------------- an fd record without memory */

/* An fd in a block of fd records not made yet (fds 1024 and up): its
 * record needs an allocation. */
static int high_fd(int fd)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_max < 2048)
        return -1;
    if (rl.rlim_cur < 2048) {
        rl.rlim_cur = 2048;
        if (setrlimit(RLIMIT_NOFILE, &rl))
            return -1;
    }
    /* The system call itself: weft's fcntl may make the record. */
    return (int)syscall(SYS_dup3, fd, 1500, O_CLOEXEC);
}

static int read_without_fd_record(void *arg)
{
    int fds[2];
    WT_REQUIRE_EQ(pipe2(fds, O_CLOEXEC), 0);
    int hi = high_fd(fds[0]);
    WT_REQUIRE(hi >= 1024);
    weft__fault_arm(WEFT__FAULT_ALLOC, 1, true); /* no memory from here */
    char b;
    ssize_t n = weft_read(hi, &b, 1); /* nothing to read: it would wait */
    int e = wt_errno();
    unsigned failed = weft__fault_failed(WEFT__FAULT_ALLOC);
    weft__fault_arm(WEFT__FAULT_ALLOC, 0, false);
    WT_CHECK(failed >= 1);
    WT_CHECK_EQ(n, -1);
    WT_CHECK_EQ(e, ENOMEM);
    /* With memory again, the same fd works. */
    WT_CHECK_EQ(weft_write(fds[1], "x", 1), 1);
    WT_CHECK_EQ(weft_read(hi, &b, 1), 1);
    weft_close(hi);
    weft_close(fds[0]);
    weft_close(fds[1]);
    return 0;
}

/* A read on an fd weft cannot keep a record of (no memory) fails with
 * ENOMEM: made as a plain read instead, it would block its carrier until
 * data came, the other threads of the carrier with it. */
Test(faults, read_without_fd_record_fails_enomem, .timeout = 10)
{
    WT_RUN(read_without_fd_record, NULL, .procs = 1);
}
