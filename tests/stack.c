/* SPDX-License-Identifier: MIT */
/*
 * stack.c — stacks: custom sizes are usable, sizes out of range are
 * refused, an overflow is reported with the thread's name and aborts (seen
 * from outside, through the helper program progs/overflow.c), a stack that
 * cannot be had fails the spawn with ENOMEM and says why on stderr.
 */
#include "wt.h"
#include "wt_child.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>

/* Sanitizers make frames bigger: recurse less deep to use the same space. */
#if WT_SANITIZED
#define DEEP(kib) ((kib) * 3 / 4)
#else
#define DEEP(kib) (kib)
#endif

/* Fails the calling virtual thread if a spawn returned NULL. */
#define WT_REQUIRE_MSG_T(t)                                                \
    do {                                                                   \
        if (!(t)) {                                                        \
            WT_CHECK_MSG(0, "spawn failed: errno %d", wt_errno());         \
            return WT_EFAIL;                                               \
        }                                                                  \
    } while (0)

/* ------------------------------------------------------- usable stacks */

struct depth_probe {
    int kib;              /* frames of 1 KiB to use */
    uintptr_t top, bottom;
    unsigned long sum;
};

WT_NOIPA static unsigned long burn(struct depth_probe *p, int left)
{
    WT_OPAQUE_BODY();
    volatile char buf[1024];
    for (int i = 0; i < (int)sizeof buf; i += 64)
        buf[i] = (char)(left + i);
    if (left == p->kib)
        p->top = (uintptr_t)buf;
    if (left <= 1) {
        p->bottom = (uintptr_t)buf;
        return (unsigned char)buf[0];
    }
    return burn(p, left - 1) + (unsigned char)buf[64];
}

static int use_stack(void *arg)
{
    struct depth_probe *p = arg;
    p->sum = burn(p, p->kib);
    return 0;
}

static int spawn_with_stack(size_t stack, struct depth_probe *p)
{
    weft_attr a = {0};
    a.name = "stack-user";
    a.stack_size = stack;
    weft_thread *t = weft_go_with(&a, use_stack, p);
    WT_REQUIRE_MSG_T(t);
    int r = -1;
    WT_REQUIRE_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, 0);
    uintptr_t used = p->top > p->bottom ? p->top - p->bottom : 0;
    WT_CHECK_MSG(used >= (uintptr_t)(p->kib - 1) * 1024,
                 "recursion used only %lu bytes of stack",
                 (unsigned long)used);
    WT_CHECK(p->sum != 0);
    return 0;
}

static int root_small_stack(void *arg)
{
    struct depth_probe p = {.kib = 46};
    return spawn_with_stack(64 * 1024, &p);
}

Test(stack, small_custom_stack_is_mostly_usable, .timeout = 10)
{
    WT_RUN(root_small_stack, NULL, .procs = 1);
}

static int root_default_stack(void *arg)
{
    struct depth_probe p = {.kib = DEEP(200)};
    return spawn_with_stack(0, &p);
}

Test(stack, default_stack_holds_200_kib, .timeout = 10)
{
    WT_RUN(root_default_stack, NULL, .procs = 2);
}

static int root_config_stack(void *arg)
{
    /* cfg.stack_size = 64 KiB is now the default for weft_go */
    struct depth_probe p = {.kib = 46};
    weft_thread *t = weft_go(use_stack, &p);
    WT_REQUIRE_MSG_T(t);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK(p.top - p.bottom >= (uintptr_t)(p.kib - 1) * 1024);
    return 0;
}

Test(stack, config_sets_default_stack_size, .timeout = 10)
{
    weft_config cfg = {.procs = 1, .stack_size = 64 * 1024};
    cr_assert_eq(weft_run(root_config_stack, NULL, &cfg), 0);
    wt_assert_clean();
}

