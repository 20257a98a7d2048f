/* SPDX-License-Identifier: MIT */
/*
 * trace.c — scheduler traces in the Chrome trace event format: recording
 * the events and spooling them.
 *
 * Recording, spooling and formatting are apart. Each carrier appends
 * fixed-size binary records to a ring of its own (one producer, one
 * consumer: no lock, no shared line written per event); threads without a
 * carrier (the monitor, OS threads waking virtual ones) share one ring
 * under a spinlock. A writer OS thread copies the rings, as they are, to a
 * spool file (unlinked: it goes away with the process). When the run ends,
 * the spool is turned into the JSON file (trace_json.c; the spool's format
 * is in trace_spool.h). So an event costs a 64-byte copy
 * on the thread's (possibly tiny) stack, no system call and no formatting,
 * and the writer keeps up with a carrier switching every 20 ns.
 *
 * Invariants:
 *  - Nothing is dropped. A producer that finds its ring full wakes the
 *    writer and waits for room (the trace then shows the stall), so every
 *    "B" (a thread starts running, a carrier goes idle) has its "E" on the
 *    same track, in order: each track is one ring, written by one thread,
 *    and spooled in chunks in ring order.
 *  - weft__tracing changes only while no carrier or monitor runs; carrier
 *    records, and the rings they point to, live until weft__trace_stop.
 *  - Records hold copies (ids, names), never pointers to threads, which may
 *    be freed before the trace is written; function addresses are the
 *    exception, symbolized at the end (code is not unmapped under us).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/futex.h"
#include "base/real.h"
#include "sched/poll.h"
#include "sched/carrier.h"
#include "sched/park.h"
#include "sched/proc.h"
#include "sched/thread.h"
#include "sched/trace.h"
#include "sched/trace_spool.h"

/* The CPU's own counter, where it is a clock: the time-stamp counter on
 * x86-64; on AArch64 the generic timer's virtual count (CNTVCT_EL0),
 * which the architecture keeps at a fixed rate and in step on every CPU,
 * and which Linux lets user space read. Each goes with the name of the
 * kernel clock source that says the kernel trusts it (tsc_steady). No
 * ISB before the read: a stamp may be a few instructions early. */
#if defined(__x86_64__)
#include <x86intrin.h>
#define HAVE_COUNTER 1
#define COUNTER_CLOCKSOURCE "tsc\n"
static inline uint64_t read_counter(void)
{
    return __rdtsc();
}
#elif defined(__aarch64__)
#define HAVE_COUNTER 1
#define COUNTER_CLOCKSOURCE "arch_sys_counter\n"
static inline uint64_t read_counter(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
}
#endif

bool weft__tracing;

#define RING_SIZE 8192u            /* records per ring: 512 KiB */
#define WRITER_PERIOD_NS 20000000  /* the writer drains at least this often */
#define WEFT__TRACE_SHARED_TRACK 100000        /* tid of the track without a carrier */

struct weft__trace_ring {
    _Atomic uint32_t tail;        /* producer */
    _Atomic uint32_t head;        /* writer; futex of a waiting producer */
    _Atomic uint32_t blocked;     /* a producer waits for room */
    uint32_t track;
    struct weft__trace_rec recs[RING_SIZE];
};

static struct {
    int fd;                       /* the JSON file, for trace_json.c */
    int spool;                    /* the records, until the run ends */
    bool spool_failed;
    struct weft__trace_clock c;   /* how the records are stamped */
    pthread_t writer;
    _Atomic uint32_t writer_word; /* futex: 1 = drain now */
    _Atomic bool stopping;
    weft__spinlock shared_lock;   /* lock order 12: TRACE (sched.h) */
    struct weft__trace_ring *shared;
} T = {.fd = -1, .spool = -1};

/* ------------------------------------------------------------ producers */

static inline int64_t now_stamp(void)
{
#ifdef HAVE_COUNTER
    if (likely(T.c.tsc))
        return (int64_t)read_counter();
#endif
    return weft_now();
}

static void writer_poke(void)
{
    if (!atomic_exchange_explicit(&T.writer_word, 1, memory_order_acq_rel))
        weft__futex_wake(&T.writer_word, 1);
}

/* Reserves the next slot of r, waiting for the writer if r is full. */
static struct weft__trace_rec *ring_slot(struct weft__trace_ring *r)
{
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    while (t - h >= RING_SIZE) {
        /* seq_cst: a Dekker pair with the writer's head store and its
         * read of blocked. */
        atomic_store(&r->blocked, 1);
        writer_poke();
        if ((h = atomic_load(&r->head)) == t - RING_SIZE)
            weft__futex_wait(&r->head, h, -1);
        atomic_store(&r->blocked, 0);
        h = atomic_load_explicit(&r->head, memory_order_acquire);
    }
    if (t - h == RING_SIZE / 2)
        writer_poke();
    return &r->recs[t % RING_SIZE];
}

