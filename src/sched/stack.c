/* SPDX-License-Identifier: MIT */
/*
 * stack.c — virtual-thread stacks: mapping, guard pages, pooling, and how
 * far below each an overflow may reach.
 *
 * A stack is address space reserved with MAP_NORESERVE and committed by the
 * kernel page by page as the thread touches it, so a default 256 KiB stack
 * costs one page until it grows. Below it sits a PROT_NONE guard page: an
 * overflow faults there, and the SIGSEGV handler (overflow.c) names the
 * thread before aborting.
 *
 * Each guarded stack costs two kernel map entries (the mapping is split by
 * the guard), and vm.max_map_count bounds them (65,530 by default). Past a
 * budget taken from that sysctl, default-size stacks are carved from
 * slabs without a guard per stack (two map entries per slab: the slab has
 * one guard page, at its bottom; each slab holds twice as many stacks as
 * the one before, up to SLAB_GROWTH doublings, so that a million threads
 * take a few hundred entries whatever the budget left them) and checked
 * by a canary instead: the WEFT__CANARY bytes just below the stack must
 * still be zero when the thread switches out. The canary is never written.
 * It is not the stack's own lowest bytes because reading an untouched page
 * costs a page where the kernel has no shared zero page (some hypervisors
 * turn it off). In a slab, each slot of the asked size holds a stack and,
 * in its top WEFT__CANARY bytes, the canary of the slot above: it lies on
 * the top page of the stack below, touched whenever that one has run, and
 * each stack's top stays WEFT__CANARY bytes short of a page's end, so a
 * parked thread's few frames still fit in one page. A slab stack thus has
 * WEFT__CANARY bytes less than asked.
 *
 * Pools. Each P caches up to WEFT__STACK_CACHE stacks of the default size
 * with their memory (the hot cache, owner only). Past that, half of them
 * join the global warm pool, still with their memory, in one batch; an
 * empty cache takes a batch back from the pools. Giving memory back costs a
 * madvise, and in a process with several carriers every madvise or munmap
 * interrupts the other CPUs to flush their TLBs (tens of microseconds on a
 * VM), so it is kept off the path of running threads: a carrier about to
 * sleep for want of work trims the warm pool down to WARM_KEEP stacks,
 * giving their memory back (MADV_DONTNEED) and moving them to the cold
 * pool; past COLD_MAX cold stacks, guarded stacks are unmapped instead.
 * Stacks of other sizes are mapped for their thread and unmapped after.
 *
 * Failure. A stack is had at the spawn (thread.c), so a stack that cannot
 * be had fails the spawn with ENOMEM. Only a shortage of map entries has a
 * way around it (the guard-less stacks above); when the kernel refuses the
 * memory itself (RLIMIT_AS, the overcommit policy), weft__stack_get
 * returns NULL. stackwhy.c tells the two apart and says which it was.
 *
 * Compact mode: when the runtime's default stack size is below
 * WEFT__COMPACT_LIMIT (say 2 KiB, for millions of tiny threads), every
 * default stack comes from a slab, several share a page, no guard page is
 * tried, and their memory stays with the pool (madvise works on whole
 * pages only).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/page.h"
#include "sched/fiber.h"
#include "sched/carrier.h"
#include "sched/proc.h"
#include "sched/stack.h"

#ifdef WEFT_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#else
#define VALGRIND_STACK_REGISTER(lo, hi) 0u
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

#define SLAB_MIN_STACKS 64
#define SLAB_MIN_BYTES (2u << 20)
#define SLAB_GROWTH 6           /* the 7th slab on holds 64 times the 1st */
#define WEFT__CANARY 64
#define COLD_MAX 4096
#define WARM_KEEP 256
#define TRIM_BATCH 1024
#define STACK_BATCH (WEFT__STACK_CACHE / 2) /* moved at once, cache <-> pool */

static struct {
    weft__spinlock lock;        /* lock order 10: STACK_POOL (sched.h) */
    weft__spinlock map_lock;    /* serialises creating mappings; lock
                                   order 10: STACK_MAP */
    weft__stack *warm;          /* default-size stacks with their memory */
    uint32_t nwarm;
    weft__stack *cold;          /* default-size stacks, memory given back */
    uint32_t ncold;
    weft__stack *slab_free;     /* unused slab stacks */
    struct slab { char *map; size_t bytes; } *slabs; /* for teardown */
    uint32_t nslabs, slab_cap;
    _Atomic uint32_t guarded;   /* live guarded mappings */
    uint32_t guard_budget;
    size_t page;
    uint32_t slab_stacks;       /* stacks in the first slab */
} pool = {.lock = WEFT__SPINLOCK_INIT, .map_lock = WEFT__SPINLOCK_INIT};

