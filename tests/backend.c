/* SPDX-License-Identifier: MIT */
/*
 * backend.c — the automatic choice of I/O backend: io_uring where the
 * kernel allows it, epoll when io_uring is forbidden (a seccomp profile
 * that refuses io_uring_setup, as container runtimes install). WEFT_IO and
 * weft_config.io themselves are tested in io_stats.c.
 *
 * Each test runs in its own process, so a test may install a seccomp
 * filter for the rest of its life.
 */
#include "wt.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/syscall.h>

/* Makes io_uring_setup fail with EPERM in this process from now on. */
static void forbid_io_uring(void)
{
    wt_skip_if_emulated("no seccomp filters");
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0],
                              .filter = code};
    cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

static char g_backend[8];

/* Records the backend in use, and proves it carries I/O: a read parks
 * until a sibling writes. */
static int root_use_io(void *arg)
{
    weft_runtime_stats st;
    WT_REQUIRE_EQ(weft_stats(&st), 0);
    memcpy(g_backend, st.io_backend, sizeof g_backend);
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char c = 0;
    WT_CHECK_EQ(weft_write(sv[0], "x", 1), 1);
    WT_CHECK_EQ(weft_read(sv[1], &c, 1), 1);
    WT_CHECK_EQ(c, 'x');
    WT_CHECK_EQ(weft_wait_fd(sv[1], POLLIN, weft_now() + WT_MS(20)),
                ETIMEDOUT);
    weft_close(sv[0]);
    weft_close(sv[1]);
    return 0;
}

static int run_with(unsigned io)
{
    weft_config cfg = {.io = io};
    return weft_run(root_use_io, NULL, &cfg);
}

static bool kernel_allows_io_uring(void)
{
    unsetenv("WEFT_IO");
    return run_with(WEFT_IO_URING) == 0;
}

Test(backend, auto_falls_back_to_epoll_when_io_uring_is_forbidden,
     .timeout = 20)
{
    unsetenv("WEFT_IO");
    forbid_io_uring();
    cr_assert_eq(run_with(WEFT_IO_AUTO), 0);
    wt_assert_clean();
    cr_assert(strcmp(g_backend, "epoll") == 0, "backend %s", g_backend);
}

Test(backend, uring_asked_for_but_forbidden_fails_with_its_error,
     .timeout = 20)
{
    unsetenv("WEFT_IO");
    forbid_io_uring();
    cr_assert_eq(run_with(WEFT_IO_URING), EPERM);
}

Test(backend, auto_prefers_io_uring_where_the_kernel_allows_it,
     .timeout = 20)
{
    if (!kernel_allows_io_uring())
        cr_skip_test("the kernel refuses io_uring: nothing to prefer (the "
                     "fallback test covers this kernel)");
    cr_assert_eq(run_with(WEFT_IO_AUTO), 0);
    wt_assert_clean();
    cr_assert(strcmp(g_backend, "uring") == 0, "backend %s", g_backend);
}
