/* SPDX-License-Identifier: MIT */
/*
 * keep_errno.c — a library compiled without weft (separately, at -O2, no
 * weft.h), as a third-party library would be: it keeps errno and its own
 * thread-local state across a blocking libc call, which the compiler may
 * compute once per function (glibc's __errno_location is const).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Sets errno to x, sleeps us microseconds, returns errno. */
int foreign_keep_errno(int x, unsigned us)
{
    errno = x;
    usleep(us);
    return errno;
}

/* Whether the calling OS thread is the same before and after a sleep of us
 * microseconds. */
int foreign_same_thread_across_sleep(unsigned us)
{
    long tid = syscall(SYS_gettid);
    usleep(us);
    return tid == syscall(SYS_gettid);
}
