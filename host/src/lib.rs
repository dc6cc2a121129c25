// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Host-side launcher for vmbase guests: crosvm's aarch64 memory map and boot protocol on QEMU.
//!
//! This mirrors the parts of Android's VirtualizationService and `vmclient` that a bare-metal
//! payload needs, backed by `qemu-system-aarch64` (KVM on arm64 hosts that offer it, else TCG;
//! [`VirtualMachineRawConfig::accelerator`]) instead of crosvm:
//!
//! - RAM starts at `0x8000_0000` and is `memory_mib` long;
//! - the device tree (QEMU's own, with `/memory` and `/chosen/bootargs` rewritten) sits at the
//!   start of RAM, at most 2 MiB;
//! - the bootloader image is loaded at `0x8020_0000` and entered at its first byte with
//!   `x0` = FDT address and `x1`–`x3` = 0;
//! - or a Linux kernel is booted as crosvm boots one, directly or through a VM firmware at
//!   `0x7fc0_0000` ([`VirtualMachineRawConfig::kernel`], [`VirtualMachineRawConfig::firmware`]);
//! - the console is QEMU's PL011 at `0x0900_0000`;
//! - PSCI `SYSTEM_OFF` ends the VM with [`DeathReason::Shutdown`], `SYSTEM_RESET` with
//!   [`DeathReason::Reboot`].
//!
//! ```no_run
//! use vmclient::{DeathReason, VirtualMachineRawConfig, VmInstance};
//!
//! let config = VirtualMachineRawConfig {
//!     bootloader: Some("out/vmbase_example.bin".into()),
//!     ..Default::default()
//! };
//! let mut vm = VmInstance::create(&config, None, None)?;
//! vm.start()?;
//! assert_eq!(vm.wait_for_death(), DeathReason::Shutdown);
//! # Ok::<(), vmclient::Error>(())
//! ```

#![deny(unsafe_code, clippy::undocumented_unsafe_blocks)]
#![deny(missing_docs)]

mod accel;
mod boot_stub;
mod bounded_read;
mod config;
mod death_reason;
mod device_tree;
mod error;
mod host;
mod image;
mod instance;
mod json;
mod kernel;
pub mod layout;
mod monitor;
mod output;
mod plan;
mod qemu;
mod qmp;
mod supervise;

pub use accel::{Accelerator, ChosenAccelerator, KvmUnusable, TcgOnly};
pub use boot_stub::boot_stub;
pub use config::{
    DEFAULT_MEMORY_MIB, DiskImage, SUPPORTED_PLATFORM_VERSION, VirtualMachineRawConfig,
};
pub use death_reason::DeathReason;
pub use error::Error;
pub use instance::{VmInstance, VmOutputs};
pub use output::OutputFile;
pub use plan::BootPlan;
