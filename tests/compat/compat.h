/* SPDX-License-Identifier: MIT */
/*
 * compat.h — what the rows of the compatibility matrix share.
 *
 * A client-library row proves two things with N blocking requests that
 * each take WAIT_MS on the server, made at once from N virtual threads:
 *
 *   overlap      the whole batch takes about one request, not N. With one
 *                P and a hog threshold of 10 s (so that no hand-off can
 *                move threads off a blocked carrier, and weft_stats must
 *                count 0 hand-offs), that holds only if the library's
 *                blocking calls parked their virtual thread.
 *   correctness  every request's answer is checked (WT_CHECK in the
 *                client thread).
 *
 *   compat_gate()            each client calls it once, when connected
 *                            and about to make its timed request(s): the
 *                            batch is timed from the moment all are there
 *                            (connection set-up, a fork per connection in
 *                            PostgreSQL, is not what is measured)
 *   compat_clients(...)      spawns the N clients and joins them, timing
 *                            the batch (in a root of the row's own)
 *   compat_run_clients(...)  a root that does only that, run, then the
 *                            overlap checked
 *   compat_expect_overlap()  the checks on the batch's time and hand-offs
 */
#ifndef COMPAT_H
#define COMPAT_H

#include "wt_io.h"
#include "server.h"

#include <limits.h>

/* N requests at once, each answered after WAIT_MS. */
enum { COMPAT_N = 20, COMPAT_WAIT_MS = 300 };

/* The batch: filled by compat_clients. Valid after weft_run returned. */
static long compat_ms;                 /* from first spawn to last join */
static weft_runtime_stats compat_st;   /* weft_stats after the last join */

/* The gate: clients arrive, the batch's timer starts when all have. */
static weft_mutex compat_gate_mu = WEFT_MUTEX_INIT;
static weft_cond compat_gate_cv = WEFT_COND_INIT;
static unsigned compat_arrived;
static bool compat_open;

/* Waits until every client of the batch has called it. Runs on: a client
 * of compat_clients, once. */
static inline void compat_gate(void)
{
    weft_mutex_lock(&compat_gate_mu);
    compat_arrived++;
    weft_cond_broadcast(&compat_gate_cv);
    while (!compat_open)
        WT_CHECK_EQ(weft_cond_wait(&compat_gate_cv, &compat_gate_mu), 0);
    weft_mutex_unlock(&compat_gate_mu);
}

/* Opens the gate once n clients are there (10 s at most); returns when
 * it did. */
static inline int64_t compat_open_gate(unsigned n)
{
    weft_mutex_lock(&compat_gate_mu);
    int64_t until = weft_now() + WT_MS(10000);
    while (compat_arrived < n && weft_now() < until)
        weft_cond_timedwait(&compat_gate_cv, &compat_gate_mu, until);
    WT_CHECK_EQ(compat_arrived, n);
    compat_open = true;
    weft_cond_broadcast(&compat_gate_cv);
    weft_mutex_unlock(&compat_gate_mu);
    return weft_now();
}

/* Spawns n threads client(args + i * size) named name, each of which
 * calls compat_gate once, joins them all, and fills compat_ms (from the
 * gate's opening) and compat_st. Runs on: a virtual thread. */
static inline void compat_clients(const char *name, weft_fn client,
                                  void *args, size_t size, unsigned n)
{
    weft_thread **t = calloc(n, sizeof *t);
    WT_CHECK(t != NULL);
    if (!t)
        return;
    compat_arrived = 0;
    compat_open = false;
    for (unsigned i = 0; i < n; i++)
        t[i] = wt_go_named(name, client, (char *)args + i * size);
    int64_t t0 = compat_open_gate(n);
    for (unsigned i = 0; i < n; i++)
        WT_CHECK_EQ(wt_join(t[i]), 0);
    compat_ms = wt_ms_since(t0);
    WT_CHECK_EQ(weft_stats(&compat_st), 0);
    free(t);
}

/* The batch took far less than n requests one after the other, and no
 * client's wait held a carrier. On an idle machine it takes about one
 * request; the bound is half the serial time because on a loaded one
 * every client and every answer of the server (another process, whose
 * waits for a CPU this one cannot see) may wait for a CPU. A hand-off
 * inside a marked blocking call (a library reading a file on the carrier,
 * which a loaded machine can stretch past 1 ms) is not a blocked wait,
 * but one per client would be: those are allowed for a quarter of the
 * clients. Runs on: the test's main OS thread, after weft_run. */
static inline void compat_expect_overlap(const char *what, unsigned n,
                                         unsigned procs)
{
    long limit = (long)n * COMPAT_WAIT_MS / 2 + (WT_SANITIZED ? 2000 : 0);
    unsigned long long hogs = compat_st.handoffs - compat_st.handoffs_blocking;
    cr_log_info("%s: %u requests of %d ms each on %u P's took %ld ms in all "
                "(%llu hand-offs, %llu in marked blocking calls, %u "
                "carriers, I/O %s)", what, n, COMPAT_WAIT_MS, procs,
                compat_ms, compat_st.handoffs, compat_st.handoffs_blocking,
                compat_st.carriers, compat_st.io_backend);
    cr_expect_lt(compat_ms, limit, "%s: %u blocking requests of %d ms took "
                 "%ld ms: they did not overlap", what, n, COMPAT_WAIT_MS,
                 compat_ms);
    cr_expect_eq(hogs, 0, "%s: %llu hand-offs outside marked blocking "
                 "calls: a carrier was blocked", what, hogs);
    cr_expect_leq(compat_st.handoffs_blocking, n / 4, "%s: %llu hand-offs "
                  "in marked blocking calls for %u clients", what,
                  compat_st.handoffs_blocking, n);
}

struct compat_batch {
    const char *name;
    weft_fn client;
    void *args;
    size_t size;
    unsigned n;
};

static int compat_batch_root(void *arg)
{
    struct compat_batch *b = arg;
    compat_clients(b->name, b->client, b->args, b->size, b->n);
    return 0;
}

/* Runs the n clients as the whole program on procs P's, hand-offs held
 * off (hog_ms 10 s), and checks the overlap. Runs on: the test's main OS
 * thread. */
static inline void compat_run_clients(const char *what, weft_fn client,
                                      void *args, size_t size, unsigned n,
                                      unsigned procs)
{
    struct compat_batch b = {what, client, args, size, n};
    int rc = wt_run(compat_batch_root, &b,
                    .procs = procs, .hog_ms = WT_NO_HANDOFF_MS);
    cr_assert_eq(rc, 0, "weft_run returned %d", rc);
    compat_expect_overlap(what, n, procs);
}

#endif /* COMPAT_H */
