/*
 * Copyright 2026 The vmbase Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * The firmware's initial identity map, used by vmbase's entry.S until main activates a page table
 * of its own. 39-bit VA, 4 KiB granule, walk starting at level 1 (see TCR_EL1 in entry.S).
 * It covers image.ld's regions: the image and writable_data in the 4 MiB below RAM, the console
 * MMIO, and the FDT region, a read-only window over all RAM this table can address (up to
 * 512 GiB), so that vmbase can read the tree at x0 before main wherever the VMM put it.
 */

#include <vmbase/crosvm.h>
#include <vmbase/idmap.h>

/* What the table below maps for image.ld's image and writable_data regions, for the link-time
 * checks in vmbase's sections.ld (see example/idmap.S). Move these with the table's entries. */
.global idmap_image_begin, idmap_image_end, idmap_writable_data_begin, idmap_writable_data_end
.set idmap_image_begin, CROSVM_FIRMWARE_START
.set idmap_image_end, CROSVM_FIRMWARE_START + 0x200000			/* one 2 MiB block */
.set idmap_writable_data_begin, CROSVM_FIRMWARE_START + 0x200000
.set idmap_writable_data_end, CROSVM_FIRMWARE_START + 0x400000		/* one 2 MiB block */

/* Block descriptors, with the attributes vmbase::paging gives the same memory. */
.set DEVICE, DESC_BLOCK | DESC_ATTR_DEVICE | DESC_AF | DESC_PXN | DESC_UXN
.set NORMAL, DESC_BLOCK | DESC_ATTR_NORMAL | DESC_SH_INNER | DESC_AF
.set CODE, NORMAL | DESC_AP_READ_ONLY | DESC_UXN		/* read-only, executable at EL1 */
.set RODATA, NORMAL | DESC_AP_READ_ONLY | DESC_PXN | DESC_UXN	/* read-only, never executable */
.set DATA, NORMAL | DESC_PXN | DESC_UXN				/* writable, never executable */

/* The RAM window, image.ld's dtb_region: level 1 entries 2 to 511, 0x8000_0000 up to
 * 0x80_0000_0000 (510 GiB), the end of the 39-bit address space. */
.set RAM_WINDOW_FIRST_GIB, 2
.set RAM_WINDOW_GIBS, 510

.section .rodata.idmap, "a", %progbits
.global idmap
.balign 4096
idmap:
	/* Level 1: one entry per GiB. */
	/* 0x0000_0000: 1 GiB of MMIO, where vmbase may find its console (crosvm's 8250 at 0x3f8,
	 * QEMU's PL011 at 0x900_0000). */
	.quad	DEVICE | CROSVM_MMIO_START
	.quad	DESC_TABLE + idmap_l2		/* 0x4000_0000: the firmware region at its top, in 2 MiB blocks */
	/* 0x8000_0000 onwards: RAM, read-only and never executable, 1 GiB per entry. */
	.set	gib, RAM_WINDOW_FIRST_GIB
	.rept	RAM_WINDOW_GIBS
	.quad	RODATA | (gib << 30)
	.set	gib, gib + 1
	.endr
	.fill	512 - RAM_WINDOW_FIRST_GIB - RAM_WINDOW_GIBS, 8, 0x0	/* the rest: unmapped */

	/* Level 2 for 0x4000_0000-0x8000_0000: one entry per 2 MiB; only image.ld's two regions. */
idmap_l2:
	.fill	510, 8, 0x0
	.quad	CODE | CROSVM_FIRMWARE_START			/* image */
	.quad	DATA | (CROSVM_FIRMWARE_START + 0x200000)	/* writable_data */
