/* SPDX-License-Identifier: MIT */
/* guide/pipeline.c: numbers flow from a generator through four workers
 * to the root, over bounded channels. The root waits with weft_select:
 * for a result, for the "stop" channel to close, or for a second at most
 * (a stalled pipeline). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <weft.h>

#define NUMBERS 1000
#define WORKERS 4

static weft_chan *numbers, *squares, *stop;
static weft_thread *workers[WORKERS];

static int generate(void *arg)
{
    (void)arg;
    for (long i = 1; i <= NUMBERS; i++) {
        int r = weft_chan_send(numbers, &i);   /* waits while it is full */
        if (r)
            return r;
    }
    return weft_chan_close(numbers);           /* no more numbers */
}

static int square(void *arg)
{
    (void)arg;
    long n;
    while (weft_chan_recv(numbers, &n) == 0) { /* until closed and empty */
        if (n % 100 == 0)
            weft_sleep(WEFT_MSEC);             /* now and then, slow */
        long sq = n * n;
        int r = weft_chan_send(squares, &sq);
        if (r)
            return r;
    }
    return 0;
}

/* Closes squares once every worker has finished: the root then sees
 * EPIPE on it, after the last square. */
static int closer(void *arg)
{
    (void)arg;
    for (int i = 0; i < WORKERS; i++)
        weft_join(workers[i], NULL);
    return weft_chan_close(squares);
}

/* Closes stop after a while: whoever waits on stop sees it at once. */
static int budget(void *arg)
{
    weft_sleep(*(int64_t *)arg);
    weft_chan_close(stop);
    return 0;
}

static int collect(long *sum)
{
    for (;;) {
        long sq;
        char none;
        weft_case cases[] = {WEFT_RECV(squares, &sq), WEFT_RECV(stop, &none)};
        int i = weft_select(cases, 2, weft_now() + WEFT_SEC);
        if (i < 0)
            return errno;          /* ETIMEDOUT: stalled; or ECANCELED */
        if (i == 1)
            return ECANCELED;      /* stop closed: out of time */
        if (cases[0].err == EPIPE)
            return 0;              /* squares closed and drained: done */
        *sum += sq;
    }
}

static weft_thread *go(weft_scope *s, weft_fn fn, void *arg)
{
    weft_thread *t = weft_go(fn, arg);
    if (!t)
        weft_scope_cancel(s);      /* a stage is missing: stop them all */
    return t;
}

static int root(void *arg)
{
    int64_t time_budget = 5 * WEFT_SEC;
    numbers = weft_chan_make(sizeof(long), 16);
    squares = weft_chan_make(sizeof(long), 16);
    stop = weft_chan_make(1, 0);
    if (!numbers || !squares || !stop)
        return ENOMEM;
    weft_scope *s = weft_scope_open();
    if (!s)
        return errno;
    go(s, generate, NULL);
    for (int i = 0; i < WORKERS; i++)
        workers[i] = go(s, square, NULL);
    go(s, closer, NULL);
    go(s, budget, &time_budget);
    long sum = 0;
    int r = collect(&sum);
    weft_scope_cancel(s);          /* the budget, and anyone still busy */
    weft_scope_close(s);
    if (r == 0)
        printf("sum of the squares of 1..%d: %ld\n", NUMBERS, sum);
    else
        printf("pipeline: %s\n", strerror(r));
    *(int *)arg = r;
    return 0;
}

int main(void)
{
    int r = 0;
    if (weft_run(root, &r, NULL))
        return 1;
    weft_chan_free(numbers);
    weft_chan_free(squares);
    weft_chan_free(stop);
    return r ? 1 : 0;
}
