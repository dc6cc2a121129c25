// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! PCI from the device tree: the host bridge's configuration space and memory windows, BARs
//! assigned from those windows, and the devices found on the bus.

mod bar;
mod capabilities;
#[cfg(target_arch = "aarch64")]
mod root;

pub use bar::{bar_pages, BarAllocator};
pub use capabilities::{capability_loop, TransportError};
#[cfg(target_arch = "aarch64")]
pub use root::{CamAccess, PciRoot};

use crate::fdt::{read_cells, skip_cells, Cells, Fdt, FdtError, Node, MAX_VALUE_CELLS};
use crate::memory::overlaps;
use alloc::vec::Vec;
use core::fmt;
use core::mem::size_of;
use core::ops::{Range, RangeInclusive};

/// `compatible` of QEMU's host bridge (PCIe ECAM, 4 KiB of configuration space per function).
pub const ECAM_COMPATIBLE: &[u8] = b"pci-host-ecam-generic";
/// `compatible` of crosvm's host bridge (CAM, 256 bytes of configuration space per function).
pub const CAM_COMPATIBLE: &[u8] = b"pci-host-cam-generic";

/// `#address-cells` of a PCI bus node: `phys.hi`, then a 64-bit address.
const PCI_ADDRESS_CELLS: u32 = 3;
/// `phys.hi` bits [25:24], the space code (IEEE Std 1275-1994 PCI binding).
const SPACE_CODE_SHIFT: u32 = 24;
const SPACE_CODE_MASK: u32 = 0b11;
/// `phys.hi` bit 30: the range is prefetchable.
const PREFETCHABLE: u32 = 1 << 30;

/// The 4 GiB limit of 32-bit BARs and windows.
const FOUR_GIB: u64 = 1 << 32;

/// The configuration access mechanism of a host bridge.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum CamKind {
    /// PCI CAM: 256 bytes per function, 64 KiB per bus (crosvm).
    Cam,
    /// PCIe ECAM: 4 KiB per function, 1 MiB per bus (QEMU).
    Ecam,
}

impl CamKind {
    /// Bytes of configuration space per bus.
    pub const fn bus_size(self) -> u64 {
        match self {
            Self::Cam => 1 << 16,
            Self::Ecam => 1 << 20,
        }
    }

    /// log2 of the bytes of configuration space per function.
    pub const fn function_shift(self) -> u32 {
        match self {
            Self::Cam => 8,
            Self::Ecam => 12,
        }
    }
}

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
    pub cpu_range: Range<u64>,
}

impl Window {
    /// The PCI bus addresses of the window.
    pub fn pci_range(&self) -> Range<u64> {
        self.pci_address..self.pci_address + (self.cpu_range.end - self.cpu_range.start)
    }

    /// Whether devices can put memory BARs in the window.
    pub fn is_memory(&self) -> bool {
        matches!(self.space, Space::Memory32 | Space::Memory64)
    }
}

/// What the device tree says about the PCI host bridge.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct PciInfo {
    /// How configuration space is reached.
    pub cam: CamKind,
    /// The CPU addresses of configuration space, as far as `bus-range` uses it.
    pub cam_range: Range<u64>,
    /// The buses behind the bridge.
    pub bus_range: RangeInclusive<u8>,
    /// The windows of `ranges`, I/O included.
    pub windows: Vec<Window>,
    /// `interrupt-map-mask`: which bits of a child's unit address and pin `interrupt-map`
    /// matches.
    pub interrupt_map_mask: [u32; 4],
    /// `interrupt-map`: the legacy interrupts (INTA-INTD) of the functions on the bus.
    pub interrupt_map: Vec<InterruptMapEntry>,
}

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

/// The name of a device tree node as an error holds it: its first [`NodeName::CAPACITY`] bytes.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct NodeName {
    bytes: [u8; NodeName::CAPACITY],
    len: usize,
}

impl NodeName {
    /// How many bytes of a name are kept (a longer one is shown with `...`).
    pub const CAPACITY: usize = 32;

