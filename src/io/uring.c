/* SPDX-License-Identifier: MIT */
/*
 * uring.c — the io_uring backend of the poller: one ring per carrier.
 *
 * Why per carrier. io_uring completes a poll by task work on the thread
 * that submitted it: with one ring shared by all carriers, an event on an
 * fd armed by a sleeping carrier would first wake that carrier to post the
 * completion, then wake whoever waits on the ring. With a ring per
 * carrier, the thread that armed an fd is the thread that waits on (and
 * is woken through) that ring: one wake per event, and the woken thread
 * runs on the P of the carrier that reaps it. Every idle carrier waits in
 * its own ring (ops.per_carrier); a busy one reaps its ring without a
 * system call whenever its P runs dry; the monitor sweeps the rings no one
 * has fetched from since its last tick (poller.c).
 *
 * An fd is armed once per life with a multishot, edge-triggered poll for
 * input and output. Its completions carry the fd and the life's seq in
 * user_data; a poll that ends on its own (no IORING_CQE_F_MORE) is
 * reported to fd.c, which re-arms at the next wait. Operations (file
 * read, write and fsync; transfers on sockets and pipes) complete into a
 * record on the waiting thread's stack, which stays parked (not
 * interruptibly) until its completion. Kicks are writes to an eventfd
 * watched by a multishot poll of the ring.
 *
 * Batched transfers. A read or write on a non-blocking socket is prepared
 * in the submission queue and left there (deferred); the port's next
 * fetch submits every deferred entry in one io_uring_enter, during which
 * each completes (MSG_DONTWAIT or RWF_NOWAIT: never a poll, so never
 * later; probe_nowait checks this kernel does so). A server answering
 * many connections thus pays one system call for a batch of writes
 * instead of one each, where a system call costs a microsecond (a VM). Invariant: a deferred entry is submitted by
 * the next fetch of its port, by whichever thread makes it (its carrier
 * when its P runs dry or every IO_POLL_EVERY switches, another carrier
 * looking for work, or the monitor's tick for a carrier stuck in a hog).
 *
 * Submissions to a ring come from its carrier, and from any thread that
 * closes an fd armed there (the poll's removal) or fetches its events:
 * the submission queue has its own lock. Completions are reaped only by
 * the port's owner.
 *
 * Task work is cooperative (IORING_SETUP_COOP_TASKRUN): a running carrier
 * is not interrupted for each event (an IPI each, costly on VMs: it
 * halved http_hello's throughput), but runs its completions at its next
 * return from the kernel (a system call, or the timer interrupt, which
 * bounds the delay for a carrier a hog holds to a tick or so), and a
 * sleeping one is woken. A signal to hurry a hog along was tried and
 * dropped: it made system calls on that carrier fail with EINTR.
 *
 * Longer than our ~500-line aim: one backend is one file, as epoll.c is,
 * so that the poller reaches a backend through one table (poller.h) and
 * each backend's ring, arming and operations read together; the ring's
 * set-up and probing (the first ~120 lines of functions) are the part to
 * move out if it grows.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/fault.h"
#include "io/io.h"
#include "sched/fiber.h"

#define RING_ENTRIES 256
#define CQ_ENTRIES 4096
#define RING_FLAGS (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG)
#define TAG_SHIFT 62
#define TAG_POLL 1ull
#define TAG_OP 2ull
#define TAG_KICK 3ull
#define TAG_NONE 0ull
#define SEQ_MASK 0x3fffffffu /* fd.c keeps seq within 30 bits */

typedef struct uport {
    weft__port hdr;
    weft__spinlock sq_lock; /* lock order 7: RING_SQ (sched/sched.h) */
    struct io_uring ring;
    int kickfd;
    weft__carrier *m;       /* whose thread submits (and runs its task work) */
    _Atomic bool kick_lost; /* the kick poll ended: m re-arms it */
    _Atomic uint32_t deferred; /* entries queued, not submitted; sq_lock */
    /* For weft_stats, written under sq_lock: operations deferred, and the
     * submissions that took some. */
    _Atomic uint64_t batched_ops, batch_submits;
} uport;

typedef struct op_rec {
    weft__waiter w;
    int res;
} op_rec;

static bool batching;       /* transfers may be deferred (probe_nowait) */
static uport **ports;
static uint32_t maxports;
static _Atomic uint32_t nports;
static weft__spinlock ports_lock; /* lock order 7: RING_PORTS */

