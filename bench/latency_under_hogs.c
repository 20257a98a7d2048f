/* SPDX-License-Identifier: MIT */
/* B6 latency_under_hogs: with procs = 2, argv[1] (2 or 4) hog threads spin
 * in a tight loop with no function calls, and a ticker thread, spawned right
 * after them, loops: t0 = weft_now(); weft_sleep(1 ms); lateness = weft_now()
 * - t0 - 1 ms, for 3 s. Then the root stops the hogs. Prints the p99, p50 and
 * max lateness in µs: how late a sleeping thread wakes up when every P is
 * busy with threads that never reach a scheduling point, i.e. how well the
 * runtime preempts (or works around) them.
 *
 * The ticker's first t0 is the moment the root spawns it, so a delay in its
 * first run counts as lateness too. A runtime that cannot preempt the hogs
 * would never let the ticker (or the root) run again: a watchdog OS thread
 * stops the hogs 1 s after the ticker's 3 s should have ended (it then says
 * so on stderr), so such a runtime finishes, with a first tick about 4 s
 * late. Percentiles are nearest-rank over all ticks (about 3,000).
 *
 * BENCH_TICK_SLEEP picks how the ticker sleeps: weft (weft_sleep, the
 * default and B6's definition), usleep (libc's, through weft's hook) or
 * foreign (usleep called from a separately built shared library, so the
 * ticker is bound to its carrier while it sleeps): what binding costs a
 * frame loop beside hogs (bench/foreign_cost.sh). */
#include <weft.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS 1000000LL               /* the ticker's sleep: 1 ms */
#define WINDOW_NS 3000000000LL          /* how long the ticker measures */
#define GRACE_NS 1000000000LL           /* then how long the watchdog waits */
enum { MAX_TICKS = 2 * (WINDOW_NS / TICK_NS) }; /* room for early wake-ups */

static atomic_bool stop; /* the hogs' cue to finish */

/* Spins without a call until stop is set. */
static int hog(void *arg) {
    volatile unsigned long spins = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        spins++;
    return 0;
}

/* ------------------------------------------------------------- ticker */

static int64_t lateness[MAX_TICKS]; /* ns, one per tick */
static int ticks;

int bench_foreign_sleep_us(unsigned us);

static int usleep_tick(int64_t ns) {
    return usleep((useconds_t)(ns / 1000)) ? errno : 0;
}

static int foreign_tick(int64_t ns) {
    return bench_foreign_sleep_us((unsigned)(ns / 1000));
}

static int (*tick_sleep)(int64_t ns) = weft_sleep;

/* BENCH_TICK_SLEEP: weft, usleep or foreign. 0, or EINVAL. */
static int pick_tick_sleep(void) {
    const char *v = getenv("BENCH_TICK_SLEEP");
    if (!v || !strcmp(v, "weft"))
        return 0;
    if (!strcmp(v, "usleep"))
        tick_sleep = usleep_tick;
    else if (!strcmp(v, "foreign"))
        tick_sleep = foreign_tick;
    else
        return EINVAL;
    return 0;
}

/* arg: the weft_now() at which the root spawned it. Records the lateness of
 * each 1 ms sleep until 3 s after that. */
static int ticker(void *arg) {
    int64_t t0 = *(const int64_t *)arg, end = t0 + WINDOW_NS;
    while (t0 < end) {
        int err = tick_sleep(TICK_NS);
        if (err) {
            fprintf(stderr, "ticker: sleep, tick %d: %s\n", ticks,
                    strerror(err));
            return err;
        }
        int64_t now = weft_now();
        if (ticks == MAX_TICKS) {
            fprintf(stderr, "ticker: more than %d ticks in %lld ms: "
                    "weft_sleep returns early\n", MAX_TICKS,
                    WINDOW_NS / 1000000);
            return EPROTO;
        }
        lateness[ticks++] = now - t0 - TICK_NS;
        t0 = now;
    }
    return 0;
}

/* ----------------------------------------------------------- watchdog */

/* An OS thread that sets stop at its deadline unless told to quit first. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct timespec deadline; /* CLOCK_MONOTONIC */
    bool quit;                /* under mu */
    atomic_bool fired;
} wd = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *watchdog(void *arg) {
    int err = 0;
    pthread_mutex_lock(&wd.mu);
    while (!wd.quit && !err) /* ETIMEDOUT (or a failure) ends the wait */
        err = pthread_cond_timedwait(&wd.cond, &wd.mu, &wd.deadline);
    if (!wd.quit) {
        atomic_store(&wd.fired, true);
        atomic_store(&stop, true);
    }
    pthread_mutex_unlock(&wd.mu);
    return NULL;
}

