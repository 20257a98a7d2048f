/* SPDX-License-Identifier: MIT */
/*
 * server.h — real servers for the compatibility matrix (tests/compat/).
 *
 * Each test starts the real server it talks to (redis-server, postgres,
 * mariadbd, memcached) as a child process of its own: in a private
 * directory made with mkdtemp, listening on a free port of 127.0.0.1,
 * never a system service. As root, the server and its setup commands
 * (initdb, mariadb-install-db) run as an unprivileged user (nobody), who
 * owns the directory; PostgreSQL refuses to run as root.
 *
 *   srv_find(prog, path, n)  the program's path (PATH, /usr/sbin,
 *                            /usr/lib/postgresql/<newest>/bin); a missing
 *                            program FAILS the test, naming the package
 *   srv_open(s, name)        the private directory, and its guardian
 *   srv_run(s, argv, secs)   a setup command, waited for (exit 0 or fail)
 *   srv_start(s, argv, secs) the server, waited for until its port accepts
 *   srv_close(s)             SIGTERM, then SIGKILL after 5 s; the directory
 *                            removed
 *
 * In argv, "{port}" and "{dir}" anywhere in a string stand for the port
 * and the directory. The port is found by binding port 0; if the server
 * exits at start because another process took it meanwhile, srv_start
 * tries another one.
 *
 * A test may die anywhere: a failed cr_assert is an _exit, a time-out a
 * SIGKILL. So srv_open forks a guardian process that holds the read end
 * of a pipe to the test and learns the PID of every process started in
 * the directory. When the pipe reaches end-of-file without srv_close's
 * all-clear, the guardian kills those processes (their process groups)
 * and removes the directory. Server processes also get SIGKILL when the
 * test process ends (PR_SET_PDEATHSIG).
 *
 * Every srv_ function fails the test (cr_assert) with the server's log
 * tail on error, and returns only on success. Runs on: the test's main
 * OS thread, before weft_run (fork from a running runtime is not
 * supported).
 */
#ifndef COMPAT_SERVER_H
#define COMPAT_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct srv {
    char name[32];   /* "redis": names the directory, logs and messages */
    char dir[256];   /* the private directory; valid from srv_open until
                        srv_close */
    uid_t uid;       /* who the server runs as: nobody when we are root, */
    gid_t gid;       /* else ourselves */
    uint16_t port;   /* where the server accepts, once srv_start returned */
    pid_t pid;       /* the server while it runs, else 0 */
    pid_t guard;     /* the guardian process */
    int guard_fd;    /* the write end of the guardian's pipe */
    char log[320];   /* the file the last command's output went to */
};

void srv_find(const char *prog, char *path, size_t n);
void srv_open(struct srv *s, const char *name);
void srv_run(struct srv *s, const char *const argv[], int timeout_s);
void srv_start(struct srv *s, const char *const argv[], int timeout_s);
void srv_close(struct srv *s);

/* The last bytes of the last command's log, for messages. */
const char *srv_log_tail(const struct srv *s, char *buf, size_t n);

#endif /* COMPAT_SERVER_H */
