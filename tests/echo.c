/* SPDX-License-Identifier: MIT */
/*
 * echo.c — the echo example (examples/echo.c) run as a child process and
 * driven over loopback: bytes come back unchanged, many clients at once,
 * a large payload written and read back concurrently through one
 * connection (so the server's writes meet a full socket buffer and park),
 * the idle time-out, the connection bound, and a clean exit on SIGTERM
 * with clients connected. Registered once per I/O backend (WEFT_IO=uring,
 * WEFT_IO=epoll).
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

/* ---------------------------------------------------------- idle time-out */

static void start_echo_with(wt_server *s, char *opt, char *value)
{
    char *args[] = {"echo", opt, value, NULL};
    wt_server_start(s, WT_ECHO_PROG, args);
}

/* A silent client is cut off; one that keeps talking is not, however
 * long it stays. */
Test(echo, idle_connection_is_closed_after_idle_ms, .timeout = 60)
{
    wt_server s;
    start_echo_with(&s, "--idle-ms", "400");
    int quiet = wt_connect(s.port), busy = wt_connect(s.port);
    expect_echo(quiet, "hello");
    for (int i = 0; i < 12; i++) { /* 1.2 s of a message each 100 ms */
        expect_echo(busy, "still here");
        usleep(100000);
    }
    cr_assert(wt_wait_eof(quiet, WT_IO_TIMEOUT_MS), "the idle one is open");
    expect_echo(busy, "and still served");
    close(quiet);
    close(busy);
    wt_server_stop(&s);
}

/* ... after --idle-ms: not before (15/16 of it, as the deadline moves
 * lazily), and not long after. */
Test(echo, idle_connection_is_cut_off_on_time, .timeout = 60)
{
    wt_server s;
    start_echo_with(&s, "--idle-ms", "300");
    /* From before the connect: the deadline starts no earlier, and a
     * client the kernel delays after the echo must not count that time
     * as the server's. */
    int64_t t0 = wt_server_now_ms();
    int fd = wt_connect(s.port);
    expect_echo(fd, "hello");
    int64_t left = 270 - (wt_server_now_ms() - t0);
    if (left > 0)
        cr_assert(!wt_readable(fd, (int)left), "closed before the idle time");
    cr_assert(wt_wait_eof(fd, WT_IO_TIMEOUT_MS), "still open");
    int64_t dt = wt_server_now_ms() - t0;
    cr_assert_lt(dt, 300 + WT_IO_TIMEOUT_MS / 10, "closed after %lld ms",
                 (long long)dt);
    close(fd);
    wt_server_stop(&s);
}

/* A client that sends and never reads leaves the server blocked in a
 * write: the idle time-out ends that write too, not just a wait for
 * input. */
Test(echo, a_client_that_never_reads_is_cut_off, .timeout = 60)
{
    wt_server s;
    start_echo_with(&s, "--idle-ms", "300");
    int fd = wt_connect(s.port);
    cr_assert_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    static char chunk[65536];
    int64_t end = wt_server_now_ms() + WT_IO_TIMEOUT_MS;
    for (;;) { /* until both directions' buffers are full */
        ssize_t r = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
        cr_assert(r > 0 || errno == EAGAIN || errno == EINTR, "send: %s",
                  strerror(errno));
        if (r < 0 && errno == EAGAIN && !wt_poll(fd, POLLOUT, 200))
            break;
        cr_assert_lt(wt_server_now_ms(), end, "the buffers never filled");
    }
    short ev = wt_poll(fd, POLLRDHUP, WT_IO_TIMEOUT_MS);
    cr_assert(ev & (POLLRDHUP | POLLHUP | POLLERR),
              "the server is still writing (revents %#x)", ev);
    close(fd);
    wt_server_stop(&s);
}

Test(echo, bad_idle_ms_is_refused, .timeout = 30)
{
    char *args[] = {"echo", "--idle-ms", "0", NULL};
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);
        execv(WT_ECHO_PROG, args);
        _exit(127);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x", st);
}

/* ------------------------------------------------------ connection bound */

/* Beyond --max-conns a client is closed at once, not left waiting. */
Test(echo, a_client_beyond_max_conns_is_closed_at_once, .timeout = 60)
{
    wt_server s;
    start_echo_with(&s, "--max-conns", "1");
    int first = wt_connect(s.port);
    expect_echo(first, "one");
    int second = wt_connect(s.port);
    cr_assert(wt_wait_eof(second, WT_IO_TIMEOUT_MS), "left waiting");
    close(second);
    expect_echo(first, "the first is still served");
    close(first);
    wt_server_stop(&s);
}
