/* SPDX-License-Identifier: MIT */
/*
 * hooks_off.c — helper for tests/hooks.c: a virtual thread calls libc's
 * read() on a socket that an OS thread writes to 150 ms later, while a
 * ticker thread counts 1 ms sleeps on the same single P. The hog threshold
 * is 10 s, so no hand-off moves the ticker away from a carrier the read
 * blocks. Prints
 *     hooks_off: got <bytes> after <ms> ms, ticker ran <n> times,
 *     <ms> ms waiting for a CPU
 * and exits 0 when the run completed. Run with WEFT_HOOKS=0 the read blocks
 * its carrier (the ticker stands still); without it the read parks.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#include "../support/wt_sched.h"

#define MS(n) ((int64_t)(n) * 1000000)

static int sv[2];
static atomic_long ticks;
static atomic_int stop;
static long got = -2, took_ms, ticked;
static int64_t waited; /* the carrier's wait for a CPU during the read */
static atomic_bool reading; /* the reader's clock runs */

static int ticker(void *arg)
{
    while (!atomic_load(&stop)) {
        atomic_fetch_add(&ticks, 1);
        weft_sleep(MS(1));
    }
    return 0;
}

static int reader(void *arg)
{
    char buf[16];
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    long k0 = atomic_load(&ticks);
    int64_t t0 = weft_now();
    atomic_store(&reading, true);
    got = read(sv[0], buf, sizeof buf);
    took_ms = (long)((weft_now() - t0) / 1000000);
    ticked = atomic_load(&ticks) - k0;
    waited = wt_sched_waited(&m);
    return 0;
}

/* Writes with the raw system call 150 ms after the reader started its
 * clock (on a loaded machine it may start well after this thread): no hook
 * involved. */
static void *writer(void *arg)
{
    struct timespec ms = {0, 1000000}, ts = {0, 150 * 1000000};
    while (!atomic_load(&reading))
        syscall(SYS_nanosleep, &ms, NULL);
    syscall(SYS_nanosleep, &ts, NULL);
    long r = syscall(SYS_write, sv[1], "late", 4);
    (void)r;
    return NULL;
}

static int root(void *arg)
{
    weft_thread *k = weft_go(ticker, NULL);
    weft_sleep(MS(20)); /* the ticker runs */
    pthread_t pt;
    if (!k || pthread_create(&pt, NULL, writer, NULL))
        return 1;
    weft_thread *r = weft_go(reader, NULL);
    int rc = r ? weft_join(r, NULL) : 1;
    atomic_store(&stop, 1);
    weft_join(k, NULL);
    pthread_join(pt, NULL);
    return rc;
}

int main(void)
{
    alarm(30);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return 2;
    weft_config cfg = {.procs = 1, .hog_ms = 10000};
    int rc = weft_run(root, NULL, &cfg);
    printf("hooks_off: got %ld after %ld ms, ticker ran %ld times, "
           "%lld ms waiting for a CPU\n", got, took_ms, ticked,
           (long long)(waited / 1000000));
    return rc;
}
