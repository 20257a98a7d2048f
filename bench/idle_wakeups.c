/* SPDX-License-Identifier: MIT */
/* B10 idle_wakeups: a runtime whose virtual threads all wait on pipe reads
 * and channel receives, no timer armed, for S seconds (default 10;
 * argv[1]). Counts the context switches, voluntary and involuntary, of
 * every OS thread of the process over those seconds and prints them per
 * second. An idle runtime should not wake at all.
 *
 * The measuring is done by a plain OS thread outside the runtime, which
 * touches no weft object until the window is over: it waits until every
 * virtual thread is parked, lets the runtime settle for a second, reads
 * the counters, sleeps S seconds, reads them again, then writes to the
 * pipes and closes the channel, which ends the run. The counters are
 * /proc/self/task/<tid>/status's voluntary_ctxt_switches and
 * nonvoluntary_ctxt_switches, summed over every task but the measurer
 * (its own sleep is not the runtime's). -v prints each task's count. */
#define _GNU_SOURCE /* gettid */
#include <weft.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NPIPES = 4, NRECV = 4 };

static int pipes[NPIPES][2];
static weft_chan *gate;
static atomic_int parked;
static double seconds = 10;
static bool verbose;

/* ------------------------------------------------------------ counting */

/* One task's voluntary + involuntary switches, or -1 if it is gone. */
static long task_switches(long tid)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long sum = 0, v;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
            sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
            sum += v;
    fclose(f);
    return sum;
}

/* The switches of up to 64 tasks, by tid. */
struct snap {
    int n;
    long tid[64], count[64];
};

static void snapshot(struct snap *s)
{
    s->n = 0;
    DIR *d = opendir("/proc/self/task");
    for (struct dirent *e; d && (e = readdir(d)) && s->n < 64;) {
        if (e->d_name[0] == '.')
            continue;
        s->tid[s->n] = atol(e->d_name);
        s->count[s->n] = task_switches(s->tid[s->n]);
        if (s->count[s->n] >= 0) /* not gone meanwhile */
            s->n++;
    }
    if (d)
        closedir(d);
}

/* Switches between snapshots a and b of every task but `skip`: a task
 * that started meanwhile counts from 0. -v prints each one. */
static long switches_between(const struct snap *a, const struct snap *b,
                             long skip)
{
    long sum = 0;
    for (int i = 0; i < b->n; i++) {
        long before = 0;
        for (int j = 0; j < a->n; j++)
            if (a->tid[j] == b->tid[i])
                before = a->count[j];
        if (verbose)
            fprintf(stderr, "  task %ld%s: %ld switches\n", b->tid[i],
                    b->tid[i] == skip ? " (measurer)" : "",
                    b->count[i] - before);
        if (b->tid[i] != skip)
            sum += b->count[i] - before;
    }
    return sum;
}

/* ----------------------------------------------------------- the waiters */

static int pipe_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;
    atomic_fetch_add(&parked, 1);
    ssize_t n = weft_read(fd, &c, 1);
    return n == 1 ? 0 : n < 0 ? errno : EPROTO;
}

static int chan_receiver(void *arg)
{
    int v;
    atomic_fetch_add(&parked, 1);
    int err = weft_chan_recv(gate, &v);
    return err == EPIPE ? 0 : err ? err : EPROTO;
}

static int root(void *arg)
{
    for (int i = 0; i < NPIPES; i++)
        if (!weft_go(pipe_reader, (void *)(intptr_t)pipes[i][0]))
            return errno;
    for (int i = 0; i < NRECV; i++)
        if (!weft_go(chan_receiver, NULL))
            return errno;
    return 0; /* the root waits for its children: a join, no timer */
}

/* -------------------------------------------------------------- measurer */

static int measure_result;

static void *measurer(void *arg)
{
    while (atomic_load(&parked) < NPIPES + NRECV)
        usleep(10000);
    sleep(1); /* the last ones park; the runtime settles */
    struct snap a, b;
    snapshot(&a);
    usleep((useconds_t)(seconds * 1e6));
    snapshot(&b);
    long n = switches_between(&a, &b, (long)gettid());
    printf("idle_wakeups %.2f switches/s\n", n / seconds);
    printf("idle_switches %ld switches in %.0f s\n", n, seconds);
    fflush(stdout);
    for (int i = 0; i < NPIPES; i++)
        if (write(pipes[i][1], "x", 1) != 1)
            measure_result = errno;
    weft_chan_close(gate);
    return NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = true;
        else if ((seconds = strtod(argv[i], NULL)) <= 0) {
            fprintf(stderr, "usage: %s [-v] [SECONDS]\n", argv[0]);
            return 2;
        }
    }
    for (int i = 0; i < NPIPES; i++)
        if (pipe(pipes[i]) != 0) {
            perror("pipe");
            return 1;
        }
    if (!(gate = weft_chan_make(sizeof(int), 0))) {
        perror("weft_chan_make");
        return 1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, measurer, NULL) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    int err = weft_run(root, NULL, NULL);
    pthread_join(t, NULL);
    weft_chan_free(gate);
    if (!err)
        err = measure_result;
    if (err)
        fprintf(stderr, "idle_wakeups: %s\n", strerror(err));
    return err ? 1 : 0;
}
