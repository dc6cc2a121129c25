/*
 * Copyright 2026 The vmbase Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The first code to run: the VMM enters the image at its first byte (section .init.entry, placed
 * first by sections.ld) in EL1h with the MMU off, x0 = FDT address and x1-x3 = 0. This file does
 * only what must happen before Rust can run, and leaves x0-x3 untouched for rust_entry.
 * Scratch registers: x29 and x30 throughout, plus x27, x28 and q0-q1 while zeroing .bss and
 * copying .data; none of them carries anything into Rust.
 */

#include <vmbase/crosvm.h>	/* PSCI_SYSTEM_RESET */

#include <vmbase/idmap.h>	/* MAIR_INDEX_DEVICE, MAIR_INDEX_NORMAL */

/* MAIR_EL1: Device-nGnRE (0x04) at MAIR_INDEX_DEVICE, and Normal memory, inner and outer
 * write-back, read- and write-allocate, non-transient (0xff) at MAIR_INDEX_NORMAL. The idmap and
 * vmbase::paging use these two indices. */
.set MAIR_DEVICE_NGNRE, 0x04
.set MAIR_NORMAL_WB, 0xff
.set MAIR_VALUE, (MAIR_NORMAL_WB << (8 * MAIR_INDEX_NORMAL)) | (MAIR_DEVICE_NGNRE << (8 * MAIR_INDEX_DEVICE))

/* TCR_EL1 for a 39-bit VA space translated from level 1 through TTBR0 with 4 KiB granules. */
.set TCR_T0SZ_39BIT, 64 - 39		/* T0SZ, bits [5:0]: 39-bit input addresses */
.set TCR_IRGN0_WBWA, 1 << 8		/* table walks: inner write-back write-allocate */
.set TCR_ORGN0_WBWA, 1 << 10		/* table walks: outer write-back write-allocate */
.set TCR_SH0_INNER, 3 << 12		/* table walks: inner shareable */
.set TCR_TG0_4KB, 0 << 14		/* TTBR0 granule: 4 KiB */
.set TCR_EPD1, 1 << 23			/* no walks through TTBR1: upper half faults */
.set TCR_IPS_SHIFT, 32			/* IPS, bits [34:32]: copied from ID_AA64MMFR0_EL1.PARange */
.set TCR_VALUE, TCR_T0SZ_39BIT | TCR_IRGN0_WBWA | TCR_ORGN0_WBWA | TCR_SH0_INNER | TCR_TG0_4KB | TCR_EPD1

/* SCTLR_EL1 with the MMU on. */
.set SCTLR_M, 1 << 0			/* stage 1 translation on */
.set SCTLR_C, 1 << 2			/* data cacheable */
.set SCTLR_SA, 1 << 3			/* SP alignment check at EL1 */
.set SCTLR_EOS, 1 << 11			/* exception return is context synchronising */
.set SCTLR_I, 1 << 12			/* instructions cacheable */
.set SCTLR_WXN, 1 << 19			/* writable memory is never executable */
.set SCTLR_TSCXT, 1 << 20		/* trap EL0 SCXTNUM accesses (RES1 without FEAT_CSV2_2) */
.set SCTLR_EIS, 1 << 22			/* exception entry is context synchronising */
.set SCTLR_SPAN, 1 << 23		/* PSTATE.PAN unchanged on exception entry */
.set SCTLR_NTLSMD, 1 << 28		/* no trapping of EL0 LD/ST multiple to device memory */
.set SCTLR_LSMAOE, 1 << 29		/* EL0 LD/ST multiple ordering (RES1 without FEAT_LSMAOE) */
.set SCTLR_VALUE, SCTLR_M | SCTLR_C | SCTLR_SA | SCTLR_EOS | SCTLR_I | SCTLR_WXN | SCTLR_TSCXT | SCTLR_EIS | SCTLR_SPAN | SCTLR_NTLSMD | SCTLR_LSMAOE

/* CPACR_EL1.FPEN, bits [21:20] = 0b11: FP and SIMD at EL1 and EL0 do not trap. */
.set CPACR_FPEN_NO_TRAP, 3 << 20

/* Bionic's TLS slot for the stack protector guard (TLS_SLOT_STACK_GUARD = 5): compilers targeting
 * Android read the guard from [tpidr_el0, #40]. */
.set TLS_STACK_GUARD_OFFSET, 5 * 8

/* Load the absolute address of `sym` into `reg` (PC-relative, +/- 4 GiB). */
.macro adr_l reg, sym
	adrp	\reg, \sym
	add	\reg, \reg, :lo12:\sym
.endm

/* Load a 32-bit constant into `reg` (a W register). */
.macro mov_i32 reg, value
	movz	\reg, #((\value) & 0xffff)
	movk	\reg, #((\value) >> 16), lsl #16
.endm

