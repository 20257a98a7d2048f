/* SPDX-License-Identifier: MIT */
/*
 * server.c — starting and stopping the real servers of the compatibility
 * matrix; see server.h for the contract.
 *
 * Processes: the test process forks the guardian (srv_open) and every
 * command (srv_run, srv_start). Each command leads a process group of its
 * own (postgres forks a backend per connection), runs as s->uid with its
 * output in a log file of the directory, and gets SIGKILL if the test's
 * main thread ends. The guardian reads one record per started process
 * ('P' and its PID) from a socket pair; 'C' (all clear) ends it quietly,
 * end-of-file makes it kill every recorded group and remove the
 * directory. It ignores the terminal's signals, so a ^C of the test run
 * still cleans up.
 */
#include "server.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64

/* ------------------------------------------------------------ failing */

const char *srv_log_tail(const struct srv *s, char *buf, size_t n)
{
    buf[0] = 0;
    int fd = open(s->log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return buf;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)(n - 1) ? end - (off_t)(n - 1) : 0;
    ssize_t r = pread(fd, buf, n - 1, from);
    buf[r > 0 ? r : 0] = 0;
    close(fd);
    return buf;
}

/* Fails the test with a message and the log's tail. The guardian sees
 * the test process end and cleans up. */
__attribute__((format(printf, 2, 3), noreturn)) static void
srv_fail(const struct srv *s, const char *fmt, ...)
{
    char msg[512], tail[1500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_log_tail(s, tail, sizeof tail);
    cr_assert(0, "%s: %s\n--- %s (end):\n%s", s->name, msg, s->log, tail);
    abort(); /* not reached: a failed cr_assert ends the test */
}

/* ----------------------------------------------------- finding programs */

/* The Debian package that has prog, for the message when it is missing. */
static const char *package_of(const char *prog)
{
    static const char *const map[][2] = {
        {"redis-server", "redis-server"}, {"postgres", "postgresql"},
        {"initdb", "postgresql"},         {"mariadbd", "mariadb-server"},
        {"mariadb-install-db", "mariadb-server"},
        {"memcached", "memcached"},       {"openssl", "openssl"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(prog, map[i][0]))
            return map[i][1];
    return prog;
}

static bool try_dir(const char *dir, const char *prog, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", dir, prog);
    return access(path, X_OK) == 0;
}

/* PostgreSQL's server programs are in /usr/lib/postgresql/<major>/bin,
 * not on PATH: the newest major that has prog. */
static bool try_postgres_dirs(const char *prog, char *path, size_t n)
{
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin", GLOB_ONLYDIR, NULL, &g))
        return false;
    long best = -1;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        long major = strtol(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"),
                            NULL, 10);
        char p[PATH_MAX];
        if (major > best && try_dir(g.gl_pathv[i], prog, p, sizeof p)) {
            best = major;
            snprintf(path, n, "%s", p);
        }
    }
    globfree(&g);
    return best >= 0;
}

void srv_find(const char *prog, char *path, size_t n)
{
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin:/usr/local/sbin",
             env ? env : "/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d;
         d = strtok_r(NULL, ":", &save))
        if (*d && try_dir(d, prog, path, n))
            return;
    if (try_postgres_dirs(prog, path, n))
        return;
    cr_assert(0, "%s not found (on PATH, in /usr/sbin or "
              "/usr/lib/postgresql/*/bin): install Debian's %s "
              "(`make deps` or tools/install-deps.sh does)",
              prog, package_of(prog));
}

