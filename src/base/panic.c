/*
 * panic.c — a broken internal invariant: say what, dump the threads, abort.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/compiler.h"

_Noreturn void weft__panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weft: panic: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    weft_dump(STDERR_FILENO);
    abort();
}
