/* SPDX-License-Identifier: MIT */
/*
 * monitor.h — the monitor (monitor.c): the OS thread that ticks the
 * clock the waits read, hands off the P's of carriers stuck in a thread
 * (a hog, or a blocking call), starts spare carriers, and its look at a
 * carrier's OS thread (cpuwatch.c).
 *
 * Invariants. Only the monitor marks a P stuck, adds P's and spare
 * carriers, and writes a carrier's demoted, nice_before and stat_* fields;
 * the carrier whose P was marked gives it up itself (weft__proc_retire)
 * and reports the hog it was running (weft__hog_seen/returned).
 */
#ifndef WEFT_SCHED_MONITOR_H
#define WEFT_SCHED_MONITOR_H

#include "sched/carrier.h"

/* Runs on: any thread. weft_now() at the monitor's last tick. */
static inline int64_t weft__tick_now(void)
{
    return atomic_load_explicit(&weft__S.tick_ns, memory_order_relaxed);
}

int  weft__monitor_init(void);
void weft__monitor_run(void);
void weft__monitor_fini(void);
void weft__monitor_kick(void);
void weft__monitor_poke(void);
bool weft__proc_retire(weft__carrier *m);
void weft__hog_seen(weft__carrier *m, weft_thread *g);
void weft__hog_returned(weft__carrier *m);
void weft__dump_monitor(int fd);

/* cpuwatch.c: the monitor's look at a carrier's OS thread. */
int64_t weft__carrier_cpu_ns(weft__carrier *m);  /* -1: unknown */
char weft__carrier_run_state(weft__carrier *m);  /* 'R', 'S'...; 0 */
void weft__carrier_stat_close(weft__carrier *m);

#endif
