/* SPDX-License-Identifier: MIT */
/*
 * wt_report.h — how a test reports: a failure at the line of the test
 * that caused it, and a skip as a skip.
 *
 * Failures. A helper that checks something (wt_join, wt_connect,
 * wt_assert_clean ...) is a macro that passes WT_HERE, the caller's
 * file:line, to the function doing the work, which reports with
 * wt_report(at, ...): the report names the test's line and the values,
 * never the helper's own line.
 *
 *   WT_HERE                         this file:line, as a value
 *   wt_report(at, fatal, what, fmt, ...)
 *                                   a failure at `at`: fatal ends the test
 *                                   (as cr_assert), else the test goes on
 *                                   and fails at its end (as cr_expect)
 *   WT_ASSERT_AT(at, cond, fmt, ...) / WT_EXPECT_AT(at, cond, fmt, ...)
 *
 * Skips. A test that cannot run here (a kernel feature, a sanitizer that
 * cannot work under a limit) calls cr_skip_test("why"): it is reported as
 * SKIP with its reason, never as a pass, and a program whose every test
 * skipped exits 77, which ctest shows as "Skipped" (tests/CMakeLists.txt).
 *
 *   wt_skip_without_backend()       skips when WEFT_IO=uring and the
 *                                   kernel refuses io_uring
 *
 * Runs on: the test's main OS thread only (a fatal report ends the
 * test's process there); virtual threads record failures instead (wt.h).
 */
#ifndef WT_REPORT_H
#define WT_REPORT_H

#include <criterion/criterion.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Sanitizer builds are several times slower (time bounds are scaled),
 * and some tests cannot run under them at all (they skip). */
#if defined(WEFT_SANITIZE) || defined(__SANITIZE_ADDRESS__) || \
    defined(__SANITIZE_THREAD__)
#define WT_SANITIZED 1
#else
#define WT_SANITIZED 0
#endif

struct wt_here {
    const char *file;
    int line;
};

#define WT_HERE ((struct wt_here){__FILE__, __LINE__})

/* Reports a failed check `what` at `at`, with fmt's message (a blank
 * one: none). Under the suite's runner the report goes through cs_fail,
 * which takes the location; under Criterion's own (-DWEFT_CRITERION=ON)
 * through criterion_send_assert, which cr_assert itself uses. */
__attribute__((format(printf, 4, 5))) static inline void
wt_report(struct wt_here at, bool fatal, const char *what, const char *fmt,
          ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *m = msg + strspn(msg, " ");
#ifdef WEFT_CRIT_SHIM_H
    cs_fail(at.file, at.line, fatal, what, " %s", m);
#else
    char text[1400];
    snprintf(text, sizeof text, "%s%s%s", what, *m ? ": " : "", m);
    struct criterion_assert_stats st = {.message = text, .passed = false,
                                        .file = at.file,
                                        .line = (unsigned)at.line};
    criterion_send_assert(&st);
    if (fatal)
        criterion_abort_test();
#endif
}

#define WT_ASSERT_AT(at, cond, ...)                                        \
    do {                                                                   \
        if (!(cond))                                                       \
            wt_report((at), true, #cond, " " __VA_ARGS__);                 \
    } while (0)

#define WT_EXPECT_AT(at, cond, ...)                                        \
    do {                                                                   \
        if (!(cond))                                                       \
            wt_report((at), false, #cond, " " __VA_ARGS__);                \
    } while (0)

/* Skips the calling test when WEFT_IO asks for io_uring and the kernel
 * refuses it (too old, or disabled by kernel.io_uring_disabled): such a
 * run tests nothing of weft. Asks the kernel once per process. */
/* Skips the test when the kernel (or the emulator) refuses io_uring. */
static inline void wt_skip_without_uring(void)
{
    static int refused = -1; /* the errno of io_uring_setup; 0: allowed */
    if (refused < 0) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        int fd = (int)syscall(__NR_io_uring_setup, 2, &p);
        refused = fd >= 0 ? 0 : errno;
        if (fd >= 0)
            close(fd);
    }
    if (refused)
        cr_skip_test("WEFT_IO=uring, and the kernel refuses io_uring: %s",
                     strerror(refused));
}

static inline void wt_skip_without_backend(void)
{
    const char *io = getenv("WEFT_IO");
    if (io && strcmp(io, "uring") == 0)
        wt_skip_without_uring();
}

/* Skips the test in a cross build's run under qemu-user (WT_EMULATED in
 * its environment: tests/CMakeLists.txt), which lacks what it tests:
 * why names the missing piece (README, Platforms). */
#define wt_skip_if_emulated(why)                                           \
    do {                                                                   \
        if (getenv("WT_EMULATED"))                                         \
            cr_skip_test("under qemu-user: %s", why);                      \
    } while (0)

#endif /* WT_REPORT_H */
