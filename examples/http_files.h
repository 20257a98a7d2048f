/* SPDX-License-Identifier: MIT */
/*
 * http_files.h — maps a request path to a regular file below a root
 * directory, safely: the part of httpd that touches the file system
 * (no weft dependency).
 */
#ifndef HTTP_FILES_H
#define HTTP_FILES_H

#include <stddef.h>
#include <sys/stat.h>

/* Opens the file that the request path rel[0..n) (what follows "/files/",
 * still percent-encoded, query excluded) names below the directory root_fd,
 * read-only and blocking, and fills *st. Returns the status to answer:
 *   200  *fd is the open file (the caller closes it), a regular file
 *   400  a bad percent escape, or an encoded NUL
 *   403  a ".." component that would climb above the root (one that
 *        follows a name just cancels it: "a/../b" is "b"), or a path that
 *        leaves the root through a symbolic link; a file we may not read
 *   404  no such file; a directory or any other non-regular file; a path
 *        too long
 *   500  the open failed otherwise (out of file descriptors, ...) */
int http_open_file(int root_fd, const char *rel, size_t n, int *fd,
                   struct stat *st);

/* A Content-Type for the file name's extension. */
const char *http_content_type(const char *rel, size_t n);

#endif /* HTTP_FILES_H */
