/* SPDX-License-Identifier: MIT */
/*
 * offload.h — the offload pool (offload.c): OS threads that run blocking
 * functions for virtual threads, which park meanwhile.
 *
 * Invariants: see offload.c; nothing here is shared but the calls.
 */
#ifndef WEFT_SCHED_OFFLOAD_H
#define WEFT_SCHED_OFFLOAD_H

#include "base/compiler.h"

/* weft_offload for callers whose arg must outlive an abandoned call: *done
 * tells whether fn ran to its end for the caller (arg is the caller's
 * again); otherwise drop(arg) runs (now, or once the pool is through with
 * it) and the caller must not touch arg. */
int  weft__offload_owned(weft_fn fn, void *arg, void (*drop)(void *arg),
                         bool *done);
void weft__offload_shutdown(void);
void weft__offload_counts(unsigned *threads, unsigned *busy);
bool weft__offload_in_flight(void);

#endif
