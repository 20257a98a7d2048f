/* SPDX-License-Identifier: MIT */
/*
 * dump.c — weft_dump: the thread tree with names, nesting and what each
 * parked thread waits on.
 */
#include "wt.h"
#include "wt_child.h"

#include <ctype.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Reads everything written to fd (a regular file) since offset 0. */
static char *slurp(int fd)
{
    off_t len = lseek(fd, 0, SEEK_END);
    if (len < 0)
        return NULL;
    char *buf = calloc(1, (size_t)len + 1);
    if (!buf)
        return NULL;
    if (pread(fd, buf, (size_t)len, 0) != len) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Where a line's entry starts: past its indentation (spaces and tree
 * drawing such as "|-", "`-" or UTF-8 box characters). */
static int indent_of(const char *line)
{
    int i = 0;
    while (line[i] && line[i] != '\n' && !isalnum((unsigned char)line[i]) &&
           !strchr("#'\"[(", line[i]))
        i++;
    return i;
}

/* The line of text containing the first occurrence of needle, and that
 * line's indentation; NULL if absent. */
static const char *find_line(const char *text, const char *needle, int *col,
                             const char **line_end)
{
    const char *p = strstr(text, needle);
    if (!p)
        return NULL;
    const char *start = p;
    while (start > text && start[-1] != '\n')
        start--;
    *col = indent_of(start);
    const char *end = strchr(p, '\n');
    *line_end = end ? end : p + strlen(p);
    return start;
}

/* The text of a thread's entry: its line, up to the next line that names
 * one of the other threads (a backtrace or detail lines may follow). */
static char *entry_of(const char *text, const char *name,
                      const char *const *others, int nothers)
{
    int col;
    const char *end;
    const char *line = find_line(text, name, &col, &end);
    if (!line)
        return NULL;
    const char *stop = text + strlen(text);
    for (int i = 0; i < nothers; i++) {
        const char *o = strstr(end, others[i]);
        if (o && o < stop)
            stop = o;
    }
    while (stop > end && stop[-1] != '\n')
        stop--;
    if (stop < end)
        stop = end;
    size_t n = (size_t)(stop - line);
    char *e = malloc(n + 1);
    memcpy(e, line, n);
    e[n] = 0;
    for (size_t i = 0; i < n; i++)
        e[i] = (char)tolower((unsigned char)e[i]);
    return e;
}

static weft_sem g_never = WEFT_SEM_INIT(0);

static int dump_sleeper(void *arg)
{
    return weft_sleep(WT_MS(10000));
}

static int dump_sem_waiter(void *arg)
{
    return weft_sem_acquire(&g_never);
}

static int dump_parent(void *arg)
{
    WT_REQUIRE(wt_go_named("nest-child", dump_sleeper, NULL) != NULL);
    return weft_sleep(WT_MS(10000));
}

static char *g_dump_text;

static void *dump_os_main(void *arg)
{
    weft_dump((int)(intptr_t)arg);
    return NULL;
}

static const char *const g_names[] = {"dump-root", "sleeper-vt",
                                      "sem-waiter-vt", "nest-parent",
                                      "nest-child"};

static int run_dump(void *arg)
{
    int from_os_thread = (int)(intptr_t)arg;
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_REQUIRE(wt_go_named("sleeper-vt", dump_sleeper, NULL) != NULL);
    WT_REQUIRE(wt_go_named("sem-waiter-vt", dump_sem_waiter, NULL) != NULL);
    WT_REQUIRE(wt_go_named("nest-parent", dump_parent, NULL) != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(30)), 0); /* all of them are parked now */

    FILE *f = tmpfile();
    WT_REQUIRE(f != NULL);
    int fd = fileno(f);
    if (from_os_thread) {
        pthread_t pt;
        WT_REQUIRE_EQ(pthread_create(&pt, NULL, dump_os_main,
                                     (void *)(intptr_t)fd), 0);
        pthread_join(pt, NULL);
    } else {
        weft_dump(fd);
    }
    g_dump_text = slurp(fd);
    fclose(f);

    weft_scope_cancel(sc);
    WT_CHECK_EQ(weft_scope_close(sc), ECANCELED);
    return 0;
}

