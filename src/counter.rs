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
#[cfg(target_arch = "aarch64")]
pub fn ticks() -> u64 {
    let ticks: u64;
    // SAFETY: The isb keeps the read from being taken early; reading CNTVCT_EL0 has no side
    // effects.
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) ticks, options(nomem, nostack, preserves_flags));
    }
    ticks
}

/// Ticks per second of the counter (`CNTFRQ_EL0`).
#[cfg(target_arch = "aarch64")]
pub fn frequency() -> u64 {
    let frequency: u64;
    // SAFETY: Reading CNTFRQ_EL0 has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) frequency, options(nomem, nostack, preserves_flags));
    }
    frequency
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
#[cfg(all(target_arch = "aarch64", not(test)))]
pub(crate) fn record_boot(at_rust_entry: u64, at_main: u64) {
    TICKS_AT_RUST_ENTRY.store(at_rust_entry, Ordering::Relaxed);
    TICKS_AT_MAIN.store(at_main, Ordering::Relaxed);
}
