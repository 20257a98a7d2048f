// cxx.cc — weft.h from C++: it compiles (C++11 and later), its errno
// accessor works there, and library headers included after it (whose
// templates read errno, as std::stoi does) compile against the accessor.
// A plain program: exits 0 when every check passed.
#include <weft.h>

#include <cerrno>
#include <cstdio>
#include <string>

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,    \
                         __LINE__, #cond);                                 \
            failures++;                                                    \
        }                                                                  \
    } while (0)

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

int main()
{
    weft_config cfg = {};
    cfg.procs = 2;
    int rc = weft_run(body, nullptr, &cfg);
    CHECK(rc == 0);
    if (failures)
        std::fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
