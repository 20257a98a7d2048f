/* SPDX-License-Identifier: MIT */
/*
 * wt_child.h — running a helper program (tests/progs) to watch what it
 * does from outside: how it ended, and what it wrote to stderr. For
 * crashes and panics, which end the process they happen in.
 *
 * Runs on: the test's own OS thread, outside weft_run (it asserts).
 */
#ifndef WT_CHILD_H
#define WT_CHILD_H

#include "wt.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct wt_child {
    int status;        /* waitpid's */
    char err[1 << 16];  /* its stderr, cut to fit */
};

/* Runs argv[0] with argv (NULL-ended) and the test's environment, its
 * stdout to /dev/null, until it ends; fills *res. */
static inline void wt_run_child(char *const argv[], struct wt_child *res)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 0, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    cr_assert_eq(rc, 0, "posix_spawn %s: %s", argv[0], strerror(rc));
    size_t len = 0;
    for (;;) {
        ssize_t n = read(p[0], res->err + len, sizeof res->err - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    res->err[len] = 0;
    close(p[0]);
    cr_assert_eq(waitpid(pid, &res->status, 0), pid);
}

#endif
