/* SPDX-License-Identifier: MIT */
/*
 * rw.c — weft_read, weft_write and the other blocking I/O calls.
 *
 * Each call is one attempt function (the libc call, which cannot block on
 * an fd weft made non-blocking) driven by run_io:
 *   - on a virtual thread, EAGAIN parks the thread until the fd's next
 *     edge (fd.c), SO_RCVTIMEO / SO_SNDTIMEO bounding the whole call;
 *   - on an OS thread, the call blocks as the program expects: on an fd
 *     weft made non-blocking underneath, EAGAIN becomes poll(2) and retry;
 *   - an fd the program made O_NONBLOCK gets the attempt's EAGAIN;
 *   - fds weft must not switch (0-2) wait for readiness in the poller,
 *     then make the call marked as blocking (the monitor moves the
 *     carrier's other threads if it does block);
 *   - regular files go through io_uring, else run marked as blocking.
 * WEFT_ERRNO is left as the caller had it when the call succeeds.
 *
 * Longer than our ~500-line aim on purpose: the driver (run_io and the
 * ways a call waits) and the calls it drives are one file so that a
 * hooked read crosses no file between the hook and the readiness wait
 * (docs/internals.md, "A hooked read"). The calls are thin: what grows
 * here should be a new way to wait, and that would be the seam.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>

#include "io/io.h"

typedef ssize_t (*attempt_fn)(void *ctx);

struct rw {
    int fd;
    void *buf;
    size_t n;
    int flags;
    off_t off;
    const struct iovec *iov;
    int iovcnt;
    struct sockaddr *addr;
    socklen_t *addrlen;
    socklen_t tolen;
    struct msghdr *msg;
    int kind;          /* its ring twin (WEFT__REQ_*) */
};

static int64_t timeout_for(const weft__fd *f, short ev)
{
    int64_t t = ev == POLLIN ? f->rcvtimeo_ns : f->sndtimeo_ns;
    return t > 0 ? weft_now() + t : -1;
}

static uint32_t fd_flags(const weft__fd *f)
{
    return atomic_load_explicit(&f->flags, memory_order_acquire);
}

/* An OS thread calling on an fd weft made non-blocking: waits as the
 * blocking call would have, time-outs included. */
static ssize_t os_io_blocking(int fd, short ev, attempt_fn attempt,
                              void *ctx)
{
    ssize_t r;
    while ((r = attempt(ctx)) < 0 && (WEFT_ERRNO == EAGAIN || WEFT_ERRNO == EWOULDBLOCK)) {
        weft__fd *f = weft__fd_peek(fd);
        if (!f || (fd_flags(f) & (WEFT__FD_NB_OURS | WEFT__FD_NB_USER)) !=
                      WEFT__FD_NB_OURS)
            return r;
        int64_t t = ev == POLLIN ? f->rcvtimeo_ns : f->sndtimeo_ns;
        struct pollfd p = {.fd = fd, .events = ev};
        int n = weft__real(poll)(&p, 1, t > 0 ? (int)((t + 999999) / 1000000)
                                                 : -1);
        if (n == 0) {
            WEFT_ERRNO = EAGAIN;
            return -1;
        }
        if (n < 0 && WEFT_ERRNO != EINTR)
            return -1;
    }
    return r;
}

static ssize_t os_io(int fd, short ev, attempt_fn attempt, void *ctx)
{
    weft__blocking_enter(); /* a lock-pinned virtual thread's carrier */
    ssize_t r = os_io_blocking(fd, ev, attempt, ctx);
    weft__blocking_leave();
    return r;
}

