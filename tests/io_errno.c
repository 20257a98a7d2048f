/* SPDX-License-Identifier: MIT */
/*
 * io_errno.c — errno survives a parked read, poll, accept and write:
 * the call that parks a virtual thread, and resumes it maybe on another
 * carrier, leaves errno as the thread set it.
 *
 * Registered once per backend (WEFT_IO=uring, WEFT_IO=epoll); outside
 * sanitizer builds also linked against libweft.so (tests/CMakeLists.txt).
 */
#include "wt_io.h"

#define RUN_TEST(...) WT_RUN_TEST(io_errno, __VA_ARGS__)

#define SENTINEL 4242

enum { E_READ, E_POLL, E_ACCEPT, E_WRITE };

struct keep_errno {
    int op, fd;
    long result;
    int err;
};

static int errno_keeper(void *arg)
{
    struct keep_errno *k = arg;
    char buf[4096] = {0};
    struct pollfd p = {k->fd, POLLIN, 0};
    wt_set_errno(SENTINEL);
    switch (k->op) {
    case E_READ: k->result = read(k->fd, buf, sizeof buf); break;
    case E_POLL: k->result = poll(&p, 1, -1); break;
    case E_ACCEPT: k->result = accept(k->fd, NULL, NULL); break;
    case E_WRITE: k->result = write(k->fd, buf, sizeof buf); break;
    }
    k->err = wt_errno();
    return 0;
}

static int root_errno(void *arg)
{
    struct keep_errno k = {.op = (int)(intptr_t)arg, .result = -2};
    int sv[2] = {-1, -1}, l = -1;
    uint16_t port = 0;
    size_t pre = 0;
    if (k.op == E_ACCEPT) {
        l = wt_tcp_listen(&port);
        WT_REQUIRE(l >= 0);
        k.fd = l;
    } else {
        WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        k.fd = sv[1];
        if (k.op == E_WRITE)
            pre = wt_fill_socket(sv[1]);
    }
    weft_thread *t = wt_go(errno_keeper, &k);
    WT_CHECK(wt_wait_io_waiting(1)); /* it parked */
    if (k.op == E_ACCEPT) {
        int c = wt_tcp_connect(port);
        WT_CHECK(c >= 0);
        wt_join(t);
        weft_close(c);
    } else if (k.op == E_WRITE) {
        WT_CHECK_EQ(wt_skip_bytes(sv[0], pre + 4096), pre + 4096);
        wt_join(t);
    } else {
        WT_CHECK_EQ(weft_write(sv[0], "x", 1), 1);
        wt_join(t);
    }
    WT_CHECK_MSG(k.result >= 0, "the call failed: errno %d", k.err);
    WT_CHECK_EQ(k.err, SENTINEL);
    if (k.op == E_ACCEPT)
        weft_close((int)k.result);
    weft_close(l);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(errno_survives_a_parked_read, root_errno, E_READ,
         .procs = 2, .timeout = 10)
RUN_TEST(errno_survives_a_parked_poll, root_errno, E_POLL,
         .procs = 2, .timeout = 10)
RUN_TEST(errno_survives_a_parked_accept, root_errno, E_ACCEPT,
         .procs = 2, .timeout = 10)
RUN_TEST(errno_survives_a_parked_write, root_errno, E_WRITE,
         .procs = 2, .timeout = 10)
