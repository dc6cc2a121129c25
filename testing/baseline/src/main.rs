// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! baseline_hello: what a user might write instead of using vmbase, from published crates only
//! (aarch64-rt for the entry point and initial page table, arm-pl011-uart for the console, smccc
//! for PSCI). It is `make bench`'s baseline: the same line as vmbase_hello, after the same .bss
//! and .data padding, booted the same way. It knows its UART's address instead of reading the
//! device tree, and has no exception handling.

#![no_main]
#![no_std]

use aarch64_rt::{InitialPagetable, entry, initial_pagetable};
use arm_pl011_uart::{PL011Registers, Uart, UniqueMmioPointer};
use core::fmt::Write;
use core::hint::black_box;
use core::panic::PanicInfo;
use core::ptr::NonNull;
use smccc::Hvc;
use smccc::psci::{system_off, system_reset};

/// QEMU virt's PL011.
const PL011_BASE_ADDRESS: *mut PL011Registers = 0x900_0000 as _;

// Level 1 block descriptors (aarch64-paging's attributes would pull in `alloc`, which shares
// its features with vmbase's in this workspace).
const VALID_BLOCK: usize = 1 << 0;
const ACCESSED: usize = 1 << 10;
const INNER_SHAREABLE: usize = 3 << 8;
const EXECUTE_NEVER: usize = 3 << 53; // PXN | UXN
/// MAIR index 0 (aarch64-rt's default MAIR): Device-nGnRE, never executable.
const DEVICE: usize = VALID_BLOCK | ACCESSED | EXECUTE_NEVER;
/// MAIR index 1: Normal write-back memory.
const MEMORY: usize = VALID_BLOCK | ACCESSED | INNER_SHAREABLE | 1 << 2;

initial_pagetable!({
    let mut idmap = [0; 512];
    // 0x0000_0000: 1 GiB of MMIO.
    idmap[0] = DEVICE;
    // 0x8000_0000: 1 GiB of RAM, holding the device tree, the image and its data.
    idmap[2] = MEMORY | 0x8000_0000;
    InitialPagetable(idmap)
});

/// Padding, shared with vmbase_hello: 256 KiB of .bss and 4 KiB of .data.
static mut BSS_PADDING: [u8; 256 * 1024] = [0; 256 * 1024];
static mut DATA_PADDING: [u8; 4096] = [1; 4096];

entry!(main);

fn main(_: u64, _: u64, _: u64, _: u64) -> ! {
    let ticks_at_main = counter();
    black_box((&raw const BSS_PADDING, &raw const DATA_PADDING));
    // SAFETY: The PL011 is mapped as device memory by the initial page table, and this is the
    // only driver for it.
    let mut uart =
        Uart::new(unsafe { UniqueMmioPointer::new(NonNull::new(PL011_BASE_ADDRESS).unwrap()) });
    let _ = writeln!(
        uart,
        "Hello world: reached main after {ticks_at_main} ticks"
    );
    let _ = system_off::<Hvc>();
    panic!("SYSTEM_OFF returned");
}

/// The virtual counter (`CNTVCT_EL0`).
fn counter() -> u64 {
    let ticks: u64;
    // SAFETY: Reading the virtual counter has no side effects.
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) ticks, options(nomem, nostack))
    };
    ticks
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    let _ = system_reset::<Hvc>();
    loop {
        core::hint::spin_loop();
    }
}
