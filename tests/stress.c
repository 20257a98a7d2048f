/* SPDX-License-Identifier: MIT */
/*
 * stress.c — randomized spawn / join / cancel / scope / deadline trees,
 * checked against a model.
 *
 * Each run builds a random tree of virtual threads (depth <= 4, a few
 * thousand threads in all) from one seed. Every thread's plan comes from a
 * PRNG seeded by (run seed, path in the tree), so a seed replays the same
 * plans; timing still varies. Threads sleep, yield, spawn joinable or
 * detached children, open nested scopes (some with short deadlines), join
 * their children, cancel siblings or children, cancel their own scope, and
 * fail with a designated error code (CODE_BASE + thread id).
 *
 * The model mirrors the scope tree: one node per scope, explicit or a
 * thread's implicit scope. Every action is written into the model *before*
 * it is performed (a cancel, a deadline, a thread's result), so when the
 * runtime reacts to it, the model already knows. Invariants checked:
 *   - every spawned thread's body ran exactly once, to completion;
 *   - weft_scope_close returns 0 only if no child failed and nothing
 *     cancelled the scope; ECANCELED only if the scope or an enclosing one
 *     was cancelled (or failed, or had a deadline); ETIMEDOUT only after a
 *     deadline of the scope or an enclosing one passed; any other value
 *     only if a child (or, through an implicit scope, a descendant)
 *     returned it;
 *   - weft_join's result is the child's own non-zero result or, when it
 *     returned 0, what a close of its implicit scope may return (as
 *     above: ECANCELED if it or an enclosing scope was cancelled, since a
 *     descendant failing after that is reported as the cancellation);
 *   - a sleep that fails does so only when cancellation was possible, and
 *     ETIMEDOUT only after a deadline passed;
 *   - weft_run returns (the root returns 0 and has no implicit children).
 *
 * A variant adds threads that spin for a few ms without switching, with a
 * hog limit of 1 ms, so that the monitor's hand-offs race all of the above.
 *
 * The seed is printed on stderr; WEFT_SEED=<n> replays run n first.
 */
#include "wt_stress.h"

#include <inttypes.h>
#include <unistd.h>

#if WT_SANITIZED
#define BUDGET 1000
#define SLACK_NS WT_MS(100)
#else
#define BUDGET 3000
#define SLACK_NS WT_MS(10)
#endif

#define MAX_THREADS (BUDGET + 64)
#define MAX_NODES (MAX_THREADS * 8)
#define MAX_DEPTH 4
#define CODE_BASE 1000

/* ----------------------------------------------------------------- model */

struct tmodel;

/* A scope, explicit or implicit. Flags only ever go from false to true;
 * each is set before the action it describes. */
struct node {
    struct node *parent;        /* enclosing scope; NULL above the root */
    struct tmodel *owner;       /* implicit scopes only: whose it is */
    weft_scope *scope;          /* explicit scopes only */
    atomic_bool cancelled;      /* scope_cancel, or weft_cancel(owner) */
    atomic_bool failed;         /* a child returned non-0, non-ECANCELED */
    atomic_bool has_deadline;
    _Atomic int64_t deadline;
    weft_mutex mu;              /* guards children, and their h/joined */
    struct tmodel *children;    /* pushed by the owner only */
};

struct tmodel {
    int id;
    int depth;
    uint64_t seed;
    struct node *home;          /* the scope it was spawned into */
    struct node implicit;       /* its implicit scope */
    struct tmodel *next;        /* in home->children */
    bool joinable;
    bool joined;                /* guarded by home->mu */
    weft_thread *h;             /* joinable only; guarded by home->mu */
    atomic_int fn_rc;           /* written before the body returns */
    int nchildren;              /* owner only: for child seeds */
};

static struct tmodel g_threads[MAX_THREADS];
static struct node g_nodes[MAX_NODES];
static atomic_int g_nthreads;
static atomic_int g_nnodes;
static atomic_int g_started[MAX_THREADS];
static atomic_int g_finished[MAX_THREADS];
static atomic_int g_nfailures_seen;   /* designated failures returned */
static atomic_int g_ncancels;         /* cancels performed */
static atomic_int g_ntimeouts;        /* close() == ETIMEDOUT */
static atomic_int g_njoins;
static atomic_int g_nsleeps_ok;      /* sleeps that ran their course */
static uint64_t g_run_seed;

