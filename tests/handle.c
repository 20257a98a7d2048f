/* SPDX-License-Identifier: MIT */
/*
 * handle.c — thread handles that outlive their thread: a handle whose
 * thread was joined, whose detached thread ended, whose scope closed, or
 * whose record was reused by a later spawn is refused with ESRCH by every
 * call that takes a handle, and never reaches the thread that now uses
 * the record.
 *
 * The unit tests run on one P, where a record freed by a join is the very
 * one the next spawn takes (the P's cache is a stack): the stale handle
 * then names a live stranger. The stress test spawns, joins, cancels and
 * selects across carriers while other threads fire stale handles at them.
 */
#include "wt_stress.h"

#include "sched/carrier.h" /* weft__g and the claim word: white-box */

/* A child that sleeps `ms` and reports whether its sleep was cancelled. */
struct sleeper {
    int ms;
    int sleep_rc;
    atomic_int ran;
};

static int sleeper_main(void *arg)
{
    struct sleeper *s = arg;
    s->sleep_rc = weft_sleep(WT_MS(s->ms));
    atomic_store(&s->ran, 1);
    return 0;
}

static int ret_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

/* Spawns, joins and returns the handle, now stale. (A child that returns
 * non-zero fails, and cancels its parent's scope: results are 0 here.) */
static weft_thread *joined_handle(void)
{
    weft_thread *t = wt_go(ret_arg, NULL);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, 0);
    return t;
}

/* Spawns the thread that takes the record a stale handle named (on one
 * P, the next spawn does). It sleeps 20 ms: calls made on the stale
 * handle meanwhile find it running. */
static weft_thread *stranger(struct sleeper *s)
{
    s->ms = 20;
    s->sleep_rc = -1;
    atomic_store(&s->ran, 0);
    return wt_go(sleeper_main, s);
}

/* Joins the stranger: it slept its full time, uncancelled. */
static void check_stranger(weft_thread *t, struct sleeper *s)
{
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, 0);
    WT_CHECK_EQ(atomic_load(&s->ran), 1);
    WT_CHECK_EQ(s->sleep_rc, 0);
}

/* ------------------------------------------------------------ join */

static int root_join_twice(void *arg)
{
    weft_thread *t = joined_handle();
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), ESRCH);
    WT_CHECK_EQ(r, -1);
    WT_CHECK_EQ(weft_detach(t), ESRCH);
    return 0;
}

Test(handle, join_twice_is_esrch, .timeout = 10)
{
    WT_RUN(root_join_twice, NULL, .procs = 1);
}

static int root_join_after_reuse(void *arg)
{
    weft_thread *old = joined_handle();
    struct sleeper s;
    weft_thread *t = stranger(&s);
    WT_REQUIRE(t != NULL);
    WT_CHECK(t != old);
    int r = -1;
    WT_CHECK_EQ(weft_join(old, &r), ESRCH);
    WT_CHECK_EQ(r, -1);
    WT_CHECK_EQ(atomic_load(&s.ran), 0); /* did not wait for t */
    check_stranger(t, &s);
    return 0;
}

Test(handle, join_of_reused_record_is_esrch_and_spares_new_thread,
     .timeout = 10)
{
    WT_RUN(root_join_after_reuse, NULL, .procs = 1);
}

/* A reused record's claim word goes on counting wait generations from
 * where its earlier life left it: a wait timer of that life may still be
 * running its callback with an old generation (park.c), which must match
 * no wait of the new life. (Restarting at 0 let such a timer end a later
 * wait with no deadline at all: weft_chan_recv returned WEFT__EXPIRED.) */
static const weft_thread *g_record;
static uint64_t g_generation;

static int note_generation(void *waits)
{
    for (intptr_t i = 0; i < (intptr_t)waits; i++)
        weft_sleep(WT_MS(1));
    g_record = weft__g();
    g_generation = atomic_load(&weft__g()->claim) >> 2;
    return 0;
}

