/*
 * Copyright 2026 The vmbase Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The vector table installed first thing at boot. Until the real vector table is in place (and the
 * stack and console with it), nothing can be reported, so every exception resets the VM: the host
 * sees a reboot, vmbase's error exit, instead of a VM that spins forever.
 */

#include <vmbase/crosvm.h>	/* PSCI_SYSTEM_RESET */

/* One 128-byte vector entry: ask the hypervisor to reset, and wait if it does not. */
.macro reset_vm_entry
	.balign 0x80
	movz	w0, #(PSCI_SYSTEM_RESET & 0xffff)
	movk	w0, #(PSCI_SYSTEM_RESET >> 16), lsl #16
	hvc	#0
0:	wfi
	b	0b
.endm

.section .text.vector_table_panic, "ax"
.global vector_table_panic
.balign 0x800
vector_table_panic:
	/* Current EL with SP0: synchronous, IRQ, FIQ, SError. */
	reset_vm_entry
	reset_vm_entry
	reset_vm_entry
	reset_vm_entry
	/* Current EL with SPx. */
	reset_vm_entry
	reset_vm_entry
	reset_vm_entry
	reset_vm_entry
	/* Lower EL using AArch64. */
	reset_vm_entry
	reset_vm_entry
	reset_vm_entry
	reset_vm_entry
	/* Lower EL using AArch32. */
	reset_vm_entry
	reset_vm_entry
	reset_vm_entry
	reset_vm_entry
