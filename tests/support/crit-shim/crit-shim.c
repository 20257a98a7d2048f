/* SPDX-License-Identifier: MIT */
/*
 * crit-shim.c — the runner behind crit-shim/criterion/criterion.h: forks
 * one process per test (at most -jN at once), kills it at its time-out, and
 * prints [PASS]/[FAIL]/[SKIP] lines like Criterion's. Options: -jN,
 * --filter=suite/glob, --list (names the tests, runs none), --verbose (a
 * [RUN ] line as each test starts, so that a log cut short names what was
 * running), --short-filename (failures name a file without its directory),
 * others ignored.
 *
 * Skips are reported as skips, never as passes: each skipped test gets a
 * `SKIPPED: suite::name (reason)` line at the end, beside the count line
 * `<program>: N passed, N failed, N skipped`. The exit status is 1 if any
 * test failed, else 77 if every test it ran was skipped (or none was
 * selected), which ctest shows as "Skipped" under SKIP_RETURN_CODE 77;
 * else 0. With WT_SKIP_LOG set, the SKIPPED lines are appended to
 * that file too (tests/CMakeLists.txt: weft.skipped lists them at the end
 * of a ctest run).
 */
#include <fnmatch.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "criterion/criterion.h"

struct cs_test {
    const char *suite, *name;
    void (*fn)(void);
    struct cs_opts opts;
    pid_t pid;
    double started;
    char *reason; /* why it skipped; in memory shared with its process */
    bool skipped;
};

/* The exit status of a test process that skipped (its reason is set). */
#define CS_EXIT_SKIP 77
#define CS_REASON 256

static struct cs_test tests[1024];
static int ntests;
static int expect_failed;
static bool verbose, short_filename;
static struct cs_test *current; /* in a test's process: its test */

void cs_register(const char *suite, const char *name, void (*fn)(void),
                 struct cs_opts opts)
{
    if (ntests == (int)(sizeof tests / sizeof tests[0])) {
        /* Never run a program with some of its tests silently left out. */
        fprintf(stderr, "crit-shim: more than %d tests; raise the limit\n",
                ntests);
        exit(2);
    }
    tests[ntests++] =
        (struct cs_test){suite, name, fn, opts, 0, 0, NULL, false};
}

/* fmt's text, without the blank that stands for "no message". */
static void format_msg(char *buf, size_t n, const char *fmt, va_list ap)
{
    vsnprintf(buf, n, fmt, ap);
    size_t skip = strspn(buf, " ");
    memmove(buf, buf + skip, strlen(buf + skip) + 1);
}

static void report(const char *file, int line, bool fatal, const char *what,
                   const char *detail, const char *msg)
{
    if (short_filename)
        file = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    fprintf(stderr, "[----] %s:%d: Assertion Failed: %s%s%s%s%s\n", file,
            line, what, *detail ? ": " : "", detail,
            *msg ? (*detail ? "; " : ": ") : "", msg);
    if (fatal)
        _exit(1);
    expect_failed = 1;
}