/* A large stack: 1 MiB, 900 KiB of it used. */
static int root_large_stack(void *arg)
{
    struct depth_probe p = {.kib = DEEP(900)};
    return spawn_with_stack(1024 * 1024, &p);
}

Test(stack, large_custom_stack_is_usable, .timeout = 10)
{
    WT_RUN(root_large_stack, NULL, .procs = 2);
}

/* Many threads with small stacks alive at once, each using some of it. */
static weft_sem g_hold = WEFT_SEM_INIT(0);

static int small_holder(void *arg)
{
    struct depth_probe p = {.kib = 8};
    burn(&p, p.kib);
    return weft_sem_acquire(&g_hold);
}

static int root_many_small(void *arg)
{
    enum { N = 2000 };
    weft_attr a = {0};
    a.stack_size = 32 * 1024;
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < N; i++)
        WT_REQUIRE(weft_go_with(&a, small_holder, NULL) != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(20)), 0);
    for (int i = 0; i < N; i++)
        WT_CHECK_EQ(weft_sem_release(&g_hold), 0);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    return 0;
}

/* Under TSan on a loaded 2-CPU machine this takes 20-30 s: each of the
 * 2000 first runs sets up a TSan fiber, and the root's release loop, slow
 * enough to be handed off, then runs demoted. */
Test(stack, many_small_stacks_at_once, .timeout = 90)
{
    WT_RUN(root_many_small, NULL, .procs = 2);
}

/* ------------------------------------------------------------- limits */

static int noop(void *arg)
{
    return 0;
}

static int root_limits(void *arg)
{
    size_t bad[] = {1, 8 * 1024, 16 * 1024 - 1, (1ul << 30) + 1, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        weft_attr a = {0};
        a.stack_size = bad[i];
        errno = 0;
        weft_thread *t = weft_go_with(&a, noop, NULL);
        WT_CHECK_MSG(t == NULL && wt_errno() == EINVAL,
                     "stack size %zu: handle %p, errno %d", bad[i], (void *)t,
                     wt_errno());
    }
    /* the bounds themselves are accepted */
    weft_attr a = {0};
    a.stack_size = 16 * 1024;
    weft_thread *t = weft_go_with(&a, noop, NULL);
    WT_REQUIRE_MSG_T(t);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, 0);
    a.stack_size = 1ul << 30;
    t = weft_go_with(&a, noop, NULL);
    WT_REQUIRE_MSG_T(t);
    r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    /* address space only: it runs (or, short of memory, ENOMEM) */
    WT_CHECK_MSG(r == 0 || r == ENOMEM, "1 GiB stack thread result %d", r);
    return 0;
}

Test(stack, size_out_of_range_is_einval, .timeout = 10)
{
    WT_RUN(root_limits, NULL, .procs = 1);
}

Test(stack, config_stack_size_out_of_range_is_einval, .timeout = 10)
{
    /* (The lower bound of cfg.stack_size is the runtime's: compact mode
     * allows small stacks. One byte is below any.) */
    weft_config cfg = {.procs = 1, .stack_size = 1};
    cr_assert_eq(weft_run(noop, NULL, &cfg), EINVAL);
    cfg.stack_size = (1ul << 30) + 1;
    cr_assert_eq(weft_run(noop, NULL, &cfg), EINVAL);
    cfg.stack_size = SIZE_MAX;
    cr_assert_eq(weft_run(noop, NULL, &cfg), EINVAL);
    /* the runtime is still usable afterwards */
    cfg.stack_size = 0;
    cr_assert_eq(weft_run(noop, NULL, &cfg), 0);
}

/* ------------------------------------------------------------ overflow */

/* Runs the overflow helper with `kib` as its argument; collects its exit
 * status and stderr. */
static void run_overflow(const char *kib, struct wt_child *res)
{
    /* Sanitizers' own SIGSEGV handlers would pre-empt the runtime's. */
    setenv("ASAN_OPTIONS", "handle_segv=0:detect_leaks=0", 1);
    setenv("TSAN_OPTIONS", "handle_segv=0", 1);
    char *argv[] = {(char *)WT_OVERFLOW_PROG, (char *)kib, NULL};
    wt_run_child(argv, res);
}