    fn new(name: &[u8]) -> Self {
        let len = name.len().min(Self::CAPACITY);
        let mut bytes = [0; Self::CAPACITY];
        bytes[..len].copy_from_slice(&name[..len]);
        Self {
            bytes,
            len: name.len(),
        }
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let kept = &self.bytes[..self.len.min(Self::CAPACITY)];
        for chunk in kept.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        if self.len > Self::CAPACITY {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// Why the PCI host bridge could not be used.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum PciError {
    /// The device tree could not be read.
    Fdt(FdtError),
    /// No node is compatible with a generic host bridge.
    NoHostBridge,
    /// A property the bridge needs is missing; holds its name.
    Missing(&'static str),
    /// A property has a length its cell counts do not allow; holds its name.
    BadLength(&'static str),
    /// `#address-cells`/`#size-cells` of the bridge or its parent are not what PCI uses.
    BadCells {
        /// The bridge's `#address-cells` (3 for PCI).
        address: u32,
        /// The bridge's `#size-cells` (1 or 2).
        size: u32,
        /// The parent's `#address-cells` (1 or 2).
        parent_address: u32,
    },
    /// `bus-range` ends before it starts, or names a bus above 255.
    BadBusRange(u32, u32),
    /// `reg` is too small for the buses of `bus-range`.
    CamTooSmall {
        /// The size `reg` gives.
        size: u64,
        /// The size the buses need.
        needed: u64,
    },
    /// An address range overflows 64 bits; holds its start.
    Overflow(u64),
    /// A `ranges` entry covers no byte; holds its CPU address.
    EmptyWindow(u64),
    /// A `ranges` entry names configuration space or a 32-bit window above 4 GiB; holds `phys.hi`.
    BadSpace(u32),
    /// Two windows, or a window and configuration space, overlap.
    WindowsOverlap(Range<u64>, Range<u64>),
    /// A window or configuration space overlaps the registers (`reg`) or bus (`ranges`) of
    /// another node of the tree: the GIC, a UART, any device.
    OverlapsDevice {
        /// The bridge's range (configuration space or a window's CPU addresses).
        pci: Range<u64>,
        /// The other node's range.
        device: Range<u64>,
        /// The other node's name.
        node: NodeName,
    },
    /// The heap has no room for what a property decodes to (the tree is larger than the heap
    /// can hold decoded).
    NoMemory {
        /// What was being decoded.
        what: &'static str,
        /// The bytes it needed.
        bytes: usize,
    },
    /// A range lies (partly) in RAM.
    OverlapsRam(Range<u64>),
    /// Configuration space lies outside the MMIO range this guest maps devices in.
    CamOutsideMmio {
        /// Configuration space.
        cam: Range<u64>,
        /// The MMIO range devices may use.
        mmio: Range<u64>,
    },
    /// A memory window translates PCI addresses to other CPU addresses; holds its CPU range.
    TranslatedWindow(Range<u64>),
    /// No memory window lies in the MMIO range, so no BAR can be assigned.
    NoMemoryWindow,
    /// A BAR of this size (and kind) fits in no window.
    NoSpaceForBar {
        /// Its size in bytes.
        size: u64,
        /// Whether it is a 64-bit BAR.
        is_64bit: bool,
        /// Whether it is prefetchable.
        prefetchable: bool,
    },
    /// A BAR's size is not a power of two of at least 16 bytes.
    BadBarSize(u64),
    /// Mapping configuration space or a window failed.
    Map(crate::memory::MemoryTrackerError),
    /// The PCI configuration space answered nonsense.
    Config(&'static str),
    /// `interrupt-map` names a phandle that no child of the root has; holds it.
    UnknownInterruptParent(u32),
    /// An interrupt controller's `#interrupt-cells` or `#address-cells` is missing or absurd;
    /// holds its phandle.
    BadInterruptParent(u32),
}

impl fmt::Display for PciError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Fdt(error) => write!(f, "device tree: {error}"),
            Self::NoHostBridge => write!(
                f,
                "no PCI host bridge (pci-host-ecam-generic or pci-host-cam-generic)"
            ),
            Self::Missing(name) => write!(f, "PCI host bridge has no {name}"),
            Self::BadLength(name) => write!(f, "PCI host bridge {name} has a bad length"),
            Self::BadCells {
                address,
                size,
                parent_address,
            } => write!(
                f,
                "PCI host bridge cells: #address-cells {address} (3 needed), #size-cells {size} \
                 (1 or 2), parent #address-cells {parent_address} (1 or 2)"
            ),
            Self::BadBusRange(first, last) => write!(f, "bad PCI bus-range <{first} {last}>"),
            Self::CamTooSmall { size, needed } => write!(
                f,
                "PCI configuration space of {size:#x} bytes, bus-range needs {needed:#x}"
            ),
            Self::Overflow(start) => write!(f, "PCI range from {start:#x} overflows"),
            Self::EmptyWindow(start) => write!(f, "PCI window at {start:#x} is empty"),
            Self::BadSpace(phys_hi) => write!(f, "bad PCI ranges entry (phys.hi {phys_hi:#010x})"),
            Self::WindowsOverlap(a, b) => write!(f, "PCI windows {a:#x?} and {b:#x?} overlap"),
            Self::OverlapsDevice { pci, device, node } => write!(
                f,
                "PCI range {pci:#x?} overlaps {device:#x?} of device tree node {node}"
            ),
            Self::NoMemory { what, bytes } => write!(
                f,
                "PCI host bridge {what} needs {bytes} bytes of heap, more than is free"
            ),
            Self::OverlapsRam(range) => write!(f, "PCI range {range:#x?} overlaps RAM"),
            Self::CamOutsideMmio { cam, mmio } => write!(
                f,
                "PCI configuration space {cam:#x?} is outside the MMIO range {mmio:#x?}"
            ),
            Self::TranslatedWindow(range) => write!(
                f,
                "PCI window {range:#x?} has PCI addresses other than its CPU addresses"
            ),
            Self::NoMemoryWindow => write!(f, "no PCI memory window in the MMIO range"),
            Self::NoSpaceForBar {
                size,
                is_64bit,
                prefetchable,
            } => write!(
                f,
                "no PCI window has room for a BAR of {size:#x} bytes (64-bit: {is_64bit}, \
                 prefetchable: {prefetchable})"
            ),
            Self::BadBarSize(size) => write!(f, "PCI BAR size {size:#x} is not a power of two"),
            Self::Map(error) => write!(f, "mapping PCI memory: {error}"),
            Self::Config(what) => write!(f, "PCI configuration space: {what}"),
            Self::UnknownInterruptParent(phandle) => write!(
                f,
                "PCI interrupt-map names interrupt controller {phandle:#x}, which is not a child of \
                 the root"
            ),
            Self::BadInterruptParent(phandle) => write!(
                f,
                "interrupt controller {phandle:#x} has no usable #interrupt-cells/#address-cells"
            ),
        }
    }
}

impl From<FdtError> for PciError {
    fn from(error: FdtError) -> Self {
        Self::Fdt(error)
    }
}

impl From<crate::memory::MemoryTrackerError> for PciError {
    fn from(error: crate::memory::MemoryTrackerError) -> Self {
        Self::Map(error)
    }
}

fn checked_range(start: u64, size: u64) -> Result<Range<u64>, PciError> {
    let end = start.checked_add(size).ok_or(PciError::Overflow(start))?;
    Ok(start..end)
}

/// An empty vector with room for `count` elements, or [`PciError::NoMemory`] naming `what`
/// when the heap has no such room: decoding never aborts on a tree too large for the heap.
fn vec_for<T>(count: usize, what: &'static str) -> Result<Vec<T>, PciError> {
    let mut vec = Vec::new();
    vec.try_reserve_exact(count)
        .map_err(|_| PciError::NoMemory {
            what,
            bytes: count.saturating_mul(size_of::<T>()),
        })?;
    Ok(vec)
}

/// Pushes `value` onto `vec`, growing it fallibly (see [`vec_for`]).
fn push<T>(vec: &mut Vec<T>, value: T, what: &'static str) -> Result<(), PciError> {
    vec.try_reserve(1).map_err(|_| PciError::NoMemory {
        what,
        bytes: vec.len().saturating_add(1).saturating_mul(size_of::<T>()),
    })?;
    vec.push(value);
    Ok(())
}

/// Decodes a PCI bus node's `ranges` (`phys.hi`, a 64-bit PCI address, a parent address of
/// `parent_address_cells`, a size of `size_cells`). Windows must be non-empty, must not overflow
/// or overlap each other, and 32-bit memory windows must end at or below 4 GiB on the bus.
///
/// Time is O(n log n) in the number of windows and memory one allocation of them (plus a sorted
/// copy of their ranges for the overlap check), or [`PciError::NoMemory`].
pub fn decode_ranges(
    mut value: &[u8],
    parent_address_cells: u32,
    size_cells: u32,
) -> Result<Vec<Window>, PciError> {
    let entry = 4 * (PCI_ADDRESS_CELLS + parent_address_cells + size_cells) as usize;
    if !value.len().is_multiple_of(entry) {
        return Err(PciError::BadLength("ranges"));
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
            return Err(PciError::BadLength("ranges"));
        };
        let phys_hi = phys_hi as u32;
        let space = match (phys_hi >> SPACE_CODE_SHIFT) & SPACE_CODE_MASK {
            0b00 => Space::Configuration,
            0b01 => Space::Io,
            0b10 => Space::Memory32,
            _ => Space::Memory64,
        };
        if size == 0 {
            return Err(PciError::EmptyWindow(cpu_address));
        }
        let cpu_range = checked_range(cpu_address, size)?;
        let pci_range = checked_range(pci_address, size)?;
        if space == Space::Configuration || (space == Space::Memory32 && pci_range.end > FOUR_GIB) {
            return Err(PciError::BadSpace(phys_hi));
        }
        windows.push(Window {
            space,
            prefetchable: phys_hi & PREFETCHABLE != 0,
            pci_address,
            cpu_range,
        });
    }
    sorted_apart(windows.iter().map(|w| w.cpu_range.clone()), windows.len())?;
    Ok(windows)
}

/// The `count` ranges of `ranges`, each with its position in it, sorted by start and checked
/// not to overlap each other; otherwise [`PciError::WindowsOverlap`] names two that do, the
/// earlier one first. Sorted and apart, they also end in order, which a binary search uses.
fn sorted_apart(
    ranges: impl Iterator<Item = Range<u64>>,
    count: usize,
) -> Result<Vec<(Range<u64>, usize)>, PciError> {
    let mut sorted: Vec<(Range<u64>, usize)> = vec_for(count, "ranges")?;
    sorted.extend(ranges.zip(0..));
    // In place: a stable sort would allocate.
    sorted.sort_unstable_by_key(|(range, index)| (range.start, *index));
    for pair in sorted.windows(2) {
        let [(a, a_index), (b, b_index)] = pair else {
            continue;
        };
        if overlaps(a, b) {
            let (first, second) = if a_index < b_index { (a, b) } else { (b, a) };
            return Err(PciError::WindowsOverlap(first.clone(), second.clone()));
        }
    }
    Ok(sorted)
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
/// the entries, or [`PciError::NoMemory`].
pub fn decode_interrupt_map(
    value: &[u8],
    parent_cells: impl Fn(u32) -> Result<Option<(u32, u32)>, PciError>,
) -> Result<Vec<InterruptMapEntry>, PciError> {
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
    parent_cells: &impl Fn(u32) -> Result<Option<(u32, u32)>, PciError>,
    mut visit: impl FnMut(InterruptMapEntry) -> Result<(), PciError>,
) -> Result<(), PciError> {
    let bad_length = PciError::BadLength("interrupt-map");
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
            parent_cells(parent)?.ok_or(PciError::UnknownInterruptParent(parent))?;
        if address_cells > MAX_INTERRUPT_PARENT_CELLS
            || !(1..=MAX_INTERRUPT_PARENT_CELLS).contains(&interrupt_cells)
        {
            return Err(PciError::BadInterruptParent(parent));
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
struct InterruptParents {
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
    fn new(fdt: &Fdt) -> Result<Self, PciError> {
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
    fn cells(&self, phandle: u32) -> Result<Option<(u32, u32)>, PciError> {
        let first = self
            .sorted
            .partition_point(|parent| parent.phandle < phandle);
        match self.sorted.get(first) {
            Some(parent) if parent.phandle == phandle => parent
                .cells
                .map(Some)
                .ok_or(PciError::BadInterruptParent(phandle)),
            _ => Ok(None),
        }
    }
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
fn refuse_device_overlaps(
    bus: &Node,
    bridge: usize,
    claims: &[(Range<u64>, usize)],
    depth: usize,
) -> Result<(), PciError> {
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
        let refuse_overlap = |device: Range<u64>| -> Result<(), PciError> {
            let after = claims.partition_point(|(claim, _)| claim.end <= device.start);
            match claims.get(after) {
                Some((claim, _)) if claim.start < device.end => Err(PciError::OverlapsDevice {
                    pci: claim.clone(),
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
/// are not visited; one that overflows is [`PciError::Overflow`].
fn for_each_range(
    mut value: &[u8],
    skipped_cells: u32,
    cells: Cells,
    visit: &impl Fn(Range<u64>) -> Result<(), PciError>,
) -> Result<(), PciError> {
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

impl PciInfo {
    /// The interrupt specifier of pin `pin` (1 to 4 for INTA to INTD) of device `device`,
    /// function `function` on bus `bus`, from `interrupt-map`, for a function on the root bus.
    pub fn interrupt(
        &self,
        bus: u8,
        device: u8,
        function: u8,
        pin: u32,
    ) -> Option<&InterruptMapEntry> {
        let phys_hi = u32::from(bus) << 16 | u32::from(device) << 11 | u32::from(function) << 8;
        let child = [phys_hi, 0, 0, pin];
        let masked = |values: [u32; 4]| {
            let mut masked = values;
            for (value, mask) in masked.iter_mut().zip(self.interrupt_map_mask) {
                *value &= mask;
            }
            masked
        };
        let wanted = masked(child);
        self.interrupt_map.iter().find(|entry| {
            let [hi, mid, lo] = entry.child_address;
            masked([hi, mid, lo, entry.child_pin]) == wanted
        })
    }

    /// Finds the first generic host bridge in `fdt` and decodes it.
    pub fn from_fdt(fdt: &Fdt) -> Result<Self, PciError> {
        for (compatible, cam) in [
            (ECAM_COMPATIBLE, CamKind::Ecam),
            (CAM_COMPATIBLE, CamKind::Cam),
        ] {
            if let Some(node) = fdt.compatible_nodes(compatible).next().transpose()? {
                return Self::from_node(fdt, &node, cam);
            }
        }
        Err(PciError::NoHostBridge)
    }

    /// Decodes host bridge `node` of `fdt`, whose configuration access mechanism is `cam`.
    pub fn from_node(fdt: &Fdt, node: &Node, cam: CamKind) -> Result<Self, PciError> {
        let cells = node.cells()?;
        let parent = node.parent_cells();
        if cells.address != PCI_ADDRESS_CELLS
            || !(1..=MAX_VALUE_CELLS).contains(&cells.size)
            || !(1..=MAX_VALUE_CELLS).contains(&parent.address)
            || !(1..=MAX_VALUE_CELLS).contains(&parent.size)
        {
            return Err(PciError::BadCells {
                address: cells.address,
                size: cells.size,
                parent_address: parent.address,
            });
        }
        let bus_range = match node.property(b"bus-range")? {
            None => 0..=u8::MAX,
            Some(value) => {
                let mut value = value;
                let (Some(first), Some(last), true) = (
                    read_cells(&mut value, 1),
                    read_cells(&mut value, 1),
                    value.is_empty(),
                ) else {
                    return Err(PciError::BadLength("bus-range"));
                };
                match (u8::try_from(first), u8::try_from(last)) {
                    (Ok(first), Ok(last)) if first <= last => first..=last,
                    _ => return Err(PciError::BadBusRange(first as u32, last as u32)),
                }
            }
        };
        let mut reg = node.property(b"reg")?.ok_or(PciError::Missing("reg"))?;
        let (Some(cam_start), Some(cam_size)) = (
            read_cells(&mut reg, parent.address),
            read_cells(&mut reg, parent.size),
        ) else {
            return Err(PciError::BadLength("reg"));
        };
        let buses = u64::from(*bus_range.end() - *bus_range.start()) + 1;
        let needed = buses * cam.bus_size();
        if cam_size < needed {
            return Err(PciError::CamTooSmall {
                size: cam_size,
                needed,
            });
        }
        checked_range(cam_start, cam_size)?;
        let cam_range = cam_start..cam_start + needed;
        let ranges = node
            .property(b"ranges")?
            .ok_or(PciError::Missing("ranges"))?;
        let windows = decode_ranges(ranges, parent.address, cells.size)?;
        let claims = sorted_apart(
            core::iter::once(cam_range.clone()).chain(windows.iter().map(|w| w.cpu_range.clone())),
            windows.len() + 1,
        )?;
        refuse_device_overlaps(&fdt.root()?, node.offset(), &claims, 0)?;
        drop(claims);
        let (interrupt_map_mask, interrupt_map) = match node.property(b"interrupt-map")? {
            None => ([0; 4], Vec::new()),
            Some(map) => {
                let mut mask = node
                    .property(b"interrupt-map-mask")?
                    .ok_or(PciError::Missing("interrupt-map-mask"))?;
                let mut mask_cells = [0; 4];
                for cell in &mut mask_cells {
                    *cell = read_cells(&mut mask, 1)
                        .ok_or(PciError::BadLength("interrupt-map-mask"))?
                        as u32;
                }
                if !mask.is_empty() {
                    return Err(PciError::BadLength("interrupt-map-mask"));
                }
                let parents = InterruptParents::new(fdt)?;
                let map = decode_interrupt_map(map, |phandle| parents.cells(phandle))?;
                (mask_cells, map)
            }
        };
        Ok(Self {
            cam,
            cam_range,
            bus_range,
            windows,
            interrupt_map_mask,
            interrupt_map,
        })
    }

    /// Checks the bridge against the guest's memory map: configuration space inside `mmio`, no
    /// range in `ram`. Returns the memory windows that lie in `mmio` (the ones BARs can use);
    /// windows elsewhere (QEMU's 64-bit window above 512 GiB) are left unused.
    pub fn usable_windows(
        &self,
        ram: &Range<u64>,
        mmio: &Range<u64>,
    ) -> Result<Vec<Window>, PciError> {
        let inside = |range: &Range<u64>| mmio.start <= range.start && range.end <= mmio.end;
        for range in
            core::iter::once(&self.cam_range).chain(self.windows.iter().map(|w| &w.cpu_range))
        {
            if overlaps(range, ram) {
                return Err(PciError::OverlapsRam(range.clone()));
            }
        }
        if !inside(&self.cam_range) {
            return Err(PciError::CamOutsideMmio {
                cam: self.cam_range.clone(),
                mmio: mmio.clone(),
            });
        }
        let is_usable = |window: &&Window| window.is_memory() && inside(&window.cpu_range);
        let mut usable = vec_for(self.windows.iter().filter(is_usable).count(), "ranges")?;
        for window in self.windows.iter().filter(is_usable) {
            if window.pci_address != window.cpu_range.start {
                return Err(PciError::TranslatedWindow(window.cpu_range.clone()));
            }
            usable.push(window.clone());
        }
        if usable.is_empty() {
            return Err(PciError::NoMemoryWindow);
        }
        Ok(usable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdt::tests::FdtBuilder;
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::Cell;
    use std::alloc::System;
    use std::time::{Duration, Instant};

    std::thread_local! {
        /// Bytes the current thread may still allocate, or `None` for no limit.
        static HEAP_LEFT: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// The unit tests' allocator: the system's, except that a test can give its thread a budget
    /// ([`with_heap`]) that stands for a guest's small heap: past it, allocations fail, as
    /// vmbase's heap does when exhausted.
    struct BudgetAllocator;

    // SAFETY: Allocation is delegated to System; only a refusal (null) is added.
    unsafe impl GlobalAlloc for BudgetAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let allowed = HEAP_LEFT
                .try_with(|left| match left.get() {
                    None => true,
                    Some(bytes) if bytes >= layout.size() => {
                        left.set(Some(bytes - layout.size()));
                        true
                    }
                    Some(_) => false,
                })
                .unwrap_or(true);
            if allowed {
                // SAFETY: The caller's obligations are System's.
                unsafe { System.alloc(layout) }
            } else {
                core::ptr::null_mut()
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            let _ = HEAP_LEFT.try_with(|left| {
                if let Some(bytes) = left.get() {
                    left.set(Some(bytes + layout.size()));
                }
            });
            // SAFETY: ptr came from System.alloc with this layout (alloc above).
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: BudgetAllocator = BudgetAllocator;

    /// Runs `f` as if the heap had `bytes` free.
    fn with_heap<T>(bytes: usize, f: impl FnOnce() -> T) -> T {
        HEAP_LEFT.with(|left| left.set(Some(bytes)));
        let result = f();
        HEAP_LEFT.with(|left| left.set(None));
        result
    }

    const RAM: Range<u64> = 0x8000_0000..0x9000_0000;
    const MMIO: Range<u64> = 0..0x4000_0000;

    /// QEMU's tree (`-M virt,gic-version=3`, default highmem), as dumped by QEMU 7.2.
    const QEMU_VIRT: &[u8] = include_bytes!("../../tests/data/qemu-virt.dtb");
    /// QEMU's tree with `highmem=off`, what `vm` boots: ECAM and windows in the low GiB.
    const QEMU_VIRT_LOW: &[u8] = include_bytes!("../../tests/data/qemu-virt-highmem-off.dtb");

    fn aligned(blob: &[u8]) -> Vec<u64> {
        let mut words = alloc::vec![0u64; blob.len().div_ceil(8)];
        // SAFETY: words has at least blob.len() bytes, and u64 has no invalid bit patterns.
        let bytes =
            unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), blob.len()) };
        bytes.copy_from_slice(blob);
        words
    }

    fn decode(blob: &[u8]) -> Result<PciInfo, PciError> {
        let words = aligned(blob);
        // SAFETY: As in aligned: the bytes of words.
        let bytes = unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), blob.len()) };
        PciInfo::from_fdt(&Fdt::new(bytes)?)
    }

    /// A tree with one bridge whose properties are given; the root has 2 address and 2 size
    /// cells, like QEMU's and crosvm's.
    fn bridge(compatible: &str, props: &[(&str, &[u32])]) -> Vec<u8> {
        let mut builder = FdtBuilder::new();
        builder
            .begin("")
            .prop_u32s("#address-cells", &[2])
            .prop_u32s("#size-cells", &[2])
            .begin("pci");
        builder.prop("compatible", &[compatible.as_bytes(), b"\0"].concat());
        for (name, cells) in props {
            builder.prop_u32s(name, cells);
        }
        builder.end().end().build()
    }

    const CROSVM_RANGES: &[u32] = &[
        0x0300_0000,
        0,
        0x7000_0000,
        0,
        0x7000_0000,
        0,
        0x1000_0000, // 64-bit in the low space
        0x4300_0000,
        0x1,
        0x0,
        0x1,
        0x0,
        0x1,
        0x0, // prefetchable 64-bit above 4 GiB
    ];

    fn crosvm_props(ranges: &[u32]) -> Vec<(&'static str, Vec<u32>)> {
        alloc::vec![
            ("#address-cells", alloc::vec![3]),
            ("#size-cells", alloc::vec![2]),
            ("reg", alloc::vec![0, 0x1_0000, 0, 0x100_0000]),
            ("bus-range", alloc::vec![0, 0]),
            ("ranges", ranges.to_vec()),
        ]
    }

    fn with<'a>(props: &'a [(&'static str, Vec<u32>)]) -> Vec<(&'static str, &'a [u32])> {
        props.iter().map(|(n, v)| (*n, v.as_slice())).collect()
    }

    #[test]
    fn qemu_default_tree_has_high_ecam() {
        let info = decode(QEMU_VIRT).unwrap();
        assert_eq!(info.cam, CamKind::Ecam);
        assert_eq!(info.cam_range, 0x40_1000_0000..0x40_2000_0000);
        assert_eq!(info.bus_range, 0..=255);
        assert_eq!(
            info.windows,
            [
                Window {
                    space: Space::Io,
                    prefetchable: false,
                    pci_address: 0,
                    cpu_range: 0x3eff_0000..0x3f00_0000,
                },
                Window {
                    space: Space::Memory32,
                    prefetchable: false,
                    pci_address: 0x1000_0000,
                    cpu_range: 0x1000_0000..0x3eff_0000,
                },
                Window {
                    space: Space::Memory64,
                    prefetchable: false,
                    pci_address: 0x80_0000_0000,
                    cpu_range: 0x80_0000_0000..0x100_0000_0000,
                },
            ]
        );
        assert_eq!(
            info.usable_windows(&RAM, &MMIO),
            Err(PciError::CamOutsideMmio {
                cam: 0x40_1000_0000..0x40_2000_0000,
                mmio: MMIO
            })
        );
    }

    #[test]
    fn qemu_low_tree_is_usable() {
        let info = decode(QEMU_VIRT_LOW).unwrap();
        assert_eq!(info.cam_range, 0x3f00_0000..0x4000_0000);
        assert_eq!(info.bus_range, 0..=15);
        let usable = info.usable_windows(&RAM, &MMIO).unwrap();
        assert_eq!(usable.len(), 1);
        assert_eq!(usable[0].cpu_range, 0x1000_0000..0x3eff_0000);
        assert_eq!(usable[0].pci_range(), 0x1000_0000..0x3eff_0000);
    }

    #[test]
    fn qemu_interrupt_map_gives_each_slot_its_swizzled_spi() {
        let info = decode(QEMU_VIRT_LOW).unwrap();
        assert_eq!(info.interrupt_map.len(), 16);
        assert_eq!(info.interrupt_map_mask, [0x1800, 0, 0, 7]);
        let spi = |device, pin| {
            info.interrupt(0, device, 0, pin)
                .map(|entry| (entry.parent, entry.parent_interrupt().to_vec()))
        };
        assert_eq!(spi(0, 1), Some((0x8002, alloc::vec![0, 3, 4])));
        assert_eq!(spi(1, 1), Some((0x8002, alloc::vec![0, 4, 4])));
        assert_eq!(spi(2, 1), Some((0x8002, alloc::vec![0, 5, 4])));
        assert_eq!(spi(1, 4), Some((0x8002, alloc::vec![0, 3, 4])));
        // The mask keeps two bits of the device number: slot 5 is wired like slot 1.
        assert_eq!(spi(5, 1), spi(1, 1));
        assert_eq!(spi(1, 5), None);
    }

    /// A CAM bridge with `interrupt-map` `map`, and an interrupt controller, phandle 1, with
    /// `#interrupt-cells` `interrupt_cells`.
    fn bridge_with_interrupts(map: &[u32], interrupt_cells: u32) -> Vec<u8> {
        let mut builder = FdtBuilder::new();
        builder
            .begin("")
            .prop_u32s("#address-cells", &[2])
            .prop_u32s("#size-cells", &[2])
            .begin("intc")
            .prop_u32s("phandle", &[1])
            .prop_u32s("#interrupt-cells", &[interrupt_cells])
            .end()
            .begin("pci")
            .prop("compatible", b"pci-host-cam-generic\0");
        for (name, cells) in crosvm_props(CROSVM_RANGES) {
            builder.prop_u32s(name, &cells);
        }
        builder
            .prop_u32s("interrupt-map-mask", &[0xf800, 0, 0, 7])
            .prop_u32s("interrupt-map", map)
            .end()
            .end()
            .build()
    }

    #[test]
    fn interrupt_map_errors() {
        let good = [0x800, 0, 0, 1, 1, 0, 4, 4];
        let info = decode(&bridge_with_interrupts(&good, 3)).unwrap();
        assert_eq!(
            info.interrupt(0, 1, 0, 1)
                .map(|e| e.parent_interrupt().to_vec()),
            Some(alloc::vec![0, 4, 4])
        );
        assert_eq!(
            decode(&bridge_with_interrupts(&good[..7], 3)),
            Err(PciError::BadLength("interrupt-map"))
        );
        assert_eq!(
            decode(&bridge_with_interrupts(&[0x800, 0, 0, 1, 2, 0, 4, 4], 3)),
            Err(PciError::UnknownInterruptParent(2))
        );
        assert_eq!(
            decode(&bridge_with_interrupts(&good, 0x7fff_ffff)),
            Err(PciError::BadInterruptParent(1))
        );
    }

    #[test]
    fn crosvm_like_cam_bridge() {
        let info = decode(&bridge(
            "pci-host-cam-generic",
            &with(&crosvm_props(CROSVM_RANGES)),
        ))
        .unwrap();
        assert_eq!(info.cam, CamKind::Cam);
        assert_eq!(info.cam_range, 0x1_0000..0x2_0000);
        assert_eq!(info.bus_range, 0..=0);
        assert!(info.windows[1].prefetchable);
        assert_eq!(info.windows[1].space, Space::Memory64);
        // The window above 4 GiB overlaps this RAM-sized test's nothing, but is outside MMIO.
        let usable = info.usable_windows(&RAM, &(0..0x8000_0000)).unwrap();
        assert_eq!(usable.len(), 1);
        assert_eq!(usable[0].cpu_range, 0x7000_0000..0x8000_0000);
    }

    #[test]
    fn hostile_bridges_are_errors() {
        let cases: &[(&[u32], PciError)] = &[
            (
                &[0x0200_0000, 0, 0x8000_0000, 0, 0x8000_0000, 0, 0x1000],
                PciError::OverlapsRam(0x8000_0000..0x8000_1000),
            ),
            (
                &[0x0200_0000, 0, 0x1000_0000, 0, 0x1000_0000, 0, 0],
                PciError::EmptyWindow(0x1000_0000),
            ),
            (
                &[0x0300_0000, 0, 0, 0xffff_ffff, 0xffff_0000, 0x1, 0],
                PciError::Overflow(0xffff_ffff_ffff_0000),
            ),
            (
                &[0x0200_0000, 0, 0xffff_0000, 0, 0x1000_0000, 0, 0x2_0000],
                PciError::BadSpace(0x0200_0000),
            ),
            (
                &[0x0000_0000, 0, 0x1000_0000, 0, 0x1000_0000, 0, 0x1000],
                PciError::BadSpace(0),
            ),
            (
                &[
                    0x0200_0000,
                    0,
                    0x1000_0000,
                    0,
                    0x1000_0000,
                    0,
                    0x2000, //
                    0x0200_0000,
                    0,
                    0x2000_0000,
                    0,
                    0x1000_1000,
                    0,
                    0x1000,
                ],
                PciError::WindowsOverlap(0x1000_0000..0x1000_2000, 0x1000_1000..0x1000_2000),
            ),
            (
                &[0x0200_0000, 0, 0x1000_0000],
                PciError::BadLength("ranges"),
            ),
        ];
        for (ranges, expected) in cases {
            let blob = bridge("pci-host-cam-generic", &with(&crosvm_props(ranges)));
            let result = decode(&blob).and_then(|info| info.usable_windows(&RAM, &MMIO));
            assert_eq!(result.as_ref().err(), Some(expected), "ranges {ranges:#x?}");
        }
    }

    #[test]
    fn hostile_cells_reg_and_bus_ranges_are_errors() {
        let replace = |name: &'static str, value: &[u32]| {
            let mut props = crosvm_props(CROSVM_RANGES);
            props.iter_mut().find(|(n, _)| *n == name).unwrap().1 = value.to_vec();
            decode(&bridge("pci-host-cam-generic", &with(&props)))
        };
        assert!(matches!(
            replace("#address-cells", &[2]),
            Err(PciError::BadCells { address: 2, .. })
        ));
        assert_eq!(
            replace("#address-cells", &[0xffff_ffff]),
            Err(PciError::Fdt(FdtError::BadCells))
        );
        assert!(matches!(
            replace("#size-cells", &[3]),
            Err(PciError::BadCells { size: 3, .. })
        ));
        assert_eq!(
            replace("bus-range", &[2, 1]),
            Err(PciError::BadBusRange(2, 1))
        );
        assert_eq!(
            replace("bus-range", &[0, 256]),
            Err(PciError::BadBusRange(0, 256))
        );
        assert_eq!(
            replace("bus-range", &[0]),
            Err(PciError::BadLength("bus-range"))
        );
        assert_eq!(
            replace("bus-range", &[0, 1]).map(|info| info.cam_range),
            Ok(0x1_0000..0x3_0000)
        );
        assert_eq!(
            replace("reg", &[0, 0x1_0000]),
            Err(PciError::BadLength("reg"))
        );
        assert_eq!(
            replace("reg", &[0, 0x1_0000, 0, 0x1000]),
            Err(PciError::CamTooSmall {
                size: 0x1000,
                needed: 0x1_0000
            })
        );
        assert_eq!(
            replace("reg", &[0xffff_ffff, 0xffff_0000, 0, 0x1_0000]),
            Err(PciError::Overflow(0xffff_ffff_ffff_0000))
        );
        let far = replace("reg", &[0x100, 0, 0, 0x1_0000]).unwrap();
        assert!(matches!(
            far.usable_windows(&RAM, &MMIO),
            Err(PciError::CamOutsideMmio { .. })
        ));
        let empty = FdtBuilder::new().begin("").end().build();
        assert_eq!(decode(&empty), Err(PciError::NoHostBridge));
    }

    /// A CAM bridge whose `ranges` has `windows` 32-bit windows of 4 KiB (not overlapping),
    /// under a root with `devices` extra children with `reg`, all far from the windows.
    fn bridge_with_many_windows(windows: u32) -> Vec<u8> {
        let ranges: Vec<u32> = (0..windows)
            .flat_map(|i| {
                let address = 0x1000_0000 + i * 0x1000;
                [0x0200_0000, 0, address, 0, address, 0, 0x1000]
            })
            .collect();
        bridge("pci-host-cam-generic", &with(&crosvm_props(&ranges)))
    }

    /// A CAM bridge with an `interrupt-map` of `entries` entries, each naming the last of
    /// `controllers` interrupt controllers (children of the root with a phandle).
    fn bridge_with_large_interrupt_map(entries: u32, controllers: u32) -> Vec<u8> {
        let mut builder = FdtBuilder::new();
        builder
            .begin("")
            .prop_u32s("#address-cells", &[2])
            .prop_u32s("#size-cells", &[2]);
        for phandle in 1..=controllers {
            builder
                .begin("intc")
                .prop_u32s("phandle", &[phandle])
                .prop_u32s("#interrupt-cells", &[3])
                .end();
        }
        let map: Vec<u32> = (0..entries)
            .flat_map(|i| [i << 8, 0, 0, 1, controllers, 0, i, 4])
            .collect();
        builder
            .begin("pci")
            .prop("compatible", b"pci-host-cam-generic\0");
        for (name, cells) in crosvm_props(CROSVM_RANGES) {
            builder.prop_u32s(name, &cells);
        }
        builder
            .prop_u32s("interrupt-map-mask", &[0xffff_ff00, 0, 0, 7])
            .prop_u32s("interrupt-map", &map)
            .end()
            .end()
            .build()
    }

    #[test]
    fn interrupt_map_larger_than_the_heap_is_refused_by_name() {
        // 2,100 entries (67 KiB of tree), as in the report, against a 64 KiB heap.
        let blob = bridge_with_large_interrupt_map(2_100, 1);
        let words = aligned(&blob);
        // SAFETY: As in decode: the bytes of words.
        let bytes = unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), blob.len()) };
        let fdt = Fdt::new(bytes).unwrap();
        let result = with_heap(64 << 10, || PciInfo::from_fdt(&fdt));
        assert_eq!(
            result,
            Err(PciError::NoMemory {
                what: "interrupt-map",
                bytes: 2_100 * size_of::<InterruptMapEntry>()
            })
        );
        assert!(result.unwrap_err().to_string().contains("interrupt-map"));
        // With room, the same map decodes, and every entry can be looked up.
        let info = PciInfo::from_fdt(&fdt).unwrap();
        assert_eq!(info.interrupt_map.len(), 2_100);
        // Entry 2,099's unit address: bus 8, device 6, function 3.
        let last = info.interrupt(8, 6, 3, 1).unwrap();
        assert_eq!(last.parent_interrupt(), [0, 2_099, 4]);
    }

    #[test]
    fn ranges_larger_than_the_heap_are_refused_by_name() {
        // 12,000 windows (336 KiB of tree), as in the report, against a 256 KiB heap.
        let blob = bridge_with_many_windows(12_000);
        let words = aligned(&blob);
        // SAFETY: As in decode: the bytes of words.
        let bytes = unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), blob.len()) };
        let fdt = Fdt::new(bytes).unwrap();
        let result = with_heap(256 << 10, || PciInfo::from_fdt(&fdt));
        assert_eq!(
            result,
            Err(PciError::NoMemory {
                what: "ranges",
                bytes: 12_000 * size_of::<Window>()
            })
        );
        assert_eq!(PciInfo::from_fdt(&fdt).unwrap().windows.len(), 12_000);
    }

    #[test]
    fn large_interrupt_map_and_ranges_decode_in_linear_time() {
        // Quadratic decoding took tens of seconds on trees this size (1.3 and 1.1 MiB): 10,000
        // lookups through 10,000 controllers, and 40,000 windows checked pairwise.
        let map = bridge_with_large_interrupt_map(10_000, 10_000);
        let ranges = bridge_with_many_windows(40_000);
        let start = Instant::now();
        assert_eq!(decode(&map).unwrap().interrupt_map.len(), 10_000);
        assert_eq!(decode(&ranges).unwrap().windows.len(), 40_000);
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    }

    /// A tree with a GIC, a UART under an identity-mapped bus, a translated bus, memory and
    /// CPUs beside a CAM bridge whose configuration space is at `cam` and whose one window is
    /// `window`.
    fn bridge_among_devices(cam: u32, window: Range<u32>) -> Vec<u8> {
        let mut builder = FdtBuilder::new();
        builder
            .begin("")
            .prop_u32s("#address-cells", &[2])
            .prop_u32s("#size-cells", &[2])
            .begin("cpus")
            .prop_u32s("#address-cells", &[1])
            .prop_u32s("#size-cells", &[0])
            .begin("cpu@0")
            .prop_u32s("reg", &[0])
            .end()
            .end()
            .begin("memory@80000000")
            .prop("device_type", b"memory\0")
            .prop_u32s("reg", &[0, 0x8000_0000, 0, 0x1000_0000])
            .end()
            .begin("intc@8000000")
            .prop_u32s(
                "reg",
                &[0, 0x800_0000, 0, 0x1_0000, 0, 0x80a_0000, 0, 0xf6_0000],
            )
            .end()
            .begin("soc")
            .prop_u32s("#address-cells", &[2])
            .prop_u32s("#size-cells", &[2])
            .prop("ranges", &[])
            .begin("pl011@9000000")
            .prop_u32s("reg", &[0, 0x900_0000, 0, 0x1000])
            .end()
            .end()
            .begin("platform-bus@c000000")
            .prop_u32s("#address-cells", &[1])
            .prop_u32s("#size-cells", &[1])
            .prop_u32s("ranges", &[0, 0, 0xc00_0000, 0x200_0000])
            .begin("device@0")
            .prop_u32s("reg", &[0, 0x1000])
            .end()
            .end()
            .begin("pci")
            .prop("compatible", b"pci-host-cam-generic\0")
            .prop_u32s("#address-cells", &[3])
            .prop_u32s("#size-cells", &[2])
            .prop_u32s("reg", &[0, cam, 0, 0x1_0000])
            .prop_u32s("bus-range", &[0, 0])
            .prop_u32s(
                "ranges",
                &[
                    0x0200_0000,
                    0,
                    window.start,
                    0,
                    window.start,
                    0,
                    window.end - window.start,
                ],
            )
            .begin("device@0")
            .prop_u32s("reg", &[0, 0, 0, 0, 0])
            .end()
            .end()
            .end();
        builder.build()
    }

    #[test]
    fn windows_over_other_devices_are_refused() {
        let ok = decode(&bridge_among_devices(0x3f00_0000, 0x1000_0000..0x3eff_0000));
        assert!(ok.is_ok(), "{ok:?}");
        let refused = |cam, window| decode(&bridge_among_devices(cam, window)).unwrap_err();
        // A CPU's `reg` is no address, and RAM is the tracker's to check (`usable_windows`).
        assert!(decode(&bridge_among_devices(0x3f00_0000, 0x10..0x1000)).is_ok());
        let over_ram = decode(&bridge_among_devices(0x3f00_0000, 0x8000_0000..0x8000_1000));
        assert_eq!(
            over_ram.unwrap().usable_windows(&RAM, &(0..0x1_0000_0000)),
            Err(PciError::OverlapsRam(0x8000_0000..0x8000_1000))
        );
        // Over the GIC's redistributors (its second reg entry).
        assert_eq!(
            refused(0x3f00_0000, 0x810_0000..0x3eff_0000),
            PciError::OverlapsDevice {
                pci: 0x810_0000..0x3eff_0000,
                device: 0x80a_0000..0x900_0000,
                node: NodeName::new(b"intc@8000000"),
            }
        );
        // Over the UART, under an identity-mapped bus.
        let uart = refused(0x3f00_0000, 0x900_0000..0x900_1000);
        assert_eq!(
            uart.to_string(),
            "PCI range 0x9000000..0x9001000 overlaps 0x9000000..0x9001000 of device tree node \
             pl011@9000000"
        );
        // Over a translated bus's window.
        assert!(matches!(
            refused(0x3f00_0000, 0xd00_0000..0xd00_1000),
            PciError::OverlapsDevice { node, .. } if node == NodeName::new(b"platform-bus@c000000")
        ));
        // Configuration space over the GIC.
        assert!(matches!(
            refused(0x800_8000, 0x1000_0000..0x3eff_0000),
            PciError::OverlapsDevice { pci, .. } if pci == (0x800_8000..0x801_8000)
        ));
        // Configuration space inside a window.
        assert_eq!(
            refused(0x2000_0000, 0x1000_0000..0x3eff_0000),
            PciError::WindowsOverlap(0x2000_0000..0x2001_0000, 0x1000_0000..0x3eff_0000)
        );
    }

    #[test]
    fn long_node_names_are_cut_in_errors() {
        let name = NodeName::new(&[b'a'; 40]);
        assert_eq!(name.to_string(), ["a".repeat(32), "...".into()].concat());
        assert_eq!(NodeName::new(b"uart\xff").to_string(), "uart\u{fffd}");
    }
}
