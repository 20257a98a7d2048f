/* SPDX-License-Identifier: MIT */
/*
 * io_file.c — regular files: pread / pwrite at offsets (holes read
 * as zeros), short reads at EOF, 9 MiB moved whole, read / write using
 * and moving the file offset, and the errors of pread on a pipe and
 * fsync on a pipe or a closed fd.
 *
 * Registered once per backend (WEFT_IO=uring, WEFT_IO=epoll); outside
 * sanitizer builds also linked against libweft.so (tests/CMakeLists.txt).
 */
#include "wt_io.h"

#define RUN_TEST(...) WT_RUN_TEST(io_file, __VA_ARGS__)

/* A temporary regular file, already unlinked. */
static int temp_file(void)
{
    char path[] = "/tmp/weft-io-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

static int root_file_pread_pwrite(void *arg)
{
    int fd = temp_file();
    WT_REQUIRE(fd >= 0);
    WT_CHECK_EQ(weft_pwrite(fd, "HELLO", 5, 100), 5);
    WT_CHECK_EQ(weft_pwrite(fd, "ab", 2, 0), 2);
    WT_CHECK_EQ(weft_fsync(fd), 0);
    char buf[128];
    memset(buf, 'x', sizeof buf);
    WT_CHECK_EQ(weft_pread(fd, buf, 2, 0), 2);
    WT_CHECK(!memcmp(buf, "ab", 2));
    WT_CHECK_EQ(weft_pread(fd, buf, 5, 100), 5);
    WT_CHECK(!memcmp(buf, "HELLO", 5));
    WT_CHECK_EQ(weft_pread(fd, buf, 98, 2), 98); /* the hole reads zeros */
    for (int i = 0; i < 98; i++)
        WT_CHECK_MSG(buf[i] == 0, "byte %d of the hole is %d", i + 2, buf[i]);
    WT_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0); /* pread/pwrite keep it */
    weft_close(fd);
    return 0;
}

RUN_TEST(pwrite_pread_round_trip_at_offsets, root_file_pread_pwrite, NULL,
         .procs = 2, .timeout = 10)

static int root_file_eof(void *arg)
{
    int fd = temp_file();
    WT_REQUIRE(fd >= 0);
    WT_CHECK_EQ(weft_pwrite(fd, "0123456789", 10, 0), 10);
    char buf[16];
    WT_CHECK_EQ(weft_pread(fd, buf, sizeof buf, 7), 3);
    WT_CHECK(!memcmp(buf, "789", 3));
    WT_CHECK_EQ(weft_pread(fd, buf, sizeof buf, 10), 0);
    WT_CHECK_EQ(weft_pread(fd, buf, sizeof buf, 4096), 0);
    WT_CHECK_EQ(weft_pread(fd, buf, sizeof buf, -1), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    weft_close(fd);
    return 0;
}

RUN_TEST(pread_is_short_at_eof, root_file_eof, NULL, .procs = 2, .timeout = 10)

/* A regular file takes and gives a large transfer whole, as libc's
 * pread/pwrite do on Linux (no short count short of an error or EOF). */
static int root_file_big(void *arg)
{
    size_t n = 9 << 20;
    unsigned char *out = malloc(n), *in = malloc(n);
    int fd = temp_file();
    WT_REQUIRE(out && in && fd >= 0);
    wt_fill_pattern(out, 0, n);
    WT_CHECK_EQ(weft_pwrite(fd, out, n, 4096), n);
    WT_CHECK_EQ(weft_pread(fd, in, n, 4096), n);
    WT_CHECK_EQ(wt_check_pattern(in, 0, n), n);
    WT_CHECK_EQ(weft_pread(fd, in, n, 4096 + 4), n - 4); /* short: EOF */
    free(out);
    free(in);
    weft_close(fd);
    return 0;
}

/* The time-out is generous: each page of the two 9 MiB buffers faults in,
 * and on a loaded VM that took up to 20 s. */
RUN_TEST(pwrite_pread_of_9mib_move_it_whole, root_file_big, NULL,
         .procs = 2, .timeout = 60)

static int root_file_offset(void *arg)
{
    int fd = temp_file();
    WT_REQUIRE(fd >= 0);
    WT_CHECK_EQ(weft_write(fd, "abc", 3), 3);
    WT_CHECK_EQ(weft_write(fd, "def", 3), 3);
    WT_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 6);
    WT_CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    char buf[16] = {0};
    WT_CHECK_EQ(weft_read(fd, buf, 4), 4);
    WT_CHECK(!memcmp(buf, "abcd", 4));
    WT_CHECK_EQ(weft_read(fd, buf, sizeof buf), 2);
    WT_CHECK(!memcmp(buf, "ef", 2));
    WT_CHECK_EQ(weft_read(fd, buf, sizeof buf), 0);
    weft_close(fd);
    return 0;
}

RUN_TEST(read_write_on_a_file_use_and_advance_its_offset,
         root_file_offset, NULL, .procs = 2, .timeout = 10)

static int root_file_errors(void *arg)
{
    int p[2];
    WT_REQUIRE_EQ(pipe(p), 0);
    char buf[4];
    WT_CHECK_EQ(weft_pread(p[0], buf, sizeof buf, 0), -1);
    WT_CHECK_EQ(wt_errno(), ESPIPE);
    WT_CHECK_EQ(weft_pwrite(p[1], "x", 1, 0), -1);
    WT_CHECK_EQ(wt_errno(), ESPIPE);
    WT_CHECK_EQ(weft_fsync(p[1]), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    weft_close(p[0]);
    weft_close(p[1]);
    WT_CHECK_EQ(weft_fsync(p[1]), -1);
    WT_CHECK_EQ(wt_errno(), EBADF);
    return 0;
}

RUN_TEST(pread_on_a_pipe_espipe_fsync_einval, root_file_errors, NULL,
         .procs = 2, .timeout = 10)