static uint32_t read_guard_budget(void)
{
    /* Leave 8,192 entries to the program itself and to slabs. */
    long budget = (weft__max_map_count() - 8192) / 2;
    return budget > 0 ? (uint32_t)budget : 0;
}

static weft__stack *describe(size_t asked, char *lo, size_t size, char *map,
                             size_t map_size)
{
    weft__stack *s = weft__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->asked = asked;
    s->lo = lo;
    s->size = size;
    s->map = map;
    if (map)
        s->map_size = map_size;
    s->vg_id = VALGRIND_STACK_REGISTER(lo, lo + size);
    /* s->tsan_fiber: made when a thread first runs on s (loop.c),
     * not here, where a slab's thousands of stacks are described under
     * the pool's lock. */
    return s;
}

/* Maps a guarded stack and faults in its top page, which every thread
 * touches. Carriers do this one at a time: done concurrently, the mmap,
 * mprotect and fault contend on the kernel's mm lock, whose sleeping
 * waiters cost a cross-CPU wake-up each; a spin here costs far less. */
static char *map_and_touch(size_t map_size)
{
    weft__spin_lock(&pool.map_lock, WEFT__LOCK_STACK_MAP);
    char *map = weft__mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                     -1, 0);
    if (map != MAP_FAILED && mprotect(map, pool.page, PROT_NONE)) {
        munmap(map, map_size);
        map = MAP_FAILED;
    }
    if (map != MAP_FAILED)
        ((volatile char *)map)[map_size - 1] = 0;
    weft__spin_unlock(&pool.map_lock);
    return map;
}

/* What a failed mapping was short of: map entries (there are guard-less
 * ways on) or memory (there are none). */
typedef enum { SHORT_OF_MAPS, SHORT_OF_MEMORY } shortage;

static shortage shortage_of(int err)
{
    return err == ENOMEM && weft__maps_exhausted() ? SHORT_OF_MAPS
                                                    : SHORT_OF_MEMORY;
}

/* A guarded stack, or NULL with *why (and *err: the kernel's word). */
static weft__stack *map_guarded(size_t size, shortage *why, int *err)
{
    *why = SHORT_OF_MAPS;
    uint32_t n = atomic_fetch_add(&pool.guarded, 1);
    if (n >= pool.guard_budget)
        goto err_budget;
    size_t map_size = size + pool.page;
    char *map = map_and_touch(map_size);
    if (map == MAP_FAILED) {
        *err = errno;
        *why = shortage_of(*err);
        goto err_budget;
    }
    weft__stack *s = describe(size, map + pool.page, size, map, map_size);
    if (!s) {
        *err = ENOMEM;
        *why = SHORT_OF_MEMORY;
        goto err_unmap;
    }
    return s;
err_unmap:
    munmap(map, map_size);
err_budget:
    atomic_fetch_sub(&pool.guarded, 1);
    return NULL;
}

static void unmap_guarded(weft__stack *s)
{
    VALGRIND_STACK_DEREGISTER(s->vg_id);
    weft__fiber_destroy(s->tsan_fiber);
    munmap(s->map, s->map_size);
    atomic_fetch_sub(&pool.guarded, 1);
    free(s);
}

/* A slab: a guard page, a page whose last bytes are the first slot's
 * canary, then the slots. The guard bounds how far an overflow that runs
 * down through the slots below it can go before it faults. */
static uint32_t next_slab_stacks(void)
{
    uint32_t doublings = pool.nslabs < SLAB_GROWTH ? pool.nslabs : SLAB_GROWTH;
    return pool.slab_stacks << doublings;
}

static bool note_slab(char *map, size_t bytes)
{
    if (pool.nslabs == pool.slab_cap) {
        uint32_t cap = pool.slab_cap ? 2 * pool.slab_cap : 64;
        struct slab *slabs = weft__realloc(pool.slabs, cap * sizeof *slabs);
        if (!slabs)
            return false;
        pool.slabs = slabs;
        pool.slab_cap = cap;
    }
    pool.slabs[pool.nslabs++] = (struct slab){map, bytes};
    return true;
}

/* Under pool.lock. Carves a new slab into the free list. */
static bool grow_slabs(size_t size)
{
    uint32_t n = next_slab_stacks();
    size_t bytes = 2 * pool.page + size * n;
    char *slab = weft__mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                      -1, 0);
    if (slab == MAP_FAILED)
        return false;
    if (!note_slab(slab, bytes)) {
        munmap(slab, bytes);
        return false;
    }
    /* Without map entries to split it, the slab goes without its guard:
     * the canary still checks each switch. */
    (void)mprotect(slab, pool.page, PROT_NONE);
    /* Handed out lowest first: a stack's canary then lies on a page its
     * neighbour below has already touched. */
    for (uint32_t i = n; i-- > 0;) {
        size_t below = 2 * pool.page + (size_t)i * size;
        weft__stack *s = describe(size, slab + below, size - WEFT__CANARY,
                                  NULL, 0);
        if (!s)
            continue; /* that slot stays unused */
        s->slab_below = below;
        s->next = pool.slab_free;
        pool.slab_free = s;
    }
    return pool.slab_free != NULL;
}

