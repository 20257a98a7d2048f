/* SPDX-License-Identifier: MIT */
/* guide/scope.c: a thousand threads in a scope. The first failure cancels
 * the rest; a deadline cancels them all. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <weft.h>

#define THREADS 1000

static atomic_int cancelled;

static int sleeper(void *fails)
{
    if (fails)
        return EIO;
    int r = weft_sleep(60 * WEFT_SEC); /* a minute, unless cancelled */
    if (r == ECANCELED || r == ETIMEDOUT)
        atomic_fetch_add(&cancelled, 1);
    return r;
}

/* THREADS sleepers in a scope of their own, the first one failing if
 * asked; waits for them all. */
static int crowd(bool one_fails, int64_t deadline)
{
    weft_scope *s = weft_scope_open();
    if (!s)
        return errno;
    if (deadline >= 0)
        weft_scope_deadline(s, deadline);
    for (int i = 0; i < THREADS; i++) {
        bool fails = one_fails && i == 0;
        if (!weft_go(sleeper, fails ? "fails" : NULL))
            weft_scope_cancel(s);     /* no memory: give up on all */
    }
    return weft_scope_close(s);       /* waits, then says how it went */
}

static int root(void *arg)
{
    (void)arg;
    int r = crowd(true, -1);
    printf("first scope: %s, %d threads cancelled\n", strerror(r),
           atomic_exchange(&cancelled, 0));
    r = crowd(false, weft_now() + 50 * WEFT_MSEC);
    printf("second scope: %s, %d threads cancelled\n", strerror(r),
           atomic_exchange(&cancelled, 0));
    return 0;
}

int main(void)
{
    return weft_run(root, NULL, NULL) ? 1 : 0;
}
