/* SPDX-License-Identifier: MIT */
/*
 * keys.c — pthread keys (and C11 tss_*) belong to the virtual thread.
 *
 * Libraries keep per-thread state in pthread keys: OpenSSL its error
 * queue, others a per-thread buffer or context. Virtual threads that share
 * a carrier would share, and corrupt, that state if the keys stayed the
 * carrier's; so, as Java's ThreadLocal belongs to the virtual thread,
 * libweft defines pthread_key_create, pthread_key_delete,
 * pthread_getspecific and pthread_setspecific, and tss_create, tss_delete,
 * tss_get and tss_set (glibc's tss_* call its pthread functions
 * internally, past any hook).
 *
 * Key space. glibc's key numbers are the only ones: a create is glibc's
 * create, and then its number indexes this file's table of slots, which
 * records the destructor and a word
 *
 *     seq << 2 | VIRTUAL | LIVE
 *
 * LIVE: created through these hooks and not deleted since. VIRTUAL (only
 * with LIVE): values are per virtual thread; clear when WEFT_KEYS=carrier
 * or WEFT_HOOKS=0 was in force at the create, when a sanitizer runtime
 * made the key (ASan finds the OS thread calling malloc through one), or
 * after weft_key_per_carrier. seq is bumped by every create and delete (a
 * CAS on the word, so it only grows; 62 bits never wrap).
 *
 * Values. On a virtual thread, a VIRTUAL key's value lives in the
 * thread's own table (weft_thread.keys, made at its first set: 32 blocks
 * of 32 entries, a block made at the first set of one of its keys), each
 * entry {value, the slot's word when it was set}. A get returns the value
 * only if the entry's word is the slot's word now: so a key deleted and
 * created again with the same number reads NULL in a thread that had set
 * the old one, and never gives it the old value. Everything else — OS
 * threads, carriers outside a virtual thread (the scheduler's context),
 * keys that are not VIRTUAL, numbers past the table — passes straight to
 * glibc, which keeps those values per OS thread. A key created before
 * weft_run, or on an OS thread, is a key like any other.
 *
 * Destructors. glibc gets the destructor too, for the values OS threads
 * set. A virtual thread's values are destroyed when its function has
 * returned (before it waits for its children, so that a destructor may
 * spawn), on its own stack: POSIX's rounds, at most
 * PTHREAD_DESTRUCTOR_ITERATIONS, each calling the destructor of every
 * non-NULL value of a live key with one, the value set to NULL first. A
 * deleted key's values are dropped without a call. A value set on a key
 * that was then made per carrier is still destroyed.
 *
 * The hot path (a get on a virtual thread) takes no lock and makes no
 * call: the carrier from TLS, its current thread, the slot's word, two
 * table loads and a compare (bench/foreign_calls.c measures it against
 * glibc's own). Creates and deletes are rare and take no lock either.
 *
 * Memory order. The slot word is read relaxed on the hot path: a thread
 * that uses a key learnt its number from whoever created it, through
 * whatever synchronisation passed it on, which orders the create's store
 * before this load. The destructor is stored before the word (release) and
 * read after it (acquire) at thread end.
 *
 * Sanitizers. TSan calls pthread_key_create while it starts up, and
 * pthread_setspecific while it starts each OS thread, before it can run
 * instrumented code: under TSan this file is built uninstrumented
 * (CMakeLists.txt), binds glibc's functions itself and calls no libc
 * string function on that path.
 *
 * Rejected: a key space of our own (keys made before weft_run, or by code
 * that reaches glibc without the hooks, would not exist in it); storing a
 * virtual thread's values in glibc's slots and swapping them at each
 * switch (a cost on every switch, for every key ever created).
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "base/fault.h"
#include "base/real.h"
#include "foreign/foreign.h"
#include "io/io.h"
#include "sched/sched.h"

#define HOOK __attribute__((visibility("default")))

enum {
    NKEYS = PTHREAD_KEYS_MAX,  /* glibc: 1024 */
    BLOCK = 32,                /* entries per block */
    NBLOCKS = NKEYS / BLOCK,
};
_Static_assert(NKEYS % BLOCK == 0, "whole blocks");

enum { LIVE = 1, VIRTUAL = 2, FLAGS = 3, SEQ_ONE = 4 };

static _Atomic uint64_t words[NKEYS];
static void (*_Atomic dtors[NKEYS])(void *);

typedef struct entry {
    void *value;
    uint64_t word; /* the slot's word at the set */
} entry;

struct weft__keys {
    entry *blocks[NBLOCKS];
};

/* Fault injection for tests: while positive, key-table allocations count
 * it down, and the one that brings it to 0 fails. */
_Atomic int weft__keys_fail_alloc;