/* Past a slab stack lie the stack below's live, poisoned frames: ASan
 * may catch the overflow there first, and that is a catch too. It names
 * it by the redzone it lands in (stack-buffer-overflow or -underflow), or
 * dies before naming it: its report runs on the overflowed stack, which
 * has no guard, and 1 run in 70 crashes there after the report's opening
 * rule. Any of these ends the helper, which exits 0 only if nothing
 * caught the overflow. */
static bool caught_by_asan(const struct wt_child *res)
{
#if defined(__SANITIZE_ADDRESS__)
    if (strstr(res->err, "AddressSanitizer") ||
        strstr(res->err, "=================================")) {
        cr_assert(res->status != 0, "ASan reported but the helper exited 0");
        return true;
    }
#endif
    return false;
}

/* Runs the helper with `kib` and the environment `env` ("NAME=value",
 * NULL-ended) added; asserts that it died of SIGABRT with an overflow
 * report naming the thread, which says `where` the fault was. Returns
 * the helper's stderr, or NULL if ASan caught the overflow first; skips
 * the test if the case could not be set up. */
static const char *expect_report(const char *kib, char *const *env,
                                 const char *where)
{
    static struct wt_child res;
    for (char *const *e = env; e && *e; e++)
        putenv(*e);
    /* The deep frame needs an unmapped page within reach below the
     * victim's stack; whether one is there depends on where the kernel
     * put the mappings made meanwhile (carriers' rings and signal
     * stacks), which varies from run to run: a run without one is
     * tried again, a few times. */
    for (int tries = 0; tries < 8; tries++) {
        run_overflow(kib, &res);
        if (!strstr(res.err, "no unmapped page below the stack"))
            break;
    }
    if (strstr(res.err, "no unmapped page below the stack"))
        cr_skip_test("no unmapped page within reach below the stack in 8 "
                     "runs (this system's address-space layout)");
    cr_log_info("overflow helper stderr:\n%s", res.err);
    if (caught_by_asan(&res))
        return NULL;
    cr_assert(WIFSIGNALED(res.status),
              "helper was not killed by a signal (status 0x%x); stderr:\n%s",
              res.status, res.err);
    cr_assert_eq(WTERMSIG(res.status), SIGABRT,
                 "helper died of signal %d (%s), not SIGABRT; stderr:\n%s",
                 WTERMSIG(res.status), strsignal(WTERMSIG(res.status)),
                 res.err);
    const char *line = strstr(res.err, "weft: stack overflow in virtual "
                                       "thread #");
    cr_assert_not_null(line, "no overflow report:\n%s", res.err);
    cr_assert_not_null(strstr(line, "'overflow-victim'"),
                       "the report does not name the thread:\n%s", res.err);
    cr_assert_not_null(strstr(line, where),
                       "the report does not say '%s':\n%s", where, res.err);
    cr_assert_not_null(strstr(line, "  #0 "),
                       "stderr has no backtrace:\n%s", res.err);
    return res.err;
}

/* Recursion without end: also its frames, folded into one line. */
static void check_overflow(const char *kib, char *const *env,
                           const char *where)
{
    const char *err = expect_report(kib, env, where);
    if (!err)
        return;
    cr_assert_not_null(strstr(err, "the same frame"),
                       "the recursion is not in the backtrace:\n%s", err);
}

Test(stack, overflow_aborts_naming_the_thread, .timeout = 60)
{
    check_overflow("64", NULL, "in its guard page");
}

Test(stack, overflow_of_default_stack_aborts_naming_the_thread,
     .timeout = 60)
{
    check_overflow("0", NULL, "in its guard page");
}

