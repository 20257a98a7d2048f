/* SPDX-License-Identifier: MIT */
/*
 * real_static.c — the C library's functions for a fully static executable.
 *
 * A dynamic program finds the C library's read() behind libweft's with
 * dlsym(RTLD_NEXT) (real.c). A static one (cc -static) has no dynamic
 * symbol table: dlsym finds nothing, and the only read() in it is
 * libweft's, which won over libc.a's weak one. glibc defines each of
 * those weak public names as an alias of its own entry point
 * (read = __libc_read, pthread_mutex_lock = ___pthread_mutex_lock): this
 * table names those, so the hooks reach glibc as they do through dlsym.
 *
 * Invariants. This file is built into libweft.a alone, and linked only
 * into a program that asks for it with -Wl,-u,weft_static_libc: its
 * references name glibc's internal symbols, which libc.a defines and
 * libc.so does not export, so a dynamic link that took it would fail.
 * real.c refers to the table weakly and uses it when it is linked in.
 * The names are glibc 2.34's and later (pthread moved into libc).
 *
 * Three functions go to the kernel directly: libc.a defines accept4 and
 * fsync under their public names only, and ppoll in the same member as
 * __ppoll, so naming them here would bring in a second definition of a
 * hooked name. getaddrinfo has none: libc.a's own, which libweft's weak
 * one yields to, is the program's (libc.c). The C++ static guards have
 * none either: a fully static C++ program cannot reach libstdc++'s
 * behind libweft's (locks.c stops it with a message).
 */
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/real.h"

#define GLIBC(field, symbol) \
    extern __typeof__(*((struct weft__real *)0)->field) symbol

GLIBC(read, __libc_read);
GLIBC(write, __libc_write);
GLIBC(readv, __readv);
GLIBC(writev, __writev);
GLIBC(pread, __libc_pread);
GLIBC(pwrite, __libc_pwrite);
GLIBC(recv, __libc_recv);
GLIBC(send, __libc_send);
GLIBC(recvfrom, __libc_recvfrom);
GLIBC(sendto, __libc_sendto);
GLIBC(recvmsg, __libc_recvmsg);
GLIBC(sendmsg, __libc_sendmsg);
GLIBC(accept, __libc_accept);
GLIBC(connect, __libc_connect);
GLIBC(poll, __poll);
GLIBC(select, __select);
GLIBC(close, __close);
GLIBC(fcntl, __libc_fcntl64);
GLIBC(ioctl, __ioctl);
GLIBC(setsockopt, __setsockopt);
GLIBC(dup, __dup);
GLIBC(dup2, __dup2);
GLIBC(dup3, __dup3);
GLIBC(fclose, _IO_new_fclose);
GLIBC(nanosleep, __nanosleep);
GLIBC(clock_nanosleep, __clock_nanosleep);
GLIBC(sigaction, __sigaction);
GLIBC(pthread_mutex_lock, ___pthread_mutex_lock);
GLIBC(pthread_mutex_trylock, ___pthread_mutex_trylock);
GLIBC(pthread_mutex_timedlock, ___pthread_mutex_timedlock);
GLIBC(pthread_mutex_clocklock, ___pthread_mutex_clocklock);
GLIBC(pthread_mutex_unlock, ___pthread_mutex_unlock);
GLIBC(pthread_rwlock_rdlock, ___pthread_rwlock_rdlock);
GLIBC(pthread_rwlock_wrlock, ___pthread_rwlock_wrlock);
GLIBC(pthread_rwlock_tryrdlock, ___pthread_rwlock_tryrdlock);
GLIBC(pthread_rwlock_trywrlock, ___pthread_rwlock_trywrlock);
GLIBC(pthread_rwlock_timedrdlock, ___pthread_rwlock_timedrdlock);
GLIBC(pthread_rwlock_timedwrlock, ___pthread_rwlock_timedwrlock);
GLIBC(pthread_rwlock_unlock, ___pthread_rwlock_unlock);
GLIBC(pthread_spin_lock, __pthread_spin_lock);
GLIBC(pthread_spin_trylock, __pthread_spin_trylock);
GLIBC(pthread_spin_unlock, __pthread_spin_unlock);
GLIBC(flockfile, __flockfile);
GLIBC(ftrylockfile, __ftrylockfile);
GLIBC(funlockfile, __funlockfile);
GLIBC(pthread_once, ___pthread_once);
GLIBC(call_once, __call_once);
GLIBC(pthread_cond_wait, ___pthread_cond_wait);
GLIBC(pthread_cond_timedwait, ___pthread_cond_timedwait);
GLIBC(pthread_cond_clockwait, ___pthread_cond_clockwait);
GLIBC(pthread_cond_signal, ___pthread_cond_signal);
GLIBC(pthread_cond_broadcast, ___pthread_cond_broadcast);
GLIBC(pthread_key_create, ___pthread_key_create);
GLIBC(pthread_key_delete, ___pthread_key_delete);
GLIBC(pthread_getspecific, ___pthread_getspecific);
GLIBC(pthread_setspecific, ___pthread_setspecific);

