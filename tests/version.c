/* SPDX-License-Identifier: MIT */
/*
 * version.c — the library says the version its header says, and the
 * shared library's soname follows the versioning policy (README.md,
 * "Versioning"): libweft.so.MAJOR from 1.0 on, libweft.so.0.MINOR before.
 *
 * Built twice (tests/CMakeLists.txt): against libweft.a, and against
 * libweft.so (test_version_shared), which alone has the soname test: it
 * finds the file weft_version was loaded from, named by its soname.
 */
#include "wt.h"

#include <dlfcn.h>
#include <libgen.h>

Test(version, library_says_the_header_version, .timeout = 10)
{
    cr_assert(weft_version() != NULL);
    cr_assert(strcmp(weft_version(), WEFT_VERSION) == 0,
              "weft_version() is \"%s\", WEFT_VERSION \"%s\"", weft_version(),
              WEFT_VERSION);
}

Test(version, string_is_the_numbers, .timeout = 10)
{
    char parts[64];
    snprintf(parts, sizeof parts, "%d.%d.%d", WEFT_VERSION_MAJOR,
             WEFT_VERSION_MINOR, WEFT_VERSION_PATCH);
    cr_assert(strcmp(parts, WEFT_VERSION) == 0,
              "the numbers say %s, WEFT_VERSION \"%s\"", parts, WEFT_VERSION);
}

static int version_in_thread(void *arg)
{
    *(const char **)arg = weft_version();
    return 0;
}

Test(version, same_on_a_virtual_thread, .timeout = 10)
{
    const char *seen = NULL;
    WT_RUN(version_in_thread, &seen, .procs = 1);
    cr_assert(seen == weft_version(), "one static string");
}

#ifdef WT_LINK_SHARED
Test(version, soname_follows_the_policy, .timeout = 10)
{
    Dl_info info;
    cr_assert(dladdr((void *)weft_version, &info) && info.dli_fname);
    char path[4096];
    snprintf(path, sizeof path, "%s", info.dli_fname);
    char want[64];
    if (WEFT_VERSION_MAJOR == 0)
        snprintf(want, sizeof want, "libweft.so.0.%d", WEFT_VERSION_MINOR);
    else
        snprintf(want, sizeof want, "libweft.so.%d", WEFT_VERSION_MAJOR);
    cr_assert(strcmp(basename(path), want) == 0,
              "weft_version is in %s, its soname should be %s",
              info.dli_fname, want);
}
#endif
