/*
 * trace.c — scheduler traces in the Chrome trace event format.
 *
 * Recording and writing are apart. Each carrier appends fixed-size binary
 * records to a ring of its own (one producer, one consumer: no lock, no
 * shared line written per event); threads without a carrier (the monitor,
 * OS threads waking virtual ones) share one ring under a spinlock. A writer
 * OS thread drains the rings, turns records into JSON and writes the file,
 * so no event costs a system call or a formatted string on a thread's
 * (possibly tiny) stack.
 *
 * Invariants:
 *  - Nothing is dropped. A producer that finds its ring full wakes the
 *    writer and waits for room (the trace then shows the stall), so every
 *    "B" (a thread starts running, a carrier goes idle) has its "E" on the
 *    same track, in order: each track is one ring, written by one thread.
 *  - weft__tracing changes only while no carrier or monitor runs; carrier
 *    records, and the rings they point to, live until weft__trace_stop.
 *  - Records hold copies (ids, names), never pointers to threads, which may
 *    be freed before the writer gets to them; function addresses are the
 *    exception, symbolized by the writer (code is not unmapped under us).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/futex.h"
#include "io/io.h"
#include "sched/backtrace.h"
#include "sched/trace.h"

bool weft__tracing;

#define RING_SIZE 8192u            /* records per ring: 512 KiB */
#define WRITER_PERIOD_NS 20000000  /* the writer drains at least this often */
#define OUT_BUF 65536
#define SHARED_TRACK 1000          /* tid of the track without a carrier */

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
    bool named;                   /* its track's name is written: writer */
    struct rec recs[RING_SIZE];
};

static struct {
    int fd;
    int64_t t0;
    pthread_t writer;
    _Atomic uint32_t writer_word; /* futex: 1 = drain now */
    _Atomic bool stopping;
    weft__spinlock shared_lock;
    struct weft__trace_ring *shared;
    weft__symbols *sym;
    char out[OUT_BUF];
    size_t used;
    bool write_failed;
    bool first;
} T = {.fd = -1};

/* ------------------------------------------------------------ producers */

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
        s->ts = weft_now();
        ring_publish(m->trace);
        return;
    }
    weft__spin_lock(&T.shared_lock);
    struct rec *s = ring_slot(T.shared);
    *s = *e;
    s->ts = weft_now();
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
        e->arg = (uint64_t)((const weft__fd *)obj)->fd;
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

static void out_flush(void)
{
    size_t off = 0;
    while (off < T.used && !T.write_failed) {
        ssize_t n = weft__libc_get()->write(T.fd, T.out + off, T.used - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* The trace is incomplete from here: say so once, go on
             * draining so that no carrier waits on a full ring. */
            weft__libc_get()->write(2, "weft: trace file write failed\n", 30);
            T.write_failed = true;
            break;
        }
        off += (size_t)n;
    }
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

/* s as the inside of a JSON string (at most 31 bytes of input). */
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
 * trace began, to the nanosecond). */
static void head(const char *ph, uint32_t track, int64_t ts)
{
    int64_t us = ts - T.t0;
    out("%s{\"ph\":\"%s\",\"pid\":%d,\"tid\":%" PRIu32
        ",\"ts\":%" PRId64 ".%03" PRId64,
        T.first ? "" : ",\n", ph, (int)getpid(), track, us / 1000,
        us % 1000);
    T.first = false;
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

static void write_run(const struct rec *e, uint32_t track)
{
    char label[64], esc[6 * 64 + 1];
    if (e->name[0])
        json_str(e->name, sizeof e->name, esc);
    else if (weft__symbol_name(T.sym, (uintptr_t)e->arg, label, 64))
        json_str(label, 64, esc);
    else
        strcpy(esc, "thread");
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

static void write_event(const struct rec *e, uint32_t track)
{
    switch (e->ev) {
    case EV_RUN:
        write_run(e, track);
        return;
    case EV_SWITCH_OUT:
        write_switch_out(e, track);
        return;
    case EV_IDLE_BEGIN:
        head("B", track, e->ts);
        out(",\"name\":\"idle\"}");
        return;
    case EV_IDLE_END:
        head("E", track, e->ts);
        out("}");
        return;
    default:
        break;
    }
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

/* Writes what r holds; true if there was anything. */
static bool drain(struct weft__trace_ring *r)
{
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h == t)
        return false;
    if (!r->named) {
        r->named = true;
        head("M", r->track, T.t0);
        if (r->track == SHARED_TRACK)
            out(",\"name\":\"thread_name\",\"args\":{\"name\":"
                "\"monitor and OS threads\"}}");
        else
            out(",\"name\":\"thread_name\",\"args\":{\"name\":"
                "\"carrier %" PRIu32 "\"}}", r->track - 1);
    }
    for (; h != t; h++)
        write_event(&r->recs[h % RING_SIZE], r->track);
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
        else
            out_flush();
    }
    return NULL;
}

static void write_header(void)
{
    out("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
    T.first = true;
    head("M", SHARED_TRACK, T.t0);
    out(",\"name\":\"process_name\",\"args\":{\"name\":\"weft\"}}");
}

/* ---------------------------------------------------------- life cycle */

static struct weft__trace_ring *ring_new(uint32_t track)
{
    struct weft__trace_ring *r = calloc(1, sizeof *r);
    if (r)
        r->track = track;
    return r;
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
    if (T.fd < 0)
        return errno;
    T.shared = ring_new(SHARED_TRACK);
    if (!T.shared) {
        close(T.fd);
        T.fd = -1;
        return ENOMEM;
    }
    T.t0 = weft_now();
    T.write_failed = false;
    T.used = 0;
    T.sym = weft__symbols_open();
    atomic_store(&T.stopping, false);
    write_header();
    for (uint32_t i = 0, n = atomic_load(&weft__S.ncarriers); i < n; i++)
        weft__trace_carrier(weft__S.carriers[i]);
    int err = pthread_create(&T.writer, NULL, writer_main, NULL);
    if (err) {
        weft__symbols_close(T.sym);
        free(T.shared);
        close(T.fd);
        T.fd = -1;
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

void weft__trace_stop(void)
{
    if (T.fd < 0)
        return;
    atomic_store(&T.stopping, true);
    writer_poke();
    pthread_join(T.writer, NULL);
    weft__tracing = false;
    drain_all();
    out("\n]}\n");
    out_flush();
    close(T.fd);
    T.fd = -1;
    for (uint32_t i = 0, n = atomic_load(&weft__S.ncarriers); i < n; i++) {
        free(weft__S.carriers[i]->trace);
        weft__S.carriers[i]->trace = NULL;
    }
    free(T.shared);
    T.shared = NULL;
    weft__symbols_close(T.sym);
    T.sym = NULL;
}
