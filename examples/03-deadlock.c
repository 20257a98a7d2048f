/* SPDX-License-Identifier: MIT */
/*
 * 03-deadlock — what weft shows when no thread can ever run again.
 *
 * 'holder' takes the only unit of a semaphore, then waits for a message
 * nobody will send; 'wanter' waits for the semaphore. weft notices that
 * every thread is blocked for good, prints where each one waits, with its
 * stack, and weft_run returns EDEADLK instead of hanging.
 */
#include <errno.h>
#include <stdio.h>
#include <weft.h>

static weft_sem lock = WEFT_SEM_INIT(1);
static weft_chan *orders;

static int holder(void *arg)
{
    (void)arg;
    weft_sem_acquire(&lock);
    int order;
    weft_chan_recv(orders, &order); /* nobody ever sends */
    weft_sem_release(&lock);
    return 0;
}

static int wanter(void *arg)
{
    (void)arg;
    weft_sleep(WEFT_MSEC); /* let holder take the semaphore first */
    weft_sem_acquire(&lock);
    weft_sem_release(&lock);
    return 0;
}

static int run(void *arg)
{
    (void)arg;
    orders = weft_chan_make(sizeof(int), 0);
    weft_thread *h = weft_go(holder, NULL);
    weft_thread *w = weft_go(wanter, NULL);
    weft_join(h, NULL);
    weft_join(w, NULL);
    return 0;
}

int main(void)
{
    int r = weft_run(run, NULL, NULL);
    printf("weft_run returned %s\n", r == EDEADLK ? "EDEADLK" : "something else");
    return r == EDEADLK ? 0 : 1;
}