#define VIOLATION(m, ...)                                                  \
    do {                                                                   \
        char vbuf_[200];                                                   \
        snprintf(vbuf_, sizeof vbuf_, __VA_ARGS__);                        \
        wt_fail(__FILE__, __LINE__, "seed %" PRIu64 " thread %d: %s",      \
                g_run_seed, (m)->id, vbuf_);                               \
    } while (0)

/* ----------------------------------------------------------- model logic */

static bool is_designated(int rc)
{
    return rc >= CODE_BASE;
}

/* Could something have cancelled a blocking call made in n? */
static bool cancel_possible(struct node *n)
{
    for (; n; n = n->parent)
        if (atomic_load(&n->cancelled) || atomic_load(&n->failed) ||
            atomic_load(&n->has_deadline))
            return true;
    return false;
}

/* Has a deadline of n or of an enclosing scope passed by `now`? */
static bool deadline_passed(struct node *n, int64_t now)
{
    for (; n; n = n->parent)
        if (atomic_load(&n->has_deadline) && atomic_load(&n->deadline) <= now)
            return true;
    return false;
}

/* Did a child of n (or a descendant, through implicit scopes) return r? */
static bool code_in(struct node *n, int r)
{
    for (struct tmodel *c = n->children; c; c = c->next)
        if (atomic_load(&c->fn_rc) == r || code_in(&c->implicit, r))
            return true;
    return false;
}

/* Must n report a failure: did a child return a designated code, or
 * return 0 with an uncancelled implicit scope that must report one? */
static bool requires_failure(struct node *n)
{
    for (struct tmodel *c = n->children; c; c = c->next) {
        int rc = atomic_load(&c->fn_rc);
        if (is_designated(rc))
            return true;
        if (rc == 0 && !atomic_load(&c->implicit.cancelled) &&
            requires_failure(&c->implicit))
            return true;
    }
    return false;
}

/* Can scope s report the failure r (non-0) at `now`? A cancellation or
 * deadline of s or of an enclosing scope explains its reason: a child that
 * fails after it is reported as that reason, not as its own result. Any
 * other value must be a child's (through implicit scopes, a descendant's).
 * ECANCELED is never a failure of its own: a thread returns it only when
 * its own scope was cancelled with it. */
static bool error_explained(struct node *s, int r, int64_t now)
{
    if (r == ECANCELED)
        return atomic_load(&s->cancelled) || cancel_possible(s->parent);
    if (r == ETIMEDOUT && deadline_passed(s, now))
        return true;
    return code_in(s, r);
}

/* weft_scope_close(s) was called at `called` and returned r at `now`.
 * (Only the call time bounds a deadline that must have fired: the owner
 * may wait in a run queue between the decision and its return.) */
static void check_close(struct tmodel *m, struct node *s, int r,
                        int64_t called, int64_t now)
{
    if (r == 0) {
        if (atomic_load(&s->cancelled))
            VIOLATION(m, "close returned 0 for a cancelled scope");
        if (requires_failure(s))
            VIOLATION(m, "close returned 0 but a child failed");
        if (atomic_load(&s->has_deadline) &&
            called >= atomic_load(&s->deadline) + SLACK_NS)
            VIOLATION(m, "close called %" PRId64 " us after the deadline "
                      "returned 0", (called - atomic_load(&s->deadline)) / 1000);
    } else if (r == ECANCELED) {
        if (!error_explained(s, r, now))
            VIOLATION(m, "close returned ECANCELED, nothing cancelled it");
    } else if (r == ETIMEDOUT) {
        atomic_fetch_add(&g_ntimeouts, 1);
        if (!error_explained(s, r, now))
            VIOLATION(m, "close returned ETIMEDOUT before any deadline");
    } else if (!error_explained(s, r, now)) {
        VIOLATION(m, "close returned %d, which no child returned", r);
    }
}

/* A blocking call made in scope n returned r. */
static void check_blocking(struct tmodel *m, struct node *n, const char *what,
                           int r)
{
    if (r == 0)
        return;
    if (r == ECANCELED) {
        if (!cancel_possible(n))
            VIOLATION(m, "%s returned ECANCELED, nothing cancelled it", what);
    } else if (r == ETIMEDOUT) {
        if (!deadline_passed(n, weft_now()))
            VIOLATION(m, "%s returned ETIMEDOUT before any deadline", what);
    } else {
        VIOLATION(m, "%s returned %d", what, r);
    }
}

