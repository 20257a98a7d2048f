/* SPDX-License-Identifier: MIT */
/* guide/hello.c: one virtual thread says hello; the root waits for it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <weft.h>

static int greet(void *arg)
{
    const char *who = arg;
    printf("hello, %s, from thread '%s'\n", who, weft_name(weft_self()));
    return 0;
}

static int root(void *arg)
{
    weft_attr attr = {.name = "greeter"};
    weft_thread *t = weft_go_with(&attr, greet, arg);
    if (!t)
        return errno;           /* not spawned: ENOMEM, say */
    int result;
    int r = weft_join(t, &result);
    return r ? r : result;      /* the join's failure, or greet's */
}

int main(void)
{
    int r = weft_run(root, "world", NULL);
    if (r)
        fprintf(stderr, "hello: %s\n", strerror(r));
    return r ? 1 : 0;
}
