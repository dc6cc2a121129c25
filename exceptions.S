/*
 * Copyright 2026 The vmbase Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The EL1 vector table that calls the application's C-ABI exception handlers.
 *
 * vmbase runs ordinary code on SP_EL0 (EL1t) and handlers on SP_EL1 (EL1h), a separate exception
 * stack set up by entry.S. So an exception taken from ordinary code, even one caused by a stack
 * overflow, arrives on a known-good stack through the "current EL with SP0" entries. An
 * exception taken while a handler runs (EL1h, the "SPx" entries) means the handler itself failed:
 * synchronous faults and SErrors there go to vmbase_nested_exception, which does not return.
 *
 * Handlers are called as `extern "C" fn(elr: u64, spsr: u64, frame: &mut ExceptionFrame)` with
 * interrupts masked (a handler may ignore the third argument). When they return, the interrupted
 * context is restored from the frame, including ELR_EL1 and SPSR_EL1: an exception nested inside
 * the handler (an IRQ it let in by unmasking) cannot change where the interrupted code resumes,
 * and a handler can change it on purpose by editing the frame.
 */

/* The frame saved on the exception stack, as src/exceptions.rs's ExceptionFrame describes it:
 * x0-x18 and x30, ELR_EL1 and SPSR_EL1, FPSR (padded to 16 bytes) and the caller-saved SIMD
 * registers q0-q7 and q16-q31 (AAPCS64: handlers written in Rust may clobber any of them). */
.set FRAME_GPRS, 20 * 8
.set FRAME_ELR, FRAME_GPRS
.set FRAME_RETURN_STATE, 16
.set FRAME_FPSR, FRAME_GPRS + FRAME_RETURN_STATE
.set FRAME_SIMD, FRAME_FPSR + 16
.set FRAME_SIZE, FRAME_SIMD + 24 * 16

/* The kinds of nested exception, passed to vmbase_nested_exception (see src/exceptions.rs). */
.set NESTED_SYNC, 0
.set NESTED_SERROR, 1

