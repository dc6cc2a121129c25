// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The host bridge's legacy interrupts: decoding `interrupt-map`, with the interrupt
//! controllers it names.

use super::{push, vec_for, PciSetupError};
use crate::fdt::{read_cells, skip_cells, Fdt};
use alloc::vec::Vec;

/// One entry of the host bridge's `interrupt-map`.
///
/// The controller's interrupt specifier is held inline, so that decoding a map allocates once
/// for all its entries (a large map is refused by name when the heap cannot hold it).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct InterruptMapEntry {
    /// The child's unit address (`phys.hi`, `phys.mid`, `phys.lo`): bus, device, function.
    pub child_address: [u32; 3],
    /// The child's interrupt pin, 1 to 4 for INTA to INTD.
    pub child_pin: u32,
    /// The interrupt controller's phandle.
    pub parent: u32,
    /// The interrupt specifier, in its first `specifier_cells` cells.
    specifier: [u32; MAX_INTERRUPT_PARENT_CELLS as usize],
    specifier_cells: usize,
}

impl InterruptMapEntry {
    /// The interrupt specifier for the controller (for a GIC: type, number, flags).
    pub fn parent_interrupt(&self) -> &[u32] {
        &self.specifier[..self.specifier_cells]
    }
}

/// The largest `#address-cells` or `#interrupt-cells` of an interrupt controller decoded.
const MAX_INTERRUPT_PARENT_CELLS: u32 = 4;

/// Decodes a PCI bus node's `interrupt-map` (child unit address of 3 cells, a 1-cell pin, the
/// controller's phandle, then its unit address and interrupt specifier, whose cell counts
/// `parent_cells` gives as `(#address-cells, #interrupt-cells)`, or `None` for an unknown
/// phandle).
///
/// Two passes over the value (one to count and check, one to fill a vector allocated once), so
/// time is linear in its length (times `parent_cells`' cost) and memory is one allocation of
/// the entries, or [`PciSetupError::NoMemory`].
pub fn decode_interrupt_map(
    value: &[u8],
    parent_cells: impl Fn(u32) -> Result<Option<(u32, u32)>, PciSetupError>,
) -> Result<Vec<InterruptMapEntry>, PciSetupError> {
    let mut count = 0;
    for_each_interrupt_map_entry(value, &parent_cells, |_| {
        count += 1;
        Ok(())
    })?;
    let mut entries = vec_for(count, "interrupt-map")?;
    for_each_interrupt_map_entry(value, &parent_cells, |entry| {
        entries.push(entry);
        Ok(())
    })?;
    Ok(entries)
}

/// Calls `visit` with each entry of `interrupt-map` `value` in order ([`decode_interrupt_map`]).
fn for_each_interrupt_map_entry(
    mut value: &[u8],
    parent_cells: &impl Fn(u32) -> Result<Option<(u32, u32)>, PciSetupError>,
    mut visit: impl FnMut(InterruptMapEntry) -> Result<(), PciSetupError>,
) -> Result<(), PciSetupError> {
    let bad_length = PciSetupError::BadLength("interrupt-map");
    while !value.is_empty() {
        let mut cell = || {
            read_cells(&mut value, 1)
                .map(|c| c as u32)
                .ok_or(bad_length.clone())
        };
        let child_address = [cell()?, cell()?, cell()?];
        let child_pin = cell()?;
        let parent = cell()?;
        let (address_cells, interrupt_cells) =
            parent_cells(parent)?.ok_or(PciSetupError::UnknownInterruptParent(parent))?;
        if address_cells > MAX_INTERRUPT_PARENT_CELLS
            || !(1..=MAX_INTERRUPT_PARENT_CELLS).contains(&interrupt_cells)
        {
            return Err(PciSetupError::BadInterruptParent(parent));
        }
        skip_cells(&mut value, address_cells).ok_or(bad_length.clone())?;
        let mut specifier = [0; MAX_INTERRUPT_PARENT_CELLS as usize];
        let specifier_cells = interrupt_cells as usize;
        for cell in &mut specifier[..specifier_cells] {
            *cell = read_cells(&mut value, 1).ok_or(bad_length.clone())? as u32;
        }
        visit(InterruptMapEntry {
            child_address,
            child_pin,
            parent,
            specifier,
            specifier_cells,
        })?;
    }
    Ok(())
}

/// The interrupt controllers `interrupt-map` may name: the children of the root that have a
/// `phandle` (QEMU's and crosvm's GIC are children of the root; deeper ones are not looked
/// for), read in one walk and sorted, so that each entry's lookup is a binary search rather
/// than a walk of the tree.
pub(super) struct InterruptParents {
    /// Sorted by phandle, then position.
    sorted: Vec<InterruptParent>,
}

/// A child of the root with a phandle.
struct InterruptParent {
    phandle: u32,
    /// Its position among the children that have a phandle.
    position: usize,
    /// `#address-cells` (0 when absent) and `#interrupt-cells`; `None` when they are missing
    /// or not one cell each.
    cells: Option<(u32, u32)>,
}

impl InterruptParents {
    pub(super) fn new(fdt: &Fdt) -> Result<Self, PciSetupError> {
        let one_cell = |value: Option<&[u8]>| match value {
            Some(&[a, b, c, d]) => Some(u32::from_be_bytes([a, b, c, d])),
            _ => None,
        };
        let mut sorted = Vec::new();
        let mut error = None;
        fdt.root()?.scan_children(None, |child| {
            let Some(phandle) = one_cell(child.property(b"phandle")?) else {
                return Ok(false);
            };
            let address_cells = match child.property(b"#address-cells")? {
                None => Some(0),
                value => one_cell(value),
            };
            let cells = address_cells.zip(one_cell(child.property(b"#interrupt-cells")?));
            let parent = InterruptParent {
                phandle,
                position: sorted.len(),
                cells,
            };
            error = push(&mut sorted, parent, "interrupt controllers").err();
            Ok(error.is_some())
        })?;
        if let Some(error) = error {
            return Err(error);
        }
        // The first child with a phandle wins, as a walk in tree order would find it.
        sorted.sort_unstable_by_key(|parent| (parent.phandle, parent.position));
        Ok(Self { sorted })
    }

    /// `#address-cells` (0 when absent) and `#interrupt-cells` of the controller `phandle`,
    /// `None` if no child of the root has it.
    pub(super) fn cells(&self, phandle: u32) -> Result<Option<(u32, u32)>, PciSetupError> {
        let first = self
            .sorted
            .partition_point(|parent| parent.phandle < phandle);
        match self.sorted.get(first) {
            Some(parent) if parent.phandle == phandle => parent
                .cells
                .map(Some)
                .ok_or(PciSetupError::BadInterruptParent(phandle)),
            _ => Ok(None),
        }
    }
}