static uint64_t poll_data(int fd, uint32_t seq)
{
    return TAG_POLL << TAG_SHIFT | (uint64_t)(seq & SEQ_MASK) << 32 |
           (uint32_t)fd;
}

/* Holds: the lock of *c's writers. */
static void bump(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Holds: u->sq_lock. Submits what is queued, deferred entries included. */
static int submit_locked(uport *u)
{
    if (atomic_load_explicit(&u->deferred, memory_order_relaxed))
        bump(&u->batch_submits);
    int r = io_uring_submit(&u->ring);
    if (r >= 0) /* what the kernel did not take stays queued */
        atomic_store_explicit(&u->deferred, io_uring_sq_ready(&u->ring),
                              memory_order_relaxed);
    return r;
}

/* Holds: u->sq_lock. A free submission entry, flushing the queue if full. */
static struct io_uring_sqe *get_sqe(uport *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe && submit_locked(u) >= 0)
        sqe = io_uring_get_sqe(&u->ring);
    return sqe;
}

/* Submits the deferred entries, if any. */
static void submit_deferred(uport *u)
{
    if (!u)
        return;
    if (!atomic_load_explicit(&u->deferred, memory_order_relaxed))
        return;
    weft__spin_lock(&u->sq_lock, WEFT__LOCK_RING_SQ);
    if (atomic_load_explicit(&u->deferred, memory_order_relaxed))
        submit_locked(u);
    weft__spin_unlock(&u->sq_lock);
}

static void prep_kick_poll(struct io_uring_sqe *sqe, int kickfd)
{
    io_uring_prep_poll_multishot(sqe, kickfd, POLLIN);
    io_uring_sqe_set_data64(sqe, TAG_KICK << TAG_SHIFT);
}

static void free_port(uport *u)
{
    io_uring_queue_exit(&u->ring);
    weft__real(close)(u->kickfd);
    free(u);
}

static uport *make_port(void)
{
    uport *u = weft__calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->m = weft__m();
    /* A large completion queue: every fd armed posts its readiness at
     * once, and a burst of accepted connections must not overflow it. */
    struct io_uring_params p = {.flags = RING_FLAGS | IORING_SETUP_CQSIZE,
                                .cq_entries = CQ_ENTRIES};
    if (weft__ring_init_params(RING_ENTRIES, &u->ring, &p)) {
        free(u);
        return NULL;
    }
    u->kickfd = weft__eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct io_uring_sqe *sqe = u->kickfd >= 0 ? get_sqe(u) : NULL;
    if (!sqe) {
        io_uring_queue_exit(&u->ring);
        if (u->kickfd >= 0)
            weft__real(close)(u->kickfd);
        free(u);
        return NULL;
    }
    prep_kick_poll(sqe, u->kickfd);
    io_uring_submit(&u->ring);
    return u;
}

/* Checks that this kernel (and its seccomp profile) gives us what we
 * use: rings with the flags the carriers' rings get (cooperative task
 * running: Linux 5.19), time-outs on waits, and multishot polls. */
static int probe(void)
{
    struct io_uring_params p = {.flags = RING_FLAGS};
    struct io_uring ring;
    int err = -weft__ring_init_params(4, &ring, &p);
    if (err)
        return err;
    if (!(p.features & IORING_FEAT_EXT_ARG)) {
        io_uring_queue_exit(&ring);
        return ENOSYS;
    }
    int efd = weft__eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
        err = WEFT_ERRNO;
        io_uring_queue_exit(&ring);
        return err;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_poll_multishot(sqe, efd, POLLIN);
    io_uring_submit(&ring);
    uint64_t one = 1;
    if (weft__real(write)(efd, &one, sizeof one) < 0)
        err = WEFT_ERRNO;
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts = {.tv_sec = 1};
    if (!err && (io_uring_wait_cqe_timeout(&ring, &cqe, &ts) || cqe->res < 0 ||
                 !(cqe->flags & IORING_CQE_F_MORE)))
        err = ENOSYS;
    io_uring_queue_exit(&ring);
    weft__real(close)(efd);
    return err;
}

static void prep_op(struct io_uring_sqe *sqe, const weft__io_req *op,
                    bool nowait);

/* Whether entries made non-blocking complete during their submission, as
 * batching needs: a transfer left waiting in the kernel would hold its
 * thread, not interruptibly, until the fd became ready. */
