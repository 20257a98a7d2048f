/* SPDX-License-Identifier: MIT */
/*
 * fdops.c — the I/O calls that are not plain transfers: accept, connect,
 * poll, weft_wait_fd, close and fcntl.
 *
 * accept hands back a socket weft made non-blocking from the start
 * (SOCK_NONBLOCK), recorded without asking the kernel what it is. connect
 * on a socket that is non-blocking underneath waits for writability and
 * reads SO_ERROR, as a blocking connect would have returned it. poll
 * first asks the kernel without waiting; only if nothing is ready does
 * the thread park on every fd at once (fd.c: weft__fd_wait_many), and it
 * asks again after each wake-up, so its answer is always the kernel's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "base/fault.h"
#include "io/io.h"

#define POLL_ON_STACK 16

static uint32_t fd_flags(const weft__fd *f)
{
    return atomic_load_explicit(&f->flags, memory_order_acquire);
}

static bool waits_here(weft__fd *f)
{
    return f && !(fd_flags(f) & (WEFT__FD_NB_USER | WEFT__FD_FILE));
}

/* An OS thread accepting on a listener weft made non-blocking: waits as
 * the blocking accept would have. */
static int os_accept(int fd, struct sockaddr *addr, socklen_t *addrlen,
                     int flags)
{
    for (;;) {
        int s = weft__real(accept4)(fd, addr, addrlen, flags);
        if (s >= 0) {
            weft__fd_forget(s); /* a record of an earlier life is stale */
            return s;
        }
        weft__fd *l = weft__fd_peek(fd);
        if (WEFT_ERRNO != EAGAIN || !l ||
            (fd_flags(l) & (WEFT__FD_NB_OURS | WEFT__FD_NB_USER)) !=
                WEFT__FD_NB_OURS)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (weft__real(poll)(&p, 1, -1) < 0 && WEFT_ERRNO != EINTR)
            return -1;
    }
}

int weft_accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
    if (!weft__io_g())
        return os_accept(fd, addr, addrlen, flags);
    weft__fd *l = weft__fd_get(fd);
    if (!l && WEFT_ERRNO == ENOMEM)
        return -1; /* accepting without a record could block the carrier */
    if (!waits_here(l)) {
        int s = weft__real(accept4)(fd, addr, addrlen, flags);
        if (s >= 0)
            weft__fd_forget(s);
        return s;
    }
    int saved = WEFT_ERRNO;
    int64_t deadline = l->rcvtimeo_ns > 0 ? weft_now() + l->rcvtimeo_ns : -1;
    for (;;) {
        int s = weft__real(accept4)(fd, addr, addrlen, flags | SOCK_NONBLOCK);
        if (s >= 0) {
            weft__fd_adopt_socket(s, flags & SOCK_NONBLOCK, l);
            WEFT_ERRNO = saved;
            return s;
        }
        if (WEFT_ERRNO != EAGAIN && WEFT_ERRNO != EWOULDBLOCK)
            return -1;
        int e = weft__fd_wait(l, POLLIN, deadline);
        if (e) {
            WEFT_ERRNO = e == WEFT__EXPIRED ? EAGAIN : e;
            return -1;
        }
    }
}

int weft_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    return weft_accept4(fd, addr, addrlen, 0);
}

static int connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
        return -1;
    if (err) {
        WEFT_ERRNO = err;
        return -1;
    }
    return 0;
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    weft__fd *f = weft__io_g() ? weft__fd_get(fd) : weft__fd_peek(fd);
    int r = weft__real(connect)(fd, addr, addrlen);
    if (r == 0 || WEFT_ERRNO != EINPROGRESS || !f ||
        (fd_flags(f) & (WEFT__FD_NB_USER | WEFT__FD_NB_OURS)) !=
            WEFT__FD_NB_OURS)
        return r;
    int saved = WEFT_ERRNO;
    if (!weft__io_g()) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        while (weft__real(poll)(&p, 1, -1) < 0 && WEFT_ERRNO == EINTR) {
        }
    } else {
        int64_t t = f->sndtimeo_ns > 0 ? weft_now() + f->sndtimeo_ns : -1;
        int e = weft__fd_wait(f, POLLOUT, t);
        if (e) {
            /* The connection goes on in the background, as after a
             * blocking connect interrupted by a signal. */
            WEFT_ERRNO = e == WEFT__EXPIRED ? EINPROGRESS : e;
            return -1;
        }
    }
    WEFT_ERRNO = saved;
    return connect_result(fd);
}

