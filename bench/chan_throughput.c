/* SPDX-License-Identifier: MIT */
/* B4 chan_throughput: the root virtual thread sends 10,000,000 longs (the
 * size of Go's int) through a channel of capacity 1024 to one consumer
 * thread, then closes it; the consumer receives until the channel is closed.
 * Prints ns per message, timed from the first send until the consumer,
 * joined, has received the last. The consumer is spawned before the timed
 * region (it waits on an empty channel); a 100,000-message round with its
 * own channel and consumer first warms up, outside the timed region. Default
 * procs (the number of CPUs). */
#include <weft.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { N = 10000000, WARMUP = 100000, CAPACITY = 1024 };

struct consumer {
    weft_chan *c;
    long sum;
};

static int consume(void *arg) {
    struct consumer *k = arg;
    long v;
    int err;
    while ((err = weft_chan_recv(k->c, &v)) == 0)
        k->sum += v;
    if (err != EPIPE) {
        fprintf(stderr, "consumer: weft_chan_recv: %s\n", strerror(err));
        return err;
    }
    return 0;
}

/* Sends n messages; stores the time taken in *elapsed. Returns 0 or an
 * error number. */
static int throughput(long n, int64_t *elapsed) {
    struct consumer k = {.c = weft_chan_make(sizeof(long), CAPACITY)};
    if (!k.c) {
        fprintf(stderr, "weft_chan_make: %s\n", strerror(errno));
        return errno;
    }
    weft_thread *t = weft_go(consume, &k);
    if (!t) {
        int err = errno;
        fprintf(stderr, "weft_go: %s\n", strerror(err));
        weft_chan_free(k.c);
        return err;
    }
    int err = 0, result = 0;
    int64_t start = weft_now();
    for (long i = 0; i < n; i++) {
        if ((err = weft_chan_send(k.c, &i)) != 0) {
            fprintf(stderr, "weft_chan_send #%ld: %s\n", i, strerror(err));
            break;
        }
    }
    weft_chan_close(k.c);
    int join_err = weft_join(t, &result);
    *elapsed = weft_now() - start;
    if (join_err)
        fprintf(stderr, "weft_join: %s\n", strerror(join_err));
    if (!err)
        err = join_err ? join_err : result;
    if (!err && k.sum != n * (n - 1) / 2) {
        fprintf(stderr, "sum %ld, want %ld\n", k.sum, n * (n - 1) / 2);
        err = EPROTO;
    }
    weft_chan_free(k.c);
    return err;
}

static int bench(void *arg) {
    int64_t elapsed;
    int err = throughput(WARMUP, &elapsed);
    if (!err)
        err = throughput(N, &elapsed);
    if (!err)
        printf("chan_throughput_ns %.2f ns/msg\n", (double)elapsed / N);
    return err;
}

int main(void) {
    int err = weft_run(bench, NULL, NULL);
    if (err)
        fprintf(stderr, "chan_throughput: %s\n", strerror(err));
    return err ? 1 : 0;
}
