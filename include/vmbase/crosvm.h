/*
 * Copyright 2026 The vmbase Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * crosvm's aarch64 memory map and the PSCI calls vmbase's assembly makes, for .S files
 * (#include <vmbase/crosvm.h>). The same values as vmbase::layout::crosvm, smccc::psci and
 * vmbase::fdt::FDT_MAGIC; a unit test of vmbase::layout::crosvm checks that they agree. Keep every
 * value a literal, so that test can read it.
 */

#ifndef VMBASE_CROSVM_H
#define VMBASE_CROSVM_H

/* MMIO: devices live in the first GiB. */
#define CROSVM_MMIO_START 0x0
#define CROSVM_MMIO_END 0x40000000

/* RAM starts at 2 GiB; the device tree is at its start, in a region of at most 2 MiB. */
#define CROSVM_MEM_START 0x80000000
#define CROSVM_FDT_START 0x80000000
#define CROSVM_FDT_MAX_SIZE 0x200000

/* A bootloader image is loaded and entered right after the device tree's region. */
#define CROSVM_BOOTLOADER_START 0x80200000

/* A VM firmware is loaded and entered in the 4 MiB just below RAM. */
#define CROSVM_FIRMWARE_START 0x7fc00000
#define CROSVM_FIRMWARE_MAX_SIZE 0x400000

/* The console: crosvm's first 8250 UART. */
#define CROSVM_UART_BASE 0x3f8

/* PSCI 0.2+ function IDs (SMC32 fast calls), made with hvc #0. */
#define PSCI_SYSTEM_OFF 0x84000008
#define PSCI_SYSTEM_RESET 0x84000009

/* The first word of every device tree, big-endian. */
#define FDT_MAGIC 0xd00dfeed

#endif /* VMBASE_CROSVM_H */
