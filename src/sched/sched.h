/* SPDX-License-Identifier: MIT */
/*
 * sched.h — the scheduler's headers in one, for the layers above it (io/,
 * sync/, foreign/, runtime.c) and for the lock order, which spans them.
 * Files in sched/ include the headers they use instead:
 *   park.h      waiters, wait kinds, the park/wake protocol
 *   timer.h     one-shot timers in per-P heaps
 *   stack.h     stacks, their pools, overflow and signal stacks
 *   scope.h     structured concurrency's scopes
 *   thread.h    the virtual thread record, handles, locals, key hooks
 *   proc.h      P's: run queues, timer heap, caches (runq.h: owner side)
 *   carrier.h   M's and weft__S: switch, ready, loop, idle
 *   bind.h      threads bound to a carrier
 *   monitor.h   the monitor and its look at carriers
 *   offload.h   the offload pool
 *   deadlock.h  deadlock detection
 *   dump.h      the state dump
 *   poll.h      what the scheduler asks of the I/O poller (io/ fills it)
 *
 * Lock order (outer first). A lock may only be taken while holding locks
 * that come before it:
 *   0. thread handle locks (weft_thread.handle.lock), by address
 *   1. scope locks, ancestor before descendant (a thread's home scope before
 *      the scopes of that thread's root)
 *   2. object wait-queue locks (mutex, cond, sem)
 *   3. timer heap locks (one per P)
 *   4. the scheduler lock (idle P's and M's, global run queue)
 *   5. stack pool and record pool locks
 * Waking a thread (weft__wake*) only takes locks 4 and 5, so it may be done
 * while holding any lock of levels 1-3.
 *
 * Thread-local state: the current carrier is read through weft__m(), which
 * the compiler cannot fold: never keep its result across a call that may
 * park (see base/compiler.h, WEFT_NOIPA).
 */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include "sched/bind.h"
#include "sched/carrier.h"
#include "sched/deadlock.h"
#include "sched/dump.h"
#include "sched/monitor.h"
#include "sched/offload.h"
#include "sched/park.h"
#include "sched/proc.h"
#include "sched/scope.h"
#include "sched/stack.h"
#include "sched/thread.h"
#include "sched/timer.h"

#endif
