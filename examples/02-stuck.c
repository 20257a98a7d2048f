/* SPDX-License-Identifier: MIT */
/* 02-stuck: a frame loop that must tick every 16 ms keeps its deadline
 * while, on the same two P's, two threads crunch numbers without ever
 * yielding and a third waits in a blocking library call (run through
 * weft_offload). The monitor moves the frame loop off the stuck carriers;
 * weft_stats shows what it did. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <weft.h>

#define FRAME_NS (16 * WEFT_MSEC)

static atomic_bool stop;

/* A loop with no calls: nothing weft could preempt it at. */
static int cruncher(void *arg)
{
    (void)arg;
    volatile unsigned long x = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        x = x * 6364136223846793005ul + 1;
    return 0;
}

/* A blocking call weft knows nothing about. */
static int slow_lookup(void *arg)
{
    (void)arg;
    usleep(500 * 1000);
    return 42;
}

static int looker(void *arg)
{
    (void)arg;
    int r = weft_offload(slow_lookup, NULL);
    printf("offloaded call returned %d\n", r);
    return 0;
}

static int frame_loop(void *arg)
{
    (void)arg;
    int64_t worst = 0, next = weft_now() + FRAME_NS;
    for (int frame = 0; frame < 60; frame++, next += FRAME_NS) {
        weft_sleep(next - weft_now());
        int64_t late = weft_now() - next;
        if (late > worst)
            worst = late;
    }
    printf("60 frames, worst lateness %.2f ms\n", (double)worst / WEFT_MSEC);
    return 0;
}

static int main_thread(void *arg)
{
    (void)arg;
    weft_scope *s = weft_scope_open();
    weft_attr crunch = {.name = "cruncher"};
    weft_go_with(&crunch, cruncher, NULL);
    weft_go_with(&crunch, cruncher, NULL);
    weft_go(looker, NULL);
    weft_thread *frames = weft_go(frame_loop, NULL);
    weft_join(frames, NULL);
    atomic_store(&stop, true);
    int r = weft_scope_close(s);
    weft_runtime_stats st;
    if (weft_stats(&st) == 0)
        printf("monitor: %llu hand-offs; longest hog '%s', %.0f ms without "
               "a switch\n", st.handoffs, st.longest_hog_name,
               (double)st.longest_hog_ns / WEFT_MSEC);
    return r;
}

int main(void)
{
    weft_config cfg = {.procs = 2};
    int r = weft_run(main_thread, NULL, &cfg);
    if (r)
        fprintf(stderr, "weft_run: %s\n", strerror(r));
    return r;
}
