/* SPDX-License-Identifier: MIT */
/*
 * x86-64 System V context switch.
 *
 * The ABI makes rbx, rbp, r12-r15, the stack pointer, the x87 control word
 * and the MXCSR control bits callee-saved; everything else may be clobbered
 * by any call, and the compiler treats weft__ctx_switch as a call. So we push
 * the six registers and one 8-byte slot holding MXCSR (low 4 bytes) and the
 * x87 control word (next 2 bytes), and store rsp in the context.
 *
 * ldmxcsr is slow (microcoded, several times a plain load), and threads
 * almost never change their floating-point modes: so the switch loads the
 * saved MXCSR and control word only where they differ from the values just
 * saved. Loading a value equal to the current one changes nothing, so each
 * thread still resumes with exactly the state it left with, status flags
 * included.
 *
 * Save area, from the saved sp upward (offsets in bytes; make.c builds the
 * same layout for a new context and asserts it):
 *    0  mxcsr          4  x87 control word
 *    8  r15           16  r14          24  r13          32  r12
 *   40  rbx           48  rbp          56  return address
 */
        .text
        .globl  weft__ctx_switch
        .hidden weft__ctx_switch
        .type   weft__ctx_switch, @function
/* void weft__ctx_switch(weft__ctx *from (rdi), weft__ctx *to (rsi)) */
weft__ctx_switch:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)
        movl    (%rsp), %eax            /* rax, rcx: caller-saved */
        movzwl  4(%rsp), %ecx
        movq    (%rsi), %rsp
        cmpl    (%rsp), %eax
        jne     .Lload_mxcsr
.Lmxcsr_done:
        cmpw    4(%rsp), %cx
        jne     .Lload_cw
.Lcw_done:
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
.Lload_mxcsr:
        ldmxcsr (%rsp)
        jmp     .Lmxcsr_done
.Lload_cw:
        fldcw   4(%rsp)
        jmp     .Lcw_done
        .cfi_endproc
        .size   weft__ctx_switch, .-weft__ctx_switch

/* First code of a new context: make.c leaves entry in r13 and its argument
 * in r12, with rsp 16-byte aligned, as a call requires. The entry never
 * returns; ud2 traps if it does. rip is marked undefined so that unwinders
 * stop here: this is the outermost frame of a virtual thread. */
        .globl  weft__ctx_entry
        .hidden weft__ctx_entry
        .type   weft__ctx_entry, @function
weft__ctx_entry:
        .cfi_startproc
        .cfi_undefined rip
        movq    %r12, %rdi
        callq   *%r13
        ud2
        .cfi_endproc
        .size   weft__ctx_entry, .-weft__ctx_entry

        .section .note.GNU-stack,"",@progbits
