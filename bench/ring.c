/* SPDX-License-Identifier: MIT */
/* B5 ring: 1,000 virtual threads (the root and 999 children) in a ring,
 * each receiving from its own rendezvous channel and sending to the next
 * one's. A token goes round 1,000 times: 1,000,000 hops (sends), each adding
 * 1 to it; prints ns per hop. The children are spawned before the timed
 * region and wait in their first receive; 10 laps first warm up, outside
 * the timed region. Default procs (the number of CPUs). */
#include <weft.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { THREADS = 1000, LAPS = 1000, WARMUP = 10 };

/* Member i receives from chans[i] and sends to chans[(i + 1) % THREADS];
 * the root is member 0. */
static weft_chan *chans[THREADS];

static int member(void *arg) {
    intptr_t i = (intptr_t)arg;
    weft_chan *in = chans[i], *out = chans[(i + 1) % THREADS];
    for (int lap = 0; lap < WARMUP + LAPS; lap++) {
        long v;
        int err = weft_chan_recv(in, &v);
        v++;
        if (!err)
            err = weft_chan_send(out, &v);
        if (err) {
            fprintf(stderr, "member %d, lap %d: %s\n", (int)i, lap,
                    strerror(err));
            return err;
        }
    }
    return 0;
}

/* The root's share of n laps. Returns 0 or an error number. */
static int laps(long *token, int n) {
    for (int lap = 0; lap < n; lap++) {
        long v = *token + 1;
        int err = weft_chan_send(chans[1], &v);
        if (!err)
            err = weft_chan_recv(chans[0], token);
        if (err) {
            fprintf(stderr, "root, lap %d: %s\n", lap, strerror(err));
            return err;
        }
    }
    return 0;
}

static int bench(void *arg) {
    for (int i = 0; i < THREADS; i++) {
        if (!(chans[i] = weft_chan_make(sizeof(long), 0))) {
            fprintf(stderr, "weft_chan_make: %s\n", strerror(errno));
            return errno;
        }
    }
    weft_scope *s = weft_scope_open();
    if (!s) {
        fprintf(stderr, "weft_scope_open: %s\n", strerror(errno));
        return errno;
    }
    static const weft_attr detached = {.detached = true};
    int err = 0;
    for (intptr_t i = 1; i < THREADS && !err; i++) {
        if (!weft_go_with(&detached, member, (void *)i)) {
            err = errno;
            fprintf(stderr, "weft_go_with #%d: %s\n", (int)i, strerror(err));
        }
    }
    long token = 0;
    int64_t start = 0, elapsed = 0;
    if (!err)
        err = laps(&token, WARMUP);
    if (!err) {
        start = weft_now();
        err = laps(&token, LAPS);
        elapsed = weft_now() - start;
    }
    if (err) /* release the members still waiting */
        for (int i = 0; i < THREADS; i++)
            weft_chan_close(chans[i]);
    int close_err = weft_scope_close(s);
    if (close_err && !err)
        fprintf(stderr, "weft_scope_close: %s\n", strerror(close_err));
    if (!err && !close_err && token != (long)THREADS * (WARMUP + LAPS)) {
        fprintf(stderr, "token %ld, want %ld\n", token,
                (long)THREADS * (WARMUP + LAPS));
        err = EPROTO;
    }
    if (!err && !close_err)
        printf("ring_ns %.1f ns/hop\n",
               (double)elapsed / ((long)THREADS * LAPS));
    for (int i = 0; i < THREADS; i++)
        weft_chan_free(chans[i]);
    return err ? err : close_err;
}

int main(void) {
    int err = weft_run(bench, NULL, NULL);
    if (err)
        fprintf(stderr, "ring: %s\n", strerror(err));
    return err ? 1 : 0;
}
