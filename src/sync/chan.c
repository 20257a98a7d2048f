/* SPDX-License-Identifier: MIT */
/*
 * chan.c — bounded MPMC channels, for virtual and OS threads alike.
 *
 * Invariants (under c->lock):
 *   - 0 <= count <= cap; the ring holds count elements from head on.
 *   - Receivers wait only when the ring is empty and no sender waits;
 *     senders wait only when the ring is full and no receiver waits. So a
 *     channel never has both a waiting sender and a waiting receiver whose
 *     waits are still open (a queued waiter claimed by another party — its
 *     select's other case, a timer, a cancel — is skipped and unlinked).
 *   - A waiter's element lives on the waiting thread's stack (w->data). A
 *     partner claims the waiter first and only then copies, so a waiter
 *     whose wait ended otherwise is never written to; the claimed waiter
 *     cannot return before weft__complete, so the copy is safe.
 *   - When a receive frees a slot of a full ring and a sender waits, the
 *     sender's element moves into the ring at once: FIFO order is kept and
 *     the sender is done.
 *   - closed only goes from false to true. Closing completes every waiter
 *     with err EPIPE (waiting receivers imply an empty ring).
 * No allocation happens after weft_chan_make: a send or receive that finds
 * a partner or room copies and returns; one that waits parks on its stack.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/fault.h"
#include "sync/chan.h"
#include "sched/carrier.h"
#include "sched/deadlock.h"
#include "sched/park.h"
#include "sched/thread.h"

#define MAX_ELEM 65536u
#define MAX_CAP (1u << 30)

static bool valid(const weft_chan *c)
{
    return c && c->magic == WEFT__CHAN_MAGIC;
}

weft_chan *weft_chan_make(size_t elem_size, size_t capacity)
{
    if (elem_size == 0 || elem_size > MAX_ELEM || capacity > MAX_CAP) {
        errno = EINVAL;
        return NULL;
    }
    weft_chan *c = weft__calloc(1, sizeof *c + elem_size * capacity);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    c->magic = WEFT__CHAN_MAGIC;
    c->elem = elem_size;
    c->cap = capacity;
    weft__list_init(&c->sendq);
    weft__list_init(&c->recvq);
    return c;
}

/* Elements are mostly small scalars: copy those inline, not through a
 * call to memcpy. */
static inline void copy_elem(void *dst, const void *src, size_t n)
{
    switch (n) {
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    case 16: memcpy(dst, src, 16); break;
    default: memcpy(dst, src, n); break;
    }
}

static unsigned char *slot(weft_chan *c, size_t i)
{
    return c->buf + ((c->head + i) % c->cap) * c->elem;
}

/* Holds: c->lock. The longest waiter of q whose wait is still open,
 * claimed and unlinked; or NULL. */
static weft__waiter *claim_first(weft__list *q)
{
    weft__list *n;
    while ((n = weft__list_pop_front(q))) {
        weft__waiter *w = weft__container_of(n, weft__waiter, link);
        if (weft__claim(w))
            return w;
    }
    return NULL;
}

weft__chan_try weft__chan_try_send_locked(weft_chan *c, const void *elem,
                                          weft__waiter **partner)
{
    *partner = NULL;
    if (c->closed)
        return WEFT__CHAN_CLOSED;
    weft__waiter *w = claim_first(&c->recvq);
    if (w) {
        copy_elem(w->data, elem, c->elem);
        w->err = 0;
        *partner = w;
        return WEFT__CHAN_DONE;
    }
    if (c->count < c->cap) {
        copy_elem(slot(c, c->count), elem, c->elem);
        c->count++;
        return WEFT__CHAN_DONE;
    }
    return WEFT__CHAN_WOULD_BLOCK;
}

weft__chan_try weft__chan_try_recv_locked(weft_chan *c, void *elem,
                                          weft__waiter **partner)
{
    *partner = NULL;
    if (c->count) {
        copy_elem(elem, slot(c, 0), c->elem);
        c->head = (c->head + 1) % c->cap;
        c->count--;
        weft__waiter *w = claim_first(&c->sendq);
        if (w) { /* the ring was full: the longest sender moves in */
            copy_elem(slot(c, c->count), w->data, c->elem);
            c->count++;
            w->err = 0;
            *partner = w;
        }
        return WEFT__CHAN_DONE;
    }
    weft__waiter *w = claim_first(&c->sendq);
    if (w) {
        copy_elem(elem, w->data, c->elem);
        w->err = 0;
        *partner = w;
        return WEFT__CHAN_DONE;
    }
    return c->closed ? WEFT__CHAN_CLOSED : WEFT__CHAN_WOULD_BLOCK;
}

