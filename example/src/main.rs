// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! vmbase_example: a VM bootloader that exercises vmbase and checks itself as it goes.
//!
//! It prints what it finds and shuts the VM down if every check passes; any failed check panics,
//! which reboots the VM (the host reports a failure).

#![no_main]
#![no_std]

mod exceptions;
mod payload_check;

extern crate alloc;

use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::{AtomicU32, Ordering};
use log::{info, LevelFilter};
#[cfg(feature = "sha2")]
use sha2::{Digest, Sha512};
use vmbase::entry::{expected_stack_guard, stack_guard};
use vmbase::fdt::Fdt;
use vmbase::layout::{Layout, PAGE_SIZE};
use vmbase::memory::{whole_pages, MemoryTracker, MemoryTrackerError};
use vmbase::paging::PageTable;
use vmbase::payload::jump_to_payload;
use vmbase::{configure_heap, logger, main};

const HEAP_SIZE: usize = 64 * 4096;

static INITIALISED: [u32; 4] = [0xdead_beef, 1, 2, 3];
static ZEROED: [AtomicU32; 4] = [
    AtomicU32::new(0),
    AtomicU32::new(0),
    AtomicU32::new(0),
    AtomicU32::new(0),
];
static MUTABLE: [AtomicU32; 4] = [
    AtomicU32::new(0xdead_beef),
    AtomicU32::new(1),
    AtomicU32::new(2),
    AtomicU32::new(3),
];

configure_heap!(HEAP_SIZE);
main!(main);

/// Entry point, called by vmbase with the registers crosvm (or the QEMU launcher) set.
pub fn main(arg0: u64, arg1: u64, arg2: u64, arg3: u64) {
    logger::init(LevelFilter::Debug).unwrap();
    info!("Hello world");
    info!(
        "reached Rust after {} ticks, main after {} ticks",
        vmbase::counter::ticks_at_rust_entry(),
        vmbase::counter::ticks_at_main()
    );
    info!("x0={arg0:#018x}, x1={arg1:#018x}, x2={arg2:#018x}, x3={arg3:#018x}");
    let layout = Layout::current();
    print_layout(&layout);
    assert_eq!(
        arg0, layout.dtb.start as u64,
        "x0 must be the start of the FDT region"
    );

    check_data(&layout, DataCheck::AtBoot);
    check_stack_guard();
    check_entropy();

    let mut vec = Vec::new();
    vec.extend([1, 2, 3, 4]);
    vec.push(5);
    info!("Vec: {vec:?}");
    assert_eq!(vec.iter().sum::<i32>(), 15);

    // The only device this program uses is its console: mapping just its registers leaves the
    // null page unmapped, so a null pointer faults (unless the console is crosvm's 8250 at 0x3f8,
    // which lives in that page).
    let mut page_table = PageTable::new();
    page_table
        .map_device(&vmbase::console::device().mmio_range())
        .unwrap();
    page_table.map_image(&layout).unwrap();
    let everything = 0..(1 << 39);
    assert_eq!(page_table.find_writable_executable(&everything), Ok(None));
    info!("Page table built; no mapping is both writable and executable.");
    let ram = vmbase::entry::boot_fdt().and_then(memory_range);
    let tracker = MemoryTracker::new(
        page_table,
        ram.clone().unwrap_or(layout.dtb.clone()),
        vmbase::layout::crosvm::MMIO_RANGE,
    )
    .unwrap();
    // SAFETY: The table maps the console, the whole image, .data, .bss (with the heap and the
    // page tables themselves), both stacks and the FDT: everything this program touches.
    let tracker = unsafe { tracker.activate() };
    info!("Activated.");

    check_data(&layout, DataCheck::AfterActivation);
    #[cfg(feature = "sha2")]
    check_hash();
    match ram {
        Some(ram) => check_runtime_mapping(tracker, &ram),
        None => info!("No /memory in the FDT: run-time mapping not checked"),
    }

    // Without a valid FDT, x0 still pointed at the FDT region: hand that over.
    // SAFETY: The region is mapped read-only and nothing writes it.
    let dtb_region =
        unsafe { core::slice::from_raw_parts(layout.dtb.start as *const u8, layout.dtb.len()) };
    let fdt = vmbase::entry::boot_fdt().unwrap_or(dtb_region);
    info!("Entering a stand-in payload with the MMU off; it powers off if the handoff is right");
    // SAFETY: payload_check is code in this image, which the VMM loaded (so memory holds it),
    // and it reads no memory.
    unsafe { jump_to_payload(payload_check::payload_check as *const () as usize, fdt) }
}

