// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! What the double does on the hardware: its entry and exception vector, the EL2 and stage-2
//! translation tables, entering the guest, and handling the guest's traps.
//!
//! Stage 2 maps guest RAM (`0x8000_0000` up to 4 GiB) and the firmware region below it
//! (`0x7fc0_0000`, 4 MiB) and nothing else: every device access traps here, as every MMIO access
//! of a protected VM traps to pKVM and then to crosvm, which emulates the device. The double
//! checks the access against the MMIO guard and performs it on the guest's behalf (QEMU emulates
//! the device); a queue notification is first checked for unshared buffers (`virtio`).

use crate::hypercalls::{Call, Guest, Outcome};
use crate::mmio::{Access, WNR};
use crate::pages::PageSet;
use crate::virtio::{self, Bus, Device, Progress, Queue, SLOTS};
use arm_pl011_uart::{PL011Registers, Uart, UniqueMmioPointer};
use core::arch::{asm, global_asm};
use core::fmt::{self, Write};
use core::panic::PanicInfo;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

/// The guest's device GiB, `[0, 0x4000_0000)`: traps, checked against the MMIO guard.
const MMIO_END: u64 = 0x4000_0000;
/// Guest RAM: `0x8000_0000` to 4 GiB, the most `vm --protected` gives a guest.
const RAM_START: u64 = 0x8000_0000;
/// QEMU virt's PL011, the double's console (the guest's too).
const PL011_ADDRESS: usize = 0x900_0000;
/// QEMU virt's PCI configuration space (ECAM) with `highmem=off`, which `vm` always uses for a
/// protected VM.
const ECAM: u64 = 0x3f00_0000;
const ECAM_SIZE: u64 = 0x100_0000;
/// QEMU virt's 32-bit PCI memory window with `highmem=off`, where the guest puts the BARs.
const PCI_MEMORY: core::ops::Range<u64> = 0x1000_0000..0x3eff_0000;
/// PSCI `SYSTEM_RESET`: how the double ends a guest that broke a rule (`vm` reports `Reboot`).
const PSCI_SYSTEM_RESET: u64 = 0x8400_0009;

/// EL2 stage 1: MAIR attribute 0 is Device-nGnRE, 1 Normal write-back.
const MAIR_EL2: u64 = 0x04 | 0xff << 8;
/// TCR_EL2: 39-bit VAs from a level-1 table (T0SZ 25), 4 KiB granule, walks inner shareable
/// and write-back cacheable (SH0 3, ORGN0 1, IRGN0 1), 40-bit PAs (PS 2), RES1 bits 31 and 23.
const TCR_EL2: u64 = 1 << 31 | 1 << 23 | 2 << 16 | 3 << 12 | 1 << 10 | 1 << 8 | 25;
/// SCTLR_EL2: MMU (M), data and instruction caches (C, I), SP alignment check (SA), and the
/// register's RES1 bits (4, 5, 11, 16, 18, 22, 23, 28, 29).
const SCTLR_EL2: u64 = 1 | 1 << 2 | 1 << 3 | 1 << 12 | 0x30c5_0830;
/// CPTR_EL2 with no traps (TFP, TZ, TTA, TCPAC clear): the guest and the double both use FP and
/// SIMD registers. Only the register's RES1 bits (13, 9, 7:0) are set.
const CPTR_EL2: u64 = 1 << 13 | 1 << 9 | 0xff;
/// HCR_EL2: stage 2 on (VM), set/way invalidation as clean+invalidate (SWIO), SMC traps here
/// (TSC), EL1 is AArch64 (RW), pointer authentication untrapped (APK, API). Interrupts and
/// SErrors go to EL1 (IMO, FMO, AMO clear).
const HCR_EL2: u64 = 1 | 1 << 1 | 1 << 19 | 1 << 31 | 1 << 40 | 1 << 41;
/// CNTHCTL_EL2: EL1 reads the physical counter and uses the physical timer (EL1PCTEN, EL1PCEN).
const CNTHCTL_EL2: u64 = 0b11;
/// VTCR_EL2: 32-bit IPAs (T0SZ 32) from a level-1 table (SL0 1), 4 KiB granule, walks inner
/// shareable write-back, 32-bit PAs (PS 0), RES1 bit 31.
const VTCR_EL2: u64 = 1 << 31 | 3 << 12 | 1 << 10 | 1 << 8 | 1 << 6 | 32;
/// SPSR_EL2 to enter EL1h with D, A, I and F masked, as crosvm enters a guest.
const SPSR_EL1H_MASKED: u64 = 0x3c5;

