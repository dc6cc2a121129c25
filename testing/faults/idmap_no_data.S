/*
 * Copyright 2026 The vmbase Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * A broken initial page table for vmbase_faults_early: the image is mapped, writable_data is
 * not, so entry.S's first store (zeroing .bss) takes a translation fault with the MMU just on.
 */

#include <vmbase/crosvm.h>
#include <vmbase/idmap.h>

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
	.quad	DESC_BLOCK | DESC_ATTR_NORMAL | DESC_SH_INNER | DESC_AF | DESC_AP_READ_ONLY | DESC_UXN | CROSVM_BOOTLOADER_START	/* image */
	.fill	510, 8, 0x0		/* writable_data and the rest: unmapped */
