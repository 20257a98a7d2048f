/* SPDX-License-Identifier: MIT */
/*
 * monitor.c — the monitor: one OS thread that keeps a stuck carrier from
 * holding up the other virtual threads, by handing its work to a spare.
 *
 * Detection. Each P's owner bumps p->stamp whenever it starts running a
 * thread (switch.c, loop.c). Every tick (TICK_NS while any P is busy) the monitor
 * reads the stamps. A stamp with WEFT__STAMP_IN_G that has not changed
 * for hog_ns — or for BLOCKING_NS when WEFT__STAMP_BLOCKING says the
 * carrier is inside a marked blocking call — means one thread has held
 * its carrier that long: a loop that never yields, a system call the
 * runtime does not intercept, a page-fault storm. The monitor cannot tell
 * which and need not, with one exception, below.
 *
 * Preempted is not stuck. A stamp also stands still while the kernel has
 * taken the CPU from the carrier: other processes keep the CPUs busy,
 * and the carrier, in the middle of a short thread, waits its turn. Its
 * thread holds nothing then, and a hand-off would only add one more
 * carrier to compete for the same CPUs (three busy processes beside a
 * server on two CPUs: 114 hand-offs in 30 s, carriers 2 -> 6). So before
 * it hands off a P whose stamp stood still for the hog limit, the monitor
 * asks the kernel about the carrier's OS thread (cpuwatch.c):
 *   - sleeping in the kernel ('S', 'D': a system call the runtime does
 *     not see, a page fault), or unknown: stuck, handed off;
 *   - running or runnable ('R'): stuck only if it used at least a
 *     quarter of the hog limit of CPU time since the monitor first saw
 *     it there (one tick into the thread's run: base_cpu). Less means
 *     the kernel kept it off the CPU for most of the time: left alone,
 *     looked at again at the next tick. A quarter: a short thread that
 *     the kernel preempted has used next to nothing (three busy
 *     processes on two CPUs: under a millisecond), while a hog sharing
 *     its CPU with them has had its share, 40% of the clock, and is
 *     handed off at the hog limit as before; beside more processes it
 *     is handed off once it has had that quarter, however long that
 *     takes by the clock (and until then the spare would have had no
 *     more of the CPUs than it does).
 * Why CPU time and state, not the run delay of /proc/<tid>/schedstat:
 * the kernel adds a wait to the run delay only once the wait ends, so a
 * carrier still waiting for a CPU shows neither CPU time nor run delay
 * growing, just as one blocked in a system call does; the state tells
 * them apart. The cost: a clock_gettime on the carrier's CPU clock one
 * tick into a run, and a pread of its stat file at the hog limit, only
 * for P's whose stamp stood still that long. Marked blocking calls
 * (WEFT__STAMP_BLOCKING) are handed off by the clock alone: the carrier
 * said it blocks.
 *
 * Hand-off. The stuck carrier is never interrupted and its P is never
 * taken from it: the stuck code may be inside the runtime, using the P
 * without locks. Instead the monitor marks the P stuck and puts one more
 * P into circulation (a retired one, or a fresh one) with a carrier to
 * run it (an idle spare, or a new OS thread, up to max_carriers). The
 * stuck P's queued threads are stolen from it (its runnext at once), and
 * its timers fire on other carriers or, when they are late, here. So:
 *     P's in circulation = nprocs + nstuck,
 * and at most nprocs carriers run threads on P's that are not stuck.
 *
 * Demotion. A stuck carrier competes for the CPUs with the carriers that
 * took over its work, and the kernel lets it finish its time slice before
 * a carrier that wakes (a ticker's, back from its sleep) gets the CPU. So
 * when the process has more carriers holding P's than the machine has
 * CPUs, the monitor lowers a stuck carrier's priority: by DEMOTE_NICE at
 * once, by DEEP_NICE once it has been stuck for DEEPEN_NS. A waking
 * carrier then preempts it sooner, and the carriers share the CPUs 3 to 1
 * (then 10 to 1) in favour of those that are not stuck. A short stall (a
 * loop releasing thousands of threads) loses little; a thread that spins
 * for seconds gives way (four spinners on two P's: a ticker's p99 of
 * 1.3 ms at nice 5, 0.1 ms at nice 10). Not further: at SCHED_IDLE or nice
 * 19 a stuck carrier starved whenever other processes were busy (2.7 s of
 * work took over 60 s beside two CPU-bound processes); a long EEVDF time
 * slice instead kept its share but let it hold a CPU for up to 100 ms
 * against carriers that were runnable (not waking). Undoing it (raising a priority) takes
 * CAP_SYS_NICE or a high enough RLIMIT_NICE; without them the carrier's
 * OS thread ends when it comes back, and its record is reused for the
 * next spare (carriers are all the runtime's own threads; weft_run's
 * caller is not one). Carriers under a policy other than SCHED_OTHER (the
 * program chose one) are left as they are.
 *
 * Return. At its next switch the stuck carrier sees the mark, goes to its
 * scheduler loop instead of the next thread, moves its P's queue to the
 * global queue and retires the P (weft__proc_retire), then idles as a
 * spare (or ends, see above). A mark may be stale (the carrier switched
 * just after the monitor read its stamp): the same path then merely moves
 * one P's work to another P.
 *
 * The monitor is weft_run's own thread: it runs from the start of the run
 * to its end (weft__monitor_run).
 *
 * Sleep. A tick that finds every P idle (after doing its work: a spare
 * to start, late timers) ends with the monitor asleep on mon.word until a
 * carrier takes a P (weft__monitor_kick), or a tick past the next armed
 * timer's due time, if there is one. Nothing is lost meanwhile: with
 * every P idle no thread runs, so none can hog; the timer waiter watches
 * the timers, and the monitor's own wake-up is the backstop it keeps
 * while busy (fire_late_timers). A runtime idle with no timer armed thus
 * makes no wake-up at all (bench/idle_wakeups.c). The kick costs a carrier one
 * load while the monitor is awake, and a futex wake only when it sleeps;
 * it comes after the carrier's own wake-up, a system call already. The
 * Dekker pair: the monitor publishes mon.sleeping, then re-reads npidle; a
 * carrier that takes a P lowers npidle, then reads mon.sleeping (seq_cst).
 *
 * Longer than our ~500-line aim: detection, hand-off, spare carriers and
 * demotion all read and write the monitor's one state (mon) on its one
 * thread; the stats and the dump section are the seam to cut along next.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/futex.h"
#include "base/real.h"
#include "sched/poll.h"
#include "sched/bind.h"
#include "sched/carrier.h"
#include "sched/monitor.h"
#include "sched/offload.h"
#include "sched/proc.h"
#include "sched/thread.h"
#include "sched/timer.h"
#include "sched/runq.h"
#include "sched/trace.h"

#define TICK_NS 1000000         /* while any P is busy */
#define BLOCKING_NS 1000000     /* a marked blocking call is stuck after */