/* Holds: nothing. The call on an fd that must stay blocking. */
static ssize_t stdio_io(weft__fd *f, short ev, attempt_fn attempt, void *ctx)
{
    struct pollfd p = {.fd = f->fd, .events = ev};
    if (weft__real(poll)(&p, 1, 0) == 0) {
        int e = weft__fd_wait(f, ev, timeout_for(f, ev));
        if (e) {
            WEFT_ERRNO = e == WEFT__EXPIRED ? EAGAIN : e;
            return -1;
        }
    }
    weft__blocking_enter();
    ssize_t r = attempt(ctx);
    weft__blocking_leave();
    return r;
}

/* One attempt on an fd weft made non-blocking: batched in the carrier's
 * ring when the call has a ring twin and a batch is there to join
 * (weft__io_transfer), else the system call itself. */
static ssize_t attempt_nb(attempt_fn attempt, struct rw *a)
{
    if (a->kind != WEFT__REQ_NONE) {
        weft__io_req op = {.kind = a->kind, .fd = a->fd, .buf = a->buf,
                            .n = a->n, .off = -1, .iov = a->iov,
                            .iovcnt = a->iovcnt, .flags = a->flags};
        bool done;
        long r = weft__io_transfer(&op, &done);
        if (done && r < 0) {
            WEFT_ERRNO = (int)-r;
            return -1;
        }
        if (done)
            return r;
    }
    return attempt(a);
}

/* The calling virtual thread if it may park in I/O (g from weft__g),
 * else NULL: see weft__io_g. */
static weft_thread *parking(weft_thread *g)
{
    return g && likely(!g->plocks) ? g : NULL;
}

/* A non-blocking stream or socket on a virtual thread: attempts, and
 * parks for the fd's next edge after each EAGAIN. want: for a plain read
 * of a stream, the bytes asked for (else 0). A read that gets fewer has
 * drained the stream, and the next one waits for an input edge before it
 * tries (fd.c: drained), saving the system call that would only say
 * EAGAIN.
 *
 * One read may park twice: once in the carrier's batch (attempt_nb),
 * whose answer is known only after the batch's submission, and then, if
 * that answer was EAGAIN, for the fd's next edge. The two cannot be one
 * park: a ring entry that waited for readiness itself would hold the
 * caller's buffer in the kernel and park the thread uninterruptibly
 * until data came (no SO_RCVTIMEO, no cancellation), and whether the
 * socket is empty is unknown before the attempt. An edge that came while
 * the batch was submitted is latched in the record (fd.c: ready), so the
 * second park then returns at once. A drained stream skips the attempt
 * (wait_first) and parks only once. */
static ssize_t stream_io(weft__fd *f, short ev, attempt_fn attempt,
                         struct rw *ctx, size_t want)
{
    int saved = WEFT_ERRNO;
    int64_t deadline = -1;
    bool timed = false;
    if (!(fd_flags(f) & WEFT__FD_STREAM))
        want = 0;
    bool wait_first = want &&
                      atomic_load_explicit(&f->drained, memory_order_relaxed);
    for (;;) {
        ssize_t r = wait_first ? -1 : attempt_nb(attempt, ctx);
        if (r >= 0) {
            if (r > 0 && (size_t)r < want)
                weft__fd_note_drained(f);
            WEFT_ERRNO = saved;
            return r;
        }
        if (!wait_first && WEFT_ERRNO != EAGAIN && WEFT_ERRNO != EWOULDBLOCK)
            return r;
        wait_first = false;
        if (!timed) {
            deadline = timeout_for(f, ev);
            timed = true;
        }
        int e = weft__fd_wait(f, ev, deadline);
        if (e) {
            WEFT_ERRNO = e == WEFT__EXPIRED ? EAGAIN : e;
            return -1;
        }
    }
}

/* The call on fd by g (NULL: an OS thread, or a thread that must not
 * park), f being fd's record as weft__fd_get gave it (NULL, errno set:
 * none could be had; ignored when g is NULL). Decides, once, how the
 * call is made: see the top of this file. */
