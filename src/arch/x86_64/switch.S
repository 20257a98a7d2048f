/* SPDX-License-Identifier: MIT */
/*
 * x86-64 System V context switch.
 *
 * The ABI makes rbx, rbp, r12-r15, the stack pointer, the x87 control word
 * and the MXCSR control bits callee-saved. weft__ctx_switch (context.h)
 * calls weft__ctx_jump from inline assembly that names every register but
 * rbp and rsp as clobbered: the compiler keeps nothing it needs in them
 * across the switch and restores its caller's from its own frame, as it
 * does anyway. So the jump saves only what the compiler cannot be told
 * about: rbp (the frame pointer, which an asm may not clobber), the
 * return address its call pushed, and one 8-byte slot holding MXCSR (low
 * 4 bytes) and the x87 control word (next 2 bytes); it stores rsp in the
 * context. The callee-saved registers are pushed once, by the prologue
 * of the function that switches, not a second time here.
 *
 * ldmxcsr is slow (microcoded, several times a plain load), and threads
 * almost never change their floating-point modes: so the jump loads the
 * saved MXCSR and control word only where they differ from the values just
 * saved. Loading a value equal to the current one changes nothing, so each
 * thread still resumes with exactly the state it left with, status flags
 * included.
 *
 * Save area, from the saved sp upward (offsets in bytes; make.c builds the
 * same layout for a new context and asserts it, context.h names the
 * frame-pointer chain's first link):
 *    0  mxcsr          4  x87 control word
 *    8  rbp           16  return address
 * The CFI (CFA = rsp + 24 after the pushes) holds on either side of the
 * change of stack, since both stacks hold the same layout.
 */
        .text
        .globl  weft__ctx_jump
        .hidden weft__ctx_jump
        .type   weft__ctx_jump, @function
        .p2align 4
/* weft__ctx_jump(weft__ctx *from (rdi), weft__ctx *to (rsi)): called only
 * by weft__ctx_switch's asm. */
weft__ctx_jump:
        .cfi_startproc
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_offset rbp, -16
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movl    (%rsp), %eax            /* rax, rcx: clobbered */
        movzwl  4(%rsp), %ecx
        movq    (%rsi), %rsp
        cmpl    (%rsp), %eax
        jne     .Lload_mxcsr
.Lmxcsr_done:
        cmpw    4(%rsp), %cx
        jne     .Lload_cw
.Lcw_done:
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        .cfi_restore rbp
        ret
        .cfi_adjust_cfa_offset 16
        .cfi_offset rbp, -16
.Lload_mxcsr:
        ldmxcsr (%rsp)
        jmp     .Lmxcsr_done
.Lload_cw:
        fldcw   4(%rsp)
        jmp     .Lcw_done
        .cfi_endproc
        .size   weft__ctx_jump, .-weft__ctx_jump

/* First code of a new context, returned to by the jump: make.c leaves the
 * entry and its argument in the two words at rsp, with rsp 16-byte
 * aligned, as a call requires. The entry never returns; ud2 traps if it
 * does. rip is marked undefined so that unwinders stop here: this is the
 * outermost frame of a virtual thread. */
        .globl  weft__ctx_entry
        .hidden weft__ctx_entry
        .type   weft__ctx_entry, @function
weft__ctx_entry:
        .cfi_startproc
        .cfi_undefined rip
        movq    8(%rsp), %rdi
        callq   *(%rsp)
        ud2
        .cfi_endproc
        .size   weft__ctx_entry, .-weft__ctx_entry

        .section .note.GNU-stack,"",@progbits
