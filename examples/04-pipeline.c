/* SPDX-License-Identifier: MIT */
/* 04-pipeline: fan-out and fan-in through bounded channels. A reader
 * thread feeds numbered jobs to four workers, which "work" (spin for a
 * while, now and then wait on a timer, as on a slow disk) and pass results
 * to a collector. Run it with WEFT_TRACE=pipeline.json to see the threads
 * move between carriers, park on full and empty channels and wake each
 * other (the README's trace screenshot is this program). */
#include <stdio.h>
#include <weft.h>

enum { JOBS = 200, WORKERS = 4 };

static weft_chan *jobs, *results;

static int reader(void *arg)
{
    (void)arg;
    for (int i = 0; i < JOBS; i++)
        weft_chan_send(jobs, &i);
    weft_chan_close(jobs);
    return 0;
}

static int worker(void *arg)
{
    (void)arg;
    int job;
    while (weft_chan_recv(jobs, &job) == 0) {
        int64_t until = weft_now() + 20 * WEFT_USEC; /* work */
        while (weft_now() < until)
            ;
        if (job % 16 == 0)
            weft_sleep(200 * WEFT_USEC); /* as on a slow disk */
        long square = (long)job * job;
        weft_chan_send(results, &square);
    }
    return 0;
}

static int collector(void *arg)
{
    long sum = 0, r;
    for (int i = 0; i < JOBS; i++)
        if (weft_chan_recv(results, &r) == 0)
            sum += r;
    *(long *)arg = sum;
    return 0;
}

static int pipeline(void *arg)
{
    (void)arg;
    long sum = 0;
    jobs = weft_chan_make(sizeof(int), 8);
    results = weft_chan_make(sizeof(long), 8);
    if (!jobs || !results)
        return 1;
    weft_go_with(&(weft_attr){.name = "reader"}, reader, NULL);
    for (int i = 0; i < WORKERS; i++)
        weft_go_with(&(weft_attr){.name = "worker"}, worker, NULL);
    weft_thread *c = weft_go_with(&(weft_attr){.name = "collector"},
                                  collector, &sum);
    weft_join(c, NULL);
    printf("sum of squares below %d: %ld\n", JOBS, sum);
    return 0;
}

int main(void)
{
    int r = weft_run(pipeline, NULL, &(weft_config){.procs = 2});
    weft_chan_free(jobs);
    weft_chan_free(results);
    return r;
}
