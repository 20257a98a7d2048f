/* SPDX-License-Identifier: MIT */
/*
 * caller.c — who called a hook: the program (or libweft), or foreign code.
 *
 * A hook that parks must know whether its caller was compiled knowing of
 * weft. The program includes weft.h, which reads errno through an
 * accessor, and libweft keeps nothing thread-local across a park; any
 * other shared object (libcurl.so, libssl.so, a library the program
 * dlopens) may keep thread-local addresses in registers across the call,
 * so its parks bind the thread to its carrier (sched/bind.c).
 *
 * The hook's return address says which: it lies in the executable
 * segments of the main program or of libweft (the same object when the
 * program links libweft.a), or elsewhere. Those segments are read once,
 * when libweft is loaded, so the test on every hooked call is a few
 * comparisons. Before that (another object's constructor calling read())
 * every caller counts as the program's: no runtime runs yet to bind to.
 */
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>

#include "io/io.h"

#define MAX_RANGES 16

struct weft__code_range weft__own_code[MAX_RANGES];
unsigned weft__own_code_n;
static uintptr_t weft_base; /* load address of the object holding libweft */

static void add_segments(const struct dl_phdr_info *info)
{
    for (unsigned i = 0;
         i < info->dlpi_phnum && weft__own_code_n < MAX_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        weft__own_code[weft__own_code_n++] =
            (struct weft__code_range){lo, lo + ph->p_memsz};
    }
}

/* The first object listed is the main program; libweft is the one whose
 * load address dladdr gave for a function of ours. */
static int collect(struct dl_phdr_info *info, size_t size, void *first)
{
    (void)size;
    bool *is_first = first;
    if (*is_first || info->dlpi_addr == weft_base)
        add_segments(info);
    *is_first = false;
    return 0;
}

__attribute__((constructor)) static void find_own_code(void)
{
    Dl_info di;
    if (dladdr((void *)find_own_code, &di) && di.dli_fbase)
        weft_base = (uintptr_t)di.dli_fbase;
    bool first = true;
    dl_iterate_phdr(collect, &first);
}