/// Stage-1 (EL2) block descriptor attributes: valid block, AP[1] (RES1 at EL2), accessed.
const S1_BLOCK: u64 = 1 | 1 << 6 | 1 << 10;
/// Device memory (MAIR index 0), never executable (XN, bit 54).
const S1_DEVICE: u64 = S1_BLOCK | 1 << 54;
/// Normal memory (MAIR index 1), inner shareable.
const S1_MEMORY: u64 = S1_BLOCK | 1 << 2 | 3 << 8;
/// Stage-2 block descriptor: valid block, MemAttr 0b1111 (normal write-back, the guest's own
/// attributes decide), S2AP read-write, inner shareable, accessed.
const S2_MEMORY: u64 = 1 | 0xf << 2 | 0b11 << 6 | 3 << 8 | 1 << 10;
/// Stage-2 table descriptor.
const S2_TABLE: u64 = 0b11;

/// A translation table.
#[repr(C, align(4096))]
struct Table([u64; 512]);

/// The double's own identity map, 1 GiB blocks: devices below RAM, then 3 GiB of RAM (the
/// GiB holding the double and the firmware region, then the guest's).
#[unsafe(no_mangle)]
static EL2_PAGE_TABLE: Table = {
    let mut entries = [0; 512];
    entries[0] = S1_DEVICE;
    entries[1] = S1_MEMORY | 0x4000_0000;
    entries[2] = S1_MEMORY | 0x8000_0000;
    entries[3] = S1_MEMORY | 0xc000_0000;
    Table(entries)
};

/// Stage 2, level 1 (4 entries of 1 GiB) and the level-2 table of the GiB below RAM.
#[unsafe(link_section = ".noinit")]
static mut STAGE2_LEVEL1: Table = Table([0; 512]);
#[unsafe(link_section = ".noinit")]
static mut STAGE2_BELOW_RAM: Table = Table([0; 512]);
/// One bit per page of guest RAM (2 GiB) shared with the host.
#[unsafe(link_section = ".noinit")]
static mut SHARED_PAGES: [u64; 8192] = [0; 8192];
/// One bit per page of the device GiB registered with the MMIO guard.
#[unsafe(link_section = ".noinit")]
static mut REGISTERED_PAGES: [u64; 4096] = [0; 4096];

