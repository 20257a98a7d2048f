/*
 * echo.c — the echo example (examples/echo.c) run as a child process and
 * driven over loopback: bytes come back unchanged, many clients at once,
 * a large payload written and read back concurrently through one
 * connection (so the server's writes meet a full socket buffer and park),
 * and a clean exit on SIGTERM with clients connected. Registered once per
 * I/O backend (WEFT_IO=uring, WEFT_IO=epoll).
 */
#include "wt_server.h"

#ifndef WT_ECHO_PROG
#error "WT_ECHO_PROG: the path of the built examples/echo"
#endif

static void start_echo(wt_server *s)
{
    char *args[] = {"echo", NULL};
    wt_server_start(s, WT_ECHO_PROG, args);
}

static void expect_echo(int fd, const char *msg)
{
    size_t n = strlen(msg);
    char back[256];
    cr_assert_lt(n, sizeof back);
    wt_send_all(fd, msg, n);
    wt_recv_exact(fd, back, n);
    cr_assert(memcmp(back, msg, n) == 0, "sent '%s', got '%.*s'", msg, (int)n,
              back);
}

Test(echo, bytes_come_back, .timeout = 60)
{
    wt_server s;
    start_echo(&s);
    int fd = wt_connect(s.port);
    expect_echo(fd, "hello, weft");
    expect_echo(fd, "x");
    expect_echo(fd, "\r\n\t\x7f\xff");
    close(fd);
    wt_server_stop(&s);
}

Test(echo, many_clients_at_once, .timeout = 120)
{
    enum { N = 200 };
    wt_server s;
    start_echo(&s);
    int fd[N];
    char msg[N][32];
    for (int i = 0; i < N; i++) {
        fd[i] = wt_connect(s.port);
        snprintf(msg[i], sizeof msg[i], "client %d says hi\n", i);
        wt_send_all(fd[i], msg[i], strlen(msg[i]));
    }
    for (int i = 0; i < N; i++) {
        char back[32];
        size_t n = strlen(msg[i]);
        wt_recv_exact(fd[i], back, n);
        cr_assert(memcmp(back, msg[i], n) == 0, "client %d got another's", i);
    }
    wt_server_stop(&s); /* with all of them connected */
    for (int i = 0; i < N; i++)
        close(fd[i]);
}

/* A non-blocking call's byte count: 0 for EAGAIN or EINTR. */
static size_t moved(ssize_t r, const char *what)
{
    bool retry = r < 0 && (errno == EAGAIN || errno == EINTR);
    cr_assert(r > 0 || retry, "%s: %s", what, r == 0 ? "EOF" : strerror(errno));
    return r > 0 ? (size_t)r : 0;
}

/* Sends src and receives as much back into dst, both at once, on a
 * non-blocking fd, within twice the I/O time-out. */
static void pump(int fd, const unsigned char *src, unsigned char *dst,
                 size_t n)
{
    cr_assert_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    size_t sent = 0, got = 0;
    int64_t end = wt_server_now_ms() + WT_IO_TIMEOUT_MS * 2;
    while (got < n) {
        int left = (int)(end - wt_server_now_ms());
        cr_assert_gt(left, 0, "stalled: %zu sent, %zu received", sent, got);
        short ev = wt_poll(fd, POLLIN | (sent < n ? POLLOUT : 0), left);
        if (ev & POLLOUT) {
            size_t chunk = n - sent < 65536 ? n - sent : 65536;
            sent += moved(send(fd, src + sent, chunk, MSG_NOSIGNAL), "send");
        }
        if (ev & (POLLIN | POLLHUP | POLLERR))
            got += moved(recv(fd, dst + got, n - got, 0), "recv");
    }
}

Test(echo, large_payload_through_one_connection, .timeout = 120)
{
    size_t n = 4 << 20;
    unsigned char *src = malloc(n), *dst = malloc(n);
    cr_assert(src && dst);
    for (size_t i = 0; i < n; i++)
        src[i] = (unsigned char)(i ^ (i >> 11));
    wt_server s;
    start_echo(&s);
    int fd = wt_connect(s.port);
    pump(fd, src, dst, n);
    cr_assert(memcmp(src, dst, n) == 0, "bytes differ");
    close(fd);
    wt_server_stop(&s);
    free(src);
    free(dst);
}