static void check_join_result(struct tmodel *m, struct tmodel *c, int r)
{
    int rc = atomic_load(&c->fn_rc);
    if (rc != 0) {
        if (r != rc)
            VIOLATION(m, "join of %d: result %d, its function returned %d",
                      c->id, r, rc);
        return;
    }
    if (r == 0) {
        if (!atomic_load(&c->implicit.cancelled) &&
            requires_failure(&c->implicit))
            VIOLATION(m, "join of %d: result 0, but its child failed", c->id);
    } else if (!error_explained(&c->implicit, r, weft_now())) {
        VIOLATION(m, "join of %d: result %d, neither its cancellation's "
                  "reason nor returned by a descendant", c->id, r);
    }
}

/* --------------------------------------------------------------- threads */

static int body(void *arg);

static struct node *new_node(struct tmodel *m, struct node *parent)
{
    int i = atomic_fetch_add(&g_nnodes, 1);
    if (i >= MAX_NODES)
        return NULL; /* the model is full: skip this scope */
    struct node *n = &g_nodes[i];
    n->parent = parent;
    return n;
}

/* Spawns up to k children of m into n. */
static void spawn_batch(struct tmodel *m, struct node *n, int k, uint64_t *rs)
{
    for (int i = 0; i < k; i++) {
        int id = atomic_fetch_add(&g_nthreads, 1);
        if (id >= BUDGET) {
            atomic_fetch_sub(&g_nthreads, 1);
            return;
        }
        struct tmodel *c = &g_threads[id];
        c->id = id;
        c->depth = m->depth + 1;
        c->seed = m->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(++m->nchildren));
        wt_splitmix(&c->seed);
        c->home = n;
        c->implicit.parent = n;
        c->implicit.owner = c;
        c->joinable = wt_rnd(rs, 4) != 0;
        weft_attr a = {0};
        a.detached = !c->joinable;
        weft_mutex_lock(&n->mu);
        c->next = n->children;
        n->children = c;
        weft_thread *h = weft_go_with(&a, body, c);
        if (!h)
            VIOLATION(m, "spawn failed: errno %d", wt_errno());
        if (c->joinable)
            c->h = h;
        weft_mutex_unlock(&n->mu);
    }
}

/* Picks a random joinable, unjoined child of n other than `not`, with
 * n->mu held. NULL if none. */
static struct tmodel *pick_joinable(struct node *n, struct tmodel *not,
                                    uint64_t *rs)
{
    int count = 0;
    for (struct tmodel *c = n->children; c; c = c->next)
        if (c != not && c->h && !c->joined)
            count++;
    if (count == 0)
        return NULL;
    int k = wt_rnd(rs, count);
    for (struct tmodel *c = n->children; c; c = c->next)
        if (c != not && c->h && !c->joined && k-- == 0)
            return c;
    return NULL;
}

/* Cancels a random joinable child of n (other than m itself). */
static void cancel_one(struct tmodel *m, struct node *n, uint64_t *rs)
{
    if (!n)
        return; /* the root has no siblings */
    weft_mutex_lock(&n->mu);
    struct tmodel *c = pick_joinable(n, m, rs);
    if (c) {
        atomic_store(&c->implicit.cancelled, true);
        atomic_fetch_add(&g_ncancels, 1);
        int rc = weft_cancel(c->h);
        if (rc != 0)
            VIOLATION(m, "weft_cancel(%d) returned %d", c->id, rc);
    }
    weft_mutex_unlock(&n->mu);
}

static void join_one(struct tmodel *m, struct node *n, uint64_t *rs)
{
    weft_mutex_lock(&n->mu);
    struct tmodel *c = pick_joinable(n, NULL, rs);
    if (c)
        c->joined = true;
    weft_mutex_unlock(&n->mu);
    if (!c)
        return;
    int r = -1;
    int rc = weft_join(c->h, &r);
    if (rc == 0) {
        atomic_fetch_add(&g_njoins, 1);
        check_join_result(m, c, r);
        return;
    }
    check_blocking(m, n, "join", rc);
    weft_mutex_lock(&n->mu);
    c->joined = false; /* still joinable */
    weft_mutex_unlock(&n->mu);
}

enum { STEPS_OK, STEPS_STOPPED, STEPS_FAIL };

static int run_steps(struct tmodel *m, struct node *n, int level,
                     uint64_t *rs);