static int dump_root(void *arg)
{
    weft_attr a = {0};
    a.name = "dump-root";
    weft_thread *t = weft_go_with(&a, run_dump, arg);
    WT_REQUIRE(t != NULL);
    return weft_join(t, NULL);
}

static void check_dump(const char *text)
{
    cr_assert_not_null(text, "could not read the dump back");
    cr_log_info("dump:\n%s", text);
    for (size_t i = 0; i < sizeof g_names / sizeof g_names[0]; i++)
        cr_expect_not_null(strstr(text, g_names[i]),
                           "dump does not name '%s'", g_names[i]);

    /* nesting: each child's entry is indented further than its parent's */
    int c_root, c_parent, c_child, c_sleeper;
    const char *e;
    const char *l_root = find_line(text, "dump-root", &c_root, &e);
    const char *l_parent = find_line(text, "nest-parent", &c_parent, &e);
    const char *l_child = find_line(text, "nest-child", &c_child, &e);
    const char *l_sleeper = find_line(text, "sleeper-vt", &c_sleeper, &e);
    cr_assert(l_root && l_parent && l_child && l_sleeper);
    cr_expect_gt(c_parent, c_root, "nest-parent not indented under dump-root");
    cr_expect_gt(c_sleeper, c_root, "sleeper-vt not indented under dump-root");
    cr_expect_gt(c_child, c_parent, "nest-child not indented under "
                                    "nest-parent");
    cr_expect_gt(l_child, l_parent, "nest-child listed before its parent");

    /* wait reasons */
    const char *const others_s[] = {"sem-waiter-vt", "nest-parent",
                                    "nest-child", "dump-root"};
    char *sleeper = entry_of(text, "sleeper-vt", others_s, 4);
    cr_assert_not_null(sleeper);
    cr_expect_not_null(strstr(sleeper, "sleep"),
                       "no sleep wait reason for sleeper-vt: '%s'", sleeper);
    const char *const others_w[] = {"sleeper-vt", "nest-parent", "nest-child",
                                    "dump-root"};
    char *waiter = entry_of(text, "sem-waiter-vt", others_w, 4);
    cr_assert_not_null(waiter);
    cr_expect_not_null(strstr(waiter, "sem"),
                       "no semaphore wait reason for sem-waiter-vt: '%s'",
                       waiter);
    /* timed waits show the time left; parked threads show their stack,
     * from the weft_ call they made down to their own function */
    cr_expect_not_null(strstr(sleeper, "ms left"),
                       "no time left for sleeper-vt: '%s'", sleeper);
    cr_expect_not_null(strstr(sleeper, "#0 weft_sleep"),
                       "sleeper-vt's stack does not start at weft_sleep: '%s'",
                       sleeper);
    cr_expect_not_null(strstr(sleeper, "dump_sleeper (dump.c:"),
                       "sleeper-vt's stack lacks its function: '%s'", sleeper);
    cr_expect_not_null(strstr(waiter, "weft_sem_acquire"),
                       "sem-waiter-vt's stack lacks weft_sem_acquire: '%s'",
                       waiter);
    cr_expect_not_null(strstr(waiter, "dump_sem_waiter (dump.c:"),
                       "sem-waiter-vt's stack lacks its function: '%s'",
                       waiter);
    free(sleeper);
    free(waiter);
}

Test(dump, lists_tree_names_and_wait_reasons, .timeout = 20)
{
    WT_RUN(dump_root, (void *)0, .procs = 2);
    check_dump(g_dump_text);
}

Test(dump, works_from_an_os_thread_while_running, .timeout = 20)
{
    WT_RUN(dump_root, (void *)1, .procs = 2);
    check_dump(g_dump_text);
}

