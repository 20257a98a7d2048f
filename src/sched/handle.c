/* SPDX-License-Identifier: MIT */
/*
 * handle.c — thread handles: what weft_go and weft_self give out, and what
 * every call taking a weft_thread * reads back.
 *
 * A handle is not a record's address. Records are pooled and reused
 * (thread.c): a handle that was an address would name whatever thread
 * uses the record next, so that a second join took a stranger's result
 * and a late cancel cancelled a stranger. A handle is a number:
 *
 *     bits 63..32  the record's generation when the handle was made
 *     bits 31..0   the record's slot + 1 (never 0: no handle is NULL)
 *
 * A record gets a slot in the table below when it is first allocated and
 * keeps it for the life of the runtime. Its generation is even while its
 * thread's handles are current and becomes odd when they die, before the
 * record is freed: when the thread leaves its scope's children for good
 * (joined, detached or failed while detached, reaped by the scope's
 * close) or, detached, ends (weft__handle_end*). A spawn that reuses the
 * record makes it even again (weft__handle_reborn). So each incarnation
 * moves it on by two, and a handle is current iff its slot's record
 * carries its generation. A stale handle is caught unless its record was
 * reused 2^31 times since (the generation wraps). A value that was never
 * a handle names no slot, or a record whose generation it matches only by
 * chance: it is refused, not dereferenced.
 *
 * Invariants:
 *   - While the runtime runs, the table only grows: the entries below
 *     nslots never change, so a reader that loaded nslots (acquire) reads
 *     them without a lock. Records are never returned to malloc before
 *     teardown (thread.c), so a slot's record is always readable.
 *   - A record's handles die before the record is freed, under its
 *     handle lock (weft_thread.handle.lock) or, for a detached thread
 *     that ends, without it but with a fence on each side: the ender's
 *     after, the holder's between taking the lock and reading the
 *     generation, the freer's before it waits for the lock to be free
 *     (weft__handle_settle). So whoever holds that lock and saw its
 *     handle's generation there knows that the record is not freed until
 *     it lets go, nor its scope (home): a scope is freed only once its
 *     children's records were. A spawn makes the generation even without
 *     the lock: no handle names an odd one, so no holder of the lock
 *     relies on it.
 *   - Slot numbers go on from one weft_run to the next (slot_base): a
 *     handle kept from an earlier run names no slot of this one.
 *
 * Where: a dead thread's generation goes odd on the carrier it ends on, or
 * in the call that joins or reaps it, never where its record is freed: a
 * spawner that frees its detached children by the thousand (B1) would
 * then take each record's first cache line back from the carrier that ran
 * it, for a locked instruction (bench/RESULTS.md: history notes). A
 * detached thread's end takes no lock at all: the lock's locked exchange
 * was one of the three left per spawn-run-exit, and the freer's wait
 * costs a read of the line it writes anyway (g->next).
 *
 * Lock order: a handle lock comes before every scope lock (sched.h), and
 * is never taken while a lock of a later level is held. A select takes
 * the handle locks of its join cases by address.
 *
 * Rejected: the generation in the unused high bits of the record's
 * address: 16 bits on x86-64 (fewer where the top byte carries a memory
 * tag, as with ARM's MTE), and a spawn-join loop reuses one record at
 * every turn, so 65,536 turns would make an old handle current again.
 * A reference count that keeps a record from reuse while a call looks at
 * it: every path that frees a record would then have to hand the free to
 * whoever lets go last.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "base/fence.h"
#include "sched/thread.h"

#define CHUNK_BITS 16
#define CHUNK_SIZE (1u << CHUNK_BITS)
/* 2^28 records, a few hundred GiB of them: memory runs out first. */
#define NCHUNKS 4096u
#define MAX_SLOTS (NCHUNKS * CHUNK_SIZE)

/* Slot i's record is chunks[i / CHUNK_SIZE][i % CHUNK_SIZE]. A chunk is
 * calloc'd when the first of its slots is given out: 512 KiB of address
 * space, whose pages are touched as slots are. */
static weft_thread **_Atomic chunks[NCHUNKS];
/* Slots given out in this run; written under grow_lock. */
static _Atomic uint32_t nslots;
/* The slot number of this run's first slot: written at teardown only. */
static uint32_t slot_base;
static weft__spinlock grow_lock; /* lock order 10: HANDLE_TABLE */

static uint32_t gen_of(const weft_thread *h)
{
    return (uint32_t)((uintptr_t)h >> 32);
}

/* Runs on: any thread, for a record just allocated (zeroed: generation 0).
 * Gives it the next slot. Returns 0, or ENOMEM (no memory for a chunk, or
 * every slot given out). */