/* ---------------------------------------------------------- the guardian */

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs on: the guardian process. Never returns. */
static void guard_main(int fd, const char *dir)
{
    int sigs[] = {SIGINT, SIGQUIT, SIGHUP, SIGTERM, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_IGN);
    pid_t pids[MAX_ARGS];
    int n = 0;
    for (;;) {
        char rec[1 + sizeof(pid_t)];
        ssize_t r = recv(fd, rec, sizeof rec, MSG_WAITALL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r >= 1 && rec[0] == 'C')
            _exit(0);
        if (r != (ssize_t)sizeof rec)
            break; /* end-of-file: the test process is gone */
        if (n < MAX_ARGS)
            memcpy(&pids[n++], rec + 1, sizeof(pid_t));
    }
    for (int i = 0; i < n; i++) {
        kill(-pids[i], SIGKILL);
        kill(pids[i], SIGKILL);
    }
    usleep(100 * 1000); /* let them go before their files do */
    remove_tree(dir);
    _exit(0);
}

static void guard_start(struct srv *s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        srv_fail(s, "socketpair: %s", strerror(errno));
    fflush(NULL);
    s->guard = fork();
    if (s->guard < 0)
        srv_fail(s, "fork: %s", strerror(errno));
    if (s->guard == 0) {
        close(sv[0]);
        guard_main(sv[1], s->dir);
    }
    close(sv[1]);
    s->guard_fd = sv[0];
}

static void guard_tell(struct srv *s, char tag, pid_t pid)
{
    char rec[1 + sizeof(pid_t)] = {tag};
    memcpy(rec + 1, &pid, sizeof pid);
    send(s->guard_fd, rec, tag == 'C' ? 1 : sizeof rec, MSG_NOSIGNAL);
}

/* --------------------------------------------------------------- opening */

/* nobody when we are root (servers refuse root, or should not have it),
 * else ourselves. */
static void pick_user(struct srv *s)
{
    s->uid = geteuid();
    s->gid = getegid();
    if (s->uid != 0)
        return;
    struct passwd *pw = getpwnam("nobody");
    cr_assert(pw != NULL, "%s: running as root, and there is no user "
              "'nobody' to run the server as", s->name);
    s->uid = pw->pw_uid;
    s->gid = pw->pw_gid;
}

void srv_open(struct srv *s, const char *name)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->guard_fd = -1;
    pick_user(s);
    const char *tmp = getenv("TMPDIR");
    /* As root the user must reach the directory: /tmp, not root's own. */
    if (!tmp || !*tmp || geteuid() == 0)
        tmp = "/tmp";
    snprintf(s->dir, sizeof s->dir, "%s/weft-compat-%s-XXXXXX", tmp, name);
    snprintf(s->log, sizeof s->log, "%s/(none yet)", s->dir);
    if (!mkdtemp(s->dir))
        srv_fail(s, "mkdtemp(%s): %s", s->dir, strerror(errno));
    if (chown(s->dir, s->uid, s->gid)) {
        int e = errno;
        rmdir(s->dir);
        srv_fail(s, "chown %s: %s", s->dir, strerror(e));
    }
    guard_start(s);
}

/* ------------------------------------------------------------- commands */

/* argv with {port} and {dir} replaced; the strings are malloc'ed. */
static char **expand(const struct srv *s, const char *const argv[])
{
    static char *out[MAX_ARGS];
    char port[8];
    snprintf(port, sizeof port, "%u", s->port);
    int i = 0;
    for (; argv[i] && i < MAX_ARGS - 1; i++) {
        char buf[1024], *o = buf;
        for (const char *p = argv[i]; *p && o < buf + sizeof buf - 300;) {
            if (!strncmp(p, "{port}", 6)) {
                o += sprintf(o, "%s", port);
                p += 6;
            } else if (!strncmp(p, "{dir}", 5)) {
                o += sprintf(o, "%s", s->dir);
                p += 5;
            } else {
                *o++ = *p++;
            }
        }
        *o = 0;
        out[i] = strdup(buf);
    }
    out[i] = NULL;
    return out;
}

static void free_args(char **argv)
{
    for (int i = 0; argv[i]; i++)
        free(argv[i]);
}

