/* SPDX-License-Identifier: MIT */
/*
 * context.h — the machine context switch, one implementation per CPU
 * architecture (arch/<arch>/switch.S and make.c).
 *
 * A context is one saved stack pointer: everything else the ABI asks a
 * callee to preserve is on the context's own stack. On AArch64,
 * weft__ctx_switch is an ordinary function for the compiler, and saves
 * the callee-saved registers itself. On x86-64 it is inline assembly that
 * calls the switch and names every register it may not keep as clobbered,
 * so the compiler saves only what it uses, once, in the switching
 * function's own prologue (arch/x86_64/switch.S).
 */
#ifndef WEFT_ARCH_CONTEXT_H
#define WEFT_ARCH_CONTEXT_H

#include <stddef.h>

/* Where weft__ctx_switch leaves the frame-pointer chain's first link in
 * the save area at a parked context's sp (offsets in bytes): the caller's
 * frame pointer, and the return address into it. A stack walk of a
 * parked thread starts there (sched/backtrace.c, tools/weft-gdb.py). */
#if defined(__x86_64__)
#define WEFT__CTX_SAVE_BYTES 24
#define WEFT__CTX_FP_AT 8 /* rbp */
#define WEFT__CTX_PC_AT 16
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
#if defined(__x86_64__)
void weft__ctx_jump(weft__ctx *from, weft__ctx *to); /* asm calls only */

/* With AVX-512 (a program built with -march=x86-64-v4 or native), the
 * compiler may also keep values in xmm16-31 and the mask registers, which
 * are caller-saved too. */
#ifdef __AVX512F__
#define WEFT__CTX_AVX512_CLOBBERS                                          \
    , "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",       \
        "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29",     \
        "xmm30", "xmm31", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"
#else
#define WEFT__CTX_AVX512_CLOBBERS
#endif

static inline __attribute__((always_inline)) void weft__ctx_switch(
    weft__ctx *from, weft__ctx *to)
{
    register weft__ctx *rdi __asm__("rdi") = from;
    register weft__ctx *rsi __asm__("rsi") = to;
    /* The call's push must not land in the red zone, where the compiler
     * may keep data of a function it thinks calls nothing. */
    __asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
                     "call weft__ctx_jump\n\t"
                     "lea 128(%%rsp), %%rsp"
                     : "+r"(rdi), "+r"(rsi)
                     :
                     : "rax", "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11",
                       "r12", "r13", "r14", "r15", "xmm0", "xmm1", "xmm2",
                       "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                       "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
                       "xmm15", "st", "st(1)", "st(2)", "st(3)", "st(4)",
                       "st(5)", "st(6)", "st(7)", "memory",
                       "cc" WEFT__CTX_AVX512_CLOBBERS);
}
#else
void weft__ctx_switch(weft__ctx *from, weft__ctx *to);
#endif

/* Prepares *c so that the first switch to it calls entry(arg) on the stack
 * [lo, lo + size). entry must never return. */
void weft__ctx_make(weft__ctx *c, void *lo, size_t size,
                    void (*entry)(void *), void *arg);

#endif