/* Save everything a C-ABI function may clobber. */
.macro save_volatile_registers
	sub	sp, sp, #FRAME_SIZE
	stp	x0, x1, [sp]
	stp	x2, x3, [sp, #16 * 1]
	stp	x4, x5, [sp, #16 * 2]
	stp	x6, x7, [sp, #16 * 3]
	stp	x8, x9, [sp, #16 * 4]
	stp	x10, x11, [sp, #16 * 5]
	stp	x12, x13, [sp, #16 * 6]
	stp	x14, x15, [sp, #16 * 7]
	stp	x16, x17, [sp, #16 * 8]
	stp	x18, x30, [sp, #16 * 9]
	mrs	x0, elr_el1
	mrs	x1, spsr_el1
	stp	x0, x1, [sp, #FRAME_ELR]	/* the return state, before anything can replace it */
	mrs	x0, fpsr
	str	x0, [sp, #FRAME_FPSR]
	add	x0, sp, #FRAME_SIMD
	stp	q0, q1, [x0, #32 * 0]
	stp	q2, q3, [x0, #32 * 1]
	stp	q4, q5, [x0, #32 * 2]
	stp	q6, q7, [x0, #32 * 3]
	stp	q16, q17, [x0, #32 * 4]
	stp	q18, q19, [x0, #32 * 5]
	stp	q20, q21, [x0, #32 * 6]
	stp	q22, q23, [x0, #32 * 7]
	stp	q24, q25, [x0, #32 * 8]
	stp	q26, q27, [x0, #32 * 9]
	stp	q28, q29, [x0, #32 * 10]
	stp	q30, q31, [x0, #32 * 11]
.endm

/* Undo save_volatile_registers, leaving sp where it was before the exception. Interrupts must be
 * masked: one taken after ELR_EL1 and SPSR_EL1 are restored would overwrite them. */
.macro restore_volatile_registers
	add	x0, sp, #FRAME_SIMD
	ldp	q0, q1, [x0, #32 * 0]
	ldp	q2, q3, [x0, #32 * 1]
	ldp	q4, q5, [x0, #32 * 2]
	ldp	q6, q7, [x0, #32 * 3]
	ldp	q16, q17, [x0, #32 * 4]
	ldp	q18, q19, [x0, #32 * 5]
	ldp	q20, q21, [x0, #32 * 6]
	ldp	q22, q23, [x0, #32 * 7]
	ldp	q24, q25, [x0, #32 * 8]
	ldp	q26, q27, [x0, #32 * 9]
	ldp	q28, q29, [x0, #32 * 10]
	ldp	q30, q31, [x0, #32 * 11]
	ldr	x0, [sp, #FRAME_FPSR]
	msr	fpsr, x0
	ldp	x0, x1, [sp, #FRAME_ELR]	/* the return state, as the handler left it */
	msr	elr_el1, x0
	msr	spsr_el1, x1
	ldp	x18, x30, [sp, #16 * 9]
	ldp	x16, x17, [sp, #16 * 8]
	ldp	x14, x15, [sp, #16 * 7]
	ldp	x12, x13, [sp, #16 * 6]
	ldp	x10, x11, [sp, #16 * 5]
	ldp	x8, x9, [sp, #16 * 4]
	ldp	x6, x7, [sp, #16 * 3]
	ldp	x4, x5, [sp, #16 * 2]
	ldp	x2, x3, [sp, #16 * 1]
	ldp	x0, x1, [sp]
	add	sp, sp, #FRAME_SIZE
.endm

/* The out-of-line part of a vector entry: call `handler(elr, spsr, frame)` and resume the
 * interrupted context. It lives outside the table because it does not fit in the 32 instructions
 * of a slot. */
.macro trampoline handler
.section .text.vmbase_exception_trampolines, "ax"
\handler\()_trampoline:
	save_volatile_registers
	ldp	x0, x1, [sp, #FRAME_ELR]	/* elr, spsr */
	mov	x2, sp				/* frame */
	bl	\handler
	msr	daifset, #0xf			/* the handler may have unmasked interrupts; eret unmasks */
	isb					/* them again from the restored SPSR_EL1 */
	restore_volatile_registers
	eret
.endm

/* A default for a handler the application does not define: a weak symbol, so the application's
 * own (strong) definition wins at link time. It reports and resets, see src/exceptions.rs. */
.macro default_handler handler, vector
.section .text.vmbase_default_\handler, "ax"
.weak \handler
\handler:
	mov	x2, #\vector
	b	vmbase_default_exception
.endm

/* The vector numbers passed to vmbase_default_exception, in vector table order. */
default_handler sync_exception_current, 0
default_handler irq_current, 1
default_handler fiq_current, 2
default_handler serr_current, 3
default_handler sync_lower, 4
default_handler irq_lower, 5
default_handler fiq_lower, 6
default_handler serr_lower, 7

trampoline sync_exception_current
trampoline irq_current
trampoline fiq_current
trampoline serr_current
trampoline sync_lower
trampoline irq_lower
trampoline fiq_lower
trampoline serr_lower

/* A vector entry for a fault inside a handler: the exception stack may be what failed, so start it
 * afresh (nothing on it will be returned to) and report; vmbase_nested_exception never returns. */
.macro nested_exception_entry kind
	.balign 0x80
	adrp	x30, exception_stack_end
	add	x30, x30, :lo12:exception_stack_end
	mov	sp, x30
	mrs	x0, elr_el1
	mrs	x1, spsr_el1
	mov	x2, #\kind
	bl	vmbase_nested_exception
	/* Not reached; reset without relying on anything else. */
	b	vector_table_panic
.endm

/* A vector entry that goes to the trampoline of `handler`. */
.macro handler_entry handler
	.balign 0x80
	b	\handler\()_trampoline
.endm

.section .text.vector_table_el1, "ax"
.global vector_table_el1
.balign 0x800
vector_table_el1:
	/* Current EL with SP0: exceptions from ordinary vmbase code. */
	handler_entry sync_exception_current
	handler_entry irq_current
	handler_entry fiq_current
	handler_entry serr_current

	/* Current EL with SPx: exceptions while a handler runs (interrupts are masked there, so
	 * IRQ and FIQ only arrive if a handler unmasked them on purpose). They use the same handlers
	 * as the SP0 entries: the trampoline pushes a second frame below the interrupted handler's,
	 * with its own ELR_EL1 and SPSR_EL1, so both return where they should. */
	nested_exception_entry NESTED_SYNC
	handler_entry irq_current
	handler_entry fiq_current
	nested_exception_entry NESTED_SERROR

	/* Lower EL using AArch64. */
	handler_entry sync_lower
	handler_entry irq_lower
	handler_entry fiq_lower
	handler_entry serr_lower

	/* Lower EL using AArch32. */
	handler_entry sync_lower
	handler_entry irq_lower
	handler_entry fiq_lower
	handler_entry serr_lower
