/* SPDX-License-Identifier: MIT */
/*
 * page.h — the size of a page of memory: what stacks, guard pages, slabs
 * and the alternate signal stacks are rounded to and protected in.
 *
 * x86-64 Linux has 4 KiB base pages and no other: there it is a constant,
 * so that the spawn path (thread.c rounds every asked stack size) keeps
 * an immediate operand. AArch64 kernels are built with 4, 16 or 64 KiB
 * pages: there it is the system's, read once when the library is loaded
 * (page.c), a plain global load on the paths that need it.
 */
#ifndef WEFT_BASE_PAGE_H
#define WEFT_BASE_PAGE_H

#include <stddef.h>

extern size_t weft__page_size; /* written once, at load; never 0 */

static inline size_t weft__page(void)
{
#if defined(__x86_64__)
    return 4096;
#else
    return weft__page_size;
#endif
}

#endif
