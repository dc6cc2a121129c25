// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! crosvm's aarch64 memory map: the addresses a guest finds things at and the host puts them at.
//!
//! The one Rust copy, used by vmbase and by the host launcher (which depends on vmbase and
//! re-exports this module as `vmclient::layout::crosvm`); `include/vmbase/crosvm.h` holds the
//! same values for assembly, and a unit test keeps the two equal.

use core::ops::Range;

/// Start of the MMIO window: devices live in the first GiB.
pub const MMIO_START: usize = 0x0;
/// End of the MMIO window.
pub const MMIO_END: usize = 0x4000_0000;
/// The MMIO window.
pub const MMIO_RANGE: Range<usize> = MMIO_START..MMIO_END;

/// Start of RAM (crosvm's `AARCH64_PHYS_MEM_START`).
pub const MEM_START: usize = 0x8000_0000;

/// Where the device tree is when a bootloader is entered: the start of RAM (`x0`).
pub const FDT_START: usize = MEM_START;
/// The most room the device tree may take (crosvm's `AARCH64_FDT_MAX_SIZE`).
pub const FDT_MAX_SIZE: usize = 0x20_0000;

/// Where a bootloader image is loaded and entered at its first byte: right after the device
/// tree's region.
pub const BOOTLOADER_START: usize = FDT_START + FDT_MAX_SIZE;

/// Where a VM firmware is loaded and entered: crosvm's pVM-firmware region
/// (`AARCH64_PROTECTED_VM_FW_START`), just below RAM and not described as RAM.
pub const FIRMWARE_START: usize = MEM_START - FIRMWARE_MAX_SIZE;
/// The size of the firmware region.
pub const FIRMWARE_MAX_SIZE: usize = 0x40_0000;

/// Base address of the first 8250 UART crosvm emulates (its console).
pub const UART_BASE: usize = 0x3f8;

const _: () = assert!(BOOTLOADER_START == 0x8020_0000 && FIRMWARE_START == 0x7fc0_0000);
