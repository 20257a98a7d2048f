/* SPDX-License-Identifier: MIT */
/*
 * poller.h — the poller's internal interface: the backends (epoll.c,
 * uring.c) behind one table, the runtime's side (poller.c), and the calls
 * the I/O layer makes on its hot paths.
 *
 * Those calls (arming an fd, a file operation through the carrier's ring,
 * a batched transfer) only pick the calling carrier's port and forward to
 * the backend: they are static inline here, so that a read that parks
 * goes from the call (rw.c) through fd.c straight to the backend, with
 * no stop in poller.c. poller.c keeps what is not a forward: choosing
 * the backend, and who fetches events (ownership of a port).
 */
#ifndef WEFT_IO_POLLER_H
#define WEFT_IO_POLLER_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "sched/poll.h"
#include "sched/runq.h"
#include "sched/sched.h"

typedef struct weft__port weft__port;
typedef struct weft__io_req weft__io_req;

/* ---------------------------------------------------------------- poller */

/* Where events are fetched: the one epoll instance, or one io_uring per
 * carrier (uring.c says why). Backends embed this header first. */
struct weft__port {
    _Atomic bool owner;      /* someone fetches from it (poller.c) */
    uint32_t id;
    _Atomic uint32_t fetches; /* bumped by each taker of owner */
    uint32_t swept;           /* the monitor's: fetches at its last sweep */
};

/* What a backend with a submission ring adds (io_uring; epoll has
 * none): requests made through the ring, and the batching of transfers. */
typedef struct weft__backend_ring {
    /* A request through the ring: parks the calling virtual thread until
     * done; returns what the system call would, with -errno on failure.
     * defer: leave it in the submission queue for the port's next fetch,
     * which submits every queued request in one system call (only for
     * requests that cannot block: they complete during that submission).
     * *queued: false when no submission entry could be had (nothing was
     * done). */
    long (*req)(weft__port *pt, const weft__io_req *rq, bool defer,
                bool *queued);
    /* Whether transfers may be deferred (the kernel completes them during
     * their submission: uring.c, probe_nowait). */
    bool (*batches)(void);
    /* Whether deferred requests wait in pt's submission queue; and
     * submitting them now. */
    bool (*deferred)(weft__port *pt);
    void (*submit_deferred)(weft__port *pt);
    /* Totals over the ports: requests deferred, and the system calls
     * that submitted them. */
    void (*batch_counts)(unsigned long long *reqs,
                         unsigned long long *submits);
} weft__backend_ring;

/* What every backend implements: ports, watching fds, fetching and
 * delivering their events, kicks. */
typedef struct weft__backend {
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
    /* In the child of a fork (fork.c): closes the child's copies of the
     * backend's fds and unmaps its rings, without a system call on the
     * kernel objects, which are the parent's. No lock: the child has one
     * thread, and a lock another thread held at the fork stays held. */
    void (*forked)(void);
    const weft__backend_ring *ring;      /* NULL: no ring (epoll) */
} weft__backend;

extern const weft__backend weft__epoll_backend;
extern const weft__backend weft__uring_backend;

/* Both backends' kick: a write to an eventfd the port watches. EAGAIN
 * means the counter is full, and a kick is pending anyway. */
void weft__kick_eventfd(int fd);

/* A request the io_uring backend performs for a virtual thread: file
 * I/O, and the transfers on non-blocking sockets and pipes that it
 * batches (weft__io_transfer). */
enum {
    WEFT__REQ_NONE,    /* a call with no ring twin */
    WEFT__REQ_READ,    /* read(2), or pread(2) when off >= 0 */
    WEFT__REQ_WRITE,   /* write(2), or pwrite(2) when off >= 0 */
    WEFT__REQ_FSYNC,
    WEFT__REQ_READV,
    WEFT__REQ_WRITEV,
    WEFT__REQ_RECV,    /* recv(2) with flags; the ring adds MSG_DONTWAIT */
    WEFT__REQ_SEND,    /* send(2) with flags; the ring adds MSG_DONTWAIT */
};

