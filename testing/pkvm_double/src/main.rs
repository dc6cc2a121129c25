// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! pkvm_double: a stand-in for pKVM under QEMU (`vm run --protected`). It runs at EL2, enters the
//! guest at EL1 with crosvm's registers, answers the hypervisor calls a protected guest makes
//! with pKVM's semantics, and enforces the two rules a protected guest must keep: device pages
//! only once registered with the MMIO guard (after enrolling), and virtio buffers only once
//! shared with the host. It is a test double, not a hypervisor that protects anything: see
//! docs/protected.md.
//!
//! The logic is plain functions tested on the host (`cargo test -p pkvm_double`); `el2` holds
//! what needs the hardware.

#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]
// On the host only the unit tests use the logic.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

mod hypercalls;
mod mmio;
mod pages;
mod virtio;

#[cfg(target_os = "none")]
mod el2;

/// The double only runs in a VM; this is what a host build of it does.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("pkvm_double runs at EL2 in a VM: build it with `make guests` (out/pkvm_double.bin)");
    std::process::exit(1);
}
