/* SPDX-License-Identifier: MIT */
/*
 * overflow_deep.c — overflow.c's frame that jumps the guard page; built
 * with -fno-stack-clash-protection (tests/CMakeLists.txt).
 */
#include <alloca.h>

#include "../support/wt_noipa.h"
#include "overflow_deep.h"

WT_NOIPA int deep_frame(size_t bytes)
{
    WT_OPAQUE_BODY();
    volatile char *big = alloca(bytes);
    big[0] = 1;
    return big[bytes / 2];
}