static weft__stack *from_slab(size_t size)
{
    if (size >= WEFT__COMPACT_LIMIT)
        weft__warn_no_guards(pool.guard_budget);
    weft__spin_lock(&pool.lock, WEFT__LOCK_STACK_POOL);
    weft__stack *s = pool.slab_free;
    if (!s && grow_slabs(size))
        s = pool.slab_free;
    if (s)
        pool.slab_free = s->next;
    weft__spin_unlock(&pool.lock);
    return s;
}

static weft__stack *pop(weft__stack **list, uint32_t *n)
{
    weft__stack *s = *list;
    if (s) {
        *list = s->next;
        (*n)--;
    }
    return s;
}

static void push(weft__stack **list, uint32_t *n, weft__stack *s)
{
    s->next = *list;
    *list = s;
    (*n)++;
}

static weft__stack *from_pools(void)
{
    weft__spin_lock(&pool.lock, WEFT__LOCK_STACK_POOL);
    weft__stack *s = pop(&pool.warm, &pool.nwarm);
    if (!s)
        s = pop(&pool.cold, &pool.ncold);
    weft__spin_unlock(&pool.lock);
    return s;
}

/* A stack of its own size with no map entries to spare for a guard: one
 * mapping, no guard, canary-checked like a slab stack (its canary at the
 * end of a page of its own below it). */
static weft__stack *map_unguarded(size_t size)
{
    size_t map_size = size + pool.page;
    char *map = weft__mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                     -1, 0);
    if (map == MAP_FAILED)
        return NULL;
    weft__warn_no_guards(pool.guard_budget);
    weft__stack *s = describe(size, map + pool.page, size, NULL, map_size);
    if (!s)
        munmap(map, map_size);
    return s;
}

/* A stack mapped anew: guarded if the map-entry budget allows, else
 * guard-less; NULL (after a warning that says why) when memory is out. */
static weft__stack *map_new(size_t size, bool pooled)
{
    shortage why = SHORT_OF_MAPS;
    int err = ENOMEM;
    weft__stack *s = NULL;
    if (pooled && size < WEFT__COMPACT_LIMIT)
        s = from_slab(size);
    else if ((s = map_guarded(size, &why, &err)))
        return s;
    else if (why == SHORT_OF_MAPS)
        s = pooled ? from_slab(size) : map_unguarded(size);
    if (!s)
        weft__warn_no_stack(size, err);
    return s;
}

/* Owner of p. Moves up to STACK_BATCH pooled stacks to p's empty cache,
 * under one lock. Stacks are taken by the spawner's P and given back by
 * the P's that ran their threads: moved one at a time, each would cost
 * the pool's lock twice (thread.c moves records in batches likewise).
 * False if the pools are empty. */
static bool refill(weft__proc *p)
{
    weft__spin_lock(&pool.lock, WEFT__LOCK_STACK_POOL);
    for (uint32_t i = 0; i < STACK_BATCH; i++) {
        weft__stack *s = pop(&pool.warm, &pool.nwarm);
        if (!s && !(s = pop(&pool.cold, &pool.ncold)))
            break;
        push(&p->stacks, &p->nstacks, s);
    }
    weft__spin_unlock(&pool.lock);
    return p->stacks != NULL;
}

/* Owner of p. Moves STACK_BATCH stacks of p's full cache to the warm
 * pool, under one lock. */
static void spill(weft__proc *p)
{
    weft__spin_lock(&pool.lock, WEFT__LOCK_STACK_POOL);
    for (uint32_t i = 0; i < STACK_BATCH && p->stacks; i++)
        push(&pool.warm, &pool.nwarm, pop(&p->stacks, &p->nstacks));
    weft__spin_unlock(&pool.lock);
}

/* weft__stack_get's way when the P's cache cannot serve (stack.h). */
weft__stack *weft__stack_get_slow(weft__proc *p, size_t size)
{
    bool pooled = size == weft__S.stack_size;
    weft__stack *s = NULL;
    if (pooled && p && (p->stacks || refill(p)))
        return pop(&p->stacks, &p->nstacks);
    if (pooled && !p && (s = from_pools()))
        return s;
    return map_new(size, pooled);
}

