/* SPDX-License-Identifier: MIT */
/* guide/server.c: a line server with deadlines, and its clients, in one
 * process. A request "work N" takes N ms and must be answered within
 * 100 ms; a connection idle for 500 ms is closed; a third connection is
 * turned away while two are open. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft.h>

#define REQUEST_TIME (100 * WEFT_MSEC)
#define IDLE_TIME (500 * WEFT_MSEC)

static weft_sem slots = WEFT_SEM_INIT(2); /* connections served at once */

static int say(int fd, const char *s)
{
    ssize_t n = weft_send(fd, s, strlen(s), MSG_NOSIGNAL);
    return n < 0 ? errno : 0;
}

/* One request, in a scope of its own: its deadline ends the work. */
static int answer(int fd, const char *line)
{
    int ms;
    if (sscanf(line, "work %d", &ms) != 1)
        return say(fd, "what?\n");
    weft_scope *req = weft_scope_open();
    if (!req)
        return errno;
    weft_scope_deadline(req, weft_now() + REQUEST_TIME);
    int r = weft_sleep(ms * WEFT_MSEC);    /* the work */
    weft_scope_close(req);
    return say(fd, r == 0 ? "done\n" : "timeout\n");
}

/* One connection. Its scope's deadline moves on at every request: when
 * it passes, the read fails with ETIMEDOUT and the connection ends. */
static int connection(void *arg)
{
    int fd = (int)(intptr_t)arg;
    weft_scope *idle = weft_scope_open();
    int r = idle ? 0 : errno;
    while (r == 0) {
        char line[64];
        weft_scope_deadline(idle, weft_now() + IDLE_TIME);
        /* One request a read: a client waits for each reply. */
        ssize_t n = weft_read(fd, line, sizeof line - 1);
        if (n <= 0)
            break;                         /* closed, idle, or cancelled */
        line[n] = '\0';
        r = answer(fd, line);
    }
    if (idle)
        weft_scope_close(idle);
    weft_close(fd);
    weft_sem_release(&slots);
    return 0;              /* a client's trouble is not the server's */
}

static int server(void *arg)
{
    int listener = *(int *)arg;
    for (;;) {
        int fd = weft_accept(listener, NULL, NULL);
        if (fd < 0)
            return errno;                  /* ECANCELED: shutting down */
        if (weft_sem_timedacquire(&slots, 0) != 0) {
            say(fd, "busy\n");             /* full: turned away at once */
            weft_close(fd);
            continue;
        }
        weft_attr attr = {.name = "connection", .detached = true};
        if (!weft_go_with(&attr, connection, (void *)(intptr_t)fd)) {
            weft_sem_release(&slots);      /* no memory for a thread */
            weft_close(fd);
        }
    }
}

/* ---------------------------------------------- the clients, for the demo */

static int dial(const struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && weft_connect(fd, (const void *)addr, sizeof *addr)) {
        weft_close(fd);
        fd = -1;
    }
    return fd;
}

/* Sends request (if any) on fd and prints the reply. */
static void ask(const char *who, int fd, const char *request)
{
    char reply[64] = "";
    if (request && say(fd, request))
        return;
    ssize_t n = weft_read(fd, reply, sizeof reply - 1);
    if (!request)
        request = "(nothing)\n";
    printf("%s: %.*s -> %s", who, (int)strcspn(request, "\n"), request,
           n > 0 ? reply : n == 0 ? "(closed)\n" : "(error)\n");
}

static int listen_local(struct sockaddr_in *addr)
{
    socklen_t len = sizeof *addr;
    *addr = (struct sockaddr_in){.sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (const void *)addr, len) || listen(fd, 16) ||
        getsockname(fd, (void *)addr, &len))
        return -1;
    return fd;
}

static int root(void *arg)
{
    (void)arg;
    struct sockaddr_in addr;
    int listener = listen_local(&addr);
    if (listener < 0)
        return errno;
    weft_thread *srv = weft_go(server, &listener);
    int a = dial(&addr), b = dial(&addr), c = -1;
    bool demo = srv && a >= 0 && b >= 0;
    if (demo) {
        ask("a", a, "work 10\n");              /* done */
        ask("a", a, "work 300\n");             /* timeout, after 100 ms */
        ask("b", b, "work 1\n");               /* done: two served now */
        if ((c = dial(&addr)) >= 0)
            ask("c", c, NULL);                 /* busy */
        weft_sleep(IDLE_TIME + 100 * WEFT_MSEC);
        ask("a", a, NULL);                     /* closed: idle too long */
    }
    if (srv) {
        weft_cancel(srv);          /* the server and its connections end */
        weft_join(srv, NULL);      /* before the listener is closed */
    }
    weft_close(a), weft_close(b), weft_close(c), weft_close(listener);
    return demo ? 0 : EIO;
}

int main(void)
{
    return weft_run(root, NULL, NULL) ? 1 : 0;
}
