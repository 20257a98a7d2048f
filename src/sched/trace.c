/*
 * trace.c — scheduler traces in the Chrome trace event format.
 *
 * Recording, spooling and formatting are apart. Each carrier appends
 * fixed-size binary records to a ring of its own (one producer, one
 * consumer: no lock, no shared line written per event); threads without a
 * carrier (the monitor, OS threads waking virtual ones) share one ring
 * under a spinlock. A writer OS thread copies the rings, as they are, to a
 * spool file (unlinked: it goes away with the process). When the run ends,
 * the spool is turned into the JSON file. So an event costs a 64-byte copy
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
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "base/fault.h"
#include "base/futex.h"
#include "base/real.h"
#include "sched/poll.h"
#include "sched/carrier.h"
#include "sched/dump.h"
#include "sched/park.h"
#include "sched/proc.h"
#include "sched/thread.h"
#include "sched/backtrace.h"
#include "sched/trace.h"

bool weft__tracing;

#define RING_SIZE 8192u            /* records per ring: 512 KiB */
#define WRITER_PERIOD_NS 20000000  /* the writer drains at least this often */
#define OUT_BUF 65536
#define SHARED_TRACK 100000        /* tid of the track without a carrier */

enum ev {
    EV_RUN, EV_SWITCH_OUT, EV_IDLE_BEGIN, EV_IDLE_END, EV_SPAWN, EV_WAKE,
    EV_STEAL, EV_HANDOFF,
};

/* 64 bytes. What id, arg and n mean depends on ev (see write_event). */
struct rec {
    int64_t ts;
    uint64_t id;
    uint64_t arg;
    uint8_t ev;
    uint8_t detail;
    uint16_t unused;
    int32_t n;
    char name[32];
};

struct weft__trace_ring {
    _Atomic uint32_t tail;        /* producer */
    _Atomic uint32_t head;        /* writer; futex of a waiting producer */
    _Atomic uint32_t blocked;     /* a producer waits for room */
    uint32_t track;
    struct rec recs[RING_SIZE];
};

/* In the spool, each chunk of a ring's records follows one of these. */
struct chunk {
    uint32_t track;
    uint32_t count;
};

static struct {
    int fd;                       /* the JSON file */
    int spool;                    /* the records, until the run ends */
    bool spool_failed;
    int pid;
    int64_t t0;                   /* weft_now() at the start ... */
    /* Records are stamped with the time-stamp counter where it ticks at a
     * constant rate (a third of a clock_gettime); the formatter maps
     * counts to nanoseconds by the two pairs read at start and stop. */
    bool tsc;
    uint64_t tsc0, tsc1;          /* ... its count then, and at the stop */
    int64_t stamp0;               /* tsc0 or t0: the stamp of time 0 */
    int64_t t1;                   /* weft_now() at the stop */
    pthread_t writer;
    _Atomic uint32_t writer_word; /* futex: 1 = drain now */
    _Atomic bool stopping;
    weft__spinlock shared_lock;
    struct weft__trace_ring *shared;
    /* Formatting (weft__trace_stop). */
    weft__symbols *sym;
    char out[OUT_BUF];
    size_t used;
    bool write_failed;
    bool first;
    uint8_t *named;               /* per track: its name is written */
    uint32_t ntracks;
} T = {.fd = -1, .spool = -1};

/* ------------------------------------------------------------ producers */

static inline int64_t now_stamp(void)
{
#if defined(__x86_64__)
    if (likely(T.tsc))
        return (int64_t)__rdtsc();
#endif
    return weft_now();
}

static void writer_poke(void)
{
    if (!atomic_exchange_explicit(&T.writer_word, 1, memory_order_acq_rel))
        weft__futex_wake(&T.writer_word, 1);
}

/* Reserves the next slot of r, waiting for the writer if r is full. */
static struct rec *ring_slot(struct weft__trace_ring *r)
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
static void emit(weft__carrier *m, const struct rec *e)
{
    if (m && m->trace) {
        struct rec *s = ring_slot(m->trace);
        *s = *e;
        s->ts = now_stamp();
        ring_publish(m->trace);
        return;
    }
    weft__spin_lock(&T.shared_lock);
    struct rec *s = ring_slot(T.shared);
    *s = *e;
    s->ts = now_stamp();
    ring_publish(T.shared);
    weft__spin_unlock(&T.shared_lock);
}