/// Everything the double knows about the guest.
struct State {
    guest: Guest<'static>,
    /// The virtio-pci devices as their BARs last placed them, or `None` if the guest wrote to
    /// PCI configuration space since they were found.
    devices: Option<[Option<Device>; SLOTS]>,
    /// What each queue's notifications have been checked up to.
    progress: Progress,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Set while the double performs a guest's access, so that an external abort (nothing at that
/// address) is reported to the guest instead of ending the double.
static EMULATING: AtomicBool = AtomicBool::new(false);
static EMULATION_FAULTED: AtomicBool = AtomicBool::new(false);

global_asm!(
    ".section .init.entry, \"ax\"",
    ".global entry",
    "entry:",
    // x0–x2 are the guest's entry registers and x3 its entry point (from vm's boot stub):
    // nothing below touches them.
    // No FP/SIMD traps before any compiled code runs: the compiler uses those registers.
    "ldr x8, ={cptr}",
    "msr cptr_el2, x8",
    "adr x8, vector_table",
    "msr vbar_el2, x8",
    // The identity map for EL2, then the MMU and caches.
    "ldr x8, ={mair}",
    "msr mair_el2, x8",
    "ldr x8, ={tcr}",
    "msr tcr_el2, x8",
    "adrp x8, EL2_PAGE_TABLE",
    "msr ttbr0_el2, x8",
    "isb",
    "tlbi alle2",
    "dsb nsh",
    "isb",
    "ldr x8, ={sctlr}",
    "msr sctlr_el2, x8",
    "isb",
    // Clear .bss, 16 bytes at a time (the linker script aligns both ends).
    "adrp x8, bss_begin",
    "add x8, x8, :lo12:bss_begin",
    "adrp x9, bss_end",
    "add x9, x9, :lo12:bss_end",
    "0:",
    "cmp x8, x9",
    "b.hs 1f",
    "stp xzr, xzr, [x8], #16",
    "b 0b",
    "1:",
    "adrp x8, stack_end",
    "add x8, x8, :lo12:stack_end",
    "mov sp, x8",
    "b {main}",
    ".ltorg",
    cptr = const CPTR_EL2,
    mair = const MAIR_EL2,
    tcr = const TCR_EL2,
    sctlr = const SCTLR_EL2,
    main = sym main,
);

/// Bytes the exception vector saves: x0–x30, ELR_EL2, SPSR_EL2, padding, q0–q31, FPSR and
/// padding (`Frame`).
const FRAME_SIZE: usize = 800;

/// The guest's (or, for a fault while emulating, the double's) registers at an exception.
#[repr(C)]
struct Frame {
    x: [u64; 31],
    elr: u64,
    spsr: u64,
    _padding: u64,
    q: [u128; 32],
    fpsr: u64,
    _padding2: u64,
}

const _: () = assert!(size_of::<Frame>() == FRAME_SIZE);

global_asm!(
    // One vector entry: make room for a Frame, save x0 and x1, and pass on which entry it is
    // (kind: 0-3 current EL with SP_EL0, 4-7 current EL with SP_ELx, 8-11 lower EL AArch64,
    // 12-15 lower EL AArch32; sync, IRQ, FIQ, SError in each group).
    ".macro vector_entry kind",
    ".balign 0x80",
    "sub sp, sp, #{frame}",
    "stp x0, x1, [sp]",
    "mov x0, #\\kind",
    "b exception_common",
    ".endm",
    ".section .text.vector_table, \"ax\"",
    ".balign 0x800",
    "vector_table:",
    "vector_entry 0",
    "vector_entry 1",
    "vector_entry 2",
    "vector_entry 3",
    "vector_entry 4",
    "vector_entry 5",
    "vector_entry 6",
    "vector_entry 7",
    "vector_entry 8",
    "vector_entry 9",
    "vector_entry 10",
    "vector_entry 11",
    "vector_entry 12",
    "vector_entry 13",
    "vector_entry 14",
    "vector_entry 15",
    // Saves the rest of the Frame (all general-purpose, FP and SIMD registers: the handler's
    // compiled code may use any of them, and the guest's must come back unchanged), calls
    // handle_exception(kind, frame), restores everything from the Frame (which the handler may
    // have changed) and returns.
    "exception_common:",
    "stp x2, x3, [sp, #16]",
    "stp x4, x5, [sp, #32]",
    "stp x6, x7, [sp, #48]",
    "stp x8, x9, [sp, #64]",
    "stp x10, x11, [sp, #80]",
    "stp x12, x13, [sp, #96]",
    "stp x14, x15, [sp, #112]",
    "stp x16, x17, [sp, #128]",
    "stp x18, x19, [sp, #144]",
    "stp x20, x21, [sp, #160]",
    "stp x22, x23, [sp, #176]",
    "stp x24, x25, [sp, #192]",
    "stp x26, x27, [sp, #208]",
    "stp x28, x29, [sp, #224]",
    "str x30, [sp, #240]",
    "mrs x2, elr_el2",
    "mrs x3, spsr_el2",
    "stp x2, x3, [sp, #248]",
    "add x2, sp, #272",
    "stp q0, q1, [x2, #0]",
    "stp q2, q3, [x2, #32]",
    "stp q4, q5, [x2, #64]",
    "stp q6, q7, [x2, #96]",
    "stp q8, q9, [x2, #128]",
    "stp q10, q11, [x2, #160]",
    "stp q12, q13, [x2, #192]",
    "stp q14, q15, [x2, #224]",
    "stp q16, q17, [x2, #256]",
    "stp q18, q19, [x2, #288]",
    "stp q20, q21, [x2, #320]",
    "stp q22, q23, [x2, #352]",
    "stp q24, q25, [x2, #384]",
    "stp q26, q27, [x2, #416]",
    "stp q28, q29, [x2, #448]",
    "stp q30, q31, [x2, #480]",
    "mrs x3, fpsr",
    "str x3, [x2, #512]",
    "mov x1, sp",
    "bl {handler}",
    "add x2, sp, #272",
    "ldr x3, [x2, #512]",
    "msr fpsr, x3",
    "ldp q0, q1, [x2, #0]",
    "ldp q2, q3, [x2, #32]",
    "ldp q4, q5, [x2, #64]",
    "ldp q6, q7, [x2, #96]",
    "ldp q8, q9, [x2, #128]",
    "ldp q10, q11, [x2, #160]",
    "ldp q12, q13, [x2, #192]",
    "ldp q14, q15, [x2, #224]",
    "ldp q16, q17, [x2, #256]",
    "ldp q18, q19, [x2, #288]",
    "ldp q20, q21, [x2, #320]",
    "ldp q22, q23, [x2, #352]",
    "ldp q24, q25, [x2, #384]",
    "ldp q26, q27, [x2, #416]",
    "ldp q28, q29, [x2, #448]",
    "ldp q30, q31, [x2, #480]",
    "ldp x2, x3, [sp, #248]",
    "msr elr_el2, x2",
    "msr spsr_el2, x3",
    "ldp x0, x1, [sp]",
    "ldp x2, x3, [sp, #16]",
    "ldp x4, x5, [sp, #32]",
    "ldp x6, x7, [sp, #48]",
    "ldp x8, x9, [sp, #64]",
    "ldp x10, x11, [sp, #80]",
    "ldp x12, x13, [sp, #96]",
    "ldp x14, x15, [sp, #112]",
    "ldp x16, x17, [sp, #128]",
    "ldp x18, x19, [sp, #144]",
    "ldp x20, x21, [sp, #160]",
    "ldp x22, x23, [sp, #176]",
    "ldp x24, x25, [sp, #192]",
    "ldp x26, x27, [sp, #208]",
    "ldp x28, x29, [sp, #224]",
    "ldr x30, [sp, #240]",
    "add sp, sp, #{frame}",
    "eret",
    // enter_guest(x0, x1, x2, entry): enters the guest at EL1h at `entry` with x0–x2 as given
    // and every other general-purpose register zero, as crosvm does.
    ".section .text.enter_guest, \"ax\"",
    ".global enter_guest",
    "enter_guest:",
    "msr elr_el2, x3",
    "mov x3, #{spsr}",
    "msr spsr_el2, x3",
    "mov x3, xzr",
    "mov x4, xzr",
    "mov x5, xzr",
    "mov x6, xzr",
    "mov x7, xzr",
    "mov x8, xzr",
    "mov x9, xzr",
    "mov x10, xzr",
    "mov x11, xzr",
    "mov x12, xzr",
    "mov x13, xzr",
    "mov x14, xzr",
    "mov x15, xzr",
    "mov x16, xzr",
    "mov x17, xzr",
    "mov x18, xzr",
    "mov x19, xzr",
    "mov x20, xzr",
    "mov x21, xzr",
    "mov x22, xzr",
    "mov x23, xzr",
    "mov x24, xzr",
    "mov x25, xzr",
    "mov x26, xzr",
    "mov x27, xzr",
    "mov x28, xzr",
    "mov x29, xzr",
    "mov x30, xzr",
    "eret",
    frame = const FRAME_SIZE,
    handler = sym handle_exception,
    spsr = const SPSR_EL1H_MASKED,
);

unsafe extern "C" {
    /// Enters the guest; see the assembly above.
    fn enter_guest(x0: u64, x1: u64, x2: u64, entry: u64) -> !;
}

/// Reads a system register.
macro_rules! read_sysreg {
    ($name:literal) => {{
        let value: u64;
        // SAFETY: Reading this system register at EL2 has no side effect.
        unsafe {
            asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack, preserves_flags))
        };
        value
    }};
}