static int root_generation_survives_reuse(void *arg)
{
    weft_thread *t = wt_go(note_generation, (void *)5);
    WT_REQUIRE(t != NULL);
    WT_REQUIRE_EQ(weft_join(t, NULL), 0);
    const weft_thread *first = g_record;
    uint64_t before = g_generation;
    WT_CHECK(before >= 5);
    t = wt_go(note_generation, NULL);
    WT_REQUIRE(t != NULL);
    WT_REQUIRE_EQ(weft_join(t, NULL), 0);
    WT_CHECK(g_record == first); /* one P: the same record, reused */
    WT_CHECK_MSG(g_generation > before, "generation %llu after %llu",
                 (unsigned long long)g_generation,
                 (unsigned long long)before);
    return 0;
}

Test(handle, reused_record_goes_on_counting_wait_generations,
     .timeout = 10)
{
    WT_RUN(root_generation_survives_reuse, NULL, .procs = 1);
}

/* ------------------------------------------------------------ cancel */

static int root_cancel_after_reuse(void *arg)
{
    weft_thread *old = joined_handle();
    struct sleeper s;
    weft_thread *t = stranger(&s);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_cancel(old), ESRCH);
    check_stranger(t, &s); /* not cancelled */
    WT_CHECK_EQ(weft_cancel(t), ESRCH);
    return 0;
}

Test(handle, cancel_of_reused_record_is_esrch_and_spares_new_thread,
     .timeout = 10)
{
    WT_RUN(root_cancel_after_reuse, NULL, .procs = 1);
}

/* ------------------------------------------------------------ select */

static int root_select_stale(void *arg)
{
    weft_thread *old = joined_handle();
    struct sleeper s;
    weft_thread *t = stranger(&s);
    WT_REQUIRE(t != NULL);
    weft_chan *c = weft_chan_make(sizeof(int), 1);
    WT_REQUIRE(c != NULL);
    int x = 5, v = -1, r = -1;
    WT_CHECK_EQ(weft_chan_send(c, &x), 0);
    /* refused even beside a ready case: nothing is taken */
    weft_case k[2] = {WEFT_JOIN(old, &r), WEFT_RECV(c, &v)};
    for (int deadline = -1; deadline <= 0; deadline++) {
        wt_set_errno(0);
        WT_CHECK_EQ(weft_select(k, 2, deadline), -1);
        WT_CHECK_EQ(wt_errno(), ESRCH);
    }
    WT_CHECK_EQ(r, -1);
    WT_CHECK_EQ(v, -1);
    WT_CHECK_EQ(weft_chan_len(c), 1);
    check_stranger(t, &s);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(handle, select_on_stale_join_is_esrch, .timeout = 10)
{
    WT_RUN(root_select_stale, NULL, .procs = 1);
}

/* A select that joined a thread made its handle stale too. */
static int root_select_joined(void *arg)
{
    weft_thread *t = wt_go(ret_arg, NULL);
    int r = -1;
    weft_case k[1] = {WEFT_JOIN(t, &r)};
    WT_CHECK_EQ(weft_select(k, 1, -1), 0);
    WT_CHECK_EQ(r, 0);
    WT_CHECK_EQ(weft_join(t, NULL), ESRCH);
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(k, 1, 0), -1);
    WT_CHECK_EQ(wt_errno(), ESRCH);
    return 0;
}

Test(handle, join_after_select_joined_is_esrch, .timeout = 10)
{
    WT_RUN(root_select_joined, NULL, .procs = 1);
}

/* ------------------------------------------------- other ways to die */

