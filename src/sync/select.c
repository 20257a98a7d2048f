/* SPDX-License-Identifier: MIT */
/*
 * select.c — weft_select: the first of many sends, receives and joins.
 *
 * Protocol (Go's, on weft's park/claim machinery):
 *   1. Begin one wait for the caller (one claim generation for all cases).
 *   2. Lock every object involved: join cases' handle locks first (which
 *      prove each handle current, so that its record and scope stay put,
 *      and under which a joined thread leaves its scope), then their
 *      scopes, then channels (the declared lock order), each lock once;
 *      handles and channels by address, scopes ancestor first (by depth,
 *      then address), as a cancel takes them: a select that held a
 *      descendant's lock and waited for its ancestor's would deadlock
 *      with a cancel of the ancestor, which waits for the descendant's.
 *   3. Poll the cases in a random order; complete the first ready one.
 *   4. Else queue one waiter per case (stored in the case's opaque space:
 *      no allocation), drop the locks, and park. A waker that claims any of
 *      the waiters claims the whole select (they share a generation), does
 *      its case's work under its own lock and wakes us with CASE + index.
 *      Dropping the locks before parking is safe: a claim that lands before
 *      we are off our stack is handled by the park handshake (park.c).
 *   5. Unlink the waiters no one took, one case at a time, each under its
 *      own lock: once our wait is claimed, no waker can take another case.
 *      A join case's scope may be gone by then (the thread ended and its
 *      scope closed): its handle lock says whether the record still is
 *      (weft__join_forget). A join case that won was made by the thread's
 *      finish, which left the record to us.
 * Cases not chosen are untouched: nothing was moved through them, and a
 * join case not chosen leaves its thread joinable.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "sync/chan.h"
#include "sched/deadlock.h"
#include "sched/park.h"
#include "sched/scope.h"
#include "sched/thread.h"

#define MAX_CASES 1024

_Static_assert(sizeof(weft__waiter) <= sizeof(((weft_case *)0)->opaque_),
               "a case holds its waiter");

static weft__waiter *waiter_of(weft_case *k)
{
    return (weft__waiter *)(void *)k->opaque_;
}

static uint32_t rand32(void)
{
    static __thread uint64_t x; /* a carrier's or OS thread's own stream */
    if (!x) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = ((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&ts) | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return (uint32_t)x;
}

/* ------------------------------------------------------------ locking */

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(weft__spinlock *const *)a;
    uintptr_t y = (uintptr_t)*(weft__spinlock *const *)b;
    return (x > y) - (x < y);
}

static const weft_scope *scope_of(const weft__spinlock *l)
{
    return weft__container_of(l, weft_scope, lock);
}

/* Scope locks ancestor first: by depth, then by address. */
static int ancestor_first(const void *a, const void *b)
{
    const weft_scope *x = scope_of(*(weft__spinlock *const *)a);
    const weft_scope *y = scope_of(*(weft__spinlock *const *)b);
    if (x->depth != y->depth)
        return x->depth < y->depth ? -1 : 1;
    return by_address(a, b);
}

/* The record a join case names (unchecked: see handles_current). */
static weft_thread *joined(const weft_case *k)
{
    return weft__handle_record(k->thread);
}

/* Case k's lock in group 0 (a join's handle lock), 1 (a join's scope) or
 * 2 (a channel), or NULL. Group 1 is read holding group 0. */
static weft__spinlock *lock_of(const weft_case *k, int group)
{
    bool join = k->kind == WEFT_CASE_JOIN;
    if (group == 2)
        return join ? NULL : &k->chan->lock;
    if (!join)
        return NULL;
    return group == 0 ? &joined(k)->handle.lock : &joined(k)->home->lock;
}

/* Appends the locks of group to locks[m...] in lock order (see the top
 * of the file), each once. Returns the new count. */
static size_t add_group(weft_case *k, size_t n, int group,
                        weft__spinlock **locks, size_t m)
{
    size_t first = m;
    for (size_t i = 0; i < n; i++) {
        weft__spinlock *l = lock_of(&k[i], group);
        if (l)
            locks[m++] = l;
    }
    qsort(locks + first, m - first, sizeof *locks,
          group == 1 ? ancestor_first : by_address);
    size_t u = first;
    for (size_t i = first; i < m; i++)
        if (u == first || locks[u - 1] != locks[i])
            locks[u++] = locks[i];
    return u;
}

/* Takes the m locks at locks, in order: handle locks below index
 * scopes, scope locks from there below index chans, channel locks from
 * there on. */