/// Writes a system register.
macro_rules! write_sysreg {
    ($name:literal, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: The callers write EL2 configuration and the guest's EL1 exception state,
        // neither of which the double's own memory accesses depend on.
        unsafe { asm!(concat!("msr ", $name, ", {}"), in(reg) value, options(nostack, preserves_flags)) };
    }};
}

/// The Rust entry point: `x0`–`x2` and `entry` are the guest's registers and first instruction.
extern "C" fn main(x0: u64, x1: u64, x2: u64, entry: u64) -> ! {
    let (shared, registered) = (&raw mut SHARED_PAGES, &raw mut REGISTERED_PAGES);
    // SAFETY: This runs once, before any exception can reach a handler that uses the page sets,
    // so these are the only references to them.
    let (shared, registered) = unsafe { (&mut *shared, &mut *registered) };
    *STATE.lock() = Some(State {
        guest: Guest {
            shared: PageSet::new(RAM_START, shared),
            registered: PageSet::new(0, registered),
            enrolled: false,
        },
        devices: None,
        progress: Progress::new(),
    });
    build_stage2();
    configure_el2();
    // SAFETY: Stage 2 maps the guest's RAM and firmware region, which is where `entry` is.
    unsafe { enter_guest(x0, x1, x2, entry) }
}