static bool probe_nowait(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
                   sv))
        return false;
    struct io_uring ring;
    bool ok = false;
    if (!weft__ring_init(4, &ring, 0)) {
        char b;
        weft__io_req read = {.kind = WEFT__REQ_READ, .fd = sv[0], .buf = &b,
                              .n = 1, .off = -1};
        weft__io_req recv = {.kind = WEFT__REQ_RECV, .fd = sv[0], .buf = &b,
                              .n = 1};
        prep_op(io_uring_get_sqe(&ring), &read, true);
        prep_op(io_uring_get_sqe(&ring), &recv, true);
        ok = io_uring_submit(&ring) == 2 && io_uring_cq_ready(&ring) == 2;
        struct io_uring_cqe *cqe;
        unsigned head;
        io_uring_for_each_cqe(&ring, head, cqe) ok &= cqe->res == -EAGAIN;
        io_uring_queue_exit(&ring);
    }
    weft__real(close)(sv[0]);
    weft__real(close)(sv[1]);
    return ok;
}

static int ur_init(uint32_t max_carriers)
{
    int err = probe();
    if (err)
        return err;
    batching = probe_nowait();
    ports = weft__calloc(max_carriers, sizeof *ports);
    if (!ports)
        return ENOMEM;
    maxports = max_carriers;
    atomic_store(&nports, 0);
    return 0;
}

/* Holds: ports_lock, or runs in a forked child. Takes every port out of
 * the table; *n gets their number. */
static uport **take_ports(uint32_t *n)
{
    *n = atomic_load(&nports);
    atomic_store(&nports, 0);
    uport **gone = ports;
    ports = NULL;
    return gone;
}

static void free_ports(uport **gone, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        free_port(gone[i]);
    free(gone);
}

static void ur_fini(void)
{
    /* Under ports_lock: weft_stats may be reading the ports' counts. */
    weft__spin_lock(&ports_lock, WEFT__LOCK_RING_PORTS);
    uint32_t n;
    uport **gone = take_ports(&n);
    weft__spin_unlock(&ports_lock);
    free_ports(gone, n);
}

/* In a forked child: io_uring_queue_exit unmaps the ring and closes the
 * child's fd, and nothing more (no ring fd is registered), so the
 * parent's ring, its polls and operations go on untouched. */
static void ur_forked(void)
{
    uint32_t n;
    uport **gone = take_ports(&n);
    free_ports(gone, n);
}

static weft__port *ur_port_new(void)
{
    uport *u = make_port();
    if (!u)
        return NULL;
    weft__spin_lock(&ports_lock, WEFT__LOCK_RING_PORTS);
    uint32_t i = atomic_load_explicit(&nports, memory_order_relaxed);
    if (i < maxports) {
        u->hdr.id = i;
        ports[i] = u;
        atomic_store_explicit(&nports, i + 1, memory_order_release);
    }
    weft__spin_unlock(&ports_lock);
    if (i >= maxports) {
        free_port(u);
        return NULL;
    }
    return &u->hdr;
}

static weft__port *ur_port_at(uint32_t i)
{
    return i < atomic_load_explicit(&nports, memory_order_acquire)
               ? &ports[i]->hdr : NULL;
}

/* Submits one prepared entry: prep fills it. Returns 0 / errno. */
static int submit_one(uport *u, void (*prep)(struct io_uring_sqe *, void *),
                      void *arg)
{
    weft__spin_lock(&u->sq_lock, WEFT__LOCK_RING_SQ);
    struct io_uring_sqe *sqe = get_sqe(u);
    int err = 0;
    if (!sqe) {
        err = EAGAIN;
    } else {
        prep(sqe, arg);
        int r = submit_locked(u);
        err = r < 0 ? -r : 0;
    }
    weft__spin_unlock(&u->sq_lock);
    return err;
}

struct poll_args { int fd; uint32_t seq; };

static void prep_arm(struct io_uring_sqe *sqe, void *arg)
{
    struct poll_args *a = arg;
    io_uring_prep_poll_multishot(sqe, a->fd, POLLIN | POLLOUT | POLLRDHUP);
    io_uring_sqe_set_data64(sqe, poll_data(a->fd, a->seq));
}

/* A cancel, not a poll removal: a removal that finds the poll's own
 * completion under way fails (EALREADY) and leaves a multishot poll
 * armed, holding the file open after its fd is closed (a peer would never
 * see the end of the stream). A cancel marks the poll, and whoever is
 * completing it ends it. */
static void prep_disarm(struct io_uring_sqe *sqe, void *arg)
{
    struct poll_args *a = arg;
    io_uring_prep_cancel64(sqe, poll_data(a->fd, a->seq), 0);
    io_uring_sqe_set_data64(sqe, TAG_NONE);
}

