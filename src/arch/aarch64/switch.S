/* SPDX-License-Identifier: MIT */
/*
 * AArch64 (AAPCS64) context switch.
 *
 * AAPCS64 makes x19-x28, the frame pointer x29, the stack pointer and the
 * low 64 bits of v8-v15 (d8-d15) callee-saved; the link register x30
 * holds our return address. Everything else may be clobbered by any call,
 * and the compiler treats weft__ctx_switch as a call. So we store those
 * twenty registers and one 16-byte slot holding FPCR (rounding mode,
 * flush-to-zero, trap enables) and FPSR (the cumulative exception flags)
 * on the running context's stack, and store sp in the context. That is
 * the x86-64 side's MXCSR: a thread's floating-point modes and its status
 * flags are its own.
 *
 * MSR FPCR can be slow (it may synchronise the pipeline on some cores),
 * and threads almost never change their floating-point modes: so, as on
 * x86-64, the switch writes FPCR and FPSR only where the saved value
 * differs from the one just read. Writing an equal value changes nothing,
 * so each thread still resumes with exactly the state it left with.
 *
 * The frame record. The pair (x29, x30) is stored first, at the lowest
 * address, as a compiler's prologue does: the saved x29 is the caller's
 * frame pointer and x30 the return address into the caller, so a walk of
 * a parked thread's stack (sched/backtrace.c, tools/weft-gdb.py) starts
 * from these two words and follows the caller's frame records. The CFI
 * below says where they are, so gdb unwinds through the switch too: the
 * rule (CFA = sp + 176) holds on either side of the change of stack,
 * since both stacks hold the same layout.
 *
 * Save area, from the saved sp upward (offsets in bytes; make.c builds the
 * same layout for a new context and asserts it, context.h names the
 * frame record's offsets):
 *    0  x29 (fp)       8  x30 (lr: the return address)
 *   16  x19  24 x20   32  x21  40 x22   48  x23  56 x24
 *   64  x25  72 x26   80  x27  88 x28
 *   96  d8  104 d9   112  d10 120 d11  128  d12 136 d13  144 d14  152 d15
 *  160  fpcr         168  fpsr
 * 176 bytes in all: sp stays 16-byte aligned, as AAPCS64 requires of
 * every access through sp.
 */
        .text
        .globl  weft__ctx_switch
        .hidden weft__ctx_switch
        .type   weft__ctx_switch, %function
        .p2align 4
/* void weft__ctx_switch(weft__ctx *from (x0), weft__ctx *to (x1)) */
weft__ctx_switch:
        .cfi_startproc
        stp     x29, x30, [sp, #-176]!
        .cfi_def_cfa_offset 176
        .cfi_offset x29, -176
        .cfi_offset x30, -168
        stp     x19, x20, [sp, #16]
        stp     x21, x22, [sp, #32]
        stp     x23, x24, [sp, #48]
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr                /* x9-x13: caller-saved */
        mrs     x10, fpsr
        stp     x9, x10, [sp, #160]
        mov     x11, sp
        str     x11, [x0]
        ldr     x11, [x1]
        mov     sp, x11
        ldp     x12, x13, [sp, #160]
        cmp     x12, x9
        b.ne    .Lload_fpcr
.Lfpcr_done:
        cmp     x13, x10
        b.ne    .Lload_fpsr
.Lfpsr_done:
        ldp     x19, x20, [sp, #16]
        ldp     x21, x22, [sp, #32]
        ldp     x23, x24, [sp, #48]
        ldp     x25, x26, [sp, #64]
        ldp     x27, x28, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        .cfi_remember_state
        ldp     x29, x30, [sp], #176
        .cfi_def_cfa_offset 0
        .cfi_restore x29
        .cfi_restore x30
        ret
        .cfi_restore_state
.Lload_fpcr:
        msr     fpcr, x12
        b       .Lfpcr_done
.Lload_fpsr:
        msr     fpsr, x13
        b       .Lfpsr_done
        .cfi_endproc
        .size   weft__ctx_switch, .-weft__ctx_switch

/* First code of a new context: make.c leaves entry in x20 and its argument
 * in x19, x29 zero (the end of the frame chain) and sp 16-byte aligned.
 * The entry never returns; brk traps if it does. x30 (the return address
 * column) is marked undefined so that unwinders stop here: this is the
 * outermost frame of a virtual thread. */
        .globl  weft__ctx_entry
        .hidden weft__ctx_entry
        .type   weft__ctx_entry, %function
        .p2align 2
weft__ctx_entry:
        .cfi_startproc
        .cfi_undefined x30
        mov     x0, x19
        blr     x20
        brk     #0x1
        .cfi_endproc
        .size   weft__ctx_entry, .-weft__ctx_entry

        .section .note.GNU-stack,"",%progbits
