/* SPDX-License-Identifier: MIT */
/* bench/c10k_client.c — B8 c10k's load generator: plain epoll, no weft, so
 * that it loads every echo server the same way.
 *
 *   c10k_client PORT [N [HOST]]     (N = 10000, HOST = 127.0.0.1)
 *
 * Phase 1: opens N TCP connections to HOST:PORT, at most WINDOW connects in
 * flight at once (the server's accept queue is not flooded), and prints
 * "connected N" once every one has completed its handshake. They then sit
 * idle: nothing is sent.
 * Phase 2: waits for a line (or end of file) on stdin, which the driver
 * sends once it has read the server's RSS.
 * Phase 3: sends one small message on each connection (its index, so a
 * mix-up shows), reads each echo back and checks it, and prints
 * "echoed OK of N" and "c10k_echo_ms T ms" (first send to last echo).
 *
 * Exit status: 0 if every connection was made and echoed its message; 1 if
 * any failed (each kind of failure counted on stderr); 2 on a usage error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    WINDOW = 256,          /* connects in flight at once */
    MSG_MAX = 32,          /* a message's size, at most */
    CONNECT_SECS = 60,     /* phase 1's time limit */
    ECHO_SECS = 60,        /* phase 3's time limit */
};

/* One connection. got counts the bytes of its echo read so far; valid in
 * phase 3 only. */
struct conn {
    int fd;
    int got;
    char msg[MSG_MAX];
    int len;
};

static struct conn *conns;
static int nconns;
static int ep;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Raises RLIMIT_NOFILE's soft limit to at least want (the hard limit
 * too when allowed). Returns 0, or -1 with a message on stderr. */
static int raise_nofile(rlim_t want)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0)
        return perror("getrlimit"), -1;
    if (r.rlim_cur >= want)
        return 0;
    if (r.rlim_max < want)
        r.rlim_max = want;
    r.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
        fprintf(stderr, "c10k_client: cannot raise the open-file limit to "
                "%llu: %s\n", (unsigned long long)want, strerror(errno));
        return -1;
    }
    return 0;
}

/* Starts a non-blocking connect for conns[i], watched for EPOLLOUT.
 * Returns 0, or -1 with a message on stderr. */
static int start_connect(int i, const struct sockaddr_in *to)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return perror("socket"), -1;
    conns[i].fd = fd;
    if (connect(fd, (const struct sockaddr *)to, sizeof *to) != 0 &&
        errno != EINPROGRESS) {
        fprintf(stderr, "c10k_client: connect #%d: %s\n", i, strerror(errno));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        return perror("epoll_ctl"), -1;
    return 0;
}

/* A connect of conns[i] has completed: stops watching it. Returns 0 if it
 * succeeded, or -1 with a message on stderr. */