int weft_wait_fd(int fd, short events, int64_t deadline_ns)
{
    if (!(events & (POLLIN | POLLOUT)))
        return EINVAL;
    if (fd < 0) /* poll(2) would skip it and just wait out the time */
        return EBADF;
    struct pollfd p = {.fd = fd, .events = events & (POLLIN | POLLOUT)};
    int n = weft__real(poll)(&p, 1, 0);
    if (n > 0)
        return p.revents & POLLNVAL ? EBADF : 0;
    if (n < 0 && WEFT_ERRNO != EINTR) /* a signal: just not ready yet */
        return WEFT_ERRNO;
    if (deadline_ns == 0)
        return ETIMEDOUT;
    if (!weft__io_g()) {
        for (;;) {
            int64_t left = deadline_ns < 0 ? -1 : deadline_ns - weft_now();
            if (deadline_ns >= 0 && left <= 0)
                return ETIMEDOUT;
            n = weft__real(poll)(&p, 1, left < 0 ? -1 : (int)((left + 999999) / 1000000));
            if (n > 0)
                return p.revents & POLLNVAL ? EBADF : 0;
            if (n < 0 && WEFT_ERRNO != EINTR)
                return WEFT_ERRNO;
        }
    }
    weft__fd *f = weft__fd_get(fd);
    if (!f)
        return WEFT_ERRNO;
    int e = weft__fd_wait(f, p.events, deadline_ns);
    return e == WEFT__EXPIRED ? ETIMEDOUT : e;
}

/* No fd to wait on (poll(NULL, 0, ms), the sleep idiom): sleeps until
 * deadline (< 0: for ever). WEFT__EXPIRED once it passed, or why not. */
static int sleep_until(int64_t deadline)
{
    int e = weft_sleep(deadline < 0 ? INT64_MAX / 4 : deadline - weft_now());
    return e ? e : WEFT__EXPIRED;
}

/* Parks until one of fds may be ready: 0, WEFT__EXPIRED when the poll's
 * own deadline passed, or an error (ETIMEDOUT: the scope's deadline). */
static int park_on_fds(struct pollfd *fds, nfds_t n, int64_t deadline)
{
    weft__fd *on_stack[POLL_ON_STACK], **fs = on_stack;
    short ev_stack[POLL_ON_STACK], *ev = ev_stack;
    if (n > POLL_ON_STACK) {
        fs = weft__malloc(n * sizeof *fs);
        ev = weft__malloc(n * sizeof *ev);
        if (!fs || !ev) {
            free(fs);
            free(ev);
            return ENOMEM;
        }
    }
    unsigned k = 0;
    int e = 0;
    for (nfds_t i = 0; i < n && !e; i++) {
        weft__fd *f = fds[i].fd >= 0 ? weft__fd_get(fds[i].fd) : NULL;
        short want = fds[i].events & (POLLIN | POLLOUT | POLLPRI);
        if (!f && fds[i].fd >= 0 && WEFT_ERRNO == ENOMEM)
            e = ENOMEM; /* skipped, its readiness would go unseen */
        if (!f || !want)
            continue;
        fs[k] = f;
        ev[k++] = (short)((want & POLLPRI) ? (want | POLLIN) & ~POLLPRI : want);
    }
    if (!e)
        e = k ? weft__fd_wait_many(fs, ev, k, deadline) : sleep_until(deadline);
    if (fs != on_stack) {
        free(fs);
        free(ev);
    }
    return e;
}

int weft_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
    if (!weft__io_g())
        return weft__real(poll)(fds, nfds, timeout_ms);
    int saved = WEFT_ERRNO;
    int n = weft__real(poll)(fds, nfds, 0);
    if (n != 0 || timeout_ms == 0)
        return n;
    int64_t deadline = timeout_ms < 0 ? -1
                                      : weft_now() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int e = park_on_fds(fds, nfds, deadline);
        if (e && e != WEFT__EXPIRED) {
            WEFT_ERRNO = e;
            return -1;
        }
        n = weft__real(poll)(fds, nfds, 0);
        if (n != 0 || e == WEFT__EXPIRED) {
            if (n >= 0)
                WEFT_ERRNO = saved;
            return n;
        }
    }
}

int weft_close(int fd)
{
    weft__fd_forget(fd);
    return weft__real(close)(fd);
}

int weft_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *); /* as libc reads it: int or pointer */
    va_end(ap);
    weft__fd *f = weft__fd_peek(fd);
    uint32_t fl = f ? fd_flags(f) : 0;
    switch (cmd) {
    case F_GETFL: {
        int r = weft__real(fcntl)(fd, F_GETFL);
        if (r >= 0 && (fl & WEFT__FD_NB_OURS))
            r &= ~O_NONBLOCK;
        return r;
    }
    case F_SETFL: {
        int want = (int)(intptr_t)arg;
        bool keep_nb = (fl & WEFT__FD_KNOWN) && !(want & O_NONBLOCK) &&
                       !(fl & (WEFT__FD_FILE | WEFT__FD_STDIO));
        int r = weft__real(fcntl)(fd, F_SETFL, keep_nb ? want | O_NONBLOCK : want);
        if (r == 0)
            weft__fd_set_user_nonblock(fd, want & O_NONBLOCK);
        return r;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int r = weft__real(fcntl)(fd, cmd, arg);
        if (r >= 0)
            weft__fd_copy(fd, r);
        return r;
    }
    default:
        return weft__real(fcntl)(fd, cmd, arg);
    }
}
