/* SPDX-License-Identifier: MIT */
/*
 * libc.c — libc's blocking entry points, defined by libweft so that code
 * it never compiled parks virtual threads instead of blocking carriers.
 *
 * A program linked with -lweft (libweft.so or libweft.a), and every
 * shared library it loads, calls these instead of libc's: they are
 * exported unversioned (src/weft.map). Each forwards to its weft_ twin,
 * which on an OS thread is the libc call itself (plus the blocking
 * behaviour the program expects on fds weft switched to non-blocking
 * underneath). A call made from another shared object binds the thread
 * to its carrier while it lasts (sched/bind.c). WEFT_HOOKS=0 in the
 * environment, read when the library loads, makes every hook the plain
 * libc call.
 *
 * The fortified variants (__read_chk and friends) that _FORTIFY_SOURCE
 * builds call are hooked too: Debian builds its libraries that way.
 * Sleeps park for the requested time; cancellation ends them early with
 * WEFT_ERRNO ECANCELED or ETIMEDOUT. getaddrinfo runs on the offload pool.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/fault.h"
#include "io/io.h"

#define HOOK __attribute__((visibility("default")))
/* A hook that a fully static link may have to give up: libc.a defines
 * getaddrinfo in one member with freeaddrinfo, and ppoll with __ppoll,
 * all strong. A program that calls freeaddrinfo (libweft does) links that
 * member, whose getaddrinfo would clash with a strong one of ours:
 * weak, ours yields, and the program gets libc's, which blocks its
 * carrier. In a dynamic program weakness changes nothing: the dynamic
 * linker takes the first definition it finds, weak or not. */
#define HOOK_YIELDING HOOK __attribute__((weak))

static inline bool off(void)
{
    return !weft__hooks_on();
}

/* The runtime's start calls this (runtime.c) so that a program linked with
 * the static library always gets this file, and so every hook. Otherwise
 * the linker takes it only if the program itself names a hooked function
 * that nothing earlier on its link line defines: a sanitizer runtime (TSan
 * defines read, nanosleep, poll ...) left such programs without hooks, and
 * a program whose blocking calls are all made by a shared library (libcurl)
 * would depend on the runtime happening to call one. */
void weft__io_hooks_linked(void)
{
}

/* Parks only on virtual threads, and only while hooks are on. */
static inline bool parks(void)
{
    return !off() && weft__io_g();
}

/* A hooked call that may park. Made from foreign code (io/caller.c), it
 * binds the thread to its carrier for the call's length (sched/bind.c).
 * A write (write_kind) is never batched in the carrier's ring: a write
 * that could complete at once must not become a point where the carrier's
 * other threads run, in code that did not expect one (io/poller.c). */
typedef struct hook_call {
    weft_thread *g;       /* NULL: not a virtual thread */
    weft_thread *bound;   /* for weft__foreign_leave */
    bool write_kind;
} hook_call;

static inline hook_call hook_enter(const void *ra, bool write_kind)
{
    hook_call c = {weft__g(), NULL, write_kind};
    if (!c.g)
        return c;
    if (write_kind)
        c.g->unbatched++;
    if (weft__caller_foreign(ra))
        c.bound = weft__foreign_enter();
    return c;
}

static inline void hook_leave(hook_call c)
{
    if (!c.g)
        return;
    if (c.write_kind)
        c.g->unbatched--;
    weft__foreign_leave(c.bound);
}

/* Evaluates call (a weft_ twin) as a hooked call: see hook_enter. errno
 * is the call's: hook_leave touches none. */
#define HOOKED(write_kind, call)                                           \
    ({                                                                     \
        hook_call hc_ = hook_enter(__builtin_return_address(0), write_kind); \
        __typeof__(call) hr_ = (call);                                     \
        hook_leave(hc_);                                                   \
        hr_;                                                               \
    })
/* HOOKED for fn(g, args...), an internal twin that takes the calling
 * thread hook_enter looked up, rather than look it up again. */
#define HOOKED_G(write_kind, fn, ...)                                      \
    ({                                                                     \
        hook_call hc_ = hook_enter(__builtin_return_address(0), write_kind); \
        __typeof__(fn(hc_.g, __VA_ARGS__)) hr_ = fn(hc_.g, __VA_ARGS__);   \
        hook_leave(hc_);                                                   \
        hr_;                                                               \
    })
