/* SPDX-License-Identifier: MIT */
/*
 * fd.c — weft's record of each fd: what kind of file it is, whether weft
 * made it non-blocking underneath the program, its poller registration,
 * latched readiness edges and the virtual threads waiting on it.
 *
 * Records live in a two-level table indexed by fd number, allocated a
 * chunk at a time and never freed, so a pointer to a record stays valid
 * for the life of the process (the poller may deliver an event for a
 * record at any time). A record describes one *life* of its fd number:
 * closing the fd through weft (weft_close, or close() while hooked) bumps
 * seq, wakes the waiters with EBADF and drops the classification, so the
 * next open file with that number is classified afresh.
 *
 * Invariants, under the record's lock:
 *   - a waiter in waiters has an unclaimed or just-claimed wait;
 *   - ready holds only edges no waiter took (see io.h);
 *   - armed == seq + 1 exactly while the poller watches this life.
 * Waking (weft__wake) is done holding the record's lock, which sits at the
 * level of object locks in sched.h's lock order.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "base/fault.h"
#include "io/io.h"

#define CHUNK_SHIFT 10
#define CHUNK (1u << CHUNK_SHIFT)
#define NCHUNKS 1024u               /* fds up to 2^20 */

static weft__fd *_Atomic chunks[NCHUNKS];

static weft__fd *chunk_for(unsigned fd, bool create)
{
    unsigned c = fd >> CHUNK_SHIFT;
    if (c >= NCHUNKS)
        return NULL;
    weft__fd *ch = atomic_load_explicit(&chunks[c], memory_order_acquire);
    if (ch || !create)
        return ch;
    weft__fd *fresh = weft__calloc(CHUNK, sizeof *fresh);
    if (!fresh)
        return NULL;
    for (unsigned i = 0; i < CHUNK; i++) {
        weft__list_init(&fresh[i].waiters);
        fresh[i].fd = (int)(c << CHUNK_SHIFT | i);
    }
    if (atomic_compare_exchange_strong_explicit(&chunks[c], &ch, fresh,
                                                memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    free(fresh); /* another thread installed one first */
    return ch;
}

weft__fd *weft__fd_peek(int fd)
{
    if (fd < 0)
        return NULL;
    weft__fd *ch = chunk_for((unsigned)fd, false);
    return ch ? &ch[fd & (CHUNK - 1)] : NULL;
}

static int64_t timeval_ns(const struct timeval *tv)
{
    return (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000;
}

static void read_socket_timeouts(weft__fd *f)
{
    struct timeval tv;
    socklen_t len = sizeof tv;
    if (!getsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len))
        f->rcvtimeo_ns = timeval_ns(&tv);
    len = sizeof tv;
    if (!getsockopt(f->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len))
        f->sndtimeo_ns = timeval_ns(&tv);
}

static bool is_stream(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    return !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) &&
           type == SOCK_STREAM;
}

/* Holds: f->lock. Learns what f->fd is; makes it non-blocking underneath
 * the program where weft will wait for it in the poller. Fds 0-2 share
 * their file status flags with other processes (a shell, a parent): they
 * are never switched. */
static int classify(weft__fd *f)
{
    struct stat st;
    if (fstat(f->fd, &st))
        return WEFT_ERRNO;
    int fl = weft__real(fcntl)(f->fd, F_GETFL);
    if (fl < 0)
        return WEFT_ERRNO;
    uint32_t flags = WEFT__FD_KNOWN;
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode))
        flags |= WEFT__FD_FILE;
    else if (S_ISSOCK(st.st_mode))
        flags |= WEFT__FD_SOCKET;
    if (S_ISFIFO(st.st_mode) || ((flags & WEFT__FD_SOCKET) && is_stream(f->fd)))
        flags |= WEFT__FD_STREAM;
    f->rcvtimeo_ns = f->sndtimeo_ns = 0;
    if (flags & WEFT__FD_SOCKET)
        read_socket_timeouts(f);
    if (fl & O_NONBLOCK)
        flags |= WEFT__FD_NB_USER;
    else if (f->fd <= 2 && !(flags & WEFT__FD_FILE))
        flags |= WEFT__FD_STDIO;
    else if (!(flags & WEFT__FD_FILE) &&
             !weft__real(fcntl)(f->fd, F_SETFL, fl | O_NONBLOCK))
        flags |= WEFT__FD_NB_OURS;
    else if (!(flags & WEFT__FD_FILE))
        flags |= WEFT__FD_STDIO; /* cannot switch it: block, marked */
    f->ready = 0;
    atomic_store_explicit(&f->flags, flags, memory_order_release);
    return 0;
}