static int root_name_stale(void *arg)
{
    weft_attr a = {.name = "first"};
    weft_thread *t = weft_go_with(&a, ret_arg, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    a.name = "second";
    weft_thread *u = weft_go_with(&a, ret_arg, NULL);
    WT_REQUIRE(u != NULL);
    wt_set_errno(0);
    WT_CHECK(weft_name(t) == NULL);
    WT_CHECK_EQ(wt_errno(), ESRCH);
    WT_CHECK(weft_name(u) != NULL && strcmp(weft_name(u), "second") == 0);
    WT_CHECK_EQ(weft_join(u, NULL), 0);
    return 0;
}

Test(handle, name_of_stale_handle_is_null_esrch, .timeout = 10)
{
    WT_RUN(root_name_stale, NULL, .procs = 1);
}

static int root_detached_ended(void *arg)
{
    weft_attr a = {.detached = true};
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    struct sleeper d = {.ms = 0};
    weft_thread *t = weft_go_with(&a, sleeper_main, &d);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_scope_close(s), 0); /* t ended, record freed */
    WT_CHECK_EQ(weft_cancel(t), ESRCH);
    WT_CHECK_EQ(weft_join(t, NULL), ESRCH);
    WT_CHECK_EQ(weft_detach(t), ESRCH);
    /* ended but not yet freed (its scope is still open): dead as well */
    struct sleeper e = {.ms = 0};
    weft_thread *u = weft_go_with(&a, sleeper_main, &e);
    WT_REQUIRE(u != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(20)), 0);
    WT_CHECK_EQ(atomic_load(&e.ran), 1);
    WT_CHECK_EQ(weft_cancel(u), ESRCH);
    WT_CHECK_EQ(weft_join(u, NULL), ESRCH);
    return 0;
}

Test(handle, detached_thread_that_ended_is_esrch, .timeout = 10)
{
    WT_RUN(root_detached_ended, NULL, .procs = 1);
}

static int root_scope_closed(void *arg)
{
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    weft_thread *t = wt_go(ret_arg, NULL);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_scope_close(s), 0); /* reaps t unjoined */
    struct sleeper n;
    weft_thread *u = stranger(&n);
    WT_CHECK_EQ(weft_join(t, NULL), ESRCH);
    WT_CHECK_EQ(weft_cancel(t), ESRCH);
    check_stranger(u, &n);
    return 0;
}

Test(handle, handle_of_closed_scope_is_esrch, .timeout = 10)
{
    WT_RUN(root_scope_closed, NULL, .procs = 1);
}

/* A handle kept from an earlier weft_run: its record is gone. */
static weft_thread *g_earlier;

static int root_keep(void *arg)
{
    g_earlier = wt_go(ret_arg, NULL);
    return 0;
}

static int root_use_earlier(void *arg)
{
    struct sleeper n;
    weft_thread *u = stranger(&n);
    WT_CHECK_EQ(weft_join(g_earlier, NULL), ESRCH);
    WT_CHECK_EQ(weft_cancel(g_earlier), ESRCH);
    check_stranger(u, &n);
    return 0;
}

Test(handle, handle_from_an_earlier_run_is_esrch, .timeout = 10)
{
    WT_RUN(root_keep, NULL, .procs = 1);
    WT_RUN(root_use_earlier, NULL, .procs = 1);
}

/* Not a handle at all: refused, not dereferenced. */
static int root_garbage(void *arg)
{
    weft_thread *bogus = (weft_thread *)(uintptr_t)0x5eed1234;
    WT_CHECK_EQ(weft_join(bogus, NULL), ESRCH);
    WT_CHECK_EQ(weft_cancel(bogus), ESRCH);
    WT_CHECK_EQ(weft_detach(bogus), ESRCH);
    WT_CHECK(weft_name(bogus) == NULL);
    return 0;
}

Test(handle, garbage_handle_is_esrch, .timeout = 10)
{
    WT_RUN(root_garbage, NULL, .procs = 1);
}

/* ------------------------------------------------------------ stress */

/* Workers spawn children in scopes of their own and join, select-join or
 * cancel them; they publish the handles of children that are surely gone
 * (joined, or their scope closed) in a graveyard, and fire every kind of
 * handle call at graves picked at random: each must be refused with ESRCH.
 * They also publish live children, which other workers join (with a
 * select and a short deadline, racing the owner's join and scope close)
 * and cancel. Each child has a record of its own (never reused), so every
 * effect is checked against the child it was meant for: no child is
 * joined twice, and none is cancelled but by a call made on its own
 * handle. */