/// The first `/memory` range of the FDT, rounded in to whole pages.
fn memory_range(fdt: &[u8]) -> Option<Range<usize>> {
    whole_pages(&Fdt::new(fdt).ok()?.memory().ok()?.next()?.ok()?)
}

/// Maps the last 16 KiB of RAM read-write on the live page table, writes and reads it, unmaps it,
/// maps it read-only and finds what was written; checks that the tracker refuses what it must.
fn check_runtime_mapping(tracker: &mut MemoryTracker, ram: &Range<usize>) {
    const SIZE: usize = 4 * PAGE_SIZE;
    let scratch = ram.end - SIZE..ram.end;
    info!("RAM from /memory: {:#x}..{:#x}", ram.start, ram.end);
    assert_eq!(tracker.alloc_range_mut(&scratch), Ok(scratch.clone()));
    let words = scratch.start as *mut u64;
    for i in 0..SIZE / 8 {
        // SAFETY: The tracker just mapped the scratch range read-write, and nothing else uses it.
        unsafe { words.add(i).write_volatile(pattern(i)) };
    }
    assert!((0..SIZE / 8).all(|i| {
        // SAFETY: As above; the range is still mapped.
        unsafe { words.add(i).read_volatile() == pattern(i) }
    }));
    assert_eq!(
        tracker.page_table().find_writable_executable(&(0..1 << 39)),
        Ok(None)
    );
    info!(
        "Mapped read-write at run time, wrote and read back: {:#x}..{:#x}",
        scratch.start, scratch.end
    );

    // SAFETY: Only the raw pointer above points into the range, and it is not used until the
    // range is mapped again.
    unsafe { tracker.unmap(&scratch) }.unwrap();
    assert_eq!(tracker.page_table().is_mapped(&scratch), Ok(false));
    assert_eq!(tracker.alloc_range(&scratch), Ok(scratch.clone()));
    assert!((0..SIZE / 8).all(|i| {
        // SAFETY: The tracker mapped the range again, read-only; it is only read.
        unsafe { words.add(i).read_volatile() == pattern(i) }
    }));
    // SAFETY: Nothing uses the range from here on.
    unsafe { tracker.unmap(&scratch) }.unwrap();
    info!("Unmapped it, mapped it read-only and read the same data back");

    let image = layout_image();
    assert_eq!(
        tracker.alloc_range_mut(&image),
        Err(MemoryTrackerError::Overlaps(image))
    );
    assert!(matches!(
        tracker.alloc_range_mut(&(ram.end..ram.end + PAGE_SIZE)),
        Err(MemoryTrackerError::OutOfRange { .. })
    ));
    info!("The tracker refuses the image and memory outside RAM");
}

fn layout_image() -> Range<usize> {
    let image = Layout::current().image();
    image.start..image.end.next_multiple_of(PAGE_SIZE)
}

