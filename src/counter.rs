// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The generic timer's virtual counter: time since the VM started, in ticks.
//!
//! Under crosvm the counter is real time. Under QEMU with `-icount shift=0` (`vm run --icount
//! 0`) it is deterministic: one tick per 16 guest instructions (62.5 MHz, 1 ns per instruction).

use core::sync::atomic::{AtomicU64, Ordering};

static TICKS_AT_RUST_ENTRY: AtomicU64 = AtomicU64::new(0);
static TICKS_AT_MAIN: AtomicU64 = AtomicU64::new(0);

/// The virtual counter now (`CNTVCT_EL0`), in ticks since the VM started.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub fn ticks() -> u64 {
    // Not read early, before the instructions it is meant to follow.
    crate::arch::aarch64::isb();
    crate::read_sysreg!("cntvct_el0")
}

/// Ticks per second of the counter (`CNTFRQ_EL0`).
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub fn frequency() -> u64 {
    crate::read_sysreg!("cntfrq_el0")
}

/// The counter when entry.S called Rust: the cost of the assembly entry path.
pub fn ticks_at_rust_entry() -> u64 {
    TICKS_AT_RUST_ENTRY.load(Ordering::Relaxed)
}

/// The counter when vmbase called the binary's `main`: the cost of booting up to it.
pub fn ticks_at_main() -> u64 {
    TICKS_AT_MAIN.load(Ordering::Relaxed)
}

/// Records the counter at the two milestones of booting.
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
pub(crate) fn record_boot(at_rust_entry: u64, at_main: u64) {
    TICKS_AT_RUST_ENTRY.store(at_rust_entry, Ordering::Relaxed);
    TICKS_AT_MAIN.store(at_main, Ordering::Relaxed);
}
