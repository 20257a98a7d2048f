// wt_check.hh — CHECK for the plain C++ test programs (tests/cxx*.cc),
// which the C runner (crit-shim) cannot host: a failed check prints its
// file:line and is counted in `failures`; the program exits non-zero when
// any failed. One translation unit per program.
#ifndef WT_CHECK_HH
#define WT_CHECK_HH

#include <cstdio>

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,    \
                         __LINE__, #cond);                                 \
            failures++;                                                    \
        }                                                                  \
    } while (0)

#endif