/* Compact mode: 2 KiB stacks share a slab without guard pages between
 * them; the recursion runs down through the slab to its guard. One P,
 * here and for the slab stack below: the stacks it runs through include
 * its spawner's, which must be parked in its join, not still running on
 * a second carrier (it would crash first: seen under qemu). */
Test(stack, overflow_in_compact_mode_aborts_naming_the_thread,
     .timeout = 60)
{
    static char *env[] = {"WEFT_STACK=2k", "WEFT_PROCS=1", NULL};
    check_overflow("0", env, "no guard page of its own");
}

/* Past the guard budget: a default stack from a slab. */
Test(stack, overflow_of_a_slab_stack_aborts_naming_the_thread,
     .timeout = 60)
{
    static char *env[] = {"WEFT_GUARD_BUDGET=0", "WEFT_PROCS=1", NULL};
    check_overflow("0", env, "no guard page of its own");
}

/* One frame, built without stack-clash protection, that jumps the guard
 * page (and whatever is mapped below the stack) and faults below it. */
Test(stack, frame_jumping_the_guard_aborts_naming_the_thread,
     .timeout = 60)
{
    static char *env[] = {"OVERFLOW_MODE=deep", NULL};
    expect_report("16", env, "past its guard page");
}

/* A 300 KiB alloca on a 256 KiB stack, in code built with
 * -fstack-clash-protection (as the project is): its probes, one per page
 * from the top down, fault in the guard page, less than a page below the
 * stack's base. Without the flag, the stores start below the guard page:
 * they fault past it, or (having written over what is mapped there) at
 * the guard page's lowest byte, a whole page below the base. */
Test(stack, big_alloca_faults_in_the_guard_page, .timeout = 60)
{
    static char *env[] = {"OVERFLOW_MODE=alloca", NULL};
    const char *err = expect_report("0", env, "in its guard page");
    if (!err)
        return;
    size_t below = 0;
    const char *at = strstr(err, "; fault ");
    cr_assert(at && sscanf(at, "; fault %zu bytes", &below) == 1,
              "no fault distance in:\n%s", err);
    cr_assert_lt(below, 4096, "the alloca was not probed from the top:\n%s",
                 err);
}

/* A stack without a guard page (none left in the budget) that a thread
 * runs a little past, then leaves by yielding: the canary below it must
 * catch that at the switch. Stack of the default size (from a slab) or of
 * its own size (a mapping of its own), or compact (`stack`: WEFT_STACK).
 * One P: in a slab, the stack below the victim's is its spawner's, which
 * the overflow writes over; with a second carrier the spawner could still
 * be running on it (not yet parked in its join) and crash first. */
static void check_canary(const char *kib, const char *stack)
{
    static struct wt_child res;
    setenv("WEFT_GUARD_BUDGET", "0", 1);
    setenv("WEFT_PROCS", "1", 1);
    setenv("OVERFLOW_SLIGHT", "1", 1);
    if (stack)
        setenv("WEFT_STACK", stack, 1);
    run_overflow(kib, &res);
    unsetenv("OVERFLOW_SLIGHT");
    unsetenv("WEFT_PROCS");
    unsetenv("WEFT_GUARD_BUDGET");
    cr_log_info("overflow helper stderr:\n%s", res.err);
    if (caught_by_asan(&res))
        return;
    cr_assert(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGABRT,
              "helper status 0x%x, not SIGABRT; stderr:\n%s", res.status,
              res.err);
    cr_assert_not_null(strstr(res.err, "canary overwritten"),
                       "no canary report:\n%s", res.err);
    cr_assert_not_null(strstr(res.err, "overflow-victim"),
                       "stderr does not name the thread:\n%s", res.err);
    /* The dump walks the neighbour the overflow wrote over, and
     * symbolizes its frames with libdw: neither may crash it. */
    cr_assert_not_null(strstr(res.err, "weft dump: virtual threads"),
                       "no dump after the report:\n%s", res.err);
    cr_assert_not_null(strstr(res.err, "procs 1, carriers"),
                       "the dump did not finish:\n%s", res.err);
}

