/* SPDX-License-Identifier: MIT */
/*
 * backtrace.h — call stacks of virtual threads (backtrace.c).
 */
#ifndef WEFT_SCHED_BACKTRACE_H
#define WEFT_SCHED_BACKTRACE_H

#include <stdint.h>

#include "sched/thread.h"

#define WEFT__BT_MAX 32

/* Walks the frame-pointer chain from fp (with pc the innermost address)
 * while it stays in [lo, hi). Never faults. Returns the addresses found. */
int weft__backtrace_from(uintptr_t fp, uintptr_t pc, uintptr_t lo,
                         uintptr_t hi, uintptr_t *pcs, int max);
/* The stack of a thread that is off its carrier (parked or queued). */
int weft__backtrace_parked(const weft_thread *g, uintptr_t *pcs, int max);
/* Symbol tables for a batch of prints (libdw: file:line; allocates, so
 * not for signal handlers). NULL: dladdr only. */
typedef struct weft__symbols weft__symbols;
weft__symbols *weft__symbols_open(void);
void weft__symbols_close(weft__symbols *sym);
/* The function at addr (its name, "+0x..." when only dladdr knows it). */
bool weft__symbol_name(weft__symbols *sym, uintptr_t addr, char *buf,
                       size_t size);
/* Writes one line per frame, indented by depth, from the first public
 * weft_ call down (the runtime's own frames above it are left out). */
void weft__backtrace_print(int fd, const uintptr_t *pcs, int n, int depth,
                           weft__symbols *sym);

#endif
