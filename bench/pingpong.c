/* SPDX-License-Identifier: MIT */
/* B2 pingpong: with procs = argv[1] (default 1), the root virtual thread and
 * one child bounce a token through two rendezvous channels (capacity 0),
 * 1,000,000 round trips; prints ns per round trip. The child is spawned
 * before the timed region and waits in its first receive; it answers until
 * the root closes the channel. 10,000 round trips first warm up, outside
 * the timed region. */
#include <weft.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 1000000, WARMUP = 10000 };

static weft_chan *ping, *pong;

/* Sends back each token it receives, plus one, until ping is closed. */
static int ponger(void *arg) {
    long v;
    int err;
    while ((err = weft_chan_recv(ping, &v)) == 0) {
        v++;
        if ((err = weft_chan_send(pong, &v)) != 0) {
            fprintf(stderr, "ponger: weft_chan_send: %s\n", strerror(err));
            return err;
        }
    }
    if (err != EPIPE) {
        fprintf(stderr, "ponger: weft_chan_recv: %s\n", strerror(err));
        return err;
    }
    return 0;
}

/* n round trips on the token; returns 0 or an error number. */
static int round_trips(long *token, int n) {
    for (int i = 0; i < n; i++) {
        int err = weft_chan_send(ping, token);
        if (!err)
            err = weft_chan_recv(pong, token);
        if (err) {
            fprintf(stderr, "round trip #%d: %s\n", i, strerror(err));
            return err;
        }
    }
    return 0;
}

static int bench(void *arg) {
    ping = weft_chan_make(sizeof(long), 0);
    pong = weft_chan_make(sizeof(long), 0);
    if (!ping || !pong) {
        fprintf(stderr, "weft_chan_make: %s\n", strerror(errno));
        return errno;
    }
    weft_scope *s = weft_scope_open();
    if (!s) {
        fprintf(stderr, "weft_scope_open: %s\n", strerror(errno));
        return errno;
    }
    if (!weft_go(ponger, NULL)) {
        int err = errno;
        fprintf(stderr, "weft_go: %s\n", strerror(err));
        weft_scope_close(s);
        return err;
    }
    long token = 0;
    int err = round_trips(&token, WARMUP);
    int64_t start = weft_now();
    if (!err)
        err = round_trips(&token, N);
    int64_t elapsed = weft_now() - start;
    weft_chan_close(ping); /* the ponger's cue to finish */
    weft_chan_close(pong);
    int close_err = weft_scope_close(s);
    if (close_err)
        fprintf(stderr, "weft_scope_close: %s\n", strerror(close_err));
    if (!err && !close_err && token != N + WARMUP) {
        fprintf(stderr, "token %ld, want %d\n", token, N + WARMUP);
        err = EPROTO;
    }
    if (!err && !close_err)
        printf("pingpong_ns %.1f ns/roundtrip\n", (double)elapsed / N);
    weft_chan_free(ping);
    weft_chan_free(pong);
    return err ? err : close_err;
}

int main(int argc, char **argv) {
    long procs = argc > 1 ? strtol(argv[1], NULL, 10) : 1;
    if (procs <= 0 || procs > 1024) {
        fprintf(stderr, "usage: %s [procs]\n", argv[0]);
        return 2;
    }
    weft_config cfg = {.procs = (unsigned)procs};
    int err = weft_run(bench, NULL, &cfg);
    if (err)
        fprintf(stderr, "pingpong: %s\n", strerror(err));
    return err ? 1 : 0;
}