/* Starts the watchdog with its deadline ns from now. Returns 0 or an error
 * number. */
static int watchdog_start(pthread_t *th, int64_t ns) {
    pthread_condattr_t ca;
    int err = pthread_condattr_init(&ca);
    if (!err) {
        err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (!err)
            err = pthread_cond_init(&wd.cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (err) {
        fprintf(stderr, "watchdog: condition variable: %s\n", strerror(err));
        return err;
    }
    if (clock_gettime(CLOCK_MONOTONIC, &wd.deadline)) {
        err = errno;
        fprintf(stderr, "watchdog: clock_gettime: %s\n", strerror(err));
        return err;
    }
    ns += wd.deadline.tv_nsec;
    wd.deadline.tv_sec += ns / 1000000000;
    wd.deadline.tv_nsec = ns % 1000000000;
    if ((err = pthread_create(th, NULL, watchdog, NULL)))
        fprintf(stderr, "watchdog: pthread_create: %s\n", strerror(err));
    return err;
}

static void watchdog_stop(pthread_t th) {
    pthread_mutex_lock(&wd.mu);
    wd.quit = true;
    pthread_cond_signal(&wd.cond);
    pthread_mutex_unlock(&wd.mu);
    pthread_join(th, NULL);
    if (atomic_load(&wd.fired))
        fprintf(stderr, "latency_under_hogs: the ticker had not finished "
                "%lld ms after its %lld ms: the watchdog stopped the hogs "
                "(they were never preempted)\n", GRACE_NS / 1000000,
                WINDOW_NS / 1000000);
}

/* --------------------------------------------------------------- root */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (nearest rank) of the n sorted values v, in µs. */
static double percentile_us(const int64_t *v, int n, int p) {
    int rank = (p * n + 99) / 100; /* ceil(p * n / 100), 1-based */
    return (double)v[rank > 0 ? rank - 1 : 0] / 1000.0;
}

static int bench(void *arg) {
    int hogs = *(const int *)arg;
    pthread_t wd_thread;
    int err = watchdog_start(&wd_thread, WINDOW_NS + GRACE_NS);
    if (err)
        return err;
    weft_scope *s = weft_scope_open();
    if (!s) {
        err = errno;
        fprintf(stderr, "weft_scope_open: %s\n", strerror(err));
        atomic_store(&stop, true);
        watchdog_stop(wd_thread);
        return err;
    }
    static const weft_attr detached = {.detached = true};
    for (int i = 0; i < hogs && !err; i++) {
        if (!weft_go_with(&detached, hog, NULL)) {
            err = errno;
            fprintf(stderr, "weft_go_with (hog #%d): %s\n", i, strerror(err));
        }
    }
    int ticker_err = 0;
    if (!err) {
        int64_t spawned = weft_now();
        weft_thread *t = weft_go(ticker, &spawned);
        if (!t) {
            err = errno;
            fprintf(stderr, "weft_go (ticker): %s\n", strerror(err));
        } else if ((err = weft_join(t, &ticker_err))) {
            fprintf(stderr, "weft_join (ticker): %s\n", strerror(err));
        } else {
            err = ticker_err; /* the ticker said what went wrong */
        }
    }
    atomic_store(&stop, true);
    int close_err = weft_scope_close(s);
    if (close_err && close_err != ticker_err)
        fprintf(stderr, "weft_scope_close: %s\n", strerror(close_err));
    watchdog_stop(wd_thread);
    if (!err && !close_err && ticks == 0) {
        fprintf(stderr, "no ticks recorded\n");
        err = EPROTO;
    }
    if (!err && !close_err) {
        qsort(lateness, (size_t)ticks, sizeof lateness[0], cmp_i64);
        printf("latency_p99_us %.1f us\n", percentile_us(lateness, ticks, 99));
        printf("latency_p50_us %.1f us\n", percentile_us(lateness, ticks, 50));
        printf("latency_max_us %.1f us\n", percentile_us(lateness, ticks, 100));
    }
    return err ? err : close_err;
}

int main(int argc, char **argv) {
    char *end = NULL;
    long hogs = argc == 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 2 || *end || hogs <= 0 || hogs > 1024) {
        fprintf(stderr, "usage: %s hogs (the number of spinning threads, "
                "e.g. 2 or 4)\n", argv[0]);
        return 2;
    }
    if (pick_tick_sleep()) {
        fprintf(stderr, "BENCH_TICK_SLEEP: weft, usleep or foreign\n");
        return 2;
    }
    int n = (int)hogs;
    weft_config cfg = {.procs = 2};
    int err = weft_run(bench, &n, &cfg);
    if (err)
        fprintf(stderr, "latency_under_hogs: %s\n", strerror(err));
    return err ? 1 : 0;
}
