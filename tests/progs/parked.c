/* SPDX-License-Identifier: MIT */
/*
 * parked.c — helper for tests/gdb.sh: one virtual thread, "napper", parks
 * in weft_sleep; the root then calls all_parked(), where the test's gdb
 * stops to list the virtual threads and walk napper's stack.
 */
#include <weft.h>

__attribute__((noinline)) void all_parked(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static int napper(void *arg)
{
    (void)arg;
    return weft_sleep(2000000000LL);
}

static int root(void *arg)
{
    (void)arg;
    weft_attr a = {.name = "napper"};
    weft_thread *t = weft_go_with(&a, napper, NULL);
    weft_sleep(20000000LL);
    all_parked();
    weft_cancel(t);
    weft_join(t, NULL);
    return 0;
}

int main(void)
{
    return weft_run(root, NULL, NULL);
}
