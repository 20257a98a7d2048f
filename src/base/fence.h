/* SPDX-License-Identifier: MIT */
/*
 * fence.h — an asymmetric Dekker fence. Two parties each store, then load
 * what the other stored; at least one must see the other's store. A
 * thread starting a wait and a canceller are such a pair, and the wait
 * comes on every channel operation while a cancellation is rare. So the
 * waiter's side is a compiler barrier only, and the canceller's side is
 * membarrier(2), which makes every running thread of the process pass a
 * full memory barrier (a thread that is not running passed one when it
 * was switched out). Where membarrier is not available (old kernels,
 * seccomp), both sides are full fences.
 */
#ifndef WEFT_BASE_FENCE_H
#define WEFT_BASE_FENCE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "base/compiler.h"

extern bool weft__fence_asym; /* written once, before any carrier starts */

void weft__fence_init(void);  /* any thread; once per process suffices */
void weft__fence_heavy(void); /* the rare side */

/* GCC warns (-Wtsan) that ThreadSanitizer does not support a fence: its
 * model has no store-load fence, so it may report a race the fence rules
 * out. Nothing in the code to change: the fence is still emitted, and the
 * two sides' accesses it orders are atomics, which TSan never reports. */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif

/* The frequent side. */
static inline void weft__fence_light(void)
{
    if (likely(weft__fence_asym))
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
}

/* A full fence, where both sides of a pair are rare enough to pay one
 * (thread handles: handle.c). */
static inline void weft__fence_full(void)
{
    atomic_thread_fence(memory_order_seq_cst);
}

#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif
