/* SPDX-License-Identifier: MIT */
/*
 * io_socket.c — socket calls keep their libc contract: recv and
 * recvmsg with MSG_PEEK / MSG_WAITALL / MSG_DONTWAIT, UDP datagrams with
 * their sender, an fd passed with SCM_RIGHTS, accept / accept4 (their
 * flags, parking until a client comes) and connect (done or refused).
 *
 * Registered once per backend (WEFT_IO=uring, WEFT_IO=epoll); outside
 * sanitizer builds also linked against libweft.so (tests/CMakeLists.txt).
 */
#include "wt_io.h"

#include <sys/uio.h>

#define RUN_TEST(...) WT_RUN_TEST(io_socket, __VA_ARGS__)

/* ============================================================ recv / send */

static int root_recv_peek(void *arg)
{
    int a, c;
    WT_REQUIRE_EQ(wt_tcp_pair(&a, &c), 0);
    WT_CHECK_EQ(weft_send(c, "ping", 4, 0), 4);
    char buf[8] = {0};
    WT_CHECK_EQ(weft_recv(a, buf, sizeof buf, MSG_PEEK), 4);
    WT_CHECK(!memcmp(buf, "ping", 4));
    memset(buf, 0, sizeof buf);
    WT_CHECK_EQ(weft_recv(a, buf, sizeof buf, 0), 4);
    WT_CHECK(!memcmp(buf, "ping", 4));
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_recv(a, buf, sizeof buf, MSG_DONTWAIT), -1);
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    WT_CHECK(wt_own_ms_since(t0, &m) < 50);
    weft_close(a);
    weft_close(c);
    return 0;
}

RUN_TEST(recv_peek_then_recv_then_dontwait, root_recv_peek, NULL,
         .procs = 2, .timeout = 10)

static int dribble_sender(void *arg)
{
    int fd = *(int *)arg;
    const char *parts[] = {"abcd", "efgh", "ijkl"};
    for (int i = 0; i < 3; i++) {
        weft_sleep(WT_MS(10));
        WT_CHECK_EQ(weft_send(fd, parts[i], 4, 0), 4);
    }
    return 0;
}

static int root_waitall(void *arg)
{
    int a, c;
    WT_REQUIRE_EQ(wt_tcp_pair(&a, &c), 0);
    weft_thread *s = wt_go(dribble_sender, &c);
    char buf[16] = {0};
    WT_CHECK_EQ(weft_recv(a, buf, 12, MSG_WAITALL), 12);
    WT_CHECK(!memcmp(buf, "abcdefghijkl", 12));
    wt_join(s);
    weft_close(a);
    weft_close(c);
    return 0;
}

RUN_TEST(recv_waitall_gathers_pieces_sent_apart, root_waitall, NULL,
         .procs = 2, .timeout = 10)

/* MSG_PEEK with MSG_WAITALL waits until n bytes are there, and leaves them. */
static int root_peek_waitall(void *arg)
{
    int a, c;
    WT_REQUIRE_EQ(wt_tcp_pair(&a, &c), 0);
    weft_thread *s = wt_go(dribble_sender, &c);
    char buf[16] = {0};
    WT_CHECK_EQ(weft_recv(a, buf, 12, MSG_PEEK | MSG_WAITALL), 12);
    WT_CHECK_MSG(!memcmp(buf, "abcdefghijkl", 12), "peeked '%s'", buf);
    memset(buf, 0, sizeof buf);
    WT_CHECK_EQ(weft_recv(a, buf, 12, MSG_WAITALL), 12);
    WT_CHECK_MSG(!memcmp(buf, "abcdefghijkl", 12), "read '%s'", buf);
    wt_join(s);
    weft_close(a);
    weft_close(c);
    return 0;
}

RUN_TEST(recv_peek_waitall_waits_for_all_and_keeps_it, root_peek_waitall, NULL,
         .procs = 2, .timeout = 10)

struct msg_waitall {
    int fd;
    ssize_t got;
    char buf[16];
};

static int recvmsg_waitall(void *arg)
{
    struct msg_waitall *m = arg;
    struct iovec iov[2] = {{m->buf, 5}, {m->buf + 5, 7}};
    struct msghdr h = {.msg_iov = iov, .msg_iovlen = 2};
    m->got = weft_recvmsg(m->fd, &h, MSG_WAITALL);
    return 0;
}

static int root_recvmsg_waitall(void *arg)
{
    int a, c;
    WT_REQUIRE_EQ(wt_tcp_pair(&a, &c), 0);
    struct msg_waitall m = {.fd = a, .got = -2};
    weft_thread *r = wt_go(recvmsg_waitall, &m);
    weft_thread *s = wt_go(dribble_sender, &c);
    wt_join(s);
    wt_join(r);
    WT_CHECK_EQ(m.got, 12);
    WT_CHECK_MSG(!memcmp(m.buf, "abcdefghijkl", 12), "got '%s'", m.buf);
    weft_close(a);
    weft_close(c);
    return 0;
}

RUN_TEST(recvmsg_waitall_gathers_pieces_sent_apart, root_recvmsg_waitall, NULL,
         .procs = 2, .timeout = 10)

/* --------------------------------------------------- UDP: recvfrom / sendto */

struct udp {
    int fd;
    uint16_t from_port[2];
    ssize_t got[2];
    char buf[2][16];
};

static int udp_reader(void *arg)
{
    struct udp *u = arg;
    for (int i = 0; i < 2; i++) {
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        u->got[i] = weft_recvfrom(u->fd, u->buf[i], sizeof u->buf[i], 0,
                                  (struct sockaddr *)&from, &len);
        u->from_port[i] = ntohs(from.sin_port);
    }
    return 0;
}

static int root_udp(void *arg)
{
    uint16_t rport, sport;
    int r = wt_bound_socket(SOCK_DGRAM, &rport);
    int s = wt_bound_socket(SOCK_DGRAM, &sport);
    WT_REQUIRE(r >= 0 && s >= 0);
    struct udp u = {.fd = r, .got = {-2, -2}};
    weft_thread *t = wt_go(udp_reader, &u);
    WT_CHECK(wt_wait_io_waiting(1));
    struct sockaddr_in to = wt_loopback(rport);
    WT_CHECK_EQ(weft_sendto(s, "one", 3, 0, (struct sockaddr *)&to,
                            sizeof to), 3);
    WT_CHECK_EQ(weft_sendto(s, "three", 5, 0, (struct sockaddr *)&to,
                            sizeof to), 5);
    wt_join(t);
    WT_CHECK_EQ(u.got[0], 3); /* datagram boundaries kept */
    WT_CHECK_EQ(u.got[1], 5);
    WT_CHECK(!memcmp(u.buf[0], "one", 3) && !memcmp(u.buf[1], "three", 5));
    WT_CHECK_EQ(u.from_port[0], sport);
    WT_CHECK_EQ(u.from_port[1], sport);
    weft_close(r);
    weft_close(s);
    return 0;
}

RUN_TEST(udp_recvfrom_parks_and_names_the_sender, root_udp, NULL,
         .procs = 2, .timeout = 10)

/* MSG_WAITALL has no effect on a datagram socket: one datagram per call. */
static int root_udp_waitall(void *arg)
{
    uint16_t rport, sport;
    int r = wt_bound_socket(SOCK_DGRAM, &rport);
    int s = wt_bound_socket(SOCK_DGRAM, &sport);
    WT_REQUIRE(r >= 0 && s >= 0);
    struct sockaddr_in to = wt_loopback(rport);
    WT_CHECK_EQ(weft_sendto(s, "one", 3, 0, (struct sockaddr *)&to,
                            sizeof to), 3);
    WT_CHECK_EQ(weft_sendto(s, "two", 3, 0, (struct sockaddr *)&to,
                            sizeof to), 3);
    WT_CHECK_EQ(wt_set_timeout(r, SO_RCVTIMEO, 1000), 0); /* bounds a failure */
    char buf[64] = {0};
    WT_CHECK_EQ(weft_recv(r, buf, sizeof buf, MSG_WAITALL), 3);
    WT_CHECK_MSG(!strcmp(buf, "one"), "got '%s'", buf);
    weft_close(r);
    weft_close(s);
    return 0;
}

RUN_TEST(udp_recv_waitall_returns_one_datagram, root_udp_waitall, NULL,
         .procs = 2, .timeout = 10)

/* ----------------------------------- recvmsg / sendmsg with SCM_RIGHTS */

union cmsg_space {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
};

struct fdpass {
    int sock, fd;
    ssize_t got;
    char byte;
};

static int fd_receiver(void *arg)
{
    struct fdpass *p = arg;
    union cmsg_space u;
    struct iovec iov = {&p->byte, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    p->got = weft_recvmsg(p->sock, &m, MSG_CMSG_CLOEXEC);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        memcpy(&p->fd, CMSG_DATA(c), sizeof(int));
    return 0;
}

static int send_fd(int sock, int fd)
{
    union cmsg_space u;
    memset(&u, 0, sizeof u);
    struct iovec iov = {"F", 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return (int)weft_sendmsg(sock, &m, 0);
}

static int root_fdpass(void *arg)
{
    int sv[2], pfd[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    WT_REQUIRE_EQ(pipe(pfd), 0);
    struct fdpass p = {.sock = sv[1], .fd = -1, .got = -2};
    weft_thread *t = wt_go(fd_receiver, &p);
    WT_CHECK(wt_wait_io_waiting(1));
    WT_CHECK_EQ(send_fd(sv[0], pfd[0]), 1);
    wt_join(t);
    WT_CHECK_EQ(p.got, 1);
    WT_CHECK_EQ(p.byte, 'F');
    WT_REQUIRE(p.fd >= 0 && p.fd != pfd[0]);
    /* The passed fd is the pipe's read end: it gets what pfd[1] writes. */
    WT_CHECK_EQ(weft_write(pfd[1], "via", 3), 3);
    char buf[4] = {0};
    WT_CHECK_EQ(weft_read(p.fd, buf, sizeof buf), 3);
    WT_CHECK(!memcmp(buf, "via", 3));
    int fds[] = {sv[0], sv[1], pfd[0], pfd[1], p.fd};
    for (int i = 0; i < 5; i++)
        weft_close(fds[i]);
    return 0;
}

RUN_TEST(sendmsg_passes_an_fd_with_scm_rights, root_fdpass, NULL,
         .procs = 2, .timeout = 10)

/* ====================================================== accept / connect */
static int root_accept4_nonblock(void *arg)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    WT_REQUIRE(l >= 0);
    int c = wt_tcp_connect(port);
    WT_REQUIRE(c >= 0);
    int a = weft_accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    WT_REQUIRE(a >= 0);
    WT_CHECK(weft_fcntl(a, F_GETFL) & O_NONBLOCK);
    WT_CHECK(weft_fcntl(a, F_GETFD) & FD_CLOEXEC);
    char buf[4];
    struct wt_sched_mark m;
    wt_sched_mark(&m);
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_read(a, buf, sizeof buf), -1); /* no data: no wait */
    WT_CHECK_EQ(wt_errno(), EAGAIN);
    WT_CHECK(wt_own_ms_since(t0, &m) < 50);
    weft_close(a);
    weft_close(c);
    weft_close(l);
    return 0;
}

RUN_TEST(accept4_sock_nonblock_is_honoured, root_accept4_nonblock, NULL,
         .procs = 2, .timeout = 10)

static int root_accept_blocking(void *arg)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    WT_REQUIRE(l >= 0);
    int c = wt_tcp_connect(port);
    WT_REQUIRE(c >= 0);
    int a = weft_accept(l, NULL, NULL);
    WT_REQUIRE(a >= 0);
    WT_CHECK_EQ(weft_fcntl(a, F_GETFL) & O_NONBLOCK, 0);
    WT_CHECK(wt_kernel_flags(a) & O_NONBLOCK); /* weft's, underneath */
    /* Blocking semantics: a read waits for data instead of EAGAIN. */
    struct wt_late_write w = {c, WT_MS(30)};
    weft_thread *t = wt_go(wt_write_later, &w);
    char buf[8];
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_read(a, buf, sizeof buf), 4);
    WT_CHECK(wt_ms_since(t0) >= 25);
    wt_join(t);
    weft_close(a);
    weft_close(c);
    weft_close(l);
    return 0;
}

