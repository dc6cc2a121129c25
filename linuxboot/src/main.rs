// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! vmbase_linuxboot: a VM firmware that checks what the VMM handed it and boots Linux.
//!
//! The VMM enters it as crosvm enters a pVM firmware: `x0` = device tree, `x1` = kernel, `x2` =
//! kernel size. It checks the tree and where the tree, kernel and initrd are, maps them on its
//! own page table, checks the kernel's `Image` header (moving the kernel if it cannot run where
//! it is), gives the kernel fresh `/chosen/kaslr-seed` and `rng-seed` in an edited copy of the
//! tree, and enters it as Linux's booting.rst asks. Any refusal prints one line,
//! `linuxboot: refused: REASON`, and resets the VM.

#![no_main]
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

use core::convert::Infallible;
use core::fmt;
use core::ops::Range;
use vmbase::fdt::editor::{packed_size, FdtEditor};
use vmbase::fdt::{Fdt, FdtError};
use vmbase::layout::{Layout, PAGE_SIZE};
use vmbase::linux::{ImageError, ImageHeader};
use vmbase::memory::{flushed_zeroize, AddressRange, MemoryTracker, MemoryTrackerError};
use vmbase::paging::PageTable;
use vmbase::{configure_heap, main, power, println, rand};
use vmbase_linuxboot_checks::{Handoff, LayoutError, Part, FDT_REGION_SIZE};

/// The page tables of the run-time map are the only allocations.
const HEAP_SIZE: usize = 32 * PAGE_SIZE;
configure_heap!(HEAP_SIZE);
/// `/chosen/kaslr-seed`: one 64-bit value, as Linux reads it.
const KASLR_SEED_SIZE: usize = 8;
/// `/chosen/rng-seed`: 512 bits for Linux's entropy pool (pvmfw, crosvm and QEMU give 32 bytes
/// or more).
const RNG_SEED_SIZE: usize = 64;

main!(main);

/// Called by vmbase with the registers the VMM set; never returns.
pub fn main(x0: u64, x1: u64, x2: u64, _x3: u64) {
    match boot(x0, x1, x2) {
        Ok(never) => match never {},
        Err(refusal) => {
            println!("linuxboot: refused: {refusal}");
            power::reboot()
        }
    }
}

/// Why the firmware did not boot the kernel: the one line it prints before resetting.
enum Refusal {
    /// vmbase found no device tree at `x0` (not 8-byte aligned, outside RAM, bad header).
    NoDeviceTree(u64),
    /// The device tree could not be read or edited.
    DeviceTree(FdtError),
    /// The device tree describes no RAM.
    NoMemory,
    /// The first `/memory` range holds no whole page.
    NoWholePage(AddressRange),
    /// A range the VMM handed over is beyond the firmware's (64-bit) address space.
    NotAddressable(AddressRange),
    /// The tree, kernel and initrd are not where they can be booted from.
    Layout(LayoutError),
    /// The kernel is not an arm64 `Image` this firmware can boot.
    Kernel(ImageError),
    /// The kernel cannot run where it is (running, it would overlap this part, or else it is
    /// misplaced or its `image_size` leaves RAM), and there is no room to move it to.
    NoRoomForKernel(Option<Part>),
    /// The run-time page table refused a mapping.
    Map(MemoryTrackerError),
    /// There is no entropy for the seeds.
    NoEntropy(rand::Error),
    /// Neither the tree's region nor free RAM has room for the kernel's tree; holds its size.
    NoRoomForDeviceTree(usize),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NoDeviceTree(x0) => write!(f, "no valid device tree at x0 = {x0:#x}"),
            Self::DeviceTree(error) => write!(f, "bad device tree: {error}"),
            Self::NoMemory => write!(f, "the device tree has no /memory"),
            Self::NoWholePage(memory) => write!(f, "/memory ({memory}) holds no whole page"),
            Self::NotAddressable(range) => write!(f, "{range} is beyond the address space"),
            Self::Layout(error) => write!(f, "{error}"),
            Self::Kernel(error) => write!(f, "the kernel is not a bootable arm64 Image: {error}"),
            Self::NoRoomForKernel(Some(part)) => write!(
                f,
                "the kernel cannot run where it is (running, it would overlap {part}) and there \
                 is no room in RAM to move it"
            ),
            Self::NoRoomForKernel(None) => write!(
                f,
                "the kernel cannot run where it is (not at text_offset above a 2 MiB boundary, \
                 or image_size past the end of RAM) and there is no room in RAM to move it"
            ),
            Self::Map(error) => write!(f, "cannot map memory: {error}"),
            Self::NoEntropy(error) => write!(f, "no entropy for the kernel's seeds: {error}"),
            Self::NoRoomForDeviceTree(size) => write!(
                f,
                "no room for the kernel's device tree ({size} bytes): neither after the VMM's \
                 in its 2 MiB region nor anywhere else in RAM"
            ),
        }
    }
}

