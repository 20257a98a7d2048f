/*
 * overflow.c — helper for tests/stack.c: a virtual thread named
 * "overflow-victim" recurses without end. The runtime must report the
 * overflow (naming the thread) on stderr and abort.
 *
 * usage: weft_prog_overflow [stack-KiB]   (0 or absent: the default size)
 * With OVERFLOW_SLIGHT=1 in the environment the victim instead runs a few
 * hundred bytes past the bottom of its stack, returns, and yields: on a
 * stack without a guard page (WEFT_GUARD_BUDGET=0), the canary check at
 * that switch must catch it.
 * Exits 0 only if the overflow was NOT caught (which the test rejects).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <weft.h>

#define DEFAULT_STACK ((size_t)256 * 1024) /* set as the runtime's below */

static volatile int g_forever = 1;

__attribute__((noinline, noipa)) static int recurse(int n)
{
    volatile char buf[512];
    buf[0] = (char)n;
    buf[511] = (char)n;
    if (!g_forever)
        return buf[0];
    return recurse(n + 1) + buf[n % 512];
}

/* Recurses, filling each frame, until a frame lies `past` bytes below
 * where the stack would end if it started at `top` and held `size`. */
__attribute__((noinline, noipa)) static int dig(const char *top, size_t size,
                                                size_t past)
{
    volatile char buf[256];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0x5a;
    const char *here = __builtin_frame_address(0);
    if ((size_t)(top - here) < size + past)
        return dig(top, size, past) + buf[7];
    return buf[7];
}

static int victim(void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    if (getenv("OVERFLOW_SLIGHT")) {
        dig(__builtin_frame_address(0), size, 256);
        weft_yield(); /* the switch-out checks the canary */
        return 0;
    }
    return recurse(0) == 42 ? 0 : 1;
}

static int root(void *arg)
{
    weft_attr a = {0};
    a.name = "overflow-victim";
    a.stack_size = (size_t)(uintptr_t)arg;
    size_t size = a.stack_size ? a.stack_size : DEFAULT_STACK;
    weft_thread *t = weft_go_with(&a, victim, (void *)(uintptr_t)size);
    if (!t) {
        perror("weft_go_with");
        return 1;
    }
    int r = 0;
    weft_join(t, &r);
    return r;
}

int main(int argc, char **argv)
{
    alarm(30); /* a hang dies of SIGALRM, which the test rejects */
    size_t kib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
    weft_config cfg = {.stack_size = DEFAULT_STACK};
    int rc = weft_run(root, (void *)(uintptr_t)(kib * 1024), &cfg);
    fprintf(stderr, "overflow: weft_run returned %d: overflow not caught\n",
            rc);
    return 0;
}