/// Fills in stage 2: RAM from `0x8000_0000` to 4 GiB in 1 GiB blocks, the 4 MiB firmware
/// region below it in 2 MiB blocks, nothing else.
fn build_stage2() {
    let (level1, below_ram) = (&raw mut STAGE2_LEVEL1, &raw mut STAGE2_BELOW_RAM);
    // SAFETY: Only this function, run once before the guest starts, touches the tables.
    let (level1, below_ram) = unsafe { (&mut *level1, &mut *below_ram) };
    below_ram.0[510] = S2_MEMORY | 0x7fc0_0000;
    below_ram.0[511] = S2_MEMORY | 0x7fe0_0000;
    level1.0[1] = S2_TABLE | (&raw const *below_ram) as u64;
    level1.0[2] = S2_MEMORY | 0x8000_0000;
    level1.0[3] = S2_MEMORY | 0xc000_0000;
    write_sysreg!("vttbr_el2", (&raw const *level1) as u64);
}

/// Sets up EL2 for the guest: traps, timers, IDs, the GIC's system registers, stage 2.
fn configure_el2() {
    // SAFETY: A barrier has no effect on memory safety; it makes the table writes visible to
    // the stage-2 walker.
    unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) };
    write_sysreg!("vtcr_el2", VTCR_EL2);
    write_sysreg!("cnthctl_el2", CNTHCTL_EL2);
    write_sysreg!("cntvoff_el2", 0);
    // The guest reads the CPU's own IDs (MIDR_EL1 and MPIDR_EL1 read these at EL1).
    write_sysreg!("vpidr_el2", read_sysreg!("midr_el1"));
    write_sysreg!("vmpidr_el2", read_sysreg!("mpidr_el1"));
    // GICv3 system registers for EL1 (SRE, DFB, DIB, Enable), where the CPU has them.
    if (read_sysreg!("id_aa64pfr0_el1") >> 24) & 0xf != 0 {
        write_sysreg!("icc_sre_el2", 0xf);
    }
    // Every PMU counter to EL1 (MDCR_EL2.HPMN = PMCR_EL0.N), where the CPU has a PMU.
    let pmu_version = (read_sysreg!("id_aa64dfr0_el1") >> 8) & 0xf;
    if pmu_version != 0 && pmu_version != 0xf {
        write_sysreg!("mdcr_el2", (read_sysreg!("pmcr_el0") >> 11) & 0x1f);
    }
    write_sysreg!("hcr_el2", HCR_EL2);
    // SAFETY: Invalidating TLB entries of stage 1+2 for this VMID only affects the guest,
    // which has not run yet.
    unsafe {
        asm!(
            "isb",
            "tlbi vmalls12e1",
            "dsb nsh",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Exception classes (ESR_EL2.EC).
const EC_HVC64: u64 = 0x16;
const EC_SMC64: u64 = 0x17;
const EC_INSTRUCTION_ABORT_LOWER: u64 = 0x20;
const EC_DATA_ABORT_LOWER: u64 = 0x24;
const EC_DATA_ABORT_CURRENT: u64 = 0x25;

/// The vector's kinds for a synchronous exception from the current EL (SP_ELx) and from a
/// lower EL in AArch64.
const SYNC_CURRENT: u64 = 4;
const SYNC_LOWER: u64 = 8;

/// Called by the exception vector for every exception taken to EL2.
extern "C" fn handle_exception(kind: u64, frame: &mut Frame) {
    let esr = read_sysreg!("esr_el2");
    let class = esr >> 26;
    match kind {
        SYNC_LOWER => match class {
            EC_HVC64 => hypercall(frame),
            EC_SMC64 => {
                // A trapped SMC returns to the SMC itself: step over it (KVM does the same).
                frame.elr += 4;
                hypercall(frame);
            }
            EC_DATA_ABORT_LOWER => data_abort(frame, esr),
            EC_INSTRUCTION_ABORT_LOWER => {
                report(format_args!(
                    "hyp: the guest executed at IPA {:#x}, which is not guest memory",
                    fault_ipa()
                ));
                inject_external_abort(frame, esr);
            }
            _ => die(format_args!(
                "hyp: unexpected trap from the guest: ESR_EL2 {esr:#x} at guest PC {:#x}",
                frame.elr
            )),
        },
        SYNC_CURRENT if class == EC_DATA_ABORT_CURRENT && EMULATING.load(Ordering::Relaxed) => {
            // Nothing answered the guest's access: skip the load or store and say so.
            EMULATION_FAULTED.store(true, Ordering::Relaxed);
            frame.elr += 4;
        }
        _ => die(format_args!(
            "hyp: the double took exception {kind} (ESR_EL2 {esr:#x}, FAR_EL2 {:#x}) at {:#x}",
            read_sysreg!("far_el2"),
            frame.elr
        )),
    }
}

/// The guest's `hvc` (or trapped `smc`).
fn hypercall(frame: &mut Frame) {
    let call = Call {
        function: frame.x[0] as u32,
        args: [frame.x[1], frame.x[2], frame.x[3]],
    };
    let outcome = with_state(|state| state.guest.handle(call));
    let values = match outcome {
        Outcome::Return(values) => values,
        Outcome::Forward => firmware_call([frame.x[0], frame.x[1], frame.x[2], frame.x[3]]),
    };
    frame.x[..4].copy_from_slice(&values);
}

/// Makes an SMCCC call to the firmware below EL2 (QEMU's PSCI, whose conduit is SMC when the
/// machine has EL2).
fn firmware_call(arguments: [u64; 4]) -> [u64; 4] {
    let [mut x0, mut x1, mut x2, mut x3] = arguments;
    // SAFETY: An SMCCC call changes no memory the double owns; x4–x17 may be clobbered.
    unsafe {
        asm!(
            "smc #0",
            inout("x0") x0, inout("x1") x1, inout("x2") x2, inout("x3") x3,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
            out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack)
        )
    };
    [x0, x1, x2, x3]
}

/// Runs `f` on the double's state.
fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let mut state = STATE.lock();
    f(state
        .as_mut()
        .expect("the state is set before the guest runs"))
}

