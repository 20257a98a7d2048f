/* SPDX-License-Identifier: MIT */
/*
 * chan.h — the channel's insides, shared by chan.c (single operations) and
 * select.c (many at once). Invariants are stated in chan.c.
 */
#ifndef WEFT_SYNC_CHAN_H
#define WEFT_SYNC_CHAN_H

#include "sync/waitq.h"

#define WEFT__CHAN_MAGIC 0x6368616eu /* "chan" */

struct weft_chan {
    weft__spinlock lock;       /* lock order 5: CHAN (sched/sched.h) */
    uint32_t magic;
    bool closed;               /* under lock */
    size_t elem;               /* element size, bytes */
    size_t cap;                /* ring capacity (0: rendezvous) */
    size_t head, count;        /* ring state; under lock */
    weft__list sendq, recvq;   /* waiter.link; under lock */
    _Alignas(16) unsigned char buf[];
};

/* The outcome of trying one operation without waiting. */
typedef enum { WEFT__CHAN_WOULD_BLOCK, WEFT__CHAN_DONE, WEFT__CHAN_CLOSED }
    weft__chan_try;

/* Holds: c->lock. Tries to send / receive at once. If a waiting partner
 * was claimed, *partner is set, and must be completed (weft__complete)
 * after the lock is dropped. */
weft__chan_try weft__chan_try_send_locked(weft_chan *c, const void *elem,
                                          weft__waiter **partner);
weft__chan_try weft__chan_try_recv_locked(weft_chan *c, void *elem,
                                          weft__waiter **partner);

/* Completes a claimed partner: it stands for case index of its select. */
static inline void weft__chan_complete(weft__waiter *w)
{
    weft__complete(w, WEFT__CASE + (int)w->index);
}

#endif