/* Runs on: the child, between fork and exec. */
static void child_exec(const struct srv *s, char **argv, pid_t parent)
{
    setpgid(0, 0);
    if (s->uid != geteuid() &&
        (setgroups(0, NULL) || setgid(s->gid) || setuid(s->uid)))
        _exit(126);
    /* After setuid, which clears it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    int in = open("/dev/null", O_RDONLY);
    int out = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(out, 2) < 0 || chdir(s->dir))
        _exit(126);
    close_range(3, ~0U, 0);
    execv(argv[0], argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Starts argv in the directory as s->uid, its output in <dir>/<base>.log
 * (appended). Returns its PID, which the guardian knows too. */
static pid_t spawn(struct srv *s, const char *const argv[])
{
    const char *base = strrchr(argv[0], '/');
    snprintf(s->log, sizeof s->log, "%s/%s.log", s->dir,
             base ? base + 1 : argv[0]);
    char **args = expand(s, argv);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        child_exec(s, args, parent);
    free_args(args);
    if (pid < 0)
        srv_fail(s, "fork: %s", strerror(errno));
    setpgid(pid, pid); /* also here: no race with a kill of the group */
    guard_tell(s, 'P', pid);
    return pid;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void describe(int st, char *buf, size_t n)
{
    if (WIFEXITED(st))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, n, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, n, "status %#x", st);
}

void srv_run(struct srv *s, const char *const argv[], int timeout_s)
{
    pid_t pid = spawn(s, argv);
    int64_t until = now_ms() + timeout_s * 1000LL;
    int st;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_ms() > until) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            srv_fail(s, "%s did not finish within %d s", argv[0], timeout_s);
        }
        usleep(10 * 1000);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char how[64];
        describe(st, how, sizeof how);
        srv_fail(s, "%s failed: %s", argv[0], how);
    }
}

/* ----------------------------------------------------------- the server */

/* A port of 127.0.0.1 that was free a moment ago. */
static uint16_t free_port(struct srv *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        srv_fail(s, "finding a free port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

static bool accepts(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static bool port_taken(const struct srv *s)
{
    char tail[1500];
    srv_log_tail(s, tail, sizeof tail);
    return strstr(tail, "in use") || strstr(tail, "EADDRINUSE");
}

/* Waits until the server accepts on s->port (true), or exits (false). */
static bool wait_accepting(struct srv *s, pid_t pid, int timeout_s, int *st)
{
    int64_t until = now_ms() + timeout_s * 1000LL;
    for (;;) {
        if (accepts(s->port))
            return true;
        if (waitpid(pid, st, WNOHANG) == pid)
            return false;
        if (now_ms() > until)
            srv_fail(s, "no connection accepted on 127.0.0.1:%u within %d s",
                     s->port, timeout_s);
        usleep(20 * 1000);
    }
}

void srv_start(struct srv *s, const char *const argv[], int timeout_s)
{
    for (int attempt = 1;; attempt++) {
        s->port = free_port(s);
        pid_t pid = spawn(s, argv);
        int st;
        if (wait_accepting(s, pid, timeout_s, &st)) {
            s->pid = pid;
            return;
        }
        if (attempt < 3 && port_taken(s))
            continue;
        char how[64];
        describe(st, how, sizeof how);
        srv_fail(s, "%s exited at start (%s), port %u", argv[0], how,
                 s->port);
    }
}

/* ------------------------------------------------------------- stopping */

void srv_close(struct srv *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int st;
        int64_t until = now_ms() + 5000;
        while (waitpid(s->pid, &st, WNOHANG) == 0 && now_ms() < until)
            usleep(10 * 1000);
        kill(-s->pid, SIGKILL); /* the group's stragglers; or the server */
        waitpid(s->pid, &st, 0);
        s->pid = 0;
    }
    remove_tree(s->dir);
    if (s->guard_fd >= 0) {
        guard_tell(s, 'C', 0);
        close(s->guard_fd);
        waitpid(s->guard, NULL, 0);
        s->guard_fd = -1;
    }
}
