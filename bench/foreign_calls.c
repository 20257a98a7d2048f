/* SPDX-License-Identifier: MIT */
/* B9 foreign_overhead: the libc calls unmodified libraries make, on a
 * virtual thread through whatever libweft defines, against glibc's own
 * functions on a plain OS thread.
 *
 *   foreign_calls [--glibc | --both] [getspecific | mutex]...
 *
 * Cases (default: both), 10,000,000 calls each after 100,000 untimed, in
 * 10 timed rounds of 1,000,000: the figure is the median round's (a round
 * that another process on the machine preempted does not count):
 *   getspecific  pthread_getspecific of a key holding a value
 *                -> getspecific_ns, ns per call
 *   mutex        pthread_mutex_lock + pthread_mutex_unlock of a free mutex
 *                -> mutex_pair_ns, ns per pair
 * weft (no option): each case runs in weft's root virtual thread (procs
 * 1), calling the functions this program links to, libweft's where it
 * defines them. --glibc: each case runs on a plain pthread (so that the
 * process has threads, as under weft: glibc takes short cuts in a
 * single-threaded process), no weft_run, calling glibc's functions found
 * with dlsym(RTLD_NEXT) (in this program libweft's definitions come
 * first): the peer, printing the same metric names. --both: each case
 * both ways in this one process,
 * weft first, printing <metric> for weft, <metric>_glibc for glibc and
 * <metric>_ratio. Both ways call through a function pointer, as a call
 * through the PLT does.
 */
#define _GNU_SOURCE
#include <weft.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ROUNDS = 10, N = 1000000, WARMUP = 100000 };

typedef struct fns {
    int (*key_create)(pthread_key_t *, void (*)(void *));
    int (*setspecific)(pthread_key_t, const void *);
    void *(*getspecific)(pthread_key_t);
    int (*lock)(pthread_mutex_t *);
    int (*unlock)(pthread_mutex_t *);
} fns;

/* The program's own bindings, read through a volatile so that the
 * compiler calls them through the pointer (as glibc's are). */
static fns *volatile linked = &(fns){
    pthread_key_create, pthread_setspecific, pthread_getspecific,
    pthread_mutex_lock, pthread_mutex_unlock,
};

static fns glibc;
static volatile uintptr_t sink;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of ROUNDS figures (sorts them). */
static double median(double *ns)
{
    qsort(ns, ROUNDS, sizeof *ns, cmp_double);
    return (ns[ROUNDS / 2 - 1] + ns[ROUNDS / 2]) / 2;
}

static int bind_glibc(void)
{
    *(void **)&glibc.key_create = dlsym(RTLD_NEXT, "pthread_key_create");
    *(void **)&glibc.setspecific = dlsym(RTLD_NEXT, "pthread_setspecific");
    *(void **)&glibc.getspecific = dlsym(RTLD_NEXT, "pthread_getspecific");
    *(void **)&glibc.lock = dlsym(RTLD_NEXT, "pthread_mutex_lock");
    *(void **)&glibc.unlock = dlsym(RTLD_NEXT, "pthread_mutex_unlock");
    if (!glibc.key_create || !glibc.setspecific || !glibc.getspecific ||
        !glibc.lock || !glibc.unlock) {
        fprintf(stderr, "foreign_calls: dlsym: %s\n", dlerror());
        return ENOENT;
    }
    return 0;
}

static void get_loop(const fns *f, pthread_key_t k, long n)
{
    uintptr_t sum = 0;
    for (long i = 0; i < n; i++)
        sum += (uintptr_t)f->getspecific(k);
    sink = sum;
}

/* ns per pthread_getspecific through f; < 0: failed. */
static double getspecific_ns(const fns *f)
{
    static int value;
    pthread_key_t k;
    int e = f->key_create(&k, NULL);
    if (!e)
        e = f->setspecific(k, &value);
    if (e) {
        fprintf(stderr, "foreign_calls: key: %s\n", strerror(e));
        return -1;
    }
    get_loop(f, k, WARMUP);
    double ns[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        int64_t t0 = now_ns();
        get_loop(f, k, N);
        ns[r] = (double)(now_ns() - t0) / N;
    }
    return median(ns);
}

