/* SPDX-License-Identifier: MIT */
/*
 * panic.c — a broken internal invariant: say what, dump the threads, abort.
 *
 * base/ knows nothing of threads: the scheduler registers the dump (the
 * threads and their stacks) when a run starts, as a hook.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/compiler.h"

static void (*_Atomic dump_hook)(int fd);

void weft__panic_dump_hook(void (*dump)(int fd))
{
    atomic_store(&dump_hook, dump);
}

_Noreturn void weft__panic(const char *fmt, ...)
{
    /* The dump may itself switch threads, and a switch checks the very
     * canary that may have sent us here: a second panic only aborts. */
    static atomic_flag panicking = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&panicking))
        abort();
    va_list ap;
    va_start(ap, fmt);
    fputs("weft: panic: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    void (*dump)(int) = atomic_load(&dump_hook);
    if (dump)
        dump(STDERR_FILENO);
    abort();
}