static void ring_publish(struct weft__trace_ring *r)
{
    atomic_fetch_add_explicit(&r->tail, 1, memory_order_release);
}

/* Appends one event to the ring of the calling thread's carrier, or to
 * the shared one. */
static void emit(weft__carrier *m, const struct weft__trace_rec *e)
{
    if (m && m->trace) {
        struct weft__trace_rec *s = ring_slot(m->trace);
        *s = *e;
        s->ts = now_stamp();
        ring_publish(m->trace);
        return;
    }
    weft__spin_lock(&T.shared_lock, WEFT__LOCK_TRACE);
    struct weft__trace_rec *s = ring_slot(T.shared);
    *s = *e;
    s->ts = now_stamp();
    ring_publish(T.shared);
    weft__spin_unlock(&T.shared_lock);
}

void weft__trace_run(weft__carrier *m, const weft_thread *g)
{
    struct weft__trace_rec e = {.ev = WEFT__EV_RUN, .id = g->id, .arg = (uintptr_t)g->fn,
                    .n = m->p ? (int32_t)m->p->id : -1};
    memcpy(e.name, g->name, sizeof e.name);
    emit(m, &e);
}

/* What a parking thread waits on, in the record's arg and n: an fd number,
 * a joined thread's id, or the object's address. */
static void describe_wait(const weft_thread *g, struct weft__trace_rec *e)
{
    int kind = atomic_load_explicit(&g->wait_kind, memory_order_relaxed);
    const void *obj = atomic_load_explicit(&g->wait_obj, memory_order_relaxed);
    e->n = kind;
    if (obj && kind >= WEFT__WAIT_FD_READ && kind <= WEFT__WAIT_FD_POLL)
        e->arg = (uint64_t)weft__fd_of_wait(obj);
    else if (obj && kind == WEFT__WAIT_JOIN)
        e->arg = ((const weft_thread *)obj)->id;
    else
        e->arg = (uintptr_t)obj;
}

void weft__trace_switch_out(weft__carrier *m, const weft_thread *g,
                            weft__after_kind after)
{
    struct weft__trace_rec e = {.ev = WEFT__EV_SWITCH_OUT, .id = g->id, .detail = after};
    if (after == WEFT__AFTER_PARK)
        describe_wait(g, &e);
    emit(m, &e);
}

void weft__trace_idle(weft__carrier *m, bool begin)
{
    struct weft__trace_rec e = {.ev = begin ? WEFT__EV_IDLE_BEGIN : WEFT__EV_IDLE_END};
    emit(m, &e);
}

void weft__trace_steal(weft__carrier *m, const weft_thread *g,
                       const weft__proc *victim)
{
    struct weft__trace_rec e = {.ev = WEFT__EV_STEAL, .id = g->id, .n = (int32_t)victim->id};
    emit(m, &e);
}

void weft__trace_spawn(const weft_thread *parent, const weft_thread *child)
{
    struct weft__trace_rec e = {.ev = WEFT__EV_SPAWN, .id = child->id,
                    .arg = parent ? parent->id : 0,
                    .detail = parent != NULL};
    emit(weft__m(), &e);
}

void weft__trace_wake(const weft_thread *g)
{
    struct weft__trace_rec e = {.ev = WEFT__EV_WAKE, .id = g->id};
    emit(weft__m(), &e);
}

void weft__trace_handoff(const weft__proc *p, const weft__carrier *m)
{
    struct weft__trace_rec e = {.ev = WEFT__EV_HANDOFF, .n = (int32_t)p->id, .arg = m->id};
    emit(weft__m(), &e);
}

/* --------------------------------------------------------------- writer */

/* Writes all of iov to fd (libc's writev: this is an OS thread, and the
 * hooks are not for it). false: the disk is full or the like. */
bool weft__trace_write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = weft__real(writev)(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
            w -= (ssize_t)iov->iov_len;
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return true;
}

/* Spools what r holds; true if there was anything. Once the spool cannot
 * be written, records are still consumed, so that no carrier waits for
 * ever on a full ring; the trace then says it is incomplete. */
static bool drain(struct weft__trace_ring *r)
{
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h == t)
        return false;
    uint32_t from = h % RING_SIZE, n = t - h;
    uint32_t first = n < RING_SIZE - from ? n : RING_SIZE - from;
    struct weft__trace_chunk c = {r->track, n};
    struct iovec iov[3] = {
        {&c, sizeof c},
        {&r->recs[from], first * sizeof(struct weft__trace_rec)},
        {&r->recs[0], (n - first) * sizeof(struct weft__trace_rec)},
    };
    if (!T.spool_failed && !weft__trace_write_all(T.spool, iov, n > first ? 3 : 2))
        T.spool_failed = true;
    atomic_store(&r->head, t); /* seq_cst: see ring_slot */
    if (atomic_load(&r->blocked))
        weft__futex_wake(&r->head, 1);
    return true;
}

