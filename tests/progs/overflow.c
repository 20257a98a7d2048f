/* SPDX-License-Identifier: MIT */
/*
 * overflow.c — helper for tests/stack.c: a virtual thread named
 * "overflow-victim" recurses without end. The runtime must report the
 * overflow (naming the thread) on stderr and abort.
 *
 * usage: weft_prog_overflow [stack-KiB]   (0 or absent: the default size)
 * The runtime's default stack is 256 KiB, or WEFT_STACK if that is set
 * (WEFT_STACK=2k: compact mode). OVERFLOW_MODE in the environment picks
 * how the victim overflows:
 *   recurse (or unset)  recursion without end;
 *   slight   it runs a few hundred bytes past the bottom of its stack,
 *            returns, and yields: on a stack without a guard page
 *            (WEFT_GUARD_BUDGET=0), the canary check at that switch must
 *            catch it (OVERFLOW_SLIGHT=1 is the same);
 *   deep     one frame, built without stack-clash protection and touched
 *            at its low end first, that jumps the guard page and whatever
 *            is mapped below the stack (other stacks, carriers' signal
 *            stacks) to land in the first unmapped page;
 *   alloca   a 300 KiB alloca, written from its low end up (as memset
 *            does), in code built as the project's is.
 * Exits 0 only if the overflow was NOT caught (which the test rejects).
 */
#include <alloca.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <weft.h>

#include "../support/wt_noipa.h"
#include "overflow_deep.h"

#define DEFAULT_STACK ((size_t)256 * 1024) /* set as the runtime's below */

static volatile int g_forever = 1;

WT_NOIPA static int recurse(int n)
{
    WT_OPAQUE_BODY();
    volatile char buf[512];
    buf[0] = (char)n;
    buf[511] = (char)n;
    if (!g_forever)
        return buf[0];
    return recurse(n + 1) + buf[n % 512];
}

/* Recurses, filling each frame, until a frame lies `past` bytes below
 * where the stack would end if it started at `top` and held `size`. */
WT_NOIPA static int dig(const char *top, size_t size, size_t past)
{
    WT_OPAQUE_BODY();
    volatile char buf[256];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0x5a;
    const char *here = __builtin_frame_address(0);
    if ((size_t)(top - here) < size + past)
        return dig(top, size, past) + buf[7];
    return buf[7];
}

static bool unmapped(uintptr_t page)
{
    return msync((void *)page, 4096, MS_ASYNC) == -1 && errno == ENOMEM;
}

/* The frame size that lands a store in the first unmapped page below the
 * stack (of `size` bytes, topped by `here`'s page), or 0 if none lies
 * within 960 KiB: well inside the runtime's reach of 1 MiB. */
static size_t deep_to_unmapped(size_t size)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    uintptr_t lo = ((here + 4095) & ~(uintptr_t)4095) - size;
    for (uintptr_t p = lo - 2 * 4096; lo - p < 960 * 1024; p -= 4096)
        if (unmapped(p))
            return here - (p + 2048);
    return 0;
}

WT_NOIPA static int big_alloca(void)
{
    WT_OPAQUE_BODY();
    size_t n = 300 * 1024;
    char *p = alloca(n);
    memset(p, 1, n);
    __asm__ volatile("" : : "r"(p) : "memory"); /* keep the stores */
    return ((volatile char *)p)[n / 2];
}

/* One frame from a stack of `size` bytes into the first unmapped page
 * below it. */
static int jump_the_guard(size_t size)
{
    size_t deep = deep_to_unmapped(size);
    if (!deep) {
        fprintf(stderr, "overflow: no unmapped page below the stack\n");
        return 1;
    }
    return deep_frame(deep) == 42 ? 0 : 1;
}

enum mode { RECURSE, SLIGHT, DEEP, ALLOCA };
static size_t g_default_stack = DEFAULT_STACK;
static enum mode g_mode;

static int victim(void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    switch (g_mode) {
    case SLIGHT:
        dig(__builtin_frame_address(0), size, 256);
        weft_yield(); /* the switch-out checks the canary */
        return 0;
    case DEEP:
        return jump_the_guard(size);
    case ALLOCA:
        return big_alloca() == 42 ? 0 : 1;
    case RECURSE:
        break;
    }
    return recurse(0) == 42 ? 0 : 1;
}

static int root(void *arg)
{
    weft_attr a = {0};
    a.name = "overflow-victim";
    a.stack_size = (size_t)(uintptr_t)arg;
    size_t size = a.stack_size ? a.stack_size : g_default_stack;
    weft_thread *t = weft_go_with(&a, victim, (void *)(uintptr_t)size);
    if (!t) {
        perror("weft_go_with");
        return 1;
    }
    int r = 0;
    weft_join(t, &r);
    return r;
}

static enum mode mode_from_env(void)
{
    const char *m = getenv("OVERFLOW_MODE");
    if (getenv("OVERFLOW_SLIGHT") || (m && !strcmp(m, "slight")))
        return SLIGHT;
    if (m && !strcmp(m, "deep"))
        return DEEP;
    if (m && !strcmp(m, "alloca"))
        return ALLOCA;
    return RECURSE;
}

int main(int argc, char **argv)
{
    alarm(30); /* a hang dies of SIGALRM, which the test rejects */
    size_t kib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
    g_mode = mode_from_env();
    const char *env_stack = getenv("WEFT_STACK"); /* as "2k" */
    if (env_stack)
        g_default_stack = strtoul(env_stack, NULL, 10) * 1024;
    weft_config cfg = {.stack_size = env_stack ? 0 : DEFAULT_STACK};
    int rc = weft_run(root, (void *)(uintptr_t)(kib * 1024), &cfg);
    fprintf(stderr, "overflow: weft_run returned %d: overflow not caught\n",
            rc);
    return 0;
}
