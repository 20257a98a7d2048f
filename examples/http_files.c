/* SPDX-License-Identifier: MIT */
/*
 * http_files.c — request path to file (see http_files.h).
 *
 * Two fences keep requests inside the root:
 *   1. lexical: the decoded path is split into components; "." and
 *      empty components are dropped and each ".." takes the component
 *      before it away (as nginx does); a ".." with none before it would
 *      leave the root and is refused (403). So the name handed to the
 *      kernel is relative and has no "..";
 *   2. in the kernel: openat2(RESOLVE_BENEATH) fails (EXDEV) when a
 *      symbolic link would lead outside the root. Kernels before 5.6 lack
 *      openat2: there the lexical fence and O_NOFOLLOW on the last
 *      component remain, and links inside the root are the admin's.
 * The file is opened O_NONBLOCK so that a FIFO cannot block the open; a
 * non-regular file is then refused and a regular one made blocking again
 * (weft keeps EAGAIN for an fd the program made non-blocking).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "http_files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* Percent-decodes rel[0..n) into out (NUL-terminated). Returns 0, 400 or
 * 404 (too long). */
static int decode(const char *rel, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++, o++) {
        if (o + 1 >= cap)
            return 404;
        out[o] = rel[i];
        if (rel[i] != '%')
            continue;
        int hi = i + 2 < n ? hex_value(rel[i + 1]) : -1;
        int lo = i + 2 < n ? hex_value(rel[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi | lo) == 0)
            return 400;
        out[o] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    return 0;
}

/* The end of path[0..end) without its last component (and the '/' before
 * it): where the next component is to be written. */
static char *drop_last(char *path, char *end)
{
    while (end > path && end[-1] != '/')
        end--;
    return end > path ? end - 1 : path;
}

/* Rewrites path in place as its components joined by '/', without "."
 * and empty ones, each ".." removed with the component before it (the
 * names only: "link/.." is the root's, wherever the link points; the
 * kernel's fence still holds). Writing never overtakes reading: the
 * output is never longer than the input read so far. Returns 0, 403 (a
 * ".." with nothing before it to remove: it would leave the root) or 404
 * (nothing left: the root itself). */
static int normalize(char *path)
{
    char *w = path;
    for (char *c = path; *c;) {
        size_t len = strcspn(c, "/");
        bool dot = len == 1 && c[0] == '.';
        bool dotdot = len == 2 && c[0] == '.' && c[1] == '.';
        if (dotdot && w == path)
            return 403;
        if (dotdot) {
            w = drop_last(path, w);
        } else if (len > 0 && !dot) {
            if (w != path)
                *w++ = '/';
            memmove(w, c, len);
            w += len;
        }
        c += len + (c[len] == '/');
    }
    *w = '\0';
    return w == path ? 404 : 0;
}

static int open_beneath(int root_fd, const char *path)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
    if (fd < 0 && errno == ENOSYS)
        fd = openat(root_fd, path, (int)how.flags | O_NOFOLLOW);
    return fd;
}

static int status_of_errno(int e)
{
    switch (e) {
    case ENOENT: case ENOTDIR: case ENAMETOOLONG:
        return 404;
    case EXDEV: case ELOOP: case EACCES: case EPERM:
        return 403;
    default:
        return 500;
    }
}

int http_open_file(int root_fd, const char *rel, size_t n, int *fd,
                   struct stat *st)
{
    char path[PATH_MAX];
    int status = decode(rel, n, path, sizeof path);
    if (status || (status = normalize(path)))
        return status;
    int f = open_beneath(root_fd, path);
    if (f < 0)
        return status_of_errno(errno);
    if (fstat(f, st) || !S_ISREG(st->st_mode)) {
        close(f);
        return 404;
    }
    int flags = fcntl(f, F_GETFL);
    if (flags < 0 || fcntl(f, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        close(f);
        return 500;
    }
    *fd = f;
    return 200;
}

const char *http_content_type(const char *rel, size_t n)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html"},       {".htm", "text/html"},
        {".txt", "text/plain"},       {".css", "text/css"},
        {".js", "text/javascript"},   {".json", "application/json"},
        {".png", "image/png"},        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},      {".svg", "image/svg+xml"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t e = strlen(types[i].ext);
        if (n >= e && strncasecmp(rel + n - e, types[i].ext, e) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}
