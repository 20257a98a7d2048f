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
 * keeps it for the life of the runtime; its generation goes up by one in
 * each incarnation, when the thread's handles die: when it leaves its
 * scope for a joiner or, detached, ends in failure (weft__handle_end_locked)
 * or else when the record is freed for reuse (weft__handle_retire). A
 * handle is current iff its slot's record carries its generation. A stale handle is
 * caught unless its record was reused 2^32 times since (the generation
 * wraps). A value that was never a handle names no slot, or a record whose
 * generation it matches only by chance: it is refused, not dereferenced.
 *
 * Invariants:
 *   - While the runtime runs, the table only grows: the entries below
 *     nslots never change, so a reader that loaded nslots (acquire) reads
 *     them without a lock. Records are never returned to malloc before
 *     teardown (thread.c), so a slot's record is always readable.
 *   - A record's generation changes only under its handle lock
 *     (weft_thread.handle.lock), once per incarnation, at the latest
 *     before the record goes back to a pool. Whoever holds that lock and
 *     saw its handle's generation there knows that the record is not freed
 *     until it lets go, nor its scope (home): a record leaves its scope's
 *     children holding its handle lock and ending its handles, unless it
 *     is the scope's owner that unlinks it (closing the scope, collecting
 *     detached children), and a scope is freed only after that owner has
 *     freed the records it unlinked.
 *   - Slot numbers go on from one weft_run to the next (slot_base): a
 *     handle kept from an earlier run names no slot of this one.
 *
 * Lock order: a handle lock comes before every scope lock (sched.h), and
 * is never taken while any other runtime lock is held. A select takes the
 * handle locks of its join cases by address.
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
#include <stdlib.h>

#include "sched/sched.h"

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
static weft__spinlock grow_lock;

static uint32_t gen_of(const weft_thread *h)
{
    return (uint32_t)((uintptr_t)h >> 32);
}

/* Runs on: any thread, for a record just allocated (zeroed: generation 0).
 * Gives it the next slot. Returns 0, or ENOMEM (no memory for a chunk, or
 * every slot given out). */
int weft__handle_register(weft_thread *g)
{
    weft__spin_lock(&grow_lock);
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
        g->handle.slot = slot_base + i;
        /* release: the entry (and the chunk) are written before a reader
         * that sees the new count (weft__handle_record) reads them. */
        atomic_store_explicit(&nslots, i + 1, memory_order_release);
    }
    weft__spin_unlock(&grow_lock);
    return chunk ? 0 : ENOMEM;
}

/* Runs on: g's spawner before g is queued to run, or g itself: no one
 * retires g meanwhile. The handle of g as it is now. */
weft_thread *weft__handle_of(const weft_thread *g)
{
    uintptr_t h = (uintptr_t)g->handle.gen << 32 | (g->handle.slot + 1u);
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

/* Holds: g's handle lock. Whether h is g's current handle. */
bool weft__handle_current(const weft_thread *g, const weft_thread *h)
{
    return g->handle.gen == gen_of(h);
}

/* Runs on: any thread, holding no runtime lock. Locks the record h names
 * and returns it if h is current; else NULL (h is stale, or not a
 * handle), holding nothing. Unlock with weft__handle_unlock. */
weft_thread *weft__handle_lock(const weft_thread *h)
{
    weft_thread *g = weft__handle_record(h);
    if (!g)
        return NULL;
    weft__spin_lock(&g->handle.lock);
    if (weft__handle_current(g, h))
        return g;
    weft__spin_unlock(&g->handle.lock);
    return NULL;
}

void weft__handle_unlock(weft_thread *g)
{
    weft__spin_unlock(&g->handle.lock);
}

/* Holds: g's handle lock, g current. Makes every handle of g stale: its
 * thread leaves its scope now, and its record is freed later. */
void weft__handle_end_locked(weft_thread *g)
{
    g->handle.gen++;
    g->handle.ended = true;
}

/* Runs on: any thread, holding no runtime lock; g's thread is DONE and g
 * is about to go back to a pool. Makes every handle of g stale, if that
 * was not done yet, and readies g's handle state for its next life. */
void weft__handle_retire(weft_thread *g)
{
    weft__spin_lock(&g->handle.lock);
    if (!g->handle.ended)
        g->handle.gen++;
    g->handle.ended = false;
    weft__spin_unlock(&g->handle.lock);
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