/* weft__stack_put's way when the P's cache cannot take s (stack.h). */
void weft__stack_put_slow(weft__proc *p, weft__stack *s)
{
    bool pooled = s->asked == weft__S.stack_size;
    if (pooled && p) {
        push(&p->stacks, &p->nstacks, s);
        if (p->nstacks > WEFT__STACK_CACHE)
            spill(p);
        return;
    }
    if (!pooled) {
        if (s->map) {
            unmap_guarded(s);
            return;
        }
        VALGRIND_STACK_DEREGISTER(s->vg_id);
        weft__fiber_destroy(s->tsan_fiber);
        munmap(s->lo - pool.page, s->map_size);
        free(s);
        return;
    }
    weft__spin_lock(&pool.lock, WEFT__LOCK_STACK_POOL);
    push(&pool.warm, &pool.nwarm, s);
    weft__spin_unlock(&pool.lock);
}

/* Gives back the memory of the pages wholly inside s (in compact mode,
 * none: stacks share pages). Never a neighbour's canary, which lies
 * outside s. */
static void give_back(weft__stack *s)
{
    uintptr_t lo = ((uintptr_t)s->lo + pool.page - 1) & ~(pool.page - 1);
    uintptr_t hi = ((uintptr_t)s->lo + s->size) & ~(pool.page - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Runs on: a carrier about to sleep. Gives back the memory of warm stacks
 * beyond WARM_KEEP, at most TRIM_BATCH of them (it is called again at the
 * next idle). */
void weft__stacks_trim(void)
{
    for (int i = 0; i < TRIM_BATCH; i++) {
        weft__spin_lock(&pool.lock, WEFT__LOCK_STACK_POOL);
        weft__stack *s = pool.nwarm > WARM_KEEP ? pop(&pool.warm, &pool.nwarm)
                                                : NULL;
        bool unmap = s && s->map && pool.ncold >= COLD_MAX;
        weft__spin_unlock(&pool.lock);
        if (!s)
            return;
        if (unmap) {
            unmap_guarded(s);
            continue;
        }
        give_back(s);
        weft__spin_lock(&pool.lock, WEFT__LOCK_STACK_POOL);
        push(&pool.cold, &pool.ncold, s);
        weft__spin_unlock(&pool.lock);
    }
}

bool weft__stack_canary_ok(const weft__stack *s)
{
    const uint64_t *w = (const uint64_t *)(s->lo - WEFT__CANARY);
    uint64_t acc = 0;
    for (size_t i = 0; i < WEFT__CANARY / sizeof *w; i++)
        acc |= w[i];
    return acc == 0;
}

bool weft__stack_guard_hit(const weft__stack *s, const void *addr)
{
    const char *a = addr;
    return s->map && a >= s->map && a < s->lo;
}

/* How far below s->lo an overflow of s may run before it faults, or
 * before its fault is no longer taken for one: a guarded stack's guard
 * and frames that jump it by up to WEFT__OVERFLOW_REACH; for a stack
 * without a guard, also every stack of its slab below it (or, for a
 * stack of its own size, as much). */
size_t weft__stack_reach(const weft__stack *s)
{
    if (s->map)
        return WEFT__OVERFLOW_REACH;
    return WEFT__OVERFLOW_REACH + s->slab_below;
}

static void free_list(weft__stack *s)
{
    while (s) {
        weft__stack *next = s->next;
        if (s->map)
            unmap_guarded(s);
        else {
            VALGRIND_STACK_DEREGISTER(s->vg_id);
            weft__fiber_destroy(s->tsan_fiber);
            free(s);
        }
        s = next;
    }
}

/* Runs on: weft_run's thread at teardown. */
void weft__stacks_free(weft__proc *p)
{
    free_list(p->stacks);
    p->stacks = NULL;
    p->nstacks = 0;
}

/* Runs on: weft_run's thread at teardown, after every P's cache is freed:
 * every slab stack is then in a pool. */
void weft__stacks_teardown(void)
{
    free_list(pool.warm);
    free_list(pool.cold);
    free_list(pool.slab_free);
    pool.warm = pool.cold = pool.slab_free = NULL;
    pool.nwarm = pool.ncold = 0;
    for (uint32_t i = 0; i < pool.nslabs; i++)
        munmap(pool.slabs[i].map, pool.slabs[i].bytes);
    free(pool.slabs);
    pool.slabs = NULL;
    pool.nslabs = pool.slab_cap = 0;
}

void weft__stacks_init(void)
{
    pool.page = weft__page();
    pool.guard_budget = read_guard_budget();
    /* Lets tests reach the guard-less fallback without 28,000 threads. */
    const char *env = getenv("WEFT_GUARD_BUDGET");
    if (env)
        pool.guard_budget = (uint32_t)strtoul(env, NULL, 10);
    weft__stackwhy_reset();
    size_t per = SLAB_MIN_BYTES / weft__S.stack_size;
    pool.slab_stacks = per > SLAB_MIN_STACKS ? (uint32_t)per : SLAB_MIN_STACKS;
}