/* Into a pipe, read by an OS thread while the dump is written. */
struct pipe_reader {
    int fd;
    char buf[1 << 16];
    size_t len;
};

static void *pipe_read_main(void *arg)
{
    struct pipe_reader *r = arg;
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->len, sizeof r->buf - 1 - r->len);
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    r->buf[r->len] = 0;
    return NULL;
}

static struct pipe_reader g_reader;

static int root_pipe(void *arg)
{
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    WT_REQUIRE(wt_go_named("piped-sleeper", dump_sleeper, NULL) != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(20)), 0);
    int p[2];
    WT_REQUIRE_EQ(pipe(p), 0);
    g_reader.fd = p[0];
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, pipe_read_main, &g_reader), 0);
    weft_dump(p[1]);
    close(p[1]);
    pthread_join(pt, NULL);
    close(p[0]);
    weft_scope_cancel(sc);
    weft_scope_close(sc);
    return 0;
}

Test(dump, writes_into_a_pipe, .timeout = 20)
{
    WT_RUN(root_pipe, NULL, .procs = 2);
    cr_assert_not_null(strstr(g_reader.buf, "piped-sleeper"),
                       "dump through a pipe: '%s'", g_reader.buf);
}

Test(dump, without_runtime_does_not_crash, .timeout = 10)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    weft_dump(fileno(f));
    fclose(f);
}

/* SIGQUIT dumps to stderr without ending the program (DESIGN.md §3),
 * observed from outside through progs/sigquit.c. */
Test(dump, sigquit_dumps_to_stderr_and_carries_on, .timeout = 30)
{
    static struct wt_child res;
    char *argv[] = {(char *)WT_SIGQUIT_PROG, NULL};
    wt_run_child(argv, &res);
    const char *err = res.err;
    int status = res.status;
    cr_log_info("helper stderr:\n%s", err);
    cr_assert(WIFEXITED(status), "helper killed by signal %d; stderr:\n%s",
              WIFSIGNALED(status) ? WTERMSIG(status) : 0, err);
    cr_assert_eq(WEXITSTATUS(status), 0, "helper exit status %d; stderr:\n%s",
                 WEXITSTATUS(status), err);
    cr_assert_not_null(strstr(err, "survived"), "stderr:\n%s", err);
    const char *name = strstr(err, "quit-sleeper");
    cr_assert(name != NULL && name < strstr(err, "sigquit: weft_run"),
              "no dump naming 'quit-sleeper' before the run ended:\n%s", err);
}

/* The canonical deadlock: a semaphore's holder waits for ever on a channel
 * nobody sends to, and another thread waits for the semaphore. The run
 * ends with EDEADLK, and the report shows where each one waits. */
static weft_sem g_held = WEFT_SEM_INIT(1);
static weft_chan *g_silent;
static atomic_bool g_holding;

static int sem_holder(void *arg)
{
    WT_REQUIRE_EQ(weft_sem_acquire(&g_held), 0);
    atomic_store(&g_holding, true);
    int v;
    weft_chan_recv(g_silent, &v);
    return 0;
}

static int sem_wanter(void *arg)
{
    while (!atomic_load(&g_holding))
        weft_sleep(WT_MS(1));
    return weft_sem_acquire(&g_held);
}

static int root_sem_deadlock(void *arg)
{
    g_silent = weft_chan_make(sizeof(int), 0);
    WT_REQUIRE(g_silent != NULL);
    weft_thread *h = wt_go_named("holder", sem_holder, NULL);
    weft_thread *w = wt_go_named("wanter", sem_wanter, NULL);
    WT_REQUIRE(h && w);
    weft_join(h, NULL);
    weft_join(w, NULL);
    return 0;
}