struct weft__io_req {
    int kind;          /* WEFT__REQ_* */
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
/* Submits every port's deferred transfers: called before an fd is
 * closed, so that a transfer a thread made before the close is not done
 * on the next file to get its number. */
void weft__io_submit_deferred(void);


/* The backend that runs (NULL: none), set by weft__io_init before any
 * carrier runs and cleared by weft__io_fini after the last one stopped. */
extern const weft__backend *weft__io_backend;
/* Set when the first fd is armed or file operation made: until then idle
 * carriers sleep on their futex words, which wake faster than a port, so
 * programs that do no I/O through weft pay nothing for it. */
extern _Atomic bool weft__io_used;
void weft__io_mark_used_slow(void);
weft__port *weft__io_port_new(weft__carrier *m);

static inline void weft__io_mark_used(void)
{
    if (unlikely(!atomic_load_explicit(&weft__io_used, memory_order_relaxed)))
        weft__io_mark_used_slow();
}

/* Runs on: m's own thread. m's port, made on first use; NULL if m is
 * NULL or no port can be had. */
static inline weft__port *weft__io_port(weft__carrier *m)
{
    if (!m)
        return NULL;
    weft__port *pt = atomic_load_explicit(&m->io_port, memory_order_relaxed);
    return likely(pt) ? pt : weft__io_port_new(m);
}

/* Runs on: any carrier. Has the poller watch fd's life seq, on the
 * calling carrier's port (*port gets it). 0 / ENOSYS (no backend) /
 * ENOMEM (no port) / the backend's errno. */
static inline int weft__io_arm(int fd, uint32_t seq, weft__port **port)
{
    if (!weft__io_backend)
        return ENOSYS;
    weft__port *pt = weft__io_port(weft__m());
    if (!pt)
        return ENOMEM;
    weft__io_mark_used();
    int err = weft__io_backend->arm(pt, fd, seq);
    if (!err)
        *port = pt;
    return err;
}

static inline void weft__io_disarm(weft__port *pt, int fd, uint32_t seq)
{
    if (weft__io_backend && pt)
        weft__io_backend->disarm(pt, fd, seq);
}

/* Runs on: a virtual thread that may park. A file operation through the
 * calling carrier's ring. *done: false when the backend has no ring (the
 * caller does it another way). */
static inline long weft__io_file_op(const weft__io_req *op, bool *done)
{
    const weft__backend *b = weft__io_backend;
    weft__port *pt = b && b->ring ? weft__io_port(weft__m()) : NULL;
    *done = pt != NULL;
    if (!pt)
        return 0;
    weft__io_mark_used();
    bool queued;
    long r = b->ring->req(pt, op, false, &queued);
    return queued ? r : -EAGAIN;
}

/* Runs on: a virtual thread that may park. A transfer on a non-blocking
 * socket or pipe (op: not FSYNC), made as one attempt of the system call:
 * its result, or -EAGAIN. Under io_uring, when the calling thread's P has
 * other threads to run (or other transfers are queued), it joins the
 * carrier's batch: one system call submits them all when the P runs dry
 * or the carrier next polls. *done: false when it did not (the caller
 * makes the system call itself).
 *
 * A batch is worth joining when something else will run before the P
 * runs dry (which submits it): another thread of the P, or transfers
 * already queued. Alone, the direct system call is cheaper than parking
 * for the same one. A carrier without its P (a handed-off hog's) has no
 * loop to submit from soon: it makes the call itself. Writes made
 * through the libc hooks never join (foreign/libc.c: hook_enter). */
static inline long weft__io_transfer(const weft__io_req *op, bool *done)
{
    *done = false;
    const weft__backend *b = weft__io_backend;
    weft__carrier *m = weft__m();
    if (!b || !b->ring || !b->ring->batches() || !m || !m->p ||
        (m->cur && m->cur->unbatched))
        return 0;
    weft__port *pt = atomic_load_explicit(&m->io_port, memory_order_relaxed);
    if (!weft__runq_busy(m->p) && (!pt || !b->ring->deferred(pt)))
        return 0;
    if (!(pt = weft__io_port(m)))
        return 0;
    weft__io_mark_used();
    /* No free entry: the caller makes the system call itself. */
    return b->ring->req(pt, op, true, done);
}

#endif