Test(stack, canary_catches_overflow_of_a_slab_stack, .timeout = 60)
{
    check_canary("0", NULL);
}

Test(stack, canary_catches_overflow_of_an_unguarded_own_size_stack,
     .timeout = 60)
{
    check_canary("64", NULL);
}

Test(stack, canary_catches_overflow_of_a_compact_stack, .timeout = 60)
{
    check_canary("0", "2k");
}

/* ------------------------------------------------------- compact mode */

/* Compact mode (default stacks under 16 KiB): thousands of threads on
 * guard-less stacks a few KiB each, several to a page, all park and all
 * finish; the root keeps a full stack (it calls printf-sized code). */
#if WT_SANITIZED
#define COMPACT_STACK (12 * 1024) /* sanitizer frames are much larger */
#else
#define COMPACT_STACK 2048
#endif

static weft_sem g_compact_gate = WEFT_SEM_INIT(0);
static _Atomic int g_compact_parked, g_compact_done;

static int compact_child(void *arg)
{
    atomic_fetch_add(&g_compact_parked, 1);
    int r = weft_sem_acquire(&g_compact_gate);
    atomic_fetch_add(&g_compact_done, 1);
    return r;
}

#if defined(__SANITIZE_THREAD__)
/* Each stack's first use creates a TSan fiber: milliseconds apiece where
 * page faults are slow. */
#define COMPACT_THREADS 1500
#else
#define COMPACT_THREADS 5000
#endif

static int root_compact(void *arg)
{
    enum { N = COMPACT_THREADS };
    char big[16 * 1024]; /* the root's stack is not compact */
    memset(big, 1, sizeof big);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < N; i++)
        WT_REQUIRE(weft_go(compact_child, NULL) != NULL);
    while (atomic_load(&g_compact_parked) < N)
        WT_REQUIRE_EQ(weft_sleep(WT_MS(1)), 0);
    for (int i = 0; i < N; i++)
        WT_CHECK_EQ(weft_sem_release(&g_compact_gate), 0);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    WT_CHECK_EQ(atomic_load(&g_compact_done), N);
    return big[100] == 1 ? 0 : EIO;
}

Test(stack, compact_mode_runs_thousands_of_tiny_threads, .timeout = 60)
{
    weft_config cfg = {0};
    cfg.procs = 2;
    cfg.stack_size = COMPACT_STACK;
    cr_assert_eq(weft_run(root_compact, NULL, &cfg), 0);
    wt_assert_clean();
}

/* ------------------------------------------------- map-entry budget */

/* When the guarded-stack budget (from vm.max_map_count; lowered here
 * through WEFT_GUARD_BUDGET) runs out, stacks come from guard-less slabs:
 * spawns never fail for it, and every thread runs. */
static weft_sem g_budget_gate = WEFT_SEM_INIT(0);
static _Atomic int g_budget_parked, g_budget_done;

static int budget_child(void *arg)
{
    char deep[8 * 1024]; /* use a couple of pages of the stack */
    memset(deep, 7, sizeof deep);
    atomic_fetch_add(&g_budget_parked, 1);
    int r = weft_sem_acquire(&g_budget_gate);
    atomic_fetch_add(&g_budget_done, deep[100] == 7);
    return r;
}

static int root_budget(void *arg)
{
    enum { N = 300 };
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < N; i++)
        WT_REQUIRE(weft_go(budget_child, NULL) != NULL);
    while (atomic_load(&g_budget_parked) < N)
        WT_REQUIRE_EQ(weft_sleep(WT_MS(1)), 0);
    for (int i = 0; i < N; i++)
        WT_CHECK_EQ(weft_sem_release(&g_budget_gate), 0);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    WT_CHECK_EQ(atomic_load(&g_budget_done), N);
    return 0;
}