static int try_result(weft__chan_try t, weft__waiter *partner)
{
    if (partner)
        weft__chan_complete(partner);
    return t == WEFT__CHAN_DONE ? 0 : t == WEFT__CHAN_CLOSED ? EPIPE : EAGAIN;
}

int weft_chan_try_send(weft_chan *c, const void *elem)
{
    if (!valid(c) || !elem)
        return EINVAL;
    weft__os_use();
    weft__waiter *partner;
    weft__spin_lock(&c->lock, WEFT__LOCK_CHAN);
    weft__chan_try t = weft__chan_try_send_locked(c, elem, &partner);
    weft__spin_unlock(&c->lock);
    return try_result(t, partner);
}

int weft_chan_try_recv(weft_chan *c, void *elem)
{
    if (!valid(c) || !elem)
        return EINVAL;
    weft__os_use();
    weft__waiter *partner;
    weft__spin_lock(&c->lock, WEFT__LOCK_CHAN);
    weft__chan_try t = weft__chan_try_recv_locked(c, elem, &partner);
    weft__spin_unlock(&c->lock);
    return try_result(t, partner);
}

/* Sends or receives, waiting if it must: one pass under the lock, and the
 * wait is begun under it (WEFT__WAIT_LOCKED) so that no second pass is
 * needed. Cancellation is checked first: a cancelled thread's send stores
 * nothing even if there is room. */
static int chan_op(weft_chan *c, void *elem, bool send)
{
    if (!valid(c) || !elem)
        return EINVAL;
    weft__carrier *m = weft__m_here(); /* not used after the wait */
    weft_thread *g = m ? m->cur : NULL;
    if (!m)
        weft__os_thread_register();
    int r = g ? atomic_load_explicit(&g->cur->reason, memory_order_relaxed) : 0;
    if (r)
        return r;
    weft__waiter *partner;
    weft__spin_lock(&c->lock, WEFT__LOCK_CHAN);
    weft__chan_try t = send ? weft__chan_try_send_locked(c, elem, &partner)
                            : weft__chan_try_recv_locked(c, elem, &partner);
    if (t != WEFT__CHAN_WOULD_BLOCK) {
        weft__spin_unlock(&c->lock);
        return try_result(t, partner);
    }
    weft__waiter w;
    r = weft__wait_begin_g(g, &w, WEFT__WAIT_INTERRUPTIBLE | WEFT__WAIT_LOCKED,
                           send ? WEFT__WAIT_CHAN_SEND : WEFT__WAIT_CHAN_RECV,
                           c);
    if (r) {
        weft__spin_unlock(&c->lock);
        return r;
    }
    w.data = elem;
    weft__list_push_back(send ? &c->sendq : &c->recvq, &w.link);
    r = weft__wait_block(&w, &c->lock, -1);
    if (r == WEFT__CASE)
        return w.err;
    /* interrupted: nothing was moved */
    weft__spin_lock(&c->lock, WEFT__LOCK_CHAN);
    weft__q_forget(&w);
    weft__spin_unlock(&c->lock);
    return r;
}

int weft_chan_send(weft_chan *c, const void *elem)
{
    return chan_op(c, (void *)elem, true);
}

int weft_chan_recv(weft_chan *c, void *elem)
{
    return chan_op(c, elem, false);
}

/* Holds: c->lock. Completes every open waiter of q with EPIPE. */
static void fail_all(weft__list *q)
{
    weft__waiter *w;
    while ((w = claim_first(q))) {
        w->err = EPIPE;
        weft__chan_complete(w);
    }
}

int weft_chan_close(weft_chan *c)
{
    if (!valid(c))
        return EINVAL;
    weft__os_use();
    weft__spin_lock(&c->lock, WEFT__LOCK_CHAN);
    if (c->closed) {
        weft__spin_unlock(&c->lock);
        return EPIPE;
    }
    c->closed = true;
    fail_all(&c->sendq);
    fail_all(&c->recvq);
    weft__spin_unlock(&c->lock);
    return 0;
}

int weft_chan_free(weft_chan *c)
{
    if (!valid(c))
        return EINVAL;
    weft__spin_lock(&c->lock, WEFT__LOCK_CHAN);
    bool busy = !weft__list_empty(&c->sendq) || !weft__list_empty(&c->recvq);
    if (!busy)
        c->magic = 0;
    weft__spin_unlock(&c->lock);
    if (busy)
        return EBUSY;
    free(c);
    return 0;
}

size_t weft_chan_len(weft_chan *c)
{
    if (!valid(c))
        return 0;
    weft__spin_lock(&c->lock, WEFT__LOCK_CHAN);
    size_t n = c->count;
    weft__spin_unlock(&c->lock);
    return n;
}

size_t weft_chan_cap(weft_chan *c)
{
    return valid(c) ? c->cap : 0;
}
