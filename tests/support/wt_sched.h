/* SPDX-License-Identifier: MIT */
/*
 * wt_sched.h — the kernel's scheduling delay, as the yardstick of the
 * latency tests.
 *
 * On a loaded machine a thread that is due to run waits on the kernel's
 * run queue until a CPU is free: a timer weft fires on time, on a carrier
 * that waits for a CPU meanwhile, still looks late. The kernel counts that
 * wait for each thread (/proc/self/task/<tid>/schedstat, second field,
 * run_delay: ns spent runnable but not running; it includes a preempted
 * thread's wait for its next slice). A latency test takes a mark of all
 * its threads' delays before a wait and, once resumed, asks how long the
 * carrier that resumed it, and the threads that woke one another to get
 * there, waited for a CPU since the mark: that part of the lateness is
 * the kernel's, the rest is weft's. Bounds stay as tight
 * as on an idle machine, applied to weft's part only.
 *
 *   wt_sched_mark(m)        every thread's run delay, now
 *   wt_sched_waited(m)      the calling thread's run delay since mark m
 *                           (all of it if the thread is younger than m)
 *   wt_sched_most_waited(m) the largest run delay of any thread since m:
 *                           for work spread over several carriers
 *   wt_sched_chain_waited(m)  the caller's run delay since m plus that of
 *                           each thread that slept at m: the wake-up chain
 *                           that resumed it (a timer waiter that fired the
 *                           timer, the monitor, a spare carrier); set
 *                           m.skip to leave out a thread of the test's own
 *
 * Invariants: only raw system calls (a hooked open or read could park the
 * virtual thread and resume it on another carrier between the two reads);
 * where the kernel keeps no schedstat, every delay reads 0 and the tests
 * hold their bounds against the whole lateness, as before.
 * Runs on: any thread, virtual or not.
 */
#ifndef WT_SCHED_H
#define WT_SCHED_H

/* Self-contained (no wt.h): the helper programs in tests/progs use it. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WT_SCHED_TASKS 128

/* One record of getdents64. */
struct wt_sched_dirent {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

struct wt_sched_mark {
    int n;
    int tid[WT_SCHED_TASKS];
    int64_t delay[WT_SCHED_TASKS];
    char state[WT_SCHED_TASKS]; /* /proc's: 'R' running or runnable */
    int skip; /* a thread of the test's own, not of any wake-up chain */
};

/* Reads /proc/self/task/<tid>/<what> into buf (NUL-terminated); 0 or -1. */
static inline int wt_sched_read(int tid, const char *what, char *buf,
                                size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/%s", tid, what);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long n = syscall(SYS_read, fd, buf, size - 1);
    syscall(SYS_close, fd);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0 ? 0 : -1;
}

/* Thread tid's scheduling state ('R', 'S', ...); '?' if unknown. */
static inline char wt_sched_state(int tid)
{
    char buf[512];
    if (wt_sched_read(tid, "stat", buf, sizeof buf))
        return '?';
    char *end = strrchr(buf, ')'); /* after the command name */
    return end && end[1] == ' ' ? end[2] : '?';
}

/* run_delay of thread tid of this process in ns; 0 if unknown. */
static inline int64_t wt_sched_delay(int tid)
{
    char buf[128];
    unsigned long long on_cpu, waited;
    if (wt_sched_read(tid, "schedstat", buf, sizeof buf) ||
        sscanf(buf, "%llu %llu", &on_cpu, &waited) != 2)
        return 0;
    return (int64_t)waited;
}

/* Records the run delay of each thread of the process into *m. */
static inline void wt_sched_mark(struct wt_sched_mark *m)
{
    m->n = 0;
    m->skip = 0;
    int dir = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/task",
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return;
    char buf[4096];
    long len;
    while ((len = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (long off = 0; off < len;) {
            struct wt_sched_dirent *d = (void *)(buf + off);
            off += d->reclen;
            int tid = atoi(d->name);
            if (tid <= 0 || m->n == WT_SCHED_TASKS)
                continue;
            m->tid[m->n] = tid;
            m->state[m->n] = wt_sched_state(tid);
            m->delay[m->n++] = wt_sched_delay(tid);
        }
    }
    syscall(SYS_close, dir);
}

/* How long thread tid, whose run delay is now `now`, waited since m. */
static inline int64_t wt_sched_since(const struct wt_sched_mark *m, int tid,
                                     int64_t now)
{
    for (int i = 0; i < m->n; i++)
        if (m->tid[i] == tid)
            return now - m->delay[i];
    return now;
}

/* How long the calling thread waited for a CPU since mark m, in ns. */
static inline int64_t wt_sched_waited(const struct wt_sched_mark *m)
{
    int self = (int)syscall(SYS_gettid);
    return wt_sched_since(m, self, wt_sched_delay(self));
}

/* The longest any thread of the process waited for a CPU since m, in ns. */
static inline int64_t wt_sched_most_waited(const struct wt_sched_mark *m)
{
    struct wt_sched_mark now;
    wt_sched_mark(&now);
    int64_t most = 0;
    for (int i = 0; i < now.n; i++) {
        int64_t w = wt_sched_since(m, now.tid[i], now.delay[i]);
        if (w > most)
            most = w;
    }
    return most;
}

/* The calling thread's wait for a CPU since m, plus that of every other
 * thread that was asleep at m (or was born since): the chain of wake-ups
 * that resumed the caller, one after the other. Threads that were running
 * or runnable at m (a spinner) are left out: they were not waiting for an
 * event, and their waits would excuse any lateness. */
static inline int64_t wt_sched_chain_waited(const struct wt_sched_mark *m)
{
    int self = (int)syscall(SYS_gettid);
    struct wt_sched_mark now;
    wt_sched_mark(&now);
    int64_t sum = 0;
    for (int i = 0; i < now.n; i++) {
        int k = 0;
        while (k < m->n && m->tid[k] != now.tid[i])
            k++;
        if (now.tid[i] == m->skip)
            continue;
        if (now.tid[i] == self || k == m->n || m->state[k] != 'R')
            sum += wt_sched_since(m, now.tid[i], now.delay[i]);
    }
    return sum;
}

#endif /* WT_SCHED_H */