/* Opens a nested scope, runs steps in it, closes it and checks. */
static void nested_scope(struct tmodel *m, struct node *n, int level,
                         uint64_t *rs)
{
    struct node *s = new_node(m, n);
    if (!s)
        return;
    s->scope = weft_scope_open();
    if (!s->scope) {
        VIOLATION(m, "weft_scope_open failed: errno %d", wt_errno());
        return;
    }
    if (wt_rnd(rs, 5) < 2) {
        int64_t dl = weft_now() + WT_US(500 + wt_rnd(rs, 8000));
        atomic_store(&s->deadline, dl);
        atomic_store(&s->has_deadline, true);
        weft_scope_deadline(s->scope, dl);
    }
    run_steps(m, s, level + 1, rs);
    int64_t called = weft_now();
    int r = weft_scope_close(s->scope);
    check_close(m, s, r, called, weft_now());
}

static unsigned long long g_handoffs; /* the monitor's, as the root ends */
static unsigned long long g_handoffs_all; /* over the runs of a test */

static int run_steps(struct tmodel *m, struct node *n, int level,
                     uint64_t *rs)
{
    int nsteps = 1 + wt_rnd(rs, 6);
    for (int i = 0; i < nsteps; i++) {
        int what = wt_rnd(rs, 200);
        if (what < 60) {
            int r = weft_sleep(WT_US(wt_rnd(rs, 2000)));
            check_blocking(m, n, "sleep", r);
            if (r != 0)
                return STEPS_STOPPED;
            atomic_fetch_add(&g_nsleeps_ok, 1);
        } else if (what < 80) {
            weft_yield();
        } else if (what < 120) {
            if (m->depth < MAX_DEPTH)
                spawn_batch(m, n, 1 + wt_rnd(rs, 6), rs);
        } else if (what < 148) {
            if (level < 2)
                nested_scope(m, n, level, rs);
        } else if (what < 175) {
            join_one(m, n, rs);
        } else if (what < 180) {
            cancel_one(m, m->home, rs); /* a sibling */
        } else if (what < 186) {
            cancel_one(m, n, rs);       /* a child */
        } else if (what < 188) {
            if (n->scope) {
                atomic_store(&n->cancelled, true);
                atomic_fetch_add(&g_ncancels, 1);
                weft_scope_cancel(n->scope);
            }
        } else if (what < 190) {
            return STEPS_FAIL;
        } else if (what < 197 && wt_hogs) {
            wt_hog(rs);
        } else {
            if (weft_cancelled() && !cancel_possible(n))
                VIOLATION(m, "weft_cancelled() true, nothing cancelled");
        }
    }
    return STEPS_OK;
}

/* Works inside an explicit scope of its own. */
static int explicit_style(struct tmodel *m, uint64_t *rs)
{
    struct node *e = new_node(m, &m->implicit);
    if (!e)
        return 0;
    e->scope = weft_scope_open();
    if (!e->scope) {
        VIOLATION(m, "weft_scope_open failed: errno %d", wt_errno());
        return 0;
    }
    if (m->id != 0 && wt_rnd(rs, 10) == 0) {
        int64_t dl = weft_now() + WT_US(1000 + wt_rnd(rs, 10000));
        atomic_store(&e->deadline, dl);
        atomic_store(&e->has_deadline, true);
        weft_scope_deadline(e->scope, dl);
    }
    if (m->depth < MAX_DEPTH)
        spawn_batch(m, e, m->id == 0 ? 8 : 2 + wt_rnd(rs, 6), rs);
    int st = run_steps(m, e, 0, rs);
    int64_t called = weft_now();
    int r = weft_scope_close(e->scope);
    check_close(m, e, r, called, weft_now());
    if (m->id == 0)
        return 0;
    if (is_designated(r) && wt_rnd(rs, 4) == 0)
        return r; /* pass the failure on */
    if (st == STEPS_FAIL)
        return CODE_BASE + m->id;
    return 0;
}

/* Blocks a little in its implicit scope, then spawns children into it and
 * returns at once (its result then comes from them). */
static int implicit_style(struct tmodel *m, uint64_t *rs)
{
    int nsteps = wt_rnd(rs, 4);
    for (int i = 0; i < nsteps; i++) {
        int what = wt_rnd(rs, 20);
        if (what < 12) {
            int r = weft_sleep(WT_US(wt_rnd(rs, 1500)));
            check_blocking(m, &m->implicit, "sleep", r);
            if (r != 0)
                return r; /* cancelled */
            atomic_fetch_add(&g_nsleeps_ok, 1);
        } else if (what < 19) {
            weft_yield();
        } else {
            cancel_one(m, m->home, rs);
        }
    }
    if (m->depth < MAX_DEPTH)
        spawn_batch(m, &m->implicit, 2 + wt_rnd(rs, 6), rs);
    return wt_rnd(rs, 150) == 0 ? CODE_BASE + m->id : 0;
}