static void *alloc(size_t size)
{
    if (unlikely(atomic_load_explicit(&weft__keys_fail_alloc,
                                      memory_order_relaxed) > 0) &&
        atomic_fetch_sub(&weft__keys_fail_alloc, 1) == 1)
        return NULL;
    return weft__calloc(1, size);
}

/* ------------------------------------------------------------- slots */

/* Whether name starts with prefix (no libc string call: this runs inside
 * a sanitizer runtime's start-up, before its interceptors are set up). */
static bool starts_with(const char *name, const char *prefix)
{
    while (*prefix && *name == *prefix)
        name++, prefix++;
    return !*prefix;
}

/* Whether code at caller belongs to a sanitizer runtime loaded as a
 * shared library. Their keys track OS threads: ASan finds the thread that
 * calls malloc through one, and would find none on a virtual thread. */
static bool sanitizer_code(const void *caller)
{
    static const char *const names[] = {
        "libasan.", "libtsan.", "liblsan.", "libubsan.", "libhwasan.",
        "libmsan.", "libclang_rt.",
    };
    Dl_info info;
    if (!dladdr(caller, &info) || !info.dli_fname)
        return false;
    const char *base = info.dli_fname;
    for (const char *c = base; *c; c++)
        if (*c == '/')
            base = c + 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (starts_with(base, names[i]))
            return true;
    return false;
}

/* Runs on: any thread. Whether a key that code at caller makes now is
 * per virtual thread. */
static bool keys_virtual(const void *caller)
{
    if (sanitizer_code(caller))
        return false; /* first: nothing else runs inside its start-up */
    const char *v = getenv("WEFT_KEYS");
    return weft__hooks_on() && !(v && !strcmp(v, "carrier"));
}

/* Sets slot k's flags, bumping its seq when bump. */
static void slot_update(unsigned k, uint64_t flags, bool bump)
{
    uint64_t w = atomic_load_explicit(&words[k], memory_order_relaxed);
    uint64_t nw;
    do
        nw = ((w & ~(uint64_t)FLAGS) + (bump ? SEQ_ONE : 0)) | flags;
    while (!atomic_compare_exchange_weak_explicit(
        &words[k], &w, nw, memory_order_release, memory_order_relaxed));
}

/* Runs on: any thread. The key glibc just made for caller, k, is ours. */
static void slot_create(unsigned k, void (*dtor)(void *), const void *caller)
{
    atomic_store_explicit(&dtors[k], dtor, memory_order_relaxed);
    slot_update(k, LIVE | (keys_virtual(caller) ? VIRTUAL : 0), true);
}

/* Runs on: any thread: before glibc may give k's number out again. */
static void slot_delete(unsigned k)
{
    if (atomic_load_explicit(&words[k], memory_order_relaxed) & LIVE)
        slot_update(k, 0, true);
}

/* -------------------------------------------------------- thread tables */

/* The calling virtual thread, or NULL (an OS thread, or a carrier in its
 * scheduler context). Nothing here parks: the carrier read inline is
 * used before any switch. */
static inline weft_thread *self(void)
{
    weft__carrier *m = weft__m_here();
    return m ? __atomic_load_n(&m->cur, __ATOMIC_RELAXED) : NULL;
}

/* g's entry for key k, or NULL if it has none. */
static inline entry *entry_of(const weft_thread *g, unsigned k)
{
    const weft__keys *t = g->keys;
    if (!t)
        return NULL;
    entry *b = t->blocks[k / BLOCK];
    return b ? &b[k % BLOCK] : NULL;
}

/* g's entry for key k, made if missing; NULL: ENOMEM. Owner only. */
static entry *entry_make(weft_thread *g, unsigned k)
{
    if (!g->keys && !(g->keys = alloc(sizeof *g->keys)))
        return NULL;
    entry **b = &g->keys->blocks[k / BLOCK];
    if (!*b && !(*b = alloc(BLOCK * sizeof **b)))
        return NULL;
    return &(*b)[k % BLOCK];
}

/* glibc's value: kept out of line, so that the hot path below needs no
 * saved register and no frame beyond its own. */
__attribute__((noinline)) static void *carrier_get(unsigned k)
{
    return weft__real(pthread_getspecific)(k);
}

/* The hot path: inlined into each hook. */
__attribute__((always_inline)) static inline void *key_get(unsigned k)
{
    weft_thread *g = self();
    if (unlikely(!g) || unlikely(k >= NKEYS))
        return carrier_get(k);
    uint64_t w = atomic_load_explicit(&words[k], memory_order_relaxed);
    if (unlikely(!(w & VIRTUAL)))
        return carrier_get(k);
    const entry *e = entry_of(g, k);
    return e && e->word == w ? e->value : NULL;
}