void cs_fail(const char *file, int line, bool fatal, const char *what,
             const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    format_msg(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report(file, line, fatal, what, "", msg);
}

void cs_fail_cmp(const char *file, int line, bool fatal, const char *what,
                 const char *op, const char *a, const char *b,
                 const char *fmt, ...)
{
    char msg[1024], detail[200];
    va_list ap;
    va_start(ap, fmt);
    format_msg(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bool eq = !strcmp(op, "==");
    snprintf(detail, sizeof detail, "got %s, expected %s%s%s", a,
             eq ? "" : op, eq ? "" : " ", b);
    report(file, line, fatal, what, detail, msg);
}

void cs_fmt_i(char *buf, size_t n, long long v)
{
    snprintf(buf, n, "%lld", v);
}

void cs_fmt_u(char *buf, size_t n, unsigned long long v)
{
    snprintf(buf, n, "%llu", v);
}

void cs_fmt_f(char *buf, size_t n, long double v)
{
    snprintf(buf, n, "%Lg", v);
}

void cs_fmt_p(char *buf, size_t n, const volatile void *v)
{
    snprintf(buf, n, "%p", (const void *)v);
}

void cs_skip(const char *fmt, ...)
{
    char why[CS_REASON];
    va_list ap;
    va_start(ap, fmt);
    format_msg(why, sizeof why, fmt, ap);
    va_end(ap);
    if (!*why)
        snprintf(why, sizeof why, "no reason given");
    fflush(NULL);
    if (expect_failed) { /* a failure is never hidden by a skip */
        fprintf(stderr, "[----] skipped after a failed check: %s\n", why);
        _exit(1);
    }
    if (current)
        snprintf(current->reason, CS_REASON, "%s", why);
    _exit(CS_EXIT_SKIP);
}

void cs_log(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void start(struct cs_test *t)
{
    if (verbose)
        printf("[RUN ] %s::%s\n", t->suite, t->name);
    fflush(NULL);
    t->started = now();
    t->pid = fork();
    if (t->pid == 0) {
        /* A runner that dies (ctest's time-out, a ^C) takes its tests
         * with it: a hung test must not spin on after it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(1);
        current = t;
        t->fn();
        fflush(NULL);
        _exit(expect_failed);
    }
}

/* Returns 1 if t failed. */
static int finish(struct cs_test *t, int status, bool timed_out)
{
    const char *verdict = "PASS";
    if (timed_out)
        verdict = "FAIL (timed out)";
    else if (WIFSIGNALED(status))
        verdict = "FAIL (crashed)";
    else if (WEXITSTATUS(status) == CS_EXIT_SKIP && t->reason[0])
        verdict = "SKIP";
    else if (WEXITSTATUS(status))
        verdict = "FAIL";
    t->skipped = !strcmp(verdict, "SKIP");
    printf("[%s] %s::%s: %s%s(%.2fs)\n", verdict, t->suite, t->name,
           t->skipped ? t->reason : "", t->skipped ? " " : "",
           now() - t->started);
    t->pid = 0;
    return !t->skipped && strcmp(verdict, "PASS") != 0;
}

static int reap(struct cs_test **running, int n)
{
    int failed = 0;
    for (int i = 0; i < n; i++) {
        struct cs_test *t = running[i];
        if (!t || !t->pid)
            continue;
        int status;
        pid_t r = waitpid(t->pid, &status, WNOHANG);
        double limit = t->opts.timeout > 0 ? t->opts.timeout : 60;
        if (r == t->pid) {
            failed += finish(t, status, false);
            running[i] = NULL;
        } else if (now() - t->started > limit) {
            /* SIGQUIT first: a weft program prints its dump (every
             * thread, what it waits on, its stack) and goes on. */
            kill(t->pid, SIGQUIT);
            for (int k = 0; k < 100 && !waitpid(t->pid, &status, WNOHANG); k++)
                usleep(10000);
            kill(t->pid, SIGKILL);
            waitpid(t->pid, &status, 0);
            failed += finish(t, status, true);
            running[i] = NULL;
        }
    }
    return failed;
}

static bool selected(const struct cs_test *t, const char *filter)
{
    char full[256];
    snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
    return !t->opts.disabled && (!filter || !fnmatch(filter, full, 0));
}

/* Criterion's --list: each suite, then its tests. */
static void list(const char *filter)
{
    for (int k = 0; k < ntests; k++) {
        if (!selected(&tests[k], filter))
            continue;
        if (k == 0 || strcmp(tests[k].suite, tests[k - 1].suite))
            printf("%s:\n", tests[k].suite);
        printf("├── %s\n", tests[k].name);
    }
}

/* Runs the selected tests, -jN at a time; returns how many failed. */
static int run_all(const char *filter, int jobs, int *total)
{
    struct cs_test *running[64] = {0};
    int failed = 0;
    for (int k = 0; k < ntests; k++) {
        struct cs_test *t = &tests[k];
        if (!selected(t, filter))
            continue;
        ++*total;
        for (;;) {
            failed += reap(running, jobs);
            int slot = -1;
            for (int i = 0; i < jobs && slot < 0; i++)
                if (!running[i])
                    slot = i;
            if (slot >= 0) {
                running[slot] = t;
                start(t);
                break;
            }
            usleep(2000);
        }
    }
    for (bool busy = true; busy;) {
        failed += reap(running, jobs);
        busy = false;
        for (int i = 0; i < jobs; i++)
            busy |= running[i] != NULL;
        if (busy)
            usleep(2000);
    }
    return failed;
}

/* The SKIPPED lines, on stdout and in WT_SKIP_LOG; their count. */
static int report_skips(const char *prog)
{
    const char *path = getenv("WT_SKIP_LOG");
    FILE *log = path && *path ? fopen(path, "a") : NULL;
    int skipped = 0;
    for (int k = 0; k < ntests; k++) {
        struct cs_test *t = &tests[k];
        if (!t->skipped)
            continue;
        skipped++;
        printf("SKIPPED: %s::%s (%s)\n", t->suite, t->name, t->reason);
        if (log)
            fprintf(log, "SKIPPED: %s: %s::%s (%s)\n", prog, t->suite,
                    t->name, t->reason);
    }
    if (log)
        fclose(log);
    return skipped;
}

int main(int argc, char **argv)
{
    int jobs = 1;
    const char *filter = NULL;
    bool list_only = false;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "-j", 2))
            jobs = atoi(argv[i] + 2) > 0 ? atoi(argv[i] + 2) : 1;
        else if (!strncmp(argv[i], "--filter=", 9))
            filter = argv[i] + 9;
        else if (!strcmp(argv[i], "--verbose"))
            verbose = true;
        else if (!strcmp(argv[i], "--short-filename"))
            short_filename = true;
        else if (!strcmp(argv[i], "--list"))
            list_only = true;
    }
    if (list_only) {
        list(filter);
        return 0;
    }
    if (jobs > 64)
        jobs = 64;
    char *reasons = mmap(NULL, (size_t)(ntests ? ntests : 1) * CS_REASON,
                         PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                         -1, 0);
    if (reasons == MAP_FAILED) {
        perror("crit-shim: mmap");
        return 2;
    }
    for (int k = 0; k < ntests; k++)
        tests[k].reason = reasons + (size_t)k * CS_REASON;
    int total = 0;
    int failed = run_all(filter, jobs, &total);
    const char *prog = basename(argv[0]);
    int skipped = report_skips(prog);
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | "
           "Skipped: %d\n", total, total - failed - skipped, failed, skipped);
    printf("%s: %d passed, %d failed, %d skipped\n", prog,
           total - failed - skipped, failed, skipped);
    if (failed)
        return 1;
    if (skipped == total) {
        printf("SKIPPED: %s: %s\n", prog,
               total ? "every test it ran was skipped" : "no test selected");
        return 77;
    }
    return 0;
}
