/* SPDX-License-Identifier: MIT */
/* 05-generator: a generator is a thread and a channel. The producer
 * yields the Fibonacci numbers through a rendezvous channel (capacity 0:
 * a send completes only when the consumer takes the value, so the
 * producer computes one value ahead at most, as a generator does). The
 * consumer takes what it wants and closes the channel early: the
 * producer, waiting in its next send, gets EPIPE and returns cleanly. No
 * flag, no cancellation, nothing left running. */
#include <errno.h>
#include <stdio.h>
#include <weft.h>

/* Sends the Fibonacci numbers to out until out is closed. */
static int fibonacci(void *arg)
{
    weft_chan *out = arg;
    long a = 0, b = 1, sent = 0;
    for (;;) {
        int r = weft_chan_send(out, &a);
        if (r == EPIPE)
            break; /* the consumer has had enough */
        if (r)
            return r;
        sent++;
        long next = a + b;
        a = b;
        b = next;
    }
    printf("generator: closed after %ld values; stopping\n", sent);
    return 0;
}

static int consumer(void *arg)
{
    (void)arg;
    weft_chan *numbers = weft_chan_make(sizeof(long), 0); /* rendezvous */
    if (!numbers)
        return errno;
    weft_thread *gen = weft_go_with(&(weft_attr){.name = "fibonacci"},
                                    fibonacci, numbers);
    if (!gen) {
        weft_chan_free(numbers);
        return errno;
    }
    long v = -1;
    while (weft_chan_recv(numbers, &v) == 0 && v < 100)
        printf("%ld ", v);
    printf("\nconsumer: %ld is enough\n", v);
    weft_chan_close(numbers); /* the generator has more: stop it */
    int result = -1;
    weft_join(gen, &result);
    printf("generator returned %d\n", result);
    weft_chan_free(numbers);
    return result;
}

int main(void)
{
    return weft_run(consumer, NULL, NULL);
}
