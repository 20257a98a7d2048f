/* SPDX-License-Identifier: MIT */
/*
 * sigquit.c — helper for tests/dump.c: while a virtual thread named
 * "quit-sleeper" sleeps, the process receives SIGQUIT. The runtime must
 * write its dump to stderr and carry on: the sleeper finishes, weft_run
 * returns 0 and the program exits 0 after printing "sigquit: survived".
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <weft.h>

static int sleeper(void *arg)
{
    return weft_sleep(200 * 1000 * 1000LL);
}

static int root(void *arg)
{
    weft_attr a = {0};
    a.name = "quit-sleeper";
    weft_thread *t = weft_go_with(&a, sleeper, NULL);
    if (!t)
        return 1;
    weft_sleep(20 * 1000 * 1000LL);
    kill(getpid(), SIGQUIT);
    int r = -1;
    int rc = weft_join(t, &r);
    return rc ? rc : r;
}

int main(void)
{
    alarm(30);
    int rc = weft_run(root, NULL, NULL);
    fprintf(stderr, "sigquit: weft_run returned %d\n", rc);
    if (rc == 0)
        fprintf(stderr, "sigquit: survived\n");
    return rc;
}