static int sys_accept4(int fd, struct sockaddr *addr, socklen_t *len,
                       int flags)
{
    return (int)syscall(SYS_accept4, fd, addr, len, flags);
}

static int sys_fsync(int fd)
{
    return (int)syscall(SYS_fsync, fd);
}

/* The kernel writes the time left back: into a copy, as glibc does. */
static int sys_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                     const sigset_t *mask)
{
    struct timespec left = ts ? *ts : (struct timespec){0, 0};
    return (int)syscall(SYS_ppoll, fds, n, ts ? &left : NULL, mask,
                        (size_t)(_NSIG / 8));
}

const struct weft__real weft_static_libc = {
    .read = __libc_read, .write = __libc_write,
    .readv = __readv, .writev = __writev,
    .pread = __libc_pread, .pwrite = __libc_pwrite,
    .recv = __libc_recv, .send = __libc_send,
    .recvfrom = __libc_recvfrom, .sendto = __libc_sendto,
    .recvmsg = __libc_recvmsg, .sendmsg = __libc_sendmsg,
    .accept = __libc_accept, .accept4 = sys_accept4,
    .connect = __libc_connect, .poll = __poll, .ppoll = sys_ppoll,
    .select = __select, .close = __close, .fsync = sys_fsync,
    .fcntl = __libc_fcntl64, .ioctl = __ioctl, .setsockopt = __setsockopt,
    .dup = __dup, .dup2 = __dup2, .dup3 = __dup3, .fclose = _IO_new_fclose,
    .nanosleep = __nanosleep, .clock_nanosleep = __clock_nanosleep,
    .sigaction = __sigaction,
    .pthread_mutex_lock = ___pthread_mutex_lock,
    .pthread_mutex_trylock = ___pthread_mutex_trylock,
    .pthread_mutex_timedlock = ___pthread_mutex_timedlock,
    .pthread_mutex_clocklock = ___pthread_mutex_clocklock,
    .pthread_mutex_unlock = ___pthread_mutex_unlock,
    .pthread_rwlock_rdlock = ___pthread_rwlock_rdlock,
    .pthread_rwlock_wrlock = ___pthread_rwlock_wrlock,
    .pthread_rwlock_tryrdlock = ___pthread_rwlock_tryrdlock,
    .pthread_rwlock_trywrlock = ___pthread_rwlock_trywrlock,
    .pthread_rwlock_timedrdlock = ___pthread_rwlock_timedrdlock,
    .pthread_rwlock_timedwrlock = ___pthread_rwlock_timedwrlock,
    .pthread_rwlock_unlock = ___pthread_rwlock_unlock,
    .pthread_spin_lock = __pthread_spin_lock,
    .pthread_spin_trylock = __pthread_spin_trylock,
    .pthread_spin_unlock = __pthread_spin_unlock,
    .flockfile = __flockfile, .ftrylockfile = __ftrylockfile,
    .funlockfile = __funlockfile,
    .pthread_once = ___pthread_once, .call_once = __call_once,
    .pthread_cond_wait = ___pthread_cond_wait,
    .pthread_cond_timedwait = ___pthread_cond_timedwait,
    .pthread_cond_clockwait = ___pthread_cond_clockwait,
    .pthread_cond_signal = ___pthread_cond_signal,
    .pthread_cond_broadcast = ___pthread_cond_broadcast,
    .pthread_key_create = ___pthread_key_create,
    .pthread_key_delete = ___pthread_key_delete,
    .pthread_getspecific = ___pthread_getspecific,
    .pthread_setspecific = ___pthread_setspecific,
};
