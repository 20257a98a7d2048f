/* SPDX-License-Identifier: MIT */
/*
 * futex.c — Linux futex wrappers (private futexes, absolute CLOCK_MONOTONIC
 * deadlines through FUTEX_WAIT_BITSET so that a retried wait never drifts).
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/futex.h"

void weft__futex_wait(_Atomic uint32_t *word, uint32_t expected,
                      int64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;
    if (deadline_ns >= 0) {
        ts.tv_sec = deadline_ns / 1000000000;
        ts.tv_nsec = deadline_ns % 1000000000;
        tsp = &ts;
    }
    syscall(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected,
            tsp, NULL, FUTEX_BITSET_MATCH_ANY);
}

void weft__futex_wake(_Atomic uint32_t *word, int count)
{
    syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count, NULL,
            NULL, 0);
}
