/*
 * select.c — weft_select: the first of many sends, receives and joins.
 *
 * Protocol (Go's, on weft's park/claim machinery):
 *   1. Begin one wait for the caller (one claim generation for all cases).
 *   2. Lock every object involved: join cases' scopes first, then channels
 *      (the declared lock order: scopes before objects), each set by
 *      address, each lock once.
 *   3. Poll the cases in a random order; complete the first ready one.
 *   4. Else queue one waiter per case (stored in the case's opaque space:
 *      no allocation), drop the locks, and park. A waker that claims any of
 *      the waiters claims the whole select (they share a generation), does
 *      its case's work under its own lock and wakes us with CASE + index.
 *      Dropping the locks before parking is safe: a claim that lands before
 *      we are off our stack is handled by the park handshake (park.c).
 *   5. Relock, unlink the waiters no one took, unlock.
 * Cases not chosen are untouched: nothing was moved through them, and a
 * join case not chosen leaves its thread joinable.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "sync/chan.h"

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

/* Fills locks with every lock the cases need, scopes before channels, each
 * group by address, each lock once. Returns how many. */
static size_t lock_set(weft_case *k, size_t n, weft__spinlock **locks)
{
    size_t m = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t first = m;
        for (size_t i = 0; i < n; i++) {
            bool join = k[i].kind == WEFT_CASE_JOIN;
            if (join != (pass == 0))
                continue;
            locks[m++] = join ? &k[i].thread->home->lock : &k[i].chan->lock;
        }
        qsort(locks + first, m - first, sizeof *locks, by_address);
        size_t u = first;
        for (size_t i = first; i < m; i++)
            if (u == first || locks[u - 1] != locks[i])
                locks[u++] = locks[i];
        m = u;
    }
    return m;
}

static void lock_all(weft__spinlock **locks, size_t m)
{
    for (size_t i = 0; i < m; i++)
        weft__spin_lock(locks[i]);
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
        return k->thread && k->thread->magic == WEFT__G_MAGIC &&
               k->thread->home;
    }
    return false;
}

/* Holds: the locks. Joins a DONE thread: takes its result and unlinks it;
 * the caller frees the record once the locks are dropped. */
static void take_join(weft_case *k, weft_thread **freed)
{
    weft_thread *t = k->thread;
    if (k->result)
        *k->result = t->result;
    weft__list_remove(&t->home_link);
    t->joining = false;
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
        if (atomic_load_explicit(&k->thread->state, memory_order_relaxed) !=
            WEFT__G_DONE)
            return false;
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
        k->thread->joining = true;
        k->thread->joiner = w;
    } else {
        weft__list_push_back(k->kind == WEFT_CASE_SEND ? &k->chan->sendq
                                                       : &k->chan->recvq,
                             &w->link);
    }
}

/* Holds: the locks. Takes back case k's waiter if no one took it. */
static void dequeue_case(weft_case *k)
{
    weft__waiter *w = waiter_of(k);
    if (k->kind != WEFT_CASE_JOIN) {
        weft__q_forget(w);
    } else if (k->thread->joiner == w) {
        k->thread->joiner = NULL;
        k->thread->joining = false;
    }
}

static int fail(int err)
{
    errno = err;
    return -1;
}

/* Holds: the locks. A join case someone is already joining is invalid. */
static bool joins_free(weft_case *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (k[i].kind == WEFT_CASE_JOIN &&
            (k[i].thread->joining ||
             atomic_load_explicit(&k[i].thread->detached,
                                  memory_order_relaxed)))
            return false;
    return true;
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
    weft_thread *freed = NULL;
    lock_all(locks, m);
    for (size_t i = 0; i < n; i++)
        if (r != WEFT__CASE + (int)i)
            dequeue_case(&k[i]);
    int index = r >= WEFT__CASE ? r - WEFT__CASE : -1;
    if (index >= 0) {
        k[index].err = waiter_of(&k[index])->err;
        if (k[index].kind == WEFT_CASE_JOIN)
            take_join(&k[index], &freed);
    }
    unlock_all(locks, m);
    weft__free_chain(freed);
    if (index >= 0)
        return index;
    return fail(r == WEFT__EXPIRED ? ETIMEDOUT : r);
}

int weft_select(weft_case *k, size_t n, int64_t deadline_ns)
{
    if (!k || n == 0 || n > MAX_CASES)
        return fail(EINVAL);
    for (size_t i = 0; i < n; i++)
        if (!valid_case(&k[i]))
            return fail(EINVAL);
    weft__os_use();
    weft__spinlock *locks[n];
    uint16_t order[n];
    size_t m = lock_set(k, n, locks);
    weft__waiter proto;
    int r = weft__wait_begin(&proto, WEFT__WAIT_INTERRUPTIBLE,
                             WEFT__WAIT_SELECT, k);
    if (r)
        return fail(r);
    lock_all(locks, m);
    if (!joins_free(k, n)) {
        unlock_all(locks, m);
        weft__wait_abort(&proto);
        return fail(EINVAL);
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
