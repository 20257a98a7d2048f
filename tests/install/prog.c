/* SPDX-License-Identifier: MIT */
/*
 * prog.c — a program built against an installed weft, each way a program
 * can link it (link.sh). It spawns virtual threads that report over a
 * channel, then makes a plain read() on an empty socket on a virtual
 * thread: weft's hook must park that thread in the poller (the runtime
 * then counts it in io_waiting) instead of blocking its carrier. Prints
 * "prog: ok" and exits 0, or names what failed and exits 1.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft.h>

enum { WORKERS = 16 };

static weft_chan *results;
static int sv[2];

static int fail(const char *what, int err)
{
    fprintf(stderr, "prog: %s%s%s\n", what, err ? ": " : "",
            err ? strerror(err) : "");
    return 1;
}

static int worker(void *arg)
{
    int v = (int)(intptr_t)arg;
    return weft_chan_send(results, &v);
}

static int reader(void *arg)
{
    (void)arg;
    char c = 0;
    ssize_t n = read(sv[0], &c, 1); /* libc's name: weft's hook */
    return n == 1 && c == 'x' ? 0 : EIO;
}

/* Whether some virtual thread waits on an fd in the poller, within 5 s. */
static int parked_on_fd(void)
{
    for (int i = 0; i < 5000; i++) {
        weft_runtime_stats st;
        if (weft_stats(&st) == 0 && st.io_waiting > 0)
            return 1;
        weft_sleep(1000000);
    }
    return 0;
}

static int threads_and_channel(void)
{
    results = weft_chan_make(sizeof(int), 0);
    if (!results)
        return fail("weft_chan_make", errno);
    for (int i = 1; i <= WORKERS; i++)
        if (!weft_go(worker, (void *)(intptr_t)i))
            return fail("weft_go", errno);
    int sum = 0;
    for (int i = 0; i < WORKERS; i++) {
        int v, r = weft_chan_recv(results, &v);
        if (r)
            return fail("weft_chan_recv", r);
        sum += v;
    }
    if (sum != WORKERS * (WORKERS + 1) / 2)
        return fail("the channel lost or duplicated a message", 0);
    return 0;
}

static int hooked_read_parks(void)
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return fail("socketpair", errno);
    weft_thread *t = weft_go(reader, NULL);
    if (!t)
        return fail("weft_go", errno);
    int parked = parked_on_fd();
    if (write(sv[1], "x", 1) != 1)
        return fail("write", errno);
    int rc = -1, r = weft_join(t, &rc);
    if (r || rc)
        return fail("the reader", r ? r : rc);
    if (!parked)
        return fail("read() blocked its carrier: no hook parked it", 0);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static int root(void *arg)
{
    (void)arg;
    if (threads_and_channel() || hooked_read_parks())
        return 1;
    return 0;
}

int main(void)
{
    int r = weft_run(root, NULL, NULL);
    if (r)
        return r == 1 ? 1 : fail("weft_run", r);
    weft_chan_free(results);
    puts("prog: ok");
    return 0;
}
