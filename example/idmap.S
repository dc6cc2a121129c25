/*
 * Copyright 2026 The vmbase Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The example's initial identity map, used by vmbase's entry.S until the example builds its own
 * page table. 39-bit VA, 4 KiB granule, walk starting at level 1 (see TCR_EL1 in entry.S).
 * It must cover the image, writable_data, the FDT and the console MMIO of image.ld's layout.
 */

#include <vmbase/crosvm.h>
#include <vmbase/idmap.h>

/* image.ld's regions: each 2 MiB, from the start of RAM. */
#define DTB_REGION CROSVM_FDT_START
#define IMAGE_REGION CROSVM_BOOTLOADER_START
#define WRITABLE_DATA_REGION (CROSVM_BOOTLOADER_START + 0x200000)

/* What the table below maps for image.ld's image and writable_data regions, for the link-time
 * checks in vmbase's sections.ld: a binary whose code or writable memory (.data, .bss with the
 * heap, the stacks) outgrows them fails to link, saying what to change, instead of faulting
 * before it has a console. Move these with the table's entries. */
.global idmap_image_begin, idmap_image_end, idmap_writable_data_begin, idmap_writable_data_end
.set idmap_image_begin, IMAGE_REGION
.set idmap_image_end, IMAGE_REGION + 0x200000			/* one 2 MiB block */
.set idmap_writable_data_begin, WRITABLE_DATA_REGION
.set idmap_writable_data_end, WRITABLE_DATA_REGION + 0x200000	/* one 2 MiB block */

/* Block descriptors, with the attributes vmbase::paging gives the same memory. */
.set DEVICE, DESC_BLOCK | DESC_ATTR_DEVICE | DESC_AF | DESC_PXN | DESC_UXN
.set NORMAL, DESC_BLOCK | DESC_ATTR_NORMAL | DESC_SH_INNER | DESC_AF
.set CODE, NORMAL | DESC_AP_READ_ONLY | DESC_UXN		/* read-only, executable at EL1 */
.set RODATA, NORMAL | DESC_AP_READ_ONLY | DESC_PXN | DESC_UXN	/* read-only, never executable */
.set DATA, NORMAL | DESC_PXN | DESC_UXN				/* writable, never executable */

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
