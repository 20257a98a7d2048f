/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for the part of Criterion's API the suite uses, and the
 * suite's default runner (tests/CMakeLists.txt says why: Criterion's runner
 * can hang on the way out, and cannot start under TSan). Same contract:
 * each Test runs in its own forked process with its own time-out;
 * cr_assert* end the test, cr_expect* mark it failed and go on,
 * cr_skip_test ends it as skipped.
 *
 * Beyond Criterion: a failed comparison (cr_assert_eq ...) prints both
 * values, each operand evaluated once; cs_fail reports a failure at a
 * file:line of the caller's choosing (a helper reports at its caller's
 * line with it); the runner's exit status is 77 when every test it ran
 * was skipped (crit-shim.c).
 */
#ifndef WEFT_CRIT_SHIM_H
#define WEFT_CRIT_SHIM_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct cs_opts {
    double timeout;
    int disabled;
};

void cs_register(const char *suite, const char *name, void (*fn)(void),
                 struct cs_opts opts);
/* Reports a failed check at file:line: `what` is the check, fmt the
 * message (may be empty). fatal ends the test (cr_assert), otherwise it
 * goes on and fails at the end (cr_expect). */
void cs_fail(const char *file, int line, bool fatal, const char *what,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Ends the test as skipped, saying why; a test that already failed a
 * cr_expect fails instead. */
void cs_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2),
                                                  noreturn));
void cs_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define Test(suite, name, ...)                                              \
    static void cs_##suite##_##name(void);                                  \
    __attribute__((constructor)) static void cs_reg_##suite##_##name(void)  \
    {                                                                       \
        cs_register(#suite, #name, cs_##suite##_##name,                     \
                    (struct cs_opts){__VA_ARGS__});                         \
    }                                                                       \
    static void cs_##suite##_##name(void)

/* The message: a blank one stands for none (cs_fail leaves it out). */
#define CS_MSG(...) " " __VA_ARGS__
#define cs_check(fatal, cond, what, ...)                                    \
    do {                                                                    \
        if (!(cond))                                                        \
            cs_fail(__FILE__, __LINE__, fatal, what, CS_MSG(__VA_ARGS__));  \
    } while (0)

/* One operand's value as text, by its type. */
void cs_fmt_i(char *buf, size_t n, long long v);
void cs_fmt_u(char *buf, size_t n, unsigned long long v);
void cs_fmt_f(char *buf, size_t n, long double v);
void cs_fmt_p(char *buf, size_t n, const volatile void *v);
#define CS_FMT(buf, x)                                                      \
    _Generic((x),                                                           \
        _Bool: cs_fmt_i, char: cs_fmt_i, signed char: cs_fmt_i,             \
        short: cs_fmt_i, int: cs_fmt_i, long: cs_fmt_i,                     \
        long long: cs_fmt_i, unsigned char: cs_fmt_u,                       \
        unsigned short: cs_fmt_u, unsigned: cs_fmt_u,                       \
        unsigned long: cs_fmt_u, unsigned long long: cs_fmt_u,              \
        float: cs_fmt_f, double: cs_fmt_f, long double: cs_fmt_f,           \
        default: cs_fmt_p)(buf, sizeof buf, x)

/* "got A, expected B" (==), "got A, expected < B" (the others): each
 * operand is evaluated once, into a variable; the comparison converts
 * them as (a) op (b) would, and -Wsign-compare, which a constant operand
 * used to keep quiet, is off for it. */
void cs_fail_cmp(const char *file, int line, bool fatal, const char *what,
                 const char *op, const char *a, const char *b,
                 const char *fmt, ...) __attribute__((format(printf, 8, 9)));
#define CS_OP(fatal, op, a, b, what, ...)                                   \
    do {                                                                    \
        __auto_type cs_a_ = (a);                                            \
        __auto_type cs_b_ = (b);                                            \
        _Pragma("GCC diagnostic push");                                     \
        _Pragma("GCC diagnostic ignored \"-Wsign-compare\"");               \
        bool cs_ok_ = cs_a_ op cs_b_;                                       \
        _Pragma("GCC diagnostic pop");                                      \
        if (!cs_ok_) {                                                      \
            char cs_ta_[64], cs_tb_[64];                                    \
            CS_FMT(cs_ta_, cs_a_);                                          \
            CS_FMT(cs_tb_, cs_b_);                                          \
            cs_fail_cmp(__FILE__, __LINE__, fatal, what, #op, cs_ta_,       \
                        cs_tb_, CS_MSG(__VA_ARGS__));                       \
        }                                                                   \
    } while (0)

#define cr_assert(cond, ...) cs_check(true, (cond), #cond, __VA_ARGS__)
#define cr_expect(cond, ...) cs_check(false, (cond), #cond, __VA_ARGS__)
#define cr_assert_eq(a, b, ...)                                             \
    CS_OP(true, ==, a, b, #a " == " #b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...)                                             \
    CS_OP(false, ==, a, b, #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...)                                            \
    CS_OP(true, !=, a, b, #a " != " #b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...)                                            \
    CS_OP(false, !=, a, b, #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...)                                             \
    CS_OP(true, <, a, b, #a " < " #b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...)                                             \
    CS_OP(false, <, a, b, #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...)                                            \
    CS_OP(true, <=, a, b, #a " <= " #b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...)                                            \
    CS_OP(false, <=, a, b, #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...)                                             \
    CS_OP(true, >, a, b, #a " > " #b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...)                                             \
    CS_OP(false, >, a, b, #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...)                                            \
    CS_OP(true, >=, a, b, #a " >= " #b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...)                                            \
    CS_OP(false, >=, a, b, #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...)                                              \
    cs_check(true, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_expect_null(p, ...)                                              \
    cs_check(false, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...)                                          \
    cs_check(true, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_expect_not_null(p, ...)                                          \
    cs_check(false, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_skip_test(...) cs_skip(" " __VA_ARGS__)
#define cr_log_info(...) cs_log("INFO", __VA_ARGS__)
#define cr_log_warn(...) cs_log("WARN", __VA_ARGS__)

#endif
