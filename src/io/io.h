/*
 * io.h — the I/O layer's internal interfaces: fd records (fd.c), the
 * poller and its two backends (poller.c, epoll.c, uring.c), and the libc
 * bindings the hooks and the I/O calls pass through to (libc.c).
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

typedef struct weft__port weft__port;
typedef struct weft__ring_op weft__ring_op;

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
    weft__spinlock lock;
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

/* ---------------------------------------------------------------- poller */

/* Where events are fetched: the one epoll instance, or one io_uring per
 * carrier (uring.c says why). Backends embed this header first. */
struct weft__port {
    _Atomic bool owner;      /* someone fetches from it (poller.c) */
    uint32_t id;
    _Atomic uint32_t fetches; /* bumped by each taker of owner */
    uint32_t swept;           /* the monitor's: fetches at its last sweep */
};

typedef struct weft__poller_ops {
    const char *name;
    int  (*init)(uint32_t max_carriers); /* 0 / errno: backend unusable */
    void (*fini)(void);
    /* A port for the calling carrier to fetch from and submit to (kept
     * in its record: carrier.io_port); NULL if none can be had. */
    weft__port *(*port_new)(void);
    weft__port *(*port_at)(uint32_t i);  /* i-th port; NULL past the end */
    bool per_carrier;                     /* every idle carrier fetches */
    int  (*arm)(weft__port *pt, int fd, uint32_t seq); /* watch: 0/errno */
    void (*disarm)(weft__port *pt, int fd, uint32_t seq);
    /* Fetches events, blocking until one, a kick, or until (weft_now
     * clock; 0: do not block, -1: no limit). Returns how many it holds. */
    int  (*fetch)(weft__port *pt, int64_t until);
    void (*dispatch)(weft__port *pt);    /* delivers what fetch holds */
    void (*kick)(weft__port *pt);        /* ends a blocked fetch */
    /* An operation through the ring (NULL: the backend has none): parks
     * the calling virtual thread until done; returns what the system call
     * would, with -errno on failure. defer: leave it in the submission
     * queue for the port's next fetch, which submits every queued
     * operation in one system call (only for operations that cannot
     * block: they complete during that submission). *queued: false when
     * no submission entry could be had (nothing was done). */
    long (*ring_op)(weft__port *pt, const weft__ring_op *op, bool defer,
                    bool *queued);
    /* Whether transfers may be deferred (NULL: never). */
    bool (*batches)(void);
    /* Whether deferred operations wait in pt's submission queue; and
     * submitting them now. */
    bool (*deferred)(weft__port *pt);
    void (*submit_deferred)(weft__port *pt);
    /* Totals over the ports: operations deferred, and the system calls
     * that submitted them. */
    void (*batch_counts)(unsigned long long *ops,
                         unsigned long long *submits);
    /* In the child of a fork (fork.c): closes the child's copies of the
     * backend's fds and unmaps its rings, without a system call on the
     * kernel objects, which are the parent's. No lock: the child has one
     * thread, and a lock another thread held at the fork stays held. */
    void (*forked)(void);
} weft__poller_ops;

extern const weft__poller_ops weft__epoll_ops;
extern const weft__poller_ops weft__uring_ops;

/* Both backends' kick: a write to an eventfd the port watches. EAGAIN
 * means the counter is full, and a kick is pending anyway. */
void weft__kick_eventfd(int fd);

/* An operation the io_uring backend performs for a virtual thread: file
 * I/O, and the transfers on non-blocking sockets and pipes that it
 * batches (weft__io_transfer). */
enum {
    WEFT__ROP_NONE,    /* a call with no ring twin */
    WEFT__ROP_READ,    /* read(2), or pread(2) when off >= 0 */
    WEFT__ROP_WRITE,   /* write(2), or pwrite(2) when off >= 0 */
    WEFT__ROP_FSYNC,
    WEFT__ROP_READV,
    WEFT__ROP_WRITEV,
    WEFT__ROP_RECV,    /* recv(2) with flags; the ring adds MSG_DONTWAIT */
    WEFT__ROP_SEND,    /* send(2) with flags; the ring adds MSG_DONTWAIT */
};

struct weft__ring_op {
    int kind;          /* WEFT__ROP_* */
    int fd;
    void *buf;
    size_t n;
    off_t off;         /* -1: the file's position (streams ignore it) */
    const struct iovec *iov;
    int iovcnt;
    int flags;
};

/* poller.c: the runtime's side. */
int  weft__io_init(unsigned backend);   /* weft_config.io; 0 / errno */
void weft__io_fini(void);
void weft__io_forked(void);             /* a forked child drops it */
bool weft__io_on(void);                 /* a backend runs */
int  weft__io_arm(int fd, uint32_t seq, weft__port **port);
void weft__io_disarm(weft__port *port, int fd, uint32_t seq);
/* A file operation through the calling carrier's ring. *done: false when
 * the backend has no ring (the caller does it another way). */
long weft__io_file_op(const weft__ring_op *op, bool *done);
/* A transfer on a non-blocking socket or pipe (op: not FSYNC), made as one
 * attempt of the system call: its result, or -EAGAIN. Under io_uring, when
 * the calling thread's P has other threads to run (or other transfers are
 * queued), it joins the carrier's batch: one system call submits them all
 * when the P runs dry or the carrier next polls. *done: false when it did
 * not (the caller makes the system call itself). */
long weft__io_transfer(const weft__ring_op *op, bool *done);
/* Submits every port's deferred transfers: called before an fd is
 * closed, so that a transfer a thread made before the close is not done
 * on the next file to get its number. */
void weft__io_submit_deferred(void);

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

/* caller.c: whether code at ra is neither the program's nor libweft's. */
bool weft__caller_foreign(const void *ra);

#endif
