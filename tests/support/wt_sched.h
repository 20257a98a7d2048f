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
 * carrier that resumed it waited for a CPU since the mark: that part of
 * the lateness is the kernel's, the rest is weft's. Bounds stay as tight
 * as on an idle machine, applied to weft's part only.
 *
 *   wt_sched_mark(m)        every thread's run delay, now
 *   wt_sched_waited(m)      the calling thread's run delay since mark m
 *                           (all of it if the thread is younger than m)
 *   wt_sched_waited_by(m, tid)  the same for thread tid of the process
 *   wt_sched_most_waited(m) the largest run delay of any thread since m:
 *                           for work spread over several carriers
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
};

/* run_delay of thread tid of this process in ns; 0 if unknown. */
static inline int64_t wt_sched_delay(int tid)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
    syscall(SYS_close, fd);
    unsigned long long on_cpu, waited;
    buf[n > 0 ? n : 0] = '\0';
    if (sscanf(buf, "%llu %llu", &on_cpu, &waited) != 2)
        return 0;
    return (int64_t)waited;
}

/* Records the run delay of each thread of the process into *m. */
static inline void wt_sched_mark(struct wt_sched_mark *m)
{
    m->n = 0;
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

/* How long thread tid waited for a CPU since mark m, in ns. */
static inline int64_t wt_sched_waited_by(const struct wt_sched_mark *m,
                                         int tid)
{
    return wt_sched_since(m, tid, wt_sched_delay(tid));
}

/* How long the calling thread waited for a CPU since mark m, in ns. */
static inline int64_t wt_sched_waited(const struct wt_sched_mark *m)
{
    return wt_sched_waited_by(m, (int)syscall(SYS_gettid));
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

#endif /* WT_SCHED_H */