static void lock_all(weft__spinlock **locks, size_t m, size_t scopes,
                     size_t chans)
{
    for (size_t i = 0; i < m; i++) {
        bool scope = i >= scopes && i < chans;
        weft__spin_lock_keyed(locks[i],
                              i < scopes ? WEFT__LOCK_HANDLE
                              : scope    ? WEFT__LOCK_SCOPE
                                         : WEFT__LOCK_CHAN,
                              scope ? scope_of(locks[i])->depth : 0);
    }
}

static void unlock_all(weft__spinlock **locks, size_t m)
{
    for (size_t i = m; i-- > 0;)
        weft__spin_unlock(locks[i]);
}

/* -------------------------------------------------------------- cases */

static bool valid_case(const weft_case *k)
{
    switch (k->kind) {
    case WEFT_CASE_SEND:
    case WEFT_CASE_RECV:
        return k->chan && k->chan->magic == WEFT__CHAN_MAGIC && k->elem;
    case WEFT_CASE_JOIN:
        return k->thread != NULL;
    }
    return false;
}

/* Holds: the handle locks. 0 if every join case's handle is current and
 * names a thread with a scope (not the root) other than the caller; else
 * ESRCH, EINVAL or EDEADLK. */
static int handles_current(weft_case *k, size_t n)
{
    weft_thread *self = weft__g();
    for (size_t i = 0; i < n; i++) {
        if (k[i].kind != WEFT_CASE_JOIN)
            continue;
        if (!weft__handle_current(joined(&k[i]), k[i].thread))
            return ESRCH;
        if (!joined(&k[i])->home)
            return EINVAL;
        if (joined(&k[i]) == self)
            return EDEADLK;
    }
    return 0;
}

/* Holds: all the locks. 0 if every join case's thread is still in its
 * scope (ESRCH if not) and free to join (EINVAL if detached or being
 * joined elsewhere). */
static int joins_free(weft_case *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        weft_thread *t = k[i].kind == WEFT_CASE_JOIN ? joined(&k[i]) : NULL;
        if (!t)
            continue;
        if (weft__thread_gone_locked(t))
            return ESRCH;
        if (t->joining ||
            atomic_load_explicit(&t->detached, memory_order_relaxed))
            return EINVAL;
    }
    return 0;
}

/* Joins case k's thread, DONE and out of its scope (its handles ended):
 * takes its result; the caller frees the record once it holds no lock. */
static void take_join(weft_case *k, weft_thread **freed)
{
    weft_thread *t = joined(k);
    if (k->result)
        *k->result = t->result;
    t->next = *freed;
    *freed = t;
    k->err = 0;
}

/* Holds: the locks. Tries case k without waiting. */
static bool try_case(weft_case *k, weft__waiter **partner, weft_thread **freed)
{
    weft__chan_try t;
    switch (k->kind) {
    case WEFT_CASE_SEND:
        t = weft__chan_try_send_locked(k->chan, k->elem, partner);
        break;
    case WEFT_CASE_RECV:
        t = weft__chan_try_recv_locked(k->chan, k->elem, partner);
        break;
    default:
        if (atomic_load_explicit(&joined(k)->state, memory_order_relaxed) !=
            WEFT__G_DONE)
            return false;
        weft__thread_leave_home_locked(joined(k));
        take_join(k, freed);
        return true;
    }
    if (t == WEFT__CHAN_WOULD_BLOCK)
        return false;
    k->err = t == WEFT__CHAN_CLOSED ? EPIPE : 0;
    return true;
}

/* Holds: the locks. Queues case i's waiter, sharing the select's wait. */
static void enqueue_case(weft_case *k, uint32_t i, const weft__waiter *proto)
{
    weft__waiter *w = waiter_of(k);
    *w = *proto;
    w->link.next = w->link.prev = NULL;
    w->index = i;
    w->data = k->elem;
    if (k->kind == WEFT_CASE_JOIN) {
        joined(k)->joining = true;
        joined(k)->joiner = w;
    } else {
        weft__list_push_back(k->kind == WEFT_CASE_SEND ? &k->chan->sendq
                                                       : &k->chan->recvq,
                             &w->link);
    }
}

/* Holds nothing; the select's wait is over. Takes back case k's waiter if
 * no one took it. */
static void dequeue_case(weft_case *k)
{
    weft__waiter *w = waiter_of(k);
    if (k->kind == WEFT_CASE_JOIN) {
        weft__join_forget(joined(k), k->thread, w);
        return;
    }
    weft__spin_lock(&k->chan->lock, WEFT__LOCK_CHAN);
    weft__q_forget(w);
    weft__spin_unlock(&k->chan->lock);
}