static bool drain_all(void)
{
    bool any = drain(T.shared);
    for (uint32_t i = 0, n = atomic_load(&weft__S.ncarriers); i < n; i++)
        if (weft__S.carriers[i]->trace)
            any |= drain(weft__S.carriers[i]->trace);
    return any;
}

static void *writer_main(void *unused)
{
    while (!atomic_load(&T.stopping)) {
        atomic_store(&T.writer_word, 0);
        if (!drain_all())
            weft__futex_wait(&T.writer_word, 0, weft_now() + WRITER_PERIOD_NS);
    }
    return NULL;
}

/* ---------------------------------------------------------- life cycle */

static struct weft__trace_ring *ring_new(uint32_t track)
{
    struct weft__trace_ring *r = weft__calloc(1, sizeof *r);
    if (r)
        r->track = track;
    return r;
}

/* The CPU's counter serves as a clock where the kernel itself uses it as
 * one: it has then found it steady and in step on every CPU (and
 * WEFT_TRACE_CLOCK is not "monotonic"). */
static bool tsc_steady(void)
{
#ifdef HAVE_COUNTER
    const char *clock = getenv("WEFT_TRACE_CLOCK");
    if (clock && strcmp(clock, "monotonic") == 0)
        return false;
    char src[32] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/"
                    "current_clocksource", "re");
    if (!f)
        return false;
    bool tsc = fgets(src, sizeof src, f) &&
               strcmp(src, COUNTER_CLOCKSOURCE) == 0;
    weft__real(fclose)(f);
    return tsc;
#else
    return false;
#endif
}

/* The spool: an unlinked file beside the trace (the trace's own disk is
 * the one that must hold it all). */
static int spool_open(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.spool", path) >= (int)sizeof tmp)
        return -1;
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        unlink(tmp);
    return fd;
}

static void close_files(void)
{
    if (T.spool >= 0)
        weft__real(close)(T.spool);
    if (T.fd >= 0)
        weft__real(close)(T.fd);
    T.spool = T.fd = -1;
}

/* Runs before any carrier starts. WEFT_TRACE names the file. */
int weft__trace_start(void)
{
    const char *path = getenv("WEFT_TRACE");
    if (!path || !*path)
        return 0;
#ifdef WEFT_NO_TRACE
    return ENOTSUP; /* built with WEFT_TRACE_EVENTS=OFF */
#endif
    T.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (T.fd < 0 || (T.spool = spool_open(path)) < 0) {
        int err = errno;
        close_files();
        return err;
    }
    bool named = weft__trace_json_init(weft__S.max_carriers + 1);
    T.shared = ring_new(WEFT__TRACE_SHARED_TRACK);
    int err = named && T.shared ? 0 : ENOMEM;
    T.c.pid = (int)getpid();
    T.c.tsc = tsc_steady();
    T.c.t0 = weft_now();
#ifdef HAVE_COUNTER
    T.c.tsc0 = read_counter();
#endif
    T.c.stamp0 = T.c.tsc ? (int64_t)T.c.tsc0 : T.c.t0;
    T.spool_failed = false;
    atomic_store(&T.stopping, false);
    for (uint32_t i = 0, n = atomic_load(&weft__S.ncarriers); i < n; i++)
        weft__trace_carrier(weft__S.carriers[i]);
    if (!err)
        err = weft__pthread_create(&T.writer, NULL, writer_main, NULL);
    if (err) {
        weft__trace_json_fini();
        free(T.shared);
        T.shared = NULL;
        close_files();
        return err;
    }
    weft__tracing = true;
    return 0;
}

/* Runs on: whoever makes carrier records, before the carrier runs. A
 * carrier without a ring (out of memory) records into the shared one. */
void weft__trace_carrier(weft__carrier *m)
{
    if (T.fd >= 0 && !m->trace)
        m->trace = ring_new(m->id + 1); /* tid 0 means "none" to some */
}

/* Runs once no thread records any more: spools what is left and writes
 * the JSON file. */
void weft__trace_stop(void)
{
    if (T.fd < 0)
        return;
    atomic_store(&T.stopping, true);
    writer_poke();
    pthread_join(T.writer, NULL);
    weft__tracing = false;
    drain_all();
    T.c.t1 = weft_now();
#ifdef HAVE_COUNTER
    T.c.tsc1 = read_counter();
#endif
    weft__trace_json_write(T.fd, T.spool, !T.spool_failed, &T.c);
    close_files();
    for (uint32_t i = 0, n = atomic_load(&weft__S.ncarriers); i < n; i++) {
        free(weft__S.carriers[i]->trace);
        weft__S.carriers[i]->trace = NULL;
    }
    free(T.shared);
    T.shared = NULL;
    weft__trace_json_fini();
}
