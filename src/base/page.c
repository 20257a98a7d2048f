/* SPDX-License-Identifier: MIT */
/*
 * page.c — the system's page size, read once when the library is loaded,
 * before any code of the program's can start a runtime (page.h).
 */
#include <unistd.h>

#include "base/page.h"

size_t weft__page_size = 4096; /* until the constructor has run */

__attribute__((constructor)) static void read_page_size(void)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page > 0)
        weft__page_size = (size_t)page;
}
