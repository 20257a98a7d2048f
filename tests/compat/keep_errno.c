/* SPDX-License-Identifier: MIT */
/*
 * keep_errno.c — a stand-in for any C library nobody recompiled for weft:
 * built on its own at -O2 as a shared library, without weft's headers.
 *
 * keep_errno sets errno, makes a blocking libc call (usleep, which weft's
 * hooks turn into a park) and reads errno back. At -O2 the compiler
 * computes errno's address once (glibc declares __errno_location const)
 * and reads the same address after the call: if the virtual thread
 * resumed on another carrier, that is the first carrier's errno.
 */
#include <errno.h>
#include <unistd.h>

int keep_errno(int x)
{
    errno = x;
    usleep(1000);
    return errno;
}