static int body(void *arg)
{
    struct tmodel *m = arg;
    if (atomic_fetch_add(&g_started[m->id], 1) != 0)
        VIOLATION(m, "body started twice");
    uint64_t rs = m->seed;
    int rc;
    if (m->id == 0 || (m->depth < MAX_DEPTH && wt_rnd(&rs, 2)))
        rc = explicit_style(m, &rs);
    else
        rc = implicit_style(m, &rs);
    atomic_store(&m->fn_rc, rc);
    if (rc != 0 && rc != ECANCELED) {
        /* The failure fails m's scope; through implicit scopes it may
         * become the result of m's ancestors too, failing their scopes. */
        for (struct node *h = m->home; h; h = h->owner ? h->owner->home : NULL)
            atomic_store(&h->failed, true);
    }
    if (is_designated(rc))
        atomic_fetch_add(&g_nfailures_seen, 1);
    if (m->id == 0) { /* the root: its explicit scope has closed */
        weft_runtime_stats st;
        if (weft_stats(&st) == 0)
            g_handoffs = st.handoffs;
    }
    atomic_fetch_add(&g_finished[m->id], 1);
    return rc;
}

/* ------------------------------------------------------------------ runs */

static void reset_model(uint64_t seed)
{
    memset(g_threads, 0, sizeof g_threads);
    memset(g_nodes, 0, sizeof g_nodes);
    for (int i = 0; i < MAX_THREADS; i++) {
        atomic_store(&g_started[i], 0);
        atomic_store(&g_finished[i], 0);
    }
    atomic_store(&g_nthreads, 1); /* the root is thread 0 */
    atomic_store(&g_nnodes, 0);
    atomic_store(&g_nfailures_seen, 0);
    atomic_store(&g_ncancels, 0);
    atomic_store(&g_ntimeouts, 0);
    atomic_store(&g_njoins, 0);
    atomic_store(&g_nsleeps_ok, 0);
    g_run_seed = seed;
    g_threads[0].seed = seed;
    g_threads[0].implicit.owner = &g_threads[0];
}

/* A run taking longer than this is a hang (wt_stress.h). */
#define HANG_NS WT_MS(10000 * (1 + 2 * WT_SANITIZED))

/* Checks one seed's run: weft_run returned rc after took ns. */
static void check_run(uint64_t seed, int rc, int64_t took)
{
    int n = atomic_load(&g_nthreads);
    cr_log_info("seed %" PRIu64 ": %d threads, %d failures, %d cancels, "
                "%d joins, %d timeouts, %d full sleeps, %lld ms",
                seed, n, atomic_load(&g_nfailures_seen),
                atomic_load(&g_ncancels), atomic_load(&g_njoins),
                atomic_load(&g_ntimeouts), atomic_load(&g_nsleeps_ok),
                (long long)took / 1000000);
    cr_expect_eq(rc, 0, "seed %" PRIu64 ": weft_run returned %d", seed,
                 rc);
    int bad = 0;
    for (int id = 0; id < n && bad < 5; id++) {
        if (atomic_load(&g_started[id]) != 1 ||
            atomic_load(&g_finished[id]) != 1) {
            cr_expect(0, "seed %" PRIu64 ": thread %d started %d times, "
                         "finished %d times", seed, id,
                      atomic_load(&g_started[id]),
                      atomic_load(&g_finished[id]));
            bad++;
        }
    }
    cr_expect_gt(n, 50, "seed %" PRIu64 ": only %d threads", seed, n);
    if (wt_hogs) {
        cr_log_info("seed %" PRIu64 ": %llu hand-offs", seed, g_handoffs);
        g_handoffs_all += g_handoffs;
    }
    wt_assert_clean();
    cr_assert_eq(bad, 0);
    cr_assert_eq(rc, 0);
}

static void stress_runs(unsigned procs, int runs)
{
    wt_stress_runs("stress", procs, runs, HANG_NS, reset_model, body,
                   &g_threads[0], check_run);
}

Test(stress, random_trees_two_procs, .timeout = 240)
{
    stress_runs(2, 20);
}

Test(stress, random_trees_one_proc, .timeout = 240)
{
    stress_runs(1, 20);
}

/* The same with threads that hold their carrier for up to 3 ms now and
 * then, and a hog limit of 1 ms. */
Test(stress, random_trees_with_hand_offs, .timeout = 240)
{
    wt_hogs_on();
    stress_runs(2, 10);
    cr_assert_gt(g_handoffs_all, 0, "no hand-off in 10 runs");
}
