/* SPDX-License-Identifier: MIT */
/*
 * runtime.c — weft_run: sets the runtime up, runs the root thread to
 * completion on carrier threads while the calling OS thread runs the
 * monitor, and tears everything down.
 *
 * One runtime per process at a time (weft__S.running). The runtime owns
 * nprocs P's and as many carriers, all OS threads it starts: carrier 0
 * holds P 0, where the root thread starts; the others start idle. The
 * caller is not a carrier, so that every carrier may be demoted when stuck
 * and end if it cannot be restored (monitor.c): the caller's own thread
 * goes back to the program as it came. The monitor adds spare carriers
 * (and P's) while carriers are stuck, up to max_carriers. When the root
 * finishes (and so, by structure, every thread), the monitor returns, the
 * carriers leave their loops, weft_run joins them and frees what the run
 * allocated.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/page.h"
#include "base/fence.h"
#include "base/futex.h"
#include "base/real.h"
#include "foreign/foreign.h"
#include "io/io.h"
#include "sched/fiber.h"
#include "sched/runq.h"
#include "sched/trace.h"

#define DEFAULT_STACK (256u * 1024)
#define MAX_PROCS 1024u
#define DEFAULT_HOG_MS 10u
#define MAX_HOG_MS 60000u
#define DEFAULT_MAX_CARRIERS 256u
#define MAX_CARRIERS 4096u

void weft__free_all_g(void);
weft_thread *weft__spawn(weft_thread *parent, const weft_attr *a, weft_fn fn,
                         void *arg);

static unsigned env_unsigned(const char *name, unsigned fallback)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return fallback;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    return *end || n == 0 || n > UINT32_MAX ? fallback : (unsigned)n;
}

static size_t env_size(const char *name, size_t fallback)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return fallback;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end == 'k' || *end == 'K')
        n *= 1024, end++;
    else if (*end == 'm' || *end == 'M')
        n *= 1024 * 1024, end++;
    return *end || n == 0 ? fallback : (size_t)n;
}

static int configure(const weft_config *cfg)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned procs = cfg && cfg->procs ? cfg->procs
                                       : env_unsigned("WEFT_PROCS",
                                                      cpus > 0 ? cpus : 1);
    size_t stack = cfg && cfg->stack_size ? cfg->stack_size
                                          : env_size("WEFT_STACK",
                                                     DEFAULT_STACK);
    unsigned hog_ms = cfg && cfg->hog_ms ? cfg->hog_ms
                                         : env_unsigned("WEFT_HOG_MS",
                                                        DEFAULT_HOG_MS);
    unsigned max_carriers = cfg && cfg->max_carriers ? cfg->max_carriers
                                                     : DEFAULT_MAX_CARRIERS;
    if (!(cfg && cfg->max_carriers) && max_carriers < procs)
        max_carriers = procs;
    if (procs > MAX_PROCS || stack < WEFT__COMPACT_MIN || stack > (1u << 30) ||
        hog_ms > MAX_HOG_MS || max_carriers < procs ||
        max_carriers > MAX_CARRIERS || (cfg && cfg->io > WEFT_IO_EPOLL))
        return EINVAL;
    weft__S.io = cfg ? cfg->io : WEFT_IO_AUTO;
    weft__S.nprocs = procs;
    weft__S.ncpus = cpus > 0 ? (uint32_t)cpus : 1;
    weft__S.hog_ns = (int64_t)hog_ms * 1000000;
    weft__S.max_carriers = max_carriers;
    /* Below WEFT__COMPACT_LIMIT: compact mode, guard-less slab stacks in
     * steps of 1 KiB; otherwise whole pages, guarded. */
    size_t step = stack < WEFT__COMPACT_LIMIT ? 1024 : weft__page();
    weft__S.stack_size = (stack + step - 1) & ~(step - 1);
    weft__S.compact = weft__S.stack_size < WEFT__COMPACT_LIMIT;
    return 0;
}

