// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! vmbase_faults: boots like the example, then injects the fault that `/chosen/bootargs` names
//! (`fault=NAME`), so a host test can check that vmbase reports it and ends the VM.

#![no_main]
#![no_std]

mod gic;

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;
use core::hint::black_box;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use safe_mmio::fields::ReadPureWrite;
use safe_mmio::UniqueMmioPointer;
use vmbase::console::ConsoleDevice;
use vmbase::entry::boot_fdt;
use vmbase::exceptions::{current_exception, report, ExceptionClass, ExceptionFrame, Vector};
use vmbase::fdt::Fdt;
use vmbase::layout::{Layout, PAGE_SIZE};
use vmbase::paging::PageTable;
use vmbase::{configure_heap, counter, exception_handler, main, power, println};

/// The first address after the MMIO window: unmapped in both the idmap and the page table built
/// here.
const UNMAPPED_ADDRESS: usize = vmbase::layout::crosvm::MMIO_END;
const HEAP_SIZE: usize = 16 * 4096;

/// Read-only data, for the write-to-read-only case.
static READ_ONLY: u64 = 0x1234;

/// What this guest's `sync_exception_current` does, beyond vmbase's report.
#[derive(Clone, Copy, Eq, PartialEq)]
#[repr(u8)]
enum HandlerMode {
    Report = 0,
    Panic = 1,
    Fault = 2,
    SkipUndefined = 3,
}

static HANDLER_MODE: AtomicU8 = AtomicU8::new(HandlerMode::Report as u8);

exception_handler!(sync_exception_current, on_sync_exception);
exception_handler!(irq_current, on_irq);

/// `sync_exception_current` for this guest: vmbase's report, a failure of its own, or resuming
/// after an undefined instruction.
fn on_sync_exception(elr: u64, spsr: u64, frame: &mut ExceptionFrame) {
    match HANDLER_MODE.swap(HandlerMode::Report as u8, Ordering::Relaxed) {
        mode if mode == HandlerMode::SkipUndefined as u8 => {
            let info = current_exception(Vector::SyncCurrent, elr, spsr);
            if info.esr.map(|esr| esr.class()) == Some(ExceptionClass::Unknown) {
                // SAFETY: Only the skip-instruction case sets this mode, right before its `udf`,
                // which the code after it does not rely on.
                unsafe { frame.skip_instruction() };
                return;
            }
        }
        mode if mode == HandlerMode::Panic as u8 => {
            panic!("injected panic in sync_exception_current")
        }
        mode if mode == HandlerMode::Fault as u8 => {
            vmbase::eprintln!("fault guest: faulting inside sync_exception_current");
            read_unmapped();
        }
        _ => {}
    }
    report(Vector::SyncCurrent, elr, spsr);
    power::reboot();
}

/// Set for the nested-IRQ case; otherwise an IRQ is reported like vmbase's default does.
static NESTED_IRQ: AtomicBool = AtomicBool::new(false);
/// Set by the inner (SGI) handler of the nested-IRQ case.
static INNER_IRQ_SEEN: AtomicBool = AtomicBool::new(false);
/// Set by the outer (timer) handler of the nested-IRQ case once the inner one has run.
static OUTER_IRQ_DONE: AtomicBool = AtomicBool::new(false);

/// `irq_current` for this guest.
fn on_irq(elr: u64, spsr: u64, _frame: &mut ExceptionFrame) {
    if NESTED_IRQ.load(Ordering::Relaxed) {
        match gic::acknowledge() {
            gic::VIRTUAL_TIMER_INTID => {
                gic::stop_virtual_timer();
                gic::end_of_interrupt(gic::VIRTUAL_TIMER_INTID);
                // Let the SGI in while this handler runs: it arrives through the "current EL
                // with SPx" IRQ vector, on top of this handler's frame.
                gic::send_sgi_to_self(gic::NESTED_SGI_INTID);
                // SAFETY: Unmasks IRQs in this handler on purpose; exceptions.S masks them again
                // before it restores the interrupted context.
                unsafe { core::arch::asm!("msr daifclr, #2", "isb", options(nomem, nostack)) };
                let inner_seen = (0..1_000_000).any(|_| INNER_IRQ_SEEN.load(Ordering::Relaxed));
                OUTER_IRQ_DONE.store(inner_seen, Ordering::Relaxed);
                return;
            }
            gic::NESTED_SGI_INTID => {
                gic::end_of_interrupt(gic::NESTED_SGI_INTID);
                INNER_IRQ_SEEN.store(true, Ordering::Relaxed);
                return;
            }
            _ => {}
        }
    }
    report(Vector::IrqCurrent, elr, spsr);
    power::reboot();
}