static int fail(int err)
{
    errno = err;
    return -1;
}

static void shuffle(uint16_t *order, size_t n)
{
    for (size_t i = 0; i < n; i++)
        order[i] = (uint16_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = rand32() % i;
        uint16_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

/* Runs on: after the locks are dropped. */
static int finish_ready(int index, weft__waiter *partner, weft_thread *freed)
{
    if (partner)
        weft__chan_complete(partner);
    weft__free_chain(freed);
    return index;
}

/* Parks on the cases (the locks held, and dropped here), then takes back
 * the waiters no one took. Returns the completed index, or -1 + errno. */
static int wait_cases(weft_case *k, size_t n, weft__spinlock **locks,
                      size_t m, weft__waiter *proto, int64_t deadline)
{
    for (size_t i = 0; i < n; i++)
        enqueue_case(&k[i], (uint32_t)i, proto);
    unlock_all(locks, m);
    int r = weft__wait_block(waiter_of(&k[0]), NULL,
                             deadline < 0 ? -1 : deadline);
    int index = r >= WEFT__CASE ? r - WEFT__CASE : -1;
    /* A thread joined by the winning case may have left its scope, which
     * may be gone: another case on the same thread has nothing to undo. */
    weft_thread *won = index >= 0 && k[index].kind == WEFT_CASE_JOIN
                           ? joined(&k[index]) : NULL;
    for (size_t i = 0; i < n; i++)
        if ((int)i != index &&
            !(won && k[i].kind == WEFT_CASE_JOIN && joined(&k[i]) == won))
            dequeue_case(&k[i]);
    if (index < 0)
        return fail(r == WEFT__EXPIRED ? ETIMEDOUT : r);
    k[index].err = waiter_of(&k[index])->err;
    if (k[index].kind == WEFT_CASE_JOIN) {
        weft_thread *freed = NULL;
        take_join(&k[index], &freed); /* finish() unlinked it for us */
        weft__free_chain(freed);
    }
    return index;
}

/* Locks what the cases need (locks: room for n + joins), having begun the
 * select's wait. Returns 0 holding the *held locks at locks, or an error,
 * holding nothing (the wait still to abort). */
static int lock_cases(weft_case *k, size_t n, weft__spinlock **locks,
                      size_t *held)
{
    size_t mh = add_group(k, n, 0, locks, 0);
    lock_all(locks, mh, mh, mh);
    int err = handles_current(k, n);
    if (err) {
        unlock_all(locks, mh);
        return err;
    }
    size_t ms = add_group(k, n, 1, locks, mh);
    size_t m = add_group(k, n, 2, locks, ms);
    lock_all(locks + mh, m - mh, 0, ms - mh);
    err = joins_free(k, n);
    if (err) /* scopes first: a thread out of its scope may go next */
        unlock_all(locks, m);
    *held = m;
    return err;
}

int weft_select(weft_case *k, size_t n, int64_t deadline_ns)
{
    if (!k || n == 0 || n > MAX_CASES)
        return fail(EINVAL);
    size_t joins = 0;
    for (size_t i = 0; i < n; i++) {
        if (!valid_case(&k[i]))
            return fail(EINVAL);
        if (k[i].kind != WEFT_CASE_JOIN)
            continue;
        if (!joined(&k[i]))
            return fail(ESRCH);
        joins++;
    }
    weft__os_use();
    weft__spinlock *locks[n + joins];
    uint16_t order[n];
    size_t m;
    weft__waiter proto;
    int r = weft__wait_begin(&proto, WEFT__WAIT_INTERRUPTIBLE,
                             WEFT__WAIT_SELECT, k);
    if (r)
        return fail(r);
    r = lock_cases(k, n, locks, &m);
    if (r) {
        weft__wait_abort(&proto);
        return fail(r);
    }
    shuffle(order, n);
    for (size_t j = 0; j < n; j++) {
        weft__waiter *partner = NULL;
        weft_thread *freed = NULL;
        if (try_case(&k[order[j]], &partner, &freed)) {
            unlock_all(locks, m);
            weft__wait_abort(&proto); /* a racing cancel stays in force */
            return finish_ready(order[j], partner, freed);
        }
    }
    if (deadline_ns == 0) {
        unlock_all(locks, m);
        weft__wait_abort(&proto);
        return fail(ETIMEDOUT);
    }
    return wait_cases(k, n, locks, m, &proto, deadline_ns);
}