/* v, as a value the compiler knows nothing about, with memory as it was
 * written so far. */
#define OPAQUE(v)                                                          \
    ({                                                                     \
        __typeof__(v) opaque_ = (v);                                       \
        __asm__ volatile("" : "+r"(opaque_) : : "memory");                 \
        opaque_;                                                           \
    })

/* The dynamic linker resolves a lazily bound function at its first call,
 * saving every vector register on the caller's stack: several KiB on
 * AVX-512 machines, more than a compact stack holds. So the libc functions
 * the runtime calls on a thread's stack are made to resolve here, on the
 * OS stack. (User code in compact threads wants -Wl,-z,now.) Each call
 * must really happen: clang drops a malloc whose block is freed unused,
 * and stores to a block about to be freed, and both compilers inline a
 * memset or memcpy of a size they know; OPAQUE hides pointers and sizes. */
static void resolve_libc_bindings(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    *(volatile int *)__errno_location() = 0;
    sched_yield();
    size_t n = OPAQUE(sizeof ts);
    char *p = OPAQUE(calloc(1, 64));
    p = OPAQUE(realloc(p, 128));
    memset(p, 0, n);
    memcpy(p + 64, &ts, n);
    free(OPAQUE(p));
    free(OPAQUE(malloc(16)));
    _Atomic uint32_t word = 0;
    weft__futex_wake(&word, 1);
    /* weft_offload's first call from a thread. */
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    weft__real(pthread_mutex_lock)(&mu);
    weft__real(pthread_cond_signal)(&cv);
    weft__real(pthread_mutex_unlock)(&mu);
    (void)strtoul(getenv("WEFT_OFFLOAD_THREADS") ? "1" : "0", NULL, 10);
}

/* Room for every P and carrier the monitor may add: only the ones in use
 * are ever touched, the rest of the (large, so mmap-backed) blocks stays
 * untouched address space. */
static int alloc_structures(void)
{
    uint32_t n = weft__S.nprocs, cap = weft__S.max_carriers;
    weft__S.pcap = cap;
    size_t lines = (cap * sizeof(weft__proc) + WEFT_CACHELINE - 1) /
                   WEFT_CACHELINE;
    weft__S.procs = weft__aligned_alloc(WEFT_CACHELINE,
                                        lines * WEFT_CACHELINE);
    weft__S.carriers = weft__calloc(cap, sizeof *weft__S.carriers);
    if (!weft__S.procs || !weft__S.carriers)
        return ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        weft__proc_init(&weft__S.procs[i], i);
        atomic_store(&weft__S.nallp, i + 1);
        weft__S.carriers[i] = weft__calloc(1, sizeof(weft__carrier));
        if (!weft__S.carriers[i])
            return ENOMEM;
        weft__S.carriers[i]->id = i;
        weft__S.ncarriers = i + 1;
    }
    /* P 0 (and the root) goes to carrier 0; the others start idle. */
    weft__S.carriers[0]->p = &weft__S.procs[0];
    weft__S.procs[0].m = weft__S.carriers[0];
    for (uint32_t i = n; i-- > 1;) {
        weft__S.procs[i].idle_next = weft__S.idle_p;
        weft__S.idle_p = &weft__S.procs[i];
    }
    atomic_store(&weft__S.npidle, n - 1);
    return 0;
}

static void free_structures(void)
{
    for (uint32_t i = 0; i < weft__S.ncarriers; i++)
        free(weft__S.carriers[i]);
    free(weft__S.carriers);
    free(weft__S.procs);
}

static void reset_state(void)
{
    memset(&weft__S, 0, sizeof weft__S);
    atomic_store(&weft__S.timer_wait_until, INT64_MIN);
    atomic_store(&weft__S.next_id, 1);
}

