/* SPDX-License-Identifier: MIT */
/*
 * real.h — the C library's own functions behind libweft's hooks.
 *
 * libweft defines read(), close(), pthread_mutex_lock() and the other
 * entry points it interposes (foreign/). The runtime itself, and every hook
 * that passes a call through, reaches the C library's functions here:
 * weft__real(close)(fd) is glibc's close, never the hook, whatever else is
 * linked in. Found with dlsym(RTLD_NEXT), so an interposer between libweft
 * and glibc (a sanitizer's runtime) is honoured.
 *
 * Invariants. The table is filled at load by a constructor, and on first
 * use by whichever thread gets there before it (another library's
 * constructor calling read(), a sanitizer runtime making its pthread keys
 * before any constructor ran). One field is stored last with release
 * order; weft__real() checks it with acquire order, so a caller that sees
 * it sees the whole table. A field may be NULL only where this header says
 * so. Nothing here is a hook: base/ sits below everything else.
 */
#ifndef WEFT_BASE_REAL_H
#define WEFT_BASE_REAL_H

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <threads.h>
#include <time.h>

#include "base/compiler.h"

struct weft__real {
    /* I/O the hooks shadow */
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*pread)(int, void *, size_t, off_t);
    ssize_t (*pwrite)(int, const void *, size_t, off_t);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *,
                        socklen_t *);
    ssize_t (*sendto)(int, const void *, size_t, int,
                      const struct sockaddr *, socklen_t);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*poll)(struct pollfd *, nfds_t, int);
    int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *,
                 const sigset_t *);
    int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    int (*close)(int);
    int (*fsync)(int);
    int (*fcntl)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fclose)(FILE *);
    int (*nanosleep)(const struct timespec *, struct timespec *);
    int (*clock_nanosleep)(clockid_t, int, const struct timespec *,
                           struct timespec *);
    int (*getaddrinfo)(const char *, const char *, const void *, void *);
    int (*sigaction)(int, const struct sigaction *, struct sigaction *);
    /* pthread locks, once and conditions (the pthread_cond_* ones of the
     * GLIBC_2.3.2 ABI, see real.c) */
    int (*pthread_mutex_lock)(pthread_mutex_t *);
    int (*pthread_mutex_trylock)(pthread_mutex_t *);
    int (*pthread_mutex_timedlock)(pthread_mutex_t *,
                                   const struct timespec *);
    int (*pthread_mutex_clocklock)(pthread_mutex_t *, clockid_t,
                                   const struct timespec *);
    int (*pthread_mutex_unlock)(pthread_mutex_t *);
    int (*pthread_rwlock_rdlock)(pthread_rwlock_t *);
    int (*pthread_rwlock_wrlock)(pthread_rwlock_t *);
    int (*pthread_rwlock_tryrdlock)(pthread_rwlock_t *);
    int (*pthread_rwlock_trywrlock)(pthread_rwlock_t *);
    int (*pthread_rwlock_timedrdlock)(pthread_rwlock_t *,
                                      const struct timespec *);
    int (*pthread_rwlock_timedwrlock)(pthread_rwlock_t *,
                                      const struct timespec *);
    int (*pthread_rwlock_unlock)(pthread_rwlock_t *);
    int (*pthread_spin_lock)(pthread_spinlock_t *);
    int (*pthread_spin_trylock)(pthread_spinlock_t *);
    int (*pthread_spin_unlock)(pthread_spinlock_t *);
    void (*flockfile)(FILE *);
    int (*ftrylockfile)(FILE *);
    void (*funlockfile)(FILE *);
    int (*pthread_once)(pthread_once_t *, void (*)(void));
    void (*call_once)(once_flag *, void (*)(void));
    int (*pthread_cond_wait)(pthread_cond_t *, pthread_mutex_t *);
    int (*pthread_cond_timedwait)(pthread_cond_t *, pthread_mutex_t *,
                                  const struct timespec *);
    int (*pthread_cond_clockwait)(pthread_cond_t *, pthread_mutex_t *,
                                  clockid_t, const struct timespec *);
    int (*pthread_cond_signal)(pthread_cond_t *);
    int (*pthread_cond_broadcast)(pthread_cond_t *);
    /* C++ static-initialisation guards: NULL without libstdc++ */
    int (*__cxa_guard_acquire)(int64_t *);
    void (*__cxa_guard_release)(int64_t *);
    void (*__cxa_guard_abort)(int64_t *);
    /* pthread keys */
    int (*pthread_key_create)(pthread_key_t *, void (*)(void *));
    int (*pthread_key_delete)(pthread_key_t);
    void *(*pthread_getspecific)(pthread_key_t);
    int (*pthread_setspecific)(pthread_key_t, const void *);
    /* Stored last (see top of file). */
    void *complete;
};

extern struct weft__real weft__real_table;
void weft__real_resolve(void);

/* The table, filled. Runs on: any thread, at any time after load. */
static inline const struct weft__real *weft__real_ready(void)
{
    if (unlikely(!__atomic_load_n(&weft__real_table.complete,
                                  __ATOMIC_ACQUIRE)))
        weft__real_resolve();
    return &weft__real_table;
}

/* weft__real(name)(args...): the C library's `name`, never a hook. */
#define weft__real(name) (weft__real_ready()->name)

/* Whether the hooks are on: WEFT_HOOKS=0 in the environment at load turns
 * every hook into a plain pass-through to the C library. A hook that runs
 * before libweft's constructor counts them on. */
extern bool weft__real_hooks_off;
static inline bool weft__hooks_on(void)
{
    return !weft__real_hooks_off;
}

#endif