.section .init.entry, "ax"
.global entry
entry:
	/* Any fault from here until the real vector table is installed resets the VM. */
	adr_l	x30, vector_table_panic
	msr	vbar_el1, x30
	isb

	/* There is no relocation: the image must run where it was linked. Compare where this code
	 * is (PC-relative) with where the linker put it (absolute, from the literal pool). */
	adr	x30, entry
	ldr	x29, =entry
	cmp	x29, x30
	b.ne	wrong_load_address

	/* Memory attributes and translation control; IPS gets the CPU's physical address size. */
	ldr	x30, =MAIR_VALUE
	msr	mair_el1, x30
	ldr	x30, =TCR_VALUE
	mrs	x29, id_aa64mmfr0_el1
	bfi	x30, x29, #TCR_IPS_SHIFT, #3	/* PARange is ID_AA64MMFR0_EL1[3:0]; IPS takes 3 bits */
	msr	tcr_el1, x30

	/* The binary's initial identity map (see example/idmap.S). */
	adr_l	x30, idmap
	msr	ttbr0_el1, x30

	/* Discard any stale translations and instructions before turning the MMU on. */
	dsb	ish
	tlbi	vmalle1
	ic	iallu
	dsb	nsh
	isb

	/* MMU, caches, W^X and SP alignment checks on, before the first store to memory. */
	mov_i32	w30, SCTLR_VALUE
	msr	sctlr_el1, x30
	isb

	/* Rust code may use FP and SIMD registers, e.g. in memcpy. */
	mov	x30, #CPACR_FPEN_NO_TRAP
	msr	cpacr_el1, x30
	isb

	/* Zero .bss, 8 KiB per iteration: 256 stores of two zeroed Q registers, each moving the
	 * pointer on (sections.ld aligns .bss to 32 bytes at both ends). The first iteration is
	 * partial: it enters the stores part way, at the (size / 32) % 256 stores before the loop
	 * test, so that every later one is whole and no padding needs zeroing. This is the cost of
	 * one store instruction per 32 bytes, plus two instructions of loop control per 8 KiB. */
	movi	v0.2d, #0
	movi	v1.2d, #0
	adr_l	x29, bss_begin
	adr_l	x30, bss_end
	sub	x28, x30, x29		/* the size of .bss in bytes */
	ubfx	x28, x28, #5, #8	/* (size / 32) % 256: the stores of the partial iteration */
	adr	x27, 1f
	sub	x28, x27, x28, lsl #2	/* that many 4-byte instructions before the loop test */
	br	x28
0:	.rept	256
	stp	q0, q1, [x29], #32
	.endr
1:	cmp	x29, x30
	b.lo	0b

	/* Copy .data from its load address in the image to its run address, 256 bytes per
	 * iteration (sections.ld pads .data to 256 bytes): one load and one store per 32 bytes. */
	adr_l	x29, data_begin
	adr_l	x30, data_end
	adr_l	x28, data_lma
	b	3f
2:	.rept	8
	ldp	q0, q1, [x28], #32
	stp	q0, q1, [x29], #32
	.endr
3:	cmp	x29, x30
	b.lo	2b

	/* Handlers run on SP_EL1, the exception stack; everything else on SP_EL0, the boot stack. */
	adr_l	x30, exception_stack_end
	mov	sp, x30
	msr	spsel, #0
	adr_l	x30, boot_stack_end
	mov	sp, x30

	/* From now on exceptions reach the application's (or vmbase's default) handlers. */
	adr_l	x30, vector_table_el1
	msr	vbar_el1, x30
	isb

	/* Bionic-compatible thread pointer. */
	adr_l	x30, __bionic_tls
	msr	tpidr_el0, x30

	/* The stack protector guard, random on every boot, stored before any function that checks
	 * it runs: vmbase_stack_guard (Rust) returns it in x0, and it goes both to Bionic's TLS slot,
	 * where code compiled for Android reads it, and to __stack_chk_guard, where code compiled for
	 * bare metal reads it. x0-x3 wait in callee-saved registers meanwhile. */
	mov	x19, x0
	mov	x20, x1
	mov	x21, x2
	mov	x22, x3
	bl	vmbase_stack_guard
	adr_l	x30, __bionic_tls
	str	x0, [x30, #TLS_STACK_GUARD_OFFSET]
	adr_l	x30, __stack_chk_guard
	str	x0, [x30]
	mov	x0, x19
	mov	x1, x20
	mov	x2, x21
	mov	x3, x22

	/* x0-x3 hold what the VMM passed again. rust_entry never returns. */
	bl	rust_entry
	b	reset

wrong_load_address:
reset:
	mov_i32	w0, PSCI_SYSTEM_RESET
	hvc	#0
4:	wfi
	b	4b

/* The thread-local storage block that tpidr_el0 points to (Bionic reserves slots 0-7 at least). */
.section .bss.vmbase_bionic_tls, "aw", %nobits
.balign 16
__bionic_tls:
	.zero	16 * 8

/* The stack protector's reference value, for code that reads the symbol rather than the TLS
 * slot. Written once, above, before any code that checks it runs. */
.section .bss.vmbase_stack_chk_guard, "aw", %nobits
.balign 8
.global __stack_chk_guard
__stack_chk_guard:
	.zero	8
