/*
 * Copyright 2026 The vmbase Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * Descriptor fields for a binary's initial identity map (#include <vmbase/idmap.h> in idmap.S):
 * stage 1, 4 KiB granule, block and table descriptors at levels 1 and 2 (Arm ARM D8.3). The
 * memory-attribute indices are the two that entry.S programs into MAIR_EL1 and vmbase::paging
 * uses; a unit test of vmbase::paging checks the fields against the attributes it maps with.
 * Values only (no .set), each a hexadecimal literal so that the test can read it.
 */

#ifndef VMBASE_IDMAP_H
#define VMBASE_IDMAP_H

/* MAIR_EL1 attribute indices. */
#define MAIR_INDEX_DEVICE 0x0 /* Device-nGnRE */
#define MAIR_INDEX_NORMAL 0x1 /* Normal memory, write-back */

#define DESC_BLOCK 0x1 /* bits [1:0] = 0b01: valid block (levels 1 and 2) */
#define DESC_TABLE 0x3 /* bits [1:0] = 0b11: valid table pointer */
#define DESC_ATTR_DEVICE 0x0 /* AttrIndx, bits [4:2]: MAIR_INDEX_DEVICE */
#define DESC_ATTR_NORMAL 0x4 /* AttrIndx: MAIR_INDEX_NORMAL */
#define DESC_AP_READ_ONLY 0x80 /* AP[2], bit 7: read-only */
#define DESC_SH_INNER 0x300 /* SH, bits [9:8]: inner shareable */
#define DESC_AF 0x400 /* access flag, bit 10: set, so no access-flag fault */
#define DESC_PXN 0x20000000000000 /* bit 53: privileged execute-never */
#define DESC_UXN 0x40000000000000 /* bit 54: unprivileged execute-never */

#endif /* VMBASE_IDMAP_H */