static struct {
    _Atomic uint32_t word;      /* futex: bumped to wake the monitor */
    _Atomic bool sleeping;
    _Atomic uint64_t handoffs;
    _Atomic uint64_t handoffs_blocking; /* ... in a marked blocking call */
    weft__spinlock hog_lock;    /* the longest hog's record; lock order
                                   11: HOG (sched.h) */
    int64_t hog_ns;
    uint64_t hog_id;
    char hog_name[32];
    uint64_t *seen_stamp;       /* monitor only: per P, the stamp last ... */
    int64_t *seen_at;           /* ... read, and when it was first read, */
    int64_t *base_cpu;          /* ... its carrier's CPU time a tick later
                                   (NO_BASE: not yet read; -1: unknown), */
    bool *spared;               /* ... and whether it was judged preempted */
    _Atomic uint64_t preempted; /* stamps judged preempted, not stuck */
} mon;

#define NO_BASE INT64_MIN

/* ------------------------------------------------------------- demotion */

#define DEMOTE_NICE 5            /* a stuck carrier's lower priority ... */
#define DEEP_NICE 10             /* ... and once it has been stuck ... */
#define DEEPEN_NS 100000000      /* ... this long */
#define MONITOR_SLICE_NS 100000  /* the kernel's shortest time slice */