weft__fd *weft__fd_get(int fd)
{
    weft__fd *ch = fd >= 0 ? chunk_for((unsigned)fd, true) : NULL;
    if (!ch) {
        WEFT_ERRNO = fd < 0 ? EBADF : ENOMEM;
        return NULL;
    }
    weft__fd *f = &ch[fd & (CHUNK - 1)];
    if (likely(atomic_load_explicit(&f->flags, memory_order_acquire)))
        return f;
    weft__spin_lock(&f->lock, WEFT__LOCK_FD);
    int err = atomic_load_explicit(&f->flags, memory_order_relaxed)
                  ? 0 : classify(f);
    weft__spin_unlock(&f->lock);
    if (err) {
        WEFT_ERRNO = err;
        return NULL;
    }
    return f;
}

/* Runs on: any thread. Gives the record of a socket weft itself made
 * (accept), without asking the kernel what it is. */
weft__fd *weft__fd_adopt_socket(int fd, bool user_nonblock,
                                const weft__fd *parent)
{
    weft__fd_forget(fd);
    weft__fd *ch = chunk_for((unsigned)fd, true);
    if (!ch)
        return NULL;
    weft__fd *f = &ch[fd & (CHUNK - 1)];
    weft__spin_lock(&f->lock, WEFT__LOCK_FD);
    f->ready = 0;
    /* An accepted socket inherits its listener's time-outs. */
    f->rcvtimeo_ns = parent ? parent->rcvtimeo_ns : 0;
    f->sndtimeo_ns = parent ? parent->sndtimeo_ns : 0;
    atomic_store_explicit(&f->drained, false, memory_order_relaxed);
    atomic_store_explicit(&f->hung_up, false, memory_order_relaxed);
    /* An accepted socket has its listener's type. */
    uint32_t stream = parent ? atomic_load_explicit(&parent->flags,
                                                    memory_order_relaxed) &
                                   WEFT__FD_STREAM
                             : 0;
    atomic_store_explicit(&f->flags,
                          WEFT__FD_KNOWN | WEFT__FD_SOCKET | stream |
                              (user_nonblock ? WEFT__FD_NB_USER
                                             : WEFT__FD_NB_OURS),
                          memory_order_release);
    weft__spin_unlock(&f->lock);
    return f;
}

/* Holds: f->lock. Wakes every waiter with result. */
static void wake_all_locked(weft__fd *f, int result)
{
    while (!weft__list_empty(&f->waiters)) {
        weft__waiter *w = weft__container_of(
            weft__list_pop_front(&f->waiters), weft__waiter, link);
        weft__wake(w, result);
    }
}

void weft__fd_forget(int fd)
{
    weft__fd *f = weft__fd_peek(fd);
    if (!f || !atomic_load_explicit(&f->flags, memory_order_acquire))
        return;
    weft__io_submit_deferred();
    weft__spin_lock(&f->lock, WEFT__LOCK_FD);
    uint32_t seq = atomic_load_explicit(&f->seq, memory_order_relaxed);
    uint32_t armed = atomic_exchange_explicit(&f->armed, 0,
                                              memory_order_relaxed);
    weft__port *port = f->armed_port;
    f->armed_port = NULL;
    /* 30 bits: the io_uring backend packs seq into user_data. */
    atomic_store_explicit(&f->seq, (seq + 1) & 0x3fffffffu,
                          memory_order_release);
    atomic_store_explicit(&f->flags, 0, memory_order_release);
    f->ready = 0;
    atomic_store_explicit(&f->drained, false, memory_order_relaxed);
    atomic_store_explicit(&f->hung_up, false, memory_order_relaxed);
    wake_all_locked(f, EBADF);
    weft__spin_unlock(&f->lock);
    if (armed == seq + 1)
        weft__io_disarm(port, fd, seq);
}

void weft__fd_copy(int from, int to)
{
    weft__fd_forget(to);
    weft__fd *src = weft__fd_peek(from);
    uint32_t fl = src ? atomic_load_explicit(&src->flags,
                                             memory_order_acquire) : 0;
    weft__fd *ch = fl ? chunk_for((unsigned)to, true) : NULL;
    if (!ch)
        return;
    weft__fd *f = &ch[to & (CHUNK - 1)];
    weft__spin_lock(&f->lock, WEFT__LOCK_FD);
    f->rcvtimeo_ns = src->rcvtimeo_ns;
    f->sndtimeo_ns = src->sndtimeo_ns;
    f->ready = 0;
    atomic_store_explicit(&f->drained, false, memory_order_relaxed);
    atomic_store_explicit(&f->hung_up, false, memory_order_relaxed);
    atomic_store_explicit(&f->flags, fl, memory_order_release);
    weft__spin_unlock(&f->lock);
}

