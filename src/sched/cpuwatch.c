/* SPDX-License-Identifier: MIT */
/*
 * cpuwatch.c — what the kernel says a carrier's OS thread is doing: its
 * CPU time, and whether it runs (or waits for a CPU) or sleeps. The
 * monitor asks before it judges a carrier stuck (monitor.c: held_long),
 * to tell a thread that holds its carrier from a carrier the kernel
 * preempted.
 *
 * Invariants. Only the monitor calls these, so the per-carrier state
 * (stat_fd, stat_tid) needs no lock. A carrier's /proc stat file is
 * opened once per OS thread (stat_tid says which) and read with pread;
 * a record reused for a new OS thread reopens it. Nothing here is on a
 * switch path: the monitor asks only about a P whose stamp has stood
 * still across a tick.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/real.h"
#include "sched/poll.h"
#include "sched/carrier.h"
#include "sched/monitor.h"
#include "sched/sched.h"

/* Runs on: the monitor. m's OS thread's CPU time in ns, -1 if unknown.
 * Exact to the nanosecond, even while it runs (unlike schedstat's first
 * field, which a running thread updates only at the scheduler tick). The
 * monitor is the only thread that joins carriers, so m->os_thread is
 * still the thread it names. */
int64_t weft__carrier_cpu_ns(weft__carrier *m)
{
    clockid_t clock;
    struct timespec ts;
    if (!atomic_load_explicit(&m->tid, memory_order_acquire) ||
        pthread_getcpuclockid(m->os_thread, &clock) != 0 ||
        clock_gettime(clock, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int stat_fd(weft__carrier *m)
{
    int tid = atomic_load_explicit(&m->tid, memory_order_acquire);
    if (!tid)
        return -1;
    if (m->stat_tid == tid)
        return m->stat_fd;
    weft__carrier_stat_close(m);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    m->stat_fd = fd;
    m->stat_tid = tid;
    return fd;
}

/* Runs on: the monitor. m's OS thread's state as /proc shows it: 'R'
 * (running, or runnable and waiting for a CPU), 'S' or 'D' (blocked in
 * the kernel), ...; 0 if unknown. */
char weft__carrier_run_state(weft__carrier *m)
{
    int fd = stat_fd(m);
    char buf[128]; /* "tid (comm) S ...": comm is at most 16 bytes */
    ssize_t n = fd < 0 ? -1 : weft__real(pread)(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) {
        weft__carrier_stat_close(m); /* reopened next time */
        return 0;
    }
    buf[n] = 0;
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' ? paren[2] : 0;
}

/* Runs on: the monitor, or weft_run's thread once the carriers ended. */
void weft__carrier_stat_close(weft__carrier *m)
{
    if (m->stat_tid)
        weft__real(close)(m->stat_fd);
    m->stat_tid = 0;
    m->stat_fd = -1;
}