/* The Linux sched_attr of sched_setattr(2), first version (glibc 2.36 has
 * no wrapper). */
struct slice_attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
};

/* Reads tid's attributes (0: the caller); false unless it runs under
 * SCHED_OTHER. */
static bool get_fair_attr(int tid, struct slice_attr *a)
{
    *a = (struct slice_attr){0};
    if (syscall(SYS_sched_getattr, tid, a, sizeof *a, 0) != 0 ||
        a->policy != SCHED_OTHER)
        return false;
    a->size = sizeof *a;
    return true;
}

/* Sets tid's time slice, keeping the rest of what *a holds. */
static bool set_slice(int tid, struct slice_attr *a, uint64_t ns)
{
    struct slice_attr b = *a;
    b.runtime = ns;
    return syscall(SYS_sched_setattr, tid, &b, 0) == 0;
}

/* Runs on: the monitor, under the scheduler lock, which m takes to give
 * its P up (so m is still stuck, and restores after this). Lowers m's
 * priority to nice_before + by. */
static void demote(weft__carrier *m, int by)
{
    int tid = m ? atomic_load_explicit(&m->tid, memory_order_acquire) : 0;
    if (!tid)
        return;
    if (!m->demoted) {
        if (weft__S.nprocs + atomic_load_explicit(&weft__S.nstuck,
                                                  memory_order_relaxed) <=
                weft__S.ncpus ||
            sched_getscheduler(tid) != SCHED_OTHER)
            return;
        errno = 0;
        m->nice_before = getpriority(PRIO_PROCESS, (id_t)tid);
        if (errno)
            return;
    }
    int nice = m->nice_before + by > 19 ? 19 : m->nice_before + by;
    if (setpriority(PRIO_PROCESS, (id_t)tid, nice) == 0)
        m->demoted = by;
}

/* Runs on: the monitor. Demotes further the carriers stuck for long. */
static void deepen(int64_t now)
{
    for (uint32_t i = 0, n = weft__nallp(); i < n; i++) {
        weft__proc *p = &weft__S.procs[i];
        if (!atomic_load_explicit(&p->stuck, memory_order_relaxed))
            continue;
        weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
        weft__carrier *m = p->m;
        if (atomic_load_explicit(&p->stuck, memory_order_relaxed) && m &&
            m->demoted && m->demoted < DEEP_NICE &&
            now - p->hog_since >= DEEPEN_NS)
            demote(m, DEEP_NICE);
        weft__spin_unlock(&weft__S.lock);
    }
}

/* Runs on: m's own thread, back from being stuck. Returns false if m must
 * end (its priority could not be put back). */
static bool restore(weft__carrier *m)
{
    if (!m->demoted)
        return true;
    if (setpriority(PRIO_PROCESS, 0, m->nice_before) != 0)
        return false;
    m->demoted = 0;
    return true;
}

/* -------------------------------------------------------------- hand-off */

/* Under the scheduler lock: a P to add to circulation, or NULL when
 * max_carriers would be exceeded. */
static weft__proc *extra_proc_locked(void)
{
    uint32_t stuck = atomic_load_explicit(&weft__S.nstuck,
                                          memory_order_relaxed);
    if (weft__S.nprocs + stuck >= weft__S.max_carriers)
        return NULL;
    weft__proc *p = weft__S.retired_p;
    if (p) {
        weft__S.retired_p = p->idle_next;
        return p;
    }
    uint32_t n = atomic_load_explicit(&weft__S.nallp, memory_order_relaxed);
    if (n >= weft__S.pcap)
        return NULL;
    p = &weft__S.procs[n];
    weft__proc_init(p, n);
    /* release: the P is initialised before loops over P's reach it. */
    atomic_store_explicit(&weft__S.nallp, n + 1, memory_order_release);
    return p;
}

/* Marks p stuck (its stamp st unchanged since `since`), demotes its
 * carrier and puts another P on the idle list in its stead. All under the
 * scheduler lock, which the carrier takes to give its P up (idle): so the
 * carrier demoted is the one that holds p, and it sees the mark before it
 * lets go of p. */
