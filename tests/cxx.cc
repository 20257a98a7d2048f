/* SPDX-License-Identifier: MIT */
// cxx.cc — weft.h from C++: it compiles (C++11 and later), its errno
// accessor works there, and library headers included after it (whose
// templates read errno, as std::stoi does) compile against the accessor.
// A plain program: exits 0 when every check passed.
#include <weft.h>

#include "wt_check.hh"

#include <cerrno>
#include <cstdio>
#include <string>

static int body(void *)
{
    for (int i = 0; i < 1000; i++) {
        errno = 1000 + i;
        CHECK(weft_sleep(i % 2 ? 10000 : 0) == 0);
        CHECK(errno == 1000 + i);
    }
    errno = 0;
    CHECK(std::stoi("42") == 42); // a libstdc++ template that reads errno
    CHECK(errno == 0);
    CHECK(&errno == weft_errno_location());
    return 0;
}

// A function-local static whose initialiser parks (weft_sleep). It runs
// pinned: on one P, with hand-offs held off, a second thread that reached
// the same static while the initialiser was parked would wait in
// libstdc++ on the only carrier, which the initialiser needs back.
static int slow_init()
{
    CHECK(weft_sleep(20 * 1000000) == 0);
    return 7;
}

static int use_static(void *)
{
    static int value = slow_init();
    CHECK(value == 7);
    return 0;
}

static int statics(void *)
{
    weft_thread *a = weft_go(use_static, nullptr);
    weft_thread *b = weft_go(use_static, nullptr);
    int ra = -1, rb = -1;
    CHECK(weft_join(a, &ra) == 0 && ra == 0);
    CHECK(weft_join(b, &rb) == 0 && rb == 0);
    return 0;
}

int main()
{
    weft_config cfg = {};
    cfg.procs = 2;
    int rc = weft_run(body, nullptr, &cfg);
    CHECK(rc == 0);
    weft_config one = {};
    one.procs = 1;
    one.hog_ms = 10000;
    CHECK(weft_run(statics, nullptr, &one) == 0);
    if (failures)
        std::fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
