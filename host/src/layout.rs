// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The guest physical memory map: crosvm's aarch64 layout (docs/contract.md, section 1).

/// crosvm's addresses: vmbase's own `layout::crosvm`, so guest and host agree.
pub use vmbase::layout::crosvm;

/// One mebibyte, the unit of `memory_mib`.
pub const MIB: u64 = 1 << 20;

/// Start of the RAM described to the guest (crosvm's `AARCH64_PHYS_MEM_START`).
pub const RAM_START: u64 = crosvm::MEM_START as u64;

/// Where the device tree is loaded: the start of RAM.
pub const FDT_ADDRESS: u64 = crosvm::FDT_START as u64;

/// The device tree must fit in the first 2 MiB of RAM (crosvm's `AARCH64_FDT_MAX_SIZE`).
pub const FDT_MAX_SIZE: u64 = crosvm::FDT_MAX_SIZE as u64;

/// Where the bootloader image is loaded and entered: right after the device tree region.
pub const IMAGE_ADDRESS: u64 = crosvm::BOOTLOADER_START as u64;

/// QEMU's `virt` machine puts RAM at `0x4000_0000`, so QEMU is given this much extra RAM to
/// reach [`RAM_START`]; the device tree does not describe it to the guest.
pub const QEMU_RAM_BELOW_RAM_START_MIB: u64 = (RAM_START - 0x4000_0000) / MIB;

/// Base address of QEMU's PL011 console UART (QEMU's `/chosen/stdout-path`).
pub const PL011_BASE: u64 = 0x0900_0000;

/// The smallest `memory_mib` that leaves room for any image after the device tree region.
pub const MIN_MEMORY_MIB: u32 = (FDT_MAX_SIZE / MIB) as u32 + 1;

/// A fixed upper bound on `memory_mib` (16 GiB), on top of the host's physical memory: larger
/// requests are almost certainly mistakes and would only make QEMU reserve address space.
pub const MAX_MEMORY_MIB: u32 = 16 * 1024;

/// Where a VM firmware is loaded and entered: crosvm's pVM-firmware region
/// (`AARCH64_PROTECTED_VM_FW_START`), just below RAM and not described as RAM to the guest.
pub const FIRMWARE_ADDRESS: u64 = crosvm::FIRMWARE_START as u64;

/// The size of the firmware region.
pub const FIRMWARE_MAX_SIZE: u64 = crosvm::FIRMWARE_MAX_SIZE as u64;

/// In a kernel boot, the initrd starts at the first multiple of this after the kernel.
pub const INITRD_ALIGNMENT: u64 = 16 * MIB;

/// In a kernel boot, the device tree starts this far below the end of RAM (crosvm: its 2 MiB
/// maximum size plus 64 KiB).
pub const KERNEL_BOOT_FDT_OFFSET_FROM_END: u64 = FDT_MAX_SIZE + 0x1_0000;

/// Where `vm` loads the pKVM double of a protected VM and enters it, at EL2: QEMU's RAM below the
/// firmware region, which the guest's memory map does not have (testing/pkvm_double/double.ld;
/// QEMU keeps its own copy of the device tree in the first MiB of its RAM, at `0x4000_0000`).
pub const PKVM_DOUBLE_ADDRESS: u64 = 0x7f00_0000;
