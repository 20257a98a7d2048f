/*
 * libc.c — the libc functions behind weft's hooks, found with RTLD_NEXT.
 *
 * libweft defines read(), write() and the other blocking entry points
 * (hooks.c); the runtime itself, and every hook off a virtual thread,
 * reaches the real ones through weft__libc. The table is filled by a
 * constructor when the library loads, and again on demand if a hook runs
 * before that (another library's constructor calling read()).
 */
#include <dlfcn.h>

#include "io/io.h"

struct weft__libc weft__libc;

#define BIND(name) \
    (*(void **)&weft__libc.name = dlsym(RTLD_NEXT, #name))

void weft__libc_resolve(void)
{
    if (weft__libc.select) /* the last one bound */
        return;
    BIND(read); BIND(write); BIND(readv); BIND(writev);
    BIND(pread); BIND(pwrite); BIND(recv); BIND(send);
    BIND(recvfrom); BIND(sendto); BIND(recvmsg); BIND(sendmsg);
    BIND(accept); BIND(accept4); BIND(connect); BIND(poll); BIND(ppoll);
    BIND(close); BIND(fsync); BIND(fcntl); BIND(nanosleep);
    BIND(clock_nanosleep); BIND(setsockopt); BIND(ioctl); BIND(dup);
    BIND(dup2); BIND(dup3); BIND(fclose); BIND(getaddrinfo);
    BIND(sigaction);
    atomic_thread_fence(memory_order_release);
    BIND(select);
}

__attribute__((constructor)) static void resolve_at_load(void)
{
    weft__libc_resolve();
}