RUN_TEST(accept_without_flag_gives_a_blocking_socket,
         root_accept_blocking, NULL, .procs = 2, .timeout = 10)

struct late_connect {
    uint16_t port;
    uint16_t local_port;
    int fd;
};

static int connect_later(void *arg)
{
    struct late_connect *lc = arg;
    weft_sleep(WT_MS(30));
    lc->fd = wt_tcp_connect(lc->port);
    WT_CHECK(lc->fd >= 0);
    lc->local_port = wt_local_port(lc->fd);
    return 0;
}

static int root_accept_parks(void *arg)
{
    struct late_connect lc = {.fd = -1};
    int l = wt_tcp_listen(&lc.port);
    WT_REQUIRE(l >= 0);
    weft_thread *t = wt_go(connect_later, &lc);
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    int64_t t0 = weft_now();
    int a = weft_accept(l, (struct sockaddr *)&peer, &len);
    long ms = wt_ms_since(t0);
    wt_join(t);
    WT_REQUIRE(a >= 0);
    WT_CHECK(ms >= 25);
    WT_CHECK_EQ(len, sizeof peer);
    WT_CHECK_EQ(ntohl(peer.sin_addr.s_addr), INADDR_LOOPBACK);
    WT_CHECK_EQ(ntohs(peer.sin_port), lc.local_port);
    weft_close(a);
    weft_close(lc.fd);
    weft_close(l);
    return 0;
}

RUN_TEST(accept_parks_until_a_client_connects, root_accept_parks, NULL,
         .procs = 1, .timeout = 10)

static int root_connect(void *arg)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    WT_REQUIRE(l >= 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = wt_loopback(port);
    WT_CHECK_EQ(weft_connect(c, (struct sockaddr *)&to, sizeof to), 0);
    int a = weft_accept(l, NULL, NULL);
    WT_REQUIRE(a >= 0);
    WT_CHECK_EQ(weft_send(c, "hi", 2, 0), 2);
    char buf[2];
    WT_CHECK_EQ(weft_recv(a, buf, 2, MSG_WAITALL), 2);
    WT_CHECK_EQ(weft_fcntl(c, F_GETFL) & O_NONBLOCK, 0);
    weft_close(a);
    weft_close(c);
    weft_close(l);
    return 0;
}

RUN_TEST(connect_to_a_listening_port, root_connect, NULL,
         .procs = 2, .timeout = 10)

static int root_refused(void *arg)
{
    /* Bound but not listening: the port is ours, and refuses. */
    uint16_t port;
    int b = wt_bound_socket(SOCK_STREAM, &port);
    WT_REQUIRE(b >= 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = wt_loopback(port);
    WT_CHECK_EQ(weft_connect(c, (struct sockaddr *)&to, sizeof to), -1);
    WT_CHECK_EQ(wt_errno(), ECONNREFUSED);
    weft_close(c);
    weft_close(b);
    return 0;
}

RUN_TEST(connect_to_a_closed_port_is_refused, root_refused, NULL,
         .procs = 2, .timeout = 10)
