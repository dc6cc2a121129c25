// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Just enough GICv3 to deliver the virtual timer's interrupt on QEMU virt (CPU 0).

use core::ptr::NonNull;
use safe_mmio::fields::ReadPureWrite;
use safe_mmio::UniqueMmioPointer;

/// QEMU virt's GICv3 distributor and CPU 0's redistributor (from its device tree).
const GICD_BASE: usize = 0x0800_0000;
const GICR_BASE: usize = 0x080a_0000;
/// What the fault guest's page table maps for the GIC: the distributor's 64 KiB frame and CPU 0's
/// redistributor (control and SGI frames, 64 KiB each).
pub const MMIO: [core::ops::Range<usize>; 2] = [
    GICD_BASE..GICD_BASE + 0x1_0000,
    GICR_BASE..GICR_BASE + 0x2_0000,
];
/// The redistributor's SGI and PPI frame follows its control frame.
const GICR_SGI_BASE: usize = GICR_BASE + 0x1_0000;

const GICD_CTLR: usize = GICD_BASE; // distributor control
const GICR_WAKER: usize = GICR_BASE + 0x14; // redistributor power management
const GICR_IGROUPR0: usize = GICR_SGI_BASE + 0x80; // SGI/PPI group
const GICR_ISENABLER0: usize = GICR_SGI_BASE + 0x100; // SGI/PPI set-enable

const GICD_CTLR_ENABLE_GRP0: u32 = 1 << 0;
const GICD_CTLR_ENABLE_GRP1: u32 = 1 << 1;
const GICD_CTLR_ARE: u32 = 1 << 4; // affinity routing, required by QEMU's GICv3
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// The EL1 virtual timer's interrupt: PPI 11.
pub const VIRTUAL_TIMER_INTID: u32 = 27;
/// The software-generated interrupt the nested-IRQ case sends itself.
pub const NESTED_SGI_INTID: u32 = 1;

/// One 32-bit GIC register.
fn register(address: usize) -> UniqueMmioPointer<'static, ReadPureWrite<u32>> {
    // SAFETY: Only called with the GIC register addresses above, which the fault guest's page
    // table maps as device memory; nothing else in the guest touches the GIC.
    unsafe { UniqueMmioPointer::new(NonNull::new(address as *mut ReadPureWrite<u32>).unwrap()) }
}

/// Enables group 1 interrupts in the distributor and wakes CPU 0's redistributor.
/// Returns false if the redistributor does not wake up.
pub fn init() -> bool {
    register(GICD_CTLR).write(GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1 | GICD_CTLR_ENABLE_GRP0);
    let mut waker = register(GICR_WAKER);
    waker.modify(|value| value & !GICR_WAKER_PROCESSOR_SLEEP);
    (0..1_000_000).any(|_| waker.read() & GICR_WAKER_CHILDREN_ASLEEP == 0)
}

/// Puts private interrupt `intid` in group 1 and enables it.
pub fn enable_private_interrupt(intid: u32) {
    register(GICR_IGROUPR0).modify(|groups| groups | 1 << intid);
    register(GICR_ISENABLER0).write(1 << intid);
}

/// Enables the CPU interface's system registers and lets every priority through.
pub fn enable_cpu_interface() {
    // SAFETY: These writes configure only this CPU's GIC interface (SRE, priority mask, group 1
    // enable); they touch no memory.
    unsafe {
        core::arch::asm!(
            "mrs {tmp}, S3_0_C12_C12_5", // ICC_SRE_EL1
            "orr {tmp}, {tmp}, #1",      // SRE: use the system register interface
            "msr S3_0_C12_C12_5, {tmp}",
            "isb",
            "mov {tmp}, #0xff",
            "msr S3_0_C4_C6_0, {tmp}", // ICC_PMR_EL1: no priority is masked
            "mov {tmp}, #1",
            "msr S3_0_C12_C12_7, {tmp}", // ICC_IGRPEN1_EL1: group 1 on
            "isb",
            tmp = out(reg) _,
            options(nostack),
        );
    }
}

/// Acknowledges the highest-priority pending group 1 interrupt; returns its INTID.
pub fn acknowledge() -> u32 {
    let intid: u64;
    // SAFETY: Reading ICC_IAR1_EL1 only acknowledges an interrupt at this CPU's GIC interface.
    unsafe {
        core::arch::asm!("mrs {}, S3_0_C12_C12_0", out(reg) intid, options(nomem, nostack));
    }
    // INTID is bits [23:0].
    (intid & 0xff_ffff) as u32
}

/// Ends interrupt `intid` (priority drop and deactivation, as ICC_CTLR_EL1.EOImode is 0).
pub fn end_of_interrupt(intid: u32) {
    // SAFETY: Writing ICC_EOIR1_EL1 only ends an interrupt at this CPU's GIC interface.
    unsafe {
        core::arch::asm!("msr S3_0_C12_C12_1, {}", "isb", in(reg) u64::from(intid), options(nomem, nostack));
    }
}

/// Sends SGI `intid` to this CPU (affinity 0.0.0.0, which CPU 0 has on QEMU virt).
pub fn send_sgi_to_self(intid: u32) {
    // ICC_SGI1R_EL1: INTID in bits [27:24], target list in bits [15:0] (bit 0: Aff0 = 0).
    let value = u64::from(intid) << 24 | 1;
    // SAFETY: Writing ICC_SGI1R_EL1 only raises an interrupt at this CPU.
    unsafe {
        core::arch::asm!("msr S3_0_C12_C11_5, {}", "isb", in(reg) value, options(nomem, nostack));
    }
}

/// Stops the EL1 virtual timer, which clears its interrupt.
pub fn stop_virtual_timer() {
    // SAFETY: Programs only this CPU's virtual timer.
    unsafe {
        core::arch::asm!("msr cntv_ctl_el0, xzr", "isb", options(nomem, nostack));
    }
}

/// Starts the EL1 virtual timer, firing after `ticks`.
pub fn start_virtual_timer(ticks: u64) {
    // SAFETY: Programs only this CPU's virtual timer.
    unsafe {
        core::arch::asm!(
            "msr cntv_tval_el0, {ticks}",
            "msr cntv_ctl_el0, {enable}", // ENABLE, IMASK clear
            "isb",
            ticks = in(reg) ticks,
            enable = in(reg) 1u64,
            options(nostack),
        );
    }
}