void weft__trace_run(weft__carrier *m, const weft_thread *g)
{
    struct rec e = {.ev = EV_RUN, .id = g->id, .arg = (uintptr_t)g->fn,
                    .n = m->p ? (int32_t)m->p->id : -1};
    memcpy(e.name, g->name, sizeof e.name);
    emit(m, &e);
}

/* What a parking thread waits on, in the record's arg and n: an fd number,
 * a joined thread's id, or the object's address. */
static void describe_wait(const weft_thread *g, struct rec *e)
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
    struct rec e = {.ev = EV_SWITCH_OUT, .id = g->id, .detail = after};
    if (after == WEFT__AFTER_PARK)
        describe_wait(g, &e);
    emit(m, &e);
}

void weft__trace_idle(weft__carrier *m, bool begin)
{
    struct rec e = {.ev = begin ? EV_IDLE_BEGIN : EV_IDLE_END};
    emit(m, &e);
}

void weft__trace_steal(weft__carrier *m, const weft_thread *g,
                       const weft__proc *victim)
{
    struct rec e = {.ev = EV_STEAL, .id = g->id, .n = (int32_t)victim->id};
    emit(m, &e);
}

void weft__trace_spawn(const weft_thread *parent, const weft_thread *child)
{
    struct rec e = {.ev = EV_SPAWN, .id = child->id,
                    .arg = parent ? parent->id : 0,
                    .detail = parent != NULL};
    emit(weft__m(), &e);
}

void weft__trace_wake(const weft_thread *g)
{
    struct rec e = {.ev = EV_WAKE, .id = g->id};
    emit(weft__m(), &e);
}

void weft__trace_handoff(const weft__proc *p, const weft__carrier *m)
{
    struct rec e = {.ev = EV_HANDOFF, .n = (int32_t)p->id, .arg = m->id};
    emit(weft__m(), &e);
}

/* --------------------------------------------------------------- writer */

/* Writes all of iov to fd (libc's writev: this is an OS thread, and the
 * hooks are not for it). false: the disk is full or the like. */
static bool write_all(int fd, struct iovec *iov, int n)
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
    struct chunk c = {r->track, n};
    struct iovec iov[3] = {
        {&c, sizeof c},
        {&r->recs[from], first * sizeof(struct rec)},
        {&r->recs[0], (n - first) * sizeof(struct rec)},
    };
    if (!T.spool_failed && !write_all(T.spool, iov, n > first ? 3 : 2))
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

/* ----------------------------------------------------------- formatting */

static void out_flush(void)
{
    struct iovec iov = {T.out, T.used};
    if (T.used && !T.write_failed && !write_all(T.fd, &iov, 1))
        T.write_failed = true;
    T.used = 0;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    if (OUT_BUF - T.used < 512)
        out_flush();
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(T.out + T.used, OUT_BUF - T.used, fmt, ap);
    va_end(ap);
    if (n > 0)
        T.used += (size_t)n < OUT_BUF - T.used ? (size_t)n
                                               : OUT_BUF - T.used - 1;
}

/* s (at most max bytes) as the inside of a JSON string; buf holds 6 * max
 * + 1 bytes. */