#define ST_PROCS 4
#define ST_WORKERS 6
#define ST_BATCH 6
#define ST_GRAVES 256
#define ST_SHARES 16
#define ST_MAX_CHILDREN (1 << 16)

struct st_child {
    weft_thread *handle;   /* set before the child is published */
    atomic_int cancel_ok;  /* a cancel was aimed at it */
    atomic_int joined;     /* successful joins of it */
    atomic_int ran;
    int sleep_rc;
    int sleep_us;
};

static struct {
    uint64_t seed;
    int64_t until;
    struct st_child *child;
    atomic_int nchild;
    weft_thread *_Atomic grave[ST_GRAVES];
    atomic_int share[ST_SHARES];  /* child index + 1, or 0 */
    atomic_long stale_calls, foreign_joins;
} st;

static int st_child_main(void *arg)
{
    struct st_child *c = arg;
    c->sleep_rc = c->sleep_us ? weft_sleep(WT_US(c->sleep_us)) : weft_yield();
    atomic_store(&c->ran, 1);
    return 0;
}

/* Fires one handle call, picked by op, at a grave: all must say ESRCH. */
static void st_stale_call(weft_thread *t, int op)
{
    int r = -1;
    weft_case k[1] = {WEFT_JOIN(t, &r)};
    switch (op) {
    case 0:
        WT_CHECK_EQ(weft_join(t, &r), ESRCH);
        break;
    case 1:
        WT_CHECK_MSG(weft_cancel(t) == ESRCH, "cancel of grave %p",
                     (void *)t);
        break;
    case 2:
        WT_CHECK_EQ(weft_detach(t), ESRCH);
        break;
    case 3:
        wt_set_errno(0);
        WT_CHECK_EQ(weft_select(k, 1, 0), -1);
        WT_CHECK_EQ(wt_errno(), ESRCH);
        break;
    default:
        WT_CHECK_MSG(weft_name(t) == NULL, "name of grave %p", (void *)t);
    }
    WT_CHECK_EQ(r, -1);
    atomic_fetch_add(&st.stale_calls, 1);
}

static void st_bury(uint64_t *rs, weft_thread *t)
{
    atomic_store(&st.grave[wt_rnd(rs, ST_GRAVES)], t);
}

static void st_haunt(uint64_t *rs)
{
    weft_thread *t = atomic_load(&st.grave[wt_rnd(rs, ST_GRAVES)]);
    if (t)
        st_stale_call(t, wt_rnd(rs, 5));
}

/* Joins or cancels another worker's child through its shared handle. */
static void st_meddle(uint64_t *rs)
{
    int i = atomic_load(&st.share[wt_rnd(rs, ST_SHARES)]);
    if (!i)
        return;
    struct st_child *c = &st.child[i - 1];
    if (wt_rnd(rs, 4) == 0) {
        atomic_store(&c->cancel_ok, 1);
        int e = weft_cancel(c->handle);
        WT_CHECK_MSG(e == 0 || e == ESRCH, "cancel of shared: %d", e);
        return;
    }
    int r = -1;
    weft_case k[1] = {WEFT_JOIN(c->handle, &r)};
    int idx = weft_select(k, 1, weft_now() + WT_US(wt_rnd(rs, 300)));
    int e = idx == 0 ? 0 : wt_errno();
    WT_CHECK_MSG(idx == 0 || e == ETIMEDOUT || e == ESRCH || e == EINVAL,
                 "foreign select-join: %d errno %d", idx, e);
    if (idx == 0) {
        WT_CHECK_EQ(r, 0);
        WT_CHECK_EQ(atomic_fetch_add(&c->joined, 1), 0);
        atomic_fetch_add(&st.foreign_joins, 1);
    }
}

