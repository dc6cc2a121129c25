/*
 * Copyright 2026 The vmbase Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The way out of vmbase into a payload that boots like Linux, in the state that Linux's
 * Documentation/arch/arm64/booting.rst asks for: MMU and data cache off, instruction cache
 * invalidated, interrupts masked, x0 = FDT address, x1-x3 = 0.
 *
 * vmbase_jump_to_payload(x0 = FDT address, x1 = entry point) never returns. vmbase's page tables
 * are identity maps, so this code keeps running at the same address once the MMU is off. After
 * that it touches no memory but its own instructions, which it cleans to the point of coherency
 * first; the caller has cleaned everything the payload reads (the FDT, a moved kernel).
 */

.set SCTLR_M, 1 << 0			/* SCTLR_EL1.M: stage 1 translation */
.set SCTLR_C, 1 << 2			/* SCTLR_EL1.C: data accesses cacheable */
.set CTR_DMINLINE_SHIFT, 16		/* CTR_EL0.DminLine, bits [19:16] */
.set CTR_DMINLINE_WIDTH, 4

.section .text.vmbase_jump_to_payload, "ax"
.global vmbase_jump_to_payload
vmbase_jump_to_payload:
	msr	daifset, #0xf			/* mask debug, SError, IRQ and FIQ */
	mov	x19, x0				/* keep the FDT address */
	mov	x20, x1				/* keep the entry point */

	/* Clean this routine, from its first to its last line, to the point of coherency: with the
	 * MMU off its instructions may be fetched from memory rather than the data cache. */
	mrs	x9, ctr_el0			/* cache type */
	ubfx	x9, x9, #CTR_DMINLINE_SHIFT, #CTR_DMINLINE_WIDTH	/* log2(words per line) */
	mov	x10, #4				/* bytes per word */
	lsl	x10, x10, x9			/* x10 = smallest data cache line, in bytes */
	sub	x12, x10, #1			/* mask of the offset within a line */
	adr	x11, vmbase_jump_to_payload	/* the routine's first byte */
	bic	x11, x11, x12			/* rounded down to its line */
	adr	x12, .Lend			/* the routine's end */
0:	dc	cvac, x11			/* clean one line to the point of coherency */
	add	x11, x11, x10			/* next line */
	cmp	x11, x12
	b.lo	0b				/* until the end is passed */
	dsb	sy				/* the cleaning completes before the MMU goes off */

	/* MMU and data cache off (the instruction cache may stay on, booting.rst allows it). */
	mrs	x9, sctlr_el1
	mov	x10, #(SCTLR_M | SCTLR_C)
	bic	x9, x9, x10			/* clear M and C */
	msr	sctlr_el1, x9
	isb					/* later instructions see the MMU off */

	/* Leave the payload no stale instructions or translations of ours. */
	ic	iallu				/* invalidate all instruction caches to the PoU */
	tlbi	vmalle1				/* invalidate all EL1 stage 1 TLB entries */
	dsb	nsh				/* wait for both to complete */
	isb					/* and fetch the next instructions afresh */

	/* booting.rst's registers. */
	mov	x0, x19				/* x0 = FDT address */
	mov	x1, xzr				/* x1-x3 = 0 (reserved for future use) */
	mov	x2, xzr
	mov	x3, xzr
	br	x20				/* enter the payload */
.Lend:
