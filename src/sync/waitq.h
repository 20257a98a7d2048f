/* SPDX-License-Identifier: MIT */
/*
 * waitq.h — the queue of waiters that every blocking object keeps, and the
 * layout checks that tie the public opaque structs to the real ones.
 *
 * The public weft_mutex/weft_cond/weft_sem are all-zero when initialised
 * statically, so a queue whose head is still zero is empty; it is made a
 * proper circular list the first time its lock is held.
 */
#ifndef WEFT_SYNC_WAITQ_H
#define WEFT_SYNC_WAITQ_H

#include "sched/park.h"

/* Holds: the queue's lock. */
static inline weft__list *weft__q(weft__list *head)
{
    if (!head->next)
        weft__list_init(head);
    return head;
}

/* Holds: the queue's lock. Wakes the longest waiter whose wait is still
 * open, unlinking the ones already claimed elsewhere. Returns whether it
 * woke one. */
static inline bool weft__q_wake_one(weft__list *head, int result)
{
    weft__list *n;
    while ((n = weft__list_pop_front(weft__q(head))))
        if (weft__wake(weft__container_of(n, weft__waiter, link), result))
            return true;
    return false;
}

/* Holds: the queue's lock. Unlinks w if no waker did. */
static inline void weft__q_forget(weft__waiter *w)
{
    if (weft__list_linked(&w->link))
        weft__list_remove(&w->link);
}

#endif
