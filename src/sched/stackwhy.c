/* SPDX-License-Identifier: MIT */
/*
 * stackwhy.c — why a stack could not be had, said in words.
 *
 * The kernel answers a refused stack mapping with ENOMEM for three
 * different shortages, each with a different cure:
 *   - map entries: the process holds vm.max_map_count mappings (a guarded
 *     stack costs two). Cure: sysctl vm.max_map_count. weft then carries
 *     on with guard-less slab stacks (stack.c), so this one is a warning,
 *     printed once per run.
 *   - address space: RLIMIT_AS (ulimit -v) is reached. Stacks are address
 *     space first (256 KiB each by default, whatever is touched).
 *   - memory: the kernel's overcommit policy refused the mapping.
 * The last two fail the spawn with ENOMEM; their warning is printed at
 * most once every WARN_EVERY_NS, so that a server refusing thousands of
 * connections in a burst says it once, and again at the next burst.
 *
 * Invariants: nothing here allocates (the shortage may be of memory) or
 * parks (callers are spawning virtual threads, some holding a P's
 * caches): files are read with the real libc read into a small buffer on
 * the caller's stack, messages formatted into one and written with one
 * write. A thread on a compact stack has no room for formatting: it
 * stays silent (weft_go's ENOMEM still says what happened).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/real.h"
#include "sched/poll.h"
#include "sched/carrier.h"
#include "sched/stack.h"
#include "sched/thread.h"
#include "sched/sched.h"

#define DEFAULT_MAX_MAP_COUNT 65530
#define MAP_SLACK 16                   /* entries short of the maximum */
#define RECOUNT_EVERY_NS 1000000000LL  /* a map count stays valid 1 s */
#define WARN_EVERY_NS 10000000000LL    /* one line per shortage burst */

static _Atomic bool guards_warned;
static _Atomic int64_t last_count_at;  /* weft_now(); 0: never */
static _Atomic long last_count;
static _Atomic int64_t last_warn_at;   /* weft_now(); 0: never */

/* Reads fd to its end through libc itself (a hook would park the caller)
 * and returns how many newlines it holds, or -1. */
static long count_lines(int fd)
{
    char buf[512];
    long lines = 0;
    ssize_t n;
    while ((n = weft__real(read)(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    return n < 0 ? -1 : lines;
}

/* The first number in file path, or dflt. */
static long read_number(const char *path, long dflt)
{
    char buf[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dflt;
    ssize_t n = weft__real(read)(fd, buf, sizeof buf - 1);
    weft__real(close)(fd);
    if (n <= 0)
        return dflt;
    buf[n] = 0;
    long v = 0;
    int i = 0;
    for (; buf[i] >= '0' && buf[i] <= '9'; i++)
        v = v * 10 + (buf[i] - '0');
    return i ? v : dflt;
}

/* Runs on: any thread. vm.max_map_count. */
long weft__max_map_count(void)
{
    return read_number("/proc/sys/vm/max_map_count", DEFAULT_MAX_MAP_COUNT);
}

/* The process's map entries now (lines of /proc/self/maps), or -1. */
static long count_maps(void)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long n = count_lines(fd);
    weft__real(close)(fd);
    return n;
}

/* The map count, recounted at most once every RECOUNT_EVERY_NS: a burst
 * of failing spawns must not read a 65,000-line file each. */
static long map_count(void)
{
    int64_t now = weft_now();
    int64_t at = atomic_load_explicit(&last_count_at, memory_order_relaxed);
    if (at && now - at < RECOUNT_EVERY_NS)
        return atomic_load_explicit(&last_count, memory_order_relaxed);
    long n = count_maps();
    atomic_store_explicit(&last_count, n, memory_order_relaxed);
    atomic_store_explicit(&last_count_at, now, memory_order_relaxed);
    return n;
}

/* Runs on: any thread, after the kernel refused a mapping with ENOMEM.
 * Whether the process holds (nearly) vm.max_map_count map entries. */
bool weft__maps_exhausted(void)
{
    long n = map_count();
    return n >= 0 && n + MAP_SLACK >= weft__max_map_count();
}

/* Whether the calling thread's stack has room for snprintf. */
static bool may_format(void)
{
    weft_thread *g = weft__g();
    return !g || !g->stack || g->stack->asked >= WEFT__COMPACT_LIMIT;
}

static void say(const char *line, int n)
{
    if (n > 0) {
        ssize_t w = weft__real(write)(STDERR_FILENO, line, (size_t)n);
        (void)w; /* nowhere else to report to */
    }
}

/* Runs on: any thread. Once per run: stacks have no guard page from now
 * on, because `budget` guarded stacks spent the map-entry budget. */
void weft__warn_no_guards(uint32_t budget)
{
    if (atomic_exchange(&guards_warned, true) || !may_format())
        return;
    char line[400];
    int n = snprintf(line, sizeof line,
                     "weft: %u guarded stacks reached the map-entry budget "
                     "(vm.max_map_count %ld, %ld map entries in use); further "
                     "stacks have no guard page (overflow is caught by a "
                     "canary). Raise it with: sysctl vm.max_map_count=<n>\n",
                     budget, weft__max_map_count(), count_maps());
    say(line, n < (int)sizeof line ? n : (int)sizeof line - 1);
}

/* The cause of a refused mapping other than map entries, in words. */
static void memory_cause(char *out, size_t cap, int err)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        snprintf(out, cap,
                 "the address-space limit RLIMIT_AS (ulimit -v) of %llu MiB "
                 "is reached",
                 (unsigned long long)(rl.rlim_cur >> 20));
    else
        snprintf(out, cap, "out of memory (mmap: %s)", strerror(err));
}

/* Runs on: any thread. A stack of size bytes could not be mapped (the
 * kernel said err): says why, at most once every WARN_EVERY_NS. */
void weft__warn_no_stack(size_t size, int err)
{
    int64_t now = weft_now();
    int64_t last = atomic_load_explicit(&last_warn_at, memory_order_relaxed);
    if ((last && now - last < WARN_EVERY_NS) ||
        !atomic_compare_exchange_strong(&last_warn_at, &last, now) ||
        !may_format())
        return;
    char cause[160], line[400];
    long maps = map_count(), max = weft__max_map_count();
    if (maps >= 0 && maps + MAP_SLACK >= max)
        snprintf(cause, sizeof cause,
                 "%ld map entries reach vm.max_map_count (%ld; raise it "
                 "with: sysctl vm.max_map_count=<n>)",
                 maps, max);
    else
        memory_cause(cause, sizeof cause, err);
    int n = snprintf(line, sizeof line,
                     "weft: no memory for a %zu KiB stack: %s; spawns fail "
                     "with ENOMEM meanwhile\n",
                     size / 1024, cause);
    say(line, n < (int)sizeof line ? n : (int)sizeof line - 1);
}

/* Runs on: weft_run's thread at start: every run warns afresh. */
void weft__stackwhy_reset(void)
{
    atomic_store(&guards_warned, false);
    atomic_store(&last_warn_at, 0);
    atomic_store(&last_count_at, 0);
}