configure_heap!(HEAP_SIZE);
main!(main);

/// Runs the case named in the boot arguments.
pub fn main(_: u64, _: u64, _: u64, _: u64) {
    let case = boot_fdt()
        .and_then(|blob| {
            Fdt::new(blob)
                .ok()?
                .property(b"/chosen", b"bootargs")
                .ok()?
        })
        .and_then(fault_from_bootargs)
        .unwrap_or("none");
    println!("fault guest: injecting {case}");
    activate_page_table();
    inject(case);
    println!("fault guest: {case} did not end the VM");
    power::reboot();
}

/// The `NAME` of the first `fault=NAME` in the NUL-terminated `bootargs`.
fn fault_from_bootargs(bootargs: &[u8]) -> Option<&str> {
    let text = core::str::from_utf8(bootargs.split(|&b| b == 0).next()?).ok()?;
    text.split_ascii_whitespace()
        .find_map(|arg| arg.strip_prefix("fault="))
}

/// Maps the image like the example does, with guard pages below the stacks, and of MMIO only the
/// console, the GIC and the RTC: the null page stays unmapped under QEMU. The GIC is registered
/// with the hypervisor's MMIO guard when vmbase enrolled in it (vmbase registered the console);
/// the RTC never is, for the unregistered-mmio case.
fn activate_page_table() {
    let layout = Layout::current();
    let mut page_table = PageTable::new();
    page_table
        .map_device(&vmbase::console::device().mmio_range())
        .unwrap();
    for range in gic::MMIO {
        page_table.map_device(&range).unwrap();
        if vmbase::hyp::mmio_guard_enrolled() {
            if let Err(error) = vmbase::hyp::mmio_guard_map(&range) {
                println!("fault guest: registering the GIC at {range:#x?}: {error}");
                power::reboot();
            }
        }
    }
    if let Some(rtc) = rtc() {
        page_table.map_device(&(rtc..rtc + PAGE_SIZE)).unwrap();
    }
    page_table.map_image(&layout).unwrap();
    // SAFETY: The table maps everything this guest touches but UNMAPPED_ADDRESS, the null page
    // and the guard pages, whose faults are the point.
    unsafe { page_table.activate() };
}

