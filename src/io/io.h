/* SPDX-License-Identifier: MIT */
/*
 * io.h — the I/O layer's internal interfaces: fd records (fd.c), the
 * offload of file operations (fileio.c), and who called a hook
 * (caller.c). The poller and its backends are in poller.h.
 *
 * Readiness model (both backends). Every fd a virtual thread waits on is
 * watched edge-triggered, for input and output at once, from its first
 * wait until it is closed: one registration per fd, not one per wait. An
 * edge that arrives while no thread waits for it is latched in the fd's
 * record (ready), and the next wait consumes it instead of parking; so an
 * edge is never lost between a call's EAGAIN and its wait, at the price of
 * an occasional retry that finds EAGAIN again.
 *
 * Events carry the fd number and the record's sequence number, which is
 * bumped when the fd is closed: an event of an fd's earlier life is
 * dropped.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>

#include "base/real.h"
#include "sched/poll.h"
#include "sched/sched.h"
#include "io/poller.h"

/* ------------------------------------------------------------ fd records */

enum {
    WEFT__FD_KNOWN = 1u,    /* classified (the rest is valid) */
    WEFT__FD_SOCKET = 2u,
    WEFT__FD_FILE = 4u,     /* regular file or block device: not pollable */
    WEFT__FD_STDIO = 8u,    /* 0..2, or a pipe/tty weft must not touch:
                               blocking calls run marked as blocking */
    WEFT__FD_NB_OURS = 16u, /* weft set O_NONBLOCK; the program did not */
    WEFT__FD_NB_USER = 32u, /* the program wants O_NONBLOCK semantics */
    WEFT__FD_STREAM = 64u,  /* a byte stream (TCP, unix stream, pipe): a
                               short read means it was drained */
};

typedef struct weft__fd {
    int fd;                   /* first: what dumps read (sched/poll.h) */
    weft__spinlock lock;      /* lock order 5: FD (sched/sched.h) */
    _Atomic uint32_t flags;   /* WEFT__FD_*; written under lock */
    _Atomic uint32_t seq;     /* bumped (under lock) when the fd closes */
    _Atomic uint32_t armed;   /* seq + 1 of the poller registration, or 0 */
    weft__port *armed_port;   /* ... on this port; under lock */
    uint32_t ready;           /* latched POLLIN / POLLOUT edges; lock */
    /* A read found it drained (a short read of a stream) and no input
     * edge came since: the next read waits for one first instead of
     * asking the kernel for EAGAIN. Set and cleared under lock. */
    _Atomic bool drained;
    /* The peer hung up or an error is pending (this life): a short read
     * may have left an end of file or an error to report, which no edge
     * will announce again, so reads never wait first. Under lock. */
    _Atomic bool hung_up;
    weft__list waiters;       /* weft__waiter, data: the events wanted */
    _Atomic int64_t rcvtimeo_ns; /* SO_RCVTIMEO / SO_SNDTIMEO, 0: none; */
    _Atomic int64_t sndtimeo_ns; /* written under lock */
} weft__fd;
_Static_assert(offsetof(weft__fd, fd) == 0, "an fd wait's object starts "
               "with the fd number (sched/poll.h)");

/* Runs on: any thread. The record of fd, classified on first use (NULL,
 * errno EBADF: not open or out of the table's range). */
weft__fd *weft__fd_get(int fd);
/* The record of fd if one was ever made, unclassified or not; else NULL. */
weft__fd *weft__fd_peek(int fd);
/* The fd is closed (or its number about to be reused): wakes its waiters
 * with EBADF, drops its poller registration and classification. */
void weft__fd_forget(int fd);
/* to is a new duplicate of from (dup, dup2, F_DUPFD): it shares from's
 * file, flags included. */
void weft__fd_copy(int from, int to);
/* Parks the calling virtual thread until f is ready for events (POLLIN,
 * POLLOUT), deadline (< 0: none) passes or the thread is cancelled.
 * 0 / WEFT__EXPIRED / ECANCELED / ETIMEDOUT / EBADF (closed meanwhile) /
 * ENOMEM, EPERM (the poller cannot watch it). */
int weft__fd_wait(weft__fd *f, short events, int64_t deadline);
/* A read of a stream just returned less than asked for: unless an input
 * edge is latched already, the next read may wait before trying. */
void weft__fd_note_drained(weft__fd *f);
/* From the poller: fd's life seq has events (POLL* bits). */
void weft__fd_event(int fd, uint32_t seq, uint32_t events);
weft__fd *weft__fd_adopt_socket(int fd, bool user_nonblock,
                                const weft__fd *parent);
void weft__fd_disarmed(int fd, uint32_t seq);
/* Waits on several records at once, for weft_poll: parks until one of
 * them has an event it asks for. Returns as weft__fd_wait. */
int weft__fd_wait_many(weft__fd **fs, const short *events, unsigned n,
                       int64_t deadline);
/* In a forked child (fork.c): every record unlocked, with no waiter and
 * no poller registration (both were the parent's). */
void weft__fd_forked(void);
/* Sets or clears the program's O_NONBLOCK wish for fd. */
void weft__fd_set_user_nonblock(int fd, bool on);
void weft__fd_set_timeout(int fd, int optname, int64_t ns);

/* fileio.c: a file operation on the offload pool, for the epoll backend.
 * Returns what the syscall would (-1 and errno). */
ssize_t weft__file_offload(int op, int fd, void *buf, size_t n, off_t off);

/* The calling virtual thread if it may park in I/O, else NULL: on OS
 * threads, and on virtual threads pinned by a pthread lock they hold
 * (foreign/locks.c), I/O blocks the OS thread as libc's would. */
static inline weft_thread *weft__io_g(void)
{
    weft_thread *g = weft__g();
    return g && likely(!g->plocks) ? g : NULL;
}

/* rw.c: weft_read for g, the calling thread as weft__g gave it (the
 * read hook has it already, and passes it down). */
ssize_t weft__read(weft_thread *g, int fd, void *buf, size_t n);

/* caller.c: the executable segments of the program and of libweft, read
 * once when libweft loads. */
struct weft__code_range {
    uintptr_t lo, hi;
};
extern struct weft__code_range weft__own_code[];
extern unsigned weft__own_code_n;

/* Runs on: any thread. Whether code at ra is neither the program's nor
 * libweft's: a few comparisons, inline on every hooked call. Before the
 * segments are read every caller counts as the program's. */
static inline bool weft__caller_foreign(const void *ra)
{
    uintptr_t a = (uintptr_t)ra;
    unsigned n = weft__own_code_n;
    if (!n)
        return false;
    for (unsigned i = 0; i < n; i++)
        if (a - weft__own_code[i].lo <
            weft__own_code[i].hi - weft__own_code[i].lo)
            return false;
    return true;
}

#endif
