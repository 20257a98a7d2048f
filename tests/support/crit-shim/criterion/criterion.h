/*
 * A stand-in for the part of Criterion's API the suite uses, and the
 * suite's default runner (tests/CMakeLists.txt says why: Criterion's runner
 * can hang on the way out, and cannot start under TSan). Same contract:
 * each Test runs in its own forked process with its own time-out;
 * cr_assert* end the test, cr_expect* mark it failed and go on.
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
void cs_fail(const char *file, int line, bool fatal, const char *what,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
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

#define CS_MSG(...) " " __VA_ARGS__
#define cs_check(fatal, cond, what, ...)                                    \
    do {                                                                    \
        if (!(cond))                                                        \
            cs_fail(__FILE__, __LINE__, fatal, what, CS_MSG(__VA_ARGS__));  \
    } while (0)

#define cr_assert(cond, ...) cs_check(true, (cond), #cond, __VA_ARGS__)
#define cr_expect(cond, ...) cs_check(false, (cond), #cond, __VA_ARGS__)
#define CS_OP(fatal, op, a, b, ...)                                         \
    cs_check(fatal, (a) op (b), #a " " #op " " #b, __VA_ARGS__)
#define cr_assert_eq(a, b, ...) CS_OP(true, ==, a, b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) CS_OP(false, ==, a, b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) CS_OP(true, !=, a, b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) CS_OP(false, !=, a, b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) CS_OP(true, <, a, b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...) CS_OP(false, <, a, b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) CS_OP(true, <=, a, b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) CS_OP(false, <=, a, b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) CS_OP(true, >, a, b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...) CS_OP(false, >, a, b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) CS_OP(true, >=, a, b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) CS_OP(false, >=, a, b, __VA_ARGS__)
#define cr_assert_null(p, ...) cs_check(true, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_expect_null(p, ...) cs_check(false, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) cs_check(true, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_expect_not_null(p, ...) cs_check(false, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_log_info(...) cs_log("INFO", __VA_ARGS__)
#define cr_log_warn(...) cs_log("WARN", __VA_ARGS__)

#endif