impl From<FdtError> for Refusal {
    fn from(error: FdtError) -> Self {
        Self::DeviceTree(error)
    }
}

impl From<LayoutError> for Refusal {
    fn from(error: LayoutError) -> Self {
        Self::Layout(error)
    }
}

impl From<MemoryTrackerError> for Refusal {
    fn from(error: MemoryTrackerError) -> Self {
        Self::Map(error)
    }
}

/// The firmware's own addresses of `range`, as the tracker and the page table take them.
fn guest_range(range: &AddressRange) -> Result<Range<usize>, Refusal> {
    range
        .to_usize_range()
        .ok_or(Refusal::NotAddressable(*range))
}

/// Everything from the registers to the jump into the kernel.
fn boot(x0: u64, x1: u64, x2: u64) -> Result<Infallible, Refusal> {
    let vmm_tree = vmbase::entry::boot_fdt().ok_or(Refusal::NoDeviceTree(x0))?;
    let fdt = Fdt::new(vmm_tree)?;
    let memory = fdt.memory()?.next().ok_or(Refusal::NoMemory)??;
    // Whole pages: what the page table can map.
    let ram = memory
        .align_in(PAGE_SIZE as u64)
        .ok_or(Refusal::NoWholePage(memory))?;
    let chosen = fdt.chosen()?;
    let has_chosen = chosen.is_some();
    let initrd = chosen.and_then(|chosen| chosen.initrd);
    let layout = Layout::current();
    let handoff = Handoff {
        fdt: AddressRange::new(x0, FDT_REGION_SIZE).ok_or(LayoutError::Empty(Part::Fdt))?,
        kernel: AddressRange::new(x1, x2).ok_or(LayoutError::Empty(Part::Kernel))?,
        initrd,
        firmware: AddressRange::from_usize_range(&(layout.text.start..layout.boot_stack.end))
            .ok_or(LayoutError::Empty(Part::Firmware))?,
        ram,
    };
    handoff.check()?;

    // The run-time map: the console, the firmware itself and, below, what the VMM handed over.
    let mut page_table = PageTable::new();
    page_table
        .map_device(&vmbase::console::device().mmio_range())
        .map_err(MemoryTrackerError::PageTable)?;
    // map_image maps the FDT region too, here the window over all of RAM (up to 512 GiB): left
    // out (an empty region), as the firmware maps only what it uses, through the tracker.
    let without_fdt_window = Layout {
        dtb: layout.dtb.start..layout.dtb.start,
        ..layout.clone()
    };
    page_table
        .map_image(&without_fdt_window)
        .map_err(MemoryTrackerError::PageTable)?;
    let tracker = MemoryTracker::new(
        page_table,
        guest_range(&handoff.ram)?,
        vmbase::layout::crosvm::MMIO_RANGE,
    )?;
    // Read while vmbase's own map still covers the VMM's tree.
    let tree_copy_size = packed_size(vmm_tree)? + TREE_EDIT_ROOM;
    let tree_copy_slot = handoff.tree_copy_slot(vmm_tree.len() as u64, tree_copy_size as u64);
    // SAFETY: The table maps the console, the image, .data, .bss (heap and page tables
    // included) and both stacks: everything used from here on but the tree and the kernel,
    // which are mapped below before they are touched.
    let tracker = unsafe { tracker.activate() };
    // Of the tree's 2 MiB region, only what is used: the VMM's tree and the slot for the copy
    // after it. Its 512 pages would cost more to map than all the rest of the boot.
    let tree_used = AddressRange::from_bounds(
        handoff.fdt.start(),
        tree_copy_slot.map_or(handoff.fdt.start() + vmm_tree.len() as u64, |slot| {
            slot.end()
        }),
    )
    .ok_or(LayoutError::Empty(Part::Fdt))?;
    tracker.alloc_range_mut(&guest_range(&tree_used)?)?;
    tracker.alloc_range(&guest_range(&handoff.kernel)?)?;
    // The initrd stays unmapped: the firmware checks where it is but never reads it.

    // SAFETY: The tracker mapped the kernel read-only; the VMM loaded it and nothing writes it.
    let kernel = unsafe { core::slice::from_raw_parts(x1 as *const u8, x2 as usize) };
    let header = ImageHeader::parse(kernel).map_err(Refusal::Kernel)?;
    let entry = place_kernel(tracker, &handoff, &header)?;

    let source = rand::init().map_err(Refusal::NoEntropy)?;
    let mut kaslr_seed: [u8; KASLR_SEED_SIZE] = rand::random_array().map_err(Refusal::NoEntropy)?;
    let mut rng_seed: [u8; RNG_SEED_SIZE] = rand::random_array().map_err(Refusal::NoEntropy)?;

    let running_kernel = AddressRange::new(entry as u64, header.image_size as u64)
        .ok_or(Refusal::Kernel(ImageError::TooLarge))?;
    let copy = match tree_copy_slot {
        Some(slot) => guest_range(&slot)?,
        None => tree_copy_pages(tracker, &handoff, tree_copy_size, &running_kernel)?,
    };
    // SAFETY: The copy's range is mapped read-write (the slot with the tree's used part of its
    // region, or else by tree_copy_pages); it lies clear of the VMM's tree, the kernel (as
    // loaded and as it will run: place_kernel keeps it off the tree's region), the initrd and
    // the firmware, and nothing else uses those bytes.
    let buffer = unsafe { core::slice::from_raw_parts_mut(copy.start as *mut u8, copy.len()) };
    let mut tree = FdtEditor::open_into(vmm_tree, buffer)?;
    if !has_chosen {
        tree.add_node(b"/", b"chosen")?;
    }
    tree.set_property(b"/chosen", b"kaslr-seed", &kaslr_seed)?;
    tree.set_property(b"/chosen", b"rng-seed", &rng_seed)?;
    flushed_zeroize(&mut kaslr_seed);
    flushed_zeroize(&mut rng_seed);

    let tree = tree.as_bytes();
    println!(
        "linuxboot: entering the kernel at {entry:#x}; device tree at {:#x}, {} bytes (the \
         VMM's: {} bytes at {x0:#x}), with /chosen/kaslr-seed and a {RNG_SEED_SIZE}-byte \
         /chosen/rng-seed from {source}",
        tree.as_ptr() as usize,
        tree.len(),
        vmm_tree.len(),
    );
    // SAFETY: `entry` is the kernel's first instruction, identity-mapped; the VMM loaded the
    // kernel (or place_kernel moved and cleaned it), and jump_to_payload cleans the tree.
    unsafe { vmbase::payload::jump_to_payload(entry, tree) }
}