fn inject(case: &str) {
    match case {
        "none" => power::shutdown(),
        "reboot" => power::reboot(),
        "undefined-instruction" => {
            // SAFETY: Deliberately undefined; the exception handler never returns here.
            unsafe { core::arch::asm!("udf #0") }
        }
        "unmapped-read" => read_unmapped(),
        "null-read" => {
            let value: u64;
            // SAFETY: Deliberately loads from address 0, which this guest's page table leaves
            // unmapped: a translation fault, never a read.
            unsafe {
                core::arch::asm!("ldr {value}, [{null}]", null = in(reg) 0u64, value = out(reg) value)
            };
            println!("fault guest: read {value:#x} through a null pointer");
            power::reboot();
        }
        "null-write" => {
            // SAFETY: Deliberately stores to address 0, unmapped as above: a translation fault,
            // never a write.
            unsafe { core::arch::asm!("str xzr, [{null}]", null = in(reg) 0u64) };
            println!("fault guest: wrote through a null pointer");
            power::reboot();
        }
        "skip-instruction" => {
            HANDLER_MODE.store(HandlerMode::SkipUndefined as u8, Ordering::Relaxed);
            // SAFETY: Deliberately undefined; the handler makes execution resume after it.
            unsafe { core::arch::asm!("udf #0") }
            println!("fault guest: resumed after the skipped instruction");
            power::shutdown();
        }
        "nested-irq" => nested_irq(),
        "read-only-write" => {
            let target = (&raw const READ_ONLY).cast_mut();
            // SAFETY: Deliberately writes read-only memory: a permission fault, never a write.
            unsafe { target.write_volatile(0) }
        }
        "execute-data" => {
            // `ret`, on the heap: writable, hence never executable.
            let code = Vec::from([0xd65f_03c0u32]);
            // SAFETY: Deliberately jumps to data: the instruction fetch faults before anything
            // there runs.
            unsafe {
                let function: extern "C" fn() = core::mem::transmute(code.as_ptr());
                function();
            }
        }
        "stack-overflow" => {
            println!("fault guest: recursed {} times", recurse(0));
        }
        "heap-exhaustion" => {
            let huge: Vec<u8> = Vec::with_capacity(1 << 30);
            println!("fault guest: got 1 GiB at {:p}", black_box(huge.as_ptr()));
        }
        "panic" => panic!("injected panic"),
        "double-panic" => panic!("{}", PanicsWhenFormatted),
        "panic-holding-console" => println!("{}", PanicsWhenFormatted),
        "panic-in-handler" => {
            HANDLER_MODE.store(HandlerMode::Panic as u8, Ordering::Relaxed);
            read_unmapped();
        }
        "fault-in-handler" => {
            HANDLER_MODE.store(HandlerMode::Fault as u8, Ordering::Relaxed);
            read_unmapped();
        }
        "misaligned-sp" => {
            let sctlr = vmbase::read_sysreg!("sctlr_el1");
            // SCTLR_EL1.SA, bit 3: SP alignment checking at EL1.
            let checking = if sctlr & (1 << 3) != 0 { "on" } else { "off" };
            println!("fault guest: SP alignment checking is {checking}");
            // SAFETY: Deliberately loads through a misaligned SP: an SP alignment fault, handled
            // on the exception stack. A CPU that does not check SP alignment (QEMU's TCG does
            // not) just loads a stack word; SP is then restored.
            unsafe {
                core::arch::asm!(
                    "sub sp, sp, #4",
                    "ldr {scratch}, [sp]",
                    "add sp, sp, #4",
                    scratch = out(reg) _,
                )
            }
            println!("fault guest: this CPU does not check SP alignment");
            power::reboot();
        }
        "irq" => unexpected_irq(),
        "corrupt-fdt" => corrupt_fdts(),
        "garbage-x0" => garbage_x0(),
        "console-cost" => console_cost(),
        "unregistered-mmio" => read_unregistered_device(),
        "share-twice" => share_twice(),
        "unshare-unshared" => unshare_unshared(),
        other => {
            println!("fault guest: unknown case {other}");
            power::reboot();
        }
    }
}

fn read_unmapped() -> ! {
    // SAFETY: Deliberately reads an unmapped address: a translation fault, never a read.
    let value = unsafe { (UNMAPPED_ADDRESS as *const u64).read_volatile() };
    println!("fault guest: read {value:#x} from an unmapped address");
    power::reboot()
}

/// The page of the device tree's PL031 RTC (QEMU virt's is at `0x901_0000`), a device nothing in
/// this guest registers with the MMIO guard.
fn rtc() -> Option<usize> {
    let fdt = Fdt::new(boot_fdt()?).ok()?;
    let node = fdt.compatible_nodes(b"arm,pl031").next()?.ok()?;
    let [address, _size] = node.reg().ok()??.next()?;
    let address = usize::try_from(address).ok()?;
    vmbase::console::MMIO_RANGE
        .contains(&address)
        .then_some(address & !(PAGE_SIZE - 1))
}

/// Reads the RTC's data register, a device page mapped but never registered with the MMIO
/// guard: the hypervisor must stop the VM (without a guard, the read returns the time and the
/// guest reports that and reboots).
fn read_unregistered_device() -> ! {
    let Some(rtc) = rtc() else {
        println!("fault guest: the device tree has no arm,pl031 RTC in the MMIO range");
        power::reboot();
    };
    let enrolled = if vmbase::hyp::mmio_guard_enrolled() {
        "enrolled"
    } else {
        "not enrolled"
    };
    println!("fault guest: reading the unregistered device page {rtc:#x} (MMIO guard {enrolled})");
    // SAFETY: The page table maps the RTC's page as device memory; nothing else in this guest
    // uses the RTC, and reading its data register (offset 0) changes nothing.
    let data =
        unsafe { UniqueMmioPointer::new(NonNull::new(rtc as *mut ReadPureWrite<u32>).unwrap()) };
    let value = data.read();
    println!("fault guest: read {value:#x} from the unregistered device page {rtc:#x}");
    power::reboot()
}

