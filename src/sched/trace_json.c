/* SPDX-License-Identifier: MIT */
/*
 * trace_json.c — turns a trace's spool (trace_spool.h) into the Chrome
 * trace event format's JSON, once the run has ended.
 *
 * Runs on: the thread that ends the run, after every carrier, the
 * monitor and trace.c's writer are gone: its state (J) is its alone, and
 * it may allocate and symbolize function addresses at leisure.
 * Invariant: every event's time is mapped to microseconds since the
 * trace began by the clock pairs of weft__trace_clock; each track is
 * named once, before its first event.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/real.h"
#include "sched/backtrace.h"
#include "sched/carrier.h"
#include "sched/dump.h"
#include "sched/park.h"
#include "sched/trace_spool.h"

#define OUT_BUF 65536

static struct {
    int fd;                       /* the JSON file */
    int spool;
    struct weft__trace_clock c;
    weft__symbols *sym;
    char out[OUT_BUF];
    size_t used;
    bool write_failed;
    bool first;
    uint8_t *named;               /* per track: its name is written */
    uint32_t ntracks;
} J;

static void out_flush(void)
{
    struct iovec iov = {J.out, J.used};
    if (J.used && !J.write_failed && !weft__trace_write_all(J.fd, &iov, 1))
        J.write_failed = true;
    J.used = 0;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    if (OUT_BUF - J.used < 512)
        out_flush();
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(J.out + J.used, OUT_BUF - J.used, fmt, ap);
    va_end(ap);
    if (n > 0)
        J.used += (size_t)n < OUT_BUF - J.used ? (size_t)n
                                               : OUT_BUF - J.used - 1;
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
    if (J.c.tsc && J.c.tsc1 > J.c.tsc0)
        ns = (int64_t)((double)((uint64_t)ts - J.c.tsc0) *
                       (double)(J.c.t1 - J.c.t0) / (double)(J.c.tsc1 - J.c.tsc0));
    else if (!J.c.tsc)
        ns = ts - J.c.t0;
    out("%s{\"ph\":\"%s\",\"pid\":%d,\"tid\":%" PRIu32
        ",\"ts\":%" PRId64 ".%03" PRId64,
        J.first ? "" : ",\n", ph, J.c.pid, track, ns / 1000, ns % 1000);
    J.first = false;
}

static void name_track(uint32_t track)
{
    uint32_t i = track == WEFT__TRACE_SHARED_TRACK ? 0 : track;
    if (i >= J.ntracks || J.named[i])
        return;
    J.named[i] = 1;
    head("M", track, J.c.stamp0);
    if (track == WEFT__TRACE_SHARED_TRACK)
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
        if (weft__symbol_name(J.sym, fn, label, sizeof label))
            json_str(label, sizeof label, cache[i].esc);
        else
            strcpy(cache[i].esc, "thread");
    }
    return cache[i].esc;
}

static void write_run(const struct weft__trace_rec *e, uint32_t track)
{
    char buf[6 * sizeof e->name + 1];
    const char *esc = e->name[0] ? json_str(e->name, sizeof e->name, buf)
                                 : fn_label((uintptr_t)e->arg);
    head("B", track, e->ts);
    out(",\"name\":\"#%" PRIu64 " %s\",\"args\":{\"thread\":%" PRIu64
        ",\"P\":%d}}", e->id, esc, e->id, (int)e->n);
}

static void write_switch_out(const struct weft__trace_rec *e, uint32_t track)
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

static void write_instant(const struct weft__trace_rec *e, uint32_t track)
{
    head("i", track, e->ts);
    out(",\"s\":\"t\"");
    switch (e->ev) {
    case WEFT__EV_SPAWN:
        out(",\"name\":\"spawn\",\"args\":{\"thread\":%" PRIu64, e->id);
        if (e->detail)
            out(",\"parent\":%" PRIu64, e->arg);
        break;
    case WEFT__EV_WAKE:
        out(",\"name\":\"wake\",\"args\":{\"thread\":%" PRIu64, e->id);
        break;
    case WEFT__EV_STEAL:
        out(",\"name\":\"steal\",\"args\":{\"thread\":%" PRIu64 ",\"from P\":%d",
            e->id, (int)e->n);
        break;
    case WEFT__EV_HANDOFF:
        out(",\"name\":\"hand-off\",\"args\":{\"P\":%d,\"carrier\":%" PRIu64,
            (int)e->n, e->arg);
        break;
    }
    out("}}");
}

static void write_event(const struct weft__trace_rec *e, uint32_t track)
{
    name_track(track);
    switch (e->ev) {
    case WEFT__EV_RUN:
        write_run(e, track);
        break;
    case WEFT__EV_SWITCH_OUT:
        write_switch_out(e, track);
        break;
    case WEFT__EV_IDLE_BEGIN:
        head("B", track, e->ts);
        out(",\"name\":\"idle\"}");
        break;
    case WEFT__EV_IDLE_END:
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
        ssize_t n = weft__real(read)(J.spool, p, size);
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
static void format_spool(bool spool_ok)
{
    static struct weft__trace_rec batch[512];
    out("{\"traceEvents\":[\n");
    J.first = true;
    head("M", WEFT__TRACE_SHARED_TRACK, J.c.stamp0);
    out(",\"name\":\"process_name\",\"args\":{\"name\":\"weft\"}}");
    struct weft__trace_chunk c;
    bool whole = spool_ok && lseek(J.spool, 0, SEEK_SET) == 0;
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
    if (!whole || J.write_failed)
        dprintf(STDERR_FILENO, "weft: WEFT_TRACE: the trace could not be "
                "written in full (disk full?)\n");
}

bool weft__trace_json_init(uint32_t ntracks)
{
    J.ntracks = ntracks;
    J.named = weft__calloc(ntracks, 1);
    J.used = 0;
    J.write_failed = false;
    return J.named != NULL;
}

void weft__trace_json_write(int fd, int spool, bool spool_ok,
                            const struct weft__trace_clock *c)
{
    J.fd = fd;
    J.spool = spool;
    J.c = *c;
    J.sym = weft__symbols_open();
    format_spool(spool_ok);
    weft__symbols_close(J.sym);
    J.sym = NULL;
}

void weft__trace_json_fini(void)
{
    free(J.named);
    J.named = NULL;
}
