/* SPDX-License-Identifier: MIT */
/*
 * futex.h — the OS-thread sleep of the runtime: idle carriers and OS threads
 * blocked on weft objects wait on a 32-bit word.
 */
#ifndef WEFT_BASE_FUTEX_H
#define WEFT_BASE_FUTEX_H

#include <stdint.h>

/* Sleeps while *word == expected, at most until deadline_ns (weft_now clock;
 * < 0: no deadline). Returns early on a wake, a signal or spuriously: callers
 * re-check their condition. */
void weft__futex_wait(_Atomic uint32_t *word, uint32_t expected,
                      int64_t deadline_ns);
void weft__futex_wake(_Atomic uint32_t *word, int count);

#endif
