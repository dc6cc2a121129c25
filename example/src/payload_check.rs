// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A stand-in payload for checking vmbase's handoff: it checks the state booting.rst promises and
//! ends the VM with a clean shutdown only if all of it holds.

core::arch::global_asm!(
    r#"
.section .text.payload_check, "ax"
.global payload_check
payload_check:
	/* Entered from vmbase_jump_to_payload. The MMU is off, so no memory is touched here. */
	cbnz	x1, 1f				/* x1-x3 must be 0 */
	cbnz	x2, 1f
	cbnz	x3, 1f
	mov	x9, #0x80000000		/* x0 must be the FDT, at the start of RAM */
	cmp	x0, x9
	b.ne	1f
	mrs	x9, sctlr_el1
	tst	x9, #(1 << 0)			/* SCTLR_EL1.M: the MMU must be off */
	b.ne	1f
	tst	x9, #(1 << 2)			/* SCTLR_EL1.C: the data cache must be off */
	b.ne	1f
	mrs	x9, daif
	and	x9, x9, #(0xf << 6)		/* D, A, I and F, bits [9:6] */
	cmp	x9, #(0xf << 6)			/* must all be masked */
	b.ne	1f
	movz	w0, #0x0008			/* PSCI SYSTEM_OFF (0x8400_0008): the handoff is right */
	movk	w0, #0x8400, lsl #16
	hvc	#0
1:	movz	w0, #0x0009			/* PSCI SYSTEM_RESET (0x8400_0009): it is not */
	movk	w0, #0x8400, lsl #16
	hvc	#0
2:	wfi
	b	2b
"#
);

// The numbers written out above (Android 15's rustc has no `const` operands for assembly).
const _: () = assert!(vmbase::layout::crosvm::FDT_START == 0x8000_0000);
const _: () = assert!(smccc::psci::PSCI_SYSTEM_OFF == 0x8400_0008);
const _: () = assert!(smccc::psci::PSCI_SYSTEM_RESET == 0x8400_0009);

extern "C" {
    /// The entry point above.
    pub fn payload_check();
}
