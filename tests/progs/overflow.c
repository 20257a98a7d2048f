/*
 * overflow.c — helper for tests/stack.c: a virtual thread named
 * "overflow-victim" recurses without end. The runtime must report the
 * overflow (naming the thread) on stderr and abort.
 *
 * usage: weft_prog_overflow [stack-KiB]   (0 or absent: the default size)
 * Exits 0 only if the overflow was NOT caught (which the test rejects).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <weft.h>

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

static int victim(void *arg)
{
    return recurse(0) == 42 ? 0 : 1;
}

static int root(void *arg)
{
    weft_attr a = {0};
    a.name = "overflow-victim";
    a.stack_size = (size_t)(uintptr_t)arg;
    weft_thread *t = weft_go_with(&a, victim, NULL);
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
    int rc = weft_run(root, (void *)(uintptr_t)(kib * 1024), NULL);
    fprintf(stderr, "overflow: weft_run returned %d: overflow not caught\n",
            rc);
    return 0;
}