static void hand_off(weft__proc *p, uint64_t st, int64_t since)
{
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    weft__carrier *m = p->m;
    weft__proc *extra = NULL;
    if (!m || atomic_load_explicit(&p->stamp, memory_order_relaxed) != st ||
        !(extra = extra_proc_locked())) {
        weft__spin_unlock(&weft__S.lock);
        return;
    }
    extra->idle_next = weft__S.idle_p;
    weft__S.idle_p = extra;
    atomic_fetch_add_explicit(&weft__S.npidle, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&weft__S.nstuck, 1, memory_order_relaxed);
    p->hog_stamp = st;
    p->hog_since = since;
    demote(m, DEMOTE_NICE);
    /* release: hog_stamp, hog_since and m->demoted, for the carrier. */
    atomic_store_explicit(&p->stuck, true, memory_order_release);
    weft__spin_unlock(&weft__S.lock);
    WEFT__TRACE(weft__trace_handoff(p, m));
    atomic_fetch_add_explicit(&mon.handoffs, 1, memory_order_relaxed);
    if (st & WEFT__STAMP_BLOCKING)
        atomic_fetch_add_explicit(&mon.handoffs_blocking, 1,
                                  memory_order_relaxed);
}

/* How long a thread may hold its carrier. Once a carrier is stuck and
 * threads wait to run, the others get an eighth of hog_ns: where there is
 * one hog there are often more, and the threads queued behind them would
 * otherwise wait a full hog_ns for each wave of hand-offs (four spinners
 * on two P's: the first wave at 10 ms, the second at 20). */
static int64_t hog_limit(void)
{
    int64_t limit = weft__S.hog_ns;
    if (atomic_load_explicit(&weft__S.nstuck, memory_order_relaxed) &&
        weft__work_anywhere())
        limit /= 8;
    return limit < BLOCKING_NS ? BLOCKING_NS : limit;
}

/* The carrier that holds p, or NULL. */
static weft__carrier *holder(weft__proc *p)
{
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    weft__carrier *m = p->m;
    weft__spin_unlock(&weft__S.lock);
    return m;
}

/* P number i's stamp has stood still for the hog limit: true if its
 * carrier is stuck, false if the kernel kept it off the CPU (see top of
 * file). */
static bool held_long(weft__proc *p, uint32_t i, int64_t limit)
{
    weft__carrier *m = holder(p);
    if (!m || mon.base_cpu[i] < 0 || weft__carrier_run_state(m) != 'R')
        return true;
    int64_t cpu = weft__carrier_cpu_ns(m);
    if (cpu < 0 || cpu - mon.base_cpu[i] >= limit / 4)
        return true;
    if (!mon.spared[i]) {
        mon.spared[i] = true;
        atomic_fetch_add_explicit(&mon.preempted, 1, memory_order_relaxed);
    }
    return false;
}

/* Reads every P's stamp; hands off the P's that are stuck. Returns true
 * if any P is busy. */
static bool scan(int64_t now)
{
    uint32_t n = weft__nallp();
    bool busy = false;
    for (uint32_t i = 0; i < n; i++) {
        weft__proc *p = &weft__S.procs[i];
        uint64_t st = atomic_load_explicit(&p->stamp, memory_order_relaxed);
        if (st & WEFT__STAMP_IN_G)
            busy = true;
        if (st != mon.seen_stamp[i]) {
            mon.seen_stamp[i] = st;
            mon.seen_at[i] = now;
            mon.base_cpu[i] = NO_BASE;
            mon.spared[i] = false;
            continue;
        }
        if (!(st & WEFT__STAMP_IN_G) ||
            atomic_load_explicit(&p->stuck, memory_order_relaxed))
            continue;
        int64_t held = now - mon.seen_at[i];
        if (st & WEFT__STAMP_BLOCKING) {
            if (held >= BLOCKING_NS)
                hand_off(p, st, mon.seen_at[i]);
            continue;
        }
        if (mon.base_cpu[i] == NO_BASE) {
            weft__carrier *m = holder(p);
            mon.base_cpu[i] = m ? weft__carrier_cpu_ns(m) : -1;
        }
        int64_t limit = hog_limit();
        if (held >= limit && held_long(p, i, limit))
            hand_off(p, st, mon.seen_at[i]);
    }
    return busy;
}

