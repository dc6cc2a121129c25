// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! aarch64 system registers, barriers and cache maintenance, each a single instruction.
//!
//! Only on aarch64: the VM's architecture (host builds have it in their documentation only).

/// Reads a system register by name, e.g. `read_sysreg!("ctr_el0")`, as a `u64`.
///
/// Only for registers whose read has no side effects (ID registers, control registers); the
/// macro is a safe expression. Only on aarch64.
#[macro_export]
macro_rules! read_sysreg {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: The macro is only used on registers whose read has no side effects.
        unsafe {
            core::arch::asm!(
                concat!("mrs {}, ", $name),
                out(reg) value,
                options(nomem, nostack, preserves_flags)
            );
        }
        value
    }};
}

/// Instruction synchronization barrier: later instructions see the effects of earlier system
/// register writes, and are not executed early (e.g. a counter read).
pub fn isb() {
    // SAFETY: A barrier only orders instruction execution.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
}

/// Waits for an interrupt (or another wake-up event), doing nothing.
pub fn wfi() {
    // SAFETY: wfi only waits; it touches no memory or registers.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack, preserves_flags)) };
}

/// Discards this CPU's cached EL1 translations, global ones included, once earlier page-table
/// writes are visible (`DSB ISHST`, `TLBI VMALLE1`, `DSB ISH`, `ISB`).
pub fn invalidate_tlb() {
    // SAFETY: TLB maintenance only drops cached translations; the page tables in memory decide
    // what is mapped.
    unsafe {
        core::arch::asm!(
            "dsb ishst", // page-table writes before the invalidation
            "tlbi vmalle1",
            "dsb ish", // the invalidation completes
            "isb",     // before the next instruction is fetched
            options(nostack, preserves_flags)
        );
    }
}

/// Data synchronization barrier, full system: earlier accesses and cache maintenance reach the
/// point of coherency before any later instruction.
pub fn dsb_sy() {
    // SAFETY: A barrier only orders memory accesses.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Cleans the data cache line holding `address` to the point of coherency (`DC CVAC`).
pub fn dc_cvac(address: usize) {
    // SAFETY: Cleaning writes dirty data back to memory; it changes no value a program sees.
    unsafe { core::arch::asm!("dc cvac, {}", in(reg) address, options(nostack, preserves_flags)) };
}

/// Cleans and invalidates the data cache line holding `address` to the point of coherency
/// (`DC CIVAC`).
pub fn dc_civac(address: usize) {
    // SAFETY: Clean and invalidate writes dirty data back before dropping the line, so no value
    // a program sees changes.
    unsafe { core::arch::asm!("dc civac, {}", in(reg) address, options(nostack, preserves_flags)) };
}

/// Reads the random number register `RNDR` (FEAT_RNG): a 64-bit random value, or `None` when
/// the generator reports failure (`NZCV` = 0b0100). For a CPU that has FEAT_RNG
/// (`ID_AA64ISAR0_EL1.RNDR` ≥ 1, which `rand::cpu_has_rndr` decodes); on any other the
/// instruction is undefined: a synchronous exception, which vmbase's default handler reports
/// before it reboots.
pub fn rndr() -> Option<u64> {
    let value: u64;
    let succeeded: u64;
    // SAFETY: Reading RNDR only sets the result register and the condition flags; where the
    // CPU lacks it, the read traps before it changes anything.
    unsafe {
        core::arch::asm!(
            "mrs {value}, s3_3_c2_c4_0", // RNDR, by encoding: the assembler may not know FEAT_RNG
            "cset {succeeded}, ne",      // Z is set when no random value was returned
            value = out(reg) value,
            succeeded = out(reg) succeeded,
            options(nomem, nostack)
        );
    }
    (succeeded != 0).then_some(value)
}

/// Data synchronization barrier, inner shareable, stores only: earlier writes (page-table
/// descriptors) are visible to every CPU's table walker before any later TLB maintenance.
pub fn dsb_ishst() {
    // SAFETY: A barrier only orders memory accesses.
    unsafe { core::arch::asm!("dsb ishst", options(nostack, preserves_flags)) };
}

/// Data synchronization barrier, inner shareable: earlier accesses and TLB maintenance complete
/// on every CPU before any later instruction.
pub fn dsb_ish() {
    // SAFETY: A barrier only orders memory accesses and maintenance.
    unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };
}

/// Drops every CPU's cached EL1 translations of `address`, for all ASIDs (`TLBI VAAE1IS`).
pub fn tlbi_vaae1is(address: usize) {
    // The operand is VA[55:12] in bits [43:0]; the bits above (TTL, RES0) stay clear.
    let operand = (address >> 12) & ((1 << 44) - 1);
    // SAFETY: TLB maintenance only drops cached translations; the page tables in memory decide
    // what is mapped.
    unsafe {
        core::arch::asm!("tlbi vaae1is, {}", in(reg) operand, options(nostack, preserves_flags))
    };
}