static int ur_arm(weft__port *pt, int fd, uint32_t seq)
{
    return submit_one((uport *)pt, prep_arm, &(struct poll_args){fd, seq});
}

static void ur_disarm(weft__port *pt, int fd, uint32_t seq)
{
    submit_one((uport *)pt, prep_disarm, &(struct poll_args){fd, seq});
}

/* Completions the kernel holds back: it flushes an overflowed queue only
 * when asked (by any thread), and runs task work only for its own task. */
static void rearm_kick(struct io_uring_sqe *sqe, void *arg);

static bool held_back(const uport *u)
{
    unsigned f = IO_URING_READ_ONCE(*u->ring.sq.kflags);
    return (f & IORING_SQ_CQ_OVERFLOW) ||
           ((f & IORING_SQ_TASKRUN) && u->m == weft__m());
}

static int ur_fetch(weft__port *pt, int64_t until)
{
    uport *u = (uport *)pt;
    if (u->m == weft__m() &&
        atomic_exchange_explicit(&u->kick_lost, false, memory_order_relaxed))
        submit_one(u, rearm_kick, u);
    if (atomic_load_explicit(&u->deferred, memory_order_relaxed))
        submit_deferred(u); /* the system call runs our task work too */
    else if (until == 0 && held_back(u))
        io_uring_get_events(&u->ring);
    unsigned n = io_uring_cq_ready(&u->ring);
    if (n || until == 0)
        return (int)n;
    struct __kernel_timespec ts, *tsp = NULL;
    if (until > 0) {
        int64_t left = until - weft_now();
        if (left <= 0)
            return 0;
        ts.tv_sec = left / 1000000000;
        ts.tv_nsec = left % 1000000000;
        tsp = &ts;
    }
    struct io_uring_cqe *cqe;
    io_uring_wait_cqe_timeout(&u->ring, &cqe, tsp);
    return (int)io_uring_cq_ready(&u->ring);
}

static void rearm_kick(struct io_uring_sqe *sqe, void *arg)
{
    prep_kick_poll(sqe, ((uport *)arg)->kickfd);
}

static void complete(uport *u, const struct io_uring_cqe *cqe)
{
    uint64_t d = cqe->user_data;
    bool more = cqe->flags & IORING_CQE_F_MORE;
    switch (d >> TAG_SHIFT) {
    case TAG_POLL: {
        int fd = (int)(uint32_t)d;
        uint32_t seq = (uint32_t)(d >> 32) & SEQ_MASK;
        if (!more)
            weft__fd_disarmed(fd, seq);
        else if (cqe->res > 0)
            weft__fd_event(fd, seq, (uint32_t)cqe->res);
        break;
    }
    case TAG_OP: {
        op_rec *op = (op_rec *)(uintptr_t)(d & ~(3ull << TAG_SHIFT));
        weft__tsan_acquire(op);
        op->res = cqe->res;
        weft__wake(&op->w, 0);
        break;
    }
    case TAG_KICK:
        /* Re-armed by the ring's own carrier only: a poll's task work
         * runs on the thread that armed it, and a kick armed by another
         * thread would wake that one, not the ring's waiter. */
        if (!more)
            atomic_store_explicit(&u->kick_lost, true, memory_order_relaxed);
        break;
    }
}

static void ur_dispatch(weft__port *pt)
{
    uport *u = (uport *)pt;
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe) {
        complete(u, cqe);
        n++;
    }
    io_uring_cq_advance(&u->ring, n);
}

static void ur_kick(weft__port *pt)
{
    weft__kick_eventfd(((uport *)pt)->kickfd);
}

/* The largest transfer one entry takes (the kernel's MAX_RW_COUNT). */
static unsigned clamp_len(size_t n)
{
    return n > 0x7ffff000 ? 0x7ffff000 : (unsigned)n;
}

/* nowait: the entry must complete at once, with EAGAIN if it cannot.
 * For sockets and pipes the file's O_NONBLOCK does not say so: io_uring
 * would wait for readiness, since those files can be polled. */