int weft__handle_register(weft_thread *g)
{
    weft__spin_lock(&grow_lock, WEFT__LOCK_HANDLE_TABLE);
    uint32_t i = atomic_load_explicit(&nslots, memory_order_relaxed);
    weft_thread **chunk = NULL;
    if (i < MAX_SLOTS) {
        chunk = atomic_load_explicit(&chunks[i / CHUNK_SIZE],
                                     memory_order_relaxed);
        /* Under the lock, once per 65,536 records: rare enough to keep
         * the lock's other holders waiting. */
        if (!chunk) {
            chunk = calloc(CHUNK_SIZE, sizeof *chunk);
            atomic_store_explicit(&chunks[i / CHUNK_SIZE], chunk,
                                  memory_order_relaxed);
        }
    }
    if (chunk) {
        chunk[i % CHUNK_SIZE] = g;
        g->slot = slot_base + i;
        /* release: the entry (and the chunk) are written before a reader
         * that sees the new count (weft__handle_record) reads them. */
        atomic_store_explicit(&nslots, i + 1, memory_order_release);
    }
    weft__spin_unlock(&grow_lock);
    return chunk ? 0 : ENOMEM;
}

/* Runs on: g's spawner before g is queued to run, or g itself: g's
 * handles do not die meanwhile. The handle of g as it is now. */
weft_thread *weft__handle_of(const weft_thread *g)
{
    uint32_t gen = atomic_load_explicit(&g->handle.gen, memory_order_relaxed);
    uintptr_t h = (uintptr_t)gen << 32 | (g->slot + 1u);
    return (weft_thread *)h;
}

/* Runs on: any thread. The record of h's slot, or NULL if h names no slot
 * of this run. Says nothing of whether h is current (weft__handle_lock). */
weft_thread *weft__handle_record(const weft_thread *h)
{
    uint32_t i = (uint32_t)(uintptr_t)h - 1u - slot_base;
    /* acquire: pairs with weft__handle_register's release. */
    if (i >= atomic_load_explicit(&nslots, memory_order_acquire))
        return NULL;
    weft_thread **chunk = atomic_load_explicit(&chunks[i / CHUNK_SIZE],
                                               memory_order_relaxed);
    return chunk[i % CHUNK_SIZE];
}

/* Holds: g's handle lock. Whether h is g's current handle. The fence is
 * the holder's half of the pair with a detached thread's lock-free end
 * (weft__handle_settle): the lock taken before the generation is read. */
bool weft__handle_current(const weft_thread *g, const weft_thread *h)
{
    weft__fence_full();
    return atomic_load_explicit(&g->handle.gen, memory_order_relaxed) ==
           gen_of(h);
}

/* weft__handle_settle's way while the lock is held (thread.h). */
void weft__handle_settle_slow(weft_thread *g)
{
    /* acquire: the holder's writes to g come before g's reuse. */
    for (unsigned spins = 0;
         atomic_load_explicit(&g->handle.lock.held, memory_order_acquire);
         spins++) {
        if (spins < 64)
            weft__cpu_relax();
        else
            sched_yield();
    }
}

/* Runs on: any thread, holding no runtime lock. Locks the record h names
 * and returns it if h is current; else NULL (h is stale, or not a
 * handle), holding nothing. Unlock with weft__handle_unlock. */
weft_thread *weft__handle_lock(const weft_thread *h)
{
    weft_thread *g = weft__handle_record(h);
    if (!g)
        return NULL;
    weft__spin_lock(&g->handle.lock, WEFT__LOCK_HANDLE);
    if (weft__handle_current(g, h))
        return g;
    weft__spin_unlock(&g->handle.lock);
    return NULL;
}

void weft__handle_unlock(weft_thread *g)
{
    weft__spin_unlock(&g->handle.lock);
}

/* weft__handle_end's way when g's handle lock is held (thread.h). */
void weft__handle_end_slow(weft_thread *g)
{
    weft__spin_lock(&g->handle.lock, WEFT__LOCK_HANDLE);
    weft__handle_end_locked(g);
    weft__spin_unlock(&g->handle.lock);
}

/* Runs on: the spawner of g, a record taken from a pool (its handles
 * dead). Gives g its next generation, before any handle of it is made;
 * whoever gets that handle learns the generation through the same chain
 * of events (a spawn happens before its handle is used). */
void weft__handle_reborn(weft_thread *g)
{
    uint32_t gen = atomic_load_explicit(&g->handle.gen, memory_order_relaxed);
    atomic_store_explicit(&g->handle.gen, (gen | 1u) + 1u,
                          memory_order_relaxed);
}

/* Runs on: weft_run's thread at teardown, once no thread runs and before
 * the records are freed. Empties the table; the next run's slots follow
 * this run's. */
void weft__handles_reset(void)
{
    uint32_t n = atomic_load_explicit(&nslots, memory_order_relaxed);
    for (uint32_t c = 0; c < NCHUNKS; c++) {
        free(atomic_load_explicit(&chunks[c], memory_order_relaxed));
        atomic_store_explicit(&chunks[c], NULL, memory_order_relaxed);
    }
    atomic_store_explicit(&nslots, 0, memory_order_relaxed);
    /* Slot + 1 must fit 32 bits with room for a whole run. */
    slot_base += n;
    if (slot_base > UINT32_MAX - MAX_SLOTS - 1u)
        slot_base = 0;
}