void weft__fd_set_user_nonblock(int fd, bool on)
{
    weft__fd *f = weft__fd_peek(fd);
    if (!f)
        return;
    weft__spin_lock(&f->lock, WEFT__LOCK_FD);
    uint32_t fl = atomic_load_explicit(&f->flags, memory_order_relaxed);
    if (fl & WEFT__FD_KNOWN) {
        fl &= ~(WEFT__FD_NB_USER | WEFT__FD_NB_OURS);
        if (on)
            fl |= WEFT__FD_NB_USER;
        else if (!(fl & (WEFT__FD_FILE | WEFT__FD_STDIO)))
            fl |= WEFT__FD_NB_OURS;
        atomic_store_explicit(&f->flags, fl, memory_order_release);
    }
    weft__spin_unlock(&f->lock);
}

void weft__fd_set_timeout(int fd, int optname, int64_t ns)
{
    weft__fd *f = weft__fd_peek(fd);
    if (!f)
        return;
    weft__spin_lock(&f->lock, WEFT__LOCK_FD);
    if (atomic_load_explicit(&f->flags, memory_order_relaxed)) {
        if (optname == SO_RCVTIMEO)
            f->rcvtimeo_ns = ns;
        else
            f->sndtimeo_ns = ns;
    }
    weft__spin_unlock(&f->lock);
}

/* Makes sure the poller watches f's current life. */
static int ensure_armed(weft__fd *f, uint32_t seq)
{
    if (atomic_load_explicit(&f->armed, memory_order_acquire) == seq + 1)
        return 0;
    weft__spin_lock(&f->lock, WEFT__LOCK_FD);
    int err = 0;
    if (atomic_load_explicit(&f->seq, memory_order_relaxed) != seq)
        err = EBADF;
    else if (atomic_load_explicit(&f->armed, memory_order_relaxed) != seq + 1 &&
             !(err = weft__io_arm(f->fd, seq, &f->armed_port)))
        atomic_store_explicit(&f->armed, seq + 1, memory_order_release);
    weft__spin_unlock(&f->lock);
    return err;
}

void weft__fd_event(int fd, uint32_t seq, uint32_t events)
{
    weft__fd *f = weft__fd_peek(fd);
    if (!f)
        return;
    uint32_t ev = events & (POLLIN | POLLOUT);
    if (events & (POLLERR | POLLHUP))
        ev |= POLLIN | POLLOUT;
    if (events & POLLRDHUP)
        ev |= POLLIN;
    weft__spin_lock(&f->lock, WEFT__LOCK_FD);
    if (atomic_load_explicit(&f->seq, memory_order_relaxed) != seq) {
        weft__spin_unlock(&f->lock);
        return;
    }
    if (ev & POLLIN)
        atomic_store_explicit(&f->drained, false, memory_order_relaxed);
    if (events & (POLLERR | POLLHUP | POLLRDHUP))
        atomic_store_explicit(&f->hung_up, true, memory_order_relaxed);
    uint32_t taken = 0;
    weft__list *n = f->waiters.next;
    while (n != &f->waiters) {
        weft__waiter *w = weft__container_of(n, weft__waiter, link);
        n = n->next;
        uint32_t want = *(const short *)w->data & ev;
        if (!want)
            continue;
        weft__list_remove(&w->link);
        if (weft__wake(w, WEFT__CASE + w->index))
            taken |= want;
    }
    f->ready |= ev & ~taken;
    weft__spin_unlock(&f->lock);
}

void weft__fd_note_drained(weft__fd *f)
{
    weft__spin_lock(&f->lock, WEFT__LOCK_FD);
    if (!(f->ready & POLLIN) &&
        !atomic_load_explicit(&f->hung_up, memory_order_relaxed))
        atomic_store_explicit(&f->drained, true, memory_order_relaxed);
    weft__spin_unlock(&f->lock);
}

/* Runs on: the poller, when it stopped watching fd's life seq on its own
 * (an io_uring multishot poll that ended): the next wait re-arms. Waiters
 * are woken to retry, since no edge will come for them until then. */
void weft__fd_disarmed(int fd, uint32_t seq)
{
    weft__fd *f = weft__fd_peek(fd);
    if (!f)
        return;
    uint32_t want = seq + 1;
    atomic_compare_exchange_strong_explicit(&f->armed, &want, 0,
                                            memory_order_acq_rel,
                                            memory_order_relaxed);
    weft__fd_event(fd, seq, POLLIN | POLLOUT);
}

