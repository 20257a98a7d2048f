/* SPDX-License-Identifier: MIT */
/*
 * fileio.c — file operations on the offload pool (the epoll backend has
 * no asynchronous file I/O).
 *
 * The caller may be cancelled while a pool thread runs the operation, so
 * the operation must not touch the caller's memory or fd after that: it
 * works on a dup of the fd and on a buffer of its own, and the caller
 * copies a read's bytes out only when the call completed for it. A
 * cancelled pwrite may still land in the file; its result is dropped (as
 * for any cancelled weft_offload call).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fault.h"
#include "io/io.h"

#define MAX_CHUNK (4u << 20) /* longer calls go a chunk at a time */

typedef struct file_job {
    int op, fd;
    size_t n;
    off_t off;
    ssize_t res;
    int err;
    char data[];
} file_job;

static int run_file_job(void *arg)
{
    file_job *j = arg;
    if (j->op == WEFT__REQ_READ)
        j->res = weft__real(pread)(j->fd, j->data, j->n, j->off);
    else if (j->op == WEFT__REQ_WRITE)
        j->res = weft__real(pwrite)(j->fd, j->data, j->n, j->off);
    else
        j->res = weft__real(fsync)(j->fd);
    j->err = j->res < 0 ? WEFT_ERRNO : 0;
    return 0;
}

static void drop_file_job(void *arg)
{
    file_job *j = arg;
    weft__real(close)(j->fd);
    free(j);
}

/* One operation of at most MAX_CHUNK bytes on the pool. */
static ssize_t offload_chunk(int op, int fd, void *buf, size_t n, off_t off)
{
    size_t room = op == WEFT__REQ_FSYNC ? 0 : n;
    file_job *j = weft__malloc(sizeof *j + room);
    if (!j) {
        WEFT_ERRNO = ENOMEM;
        return -1;
    }
    *j = (file_job){.op = op, .fd = weft__real(fcntl)(fd, F_DUPFD_CLOEXEC, 0), .n = n,
                    .off = off};
    if (j->fd < 0) {
        free(j);
        return -1; /* EBADF, EMFILE */
    }
    if (op == WEFT__REQ_WRITE)
        memcpy(j->data, buf, n);
    bool done;
    int r = weft__offload_owned(run_file_job, j, drop_file_job, &done);
    if (!done) {
        WEFT_ERRNO = r;
        return -1;
    }
    ssize_t res = j->res;
    if (res > 0 && op == WEFT__REQ_READ)
        memcpy(buf, j->data, (size_t)res);
    if (res < 0)
        WEFT_ERRNO = j->err;
    drop_file_job(j);
    return res;
}

/* Moves all n bytes, a chunk at a time, as libc's pread/pwrite do on a
 * regular file: a short count only at the end of the file, or when an
 * error or a cancellation stops it after some chunks went. */
ssize_t weft__file_offload(int op, int fd, void *buf, size_t n, off_t off)
{
    if (op == WEFT__REQ_FSYNC)
        return offload_chunk(op, fd, NULL, 0, 0);
    size_t done = 0;
    for (;;) {
        size_t len = n - done < MAX_CHUNK ? n - done : MAX_CHUNK;
        ssize_t r = offload_chunk(op, fd, (char *)buf + done, len,
                                  off + (off_t)done);
        if (r < 0)
            return done ? (ssize_t)done : r;
        done += (size_t)r;
        if ((size_t)r < len || done >= n)
            return (ssize_t)done;
    }
}
