/* SPDX-License-Identifier: MIT */
/*
 * lockorder.c — helper for tests/lockorder.c, built only with
 * WEFT_LOCK_ORDER: takes spinlocks in the order its argument names, in
 * or out of the declared lock order (src/sched/sched.h). A case in order
 * exits 0; one out of order must die of the runtime's panic, whose
 * message the test reads on stderr. White-box: it takes the runtime's
 * spinlocks directly, and the scheduler's own lock in "real_locks".
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "sched/carrier.h"
#include "sync/chan.h"

/* Two locks side by side: a[0] below a[1]. */
static weft__spinlock a[2];

/* Takes x, then y (of classes cx, cy, keys kx, ky); releases x first (not
 * last in, first out: allowed), then y. 0 if the check counted them; a
 * case out of order dies taking y. */
static int take_two(weft__spinlock *x, weft__lock_class cx, uint32_t kx,
                    weft__spinlock *y, weft__lock_class cy, uint32_t ky)
{
    weft__spin_lock_keyed(x, cx, kx);
    weft__spin_lock_keyed(y, cy, ky);
    bool counted = weft__lockrank_held() == 2;
    weft__spin_unlock(x);
    weft__spin_unlock(y);
    return counted && weft__lockrank_held() == 0 ? 0 : 1;
}

/* The cases of two locks: x (class, key) taken first, then y. */
static const struct pair {
    const char *name;
    weft__spinlock *x;
    weft__lock_class cx;
    uint32_t kx;
    weft__spinlock *y;
    weft__lock_class cy;
    uint32_t ky;
} pairs[] = {
    /* a level after a held one's: in order; before it: not */
    {"right_levels", &a[0], WEFT__LOCK_CHAN, 0, &a[1], WEFT__LOCK_SCHED, 0},
    {"wrong_levels", &a[0], WEFT__LOCK_SCHED, 0, &a[1], WEFT__LOCK_CHAN, 0},
    /* a class that orders its own locks by address */
    {"address_ascending", &a[0], WEFT__LOCK_CHAN, 0, &a[1], WEFT__LOCK_CHAN,
     0},
    {"address_descending", &a[1], WEFT__LOCK_CHAN, 0, &a[0],
     WEFT__LOCK_CHAN, 0},
    /* a class that does not; two classes of one level */
    {"never_nest", &a[0], WEFT__LOCK_TIMERS, 0, &a[1], WEFT__LOCK_TIMERS, 0},
    {"level_peers", &a[0], WEFT__LOCK_MUTEX, 0, &a[1], WEFT__LOCK_SEM, 0},
    /* scope locks: by depth first, whatever the addresses */
    {"scope_ancestor_first", &a[1], WEFT__LOCK_SCOPE, 1, &a[0],
     WEFT__LOCK_SCOPE, 2},
    {"scope_descendant_first", &a[0], WEFT__LOCK_SCOPE, 2, &a[1],
     WEFT__LOCK_SCOPE, 1},
    /* relocking a lock the thread holds panics instead of spinning */
    {"relock", &a[0], WEFT__LOCK_FD, 0, &a[0], WEFT__LOCK_FD, 0},
};

static int unlock_unheld(void)
{
    weft__spin_unlock(&a[0]);
    return 0;
}

/* More locks than the thread-local room holds, in order, then one out
 * of order below the lowest of them (recorded in the spill area). */
#define MANY 300
static weft__spinlock many[MANY + 1];

static int take_many(void)
{
    for (int i = 1; i <= MANY; i++)
        weft__spin_lock(&many[i], WEFT__LOCK_CHAN);
    return (int)weft__lockrank_held();
}

static void drop_many(void)
{
    for (int i = MANY; i >= 1; i--)
        weft__spin_unlock(&many[i]);
}

static int spill_in_order(void)
{
    int held = take_many();
    drop_many();
    held -= take_many(); /* the spill area again, mapped afresh */
    drop_many();
    return held == 0 && weft__lockrank_held() == 0 ? 0 : 1;
}

static int spill_out_of_order(void)
{
    take_many();
    weft__spin_lock(&many[0], WEFT__LOCK_CHAN);
    return 0;
}

/* The runtime's own call sites: a channel's lock taken under the
 * scheduler lock. */
static int real_locks(void)
{
    weft_chan *c = weft_chan_make(sizeof(int), 1);
    if (!c)
        return 1;
    int v = 1;
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    weft_chan_try_send(c, &v);
    return 0;
}

/* A virtual thread that switches out holding a lock. */
static int yield_holding(void *arg)
{
    weft__spin_lock(&a[0], WEFT__LOCK_CHAN);
    weft_yield();
    return 0;
}

static int switch_holding(void)
{
    weft_config cfg = {.procs = 1};
    return weft_run(yield_holding, NULL, &cfg);
}

static const struct {
    const char *name;
    int (*run)(void);
} cases[] = {
    {"unlock_unheld", unlock_unheld},
    {"spill_in_order", spill_in_order},
    {"spill_out_of_order", spill_out_of_order},
    {"real_locks", real_locks},
    {"switch_holding", switch_holding},
};

static int run(const char *name)
{
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const struct pair *p = &pairs[i];
        if (!strcmp(name, p->name))
            return take_two(p->x, p->cx, p->kx, p->y, p->cy, p->ky);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!strcmp(name, cases[i].name))
            return cases[i].run();
    fprintf(stderr, "lockorder: no case %s\n", name);
    return 2;
}

int main(int argc, char **argv)
{
    alarm(30);
    if (argc != 2)
        return 2;
    int rc = run(argv[1]);
    fprintf(stderr, "lockorder: %s returned %d\n", argv[1], rc);
    return rc;
}