/* Timers of a stuck P wait for no one; others' are fired here only when a
 * tick late (their carriers or the timer waiter should have). Threads
 * they wake go to the global queue (no P here). */
static void fire_late_timers(int64_t now)
{
    for (uint32_t i = 0, n = weft__nallp(); i < n; i++) {
        weft__proc *p = &weft__S.procs[i];
        int64_t due = atomic_load_explicit(&p->stuck, memory_order_relaxed)
                          ? now : now - TICK_NS;
        if (atomic_load_explicit(&p->timer_next, memory_order_relaxed) <= due)
            weft__timers_run(p, due);
    }
}

/* An idle P and no carrier to take it, while there is queued work, or an
 * armed timer (whose thread would wake to find no carrier), or no carrier
 * at all (the last ones were demoted and ended: an idle carrier is also
 * what notices a deadlock): wake a spare, or start one. */
static void ensure_carrier(void)
{
    if (!atomic_load_explicit(&weft__S.npidle, memory_order_seq_cst))
        return;
    bool work = weft__work_anywhere();
    if (work && weft__wakep())
        return;
    bool timers = weft__timers_next() >= 0;
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    weft__proc *p = weft__S.idle_p;
    bool none = atomic_load(&weft__S.ncarriers) == weft__S.nexited;
    if (!p || weft__S.idle_m || !(work || timers || none)) {
        weft__spin_unlock(&weft__S.lock);
        return; /* nothing to do, or an idle spare will do it */
    }
    weft__S.idle_p = p->idle_next;
    atomic_fetch_sub_explicit(&weft__S.npidle, 1, memory_order_seq_cst);
    weft__spin_unlock(&weft__S.lock);
    if (weft__carrier_spawn(p) == 0)
        return;
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    p->idle_next = weft__S.idle_p;
    weft__S.idle_p = p;
    atomic_fetch_add_explicit(&weft__S.npidle, 1, memory_order_seq_cst);
    weft__spin_unlock(&weft__S.lock);
}

/* ----------------------------------------------------------------- loop */

static struct slice_attr saved_attr;
static bool slice_set;

/* The monitor sleeps almost always and must run the moment its tick is
 * due, even when every CPU is busy with carriers that have not yet been
 * found stuck: a short time slice lets it preempt them at once instead of
 * after their slice. Undone when weft_run returns: the thread is the
 * program's. */
static void set_short_slice(void)
{
    slice_set = get_fair_attr(0, &saved_attr) &&
                set_slice(0, &saved_attr, MONITOR_SLICE_NS);
}

static void restore_slice(void)
{
    if (slice_set)
        set_slice(0, &saved_attr, saved_attr.runtime);
    slice_set = false;
}

static bool all_idle(void)
{
    return atomic_load_explicit(&weft__S.npidle, memory_order_seq_cst) >=
           weft__S.nprocs + atomic_load_explicit(&weft__S.nstuck,
                                                 memory_order_seq_cst);
}

static bool stopping(void)
{
    return atomic_load_explicit(&weft__S.done, memory_order_acquire);
}

/* Sleeps until a carrier takes a P. With a timer armed, no longer than a
 * tick past its due time: the timer waiter fires it, and this is the
 * backstop should it not (fire_late_timers). With none, no time-out. */
static void sleep_until_kicked(void)
{
    uint32_t w = atomic_load_explicit(&mon.word, memory_order_acquire);
    atomic_store_explicit(&mon.sleeping, true, memory_order_seq_cst);
    if (all_idle() && !stopping()) {
        int64_t next = weft__timers_next();
        weft__futex_wait(&mon.word, w, next < 0 ? -1 : next + TICK_NS);
    }
    atomic_store_explicit(&mon.sleeping, false, memory_order_relaxed);
}

