/* SPDX-License-Identifier: MIT */
/*
 * real.c — fills the table of the C library's functions (real.h).
 *
 * A dynamic program: from dlsym(RTLD_NEXT), the next definition after
 * libweft's (glibc's, or an interposer's). A fully static program: from
 * weft_static_libc (real_static.c), which it links in with
 * -Wl,-u,weft_static_libc; without it dlsym finds nothing, and the first
 * hook called says so and aborts: every call would go to NULL.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/real.h"

struct weft__real weft__real_table;
bool weft__real_hooks_off;

/* pthread_cond_* has two ABIs; glibc's unversioned lookup may give the
 * old one (GLIBC_2.2.5, another struct layout): from glibc, take
 * GLIBC_2.3.2 by name. An interposer between us and glibc (a sanitizer's
 * runtime) is taken as it is: it forwards to the right one itself, and
 * going around it would hide the lock's unlock and relock inside the wait
 * from it. */
static void *cond_fn(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    Dl_info di;
    if (f && dladdr(f, &di) && di.dli_fname &&
        !strstr(di.dli_fname, "libc.so"))
        return f;
    void *v = dlvsym(RTLD_NEXT, name, "GLIBC_2.3.2");
    return v ? v : f;
}

#define BIND(name) \
    (*(void **)&weft__real_table.name = dlsym(RTLD_NEXT, #name))
#define BIND_COND(name) (*(void **)&weft__real_table.name = cond_fn(#name))

static void bind_io(void)
{
    BIND(read); BIND(write); BIND(readv); BIND(writev);
    BIND(pread); BIND(pwrite); BIND(recv); BIND(send);
    BIND(recvfrom); BIND(sendto); BIND(recvmsg); BIND(sendmsg);
    BIND(accept); BIND(accept4); BIND(connect); BIND(poll); BIND(ppoll);
    BIND(select); BIND(close); BIND(fsync); BIND(fcntl); BIND(ioctl);
    BIND(setsockopt); BIND(dup); BIND(dup2); BIND(dup3); BIND(fclose);
    BIND(nanosleep); BIND(clock_nanosleep); BIND(getaddrinfo);
    BIND(sigaction);
}

static void bind_pthread(void)
{
    BIND(pthread_mutex_lock); BIND(pthread_mutex_trylock);
    BIND(pthread_mutex_timedlock); BIND(pthread_mutex_clocklock);
    BIND(pthread_mutex_unlock);
    BIND(pthread_rwlock_rdlock); BIND(pthread_rwlock_wrlock);
    BIND(pthread_rwlock_tryrdlock); BIND(pthread_rwlock_trywrlock);
    BIND(pthread_rwlock_timedrdlock); BIND(pthread_rwlock_timedwrlock);
    BIND(pthread_rwlock_unlock);
    BIND(pthread_spin_lock); BIND(pthread_spin_trylock);
    BIND(pthread_spin_unlock);
    BIND(flockfile); BIND(ftrylockfile); BIND(funlockfile);
    BIND(pthread_once); BIND(call_once);
    BIND_COND(pthread_cond_wait); BIND_COND(pthread_cond_timedwait);
    BIND(pthread_cond_clockwait);
    BIND_COND(pthread_cond_signal); BIND_COND(pthread_cond_broadcast);
    BIND(__cxa_guard_acquire); BIND(__cxa_guard_release);
    BIND(__cxa_guard_abort);
    BIND(pthread_key_create); BIND(pthread_key_delete);
    BIND(pthread_getspecific); BIND(pthread_setspecific);
}

/* Linked into a fully static program only (see the top of the file). */
extern const struct weft__real weft_static_libc __attribute__((weak));

/* Runs before anything else works (a constructor, the first pthread lock
 * the C runtime takes): a raw write, then abort. */
static void no_libc(void)
{
    static const char msg[] =
        "weft: no C library functions behind libweft's hooks: a fully "
        "static program must be linked with -Wl,-u,weft_static_libc "
        "(README: Linking)\n";
    syscall(SYS_write, 2, msg, sizeof msg - 1);
    abort();
}

/* Idempotent: two threads that race here store the same values. */
void weft__real_resolve(void)
{
    if (&weft_static_libc) {
        memcpy(&weft__real_table, &weft_static_libc,
               offsetof(struct weft__real, complete));
    } else {
        bind_io();
        bind_pthread();
        if (!weft__real_table.read)
            no_libc();
    }
    __atomic_store_n(&weft__real_table.complete, (void *)1,
                     __ATOMIC_RELEASE);
}

__attribute__((constructor)) static void resolve_at_load(void)
{
    const char *v = getenv("WEFT_HOOKS");
    weft__real_hooks_off = v && !strcmp(v, "0");
    weft__real_ready();
}