static int key_set(unsigned k, void *value)
{
    weft_thread *g = self();
    uint64_t w = k < NKEYS ? atomic_load_explicit(&words[k],
                                                  memory_order_relaxed) : 0;
    if (!g || !(w & VIRTUAL))
        return weft__real(pthread_setspecific)(k, value);
    entry *e = entry_of(g, k);
    if (!e && !value)
        return 0; /* unset already: nothing to make */
    if (!e && !(e = entry_make(g, k)))
        return ENOMEM;
    e->value = value;
    e->word = w;
    return 0;
}

static int key_create(unsigned *k, void (*dtor)(void *), const void *caller)
{
    int r = weft__real(pthread_key_create)(k, dtor);
    if (r == 0 && *k < NKEYS)
        slot_create(*k, dtor, caller);
    return r;
}

static int key_delete(unsigned k)
{
    if (k < NKEYS)
        slot_delete(k);
    return weft__real(pthread_key_delete)(k);
}

/* One round of destructors over g's values; true if it called any. */
static bool dtor_round(weft_thread *g)
{
    bool called = false;
    for (unsigned k = 0; k < NKEYS; k++) {
        if (k % BLOCK == 0 && !g->keys->blocks[k / BLOCK]) {
            k += BLOCK - 1; /* a block is never freed: skip an absent one */
            continue;
        }
        entry *e = &g->keys->blocks[k / BLOCK][k % BLOCK];
        uint64_t w = atomic_load_explicit(&words[k], memory_order_acquire);
        void (*dtor)(void *) =
            atomic_load_explicit(&dtors[k], memory_order_relaxed);
        if (!e->value || !(w & LIVE) || (e->word ^ w) & ~(uint64_t)FLAGS ||
            !dtor)
            continue;
        void *v = e->value;
        e->value = NULL;
        dtor(v); /* may set values again, park, spawn */
        called = true;
    }
    return called;
}

/* Runs on: g's end, or teardown after a deadlock (no destructor calls: g
 * never finished). Frees g's table. */
static void keys_drop(weft_thread *g)
{
    weft__keys *t = g->keys;
    if (!t)
        return;
    for (unsigned b = 0; b < NBLOCKS; b++)
        free(t->blocks[b]);
    free(t);
    g->keys = NULL;
}

/* Runs on: g's own stack, its function returned. Calls the destructors of
 * its values, then frees its table. */
static void keys_exit(weft_thread *g)
{
    for (int i = 0; g->keys && i < PTHREAD_DESTRUCTOR_ITERATIONS; i++)
        if (!dtor_round(g))
            break;
    keys_drop(g);
}

/* Called by weft_run (foreign.h), which links this file into every
 * program linked with libweft.a: then the hooks above are the ones a
 * shared library's pthread_getspecific reaches. */
void weft__keys_linked(void)
{
}

__attribute__((constructor)) static void register_hooks(void)
{
    weft__keys_hooks.exit = keys_exit;
    weft__keys_hooks.drop = keys_drop;
}


/* ------------------------------------------------------------ public */

int weft_key_per_carrier(pthread_key_t key)
{
    if (key >= NKEYS)
        return EINVAL;
    uint64_t w = atomic_load_explicit(&words[key], memory_order_relaxed);
    do
        if (!(w & LIVE))
            return EINVAL;
    while (!atomic_compare_exchange_weak_explicit(
        &words[key], &w, w & ~(uint64_t)VIRTUAL, memory_order_release,
        memory_order_relaxed));
    return 0;
}

/* ------------------------------------------------------------- hooks */

HOOK int pthread_key_create(pthread_key_t *key, void (*dtor)(void *))
{
    return key_create(key, dtor, __builtin_return_address(0));
}

HOOK int pthread_key_delete(pthread_key_t key)
{
    return key_delete(key);
}

HOOK void *pthread_getspecific(pthread_key_t key)
{
    return key_get(key);
}

/* glibc declares value access-none: passed on as a plain void * (a const
 * pointer handed to a function reads as a read of what it points to). */
HOOK int pthread_setspecific(pthread_key_t key, const void *value)
{
    return key_set(key, (void *)value);
}

/* glibc's mapping of error numbers to thrd_* results. */
static int thrd_result(int e)
{
    switch (e) {
    case 0: return thrd_success;
    case ENOMEM: return thrd_nomem;
    case EBUSY: return thrd_busy;
    case ETIMEDOUT: return thrd_timedout;
    default: return thrd_error;
    }
}

HOOK int tss_create(tss_t *key, tss_dtor_t dtor)
{
    return thrd_result(key_create(key, dtor, __builtin_return_address(0)));
}

HOOK void tss_delete(tss_t key)
{
    key_delete(key);
}

HOOK void *tss_get(tss_t key)
{
    return key_get(key);
}

HOOK int tss_set(tss_t key, void *value)
{
    return thrd_result(key_set(key, value));
}