/* Runs on: weft_run's thread, carriers started, until the runtime stops. */
void weft__monitor_run(void)
{
    set_short_slice();
    while (!stopping()) {
        int64_t now = weft_now();
        atomic_store_explicit(&weft__S.tick_ns, now, memory_order_relaxed);
        bool busy = scan(now);
        deepen(now);
        fire_late_timers(now);
        weft__poll.sweep(); /* events of carriers too busy to look */
        weft__bound_sweep(now); /* latency over binding (bind.c) */
        ensure_carrier();
        if (!busy && all_idle()) {
            sleep_until_kicked();
            continue;
        }
        uint32_t w = atomic_load_explicit(&mon.word, memory_order_acquire);
        weft__futex_wait(&mon.word, w, now + TICK_NS);
    }
    restore_slice();
}

/* Runs on: weft_run's thread, before the carriers start. */
int weft__monitor_init(void)
{
    memset(&mon, 0, sizeof mon);
    atomic_store(&weft__S.tick_ns, weft_now());
    mon.seen_stamp = weft__calloc(weft__S.pcap, sizeof *mon.seen_stamp);
    mon.seen_at = weft__calloc(weft__S.pcap, sizeof *mon.seen_at);
    mon.base_cpu = weft__calloc(weft__S.pcap, sizeof *mon.base_cpu);
    mon.spared = weft__calloc(weft__S.pcap, sizeof *mon.spared);
    return mon.seen_stamp && mon.seen_at && mon.base_cpu && mon.spared ? 0 : ENOMEM;
}

/* Runs on: weft_run's thread, the carriers ended. */
void weft__monitor_fini(void)
{
    for (uint32_t i = 0, n = atomic_load(&weft__S.ncarriers); i < n; i++)
        weft__carrier_stat_close(weft__S.carriers[i]);
    free(mon.seen_stamp);
    free(mon.seen_at);
    free(mon.base_cpu);
    free(mon.spared);
    mon.seen_stamp = NULL;
    mon.seen_at = NULL;
    mon.base_cpu = NULL;
    mon.spared = NULL;
}

/* Runs on: any thread. Runs a tick now. */
void weft__monitor_poke(void)
{
    atomic_fetch_add_explicit(&mon.word, 1, memory_order_release);
    weft__futex_wake(&mon.word, 1);
}

/* Runs on: a carrier that has just taken a P. The clock the monitor keeps
 * (weft__tick_now) stood still while it slept: it is set here, before the
 * carrier's threads read it. */
void weft__monitor_kick(void)
{
    if (!atomic_load_explicit(&mon.sleeping, memory_order_seq_cst))
        return;
    atomic_store_explicit(&weft__S.tick_ns, weft_now(), memory_order_relaxed);
    weft__monitor_poke();
}

/* --------------------------------------------------------------- return */

/* Runs on: g, on carrier m whose P was marked stuck, switching out. If g
 * is the thread the monitor saw (the stamp is the one it judged), notes
 * how long g held the carrier, for weft__hog_returned: g's stack may be a
 * compact one, too small for anything more. */
void weft__hog_seen(weft__carrier *m, weft_thread *g)
{
    weft__proc *p = m->p;
    (void)atomic_load_explicit(&p->stuck, memory_order_acquire);
    if (atomic_load_explicit(&p->stamp, memory_order_relaxed) != p->hog_stamp)
        return;
    m->hog = true;
    m->hog_ns = weft_now() - p->hog_since;
    m->hog_id = g->id;
    const char *name = weft__thread_name(g, m->hog_name, sizeof m->hog_name);
    size_t i = 0; /* by hand: no libc call on a compact stack */
    for (; name != m->hog_name && name[i] && i + 1 < sizeof m->hog_name; i++)
        m->hog_name[i] = name[i];
    if (name != m->hog_name)
        m->hog_name[i] = 0;
}

/* Runs on: m's scheduler loop. Records the hog m noted, if the longest. */
void weft__hog_returned(weft__carrier *m)
{
    m->hog = false;
    weft__spin_lock(&mon.hog_lock, WEFT__LOCK_HOG);
    if (m->hog_ns > mon.hog_ns) {
        mon.hog_ns = m->hog_ns;
        mon.hog_id = m->hog_id;
        memcpy(mon.hog_name, m->hog_name, sizeof mon.hog_name);
    }
    weft__spin_unlock(&mon.hog_lock);
}