Test(dump, deadlock_report_shows_where_each_thread_waits, .timeout = 20)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(f), STDERR_FILENO);
    int r = weft_run(root_sem_deadlock, NULL, NULL);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *text = slurp(fileno(f));
    fclose(f);
    cr_assert_eq(r, EDEADLK);
    cr_assert_not_null(text);
    cr_log_info("report:\n%s", text);
    cr_expect_not_null(strstr(text, "all 3 virtual threads are blocked"),
                       "no deadlock line: %s", text);
    const char *const not_holder[] = {"wanter", "main"};
    char *holder = entry_of(text, "holder", not_holder, 2);
    cr_assert_not_null(holder);
    cr_expect_not_null(strstr(holder, "channel receive"), "%s", holder);
    cr_expect_not_null(strstr(holder, "weft_chan_recv"), "%s", holder);
    cr_expect_not_null(strstr(holder, "sem_holder (dump.c:"), "%s", holder);
    const char *const not_wanter[] = {"holder", "main"};
    char *wanter = entry_of(text, "wanter", not_wanter, 2);
    cr_assert_not_null(wanter);
    cr_expect_not_null(strstr(wanter, "semaphore"), "%s", wanter);
    cr_expect_not_null(strstr(wanter, "sem_wanter (dump.c:"), "%s", wanter);
    free(holder);
    free(wanter);
    free(text);
}

/* ---------------------------------------------------- each wait kind */

static weft_mutex g_mx = WEFT_MUTEX_INIT;
static weft_cond g_cv = WEFT_COND_INIT;
static weft_chan *g_full, *g_empty;
static int g_rpipe[2], g_wsock[2];
static _Atomic bool g_release;

static int wait_mutex(void *arg)
{
    weft_mutex_lock(&g_mx);
    return weft_mutex_unlock(&g_mx);
}

static int wait_cond(void *arg)
{
    weft_mutex_lock(&g_mx);
    int r = weft_cond_wait(&g_cv, &g_mx);
    weft_mutex_unlock(&g_mx);
    return r;
}

static int wait_send(void *arg)
{
    int v = 1;
    return weft_chan_send(g_full, &v);
}

static int wait_recv(void *arg)
{
    int v;
    return weft_chan_recv(g_empty, &v);
}

static int wait_select(void *arg)
{
    int a, b;
    weft_case cases[] = {WEFT_RECV(g_empty, &a), WEFT_RECV(g_empty, &b)};
    return weft_select(cases, 2, -1);
}

static int wait_join(void *arg)
{
    return weft_join(arg, NULL);
}

static int slow_call(void *arg)
{
    while (!atomic_load(&g_release))
        usleep(1000);
    return 0;
}

static int wait_offload(void *arg)
{
    return weft_offload(slow_call, NULL);
}

static int wait_read(void *arg)
{
    char c;
    return weft_read(g_rpipe[0], &c, 1) < 0 ? errno : 0;
}

static int wait_write(void *arg)
{
    static char big[1 << 20];
    return weft_write(g_wsock[0], big, sizeof big) < 0 ? errno : 0;
}

static int wait_poll(void *arg)
{
    struct pollfd p[2] = {{g_rpipe[0], POLLIN, 0}, {g_wsock[0], POLLIN, 0}};
    return weft_poll(p, 2, -1) < 0 ? errno : 0;
}

/* The dump's text for thread `name`: its line and the lines below it, up
 * to the next thread's ("'w-" starts every other name here). */
static char *entry(const char *text, const char *name)
{
    char quoted[64];
    snprintf(quoted, sizeof quoted, "'%s'", name);
    const char *start = strstr(text, quoted);
    if (!start)
        return strdup("");
    const char *next = strstr(start + 1, "'w-");
    size_t n = next ? (size_t)(next - start) : strlen(start);
    return strndup(start, n);
}

static void expect_in(const char *text, const char *name, const char *what)
{
    char *e = entry(text, name);
    cr_expect_not_null(strstr(e, what), "%s: no '%s' in:\n%s", name, what, e);
    free(e);
}

