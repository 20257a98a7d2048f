/*
 * real.c — fills the table of the C library's functions (real.h).
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

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

/* Idempotent: two threads that race here store the same values. */
void weft__real_resolve(void)
{
    bind_io();
    bind_pthread();
    __atomic_store_n(&weft__real_table.complete, (void *)1,
                     __ATOMIC_RELEASE);
}

__attribute__((constructor)) static void resolve_at_load(void)
{
    const char *v = getenv("WEFT_HOOKS");
    weft__real_hooks_off = v && !strcmp(v, "0");
    weft__real_ready();
}
