/* SPDX-License-Identifier: MIT */
/* B1 spawn_join, OS-thread baseline: pthread_create + pthread_join of
 * 100,000 threads that do nothing (default attributes), in batches of 1,000
 * live threads (all 100,000 at once would exceed the kernel's map and thread
 * limits); prints ns per thread. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { N = 100000, BATCH = 1000 };

static void *nothing(void *arg) { return arg; }

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int spawn_join(int n) {
    static pthread_t t[BATCH];
    for (int done = 0; done < n; done += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            int err = pthread_create(&t[i], NULL, nothing, NULL);
            if (err) {
                fprintf(stderr, "pthread_create: %s\n", strerror(err));
                return 1;
            }
        }
        for (int i = 0; i < BATCH; i++)
            pthread_join(t[i], NULL);
    }
    return 0;
}

int main(void) {
    if (spawn_join(BATCH)) /* warm-up, not timed */
        return 1;
    double start = now_ns();
    if (spawn_join(N))
        return 1;
    printf("spawn_join_ns %.1f ns/task\n", (now_ns() - start) / N);
    return 0;
}