static void pair_loop(const fns *f, pthread_mutex_t *m, long n)
{
    for (long i = 0; i < n; i++) {
        f->lock(m);
        f->unlock(m);
    }
}

/* ns per lock+unlock pair through f. */
static double mutex_pair_ns(const fns *f)
{
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pair_loop(f, &m, WARMUP);
    double ns[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        int64_t t0 = now_ns();
        pair_loop(f, &m, N);
        ns[r] = (double)(now_ns() - t0) / N;
    }
    return median(ns);
}

typedef struct bench_case {
    const char *name, *metric, *unit;
    double (*run)(const fns *f);
} bench_case;

static const bench_case cases[] = {
    {"getspecific", "getspecific_ns", "ns/call", getspecific_ns},
    {"mutex", "mutex_pair_ns", "ns/pair", mutex_pair_ns},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

typedef struct job {
    const bench_case *c;
    double ns;
} job;

static int on_virtual_thread(void *arg)
{
    job *j = arg;
    j->ns = j->c->run(linked);
    return j->ns < 0 ? EIO : 0;
}

static void *on_pthread(void *arg)
{
    job *j = arg;
    j->ns = j->c->run(&glibc);
    return NULL;
}

/* Runs c the glibc way: on a plain pthread, with glibc's functions. */
static double run_glibc(const bench_case *c)
{
    job j = {c, -1};
    pthread_t t;
    int e = pthread_create(&t, NULL, on_pthread, &j);
    if (e) {
        fprintf(stderr, "foreign_calls: pthread_create: %s\n", strerror(e));
        return -1;
    }
    pthread_join(t, NULL);
    return j.ns;
}

/* Runs c the weft way: in weft's root virtual thread, procs 1. */
static double run_weft(const bench_case *c)
{
    job j = {c, -1};
    weft_config cfg = {.procs = 1};
    int e = weft_run(on_virtual_thread, &j, &cfg);
    if (e) {
        fprintf(stderr, "foreign_calls: weft_run: %s\n", strerror(e));
        return -1;
    }
    return j.ns;
}

static const bench_case *find_case(const char *name)
{
    for (int i = 0; i < NCASES; i++)
        if (!strcmp(cases[i].name, name))
            return &cases[i];
    return NULL;
}

/* mode: 'w' weft, 'g' glibc, 'b' both. */
static int run_case(const bench_case *c, char mode)
{
    double w = mode != 'g' ? run_weft(c) : 0;
    double g = mode != 'w' ? run_glibc(c) : 0;
    if (w < 0 || g < 0)
        return 1;
    if (mode != 'g')
        printf("%s %.2f %s\n", c->metric, w, c->unit);
    if (mode == 'g')
        printf("%s %.2f %s\n", c->metric, g, c->unit);
    if (mode == 'b') {
        printf("%s_glibc %.2f %s\n", c->metric, g, c->unit);
        printf("%s_ratio %.3f weft/glibc\n", c->metric, w / g);
    }
    return 0;
}

int main(int argc, char **argv)
{
    char mode = 'w';
    int first = 1;
    if (argc > 1 && !strcmp(argv[1], "--glibc"))
        mode = 'g', first = 2;
    else if (argc > 1 && !strcmp(argv[1], "--both"))
        mode = 'b', first = 2;
    if (bind_glibc())
        return 1;
    const bench_case *todo[NCASES];
    int n = 0;
    for (int i = first; i < argc && n < NCASES; i++)
        if (!(todo[n++] = find_case(argv[i]))) {
            fprintf(stderr, "usage: %s [--glibc | --both] "
                            "[getspecific | mutex]...\n", argv[0]);
            return 2;
        }
    for (int i = 0; n == 0 && i < NCASES; i++)
        todo[i] = &cases[i];
    n = n ? n : NCASES;
    int rc = 0;
    for (int i = 0; i < n; i++)
        rc |= run_case(todo[i], mode);
    return rc;
}