static int finish_connect(int i)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(conns[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    struct epoll_event ev = {.events = 0, .data.u32 = i};
    epoll_ctl(ep, EPOLL_CTL_MOD, conns[i].fd, &ev);
    if (err != 0) {
        fprintf(stderr, "c10k_client: connect #%d: %s\n", i, strerror(err));
        return -1;
    }
    return 0;
}

/* Phase 1: connects all nconns, WINDOW at a time. Returns how many
 * connected; stops at the first failure or after CONNECT_SECS. */
static int connect_all(const struct sockaddr_in *to)
{
    int started = 0, done = 0;
    double deadline = now_ms() + CONNECT_SECS * 1e3;
    struct epoll_event evs[WINDOW];
    while (done < nconns) {
        while (started < nconns && started - done < WINDOW)
            if (start_connect(started++, to) != 0)
                return done;
        if (now_ms() > deadline) {
            fprintf(stderr, "c10k_client: connects took over %d s\n",
                    CONNECT_SECS);
            return done;
        }
        int n = epoll_wait(ep, evs, WINDOW, 100);
        for (int k = 0; k < n; k++) {
            if (finish_connect(evs[k].data.u32) != 0)
                return done;
            done++;
        }
    }
    return done;
}

/* Sends conns[i]'s message and watches for its echo. Returns 0, or -1 with
 * a message on stderr. */
static int send_one(int i)
{
    struct conn *c = &conns[i];
    c->len = snprintf(c->msg, sizeof c->msg, "c10k %07d\n", i);
    ssize_t n = send(c->fd, c->msg, c->len, MSG_NOSIGNAL);
    if (n != c->len) {
        fprintf(stderr, "c10k_client: send #%d: %s\n", i,
                n < 0 ? strerror(errno) : "short send");
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        return perror("epoll_ctl"), -1;
    return 0;
}

/* Reads what has come back on conns[i]. Returns 1 once its whole echo is
 * in and matches, 0 if more is to come, -1 on a failure (said on stderr). */
static int read_echo(int i)
{
    struct conn *c = &conns[i];
    char buf[MSG_MAX];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        fprintf(stderr, "c10k_client: echo #%d: %s\n", i,
                n < 0 ? strerror(errno) : "connection closed");
        return -1;
    }
    if (c->got + n > c->len || memcmp(buf, c->msg + c->got, n) != 0) {
        fprintf(stderr, "c10k_client: echo #%d: wrong bytes\n", i);
        return -1;
    }
    c->got += n;
    if (c->got < c->len)
        return 0;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    return 1;
}

/* Phase 3: one message on each connection and its echo. Returns how many
 * echoed correctly; failures are said on stderr. */
static int echo_all(void)
{
    int ok = 0, failed = 0;
    for (int i = 0; i < nconns; i++)
        if (send_one(i) != 0)
            failed++;
    double deadline = now_ms() + ECHO_SECS * 1e3;
    struct epoll_event evs[256];
    while (ok + failed < nconns) {
        if (now_ms() > deadline) {
            fprintf(stderr, "c10k_client: %d echoes missing after %d s\n",
                    nconns - ok - failed, ECHO_SECS);
            break;
        }
        int n = epoll_wait(ep, evs, 256, 100);
        for (int k = 0; k < n; k++) {
            int r = read_echo(evs[k].data.u32);
            if (r < 0)
                epoll_ctl(ep, EPOLL_CTL_DEL, conns[evs[k].data.u32].fd, NULL);
            ok += r > 0;
            failed += r < 0;
        }
    }
    return ok;
}

/* Reads PORT [N [HOST]] into to and nconns. Returns 0, or -1 on a bad
 * argument. */
static int parse_args(int argc, char **argv, struct sockaddr_in *to)
{
    if (argc < 2 || argc > 4)
        return -1;
    char *end;
    long port = strtol(argv[1], &end, 10);
    if (*end || port <= 0 || port > 65535)
        return -1;
    long n = argc > 2 ? strtol(argv[2], &end, 10) : 10000;
    if (*end || n <= 0 || n > 1000000)
        return -1;
    nconns = n;
    to->sin_family = AF_INET;
    to->sin_port = htons(port);
    return inet_pton(AF_INET, argc > 3 ? argv[3] : "127.0.0.1",
                     &to->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct sockaddr_in to = {0};
    if (parse_args(argc, argv, &to) != 0) {
        fprintf(stderr, "usage: c10k_client PORT [N [HOST]]\n");
        return 2;
    }
    if (raise_nofile(nconns + 64) != 0)
        return 1;
    conns = calloc(nconns, sizeof *conns);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || ep < 0)
        return perror("c10k_client"), 1;

    int connected = connect_all(&to);
    printf("connected %d\n", connected);
    fflush(stdout);
    if (connected < nconns)
        return 1;
    char line[64];
    if (!fgets(line, sizeof line, stdin) && ferror(stdin))
        return perror("c10k_client: stdin"), 1;

    double t0 = now_ms();
    int ok = echo_all();
    printf("echoed %d of %d\n", ok, nconns);
    printf("c10k_echo_ms %.1f ms\n", now_ms() - t0);
    return ok == nconns ? 0 : 1;
}