/// One granule of heap memory, aligned to the hypervisor's sharing granule; `None` (after
/// saying so) when the hypervisor does not protect memory, so there is nothing to check.
fn sharable_granule() -> Option<core::ops::Range<usize>> {
    let granule = match vmbase::hyp::memory_sharing_granule() {
        Ok(Some(granule)) => granule,
        Ok(None) => {
            println!("fault guest: the hypervisor does not protect memory; nothing to share");
            return None;
        }
        Err(error) => {
            println!("fault guest: memory sharing unusable: {error}");
            return None;
        }
    };
    let layout = core::alloc::Layout::from_size_align(granule, granule).ok()?;
    // SAFETY: The layout's size is not zero. The block is never freed: it may end up shared.
    let block = unsafe { alloc::alloc::alloc_zeroed(layout) };
    (!block.is_null()).then(|| block.addr()..block.addr() + granule)
}

/// Shares a granule twice: the hypervisor must refuse the second (`INVALID_PARAMETER`), and
/// this guest shuts down if it did, reboots if it did not.
fn share_twice() -> ! {
    let Some(range) = sharable_granule() else {
        power::reboot()
    };
    if let Err(error) = vmbase::hyp::mem_share(&range) {
        println!("fault guest: sharing {:#x} once: {error}", range.start);
        power::reboot();
    }
    match vmbase::hyp::mem_share(&range) {
        Ok(()) => {
            println!(
                "fault guest: the hypervisor shared {:#x} a second time",
                range.start
            );
            power::reboot()
        }
        Err(error) => {
            println!(
                "fault guest: sharing {:#x} a second time: {error}",
                range.start
            );
            power::shutdown()
        }
    }
}

/// Unshares a granule that was never shared: the hypervisor must refuse
/// (`INVALID_PARAMETER`); this guest shuts down if it did, reboots if it did not.
fn unshare_unshared() -> ! {
    let Some(range) = sharable_granule() else {
        power::reboot()
    };
    match vmbase::hyp::mem_unshare(&range) {
        Ok(()) => {
            println!(
                "fault guest: the hypervisor unshared {:#x}, never shared",
                range.start
            );
            power::reboot()
        }
        Err(error) => {
            println!(
                "fault guest: unsharing {:#x}, never shared: {error}",
                range.start
            );
            power::shutdown()
        }
    }
}

/// Recurses until the boot stack overflows into its guard page.
#[inline(never)]
#[allow(unconditional_recursion, reason = "the guard page ends it")]
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 64]);
    recurse(depth + 1) + frame[depth as usize % 64]
}

/// Formatting it panics: for panics inside println! and inside the panic message.
struct PanicsWhenFormatted;

impl fmt::Display for PanicsWhenFormatted {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("panic while formatting")
    }
}

/// Fires the virtual timer with IRQs unmasked and no handler defined for them.
fn unexpected_irq() {
    if !gic::init() {
        println!("fault guest: GIC redistributor did not wake up");
        power::reboot();
    }
    gic::enable_private_interrupt(gic::VIRTUAL_TIMER_INTID);
    gic::enable_cpu_interface();
    gic::start_virtual_timer(1000);
    // SAFETY: Unmasks IRQs; the pending timer interrupt goes to vmbase's default irq_current.
    unsafe { core::arch::asm!("msr daifclr, #2", "isb") };
    // A virtual second, by the counter: a count of spins alone can run out on a loaded host
    // before QEMU has raised the interrupt.
    let deadline = counter::ticks() + counter::frequency();
    while counter::ticks() < deadline {
        core::hint::spin_loop();
    }
    println!("fault guest: no IRQ arrived");
}