/// The IPA of the stage-2 fault being handled: HPFAR_EL2.FIPA holds IPA[47:12] at bits 39:4,
/// FAR_EL2 the offset within the page.
fn fault_ipa() -> u64 {
    (read_sysreg!("hpfar_el2") >> 4) << 12 | (read_sysreg!("far_el2") & 0xfff)
}

/// A guest load or store that stage 2 does not map: a device access, checked and performed.
fn data_abort(frame: &mut Frame, esr: u64) {
    let ipa = fault_ipa();
    if ipa >= MMIO_END {
        // Neither RAM nor a device: what QEMU does without the double, an external abort.
        return inject_external_abort(frame, esr);
    }
    let Some(access) = Access::decode(esr, ipa) else {
        die(format_args!(
            "hyp: MMIO access to IPA {ipa:#x} that cannot be emulated: ESR_EL2 {esr:#x} has no \
             instruction syndrome (guest PC {:#x})",
            frame.elr
        ))
    };
    if !with_state(|state| state.guest.mmio_allowed(ipa, access.size)) {
        die(format_args!(
            "hyp: MMIO access to unregistered IPA {ipa:#x}\nhyp: a {}-byte {} at guest PC {:#x}, \
             after the guest enrolled in the MMIO guard, to a page it never registered \
             (MMIO_GUARD_MAP)",
            access.size,
            if access.write { "write" } else { "read" },
            frame.elr
        ));
    }
    let register = |frame: &Frame| match access.register {
        31 => 0,
        register => frame.x[register],
    };
    let outcome = if access.write {
        let value = access.stored_value(register(frame));
        before_device_write(ipa, value);
        emulate(|| Physical.write(ipa, access.size, value))
    } else {
        emulate(|| Physical.read(ipa, access.size)).map(|raw| {
            if access.register != 31 {
                frame.x[access.register] = access.loaded_value(raw);
            }
        })
    };
    match outcome {
        Some(()) => frame.elr += 4,
        None => inject_external_abort(frame, esr),
    }
}

