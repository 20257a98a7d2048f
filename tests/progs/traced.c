/* SPDX-License-Identifier: MIT */
/*
 * traced.c — helper for tests/trace.sh: a workload on two P's that makes
 * every kind of scheduler event (spawn, run, park on a channel, a sleep,
 * an fd and a join, yield, wake, steal, hand-off of a stuck carrier) while
 * WEFT_TRACE records it. Prints the fd its reader waits on, for the check.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <weft.h>

static weft_chan *chan;
static int pipe_fds[2];

static int producer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++)
        weft_chan_send(chan, &i);
    weft_chan_close(chan);
    return 0;
}

static int consumer(void *arg)
{
    (void)arg;
    int v;
    while (weft_chan_recv(chan, &v) == 0)
        weft_sleep(v % 50 == 0 ? 1000000 : 0); /* slow now and then */
    return 0;
}

static int reader(void *arg)
{
    (void)arg;
    char c;
    return read(pipe_fds[0], &c, 1) == 1 ? 0 : 1; /* parks on the fd */
}

/* Sleeps 10 ms, then on until the reader waits on its fd (at most 5 s):
 * on a loaded machine the reader may start more than 10 ms late, and it
 * must park, not find the byte there. Sleeps at least five times: a sleep
 * whose carrier the kernel preempts past its deadline before the thread
 * is off its stack ends without parking (sched/park.c), and the check
 * wants one that parked. */
static int writer(void *arg)
{
    (void)arg;
    weft_sleep(10000000);
    weft_runtime_stats st;
    for (int i = 0; i < 5000; i++) {
        if (i >= 4 && weft_stats(&st) == 0 && st.io_waiting >= 1)
            break;
        weft_sleep(1000000);
    }
    return write(pipe_fds[1], "x", 1) == 1 ? 0 : 1;
}

static int napper(void *arg)
{
    (void)arg;
    return weft_sleep(3000000);
}

static int joiner(void *arg)
{
    (void)arg;
    weft_thread *t = weft_go_with(&(weft_attr){.name = "napper"}, napper,
                                  NULL);
    return t ? weft_join(t, NULL) : 1;
}

static int yielder(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        for (volatile int j = 0; j < 2000; j++)
            ;
        weft_yield();
    }
    return 0;
}

static unsigned long long handoffs(void)
{
    weft_runtime_stats st;
    return weft_stats(&st) ? 0 : st.handoffs;
}

/* Holds its carrier, without a call the runtime could switch at, for
 * 40 ms and until the monitor has handed the carrier's P off: on a loaded
 * machine the kernel may give this thread too little CPU in 40 ms for the
 * monitor to call it a hog (it spares a carrier the kernel preempted).
 * Gives up after 5 s. */
static int hog(void *arg)
{
    (void)arg;
    int64_t start = weft_now(), end = start + 40000000;
    while (weft_now() < end)
        ;
    while (handoffs() == 0 && weft_now() < start + 5000000000)
        for (end = weft_now() + 100000; weft_now() < end;)
            ;
    return 0;
}

static int spawn(const char *name, weft_fn fn)
{
    return weft_go_with(&(weft_attr){.name = name}, fn, NULL) ? 0 : 1;
}

static int root(void *arg)
{
    (void)arg;
    chan = weft_chan_make(sizeof(int), 4);
    if (!chan || pipe(pipe_fds))
        return 1;
    printf("reader fd %d\n", pipe_fds[0]);
    fflush(stdout);
    int bad = spawn("producer", producer) + spawn("consumer", consumer) +
              spawn("reader", reader) + spawn("writer", writer) +
              spawn("joiner", joiner) + spawn("hog", hog);
    for (int i = 0; i < 16; i++)
        bad += spawn("yielder", yielder);
    return bad; /* the root scope waits for them all */
}

int main(void)
{
    weft_config cfg = {.procs = 2, .hog_ms = 5};
    int r = weft_run(root, NULL, &cfg);
    weft_chan_free(chan);
    /* WEFT_IO=uring where the kernel refuses io_uring: 77, which
     * trace.sh passes on to ctest as a skip. */
    const char *io = getenv("WEFT_IO");
    if ((r == ENOSYS || r == EPERM) && io && !strcmp(io, "uring")) {
        fprintf(stderr, "traced: WEFT_IO=uring, and the kernel refuses "
                        "io_uring: %s\n", strerror(r));
        return 77;
    }
    return r;
}
