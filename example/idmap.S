/*
 * Copyright 2026 The vmbase Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The example's initial identity map, used by vmbase's entry.S until the example builds its own
 * page table. 39-bit VA, 4 KiB granule, walk starting at level 1 (see TCR_EL1 in entry.S).
 * It must cover the image, writable_data, the FDT and the console MMIO of image.ld's layout.
 */

#include <vmbase/crosvm.h>

/* image.ld's regions: each 2 MiB, from the start of RAM. */
#define DTB_REGION CROSVM_FDT_START
#define IMAGE_REGION CROSVM_BOOTLOADER_START
#define WRITABLE_DATA_REGION (CROSVM_BOOTLOADER_START + 0x200000)

/* Block and table descriptor fields (Arm ARM D8.3). */
.set DESC_BLOCK, 0x1			/* bits [1:0] = 0b01: valid block (levels 1 and 2) */
.set DESC_TABLE, 0x3			/* bits [1:0] = 0b11: valid table pointer */
.set ATTR_DEVICE, 0 << 2		/* AttrIndx, bits [4:2]: MAIR index 0, Device-nGnRE */
.set ATTR_NORMAL, 1 << 2		/* AttrIndx: MAIR index 1, Normal write-back */
.set AP_READ_ONLY, 1 << 7		/* AP[2], bit 7: read-only */
.set SH_INNER, 3 << 8			/* SH, bits [9:8]: inner shareable */
.set AF, 1 << 10			/* access flag, bit 10: set, so no access-flag fault */
.set PXN, 1 << 53			/* privileged execute-never */
.set UXN, 1 << 54			/* unprivileged execute-never */

.set DEVICE, DESC_BLOCK | ATTR_DEVICE | AF | PXN | UXN
.set NORMAL, DESC_BLOCK | ATTR_NORMAL | SH_INNER | AF
.set CODE, NORMAL | AP_READ_ONLY | UXN		/* read-only, executable at EL1 */
.set RODATA, NORMAL | AP_READ_ONLY | PXN | UXN	/* read-only, never executable */
.set DATA, NORMAL | PXN | UXN			/* writable, never executable */

.section .rodata.idmap, "a", %progbits
.global idmap
.balign 4096
idmap:
	/* Level 1: one entry per GiB. */
	/* 0x0000_0000: 1 GiB of MMIO, the null page included. vmbase picks the console before main
	 * from the device tree, and it may be any UART in this GiB: crosvm's 8250 at 0x3f8 (page 0),
	 * QEMU's PL011 at 0x900_0000. The example's run-time page table then maps only the console's
	 * registers, which leaves the null page unmapped unless the console is in it. */
	.quad	DEVICE | CROSVM_MMIO_START
	.quad	0x0				/* 0x4000_0000 (CROSVM_MMIO_END): unmapped */
	.quad	DESC_TABLE + idmap_l2		/* 0x8000_0000: the first GiB of crosvm's RAM, in 2 MiB blocks */
	.fill	509, 8, 0x0			/* everything else: unmapped */

	/* Level 2 for 0x8000_0000-0xC000_0000: one entry per 2 MiB, matching image.ld's regions. */
idmap_l2:
	.quad	RODATA | DTB_REGION
	.quad	CODE | IMAGE_REGION
	.quad	DATA | WRITABLE_DATA_REGION
	.fill	509, 8, 0x0
