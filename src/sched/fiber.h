/* SPDX-License-Identifier: MIT */
/*
 * fiber.h — tells the sanitizers and Valgrind about stack switches, so that
 * their reports on virtual threads are real. Compiles to nothing in a plain
 * build.
 *
 * ASan: before a switch, __sanitizer_start_switch_fiber(save, to_lo, to_size)
 * with the save slot of the context being left (NULL when it will never run
 * again); once back, __sanitizer_finish_switch_fiber(save, ...) with the slot
 * of the context that resumed. TSan: one fiber per stack, switched to just
 * before the machine switch.
 */
#ifndef WEFT_SCHED_FIBER_H
#define WEFT_SCHED_FIBER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/compiler.h"

#ifdef WEFT_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                    size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
                                     const void **bottom_old,
                                     size_t *size_old);
#endif
#ifdef WEFT_ASAN
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif
#ifdef WEFT_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_set_fiber_name(void *fiber, const char *name);
#endif

#ifdef WEFT_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#endif

/* Happens-before edges that pass through the kernel, where TSan cannot
 * see them: a record handed to io_uring and completed on another thread. */
static inline void weft__tsan_release(void *addr)
{
#ifdef WEFT_TSAN
    __tsan_release(addr);
#else
    (void)addr;
#endif
}

static inline void weft__tsan_acquire(void *addr)
{
#ifdef WEFT_TSAN
    __tsan_acquire(addr);
#else
    (void)addr;
#endif
}

static inline void weft__fiber_leave(void **save, const void *to_lo,
                                     size_t to_size, void *to_tsan)
{
#ifdef WEFT_ASAN
    __sanitizer_start_switch_fiber(save, to_lo, to_size);
#else
    (void)save, (void)to_lo, (void)to_size;
#endif
#ifdef WEFT_TSAN
    __tsan_switch_to_fiber(to_tsan, 0);
#else
    (void)to_tsan;
#endif
}

static inline void weft__fiber_arrive(void *save)
{
#ifdef WEFT_ASAN
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(save, &lo, &size);
#else
    (void)save;
#endif
}

/* A stack handed to a new thread may hold the poisoned redzones of the
 * frames of the thread that used it last: ASan must forget them. */
static inline void weft__fiber_stack_fresh(void *lo, size_t size)
{
#ifdef WEFT_ASAN
    __asan_unpoison_memory_region(lo, size);
#else
    (void)lo, (void)size;
#endif
}

/* Whether a stack still needs its TSan fiber (never without TSan).
 * Creating one costs TSan milliseconds: loop.c makes it in the
 * scheduler loop, where it counts as no thread's running time. */
static inline bool weft__fiber_missing(const void *f)
{
#ifdef WEFT_TSAN
    return f == NULL;
#else
    (void)f;
    return false;
#endif
}

static inline void *weft__fiber_create(void)
{
#ifdef WEFT_TSAN
    return __tsan_create_fiber(0);
#else
    return NULL;
#endif
}

static inline void weft__fiber_destroy(void *f)
{
#ifdef WEFT_TSAN
    if (f)
        __tsan_destroy_fiber(f);
#else
    (void)f;
#endif
}

static inline void *weft__fiber_current(void)
{
#ifdef WEFT_TSAN
    return __tsan_get_current_fiber();
#else
    return NULL;
#endif
}

#endif