Test(stack, guard_budget_exhausted_falls_back_to_slabs, .timeout = 30)
{
    setenv("WEFT_GUARD_BUDGET", "16", 1);
    WT_RUN(root_budget, NULL, .procs = 2);
    unsetenv("WEFT_GUARD_BUDGET");
}

/* Guard-less slabs grow: each holds twice the stacks of the one before
 * (up to 64 times the first), so that a million threads past the guard
 * budget cost a few hundred map entries, not one pair per 64 stacks
 * (which ran out of vm.max_map_count near 340,000 threads). 4,000 parked
 * threads on 64 KiB stacks: 132 new map entries in slabs of 64, 18 when
 * they grow. */
static long map_entries(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    long n = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        n += c == '\n';
    fclose(f);
    return n;
}

static weft_sem g_slab_gate = WEFT_SEM_INIT(0);
static _Atomic int g_slab_parked;

static int slab_child(void *arg)
{
    atomic_fetch_add(&g_slab_parked, 1);
    return weft_sem_acquire(&g_slab_gate);
}

static int root_slab_growth(void *arg)
{
    enum { N = 4000 };
    long before = map_entries();
    WT_REQUIRE(before > 0);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < N; i++)
        WT_REQUIRE(weft_go(slab_child, NULL) != NULL);
    while (atomic_load(&g_slab_parked) < N)
        WT_REQUIRE_EQ(weft_sleep(WT_MS(1)), 0);
    long grown = map_entries() - before;
    WT_CHECK_MSG(grown < 60, "%d slab stacks took %ld map entries", N, grown);
    for (int i = 0; i < N; i++)
        WT_CHECK_EQ(weft_sem_release(&g_slab_gate), 0);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    return 0;
}

Test(stack, slabs_grow_so_map_entries_stay_few, .timeout = 120)
{
#if defined(__SANITIZE_THREAD__)
    /* TSan maps memory of its own for each thread's stack (16,059 map
     * entries for these 4,000): the count would measure TSan. */
    cr_skip_test("TSan maps memory of its own per stack");
#endif
    setenv("WEFT_GUARD_BUDGET", "0", 1);
    setenv("WEFT_STACK", "64k", 1);
    WT_RUN(root_slab_growth, NULL, .procs = 1);
    unsetenv("WEFT_STACK");
    unsetenv("WEFT_GUARD_BUDGET");
}

/* ------------------------------------------------------- out of memory */

/* A stack that cannot be had fails the spawn itself with ENOMEM; nothing
 * else happens: the scope and a sibling are not cancelled, and spawning
 * works again once memory is back. Memory runs out through RLIMIT_AS,
 * lowered to a few MiB above what the process maps. Sanitizer builds are
 * skipped: their shadow memory and allocators need address space of their
 * own at any moment, and die without it. */
#if !WT_SANITIZED
#define OOM_MARGIN (8u << 20)   /* about 30 default stacks */
#define OOM_MAX_SPAWNS 20000

static weft_sem g_oom_gate = WEFT_SEM_INIT(0);
static weft_sem g_oom_sibling_gate = WEFT_SEM_INIT(0);
static _Atomic int g_oom_ran;

static int oom_holder(void *arg)
{
    (void)arg;
    return weft_sem_acquire(&g_oom_gate);
}

static int oom_sibling(void *arg)
{
    (void)arg;
    return weft_sem_acquire(&g_oom_sibling_gate); /* ECANCELED if cancelled */
}

static int oom_after(void *arg)
{
    (void)arg;
    atomic_fetch_add(&g_oom_ran, 1);
    return 0;
}

