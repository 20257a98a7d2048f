/* SPDX-License-Identifier: MIT */
/*
 * dumpsig.c — SIGQUIT (or WEFT_DUMP_SIGNAL) writes the dump to stderr and
 * the program goes on.
 *
 * A dump takes locks, so it cannot run in a signal handler. The handler
 * only writes a byte to a pipe (async-signal-safe); an OS thread started
 * with the runtime reads the pipe and writes the dump, taking the same
 * locks as any other weft_dump caller. WEFT_DUMP_SIGNAL=<number> picks
 * another signal, WEFT_DUMP_SIGNAL=0 turns the feature off.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/real.h"
#include "sched/poll.h"
#include "sched/dump.h"
#include "sched/sched.h"

static struct {
    int sig;                   /* 0: off */
    int pipe[2];
    pthread_t thread;
    struct sigaction old;
} ds = {.pipe = {-1, -1}};

static void on_signal(int sig)
{
    int saved = errno;
    char b = 'd';
    ssize_t n = weft__real(write)(ds.pipe[1], &b, 1);
    (void)n, (void)sig;
    errno = saved;
}

static void *dumper_main(void *arg)
{
    (void)arg;
    char b;
    while (weft__real(read)(ds.pipe[0], &b, 1) == 1 && b == 'd')
        weft_dump(STDERR_FILENO);
    return NULL;
}

static int chosen_signal(void)
{
    const char *v = getenv("WEFT_DUMP_SIGNAL");
    if (!v || !*v)
        return SIGQUIT;
    char *end;
    long n = strtol(v, &end, 10);
    return *end || n < 0 || n >= NSIG ? SIGQUIT : (int)n;
}

/* Runs on: weft_run's thread, before the root starts. Failing to set it
 * up only loses the feature. */
void weft__dump_signal_start(void)
{
    ds.sig = chosen_signal();
    if (!ds.sig)
        return;
    if (weft__pipe2(ds.pipe, O_CLOEXEC))
        goto err_off;
    if (weft__pthread_create(&ds.thread, NULL, dumper_main, NULL))
        goto err_close;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(ds.sig, &sa, &ds.old);
    return;
err_close:
    weft__real(close)(ds.pipe[0]);
    weft__real(close)(ds.pipe[1]);
err_off:
    ds.sig = 0;
}

static void close_pipe(void)
{
    weft__real(close)(ds.pipe[0]);
    weft__real(close)(ds.pipe[1]);
    ds.sig = 0;
}

/* Runs on: weft_run's thread, after every carrier has stopped. */
void weft__dump_signal_stop(void)
{
    if (!ds.sig)
        return;
    sigaction(ds.sig, &ds.old, NULL);
    char b = 'q';
    ssize_t n = weft__real(write)(ds.pipe[1], &b, 1);
    (void)n;
    pthread_join(ds.thread, NULL);
    close_pipe();
}

/* Runs on: a forked child's only thread (fork.c). The dumper thread
 * stayed behind, and the pipe is the parent's: the signal gets its
 * earlier action back, and the child's copies of the pipe are closed. */
void weft__dump_signal_forked(void)
{
    if (!ds.sig)
        return;
    sigaction(ds.sig, &ds.old, NULL);
    close_pipe();
}
