/* SPDX-License-Identifier: MIT */
/* A library built apart from weft (no weft.h), as a third-party library
 * is: B6's ticker calls it in BENCH_TICK_SLEEP=foreign mode, so that its
 * sleep is a hooked call made from another shared object, which binds the
 * ticker to its carrier while it sleeps. */
#include <errno.h>
#include <unistd.h>

/* Sleeps us microseconds; 0 or an error number. */
int bench_foreign_sleep_us(unsigned us)
{
    return usleep(us) ? errno : 0;
}
