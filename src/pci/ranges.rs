// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The host bridge's windows: decoding `ranges`, and refusing windows that overlap each other
//! or another device of the tree.

use super::error::NodeName;
use super::{
    checked_range, vec_for, PciSetupError, FOUR_GIB, PCI_ADDRESS_CELLS, PREFETCHABLE,
    SPACE_CODE_MASK, SPACE_CODE_SHIFT,
};
use crate::fdt::{read_cells, skip_cells, Cells, Node, MAX_VALUE_CELLS};
use crate::memory::AddressRange;
use alloc::vec::Vec;

/// The address space of a `ranges` entry (the `ss` field of `phys.hi`).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Space {
    /// Configuration space (code 0b00); never valid in `ranges`.
    Configuration,
    /// I/O space (0b01).
    Io,
    /// 32-bit memory space (0b10).
    Memory32,
    /// 64-bit memory space (0b11).
    Memory64,
}

/// One entry of the host bridge's `ranges`: PCI addresses and the CPU addresses they appear at.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Window {
    /// Which PCI address space.
    pub space: Space,
    /// Whether reads have no side effects (prefetchable memory).
    pub prefetchable: bool,
    /// The first PCI bus address.
    pub pci_address: u64,
    /// The CPU physical addresses of the window.
    pub cpu_range: AddressRange,
}

impl Window {
    /// The PCI bus addresses of the window.
    pub fn pci_range(&self) -> Option<AddressRange> {
        AddressRange::new(self.pci_address, self.cpu_range.len())
    }

    /// Whether devices can put memory BARs in the window.
    pub fn is_memory(&self) -> bool {
        matches!(self.space, Space::Memory32 | Space::Memory64)
    }
}

/// Decodes a PCI bus node's `ranges` (`phys.hi`, a 64-bit PCI address, a parent address of
/// `parent_address_cells`, a size of `size_cells`). Windows must be non-empty, must not overflow
/// or overlap each other, and 32-bit memory windows must end at or below 4 GiB on the bus.
///
/// Time is O(n log n) in the number of windows and memory one allocation of them (plus a sorted
/// copy of their ranges for the overlap check), or [`PciSetupError::NoMemory`].
pub fn decode_ranges(
    mut value: &[u8],
    parent_address_cells: u32,
    size_cells: u32,
) -> Result<Vec<Window>, PciSetupError> {
    let entry = 4 * (PCI_ADDRESS_CELLS + parent_address_cells + size_cells) as usize;
    if !value.chunks_exact(entry).remainder().is_empty() {
        return Err(PciSetupError::BadLength("ranges"));
    }
    let mut windows: Vec<Window> = vec_for(value.len() / entry, "ranges")?;
    while !value.is_empty() {
        let fields = (
            read_cells(&mut value, 1),
            read_cells(&mut value, 2),
            read_cells(&mut value, parent_address_cells),
            read_cells(&mut value, size_cells),
        );
        let (Some(phys_hi), Some(pci_address), Some(cpu_address), Some(size)) = fields else {
            return Err(PciSetupError::BadLength("ranges"));
        };
        let phys_hi = phys_hi as u32;
        let space = match (phys_hi >> SPACE_CODE_SHIFT) & SPACE_CODE_MASK {
            0b00 => Space::Configuration,
            0b01 => Space::Io,
            0b10 => Space::Memory32,
            _ => Space::Memory64,
        };
        if size == 0 {
            return Err(PciSetupError::EmptyWindow(cpu_address));
        }
        let cpu_range = checked_range(cpu_address, size)?;
        let pci_range = checked_range(pci_address, size)?;
        if space == Space::Configuration || (space == Space::Memory32 && pci_range.end() > FOUR_GIB)
        {
            return Err(PciSetupError::BadSpace(phys_hi));
        }
        windows.push(Window {
            space,
            prefetchable: phys_hi & PREFETCHABLE != 0,
            pci_address,
            cpu_range,
        });
    }
    sorted_apart(windows.iter().map(|w| w.cpu_range), windows.len())?;
    Ok(windows)
}