static ssize_t run_io_at(weft_thread *g, weft__fd *f, int fd, short ev,
                         attempt_fn attempt, struct rw *ctx, size_t want)
{
    if (!g)
        return os_io(fd, ev, attempt, ctx);
    if (!f) /* no memory for its record (the call would block the
             * carrier), or the kernel reports what is wrong with fd */
        return WEFT_ERRNO == ENOMEM ? -1 : attempt(ctx);
    uint32_t fl = fd_flags(f);
    if (fl & WEFT__FD_NB_USER)
        return attempt(ctx);
    if (fl & WEFT__FD_STDIO)
        return stdio_io(f, ev, attempt, ctx);
    if (fl & WEFT__FD_FILE) {
        weft__blocking_enter();
        ssize_t r = attempt(ctx);
        weft__blocking_leave();
        return r;
    }
    return stream_io(f, ev, attempt, ctx, want);
}

/* run_io_at for the calling thread, looking up fd's record. */
static ssize_t run_io(int fd, short ev, attempt_fn attempt, struct rw *ctx,
                      size_t want)
{
    weft_thread *g = weft__io_g();
    return run_io_at(g, g ? weft__fd_get(fd) : NULL, fd, ev, attempt, ctx,
                     want);
}

/* Whether a short transfer on fd should be continued, as a blocking call
 * on a stream does. */
static bool continues(int fd)
{
    weft__fd *f = weft__fd_peek(fd);
    return !f || !(fd_flags(f) & WEFT__FD_NB_USER);
}

typedef ssize_t (*piece_fn)(int fd, void *buf, size_t n, int flags);

/* After a vectored call moved `done` bytes: moves the rest of iov one
 * buffer at a time with piece (which transfers all of a buffer unless
 * something ends the call). Returns the total moved. */
static ssize_t finish_iov(int fd, const struct iovec *iov, int iovcnt,
                          size_t done, int flags, piece_fn piece)
{
    size_t total = done;
    for (int i = 0; i < iovcnt; i++) {
        if (done >= iov[i].iov_len) {
            done -= iov[i].iov_len;
            continue;
        }
        size_t left = iov[i].iov_len - done;
        ssize_t r = piece(fd, (char *)iov[i].iov_base + done, left, flags);
        done = 0;
        if (r < 0)
            return (ssize_t)total;
        total += (size_t)r;
        if ((size_t)r < left)
            return (ssize_t)total;
    }
    return (ssize_t)total;
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t n = 0;
    for (int i = 0; i < iovcnt; i++)
        n += iov[i].iov_len;
    return n;
}

/* ---------------------------------------------------------------- reads */

static ssize_t try_read(void *c)
{
    struct rw *a = c;
    return weft__real(read)(a->fd, a->buf, a->n);
}

static ssize_t try_readv(void *c)
{
    struct rw *a = c;
    return weft__real(readv)(a->fd, a->iov, a->iovcnt);
}

static ssize_t try_recvfrom(void *c)
{
    struct rw *a = c;
    return weft__real(recvfrom)(a->fd, a->buf, a->n, a->flags, a->addr,
                               a->addrlen);
}

static ssize_t try_recvmsg(void *c)
{
    struct rw *a = c;
    return weft__real(recvmsg)(a->fd, a->msg, a->flags);
}

/* A regular file (f, on a thread that may park) under io_uring: the
 * operation goes to the ring. False when f is no file or the backend has
 * no ring; else true, *out getting the call's result (-1, errno set). */
static bool file_via_ring(const weft__fd *f, int kind, void *buf, size_t n,
                          off_t off, ssize_t *out)
{
    if (!f || !(fd_flags(f) & WEFT__FD_FILE))
        return false;
    bool done;
    weft__io_req op = {.kind = kind, .fd = f->fd, .buf = buf, .n = n,
                        .off = off};
    long r = weft__io_file_op(&op, &done);
    if (!done)
        return false;
    if (r < 0) {
        WEFT_ERRNO = (int)-r;
        r = -1;
    }
    *out = r;
    return true;
}

