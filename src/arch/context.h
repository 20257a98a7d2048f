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