#define RD false
#define WR true

HOOK ssize_t read(int fd, void *buf, size_t n)
{
    return off() ? weft__real(read)(fd, buf, n)
                 : HOOKED_G(RD, weft__read, fd, buf, n);
}

HOOK ssize_t write(int fd, const void *buf, size_t n)
{
    return off() ? weft__real(write)(fd, buf, n)
                 : HOOKED(WR, weft_write(fd, buf, n));
}

HOOK ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    return off() ? weft__real(readv)(fd, iov, cnt)
                 : HOOKED(RD, weft_readv(fd, iov, cnt));
}

HOOK ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    return off() ? weft__real(writev)(fd, iov, cnt)
                 : HOOKED(WR, weft_writev(fd, iov, cnt));
}

HOOK ssize_t pread(int fd, void *buf, size_t n, off_t off_)
{
    return off() ? weft__real(pread)(fd, buf, n, off_)
                 : HOOKED(RD, weft_pread(fd, buf, n, off_));
}

HOOK ssize_t pwrite(int fd, const void *buf, size_t n, off_t off_)
{
    return off() ? weft__real(pwrite)(fd, buf, n, off_)
                 : HOOKED(WR, weft_pwrite(fd, buf, n, off_));
}

HOOK ssize_t pread64(int fd, void *buf, size_t n, off_t off_)
{
    return HOOKED(RD, pread(fd, buf, n, off_));
}

HOOK ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off_)
{
    return HOOKED(WR, pwrite(fd, buf, n, off_));
}

HOOK ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return off() ? weft__real(recv)(fd, buf, n, flags)
                 : HOOKED(RD, weft_recv(fd, buf, n, flags));
}

HOOK ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    return off() ? weft__real(send)(fd, buf, n, flags)
                 : HOOKED(WR, weft_send(fd, buf, n, flags));
}

HOOK ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
                      struct sockaddr *from, socklen_t *len)
{
    return off() ? weft__real(recvfrom)(fd, buf, n, flags, from, len)
                 : HOOKED(RD, weft_recvfrom(fd, buf, n, flags, from, len));
}

HOOK ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                    const struct sockaddr *to, socklen_t len)
{
    return off() ? weft__real(sendto)(fd, buf, n, flags, to, len)
                 : HOOKED(WR, weft_sendto(fd, buf, n, flags, to, len));
}

HOOK ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    return off() ? weft__real(recvmsg)(fd, msg, flags)
                 : HOOKED(RD, weft_recvmsg(fd, msg, flags));
}

HOOK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return off() ? weft__real(sendmsg)(fd, msg, flags)
                 : HOOKED(WR, weft_sendmsg(fd, msg, flags));
}

HOOK int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    return off() ? weft__real(accept)(fd, addr, len)
                 : HOOKED(RD, weft_accept(fd, addr, len));
}

HOOK int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return off() ? weft__real(accept4)(fd, addr, len, flags)
                 : HOOKED(RD, weft_accept4(fd, addr, len, flags));
}

HOOK int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return off() ? weft__real(connect)(fd, addr, len)
                 : HOOKED(RD, weft_connect(fd, addr, len));
}

HOOK int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    return off() ? weft__real(poll)(fds, n, timeout)
                 : HOOKED(RD, weft_poll(fds, n, timeout));
}

/* "For ever" in nanoseconds: far enough, and weft_now() + FOREVER_NS does
 * not overflow. */
#define FOREVER_NS (INT64_MAX / 4)

/* The nanoseconds in a valid ts, saturated at FOREVER_NS: programs write
 * {LONG_MAX, 0} for "for ever", which overflows a plain product. */