/// What the double checks before it performs a guest's write of `value` to device memory: a
/// write to PCI configuration space may move BARs (the devices are found again before the next
/// check); a write to a virtio notify region is checked for unshared buffers.
fn before_device_write(ipa: u64, value: u64) {
    with_state(|state| {
        if (ECAM..ECAM + ECAM_SIZE).contains(&ipa) {
            state.devices = None;
        } else if PCI_MEMORY.contains(&ipa) {
            let devices = *state
                .devices
                .get_or_insert_with(|| virtio::scan(&Physical, ECAM));
            if let Some(device) = virtio::notified(&devices, ipa) {
                // The value written is the queue's index (QEMU 7.2's devices never offer
                // VIRTIO_F_NOTIFICATION_DATA, which would add more).
                check_notification(state, &device, value & 0xffff);
            }
        }
    });
}

/// Checks a notification of `device`'s queue `index`: every buffer it hands over must be
/// shared with the host, or the VM ends naming it.
fn check_notification(state: &mut State, device: &Device, index: u64) {
    let queue = Queue::read(&Physical, device, index);
    let from = state.progress.last(queue.desc);
    let shared = |ipa, len| state.guest.shared.contains_range(ipa, len);
    match virtio::check_notification(&Physical, &queue, from, shared) {
        Ok(checked) => state.progress.record(queue.desc, checked),
        Err(unshared) => die(format_args!(
            "hyp: virtio {} at IPA {:#x} ({} bytes) given to a device while not shared with the \
             host\nhyp: the guest notified queue {index} of the virtio-pci device whose notify \
             region is at {:#x}; in a protected VM the host cannot reach that memory (MEM_SHARE)",
            unshared.what, unshared.ipa, unshared.len, device.notify.0
        )),
    }
}

