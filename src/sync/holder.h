/* SPDX-License-Identifier: MIT */
/*
 * holder.h — who holds a lock: the token weft_mutex and weft_rwlock
 * record for their holder, so that only the holder unlocks.
 *
 * A token is the holder's virtual thread (its record: stable across
 * carriers, so a thread that moved is still the holder) or, outside any
 * virtual thread, its OS thread (the address of a thread-local byte:
 * unique among live threads, and never equal to a thread record). 0 is
 * no one.
 */
#ifndef WEFT_SYNC_HOLDER_H
#define WEFT_SYNC_HOLDER_H

#include <stdint.h>

#include "sched/carrier.h"
#include "sched/deadlock.h"

/* An OS thread's identity: the address of its copy (holder.c). */
extern __thread char weft__holder_os_self
    __attribute__((tls_model("initial-exec")));

/* The caller's token. An OS thread is registered for deadlock reports
 * (as weft__os_use does): it may wake a virtual thread. Read once per
 * call, before any park: a virtual thread's token stays valid across
 * carriers, an address of a carrier's TLS does not.
 * Runs on: any thread. */
static inline uintptr_t weft__holder_self(void)
{
    weft__carrier *m = weft__m();
    if (likely(m && m->cur))
        return (uintptr_t)m->cur;
    if (!m)
        weft__os_thread_register();
    return (uintptr_t)&weft__holder_os_self;
}

#endif