static int64_t ts_ns(const struct timespec *ts)
{
    if (ts->tv_sec >= FOREVER_NS / 1000000000)
        return FOREVER_NS;
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

HOOK_YIELDING int ppoll(struct pollfd *fds, nfds_t n,
                        const struct timespec *ts, const sigset_t *mask)
{
    /* A signal mask cannot be swapped in for a virtual thread alone. */
    if (!parks() || mask || (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 ||
                                    ts->tv_nsec >= 1000000000)))
        return weft__real(ppoll)(fds, n, ts, mask);
    int ms = -1;
    if (ts) {
        int64_t t = (ts_ns(ts) + 999999) / 1000000;
        ms = t > INT32_MAX ? INT32_MAX : (int)t;
    }
    return HOOKED(RD, weft_poll(fds, n, ms));
}

HOOK int close(int fd)
{
    return off() ? weft__real(close)(fd) : HOOKED(RD, weft_close(fd));
}

HOOK int fclose(FILE *fp)
{
    if (!off() && fp) {
        int fd = fileno(fp);
        if (fd >= 0)
            weft__fd_forget(fd);
    }
    return weft__real(fclose)(fp);
}

/* A duplicate shares the file, O_NONBLOCK included: it must share weft's
 * record of it too, or a socket weft made non-blocking underneath would
 * look non-blocking by the program's choice on the copy. */
HOOK int dup(int fd)
{
    int r = weft__real(dup)(fd);
    if (r >= 0 && !off())
        weft__fd_copy(fd, r);
    return r;
}

HOOK int dup2(int from, int to)
{
    int r = weft__real(dup2)(from, to);
    if (r >= 0 && !off() && from != to)
        weft__fd_copy(from, to);
    return r;
}

HOOK int dup3(int from, int to, int flags)
{
    int r = weft__real(dup3)(from, to, flags);
    if (r >= 0 && !off())
        weft__fd_copy(from, to);
    return r;
}

static int fcntl_hook(int fd, int cmd, va_list ap)
{
    void *arg = va_arg(ap, void *);
    return off() ? weft__real(fcntl)(fd, cmd, arg) : weft_fcntl(fd, cmd, arg);
}

HOOK int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int r = fcntl_hook(fd, cmd, ap);
    va_end(ap);
    return r;
}

HOOK int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int r = fcntl_hook(fd, cmd, ap);
    va_end(ap);
    return r;
}

HOOK int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (off() || req != FIONBIO || !arg)
        return weft__real(ioctl)(fd, req, arg);
    /* Blocking mode set this way is tracked like F_SETFL's: weft keeps
     * an fd it waits on non-blocking underneath. */
    int on = *(const int *)arg;
    weft__fd *f = weft__fd_peek(fd);
    uint32_t fl = f ? atomic_load(&f->flags) : 0;
    bool keep = !on && (fl & WEFT__FD_KNOWN) &&
                !(fl & (WEFT__FD_FILE | WEFT__FD_STDIO));
    int one = 1;
    int r = weft__real(ioctl)(fd, req, keep ? &one : arg);
    if (r == 0)
        weft__fd_set_user_nonblock(fd, on);
    return r;
}

HOOK int setsockopt(int fd, int level, int name, const void *val,
                    socklen_t len)
{
    int r = weft__real(setsockopt)(fd, level, name, val, len);
    if (r == 0 && level == SOL_SOCKET &&
        (name == SO_RCVTIMEO || name == SO_SNDTIMEO) &&
        len >= sizeof(struct timeval)) {
        const struct timeval *tv = val;
        weft__fd_set_timeout(fd, name, (int64_t)tv->tv_sec * 1000000000 +
                                           (int64_t)tv->tv_usec * 1000);
    }
    return r;
}

HOOK int fsync(int fd)
{
    return off() ? weft__real(fsync)(fd) : HOOKED(RD, weft_fsync(fd));
}

/* ---------------------------------------------------------------- sleeps */

/* Sleeps ns on a virtual thread; on early end, *left gets what remains. */
static int sleep_parked(int64_t ns, int64_t *left)
{
    int64_t end = weft_now() + ns;
    int e = weft_sleep(ns);
    *left = e ? end - weft_now() : 0;
    if (*left < 0)
        *left = 0;
    return e;
}

HOOK int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (!parks() || !req || req->tv_nsec < 0 || req->tv_nsec >= 1000000000 ||
        req->tv_sec < 0)
        return weft__real(nanosleep)(req, rem);
    int64_t left;
    int e = HOOKED(RD, sleep_parked(ts_ns(req), &left));
    if (!e)
        return 0;
    if (rem)
        *rem = (struct timespec){left / 1000000000, left % 1000000000};
    WEFT_ERRNO = e;
    return -1;
}