/// Performs `access` for the guest, `None` if nothing answered at that address.
fn emulate<T>(access: impl FnOnce() -> T) -> Option<T> {
    EMULATING.store(true, Ordering::Relaxed);
    let value = access();
    EMULATING.store(false, Ordering::Relaxed);
    (!EMULATION_FAULTED.swap(false, Ordering::Relaxed)).then_some(value)
}

/// Gives the guest a synchronous external abort for the access (or instruction fetch) that
/// trapped, as QEMU does without the double when nothing is at an address.
fn inject_external_abort(frame: &mut Frame, esr: u64) {
    const EXTERNAL_ABORT: u64 = 0x10;
    // SPSR.M[3:0]: EL0t 0b0000, EL1t 0b0100, EL1h 0b0101.
    let (class_offset, vector_offset) = match frame.spsr & 0xf {
        0b0000 => (0, 0x400),
        0b0100 => (1, 0x000),
        _ => (1, 0x200),
    };
    // Data abort (0x24) or instruction abort (0x20), from a lower or the same EL.
    let class = (esr >> 26) + class_offset;
    write_sysreg!(
        "esr_el1",
        class << 26 | 1 << 25 | (esr & WNR) | EXTERNAL_ABORT
    );
    write_sysreg!("far_el1", read_sysreg!("far_el2"));
    write_sysreg!("elr_el1", frame.elr);
    write_sysreg!("spsr_el1", frame.spsr);
    frame.elr = read_sysreg!("vbar_el1") + vector_offset;
    frame.spsr = SPSR_EL1H_MASKED;
}

/// Physical memory and devices, as the double reaches them through its identity map.
struct Physical;

impl Bus for Physical {
    fn read(&self, address: u64, size: u64) -> u64 {
        let value: u64;
        // SAFETY: The double's identity map covers the 4 GiB below its callers' addresses (a
        // device IPA, a PCI register or guest RAM already checked to be shared), and a load
        // cannot change the double's own memory. One ldr of the access's size, so that the
        // device sees the access the guest made.
        unsafe {
            match size {
                1 => asm!("ldrb {:w}, [{}]", out(reg) value, in(reg) address, options(nostack)),
                2 => asm!("ldrh {:w}, [{}]", out(reg) value, in(reg) address, options(nostack)),
                4 => asm!("ldr {:w}, [{}]", out(reg) value, in(reg) address, options(nostack)),
                _ => asm!("ldr {}, [{}]", out(reg) value, in(reg) address, options(nostack)),
            }
        }
        value
    }

    fn write(&self, address: u64, size: u64, value: u64) {
        // SAFETY: Writes go only to device IPAs below 0x4000_0000, never to the double's memory
        // (at 0x4000_0000 and up). One str of the access's size, as the guest made it.
        unsafe {
            match size {
                1 => asm!("strb {:w}, [{}]", in(reg) value, in(reg) address, options(nostack)),
                2 => asm!("strh {:w}, [{}]", in(reg) value, in(reg) address, options(nostack)),
                4 => asm!("str {:w}, [{}]", in(reg) value, in(reg) address, options(nostack)),
                _ => asm!("str {}, [{}]", in(reg) value, in(reg) address, options(nostack)),
            }
        }
    }
}

/// Writes a line to the console.
fn report(message: fmt::Arguments) {
    // SAFETY: QEMU's PL011 is at this address, mapped as device memory by the double's identity
    // map; the guest is stopped while the double runs, so nothing else drives it meanwhile.
    let registers = unsafe {
        UniqueMmioPointer::new(NonNull::new(PL011_ADDRESS as *mut PL011Registers).unwrap())
    };
    let mut uart = Uart::new(registers);
    let _ = writeln!(uart, "{message}");
}

/// Reports `message` and ends the VM with PSCI `SYSTEM_RESET` (`vm` reports `Reboot`).
fn die(message: fmt::Arguments) -> ! {
    report(message);
    firmware_call([PSCI_SYSTEM_RESET, 0, 0, 0]);
    loop {
        // SAFETY: Waiting for an interrupt has no effect on memory.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    die(format_args!("hyp: the double panicked: {info}"))
}