/* The record of fd for a call by g (see run_io_at), or NULL. */
static weft__fd *record(weft_thread *g, int fd)
{
    return g ? weft__fd_get(fd) : NULL;
}

/* weft_read for g, the caller as weft__g gave it (the read hook has it
 * already): the thread and fd's record are looked up once, and a file
 * goes to the ring or is read marked as blocking, a stream parks. */
ssize_t weft__read(weft_thread *g, int fd, void *buf, size_t n)
{
    weft__real_ready();
    g = parking(g);
    weft__fd *f = record(g, fd);
    ssize_t r;
    if (file_via_ring(f, WEFT__REQ_READ, buf, n, -1, &r))
        return r;
    return run_io_at(g, f, fd, POLLIN, try_read,
                     &(struct rw){.fd = fd, .buf = buf, .n = n,
                                  .kind = WEFT__REQ_READ}, n);
}

ssize_t weft_read(int fd, void *buf, size_t n)
{
    return weft__read(weft__g(), fd, buf, n);
}

ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt)
{
    weft__real_ready();
    return run_io(fd, POLLIN, try_readv,
                  &(struct rw){.fd = fd, .iov = iov, .iovcnt = iovcnt,
                               .kind = WEFT__REQ_READV}, 0);
}

/* Whether weft must do MSG_WAITALL itself: the kernel does it only on a
 * blocking stream socket, and fd is one the program thinks blocking but
 * weft made non-blocking underneath. Datagram sockets ignore the flag
 * (one datagram per call), and fds the program made non-blocking get the
 * kernel's partial answer. */
static bool gathers(int fd, int flags)
{
    weft__fd *f = weft__io_g() ? weft__fd_get(fd) : weft__fd_peek(fd);
    if (!(flags & MSG_WAITALL) || !f || !(fd_flags(f) & WEFT__FD_NB_OURS))
        return false;
    int type = 0;
    socklen_t len = sizeof type;
    return !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) &&
           type == SOCK_STREAM;
}

/* Waits until more data may have come to fd than a peek just saw: the
 * next edge on a virtual thread; on an OS thread a millisecond, since
 * poll(2) reports the data already there. 0, or why to stop. */
static int wait_more(int fd, int64_t deadline)
{
    if (deadline >= 0 && weft_now() >= deadline)
        return ETIMEDOUT;
    if (weft__io_g()) {
        weft__fd *f = weft__fd_get(fd);
        return f ? weft__fd_wait(f, POLLIN, deadline) : EBADF;
    }
    struct timespec ms = {0, 1000000};
    return weft__real(nanosleep)(&ms, NULL) ? WEFT_ERRNO : 0;
}

/* MSG_PEEK with MSG_WAITALL: peeks again from the start each time more
 * has come, until n bytes are there; a short count when the stream ends,
 * SO_RCVTIMEO passes or the caller is cancelled. */
static ssize_t peek_all(int fd, struct rw *a)
{
    weft__fd *f = weft__fd_peek(fd);
    int64_t deadline = f ? timeout_for(f, POLLIN) : -1;
    for (;;) {
        ssize_t r = run_io(fd, POLLIN, try_recvfrom, a, 0);
        if (r <= 0 || (size_t)r >= a->n || wait_more(fd, deadline))
            return r;
    }
}

/* MSG_WAITALL: gathers until n bytes, the end of the stream, an error,
 * a time-out or a cancellation (then the short count, if any). */
