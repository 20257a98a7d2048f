/* SPDX-License-Identifier: MIT */
/*
 * loops.c — see loops.h. Each loop owns its listener, its connections and
 * everything they allocate: nothing is shared between threads after
 * start-up, as a libuv program that scales by loops is written.
 */
#include "loops.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LOOPS 64

typedef struct loop_ctx {
    pthread_t thread;
    int fd;                     /* the listening socket, until uv owns it */
    loops_accept_fn *on_accept;
    loops_init_fn *init;
} loop_ctx;

/* A socket bound to 127.0.0.1:port with SO_REUSEPORT, or -1 (said why). */
static int bind_reuseport(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&a, sizeof a)) {
        fprintf(stderr, "listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &n))
        return -1;
    return ntohs(a.sin_port);
}

static void *run_loop(void *arg)
{
    loop_ctx *ctx = arg;
    uv_loop_t loop;
    uv_tcp_t listener;
    int e = uv_loop_init(&loop);
    if (!e)
        e = uv_tcp_init(&loop, &listener);
    if (!e)
        e = uv_tcp_open(&listener, ctx->fd);
    if (!e)
        e = uv_listen((uv_stream_t *)&listener, SOMAXCONN, ctx->on_accept);
    if (e) {
        fprintf(stderr, "libuv: %s\n", uv_strerror(e));
        exit(1);
    }
    if (ctx->init)
        ctx->init(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

/* --port P --procs N [--max-conns 0]; -1 on a usage error. */
static int parse_args(int argc, char **argv, int *port, int *procs)
{
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return -1;
        long v = strtol(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--port") && v >= 0 && v < 65536)
            *port = (int)v;
        else if (!strcmp(argv[i], "--procs") && v >= 1 && v <= MAX_LOOPS)
            *procs = (int)v;
        else if (!strcmp(argv[i], "--max-conns") && v == 0)
            continue; /* no cap: the only setting this peer has */
        else
            return -1;
    }
    return 0;
}

int loops_main(int argc, char **argv, loops_accept_fn *on_accept,
               loops_init_fn *init)
{
    int port = 0, procs = 2;
    if (parse_args(argc, argv, &port, &procs)) {
        fprintf(stderr, "usage: %s [--port P] [--procs 1..%d] "
                        "[--max-conns 0]\n", argv[0], MAX_LOOPS);
        return 2;
    }
    static loop_ctx ctx[MAX_LOOPS];
    for (int i = 0; i < procs; i++) {
        /* The first socket picks the port (port 0); the others share it. */
        if ((ctx[i].fd = bind_reuseport(port)) < 0)
            return 1;
        if (i == 0 && (port = bound_port(ctx[0].fd)) < 0)
            return 1;
        ctx[i].on_accept = on_accept;
        ctx[i].init = init;
    }
    for (int i = 0; i < procs; i++) {
        int e = pthread_create(&ctx[i].thread, NULL, run_loop, &ctx[i]);
        if (e) {
            fprintf(stderr, "pthread_create: %s\n", strerror(e));
            return 1;
        }
    }
    /* uv_listen has not necessarily run yet, but the sockets are bound:
     * connections queue until it does, listen(2) being what accepts them.
     * So say it only once every thread has listened. */
    for (;;) {
        int listening = 0;
        for (int i = 0; i < procs; i++) {
            int on = 0;
            socklen_t n = sizeof on;
            getsockopt(ctx[i].fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &n);
            listening += on;
        }
        if (listening == procs)
            break;
        usleep(1000);
    }
    printf("listening on %d\n", port);
    fflush(stdout);
    pthread_join(ctx[0].thread, NULL);
    return 1;
}

uv_tcp_t *loops_accept(uv_stream_t *listener, int status, size_t size)
{
    uv_tcp_t *t = status < 0 ? NULL : calloc(1, size);
    if (!t)
        return NULL;
    uv_tcp_init(listener->loop, t);
    if (uv_accept(listener, (uv_stream_t *)t)) {
        uv_close((uv_handle_t *)t, loops_free_handle);
        return NULL;
    }
    uv_tcp_nodelay(t, 1);
    return t;
}

void loops_free_handle(uv_handle_t *h)
{
    free(h);
}
