/* SPDX-License-Identifier: MIT */
/*
 * context.h — the machine context switch, one implementation per CPU
 * architecture (arch/<arch>/switch.S and make.c).
 *
 * A context is one saved stack pointer: everything else the ABI asks a
 * callee to preserve is pushed on the context's own stack by
 * weft__ctx_switch. Caller-saved registers need no saving because the switch
 * is an ordinary function call for the compiler.
 */
#ifndef WEFT_ARCH_CONTEXT_H
#define WEFT_ARCH_CONTEXT_H

#include <stddef.h>

/* Where weft__ctx_switch leaves the frame-pointer chain's first link in
 * the save area at a parked context's sp (offsets in bytes): the caller's
 * frame pointer, and the return address into it. A stack walk of a
 * parked thread starts there (sched/backtrace.c, tools/weft-gdb.py). */
#if defined(__x86_64__)
#define WEFT__CTX_SAVE_BYTES 64
#define WEFT__CTX_FP_AT 48 /* rbp */
#define WEFT__CTX_PC_AT 56
#elif defined(__aarch64__)
#define WEFT__CTX_SAVE_BYTES 176
#define WEFT__CTX_FP_AT 0 /* x29 */
#define WEFT__CTX_PC_AT 8 /* x30 */
#else
#error "weft supports x86_64 and aarch64 (see CMakeLists.txt)"
#endif

typedef struct weft__ctx {
    void *sp; /* valid while the context is not running */
} weft__ctx;

/* Saves the running context in *from and resumes *to. Returns when some
 * other context switches back to *from. from and to must differ. */
void weft__ctx_switch(weft__ctx *from, weft__ctx *to);

/* Prepares *c so that the first switch to it calls entry(arg) on the stack
 * [lo, lo + size). entry must never return. */
void weft__ctx_make(weft__ctx *c, void *lo, size_t size,
                    void (*entry)(void *), void *arg);

#endif