/* The process's mapped address space now, from /proc/self/statm. */
static size_t mapped_bytes(void)
{
    char buf[128] = {0};
    int fd = open("/proc/self/statm", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    return n > 0 ? strtoull(buf, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE)
                 : 0;
}

/* Spawns holders until a spawn fails; returns how many were spawned, with
 * the failure's errno in *err (0: none failed). */
static int spawn_until_refused(int *err)
{
    *err = 0;
    for (int i = 0; i < OOM_MAX_SPAWNS; i++) {
        if (!weft_go_with(&(weft_attr){.detached = true}, oom_holder, NULL)) {
            *err = wt_errno();
            return i;
        }
    }
    return OOM_MAX_SPAWNS;
}

static int root_oom(void *arg)
{
    (void)arg;
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    weft_thread *sib = weft_go(oom_sibling, NULL);
    WT_REQUIRE(sib != NULL);
    struct rlimit old, low;
    WT_REQUIRE_EQ(getrlimit(RLIMIT_AS, &old), 0);
    low = old;
    low.rlim_cur = mapped_bytes() + OOM_MARGIN;
    WT_REQUIRE_EQ(setrlimit(RLIMIT_AS, &low), 0);
    int err, n = spawn_until_refused(&err);
    WT_CHECK_EQ(setrlimit(RLIMIT_AS, &old), 0);
    WT_CHECK_MSG(n < OOM_MAX_SPAWNS, "%d spawns, none refused", n);
    WT_CHECK_EQ(err, ENOMEM);
    /* Nobody was cancelled: neither the spawner's own calls... */
    WT_CHECK(!weft_cancelled());
    WT_CHECK_EQ(weft_sleep(WT_MS(1)), 0);
    /* ... nor a sibling, which finishes as it was told. */
    WT_CHECK_EQ(weft_sem_release(&g_oom_sibling_gate), 0);
    int res = -1;
    WT_CHECK_EQ(weft_join(sib, &res), 0);
    WT_CHECK_EQ(res, 0);
    /* Memory is back: spawns work again. */
    weft_thread *t = weft_go(oom_after, NULL);
    WT_CHECK(t != NULL);
    if (t)
        WT_CHECK_EQ(weft_join(t, &res), 0);
    WT_CHECK_EQ(atomic_load(&g_oom_ran), 1);
    for (int i = 0; i < n; i++)
        WT_CHECK_EQ(weft_sem_release(&g_oom_gate), 0);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    return 0;
}

#endif

/* Runs root with stderr sent to a file, then asserts weft_run returned 0
 * and nothing was recorded. Returns what was written to stderr. */
static char *run_capturing_stderr(weft_fn root)
{
    char path[] = "/tmp/weft-stderr-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    int rc = wt_run_raw(root, NULL, 2);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)len + 1);
    cr_assert_not_null(text);
    cr_assert_eq(pread(fd, text, (size_t)len, 0), len);
    close(fd);
    cr_log_info("stderr:\n%s", text);
    wt_assert_clean();
    cr_assert_eq(rc, 0);
    return text;
}

Test(stack, spawn_without_memory_fails_with_enomem_and_cancels_nobody,
     .timeout = 60)
{
#if WT_SANITIZED
    cr_skip_test("sanitizers cannot run with RLIMIT_AS lowered");
#else
    wt_skip_if_emulated("qemu maps the guest's memory apart from "
                        "RLIMIT_AS");
    char *err = run_capturing_stderr(root_oom);
    cr_assert_not_null(strstr(err, "RLIMIT_AS"),
                       "the warning does not name RLIMIT_AS:\n%s", err);
    cr_assert_null(strstr(err, "max_map_count"),
                   "the warning blames map entries:\n%s", err);
    free(err);
#endif
}

/* The warning about guard-less stacks names the sysctl and gives the
 * process's map-entry count beside it. */
Test(stack, guard_budget_warning_gives_the_map_count, .timeout = 30)
{
    setenv("WEFT_GUARD_BUDGET", "16", 1);
    char *err = run_capturing_stderr(root_budget);
    unsetenv("WEFT_GUARD_BUDGET");
    cr_assert_not_null(strstr(err, "vm.max_map_count"), "%s", err);
    cr_assert_not_null(strstr(err, "map entries in use"), "%s", err);
    free(err);
}
