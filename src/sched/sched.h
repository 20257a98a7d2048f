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
 * Lock order (outer first). A lock may only be taken while every lock its
 * thread holds comes before it: is of an earlier level, or of the same
 * class, where the class orders its own locks (said below). Classes that
 * share a level never nest. Each lock call names its lock's class
 * (base/lockrank.h: WEFT__LOCK_*, in this order), and in WEFT_LOCK_ORDER
 * builds (Debug's default) base/lockrank.c checks every lock taken against
 * those its OS thread holds, and panics at the first one out of order.
 *   1. thread handle locks (weft_thread.handle.lock), by address: a select
 *      takes those of its joins                                    HANDLE
 *   2. scope locks (weft_scope.lock), ancestor before descendant: by depth
 *      in the scope tree, then by address. A cancel walks down the tree; a
 *      select sorts the scopes of its joins so                      SCOPE
 *   3. a scope's deadline lock (weft_scope.deadline_lock), held while it
 *      arms or disarms the scope's timer                         DEADLINE
 *   4. a condition variable's queue lock, held while its waiter unlocks
 *      the mutex (sync/cond.c)                                       COND
 *   5. object wait-queue locks: a mutex's, an rwlock's, a semaphore's, a
 *      channel's (by address: a select takes all its cases'), a bucket of
 *      pthread lock waiters' (foreign/locks.c), an fd record's (io/io.h)
 *                                       MUTEX RWLOCK SEM CHAN PTHREAD FD
 *   6. timer heap locks, one per P (weft__proc.timer_lock): a wait with a
 *      deadline arms its timer holding its object's lock          TIMERS
 *   7. io_uring's submission queue locks, one per ring, and its port
 *      table's lock (io/uring.c): an fd's poll is armed holding the fd
 *      record's lock                                   RING_SQ RING_PORTS
 *   8. the scheduler lock (weft__S.lock: idle P's and M's, the global run
 *      queue)                                                       SCHED
 *   9. a carrier's bound-thread queue lock (weft__carrier.bound_lock) BOUND
 *  10. pools and tables: the stack pools' and the stack mapping lock
 *      (sched/stack.c), the thread record pool's (weft__S.g_lock), the
 *      handle table's (sched/handle.c)
 *                              STACK_POOL STACK_MAP RECORDS HANDLE_TABLE
 *  11. the monitor's longest-hog record lock (sched/monitor.c)        HOG
 *  12. the trace's shared ring lock (sched/trace.c): an event may be
 *      recorded holding any other lock                              TRACE
 * Waking a thread (weft__wake*) takes only locks of levels 8, 9 and 12, so
 * it may be done holding any lock of levels 1-7. fork (foreign/fork.c)
 * takes the scheduler lock, then the record pool's. No spinlock is held
 * across a switch but the one a parking thread hands to it, which the
 * next context on its carrier releases (checked with the order).
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
