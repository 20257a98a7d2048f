/* SPDX-License-Identifier: MIT */
/*
 * io_stats.c — what weft tells about I/O: the backend in use, as
 * WEFT_IO and weft_config.io ask; the threads waiting on fds
 * (weft_stats); and a thread parked in read, in weft_dump.
 *
 * Registered once per backend (WEFT_IO=uring, WEFT_IO=epoll); outside
 * sanitizer builds also linked against libweft.so (tests/CMakeLists.txt).
 */
#include "wt_io.h"

#include <sys/mman.h>

#define RUN_TEST(...) WT_RUN_TEST(io_stats, __VA_ARGS__)

static char g_backend[8];
static unsigned g_io_waiting[2];

static int root_backend(void *arg)
{
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    memcpy(g_backend, st.io_backend, sizeof g_backend);
    return 0;
}

static void expect_backend(const char *want)
{
    WT_RUN(root_backend, NULL, .procs = 1);
    cr_assert(!strcmp(g_backend, want), "backend '%s', not %s", g_backend,
              want);
}

Test(io_stats, stats_name_the_backend_weft_io_asks_for, .timeout = 10)
{
    const char *env = getenv("WEFT_IO");
    WT_RUN(root_backend, NULL, .procs = 1);
    if (env && (!strcmp(env, "uring") || !strcmp(env, "epoll")))
        cr_assert(!strcmp(g_backend, env), "backend '%s', not %s",
                  g_backend, env);
    else
        cr_assert(!strcmp(g_backend, "uring") || !strcmp(g_backend, "epoll"),
                  "backend '%s'", g_backend);
}

Test(io_stats, weft_io_epoll_is_honoured, .timeout = 10)
{
    setenv("WEFT_IO", "epoll", 1);
    expect_backend("epoll");
}

Test(io_stats, weft_io_uring_is_honoured, .timeout = 10)
{
    setenv("WEFT_IO", "uring", 1);
    expect_backend("uring");
}

Test(io_stats, config_io_picks_the_backend, .timeout = 10)
{
    unsetenv("WEFT_IO");
    weft_config cfg = {0};
    cfg.io = WEFT_IO_EPOLL;
    cr_assert_eq(weft_run(root_backend, NULL, &cfg), 0);
    cr_assert(!strcmp(g_backend, "epoll"), "backend '%s'", g_backend);
    wt_skip_without_uring();
    cfg.io = WEFT_IO_URING;
    cr_assert_eq(weft_run(root_backend, NULL, &cfg), 0);
    cr_assert(!strcmp(g_backend, "uring"), "backend '%s'", g_backend);
    wt_assert_clean();
}

Test(io_stats, config_io_out_of_range_is_einval, .timeout = 10)
{
    weft_config cfg = {0};
    cfg.io = 3;
    cr_assert_eq(weft_run(root_backend, NULL, &cfg), EINVAL);
}

static int root_io_waiting(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct wt_one_read e = {.fd = sv[0], .got = -2};
    weft_thread *t = wt_go(wt_read_once, &e);
    WT_CHECK(wt_wait_io_waiting(1));
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    g_io_waiting[0] = st.io_waiting;
    WT_CHECK_EQ(weft_write(sv[1], "x", 1), 1);
    wt_join(t);
    WT_CHECK_EQ(weft_stats(&st), 0);
    g_io_waiting[1] = st.io_waiting;
    wt_close_both(sv);
    return 0;
}

Test(io_stats, stats_count_threads_waiting_on_fds, .timeout = 10)
{
    WT_RUN(root_io_waiting, NULL, .procs = 2);
    cr_assert_eq(g_io_waiting[0], 1);
    cr_assert_eq(g_io_waiting[1], 0);
}

static char g_dump[16384];
static int g_dump_fd;

static int root_dump_read(void *arg)
{
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    g_dump_fd = sv[0];
    struct wt_one_read e = {.fd = sv[0], .got = -2};
    weft_thread *t = wt_go_named("fd-reader", wt_read_once, &e);
    WT_CHECK(wt_wait_io_waiting(1));
    int out = memfd_create("weft-dump", MFD_CLOEXEC);
    WT_REQUIRE(out >= 0);
    weft_dump(out);
    WT_CHECK(pread(out, g_dump, sizeof g_dump - 1, 0) > 0);
    weft_close(out);
    WT_CHECK_EQ(weft_cancel(t), 0);
    wt_join(t);
    wt_close_both(sv);
    return 0;
}

Test(io_stats, dump_shows_a_thread_parked_in_read, .timeout = 10)
{
    WT_RUN(root_dump_read, NULL, .procs = 2);
    char want[64];
    snprintf(want, sizeof want, "fd readable fd %d", g_dump_fd);
    const char *line = strstr(g_dump, "'fd-reader'");
    cr_assert_not_null(line, "no fd-reader in the dump:\n%s", g_dump);
    const char *end = strchr(line, '\n');
    cr_assert(end && strstr(line, want) && strstr(line, want) < end,
              "no '%s' on fd-reader's line:\n%s", want, g_dump);
}