/// A value for word `index` of the scratch range that differs from its neighbours.
fn pattern(index: usize) -> u64 {
    (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn print_layout(layout: &Layout) {
    let sections = [
        ("dtb", &layout.dtb),
        ("text", &layout.text),
        ("rodata", &layout.rodata),
        ("data", &layout.data),
        ("bss", &layout.bss),
        ("stack", &layout.boot_stack),
        ("image", &layout.image()),
    ];
    for (name, range) in sections {
        info!("{name:<6} {:#010x}..{:#010x}", range.start, range.end);
    }
}

/// Checks that entry.S copied .data, zeroed .bss, and that both are writable.
fn check_data(layout: &Layout, when: DataCheck) {
    let address = |object: *const ()| object as usize;
    assert!(layout
        .rodata
        .contains(&address(INITIALISED.as_ptr().cast())));
    assert!(layout.bss.contains(&address(ZEROED.as_ptr().cast())));
    assert!(layout.data.contains(&address(MUTABLE.as_ptr().cast())));

    assert_eq!(INITIALISED, [0xdead_beef, 1, 2, 3]);
    let read = |values: &[AtomicU32; 4]| values.each_ref().map(|v| v.load(Ordering::Relaxed));
    // At boot: what entry.S zeroed and copied. After activating the page table: what the first
    // call wrote, through the same memory mapped anew.
    let (zeroed, mutable) = match when {
        DataCheck::AtBoot => ([0; 4], [0xdead_beef, 1, 2, 3]),
        DataCheck::AfterActivation => ([0, 1, 0, 0], [0xdead_beef, 13, 2, 3]),
    };
    assert_eq!(read(&ZEROED), zeroed, "bss, {when:?}");
    assert_eq!(read(&MUTABLE), mutable, "data, {when:?}");
    ZEROED[1].store(1, Ordering::Relaxed);
    MUTABLE[1].store(13, Ordering::Relaxed);
    info!("Data looks good");
}

/// When [`check_data`] runs, which decides what it must find.
#[derive(Clone, Copy, Debug)]
enum DataCheck {
    /// First, as entry.S left `.data` and `.bss`.
    AtBoot,
    /// Second, on the run-time page table, after the first call's writes.
    AfterActivation,
}

/// Checks that entry.S put the stack protector guard where Bionic-compatible code looks for it.
fn check_stack_guard() {
    let (tls, guard) = stack_guard();
    assert_eq!(guard, expected_stack_guard());
    info!("Stack guard at TLS {tls:#x} + 40 is correct");
}

/// Checks that entropy works, if the VM has a source, and prints a digest of the stack guard
/// (never the guard itself), so the host can tell that it changes from boot to boot.
fn check_entropy() {
    match vmbase::rand::init() {
        Ok(source) => {
            vmbase::entry::stack_guard_is_random().unwrap();
            let mut first: [u8; 32] = vmbase::rand::random_array().unwrap();
            let mut second: [u8; 32] = vmbase::rand::random_array().unwrap();
            assert_ne!(first, second);
            // Treated as secrets: zeroed, and the zeroes written back to memory.
            vmbase::memory::flushed_zeroize(&mut first);
            vmbase::memory::flushed_zeroize(&mut second);
            assert_eq!(first, [0; 32]);
            assert_eq!(first, second);
            info!("Entropy works: two draws differ (source: {source})");
        }
        Err(error) => {
            assert_eq!(vmbase::entry::stack_guard_is_random(), Err(error));
            info!("No entropy: {error}");
        }
    }
    #[cfg(feature = "sha2")]
    {
        let digest = Sha512::digest(expected_stack_guard().to_le_bytes());
        info!("Stack guard digest: {:02x?}", &digest[..8]);
    }
}

/// SHA-512 in place of the original example's DICE hash: real work with a known answer. Only
/// with the `sha2` feature (Cargo's default): Android 15 has no no_std SHA-2 crate for Soong.
#[cfg(feature = "sha2")]
fn check_hash() {
    const EXPECTED: [u8; 64] = hex(
        b"309ecc489c12d6eb4cc40f50c902f2b4d0ed77ee511a7c7a9bcd3ca86d4cd86f\
          989dd35bc5ff499670da34255b45b0cfd830e81f605dcf7dc5542e93ae9cd76f",
    );
    let digest = Sha512::digest(b"hello world");
    assert_eq!(digest.as_slice(), EXPECTED);
    info!("SHA-512 of \"hello world\" is correct");
}

/// Parses 128 hexadecimal digits at compile time.
#[cfg(feature = "sha2")]
const fn hex(digits: &[u8; 128]) -> [u8; 64] {
    const fn nibble(digit: u8) -> u8 {
        match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let mut bytes = [0; 64];
    let mut i = 0;
    while i < 64 {
        bytes[i] = nibble(digits[2 * i]) << 4 | nibble(digits[2 * i + 1]);
        i += 1;
    }
    bytes
}
