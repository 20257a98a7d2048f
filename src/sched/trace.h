/* SPDX-License-Identifier: MIT */
/*
 * trace.h — scheduler traces (trace.c, trace_json.c): WEFT_TRACE=path.json
 * records spawns, runs, parks with their reason, wake-ups, steals,
 * hand-offs and idle periods in the Chrome trace event format, one track
 * per carrier.
 *
 * Every event site is WEFT__TRACE(call): with tracing off it costs one
 * load and one branch the predictor always gets right; built with
 * WEFT_NO_TRACE it costs nothing (the overhead benchmark compares both).
 */
#ifndef WEFT_SCHED_TRACE_H
#define WEFT_SCHED_TRACE_H

#include <stdbool.h>

#include "sched/carrier.h"
#include "sched/proc.h"
#include "sched/thread.h"

#ifdef WEFT_NO_TRACE
#define WEFT__TRACE(call) ((void)0)
#else
extern bool weft__tracing; /* written only while no carrier runs */
#define WEFT__TRACE(call)                                                   \
    do {                                                                    \
        if (unlikely(weft__tracing))                                        \
            call;                                                           \
    } while (0)
#endif

int  weft__trace_start(void);  /* 0, or errno: the file could not be made */
void weft__trace_stop(void);   /* after the carriers and the monitor end */
void weft__trace_carrier(weft__carrier *m); /* a carrier record was made */

/* Runs on: the carrier m (or the thread the event is about). */
void weft__trace_run(weft__carrier *m, const weft_thread *g);
void weft__trace_switch_out(weft__carrier *m, const weft_thread *g,
                            weft__after_kind after);
void weft__trace_idle(weft__carrier *m, bool begin);
void weft__trace_steal(weft__carrier *m, const weft_thread *g,
                       const weft__proc *victim);
/* Runs on: any thread. */
void weft__trace_spawn(const weft_thread *parent, const weft_thread *child);
void weft__trace_wake(const weft_thread *g);
void weft__trace_handoff(const weft__proc *p, const weft__carrier *m);

#endif
