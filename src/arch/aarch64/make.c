/* SPDX-License-Identifier: MIT */
/*
 * make.c — builds the initial save area of a new AArch64 context, matching
 * the layout documented in switch.S.
 */
#include <stdint.h>

#include "arch/context.h"

void weft__ctx_entry(void);

enum {
    SLOT_X29, SLOT_X30, SLOT_X19, SLOT_X20, SLOT_X21, SLOT_X22, SLOT_X23,
    SLOT_X24, SLOT_X25, SLOT_X26, SLOT_X27, SLOT_X28,
    SLOT_D8, SLOT_D15 = SLOT_D8 + 7, SLOT_FPCR, SLOT_FPSR, SLOT_COUNT
};
_Static_assert(SLOT_COUNT * 8 == WEFT__CTX_SAVE_BYTES,
               "save area is 176 bytes: see switch.S");
_Static_assert(SLOT_X29 * 8 == WEFT__CTX_FP_AT &&
                   SLOT_X30 * 8 == WEFT__CTX_PC_AT,
               "the frame record opens the save area: see switch.S");

void weft__ctx_make(weft__ctx *c, void *lo, size_t size,
                    void (*entry)(void *), void *arg)
{
    /* AAPCS64: sp is 16-byte aligned at every access through it. */
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 16) - SLOT_COUNT;
    for (int i = 0; i < SLOT_COUNT; i++)
        sp[i] = 0; /* x29 = 0 ends the frame chain; FPCR 0: round to
                      nearest, no traps, no flush-to-zero; FPSR 0: clear */
    sp[SLOT_X30] = (uint64_t)(uintptr_t)weft__ctx_entry;
    sp[SLOT_X19] = (uint64_t)(uintptr_t)arg;
    sp[SLOT_X20] = (uint64_t)(uintptr_t)entry;
    c->sp = sp;
}