static int run_wait_kinds(void *arg)
{
    g_full = weft_chan_make(sizeof(int), 0);
    g_empty = weft_chan_make(sizeof(int), 1);
    WT_REQUIRE(g_full && g_empty);
    WT_REQUIRE_EQ(pipe(g_rpipe), 0);
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, g_wsock), 0);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    wt_go_named("w-cond", wait_cond, NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(20)), 0); /* w-cond waits, mutex free */
    weft_mutex_lock(&g_mx);
    wt_go_named("w-mutex", wait_mutex, NULL);
    weft_thread *target = wt_go_named("w-target", dump_sleeper, NULL);
    wt_go_named("w-join", wait_join, target);
    wt_go_named("w-send", wait_send, NULL);
    wt_go_named("w-recv", wait_recv, NULL);
    wt_go_named("w-select", wait_select, NULL);
    wt_go_named("w-offload", wait_offload, NULL);
    wt_go_named("w-read", wait_read, NULL);
    wt_go_named("w-write", wait_write, NULL);
    wt_go_named("w-poll", wait_poll, NULL);
    /* Dumps until none of them is still on its way to its wait (under
     * TSan, where starting a thread or an offload thread is slow, or with
     * a carrier preempted between a wait's start and its switch, that can
     * take well over 50 ms), for at most 10 s. */
    int64_t give_up = weft_now() + WT_MS(10000);
    g_dump_text = NULL;
    do {
        free(g_dump_text);
        WT_CHECK_EQ(weft_sleep(WT_MS(50)), 0);
        FILE *f = tmpfile();
        WT_REQUIRE(f != NULL);
        weft_dump(fileno(f));
        g_dump_text = slurp(fileno(f));
        fclose(f);
    } while (g_dump_text &&
             (strstr(g_dump_text, "' runnable") ||
              strstr(g_dump_text, "still switching out")) &&
             weft_now() < give_up);

    weft_mutex_unlock(&g_mx);
    atomic_store(&g_release, true);
    weft_scope_cancel(sc);
    weft_scope_close(sc);
    weft_chan_free(g_full);
    weft_chan_free(g_empty);
    for (int i = 0; i < 2; i++) {
        close(g_rpipe[i]);
        close(g_wsock[i]);
    }
    return 0;
}

Test(dump, shows_every_wait_kind_with_its_object_and_stack, .timeout = 30)
{
    WT_RUN(run_wait_kinds, NULL, .procs = 2);
    const char *t = g_dump_text;
    cr_assert_not_null(t);
    cr_log_info("dump:\n%s", t);
    char buf[64];
    expect_in(t, "w-mutex", "waiting on mutex 0x");
    expect_in(t, "w-mutex", "wait_mutex (dump.c:");
    expect_in(t, "w-cond", "waiting on cond 0x");
    expect_in(t, "w-cond", "wait_cond (dump.c:");
    expect_in(t, "w-send", "waiting on channel send 0x");
    expect_in(t, "w-send", "weft_chan_send");
    expect_in(t, "w-recv", "waiting on channel receive 0x");
    expect_in(t, "w-select", "waiting on select");
    expect_in(t, "w-select", "wait_select (dump.c:");
    expect_in(t, "w-join", "waiting on join of #");
    expect_in(t, "w-offload", "waiting on offloaded call slow_call()");
    expect_in(t, "w-offload", "wait_offload (dump.c:");
    snprintf(buf, sizeof buf, "waiting on fd readable fd %d", g_rpipe[0]);
    expect_in(t, "w-read", buf);
    expect_in(t, "w-read", "weft_read");
    snprintf(buf, sizeof buf, "waiting on fd writable fd %d", g_wsock[0]);
    expect_in(t, "w-write", buf);
    expect_in(t, "w-poll", "waiting on poll");
    expect_in(t, "w-poll", "wait_poll (dump.c:");
    free(g_dump_text);
}