/* Starts carriers 1..n-1; they idle until there is work. */
/* Carrier 0, which holds the root, starts last: if any carrier cannot be
 * started, no virtual thread has run. */
static int start_carriers(void)
{
    for (uint32_t i = weft__S.ncarriers; i-- > 0;) {
        weft__carrier *m = weft__S.carriers[i];
        if (weft__carrier_start(m))
            return EAGAIN;
        m->joinable = true;
    }
    return 0;
}

/* Runs after the monitor has returned: no carrier is added meanwhile. */
static void stop_carriers(void)
{
    atomic_store(&weft__S.done, true);
    uint32_t n = atomic_load(&weft__S.ncarriers);
    for (uint32_t i = 0; i < n; i++) {
        weft__carrier *m = weft__S.carriers[i];
        weft__carrier_wake(m);
        if (m->joinable)
            pthread_join(m->os_thread, NULL);
        m->joinable = false;
    }
}

static void teardown(void)
{
    weft__trace_stop(); /* if the run never started */
    weft__io_fini();
    weft__abandon_blocked_threads();
    for (uint32_t i = 0, n = weft__nallp(); i < n && weft__S.procs; i++) {
        weft__stacks_free(&weft__S.procs[i]);
        weft__timers_free(&weft__S.procs[i]);
    }
    weft__stacks_teardown();
    weft__free_all_g();
    free_structures();
}

/* A trace is a diagnostic: a file that cannot be made is reported, and
 * the program runs untraced. */
static void trace_start(void)
{
    int err = weft__trace_start();
    if (err)
        dprintf(STDERR_FILENO, "weft: WEFT_TRACE=%s: %s; running untraced\n",
                getenv("WEFT_TRACE"), strerror(err));
}

/* weft_run is under way: one runtime per process. */
int weft_run(weft_fn fn, void *arg, const weft_config *cfg)
{
    if (!fn)
        return EINVAL;
    if (weft__forked_child)
        return ECHILD; /* fork.c */
    bool no = false;
    if (weft__m() || !atomic_compare_exchange_strong(&weft__in_run, &no, true))
        return EBUSY;
    weft__panic_dump_hook(weft_dump);
    weft__io_hooks_linked();
    weft__locks_linked();
    weft__keys_linked();
    weft__fork_handlers_install();
    reset_state();
    weft__fence_init();
    int err = configure(cfg);
    if (err)
        goto out_busy;
    weft__stacks_init();
    if (weft__S.compact)
        resolve_libc_bindings();
    err = alloc_structures();
    if (!err)
        err = weft__io_init(weft__S.io);
    if (err)
        goto out_free;
    trace_start();
    /* The root runs the program's main logic: in compact mode it still
     * gets a full-size stack. */
    weft_attr root_attr = {.name = "main", .stack_size = weft__S.stack_size};
    if (root_attr.stack_size < DEFAULT_STACK)
        root_attr.stack_size = DEFAULT_STACK;
    weft_thread *root = weft__spawn(NULL, &root_attr, fn, arg);
    if (!root) {
        err = ENOMEM;
        goto out_free;
    }
    weft__S.root = root;
    WEFT__TRACE(weft__trace_spawn(NULL, root));
    weft__overflow_handler_install();
    weft__runq_put_tail(&weft__S.procs[0], root);
    atomic_store(&weft__S.running, true);
    weft__dump_signal_start();
    err = weft__monitor_init();
    if (!err)
        err = start_carriers();
    if (!err) {
        weft__monitor_run();
        err = weft__S.root_result;
    }
    stop_carriers();
    weft__dump_signal_stop(); /* no dump while the rest is torn down */
    weft__io_fini();
    weft__monitor_fini();
    weft__offload_shutdown();
    weft__trace_stop(); /* every thread that records has ended */
    atomic_store(&weft__S.running, false);
    weft__overflow_handler_remove();
out_free:
    teardown();
out_busy:
    atomic_store(&weft__in_run, false);
    return err;
}
