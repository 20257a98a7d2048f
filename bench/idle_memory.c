/* SPDX-License-Identifier: MIT */
/* B3 idle_memory: N virtual threads (default 1,000,000; argv[1]) with the
 * default stack size each park receiving on one shared rendezvous channel.
 * Each bumps an atomic counter just before it blocks; the root polls
 * (weft_sleep) until all N have, sleeps 200 ms more, and reads RSS from
 * /proc/self/statm. Prints the RSS growth over the pre-spawn baseline divided
 * by N, then closes the channel, which releases them all, and lets the scope
 * close. */
#include <weft.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static weft_chan *gate;
static atomic_long parked;

static long rss_bytes(void) {
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2) {
        perror("/proc/self/statm");
        exit(1);
    }
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static int park(void *arg) {
    atomic_fetch_add(&parked, 1);
    /* Parks the thread until the channel is closed: nothing is ever sent. */
    int v, err = weft_chan_recv(gate, &v);
    return err == EPIPE ? 0 : err ? err : EPROTO;
}

static int bench(void *arg) {
    long n = *(long *)arg, spawned = 0;
    static const weft_attr detached = {.detached = true};

    if (!(gate = weft_chan_make(sizeof(int), 0))) {
        fprintf(stderr, "weft_chan_make: %s\n", strerror(errno));
        return errno;
    }
    long before = rss_bytes();
    weft_scope *s = weft_scope_open();
    if (!s) {
        fprintf(stderr, "weft_scope_open: %s\n", strerror(errno));
        return errno;
    }
    int err = 0;
    for (; spawned < n; spawned++) {
        if (!weft_go_with(&detached, park, NULL)) {
            err = errno;
            fprintf(stderr, "weft_go_with #%ld: %s\n", spawned, strerror(err));
            break;
        }
    }
    /* Wait for all to park; give up after 10 s without progress (a thread
     * whose stack cannot be allocated never runs). */
    long seen = 0;
    int64_t progress_at = weft_now();
    while (!err && (seen = atomic_load(&parked)) < n) {
        weft_sleep(1000000); /* 1 ms */
        if (atomic_load(&parked) != seen)
            progress_at = weft_now();
        else if (weft_now() - progress_at > 10 * (int64_t)1000000000) {
            fprintf(stderr, "stalled: only %ld of %ld threads parked\n", seen, n);
            err = EAGAIN;
        }
    }
    if (!err) {
        weft_sleep(200000000); /* 200 ms: let the last ones finish parking */
        long after = rss_bytes();
        printf("idle_memory_bytes %.0f bytes/thread\n",
               (double)(after - before) / n);
    }
    weft_chan_close(gate); /* releases every parked thread */
    int close_err = weft_scope_close(s);
    if (close_err)
        fprintf(stderr, "weft_scope_close: %s\n", strerror(close_err));
    weft_chan_free(gate);
    return err ? err : close_err;
}

int main(int argc, char **argv) {
    long n = 1000000;
    if (argc > 1 && (n = strtol(argv[1], NULL, 10)) <= 0) {
        fprintf(stderr, "usage: %s [N]\n", argv[0]);
        return 2;
    }
    int err = weft_run(bench, &n, NULL);
    if (err)
        fprintf(stderr, "idle_memory: %s\n", strerror(err));
    return err ? 1 : 0;
}