/* Runs on: m's scheduler loop; m->p was marked stuck. Gives the P up: its
 * queued threads go to the global queue, the P out of circulation; m is
 * left without a P (it idles next, as a spare). Returns true if m must end
 * instead (it was demoted and cannot undo it). */
bool weft__proc_retire(weft__carrier *m)
{
    weft__proc *p = m->p;
    if (!atomic_exchange_explicit(&p->stuck, false, memory_order_acq_rel))
        return false;
    weft_thread *first = NULL, *last = NULL;
    uint32_t n = 0;
    for (weft_thread *g; (g = weft__runq_get(p)); n++) {
        if (last)
            last->next = g;
        else
            first = g;
        last = g;
    }
    if (n)
        weft__globq_put_chain(first, last, n);
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    p->m = NULL;
    p->idle_next = weft__S.retired_p;
    weft__S.retired_p = p;
    atomic_fetch_sub_explicit(&weft__S.nstuck, 1, memory_order_relaxed);
    m->p = NULL;
    weft__spin_unlock(&weft__S.lock);
    if (n)
        weft__wakep();
    return !restore(m);
}

/* ---------------------------------------------------------------- stats */

int weft_stats(weft_runtime_stats *out)
{
    if (!out)
        return EINVAL;
    if (!atomic_load(&weft__S.running))
        return ESRCH;
    memset(out, 0, sizeof *out);
    out->procs = weft__S.nprocs;
    weft__spin_lock(&weft__S.lock, WEFT__LOCK_SCHED);
    out->carriers = atomic_load(&weft__S.ncarriers) - weft__S.nexited;
    out->carriers_idle = weft__S.nidle_m;
    out->stuck = atomic_load(&weft__S.nstuck);
    out->carriers_running = weft__S.nprocs + out->stuck -
                            atomic_load(&weft__S.npidle);
    weft__spin_unlock(&weft__S.lock);
    out->handoffs = atomic_load(&mon.handoffs);
    out->handoffs_blocking = atomic_load(&mon.handoffs_blocking);
    weft__spin_lock(&mon.hog_lock, WEFT__LOCK_HOG);
    out->longest_hog_ns = (unsigned long long)mon.hog_ns;
    out->longest_hog_id = mon.hog_id;
    memcpy(out->longest_hog_name, mon.hog_name, sizeof mon.hog_name);
    weft__spin_unlock(&mon.hog_lock);
    weft__offload_counts(&out->offload_threads, &out->offload_busy);
    snprintf(out->io_backend, sizeof out->io_backend, "%s",
             weft__poll.name());
    out->io_waiting = weft__fd_waiting();
    weft__poll.batch_counts(&out->io_batched, &out->io_batch_submits);
    out->bound = weft__bound_count();
    out->lock_pinned = weft__lock_pinned_count();
    out->unbound_resumes = atomic_load(&weft__S.unbound_resumes);
    return 0;
}

void weft__dump_monitor(int fd)
{
    weft_runtime_stats st;
    if (weft_stats(&st))
        return;
    dprintf(fd, "monitor: hog limit %lld ms, %llu hand-offs (%llu in "
                "marked blocking calls; %llu stalls left alone: the kernel "
                "had preempted the carrier), %u carriers stuck, %u carriers "
                "(%u idle), offload pool %u threads (%u busy), I/O backend "
                "%s (%u threads waiting, %llu transfers batched in %llu "
                "submissions), %u threads bound, %llu resumed unbound, %u "
                "holding pthread locks\n",
            (long long)(weft__S.hog_ns / 1000000), st.handoffs,
            st.handoffs_blocking,
            (unsigned long long)atomic_load(&mon.preempted), st.stuck,
            st.carriers, st.carriers_idle, st.offload_threads,
            st.offload_busy, st.io_backend, st.io_waiting, st.io_batched,
            st.io_batch_submits, st.bound, st.unbound_resumes,
            st.lock_pinned);
    if (st.longest_hog_ns)
        dprintf(fd, "  longest hog: #%llu '%s', %.1f ms without a switch\n",
                st.longest_hog_id, st.longest_hog_name,
                st.longest_hog_ns / 1e6);
}
