/* SPDX-License-Identifier: MIT */
/*
 * epoll.c — the epoll backend of the poller.
 *
 * Each watched fd is added once, edge-triggered, for input and output;
 * the event's data carries the fd and its life's seq (io.h). Kicks are
 * writes to an eventfd that is itself watched edge-triggered: every write
 * is an edge, so it is never read, and a kick that lands before the
 * waiter blocks is still reported when it does. The event buffer belongs
 * to the poller's owner (poller.c). No file operations: weft_pread and
 * friends use the offload pool under this backend.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/fault.h"
#include "io/io.h"

#define KICK_TAG UINT64_MAX
#define MAX_EVENTS 256

static weft__port port;
static int epfd = -1, kickfd = -1;
static struct epoll_event events[MAX_EVENTS];
static int nevents;

static int ep_init(uint32_t max_carriers)
{
    epfd = weft__epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return WEFT_ERRNO;
    kickfd = weft__eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = KICK_TAG};
    if (kickfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, kickfd, &ev)) {
        int err = WEFT_ERRNO;
        if (kickfd >= 0)
            weft__real(close)(kickfd);
        weft__real(close)(epfd);
        epfd = kickfd = -1;
        return err;
    }
    return 0;
}

/* Also the forked child's: closing its copies of the fds leaves the
 * parent's epoll instance, and what it watches, as they are. */
static void ep_fini(void)
{
    weft__real(close)(kickfd);
    weft__real(close)(epfd);
    epfd = kickfd = -1;
    nevents = 0;
}

static int ep_arm(weft__port *pt, int fd, uint32_t seq)
{
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = (uint64_t)seq << 32 | (uint32_t)fd,
    };
    if (!epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev))
        return 0;
    /* Still registered from a life that ended without weft hearing of it
     * (closed behind its back while a dup kept the file open). */
    if (WEFT_ERRNO == EEXIST && !epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev))
        return 0;
    return WEFT_ERRNO;
}

static void ep_disarm(weft__port *pt, int fd, uint32_t seq)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

static int ep_fetch(weft__port *pt, int64_t until)
{
    struct timespec ts, *tsp = NULL;
    if (until >= 0) {
        int64_t left = until ? until - weft_now() : 0;
        if (left < 0)
            left = 0;
        ts.tv_sec = left / 1000000000;
        ts.tv_nsec = left % 1000000000;
        tsp = &ts;
    }
    static _Atomic bool no_pwait2; /* kernels before 5.11, or Valgrind */
    int n = -1;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed) &&
        (n = epoll_pwait2(epfd, events, MAX_EVENTS, tsp, NULL)) < 0 &&
        WEFT_ERRNO == ENOSYS)
        atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
    if (atomic_load_explicit(&no_pwait2, memory_order_relaxed))
        n = epoll_wait(epfd, events, MAX_EVENTS, /* ms, rounded up */
                       !tsp ? -1 : (int)((ts.tv_sec * 1000000000 +
                                          ts.tv_nsec + 999999) / 1000000));
    nevents = n > 0 ? n : 0;
    return nevents;
}

static void ep_dispatch(weft__port *pt)
{
    for (int i = 0; i < nevents; i++) {
        uint64_t d = events[i].data.u64;
        if (d == KICK_TAG)
            continue;
        weft__fd_event((int)(uint32_t)d, (uint32_t)(d >> 32),
                       events[i].events);
    }
    nevents = 0;
}

static void ep_kick(weft__port *pt)
{
    weft__kick_eventfd(kickfd);
}

/* One epoll instance serves every carrier; only the timer waiter blocks
 * in it (sched/idle.c). */
static weft__port *ep_port_new(void)
{
    return &port;
}

static weft__port *ep_port_at(uint32_t i)
{
    return i == 0 ? &port : NULL;
}

const weft__backend weft__epoll_backend = {
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .forked = ep_fini,
    .port_new = ep_port_new,
    .port_at = ep_port_at,
    .per_carrier = false,
    .arm = ep_arm,
    .disarm = ep_disarm,
    .fetch = ep_fetch,
    .dispatch = ep_dispatch,
    .kick = ep_kick,
};
