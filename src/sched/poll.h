/* SPDX-License-Identifier: MIT */
/*
 * poll.h — what the scheduler asks of the I/O poller.
 *
 * sched/ sits below io/ and never calls it by name: io/poller.c fills
 * weft__poll when a run starts (weft__io_init, before any carrier runs)
 * and the scheduler calls through it, the way an event loop's core calls
 * its backend. A port is one carrier's (or the shared) kernel event queue
 * — an io_uring or an epoll instance — opaque here.
 *
 * Invariants. weft__poll is written only while no carrier runs; every
 * member is set while one does. weft__fd_waiters counts the virtual
 * threads parked on an fd (io/ keeps it): with none, an idle carrier need
 * not look at any port, and a run with every thread blocked is a
 * deadlock only if it is 0.
 */
#ifndef WEFT_SCHED_POLL_H
#define WEFT_SCHED_POLL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct weft__carrier weft__carrier;
typedef struct weft__port weft__port;

struct weft__poll_ops {
    /* Whether idle carrier m (the timer waiter or not) waits in its port
     * rather than on its futex. */
    bool (*idles_in_poller)(weft__carrier *m, bool timer_waiter);
    /* Idle carrier m blocks in its port until events, a kick or until,
     * unless *wake_word is set already. Returns the port if it holds
     * events, for dispatch once m has a P (without one, the threads they
     * wake go to the global queue). */
    weft__port *(*wait)(weft__carrier *m, int64_t until,
                        _Atomic uint32_t *wake_word);
    void (*dispatch)(weft__port *pt);
    /* Non-blocking: delivers the ready events of m's port (fetch), or of
     * another carrier's port to m's P (fetch_others); true if it woke
     * any thread. */
    bool (*fetch)(weft__carrier *m);
    bool (*fetch_others)(weft__carrier *m);
    /* The monitor's tick: delivers the events of every port that no one
     * has fetched from since the last sweep. */
    void (*sweep)(void);
    /* Ends m's blocked wait in its port. */
    void (*kick)(weft__carrier *m);
    /* For weft_stats: the backend's name, and the transfers it batched
     * with the system calls that submitted them. */
    const char *(*name)(void);
    void (*batch_counts)(unsigned long long *ops,
                         unsigned long long *submits);
};

extern struct weft__poll_ops weft__poll;
extern _Atomic uint32_t weft__fd_waiters;

/* The object of an fd wait (WEFT__WAIT_FD_*) is io/'s record of the fd,
 * which starts with the fd number: what dumps and traces show. */
static inline int weft__fd_of_wait(const void *obj)
{
    return *(const int *)obj;
}

static inline uint32_t weft__fd_waiting(void)
{
    return atomic_load_explicit(&weft__fd_waiters, memory_order_relaxed);
}

#endif
