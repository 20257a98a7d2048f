/* SPDX-License-Identifier: MIT */
/*
 * trace_spool.h — the format of the trace spool, between its recording
 * (trace.c) and its formatting as JSON (trace_json.c). Private to the two.
 *
 * The spool is a sequence of chunks: a weft__trace_chunk, then count
 * records of its track, in the order that track's ring recorded them.
 * Record time stamps are time-stamp counter counts or weft_now()
 * nanoseconds, as weft__trace_clock says.
 */
#ifndef WEFT_SCHED_TRACE_SPOOL_H
#define WEFT_SCHED_TRACE_SPOOL_H

#include <sys/uio.h>

#include "base/compiler.h"

#define WEFT__TRACE_SHARED_TRACK 100000 /* tid of the track without a
                                           carrier */

enum weft__trace_ev {
    WEFT__EV_RUN, WEFT__EV_SWITCH_OUT, WEFT__EV_IDLE_BEGIN, WEFT__EV_IDLE_END, WEFT__EV_SPAWN, WEFT__EV_WAKE,
    WEFT__EV_STEAL, WEFT__EV_HANDOFF,
};

/* 64 bytes. What id, arg and n mean depends on ev (see write_event). */
struct weft__trace_rec {
    int64_t ts;
    uint64_t id;
    uint64_t arg;
    uint8_t ev;
    uint8_t detail;
    uint16_t unused;
    int32_t n;
    char name[32];
};

/* In the spool, each chunk of a ring's records follows one of these. */
struct weft__trace_chunk {
    uint32_t track;
    uint32_t count;
};

/* How records were stamped: written by trace.c at start and stop. */
struct weft__trace_clock {
    int pid;
    int64_t t0;                   /* weft_now() at the start ... */
    /* Records are stamped with the time-stamp counter where it ticks at a
     * constant rate (a third of a clock_gettime); the formatter maps
     * counts to nanoseconds by the two pairs read at start and stop. */
    bool tsc;
    uint64_t tsc0, tsc1;          /* ... its count then, and at the stop */
    int64_t stamp0;               /* tsc0 or t0: the stamp of time 0 */
    int64_t t1;                   /* weft_now() at the stop */
};

/* trace.c: writes all of iov to fd (libc's writev: the callers are OS
 * threads, or run after the carriers end). false: the disk is full or
 * the like. */
bool weft__trace_write_all(int fd, struct iovec *iov, int n);

/* trace_json.c. Runs before any carrier starts: room to note which of
 * ntracks tracks are named; false: out of memory. */
bool weft__trace_json_init(uint32_t ntracks);
/* Runs once nothing records: turns the spool into JSON in fd (spool_ok:
 * the spool was written in full), saying on stderr if it could not. */
void weft__trace_json_write(int fd, int spool, bool spool_ok,
                            const struct weft__trace_clock *c);
void weft__trace_json_fini(void);

#endif