/// The `count` ranges of `ranges`, each with its position in it, sorted by start and checked
/// not to overlap each other; otherwise [`PciSetupError::WindowsOverlap`] names two that do, the
/// earlier one first. Sorted and apart, they also end in order, which a binary search uses.
pub(super) fn sorted_apart(
    ranges: impl Iterator<Item = AddressRange>,
    count: usize,
) -> Result<Vec<(AddressRange, usize)>, PciSetupError> {
    let mut sorted: Vec<(AddressRange, usize)> = vec_for(count, "ranges")?;
    sorted.extend(ranges.zip(0..));
    // In place: a stable sort would allocate.
    sorted.sort_unstable_by_key(|(range, index)| (range.start(), *index));
    for pair in sorted.windows(2) {
        let [(a, a_index), (b, b_index)] = pair else {
            continue;
        };
        if a.overlaps(b) {
            let (first, second) = if a_index < b_index { (a, b) } else { (b, a) };
            return Err(PciSetupError::WindowsOverlap(*first, *second));
        }
    }
    Ok(sorted)
}

/// Refuses a range of `claims` (the bridge's CPU ranges, sorted and apart: [`sorted_apart`])
/// that overlaps what another node occupies in CPU address space, among the descendants of
/// `bus` (whose children's addresses are CPU addresses) at `depth`: each node's `reg`, and the
/// parent side of a non-empty `ranges` (a bus whose children are then in another address
/// space). The walk goes into buses with an empty `ranges` (an identity mapping) and stops at
/// nodes without `ranges` (CPUs, buses that are not memory-mapped), at the bridge (offset
/// `bridge`), and at `/memory` nodes, which RAM checks cover. Each node is read a bounded
/// number of times and each of its ranges found by binary search, so the work is linear in the
/// tree's size (times the log of the window count).
pub(super) fn refuse_device_overlaps(
    bus: &Node,
    bridge: usize,
    claims: &[(AddressRange, usize)],
    depth: usize,
) -> Result<(), PciSetupError> {
    let bus_cells = bus.cells()?;
    // Addresses wider than 64 bits, or without a size, are not CPU addresses.
    if !(1..=MAX_VALUE_CELLS).contains(&bus_cells.address)
        || !(1..=MAX_VALUE_CELLS).contains(&bus_cells.size)
    {
        return Ok(());
    }
    for child in bus.children() {
        let child = child?;
        let device_type = child.property(b"device_type")?.map(crate::fdt::c_string);
        if child.offset() == bridge || device_type == Some(b"memory") {
            continue;
        }
        let refuse_overlap = |device: AddressRange| -> Result<(), PciSetupError> {
            let after = claims.partition_point(|(claim, _)| claim.end() <= device.start());
            match claims.get(after) {
                Some((claim, _)) if claim.overlaps(&device) => Err(PciSetupError::OverlapsDevice {
                    pci: *claim,
                    device,
                    node: NodeName::new(child.name()),
                }),
                _ => Ok(()),
            }
        };
        if let Some(reg) = child.property(b"reg")? {
            for_each_range(reg, 0, bus_cells, &refuse_overlap)?;
        }
        match child.property(b"ranges")? {
            None => {}
            Some([]) if depth < crate::fdt::MAX_DEPTH => {
                refuse_device_overlaps(&child, bridge, claims, depth + 1)?
            }
            Some([]) => {}
            Some(ranges) => {
                let own = child.cells()?;
                let own_cells = Cells {
                    address: bus_cells.address,
                    size: own.size,
                };
                if (1..=MAX_VALUE_CELLS).contains(&own.size) {
                    for_each_range(ranges, own.address, own_cells, &refuse_overlap)?;
                }
            }
        }
    }
    Ok(())
}

/// Calls `visit` with the CPU range of each whole entry of `value`: `skipped_cells` cells that are
/// not read (a child address in `ranges`), then an address and a size of `cells`. Empty ranges
/// are not visited; one that overflows is [`PciSetupError::Overflow`].
fn for_each_range(
    mut value: &[u8],
    skipped_cells: u32,
    cells: Cells,
    visit: &impl Fn(AddressRange) -> Result<(), PciSetupError>,
) -> Result<(), PciSetupError> {
    let entry = 4 * (u64::from(skipped_cells) + u64::from(cells.address) + u64::from(cells.size));
    while value.len() as u64 >= entry {
        let (Some(()), Some(start), Some(size)) = (
            skip_cells(&mut value, skipped_cells),
            read_cells(&mut value, cells.address),
            read_cells(&mut value, cells.size),
        ) else {
            break;
        };
        if size != 0 {
            visit(checked_range(start, size)?)?;
        }
    }
    Ok(())
}
