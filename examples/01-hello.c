/* SPDX-License-Identifier: MIT */
/* 01-hello: three virtual threads in a scope; the slowest is cancelled
 * by a deadline, and the scope reports it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <weft.h>

static int worker(void *arg)
{
    int ms = (int)(intptr_t)arg;
    int r = weft_sleep(ms * WEFT_MSEC);
    printf("worker %3d ms: %s\n", ms, r ? strerror(r) : "done");
    return r;
}

static int main_thread(void *arg)
{
    (void)arg;
    weft_scope *s = weft_scope_open();
    weft_scope_deadline(s, weft_now() + 150 * WEFT_MSEC);
    for (int ms = 50; ms <= 250; ms += 100)
        weft_go(worker, (void *)(intptr_t)ms);
    int r = weft_scope_close(s);
    printf("scope closed: %s\n", r ? strerror(r) : "ok");
    return 0;
}

int main(void)
{
    return weft_run(main_thread, NULL, NULL);
}
