// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Leaving vmbase for a payload that boots like Linux (Documentation/arch/arm64/booting.rst).
//!
//! Only on aarch64: the VM's architecture (host builds have it in their documentation only).

extern "C" {
    /// payload.S: MMU and data cache off, instruction cache and TLBs invalidated, interrupts
    /// masked, x0 = `fdt`, x1-x3 = 0, then a branch to `entry`.
    fn vmbase_jump_to_payload(fdt: usize, entry: usize) -> !;
}

/// Enters the payload at `entry` the way Linux's arm64 boot protocol wants: MMU and data cache
/// off, instruction cache invalidated, interrupts masked, `x0` = the address of `fdt`, `x1`-`x3`
/// = 0. `fdt` is cleaned to the point of coherency first.
///
/// # Safety
///
/// `entry` must be the payload's first instruction, at the same address with the MMU off (vmbase
/// page tables are identity maps). Everything the payload reads that this program wrote with the
/// caches on (a moved kernel, an initrd) must already be cleaned to the point of coherency, for
/// example with [`crate::memory::flush`]; memory the VMM loaded needs nothing. Nothing of this
/// program runs afterwards.
pub unsafe fn jump_to_payload(entry: usize, fdt: &[u8]) -> ! {
    crate::memory::flush(fdt);
    // SAFETY: The caller vouches for the entry point and for what the payload reads; the FDT was
    // cleaned above, and payload.S cleans its own code before turning the MMU off.
    unsafe { vmbase_jump_to_payload(fdt.as_ptr() as usize, entry) }
}