/* Holds: f->lock. Takes a latched edge for events, if there is one. */
static bool take_ready(weft__fd *f, short events)
{
    if (!(f->ready & (uint32_t)events))
        return false;
    f->ready &= ~(uint32_t)events;
    return true;
}

static weft__wait_kind wait_kind_for(short events)
{
    return events == POLLOUT ? WEFT__WAIT_FD_WRITE
         : events == POLLIN  ? WEFT__WAIT_FD_READ
                             : WEFT__WAIT_FD_POLL;
}

static int finish_wait(int r)
{
    atomic_fetch_sub_explicit(&weft__fd_waiters, 1, memory_order_relaxed);
    if (r >= WEFT__CASE && r < WEFT__CASE + 0x10000)
        return 0;
    return r;
}

int weft__fd_wait(weft__fd *f, short events, int64_t deadline)
{
    return weft__fd_wait_many(&f, &events, 1, deadline);
}

/* Holds: nothing. Unlinks w from f if a waker did not. */
static void unlink_waiter(weft__fd *f, weft__waiter *w)
{
    weft__spin_lock(&f->lock, WEFT__LOCK_FD);
    if (weft__list_linked(&w->link))
        weft__list_remove(&w->link);
    weft__spin_unlock(&f->lock);
}

/* Links one waiter (a copy of proto) on f, unless f has an edge latched
 * or was closed. Returns 0 (linked), 1 (ready now) or EBADF. */
static int link_waiter(weft__fd *f, uint32_t seq, weft__waiter *w,
                       const short *events)
{
    weft__spin_lock(&f->lock, WEFT__LOCK_FD);
    int r = 0;
    if (atomic_load_explicit(&f->seq, memory_order_relaxed) != seq)
        r = EBADF;
    else if (take_ready(f, *events))
        r = 1;
    else
        weft__list_push_back(&f->waiters, &w->link);
    weft__spin_unlock(&f->lock);
    return r;
}

int weft__fd_wait_many(weft__fd **fs, const short *events, unsigned n,
                       int64_t deadline)
{
    uint32_t seqs[n];
    for (unsigned i = 0; i < n; i++) {
        seqs[i] = atomic_load_explicit(&fs[i]->seq, memory_order_acquire);
        int err = ensure_armed(fs[i], seqs[i]);
        if (err)
            return err;
    }
    weft__waiter proto, ws[n];
    int r = weft__wait_begin(&proto, WEFT__WAIT_INTERRUPTIBLE,
                             wait_kind_for(n == 1 ? events[0] : 0), fs[0]);
    if (r)
        return r;
    atomic_fetch_add_explicit(&weft__fd_waiters, 1, memory_order_relaxed);
    unsigned linked = 0;
    int early = 0;
    for (; linked < n && !early; linked++) {
        ws[linked] = proto;
        ws[linked].index = linked;
        ws[linked].data = (void *)&events[linked];
        early = link_waiter(fs[linked], seqs[linked], &ws[linked],
                            &events[linked]);
    }
    if (early) {
        linked--; /* the last one was not linked */
        for (unsigned i = 0; i < linked; i++)
            unlink_waiter(fs[i], &ws[i]);
        int a = weft__wait_abort(&proto);
        if (a >= WEFT__CASE) /* an event claimed a linked one first */
            a = 0;
        finish_wait(0);
        return early == 1 ? (a == EBADF ? 0 : a) : EBADF;
    }
    r = weft__wait_block(&proto, NULL, deadline);
    /* The event that ended the wait unlinked its waiter before waking us
     * (weft__fd_event) and does not touch it after the claim: that record
     * needs no lock, which its waker may still hold while it wakes others. */
    for (unsigned i = 0; i < n; i++)
        if (r != WEFT__CASE + (int)i)
            unlink_waiter(fs[i], &ws[i]);
    return finish_wait(r);
}

/* Runs on: a forked child's only thread (fork.c). What a record knows of
 * its file (its kind, the O_NONBLOCK weft set) holds in the child, which
 * shares the file; its waiters were the parent's threads, and its poller
 * registration the parent's poller's (which the child dropped, so an
 * armed record is never disarmed here). Only records with waiters or a
 * held lock are written. */
void weft__fd_forked(void)
{
    for (unsigned c = 0; c < NCHUNKS; c++) {
        weft__fd *ch = atomic_load_explicit(&chunks[c], memory_order_relaxed);
        for (unsigned i = 0; ch && i < CHUNK; i++) {
            weft__spin_reset(&ch[i].lock);
            if (!weft__list_empty(&ch[i].waiters))
                weft__list_init(&ch[i].waiters);
        }
    }
    atomic_store_explicit(&weft__fd_waiters, 0, memory_order_relaxed);
}
