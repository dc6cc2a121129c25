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

// A boot flows through these stages once, each handing the next a finished value: `config`
// (JSON or CLI → `VirtualMachineRawConfig`) → `plan` (checks, input files, memory placement →
// `BootPlan`) → `qemu` (the machine's arguments, built once) → `device_tree` (QEMU's tree for
// that machine, rewritten for the plan) → `qemu` (the whole command line) → `run` (QEMU
// supervised: QMP, outputs, the death reason).
mod bounded_read;
mod config;
mod device_tree;
mod error;
mod host;
pub mod layout;
mod plan;
mod qemu;
mod run;
mod supervise;

pub use config::{
    Accelerator, DEFAULT_MEMORY_MIB, DiskImage, SUPPORTED_PLATFORM_VERSION, VirtualMachineRawConfig,
};
pub use error::Error;
pub use plan::BootPlan;
pub use plan::accel::{ChosenAccelerator, KvmUnusable, TcgOnly};
pub use qemu::boot_stub::boot_stub;
pub use run::death_reason::DeathReason;
pub use run::instance::{VmInstance, VmOutputs};
pub use run::output::OutputFile;
