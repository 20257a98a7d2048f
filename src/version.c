/* SPDX-License-Identifier: MIT */
/*
 * version.c — weft_version: the library's version, as its header states it.
 *
 * The string is the one in weft.h, compiled into the library: a program
 * that compares weft_version() with WEFT_VERSION learns whether the
 * libweft.so it runs with is the one it was built against. CMakeLists.txt
 * checks, when it configures, that weft.h's macros match project()'s
 * VERSION, from which the shared library's VERSION and SOVERSION come.
 */
#include "base/compiler.h"

const char *weft_version(void)
{
    return WEFT_VERSION;
}
