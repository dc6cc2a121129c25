// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! From entry.S to the binary's `main`, and the ways out: panics and stack-protector failures.
//!
//! Only on aarch64: the VM's architecture (host builds have it in their documentation only).

use crate::console;
use crate::layout::Layout;
use crate::power;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Once;

extern "Rust" {
    /// The binary's main function, exported by [`main!`](crate::main).
    fn main(arg0: u64, arg1: u64, arg2: u64, arg3: u64);
}

/// The FDT the VMM passed, as found at boot.
static BOOT_FDT: Once<Option<&'static [u8]>> = Once::new();

/// The FDT the VMM passed in `x0`, if `x0` pointed at a plausible one in the FDT region
/// (`dtb_region` in the binary's image.ld).
pub fn boot_fdt() -> Option<&'static [u8]> {
    BOOT_FDT.get().copied().flatten()
}

/// Called by entry.S with the registers the VMM set, on the boot stack, MMU and caches on.
#[no_mangle]
extern "C" fn rust_entry(x0: u64, x1: u64, x2: u64, x3: u64) -> ! {
    let ticks_at_rust_entry = crate::counter::ticks();
    crate::heap::init();
    let layout = Layout::current();
    // SAFETY: from_region reads only inside dtb_region. vmbase's linker contract (sections.ld
    // and README) has the binary's idmap map that region readable, and vmbase never writes it;
    // a binary that writes or remaps it (for example with its MemoryTracker) while this tree is
    // in use breaks that contract, which vmbase cannot check.
    let fdt = *BOOT_FDT.call_once(|| unsafe { crate::fdt::from_region(x0, layout.dtb.clone()) });
    // SAFETY: The binary's idmap maps crosvm's MMIO GiB as device memory (vmbase's linker and
    // idmap contract), and only the console driver uses the UART.
    let console = unsafe { console::init(fdt) };
    // Before the first line is written: once enrolled, only registered device pages work.
    let mmio_guard = crate::hyp::enroll_mmio_guard(&console::device().mmio_range());
    if fdt.is_none() {
        crate::println!(
            "vmbase: no valid FDT at x0 = {x0:#x}; console is the 8250 at {:#x}",
            console::BASE_ADDRESS
        );
    } else if let Err(error) = console {
        crate::println!(
            "vmbase: console from FDT unusable ({error}); using the 8250 at {:#x}",
            console::BASE_ADDRESS
        );
    }
    match mmio_guard {
        Ok(crate::hyp::Enrolment::NotOffered) => {}
        Ok(crate::hyp::Enrolment::Enrolled) => crate::println!(
            "vmbase: enrolled in the hypervisor's MMIO guard; console at {:#x} registered",
            console::device().mmio_range().start
        ),
        Err(error) => crate::println!("vmbase: MMIO guard: {error}"),
    }
    if let Err(error) = stack_guard_is_random() {
        crate::println!(
            "vmbase: WARNING: {error}: the stack protector guard is NOT random on this boot"
        );
    }
    crate::counter::record_boot(ticks_at_rust_entry, crate::counter::ticks());
    // SAFETY: main! exported the binary's main with this signature.
    unsafe { main(x0, x1, x2, x3) };
    power::shutdown()
}

// Not a lang item in documentation builds, which may have std's (a dependency's) in the graph.
#[cfg_attr(not(doc), panic_handler)]
fn panic(info: &PanicInfo) -> ! {
    static PANICKING: AtomicBool = AtomicBool::new(false);
    if PANICKING.swap(true, Ordering::Relaxed) {
        console::emergency_write_str("vmbase: panicked while panicking\n");
    } else {
        console::emergency_write_str("vmbase: panic\n");
        crate::eprintln!("{info}");
    }
    power::reboot()
}

extern "C" {
    /// The stack protector's reference value (in entry.S's .bss). Code compiled for bare metal
    /// reads this symbol; code compiled for Android reads the copy in Bionic's TLS slot.
    static __stack_chk_guard: u64;
}

/// Why the stack protector's guard is not random, if it is not.
static STACK_GUARD_ERROR: Once<crate::rand::Error> = Once::new();

/// Called by entry.S, before any other Rust code, for the stack protector's guard: entropy from
/// [`crate::rand`]. Without an entropy source the guard is the boot-time counter scrambled:
/// not a constant, but guessable, which rust_entry reports once the console is up.
#[no_mangle]
extern "C" fn vmbase_stack_guard() -> u64 {
    let mut guard = [0; 8];
    match crate::rand::fill_with_entropy(&mut guard) {
        Ok(()) => u64::from_ne_bytes(guard),
        Err(error) => {
            STACK_GUARD_ERROR.call_once(|| error);
            crate::counter::ticks().wrapping_mul(0x9e37_79b9_7f4a_7c15)
        }
    }
}

/// Called by code compiled with a stack protector when a function's guard was overwritten.
#[no_mangle]
extern "C" fn __stack_chk_fail() -> ! {
    console::emergency_write_str("vmbase: stack corruption detected (stack protector)\n");
    power::reboot()
}

/// The address of the Bionic-style TLS block entry.S set up, and the guard it holds.
pub fn stack_guard() -> (u64, u64) {
    let tls = crate::read_sysreg!("tpidr_el0");
    // SAFETY: entry.S points TPIDR_EL0 at __bionic_tls, 16 slots in .bss; slot 5 is the guard.
    let guard = unsafe { core::ptr::read_volatile((tls as *const u64).add(5)) };
    (tls, guard)
}

/// The value [`stack_guard`] must find: `__stack_chk_guard`.
pub fn expected_stack_guard() -> u64 {
    // SAFETY: entry.S wrote __stack_chk_guard before Rust started; nothing writes it since.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(__stack_chk_guard)) }
}

/// Whether the stack protector's guard came from an entropy source, and if not, why.
pub fn stack_guard_is_random() -> Result<(), crate::rand::Error> {
    STACK_GUARD_ERROR.get().map_or(Ok(()), |error| Err(*error))
}
