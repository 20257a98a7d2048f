/* SPDX-License-Identifier: MIT */
/*
 * compiler.h — small portable helpers used everywhere in the runtime.
 */
#ifndef WEFT_BASE_COMPILER_H
#define WEFT_BASE_COMPILER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The runtime keeps glibc's errno: code that may park reads and writes it
 * through WEFT_ERRNO (sched/carrier.h), a hidden call, and everything else
 * reads it where no park intervenes. weft.h's accessor (an exported
 * function, so a call through the PLT in libweft.so) would only add a
 * second call to every errno access; carrier.c defines it, so it must not
 * be defined in terms of itself. */
#define WEFT_NO_ERRNO_ACCESSOR 1
#include "weft.h"

/* WEFT_ASAN, WEFT_TSAN: the build is instrumented by that sanitizer. */
#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define WEFT_CACHELINE 64
#define weft__container_of(p, type, member) \
    ((type *)((char *)(p) - offsetof(type, member)))

/* A function whose result the compiler must never reuse across a call that
 * may switch stacks: the thread pointer (and so every TLS address) changes
 * when a virtual thread resumes on another carrier. noipa stops GCC from
 * proving the function pure; clang has no noipa, and the volatile asm with a
 * memory clobber in the body stops it from doing the same. */
#if defined(__clang__)
#define WEFT_NOIPA __attribute__((noinline))
#else
#define WEFT_NOIPA __attribute__((noipa))
#endif

static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

/* Broken internal invariant: prints the message, then what the dump hook
 * writes (the threads and their stacks, once the scheduler has set it),
 * and aborts, in every build. */
_Noreturn void weft__panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
void weft__panic_dump_hook(void (*dump)(int fd));

#define weft__assert(cond, what)                                            \
    do {                                                                   \
        if (unlikely(!(cond)))                                             \
            weft__panic("%s:%d: %s (%s)", __FILE__, __LINE__, what, #cond); \
    } while (0)

#endif
