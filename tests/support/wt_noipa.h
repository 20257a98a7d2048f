/* SPDX-License-Identifier: MIT */
/*
 * wt_noipa.h — WT_NOIPA, for a test function the compiler must treat as
 * unknown at every call: never inlined, and nothing it proves about the
 * body (that it reads no memory, returns a constant, never returns) used
 * by its callers. GCC says so with noipa. clang has no noipa: there the
 * function's body must begin with WT_OPAQUE_BODY(), a volatile asm with a
 * memory clobber, which clang cannot prove anything about (the runtime's
 * WEFT_NOIPA, src/base/compiler.h, does the same).
 */
#ifndef WT_NOIPA_H
#define WT_NOIPA_H

#if defined(__clang__)
#define WT_NOIPA __attribute__((noinline, unused))
#else
#define WT_NOIPA __attribute__((noinline, noipa, unused))
#endif
#define WT_OPAQUE_BODY() __asm__ volatile("" ::: "memory")

#endif
