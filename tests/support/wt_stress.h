/* SPDX-License-Identifier: MIT */
/*
 * wt_stress.h — shared scaffolding for the randomized stress tests
 * (stress.c, chan_stress.c): the base seed, and a watchdog that turns a
 * hang into a report with the seed and a dump of every thread.
 *
 *   wt_base_seed()          WEFT_SEED from the environment, else time ^ pid
 *   wt_splitmix(), wt_rnd() the PRNG the plans are drawn from
 *   wt_stress_run(...)      runs one seed's root under the watchdog
 *   wt_stress_runs(...)     the per-seed loop: reset, run, check
 *
 * A hang is reported with the seed and a dump of every thread, then the
 * test aborts (rather than waiting for Criterion's time-out in silence).
 * The dump runs on a thread of its own: if the runtime is wedged holding
 * a lock the dump needs, the abort still comes.
 */
#ifndef WT_STRESS_H
#define WT_STRESS_H

#include "wt.h"

#include <inttypes.h>
#include <unistd.h>

/* splitmix64: each thread's plan comes from a PRNG seeded from the run's
 * seed, so a seed replays the same plans. */
static uint64_t wt_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A number in [0, n) from the PRNG state s. */
static int wt_rnd(uint64_t *s, int n)
{
    return (int)(wt_splitmix(s) % (uint64_t)n);
}

struct wt_watchdog {
    const char *prog;   /* names the program in messages */
    uint64_t seed;      /* the run being watched */
    int64_t hang_ns;    /* how long a run may take before it is a hang */
    atomic_int done;    /* set when the run returned */
    pthread_t thread;
};

static void *wt_dumper_main(void *arg)
{
    const char *prog = arg;
    weft_dump(2);
    fprintf(stderr, "%s: end of dump\n", prog);
    return NULL;
}

static void *wt_watchdog_main(void *arg)
{
    struct wt_watchdog *w = arg;
    int64_t t0 = wt_clock_ns();
    while (!atomic_load(&w->done)) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (wt_clock_ns() - t0 > w->hang_ns) {
            fprintf(stderr, "%s: seed %" PRIu64 " hangs (replay: "
                            "WEFT_SEED=%" PRIu64 "); dump:\n",
                    w->prog, w->seed, w->seed);
            pthread_t d;
            if (pthread_create(&d, NULL, wt_dumper_main, (void *)w->prog) == 0)
                pthread_detach(d);
            struct timespec grace = {3, 0};
            nanosleep(&grace, NULL);
            abort();
        }
    }
    return NULL;
}

/* WEFT_SEED=<n> replays run n first; otherwise a fresh seed per process. */
static uint64_t wt_base_seed(void)
{
    const char *e = getenv("WEFT_SEED");
    if (e && *e)
        return strtoull(e, NULL, 0);
    return (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

/* Prints the seed with a replay hint, then runs fn(arg) as the root with
 * `procs` P's, watched for hangs of more than hang_ns. Returns weft_run's
 * result; *took_ns is how long the run took.
 * Runs on: the test's main OS thread only. */
static int wt_stress_run(const char *prog, unsigned procs, uint64_t seed,
                         int64_t hang_ns, weft_fn fn, void *arg,
                         int64_t *took_ns)
{
    fprintf(stderr, "%s: procs=%u seed=%" PRIu64
                    " (replay: WEFT_SEED=%" PRIu64 ")\n",
            prog, procs, seed, seed);
    static struct wt_watchdog w;
    w.prog = prog;
    w.seed = seed;
    w.hang_ns = hang_ns;
    atomic_store(&w.done, 0);
    int64_t t0 = wt_clock_ns();
    cr_assert_eq(pthread_create(&w.thread, NULL, wt_watchdog_main, &w), 0);
    int rc = wt_run_raw(fn, arg, procs);
    atomic_store(&w.done, 1);
    pthread_join(w.thread, NULL);
    *took_ns = wt_clock_ns() - t0;
    return rc;
}

/* Runs `runs` seeds, from wt_base_seed() on: for each, reset(seed), then
 * fn(arg) as the root with `procs` P's under the watchdog (wt_stress_run),
 * then check(seed, weft_run's result, the run's time in ns).
 * Runs on: the test's main OS thread only. */
static void wt_stress_runs(const char *prog, unsigned procs, int runs,
                           int64_t hang_ns, void (*reset)(uint64_t seed),
                           weft_fn fn, void *arg,
                           void (*check)(uint64_t seed, int rc, int64_t took))
{
    uint64_t base = wt_base_seed();
    for (int i = 0; i < runs; i++) {
        uint64_t seed = base + (uint64_t)i;
        reset(seed);
        int64_t took;
        int rc = wt_stress_run(prog, procs, seed, hang_ns, fn, arg, &took);
        check(seed, rc, took);
    }
}

/* Hand-off variants: with wt_hogs_on(), threads now and then hold their
 * carrier for up to WT_HOG_US without a switch (wt_hog), and the hog limit
 * is 1 ms, so that the monitor's hand-offs, spares, retired P's and
 * carriers coming back race whatever the model does. */
#define WT_HOG_US 3000
static bool wt_hogs;

static inline void wt_hogs_on(void)
{
    wt_hogs = true;
    setenv("WEFT_HOG_MS", "1", 1);
}

/* If hogs are on, spins (no call that could switch) for a random while. */
static inline void wt_hog(uint64_t *rs)
{
    if (!wt_hogs)
        return;
    int64_t end = weft_now() + WT_US(wt_rnd(rs, WT_HOG_US));
    while (weft_now() < end) {
    }
}

#endif /* WT_STRESS_H */
