// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Why the PCI host bridge could not be used.

use crate::fdt::FdtError;
use crate::memory::AddressRange;
use core::fmt;

/// The name of a device tree node as an error holds it: its first [`NodeName::CAPACITY`] bytes.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct NodeName {
    bytes: [u8; NodeName::CAPACITY],
    len: usize,
}

impl NodeName {
    /// How many bytes of a name are kept (a longer one is shown with `...`).
    pub const CAPACITY: usize = 32;

    pub(super) fn new(name: &[u8]) -> Self {
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
        // One U+FFFD per maximal invalid sequence, as `String::from_utf8_lossy` shows it.
        let mut rest = kept;
        while !rest.is_empty() {
            match core::str::from_utf8(rest) {
                Ok(valid) => {
                    f.write_str(valid)?;
                    rest = &[];
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    f.write_str(core::str::from_utf8(valid).unwrap_or_default())?;
                    f.write_str("\u{fffd}")?;
                    rest = &after[error.error_len().unwrap_or(after.len())..];
                }
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
pub enum PciSetupError {
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
    WindowsOverlap(AddressRange, AddressRange),
    /// A window or configuration space overlaps the registers (`reg`) or bus (`ranges`) of
    /// another node of the tree: the GIC, a UART, any device.
    OverlapsDevice {
        /// The bridge's range (configuration space or a window's CPU addresses).
        pci: AddressRange,
        /// The other node's range.
        device: AddressRange,
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
    OverlapsRam(AddressRange),
    /// Configuration space lies outside the MMIO range this guest maps devices in.
    CamOutsideMmio {
        /// Configuration space.
        cam: AddressRange,
        /// The MMIO range devices may use.
        mmio: AddressRange,
    },
    /// A memory window translates PCI addresses to other CPU addresses; holds its CPU range.
    TranslatedWindow(AddressRange),
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

impl fmt::Display for PciSetupError {
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

#[cfg(has_core_error)]
impl core::error::Error for PciSetupError {}

impl From<FdtError> for PciSetupError {
    fn from(error: FdtError) -> Self {
        Self::Fdt(error)
    }
}

impl From<crate::memory::MemoryTrackerError> for PciSetupError {
    fn from(error: crate::memory::MemoryTrackerError) -> Self {
        Self::Map(error)
    }
}
