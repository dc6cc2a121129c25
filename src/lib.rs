// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! vmbase: what a `no_std` Rust binary needs to run bare-metal in an aarch64 VM under crosvm or
//! QEMU: entry point, exception vectors, console, heap, page tables and power control.
//!
//! See README.md for how to build a binary with it.

#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod arch;
pub mod console;
pub mod counter;
#[cfg(all(target_arch = "aarch64", not(test)))]
pub mod entry;
pub mod exceptions;
pub mod fdt;
pub mod heap;
pub mod layout;
#[cfg(all(target_arch = "aarch64", not(test)))]
mod linker;
pub mod linux;
pub mod logger;
pub mod memory;
pub mod paging;
#[cfg(all(target_arch = "aarch64", not(test)))]
pub mod payload;
pub mod pci;
pub mod power;
pub mod rand;
pub mod uart;
pub mod virtio;