static struct st_child *st_spawn(uint64_t *rs, bool *joinable)
{
    int i = atomic_fetch_add(&st.nchild, 1);
    if (i >= ST_MAX_CHILDREN)
        return NULL;
    struct st_child *c = &st.child[i];
    c->sleep_us = wt_rnd(rs, 3) ? wt_rnd(rs, 500) : 0;
    weft_attr a = {.detached = wt_rnd(rs, 8) == 0};
    c->handle = weft_go_with(&a, st_child_main, c);
    WT_CHECK(c->handle != NULL);
    if (c->handle && !a.detached && wt_rnd(rs, 3) == 0)
        atomic_store(&st.share[wt_rnd(rs, ST_SHARES)], i + 1);
    *joinable = !a.detached;
    return c->handle ? c : NULL;
}

/* The owner's own way to finish with child c: join, select-join, or
 * cancel then join; or leave it to the scope. Shared children may have
 * been joined by a meddler already (ESRCH) or be being joined (EINVAL). */
static void st_finish_child(uint64_t *rs, struct st_child *c)
{
    int how = wt_rnd(rs, 4), r = -1, e;
    if (how == 3)
        return; /* reaped by the scope's close */
    if (how == 2) {
        atomic_store(&c->cancel_ok, 1);
        e = weft_cancel(c->handle);
        WT_CHECK_MSG(e == 0 || e == ESRCH, "own cancel: %d", e);
    }
    if (how == 1) {
        weft_case k[1] = {WEFT_JOIN(c->handle, &r)};
        e = weft_select(k, 1, -1) == 0 ? 0 : wt_errno();
    } else {
        e = weft_join(c->handle, &r);
    }
    WT_CHECK_MSG(e == 0 || e == ESRCH || e == EINVAL, "own join: %d", e);
    if (e == 0) {
        WT_CHECK_EQ(r, 0);
        WT_CHECK_EQ(atomic_fetch_add(&c->joined, 1), 0);
        st_bury(rs, c->handle);
    }
}

/* After the scope closed: every child ran, was joined at most once, and
 * was cancelled only if someone aimed a cancel at it. */
static void st_check_batch(uint64_t *rs, struct st_child **b, int n)
{
    for (int i = 0; i < n; i++) {
        struct st_child *c = b[i];
        WT_CHECK_EQ(atomic_load(&c->ran), 1);
        WT_CHECK(atomic_load(&c->joined) <= 1);
        if (c->sleep_rc != 0)
            WT_CHECK_MSG(c->sleep_rc == ECANCELED && atomic_load(&c->cancel_ok),
                         "child %ld: sleep %d, no cancel aimed at it",
                         (long)(c - st.child), c->sleep_rc);
        st_bury(rs, c->handle);
    }
}

static void st_round(uint64_t *rs)
{
    weft_scope *s = weft_scope_open();
    WT_CHECK(s != NULL);
    if (!s)
        return;
    struct st_child *b[ST_BATCH];
    int n = 0;
    bool joinable[ST_BATCH];
    for (int i = 0; i < ST_BATCH; i++) {
        struct st_child *c = st_spawn(rs, &joinable[n]);
        if (c)
            b[n++] = c;
        st_haunt(rs);
    }
    for (int i = 0; i < n; i++) {
        if (joinable[i])
            st_finish_child(rs, b[i]);
        st_meddle(rs);
        st_haunt(rs);
    }
    /* Shared handles stay shared: once the scope is closed, meddlers
     * find them stale. */
    WT_CHECK_EQ(weft_scope_close(s), 0);
    st_check_batch(rs, b, n);
}

static int st_worker(void *arg)
{
    uint64_t rs = st.seed ^ (uint64_t)(intptr_t)arg * 0x9e3779b97f4a7c15ull;
    while (weft_now() < st.until && atomic_load(&st.nchild) < ST_MAX_CHILDREN)
        st_round(&rs);
    return 0;
}

static int st_root(void *arg)
{
    st.until = weft_now() + WT_MS(WT_SANITIZED ? 1500 : 700);
    for (intptr_t i = 0; i < ST_WORKERS; i++)
        WT_CHECK(wt_go(st_worker, (void *)i) != NULL);
    return 0;
}