static const char *json_str(const char *s, size_t max, char *buf)
{
    char *o = buf;
    for (size_t i = 0; i < max && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            o += sprintf(o, "\\u%04x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o = 0;
    return buf;
}

/* The head of an event: phase, track and time (microseconds since the
 * trace began, to the nanosecond, as the format wants). */
static void head(const char *ph, uint32_t track, int64_t ts)
{
    int64_t ns = ts;
    if (T.tsc && T.tsc1 > T.tsc0)
        ns = (int64_t)((double)((uint64_t)ts - T.tsc0) *
                       (double)(T.t1 - T.t0) / (double)(T.tsc1 - T.tsc0));
    else if (!T.tsc)
        ns = ts - T.t0;
    out("%s{\"ph\":\"%s\",\"pid\":%d,\"tid\":%" PRIu32
        ",\"ts\":%" PRId64 ".%03" PRId64,
        T.first ? "" : ",\n", ph, T.pid, track, ns / 1000, ns % 1000);
    T.first = false;
}

static void name_track(uint32_t track)
{
    uint32_t i = track == SHARED_TRACK ? 0 : track;
    if (i >= T.ntracks || T.named[i])
        return;
    T.named[i] = 1;
    head("M", track, T.stamp0);
    if (track == SHARED_TRACK)
        out(",\"name\":\"thread_name\",\"args\":{\"name\":"
            "\"monitor and OS threads\"}}");
    else
        out(",\"name\":\"thread_name\",\"args\":{\"name\":\"carrier %" PRIu32
            "\"}}", track - 1);
}

static const char *after_name(int after)
{
    switch (after) {
    case WEFT__AFTER_PARK: return "park";
    case WEFT__AFTER_YIELD: return "yield";
    case WEFT__AFTER_EXIT: return "exit";
    default: return "switch";
    }
}

/* An unnamed thread is labelled by its function, symbolized once: a
 * program runs few functions as threads, and looking one up costs
 * microseconds. */
static const char *fn_label(uintptr_t fn)
{
    static struct { uintptr_t fn; char esc[6 * 64 + 1]; } cache[64];
    size_t i = (fn >> 4) % 64;
    if (cache[i].fn != fn || !cache[i].esc[0]) {
        char label[64];
        cache[i].fn = fn;
        if (weft__symbol_name(T.sym, fn, label, sizeof label))
            json_str(label, sizeof label, cache[i].esc);
        else
            strcpy(cache[i].esc, "thread");
    }
    return cache[i].esc;
}

static void write_run(const struct rec *e, uint32_t track)
{
    char buf[6 * sizeof e->name + 1];
    const char *esc = e->name[0] ? json_str(e->name, sizeof e->name, buf)
                                 : fn_label((uintptr_t)e->arg);
    head("B", track, e->ts);
    out(",\"name\":\"#%" PRIu64 " %s\",\"args\":{\"thread\":%" PRIu64
        ",\"P\":%d}}", e->id, esc, e->id, (int)e->n);
}

static void write_switch_out(const struct rec *e, uint32_t track)
{
    head("E", track, e->ts);
    out(",\"args\":{\"end\":\"%s\"", after_name(e->detail));
    if (e->detail == WEFT__AFTER_PARK) {
        const char *w = weft__wait_kind_name(e->n);
        out(",\"wait\":\"%s\"", w ? w : "?");
        if (e->n >= WEFT__WAIT_FD_READ && e->n <= WEFT__WAIT_FD_POLL)
            out(",\"fd\":%" PRIu64, e->arg);
        else if (e->n == WEFT__WAIT_JOIN && e->arg)
            out(",\"of\":%" PRIu64, e->arg);
        else if (e->arg)
            out(",\"object\":\"0x%" PRIx64 "\"", e->arg);
    }
    out("}}");
}

static void write_instant(const struct rec *e, uint32_t track)
{
    head("i", track, e->ts);
    out(",\"s\":\"t\"");
    switch (e->ev) {
    case EV_SPAWN:
        out(",\"name\":\"spawn\",\"args\":{\"thread\":%" PRIu64, e->id);
        if (e->detail)
            out(",\"parent\":%" PRIu64, e->arg);
        break;
    case EV_WAKE:
        out(",\"name\":\"wake\",\"args\":{\"thread\":%" PRIu64, e->id);
        break;
    case EV_STEAL:
        out(",\"name\":\"steal\",\"args\":{\"thread\":%" PRIu64 ",\"from P\":%d",
            e->id, (int)e->n);
        break;
    case EV_HANDOFF:
        out(",\"name\":\"hand-off\",\"args\":{\"P\":%d,\"carrier\":%" PRIu64,
            (int)e->n, e->arg);
        break;
    }
    out("}}");
}

static void write_event(const struct rec *e, uint32_t track)
{
    name_track(track);
    switch (e->ev) {
    case EV_RUN:
        write_run(e, track);
        break;
    case EV_SWITCH_OUT:
        write_switch_out(e, track);
        break;
    case EV_IDLE_BEGIN:
        head("B", track, e->ts);
        out(",\"name\":\"idle\"}");
        break;
    case EV_IDLE_END:
        head("E", track, e->ts);
        out("}");
        break;
    default:
        write_instant(e, track);
        break;
    }
}

/* Reads exactly size bytes of the spool; false at its end (or a read
 * error, which ends the trace where it happened). */
static bool spool_read(void *buf, size_t size)
{
    char *p = buf;
    while (size) {
        ssize_t n = weft__real(read)(T.spool, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        size -= (size_t)n;
    }
    return true;
}

/* Turns the spool into the JSON file. */
static void format_spool(void)
{
    static struct rec batch[512];
    out("{\"traceEvents\":[\n");
    T.first = true;
    head("M", SHARED_TRACK, T.stamp0);
    out(",\"name\":\"process_name\",\"args\":{\"name\":\"weft\"}}");
    struct chunk c;
    bool whole = !T.spool_failed && lseek(T.spool, 0, SEEK_SET) == 0;
    while (whole && spool_read(&c, sizeof c)) {
        for (uint32_t done = 0, k; done < c.count; done += k) {
            k = c.count - done < 512 ? c.count - done : 512;
            if (!(whole = spool_read(batch, k * sizeof *batch)))
                break;
            for (uint32_t i = 0; i < k; i++)
                write_event(&batch[i], c.track);
        }
    }
    out("\n],\"otherData\":{\"complete\":\"%s\"}}\n", whole ? "yes" : "no");
    out_flush();
    if (!whole || T.write_failed)
        dprintf(STDERR_FILENO, "weft: WEFT_TRACE: the trace could not be "
                "written in full (disk full?)\n");
}

/* ---------------------------------------------------------- life cycle */

static struct weft__trace_ring *ring_new(uint32_t track)
{
    struct weft__trace_ring *r = weft__calloc(1, sizeof *r);
    if (r)
        r->track = track;
    return r;
}

/* The time-stamp counter serves as a clock where the kernel itself uses
 * it as one: it has then found it steady and in step on every CPU (and
 * WEFT_TRACE_CLOCK is not "monotonic"). */
static bool tsc_steady(void)
{
#if defined(__x86_64__)
    const char *clock = getenv("WEFT_TRACE_CLOCK");
    if (clock && strcmp(clock, "monotonic") == 0)
        return false;
    char src[32] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/"
                    "current_clocksource", "re");
    if (!f)
        return false;
    bool tsc = fgets(src, sizeof src, f) && strcmp(src, "tsc\n") == 0;
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
    T.ntracks = weft__S.max_carriers + 1;
    T.named = weft__calloc(T.ntracks, 1);
    T.shared = ring_new(SHARED_TRACK);
    int err = T.named && T.shared ? 0 : ENOMEM;
    T.pid = (int)getpid();
    T.tsc = tsc_steady();
    T.t0 = weft_now();
#if defined(__x86_64__)
    T.tsc0 = __rdtsc();
#endif
    T.stamp0 = T.tsc ? (int64_t)T.tsc0 : T.t0;
    T.spool_failed = T.write_failed = false;
    T.used = 0;
    atomic_store(&T.stopping, false);
    for (uint32_t i = 0, n = atomic_load(&weft__S.ncarriers); i < n; i++)
        weft__trace_carrier(weft__S.carriers[i]);
    if (!err)
        err = weft__pthread_create(&T.writer, NULL, writer_main, NULL);
    if (err) {
        free(T.named);
        free(T.shared);
        T.named = NULL;
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
    T.t1 = weft_now();
#if defined(__x86_64__)
    T.tsc1 = __rdtsc();
#endif
    T.sym = weft__symbols_open();
    format_spool();
    weft__symbols_close(T.sym);
    T.sym = NULL;
    close_files();
    for (uint32_t i = 0, n = atomic_load(&weft__S.ncarriers); i < n; i++) {
        free(weft__S.carriers[i]->trace);
        weft__S.carriers[i]->trace = NULL;
    }
    free(T.shared);
    free(T.named);
    T.shared = NULL;
    T.named = NULL;
}