/// Room the kernel's tree gets beyond the VMM's, packed: the seeds, their names and a
/// `/chosen` node take less than 256 bytes.
const TREE_EDIT_ROOM: usize = 4096;

/// Pages for the kernel's copy of the tree when the tree's region has no room after the VMM's
/// tree (a tree padded to fill its region, as `dtc -S 2097152` makes): the lowest free pages of
/// RAM, mapped read-write. The VMM's tree stays as it is (vmbase holds it as read-only memory for
/// the whole program).
fn tree_copy_pages(
    tracker: &mut MemoryTracker,
    handoff: &Handoff,
    size: usize,
    running_kernel: &AddressRange,
) -> Result<Range<usize>, Refusal> {
    let pages = handoff
        .free_range(size.next_multiple_of(PAGE_SIZE) as u64, running_kernel)
        .ok_or(Refusal::NoRoomForDeviceTree(size))?;
    let pages = guest_range(&pages)?;
    tracker.alloc_range_mut(&pages)?;
    Ok(pages)
}

/// Where the kernel runs: where the VMM put it if it can run there, else a copy at the lowest
/// place in RAM where it can, clear of everything else.
fn place_kernel(
    tracker: &mut MemoryTracker,
    handoff: &Handoff,
    header: &ImageHeader,
) -> Result<usize, Refusal> {
    let ram = guest_range(&handoff.ram)?;
    let kernel = guest_range(&handoff.kernel)?;
    let footprint = AddressRange::new(handoff.kernel.start(), header.image_size as u64)
        .filter(|footprint| !footprint.is_empty())
        .ok_or(Refusal::Kernel(ImageError::TooLarge))?;
    let in_the_way = handoff.footprint_overlap(&footprint);
    if header.can_run_at(kernel.start, &ram) && in_the_way.is_none() {
        return Ok(kernel.start);
    }
    let mut avoid = [
        guest_range(&handoff.fdt)?,
        kernel.clone(),
        guest_range(&handoff.firmware)?,
        0..0,
    ];
    if let Some(initrd) = &handoff.initrd {
        avoid[3] = guest_range(initrd)?;
    }
    let destination = header
        .destination(&ram, &avoid)
        .map_err(|_| Refusal::NoRoomForKernel(in_the_way))?;
    tracker.alloc_range_mut(&(destination..destination + header.image_size))?;
    // SAFETY: The kernel is mapped readable, the destination (its image_size bytes, clear of
    // everything else) was just mapped writable, and nothing else uses it.
    unsafe { vmbase::linux::move_kernel(kernel.start, kernel.len(), destination) };
    Ok(destination)
}
