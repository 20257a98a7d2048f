/*
 * crit-shim.c — the runner behind crit-shim/criterion/criterion.h: forks
 * one process per test (at most -jN at once), kills it at its time-out, and
 * prints [PASS]/[FAIL] lines like Criterion's. Exits non-zero if any test
 * failed. Options: -jN, --filter=suite/glob, --verbose (a [RUN ] line as
 * each test starts, so that a log cut short names what was running),
 * others ignored.
 */
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
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
};

static struct cs_test tests[1024];
static int ntests;
static int expect_failed;
static bool verbose;

void cs_register(const char *suite, const char *name, void (*fn)(void),
                 struct cs_opts opts)
{
    if (ntests == (int)(sizeof tests / sizeof tests[0])) {
        /* Never run a program with some of its tests silently left out. */
        fprintf(stderr, "crit-shim: more than %d tests; raise the limit\n",
                ntests);
        exit(2);
    }
    tests[ntests++] = (struct cs_test){suite, name, fn, opts, 0, 0};
}

void cs_fail(const char *file, int line, bool fatal, const char *what,
             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[----] %s:%d: Assertion Failed: %s ", file, line, what);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (fatal)
        _exit(1);
    expect_failed = 1;
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
    else if (WEXITSTATUS(status))
        verdict = "FAIL";
    printf("[%s] %s::%s: (%.2fs)\n", verdict, t->suite, t->name,
           now() - t->started);
    t->pid = 0;
    return strcmp(verdict, "PASS") != 0;
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

int main(int argc, char **argv)
{
    int jobs = 1;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "-j", 2))
            jobs = atoi(argv[i] + 2) > 0 ? atoi(argv[i] + 2) : 1;
        else if (!strncmp(argv[i], "--filter=", 9))
            filter = argv[i] + 9;
        else if (!strcmp(argv[i], "--verbose"))
            verbose = true;
    }
    struct cs_test *running[64] = {0};
    if (jobs > 64)
        jobs = 64;
    int failed = 0, total = 0;
    for (int k = 0; k < ntests; k++) {
        struct cs_test *t = &tests[k];
        char full[256];
        snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
        if (t->opts.disabled || (filter && fnmatch(filter, full, 0)))
            continue;
        total++;
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
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d\n", total,
           total - failed, failed);
    return failed != 0;
}
