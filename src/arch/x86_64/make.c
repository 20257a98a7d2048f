/* SPDX-License-Identifier: MIT */
/*
 * make.c — builds the initial save area of a new x86-64 context, matching
 * the layout documented in switch.S.
 */
#include <stdint.h>

#include "arch/context.h"

void weft__ctx_entry(void);

enum { SLOT_CSR, SLOT_RBP, SLOT_RET, SLOT_ENTRY, SLOT_ARG, SLOT_COUNT };
_Static_assert(SLOT_ENTRY * 8 == WEFT__CTX_SAVE_BYTES,
               "save area is 24 bytes: see switch.S");
_Static_assert(SLOT_RBP * 8 == WEFT__CTX_FP_AT &&
                   SLOT_RET * 8 == WEFT__CTX_PC_AT,
               "context.h names the frame chain's start: see switch.S");

#define MXCSR_DEFAULT 0x1F80u   /* all exceptions masked, round to nearest */
#define X87CW_DEFAULT 0x037Fu   /* all exceptions masked, 64-bit precision */

void weft__ctx_make(weft__ctx *c, void *lo, size_t size,
                    void (*entry)(void *), void *arg)
{
    /* After the ret into weft__ctx_entry, rsp (at SLOT_ENTRY) must be
     * 16-byte aligned so that its call leaves the callee with the ABI's
     * rsp % 16 == 8. */
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 16) - SLOT_ENTRY;
    sp[SLOT_CSR] = MXCSR_DEFAULT | ((uint64_t)X87CW_DEFAULT << 32);
    sp[SLOT_RBP] = 0; /* ends the frame-pointer chain */
    sp[SLOT_RET] = (uint64_t)(uintptr_t)weft__ctx_entry;
    sp[SLOT_ENTRY] = (uint64_t)(uintptr_t)entry;
    sp[SLOT_ARG] = (uint64_t)(uintptr_t)arg;
    c->sp = sp;
}