HOOK int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                         struct timespec *rem)
{
    if (!parks() || !req || req->tv_nsec < 0 || req->tv_nsec >= 1000000000 ||
        (clk != CLOCK_MONOTONIC && clk != CLOCK_REALTIME &&
         clk != CLOCK_BOOTTIME))
        return weft__real(clock_nanosleep)(clk, flags, req, rem);
    int64_t ns = ts_ns(req);
    if (flags & TIMER_ABSTIME) {
        struct timespec now;
        clock_gettime(clk, &now);
        ns -= ts_ns(&now);
        if (ns <= 0)
            return 0;
    }
    int64_t left;
    int e = HOOKED(RD, sleep_parked(ns, &left));
    if (e && rem && !(flags & TIMER_ABSTIME))
        *rem = (struct timespec){left / 1000000000, left % 1000000000};
    return e;
}

HOOK int usleep(useconds_t us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    return HOOKED(RD, nanosleep(&ts, NULL));
}

HOOK unsigned sleep(unsigned s)
{
    struct timespec ts = {s, 0}, rem = {0, 0};
    if (HOOKED(RD, nanosleep(&ts, &rem)) == 0)
        return 0;
    return (unsigned)rem.tv_sec + (rem.tv_nsec > 0);
}

/* ----------------------------------------------------------- getaddrinfo */

typedef struct gai_job {
    char *node, *service;
    struct addrinfo hints;
    bool has_hints;
    struct addrinfo *res;
    int rc, err;
} gai_job;

static int run_gai(void *arg)
{
    gai_job *j = arg;
    j->rc = weft__real(getaddrinfo)(j->node, j->service,
                                   j->has_hints ? &j->hints : NULL, &j->res);
    j->err = WEFT_ERRNO;
    return 0;
}

static void drop_gai(void *arg)
{
    gai_job *j = arg;
    if (j->res)
        freeaddrinfo(j->res);
    free(j->node);
    free(j->service);
    free(j);
}

HOOK_YIELDING int getaddrinfo(const char *node, const char *service,
                              const struct addrinfo *hints,
                              struct addrinfo **res)
{
    if (!parks())
        return weft__real(getaddrinfo)(node, service, hints, res);
    gai_job *j = weft__calloc(1, sizeof *j);
    if (!j)
        return EAI_MEMORY;
    j->node = node ? weft__strdup(node) : NULL;
    j->service = service ? weft__strdup(service) : NULL;
    if ((node && !j->node) || (service && !j->service)) {
        drop_gai(j);
        return EAI_MEMORY;
    }
    if (hints) {
        j->hints = *hints;
        j->has_hints = true;
    }
    bool done;
    int r = HOOKED(RD, weft__offload_owned(run_gai, j, drop_gai, &done));
    if (!done) {
        WEFT_ERRNO = r;
        return EAI_SYSTEM;
    }
    int rc = j->rc;
    *res = j->res;
    j->res = NULL;
    if (rc == EAI_SYSTEM)
        WEFT_ERRNO = j->err;
    drop_gai(j);
    return rc;
}

/* ---------------------------------------------------- fortified variants */

HOOK ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        abort();
    return HOOKED(RD, read(fd, buf, n));
}

HOOK ssize_t __pread_chk(int fd, void *buf, size_t n, off_t o, size_t buflen)
{
    if (n > buflen)
        abort();
    return HOOKED(RD, pread(fd, buf, n, o));
}

HOOK ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t o, size_t buflen)
{
    return HOOKED(RD, __pread_chk(fd, buf, n, o, buflen));
}

HOOK ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen)
        abort();
    return HOOKED(RD, recv(fd, buf, n, flags));
}

HOOK ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
                            int flags, struct sockaddr *from, socklen_t *len)
{
    if (n > buflen)
        abort();
    return HOOKED(RD, recvfrom(fd, buf, n, flags, from, len));
}

HOOK int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        abort();
    return HOOKED(RD, poll(fds, n, timeout));
}