/// An IRQ (the virtual timer) whose handler unmasks IRQs and takes a second one (an SGI) inside
/// it: both must return where they were taken, so this code resumes and shuts down.
fn nested_irq() {
    if !gic::init() {
        println!("fault guest: GIC redistributor did not wake up");
        power::reboot();
    }
    gic::enable_private_interrupt(gic::VIRTUAL_TIMER_INTID);
    gic::enable_private_interrupt(gic::NESTED_SGI_INTID);
    gic::enable_cpu_interface();
    NESTED_IRQ.store(true, Ordering::Relaxed);
    gic::start_virtual_timer(1000);
    // SAFETY: Unmasks IRQs; irq_current handles the timer's.
    unsafe { core::arch::asm!("msr daifclr, #2", "isb") };
    let outer_done = (0..10_000_000).any(|_| OUTER_IRQ_DONE.load(Ordering::Relaxed));
    // SAFETY: Masks IRQs again.
    unsafe { core::arch::asm!("msr daifset, #2", "isb") };
    if !outer_done {
        println!("fault guest: the nested IRQs did not both run");
        power::reboot();
    }
    println!("fault guest: both IRQ handlers returned; the interrupted code resumed");
    power::shutdown();
}

/// Damages a copy of the FDT.
type Corruption = fn(&mut Vec<u8>);

/// Corrupted copies of the real FDT, given to the console selection vmbase ran at boot.
fn corrupt_fdts() {
    let original = boot_fdt().expect("the launcher passes an FDT");
    let corruptions: [(&str, Corruption); 5] = [
        ("bad magic", |blob| blob[0] ^= 0xff),
        ("size beyond blob", |blob| {
            blob[4..8].copy_from_slice(&u32::MAX.to_be_bytes())
        }),
        ("structure outside blob", |blob| {
            blob[8..12].copy_from_slice(&0x7fff_0000u32.to_be_bytes())
        }),
        ("truncated", |blob| {
            let half = blob.len() / 2;
            blob.truncate(half);
        }),
        ("garbage tokens", |blob| {
            let structure = u32::from_be_bytes(blob[8..12].try_into().unwrap()) as usize;
            blob[structure..structure + 64].fill(0xa5);
        }),
    ];
    for (name, corrupt) in corruptions {
        let mut blob = original.to_vec();
        corrupt(&mut blob);
        match ConsoleDevice::from_fdt(&blob) {
            Ok(device) => println!("fault guest: corrupt FDT ({name}): console {device:?}"),
            Err(error) => println!("fault guest: corrupt FDT ({name}): falls back ({error})"),
        }
    }
    power::shutdown();
}

/// Garbage FDT addresses, checked the way vmbase checks `x0` at boot.
fn garbage_x0() {
    let region = Layout::current().dtb;
    for x0 in [
        0,
        0xdead_beef,
        u64::MAX,
        region.end as u64 - 8,
        region.start as u64 + 1,
    ] {
        // SAFETY: dtb_region is mapped read-only and nothing writes it.
        let found = unsafe { vmbase::fdt::from_region(x0, region.clone()) };
        println!(
            "fault guest: x0 = {x0:#x}: {}",
            if found.is_some() {
                "FDT"
            } else {
                "no FDT, ignored"
            }
        );
    }
    power::shutdown();
}

/// Bytes per line in the console measurement.
const LINE_LENGTH: usize = 4000;

/// For `make bench`, not a fault: counter ticks to print a long line with `println!`, and to
/// store the same bytes straight into the PL011's data register.
fn console_cost() {
    let line = [b'x'; LINE_LENGTH];
    let text = core::str::from_utf8(&line).unwrap();
    let start = counter::ticks();
    println!("{text}");
    let println_ticks = counter::ticks() - start;

    let ConsoleDevice::Pl011(base) = vmbase::console::device() else {
        println!("console cost: the console is not a PL011");
        power::reboot();
    };
    // SAFETY: UARTDR, at offset 0 of the console PL011, is mapped as device memory, and the
    // console driver is not in use while this pointer exists.
    let mut data_register = unsafe {
        UniqueMmioPointer::new(NonNull::new(base.get() as *mut ReadPureWrite<u32>).unwrap())
    };
    let start = counter::ticks();
    for &byte in line.iter().chain(b"\n") {
        data_register.write(u32::from(byte));
    }
    let raw_ticks = counter::ticks() - start;
    println!(
        "console cost: {} bytes: println {println_ticks} ticks, raw stores {raw_ticks} ticks",
        LINE_LENGTH + 1
    );
    power::shutdown();
}