static void st_reset(uint64_t seed)
{
    free(st.child);
    memset(&st, 0, sizeof st);
    st.seed = seed;
    st.child = calloc(ST_MAX_CHILDREN, sizeof *st.child);
    cr_assert(st.child != NULL);
}

static void st_check(uint64_t seed, int rc, int64_t took)
{
    wt_assert_clean();
    cr_assert_eq(rc, 0, "seed %llu: weft_run %d", (unsigned long long)seed,
                 rc);
    cr_assert(atomic_load(&st.stale_calls) > 100,
              "seed %llu: only %ld stale calls", (unsigned long long)seed,
              atomic_load(&st.stale_calls));
    fprintf(stderr, "handle stress: %d children, %ld stale calls, "
                    "%ld foreign joins, %.0f ms\n",
            atomic_load(&st.nchild), atomic_load(&st.stale_calls),
            atomic_load(&st.foreign_joins), took / 1e6);
}

Test(handle, stress_stale_handles_across_carriers, .timeout = 120)
{
    wt_stress_runs("handle stress", ST_PROCS, 3, WT_MS(60000), st_reset,
                   st_root, NULL, st_check);
    free(st.child);
    st.child = NULL;
}

/* ------------------------------------------------ detached ends racing */
/* A detached thread's handles end without their lock as it finishes
 * (src/sched/handle.c). Another carrier cancels handles of children that
 * are finishing or have finished, while the owner spawns more children
 * into the records they free: a cancel returns 0 (it came first) or
 * ESRCH, and never reaches a later thread. */

enum { RACE_KIDS = 20000, RACE_RING = 64 };

struct end_race {
    weft_thread *_Atomic ring[RACE_RING]; /* handles of finishing kids */
    atomic_int published;
    atomic_bool stop;
    atomic_int wrongly_cancelled;
    atomic_int bad_rc;
    atomic_long cancels;
};

static int race_kid(void *arg)
{
    struct end_race *e = arg;
    weft_yield();
    if (weft_cancelled())
        atomic_fetch_add(&e->wrongly_cancelled, 1);
    /* From here on a cancel of this thread is allowed: it is ending. */
    int i = atomic_fetch_add(&e->published, 1) % RACE_RING;
    atomic_store(&e->ring[i], weft_self());
    return 0;
}

static int race_canceller(void *arg)
{
    struct end_race *e = arg;
    while (!atomic_load(&e->stop)) {
        for (int i = 0; i < RACE_RING; i++) {
            weft_thread *h = atomic_load(&e->ring[i]);
            if (!h)
                continue;
            int rc = weft_cancel(h);
            if (rc != 0 && rc != ESRCH)
                atomic_fetch_add(&e->bad_rc, 1);
            atomic_fetch_add(&e->cancels, 1);
        }
        weft_yield();
    }
    return 0;
}

static int root_cancel_races_detached_ends(void *arg)
{
    static const weft_attr detached = {.detached = true};
    struct end_race *e = calloc(1, sizeof *e);
    WT_REQUIRE(e != NULL);
    weft_scope *outer = weft_scope_open();
    WT_REQUIRE(outer != NULL);
    WT_REQUIRE(wt_go(race_canceller, e) != NULL);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < RACE_KIDS; i++)
        WT_REQUIRE(weft_go_with(&detached, race_kid, e) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    atomic_store(&e->stop, true);
    WT_CHECK_EQ(weft_scope_close(outer), 0);
    WT_CHECK_EQ(atomic_load(&e->wrongly_cancelled), 0);
    WT_CHECK_EQ(atomic_load(&e->bad_rc), 0);
    WT_CHECK(atomic_load(&e->cancels) > 0);
    free(e);
    return 0;
}

Test(handle, cancels_racing_detached_ends_never_reach_a_later_thread,
     .timeout = 60)
{
    WT_RUN(root_cancel_races_detached_ends, NULL, .procs = 2);
}
