/*
 * Copyright 2026 The vmbase Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * A broken initial page table for vmbase_faults_early: the image is mapped, writable_data is
 * not, so entry.S's first store (zeroing .bss) takes a translation fault with the MMU just on.
 */

#include <vmbase/crosvm.h>

.set DESC_BLOCK, 0x1		/* valid block descriptor */
.set DESC_TABLE, 0x3		/* valid table descriptor */
.set ATTR_NORMAL, 1 << 2	/* MAIR index 1: Normal write-back */
.set AP_READ_ONLY, 1 << 7	/* read-only */
.set SH_INNER, 3 << 8		/* inner shareable */
.set AF, 1 << 10		/* access flag set */
.set UXN, 1 << 54		/* not executable at EL0 */

.section .rodata.idmap, "a", %progbits
.global idmap
.balign 4096
idmap:
	.quad	0x0			/* 0x0000_0000: no MMIO either */
	.quad	0x0
	.quad	DESC_TABLE + idmap_l2	/* 0x8000_0000 */
	.fill	509, 8, 0x0
idmap_l2:
	.quad	0x0			/* dtb_region: unmapped */
	.quad	DESC_BLOCK | ATTR_NORMAL | SH_INNER | AF | AP_READ_ONLY | UXN | CROSVM_BOOTLOADER_START	/* image */
	.fill	510, 8, 0x0		/* writable_data and the rest: unmapped */
