/* SPDX-License-Identifier: MIT */
/*
 * fault.h — fault injection: make a chosen call to the system fail, so
 * that tests run the error paths real exhaustion would take.
 *
 * Each call site that can fail for want of a resource calls the checked
 * twin below (weft__calloc for calloc...), which asks weft__fault first
 * and, when told to, fails as the call would (NULL, MAP_FAILED, -1 or an
 * error number), with errno set as the call would set it. Invariants:
 *   - Without WEFT_FAULTS (every installed library) weft__fault is the
 *     constant false: the sites compile to the plain call, at no cost.
 *   - With it (the weft_faults library that only the fault tests link),
 *     every site counts its call, armed or not, so that a test can count
 *     what a workload does and then fail each call in turn.
 *   - Counting and arming are per kind, process-wide, and atomic: calls
 *     come from carriers, the monitor and pool threads at once. The n-th
 *     call is the n-th to reach the counter, which is deterministic only
 *     as far as the workload's scheduling is.
 */
#ifndef WEFT_BASE_FAULT_H
#define WEFT_BASE_FAULT_H

#include <stdbool.h>

/* What a site asks for, and the errno a failure of it sets. */
typedef enum weft__fault_kind {
    WEFT__FAULT_ALLOC,  /* malloc, calloc, realloc, strdup: ENOMEM */
    WEFT__FAULT_MMAP,   /* stack and slab mappings: ENOMEM */
    WEFT__FAULT_THREAD, /* pthread_create: EAGAIN (its result) */
    WEFT__FAULT_RING,   /* io_uring_queue_init*: -ENOMEM (its result) */
    WEFT__FAULT_FD,     /* eventfd, epoll_create1, pipe2: EMFILE */
    WEFT__FAULT_NKINDS
} weft__fault_kind;

#ifdef WEFT_FAULTS

/* Runs on: any thread. Counts the call; true when it must fail (errno is
 * then set to the kind's error). */
bool weft__fault(weft__fault_kind k);

/* ----- test-only interface (tests/support/wt_faults.h) -----
 * Arms kind k: its n-th call from now (n >= 1) fails, and with every_after
 * every later one too. Resets k's counts. n == 0 disarms. */
void weft__fault_arm(weft__fault_kind k, unsigned n, bool every_after);
/* Calls of kind k since it was last armed, and how many were failed. */
unsigned weft__fault_calls(weft__fault_kind k);
unsigned weft__fault_failed(weft__fault_kind k);

#else

static inline bool weft__fault(weft__fault_kind k)
{
    (void)k;
    return false;
}

#endif

/* The checked twins, one per call that can fail for want of a resource.
 * Macros, so that this header needs none of the real calls' headers: the
 * caller includes those, as it did for the plain call. */
#define WEFT__FAILS(kind) __builtin_expect(weft__fault(WEFT__FAULT_##kind), 0)
#define weft__malloc(n) (WEFT__FAILS(ALLOC) ? NULL : malloc(n))
#define weft__calloc(n, size) (WEFT__FAILS(ALLOC) ? NULL : calloc(n, size))
#define weft__realloc(p, n) (WEFT__FAILS(ALLOC) ? NULL : realloc(p, n))
#define weft__aligned_alloc(align, n) \
    (WEFT__FAILS(ALLOC) ? NULL : aligned_alloc(align, n))
#define weft__strdup(s) (WEFT__FAILS(ALLOC) ? NULL : strdup(s))
#define weft__mmap(...) (WEFT__FAILS(MMAP) ? MAP_FAILED : mmap(__VA_ARGS__))
#define weft__pthread_create(...) \
    (WEFT__FAILS(THREAD) ? EAGAIN : pthread_create(__VA_ARGS__))
#define weft__ring_init(...) \
    (WEFT__FAILS(RING) ? -ENOMEM : io_uring_queue_init(__VA_ARGS__))
#define weft__ring_init_params(...) \
    (WEFT__FAILS(RING) ? -ENOMEM : io_uring_queue_init_params(__VA_ARGS__))
#define weft__eventfd(n, flags) (WEFT__FAILS(FD) ? -1 : eventfd(n, flags))
#define weft__epoll_create1(flags) \
    (WEFT__FAILS(FD) ? -1 : epoll_create1(flags))
#define weft__pipe2(fds, flags) (WEFT__FAILS(FD) ? -1 : pipe2(fds, flags))

#endif