static ssize_t recv_all(int fd, struct rw *a)
{
    char *buf = a->buf;
    size_t n = a->n, got = 0;
    while (got < n) {
        a->buf = buf + got;
        a->n = n - got;
        ssize_t r = run_io(fd, POLLIN, try_recvfrom, a, 0);
        if (r <= 0)
            return got ? (ssize_t)got : r;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

ssize_t weft_recvfrom(int fd, void *buf, size_t n, int flags,
                      struct sockaddr *from, socklen_t *fromlen)
{
    weft__real_ready();
    struct rw a = {.fd = fd, .buf = buf, .n = n, .flags = flags,
                   .addr = from, .addrlen = fromlen};
    /* The ring's recv has no address, and its MSG_WAITALL retries. */
    if (!from && !(flags & MSG_WAITALL))
        a.kind = WEFT__REQ_RECV;
    if (flags & MSG_DONTWAIT)
        return try_recvfrom(&a);
    if (!gathers(fd, flags))
        return run_io(fd, POLLIN, try_recvfrom, &a, flags ? 0 : n);
    a.flags &= ~MSG_WAITALL;
    if (!from)
        a.kind = WEFT__REQ_RECV;
    return flags & MSG_PEEK ? peek_all(fd, &a) : recv_all(fd, &a);
}

ssize_t weft_recv(int fd, void *buf, size_t n, int flags)
{
    return weft_recvfrom(fd, buf, n, flags, NULL, NULL);
}

static ssize_t recv_piece(int fd, void *buf, size_t n, int flags)
{
    return weft_recvfrom(fd, buf, n, flags, NULL, NULL);
}

ssize_t weft_recvmsg(int fd, struct msghdr *msg, int flags)
{
    weft__real_ready();
    struct rw a = {.fd = fd, .msg = msg, .flags = flags};
    if (flags & MSG_DONTWAIT)
        return try_recvmsg(&a);
    /* MSG_WAITALL: the first call as asked (it takes any ancillary data),
     * the rest of the buffers gathered by recv. */
    bool all = !(flags & MSG_PEEK) && msg && gathers(fd, flags);
    if (all)
        a.flags &= ~MSG_WAITALL;
    ssize_t r = run_io(fd, POLLIN, try_recvmsg, &a, 0);
    if (!all || r <= 0 ||
        (size_t)r >= iov_total(msg->msg_iov, (int)msg->msg_iovlen))
        return r;
    return finish_iov(fd, msg->msg_iov, (int)msg->msg_iovlen, (size_t)r,
                      flags, recv_piece);
}

ssize_t weft_pread(int fd, void *buf, size_t n, off_t off)
{
    ssize_t r;
    weft__real_ready();
    if (off < 0) {
        WEFT_ERRNO = EINVAL;
        return -1;
    }
    weft__fd *f = record(weft__io_g(), fd);
    if (file_via_ring(f, WEFT__REQ_READ, buf, n, off, &r))
        return r;
    if (f && (fd_flags(f) & WEFT__FD_FILE))
        return weft__file_offload(WEFT__REQ_READ, fd, buf, n, off);
    return weft__real(pread)(fd, buf, n, off);
}

/* --------------------------------------------------------------- writes */

static ssize_t try_write(void *c)
{
    struct rw *a = c;
    return weft__real(write)(a->fd, a->buf, a->n);
}

static ssize_t try_writev(void *c)
{
    struct rw *a = c;
    return weft__real(writev)(a->fd, a->iov, a->iovcnt);
}

static ssize_t try_sendto(void *c)
{
    struct rw *a = c;
    return weft__real(sendto)(a->fd, a->buf, a->n, a->flags, a->addr,
                             a->tolen);
}

static ssize_t try_sendmsg(void *c)
{
    struct rw *a = c;
    return weft__real(sendmsg)(a->fd, a->msg, a->flags);
}

/* Writes all of buf as a blocking call would: a short count only when an
 * error, a cancellation or a time-out ends it midway. */
static ssize_t write_fully(int fd, attempt_fn attempt, struct rw *a)
{
    const char *base = a->buf;
    size_t n = a->n, done = 0;
    int saved = WEFT_ERRNO;
    for (;;) {
        a->buf = (char *)base + done;
        a->n = n - done;
        ssize_t r = run_io(fd, POLLOUT, attempt, a, 0);
        if (r < 0) {
            if (!done)
                return -1;
            WEFT_ERRNO = saved;
            return (ssize_t)done;
        }
        done += (size_t)r;
        if (done >= n || r == 0 || !continues(fd))
            return (ssize_t)done;
    }
}

ssize_t weft_write(int fd, const void *buf, size_t n)
{
    ssize_t r;
    weft__real_ready();
    if (file_via_ring(record(weft__io_g(), fd), WEFT__REQ_WRITE, (void *)buf,
                      n, -1, &r))
        return r;
    return write_fully(fd, try_write,
                       &(struct rw){.fd = fd, .buf = (void *)buf, .n = n,
                                    .kind = WEFT__REQ_WRITE});
}

ssize_t weft_sendto(int fd, const void *buf, size_t n, int flags,
                    const struct sockaddr *to, socklen_t tolen)
{
    weft__real_ready();
    struct rw a = {.fd = fd, .buf = (void *)buf, .n = n, .flags = flags,
                   .addr = (struct sockaddr *)to, .tolen = tolen,
                   .kind = to ? WEFT__REQ_NONE : WEFT__REQ_SEND};
    if (flags & MSG_DONTWAIT)
        return try_sendto(&a);
    return write_fully(fd, try_sendto, &a);
}

ssize_t weft_send(int fd, const void *buf, size_t n, int flags)
{
    return weft_sendto(fd, buf, n, flags, NULL, 0);
}

/* flags < 0: a write(2), else a send(2) with flags. */
static ssize_t write_piece(int fd, void *buf, size_t n, int flags)
{
    return flags < 0 ? weft_write(fd, buf, n)
                     : weft_sendto(fd, buf, n, flags, NULL, 0);
}

ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt)
{
    weft__real_ready();
    ssize_t r = run_io(fd, POLLOUT, try_writev,
                       &(struct rw){.fd = fd, .iov = iov, .iovcnt = iovcnt,
                                    .kind = WEFT__REQ_WRITEV}, 0);
    if (r <= 0 || iovcnt <= 0 || (size_t)r >= iov_total(iov, iovcnt) ||
        !continues(fd))
        return r;
    return finish_iov(fd, iov, iovcnt, (size_t)r, -1, write_piece);
}

ssize_t weft_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    weft__real_ready();
    struct rw a = {.fd = fd, .msg = (struct msghdr *)msg, .flags = flags};
    if (flags & MSG_DONTWAIT)
        return try_sendmsg(&a);
    ssize_t r = run_io(fd, POLLOUT, try_sendmsg, &a, 0);
    if (r <= 0 || !msg || (size_t)r >= iov_total(msg->msg_iov,
                                                 (int)msg->msg_iovlen) ||
        !continues(fd))
        return r;
    return finish_iov(fd, msg->msg_iov, (int)msg->msg_iovlen, (size_t)r,
                      flags, write_piece);
}

ssize_t weft_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    ssize_t r;
    weft__real_ready();
    if (off < 0) {
        WEFT_ERRNO = EINVAL;
        return -1;
    }
    weft__fd *f = record(weft__io_g(), fd);
    if (file_via_ring(f, WEFT__REQ_WRITE, (void *)buf, n, off, &r))
        return r;
    if (f && (fd_flags(f) & WEFT__FD_FILE))
        return weft__file_offload(WEFT__REQ_WRITE, fd, (void *)buf, n, off);
    return weft__real(pwrite)(fd, buf, n, off);
}

int weft_fsync(int fd)
{
    ssize_t r;
    weft__real_ready();
    weft__fd *f = record(weft__io_g(), fd);
    if (file_via_ring(f, WEFT__REQ_FSYNC, NULL, 0, 0, &r))
        return (int)r;
    if (f)
        return (int)weft__file_offload(WEFT__REQ_FSYNC, fd, NULL, 0, 0);
    return weft__real(fsync)(fd);
}
