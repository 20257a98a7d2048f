/* SPDX-License-Identifier: MIT */
/*
 * park.h — the park/wake protocol's interface (park.c): the waiter record
 * one wait of one thread leaves on one object, what a thread waits on,
 * and the calls that begin, block in, claim and complete a wait.
 *
 * Invariants. A waiter lives on the waiting thread's stack for the
 * duration of its wait; its link is written under the object's lock, its
 * result fields (os_word, data, err) by the one party that claims the wait
 * (park.c argues why exactly one does). The park states below are the
 * values of weft_thread.park: they say who may touch the thread's stack.
 */
#ifndef WEFT_SCHED_PARK_H
#define WEFT_SCHED_PARK_H

#include "base/compiler.h"
#include "base/list.h"
#include "base/spinlock.h"

typedef struct weft__waiter weft__waiter;

/* One wait of one thread on one object. Lives on the waiting thread's stack
 * for the duration of the wait. See park.c for the protocol. */
struct weft__waiter {
    weft__list link;        /* in the object's queue; under the object lock */
    weft_thread *g;         /* the waiting virtual thread, or NULL: OS thread */
    uint64_t gen;           /* g's park generation when the wait began */
    _Atomic uint32_t os_word; /* OS thread: 0 waiting, else result + 1 */
    _Atomic uint32_t *osw;  /* OS thread: the word claimed, &os_word or
                               the one all cases of a select share */
    void *data;             /* object-specific payload (channels: the
                               element to send, or where to receive) */
    uint32_t index;         /* select: the case this waiter stands for */
    int err;                /* set by a channel's waker: 0 or EPIPE */
};

/* What a thread waits on, kept for the dump (and, later, deadlock reports). */
typedef enum weft__wait_kind {
    WEFT__WAIT_NONE,
    WEFT__WAIT_SLEEP,
    WEFT__WAIT_JOIN,
    WEFT__WAIT_SCOPE,      /* closing a scope: waits for its children */
    WEFT__WAIT_CHILDREN,   /* finished its function, waits for children */
    WEFT__WAIT_MUTEX,
    WEFT__WAIT_RWLOCK_READ,  /* weft_rwlock_rdlock */
    WEFT__WAIT_RWLOCK_WRITE, /* weft_rwlock_wrlock */
    WEFT__WAIT_COND,
    WEFT__WAIT_SEM,
    WEFT__WAIT_CHAN_SEND,
    WEFT__WAIT_CHAN_RECV,
    WEFT__WAIT_SELECT,
    WEFT__WAIT_OFFLOAD,
    WEFT__WAIT_FD_READ,    /* obj: the fd's record (io/io.h) */
    WEFT__WAIT_FD_WRITE,
    WEFT__WAIT_FD_POLL,    /* several fds, or both directions */
    WEFT__WAIT_RING_IO,    /* an io_uring operation (file I/O, a batched
                              transfer) */
    WEFT__WAIT_PTHREAD_LOCK, /* a contended pthread mutex or rwlock */
    WEFT__WAIT_PTHREAD_COND, /* pthread_cond_wait */
} weft__wait_kind;

#define WEFT__WAIT_INTERRUPTIBLE 1 /* cancellation ends the wait */
#define WEFT__WAIT_LOCKED 2        /* begun holding a spinlock: never parks */

/* Park states (weft_thread.park): who may touch the thread's stack.
 *   RUNNING   the thread runs, or is on a run queue (its stack belongs to
 *             the carrier that dequeues it)
 *   PARKING   it began a wait and is still on its stack
 *   PARKED    it is off its stack, in no run queue: the waker owns it
 *   NOTIFIED  a waker claimed the wait while it was PARKING; it requeues
 *             itself once off its stack (park.c) */
enum { WEFT__RUNNING, WEFT__PARKING, WEFT__PARKED, WEFT__NOTIFIED };

int  weft__wait_begin(weft__waiter *w, int flags, weft__wait_kind kind,
                      const void *obj);
int  weft__wait_block(weft__waiter *w, weft__spinlock *lk, int64_t deadline);
int  weft__wait_abort(weft__waiter *w);
int  weft__wait_begin_g(weft_thread *g, weft__waiter *w, int flags,
                        weft__wait_kind kind, const void *obj);
/* weft__wait_block's result when its own deadline passed: callers turn it
 * into ETIMEDOUT (or success, for a sleep). Distinct from the ETIMEDOUT of a
 * scope deadline. */
#define WEFT__EXPIRED 0x10000
/* A waker that completes a case of a select (or a channel operation or a
 * join, which are one-case selects) wakes the thread with CASE + index. */
#define WEFT__CASE 0x20000
/* Claiming and completing a wait in two steps, for wakers that must move
 * data into the waiter between the two (under the object's lock). */
bool weft__claim(weft__waiter *w);
void weft__complete(weft__waiter *w, int result);
bool weft__wake(weft__waiter *w, int result);
bool weft__interrupt(weft_thread *g, int reason);
/* Makes a PARKED-and-claimed g run (ready.c: it queues g). */
void weft__ready(weft_thread *g);
void weft__park_commit(weft_thread *g);
void weft__wait_may_switch(weft_thread *g);

#endif