static void prep_op(struct io_uring_sqe *sqe, const weft__io_req *op,
                    bool nowait)
{
    unsigned n = clamp_len(op->n);
    switch (op->kind) {
    case WEFT__REQ_READ:
        io_uring_prep_read(sqe, op->fd, op->buf, n, (uint64_t)op->off);
        break;
    case WEFT__REQ_WRITE:
        io_uring_prep_write(sqe, op->fd, op->buf, n, (uint64_t)op->off);
        break;
    case WEFT__REQ_READV:
        io_uring_prep_readv(sqe, op->fd, op->iov, (unsigned)op->iovcnt,
                            (uint64_t)op->off);
        break;
    case WEFT__REQ_WRITEV:
        io_uring_prep_writev(sqe, op->fd, op->iov, (unsigned)op->iovcnt,
                             (uint64_t)op->off);
        break;
    case WEFT__REQ_RECV:
        io_uring_prep_recv(sqe, op->fd, op->buf, n, op->flags | MSG_DONTWAIT);
        break;
    case WEFT__REQ_SEND:
        io_uring_prep_send(sqe, op->fd, op->buf, n, op->flags | MSG_DONTWAIT);
        break;
    default:
        io_uring_prep_fsync(sqe, op->fd, 0);
    }
    if (nowait && op->kind != WEFT__REQ_RECV && op->kind != WEFT__REQ_SEND)
        sqe->rw_flags = RWF_NOWAIT;
}

/* Holds: u->sq_lock. Queues op, completing into rec, and submits it
 * unless deferred. Once queued, op completes: an entry the kernel refused
 * to take now stays queued, counted as deferred (submit_locked), for the
 * next fetch. 0, or EAGAIN: no free entry. */
static int queue_op(uport *u, const weft__io_req *op, op_rec *rec,
                    bool defer)
{
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe)
        return EAGAIN;
    prep_op(sqe, op, defer);
    io_uring_sqe_set_data64(sqe, TAG_OP << TAG_SHIFT | (uintptr_t)rec);
    weft__tsan_release(rec);
    if (defer) {
        atomic_fetch_add_explicit(&u->deferred, 1, memory_order_relaxed);
        bump(&u->batched_ops);
    } else {
        submit_locked(u);
    }
    return 0;
}

static long ur_req(weft__port *pt, const weft__io_req *op, bool defer,
                       bool *queued)
{
    uport *u = (uport *)pt;
    op_rec rec = {.res = 0};
    /* Not interruptible: the kernel may use op's buffers until the
     * completion comes, so the caller must not return before it. */
    weft__wait_begin(&rec.w, 0, WEFT__WAIT_RING_IO, NULL);
    atomic_fetch_add_explicit(&weft__fd_waiters, 1, memory_order_relaxed);
    weft__spin_lock(&u->sq_lock, WEFT__LOCK_RING_SQ);
    int err = queue_op(u, op, &rec, defer);
    weft__spin_unlock(&u->sq_lock);
    if (err)
        weft__wait_abort(&rec.w);
    else
        weft__wait_block(&rec.w, NULL, -1);
    atomic_fetch_sub_explicit(&weft__fd_waiters, 1, memory_order_relaxed);
    *queued = !err;
    return err ? -err : rec.res;
}

static void ur_batch_counts(unsigned long long *ops,
                            unsigned long long *submits)
{
    *ops = *submits = 0;
    weft__spin_lock(&ports_lock, WEFT__LOCK_RING_PORTS);
    uint32_t n = atomic_load_explicit(&nports, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++) {
        *ops += atomic_load_explicit(&ports[i]->batched_ops,
                                     memory_order_relaxed);
        *submits += atomic_load_explicit(&ports[i]->batch_submits,
                                         memory_order_relaxed);
    }
    weft__spin_unlock(&ports_lock);
}

static void ur_submit_deferred(weft__port *pt)
{
    submit_deferred((uport *)pt);
}

static bool ur_batches(void)
{
    return batching;
}

static bool ur_deferred(weft__port *pt)
{
    return atomic_load_explicit(&((uport *)pt)->deferred,
                                memory_order_relaxed) != 0;
}

static const weft__backend_ring ur_ring = {
    .req = ur_req,
    .batches = ur_batches,
    .deferred = ur_deferred,
    .submit_deferred = ur_submit_deferred,
    .batch_counts = ur_batch_counts,
};

const weft__backend weft__uring_backend = {
    .name = "uring",
    .init = ur_init,
    .fini = ur_fini,
    .forked = ur_forked,
    .port_new = ur_port_new,
    .port_at = ur_port_at,
    .per_carrier = true,
    .arm = ur_arm,
    .disarm = ur_disarm,
    .fetch = ur_fetch,
    .dispatch = ur_dispatch,
    .kick = ur_kick,
    .ring = &ur_ring,
};
