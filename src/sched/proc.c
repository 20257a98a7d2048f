/* SPDX-License-Identifier: MIT */
/*
 * proc.c — run queues: each P's local queue and the global queue.
 *
 * Local queue: a ring of WEFT__RUNQ_SIZE slots plus a one-slot runnext.
 * Only the P's owner (the carrier holding it) pushes, at tail; the owner and
 * thieves on other carriers take from head, thieves with a CAS on head and
 * the owner with one too while a thief is at work (runq.h), so a slot is
 * consumed exactly once. The owner may write slot i only while
 * tail - head < size, so a slot a thief has read stays valid until its CAS
 * on head either succeeds or fails.
 *
 * runnext holds the thread just woken by the running one: it runs next on
 * the same P, which keeps the two ends of a message exchange on one carrier
 * (and one cache). Thieves take it only as a last resort.
 *
 * Global queue: a FIFO under the scheduler lock, fed by OS threads, by
 * carriers without a P and by local overflow (half the ring, at most
 * WEFT__RUNQ_BATCH threads, moves at once).
 * gq_size mirrors its length for lock-free emptiness checks.
 */
#include <sched.h>
#include <string.h>

#include "sched/carrier.h"
#include "sched/runq.h"

void weft__proc_init(weft__proc *p, uint32_t id)
{
    memset(p, 0, sizeof *p);
    p->id = id;
    p->rand = 0x9E3779B97F4A7C15ull * (id + 1);
    p->fairness = WEFT__GLOBAL_FAIRNESS;
    atomic_init(&p->timer_next, INT64_MAX);
}

void weft__globq_put_chain(weft_thread *first, weft_thread *last, uint32_t n)
{
    last->next = NULL;
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    if (weft__S.gq_tail)
        weft__S.gq_tail->next = first;
    else
        weft__S.gq_head = first;
    weft__S.gq_tail = last;
    /* seq_cst: pairs with an idling carrier's re-check (idle.c). */
    atomic_fetch_add_explicit(&weft__S.gq_size, n, memory_order_seq_cst);
    weft__spin_unlock(&weft__S.lock);
}

/* Runs on: any thread. */
void weft__globq_put(weft_thread *g)
{
    weft__globq_put_chain(g, g, 1);
}

/* Owner only. The ring is full: moves its oldest threads (half, at most
 * WEFT__RUNQ_BATCH) and g to the global queue in one batch. Returns false
 * if a thief moved head meanwhile. */
bool weft__runq_put_slow(weft__proc *p, weft_thread *g, uint32_t h,
                         uint32_t t)
{
    uint32_t n = (t - h) / 2;
    if (n > WEFT__RUNQ_BATCH)
        n = WEFT__RUNQ_BATCH;
    weft_thread *batch[WEFT__RUNQ_BATCH];
    for (uint32_t i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&p->ring[(h + i) & WEFT__RUNQ_MASK],
                                        memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&p->head, &h, h + n,
                                                 memory_order_release,
                                                 memory_order_relaxed))
        return false;
    for (uint32_t i = 0; i + 1 < n; i++)
        batch[i]->next = batch[i + 1];
    batch[n - 1]->next = g;
    weft__globq_put_chain(batch[0], g, n + 1);
    return true;
}

/* Runs on: any carrier. A racy hint. */
bool weft__runq_empty(weft__proc *p)
{
    uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&p->tail, memory_order_acquire);
    return h == t &&
           !atomic_load_explicit(&p->runnext, memory_order_acquire);
}

/* Runs on: a thief, before it takes from victim's head or runnext. The
 * thief's side of the owner's entry (runq.h): once the owner is seen out,
 * it takes with a CAS until the thief leaves. */
void weft__runq_thief_enter(weft__proc *victim)
{
    atomic_fetch_add_explicit(&victim->thieves, 1, memory_order_seq_cst);
    if (!weft__fence_asym)
        return; /* the owner takes with a CAS too */
    weft__fence_heavy();
    /* acquire: the owner's plain stores before it left. Its stay is a
     * few instructions, unless the system took its CPU meanwhile. */
    for (unsigned spins = 0;
         atomic_load_explicit(&victim->owner_in, memory_order_acquire);
         spins++) {
        if (spins < 64)
            weft__cpu_relax();
        else
            sched_yield();
    }
}

void weft__runq_thief_leave(weft__proc *victim)
{
    atomic_fetch_sub_explicit(&victim->thieves, 1, memory_order_release);
}

/* Takes half of victim's ring (WEFT__RUNQ_BATCH at most) into batch.
 * Returns how many. (Its runnext is stolen only by loop.c's
 * steal_runnext, after a delay.) */
static uint32_t runq_grab(weft__proc *victim, weft_thread **batch)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&victim->head, memory_order_acquire);
        /* acquire: pairs with the owner's release of tail (slot contents). */
        uint32_t t = atomic_load_explicit(&victim->tail, memory_order_acquire);
        uint32_t n = t - h;
        n -= n / 2;
        if (n == 0)
            return 0;
        if (n > WEFT__RUNQ_SIZE / 2)
            continue; /* head and tail read at different times */
        if (n > WEFT__RUNQ_BATCH)
            n = WEFT__RUNQ_BATCH;
        for (uint32_t i = 0; i < n; i++)
            batch[i] = atomic_load_explicit(
                &victim->ring[(h + i) & WEFT__RUNQ_MASK], memory_order_relaxed);
        if (atomic_compare_exchange_strong_explicit(&victim->head, &h, h + n,
                                                    memory_order_acq_rel,
                                                    memory_order_relaxed))
            return n;
    }
}

/* Runs on: owner of p, whose ring is empty. Steals from victim; returns one
 * thread to run and leaves the rest of the loot in p's ring. */
weft_thread *weft__runq_steal(weft__proc *p, weft__proc *victim)
{
    weft_thread *batch[WEFT__RUNQ_BATCH];
    weft__runq_thief_enter(victim);
    uint32_t n = runq_grab(victim, batch);
    weft__runq_thief_leave(victim);
    if (n == 0)
        return NULL;
    for (uint32_t i = 0; i + 1 < n; i++)
        weft__runq_put_tail(p, batch[i]);
    return batch[n - 1];
}

/* Runs on: owner of p. Takes a fair share of the global queue: one thread
 * to run, the rest into p's ring. */
weft_thread *weft__globq_get(weft__proc *p)
{
    if (!atomic_load_explicit(&weft__S.gq_size, memory_order_acquire))
        return NULL;
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    uint32_t size = atomic_load_explicit(&weft__S.gq_size, memory_order_relaxed);
    uint32_t n = size / weft__S.nprocs + 1;
    if (n > size)
        n = size;
    if (n > WEFT__RUNQ_BATCH)
        n = WEFT__RUNQ_BATCH;
    weft_thread *first = weft__S.gq_head, *last = first;
    for (uint32_t i = 1; i < n; i++)
        last = last->next;
    if (n) {
        weft__S.gq_head = last->next;
        if (!weft__S.gq_head)
            weft__S.gq_tail = NULL;
        atomic_fetch_sub_explicit(&weft__S.gq_size, n, memory_order_relaxed);
    }
    weft__spin_unlock(&weft__S.lock);
    if (!n)
        return NULL;
    for (weft_thread *g = first->next; n > 1; n--) {
        weft_thread *nx = g->next;
        weft__runq_put_tail(p, g);
        g = nx;
    }
    return first;
}
