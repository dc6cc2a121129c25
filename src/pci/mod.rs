// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! PCI from the device tree: the host bridge's configuration space and memory windows, BARs
//! assigned from those windows, and the devices found on the bus.

mod bar;
mod capabilities;
mod error;
mod interrupts;
mod ranges;
#[cfg(target_arch = "aarch64")]
mod root;
#[cfg(test)]
mod tests;

pub use bar::{bar_pages, BarAllocator};
pub use capabilities::{capability_loop, TransportError};
pub use error::{NodeName, PciSetupError};
pub use interrupts::{decode_interrupt_map, InterruptMapEntry};
pub use ranges::{decode_ranges, Space, Window};
#[cfg(target_arch = "aarch64")]
pub use root::PciBus;

use crate::fdt::{read_cells, Fdt, Node, MAX_VALUE_CELLS};
use crate::memory::AddressRange;
use alloc::vec::Vec;
use core::mem::size_of;
use core::ops::RangeInclusive;
use interrupts::InterruptParents;
use ranges::{refuse_device_overlaps, sorted_apart};

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

/// What the device tree says about the PCI host bridge.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct PciInfo {
    /// How configuration space is reached.
    pub cam: CamKind,
    /// The CPU addresses of configuration space, as far as `bus-range` uses it.
    pub cam_range: AddressRange,
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

fn checked_range(start: u64, size: u64) -> Result<AddressRange, PciSetupError> {
    AddressRange::new(start, size).ok_or(PciSetupError::Overflow(start))
}

/// An empty vector with room for `count` elements, or [`PciSetupError::NoMemory`] naming `what`
/// when the heap has no such room: decoding never aborts on a tree too large for the heap.
fn vec_for<T>(count: usize, what: &'static str) -> Result<Vec<T>, PciSetupError> {
    let mut vec = Vec::new();
    vec.try_reserve_exact(count)
        .map_err(|_| PciSetupError::NoMemory {
            what,
            bytes: count.saturating_mul(size_of::<T>()),
        })?;
    Ok(vec)
}

/// Pushes `value` onto `vec`, growing it fallibly (see [`vec_for`]).
fn push<T>(vec: &mut Vec<T>, value: T, what: &'static str) -> Result<(), PciSetupError> {
    vec.try_reserve(1).map_err(|_| PciSetupError::NoMemory {
        what,
        bytes: vec.len().saturating_add(1).saturating_mul(size_of::<T>()),
    })?;
    vec.push(value);
    Ok(())
}

impl PciInfo {
    /// Where bus 0's configuration space would be: `reg` starts at the first bus of
    /// `bus-range`, and `virtio-drivers`' `PciRoot` counts buses from 0. `None` if that is below
    /// address 0.
    pub fn bus_zero_address(&self) -> Option<u64> {
        let below = u64::from(*self.bus_range.start()) * self.cam.bus_size();
        self.cam_range.start().checked_sub(below)
    }

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
    pub fn from_fdt(fdt: &Fdt) -> Result<Self, PciSetupError> {
        for (compatible, cam) in [
            (ECAM_COMPATIBLE, CamKind::Ecam),
            (CAM_COMPATIBLE, CamKind::Cam),
        ] {
            if let Some(node) = fdt.compatible_nodes(compatible).next().transpose()? {
                return Self::from_node(fdt, &node, cam);
            }
        }
        Err(PciSetupError::NoHostBridge)
    }

    /// Decodes host bridge `node` of `fdt`, whose configuration access mechanism is `cam`.
    pub fn from_node(fdt: &Fdt, node: &Node, cam: CamKind) -> Result<Self, PciSetupError> {
        let cells = node.cells()?;
        let parent = node.parent_cells();
        if cells.address != PCI_ADDRESS_CELLS
            || !(1..=MAX_VALUE_CELLS).contains(&cells.size)
            || !(1..=MAX_VALUE_CELLS).contains(&parent.address)
            || !(1..=MAX_VALUE_CELLS).contains(&parent.size)
        {
            return Err(PciSetupError::BadCells {
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
                    return Err(PciSetupError::BadLength("bus-range"));
                };
                match (u8::try_from(first), u8::try_from(last)) {
                    (Ok(first), Ok(last)) if first <= last => first..=last,
                    _ => return Err(PciSetupError::BadBusRange(first as u32, last as u32)),
                }
            }
        };
        let mut reg = node
            .property(b"reg")?
            .ok_or(PciSetupError::Missing("reg"))?;
        let (Some(cam_start), Some(cam_size)) = (
            read_cells(&mut reg, parent.address),
            read_cells(&mut reg, parent.size),
        ) else {
            return Err(PciSetupError::BadLength("reg"));
        };
        let buses = u64::from(*bus_range.end() - *bus_range.start()) + 1;
        let needed = buses * cam.bus_size();
        if cam_size < needed {
            return Err(PciSetupError::CamTooSmall {
                size: cam_size,
                needed,
            });
        }
        checked_range(cam_start, cam_size)?;
        // No larger than reg, which does not overflow.
        let cam_range = checked_range(cam_start, needed)?;
        let ranges = node
            .property(b"ranges")?
            .ok_or(PciSetupError::Missing("ranges"))?;
        let windows = decode_ranges(ranges, parent.address, cells.size)?;
        let claims = sorted_apart(
            core::iter::once(cam_range).chain(windows.iter().map(|w| w.cpu_range)),
            windows.len() + 1,
        )?;
        refuse_device_overlaps(&fdt.root()?, node.offset(), &claims, 0)?;
        drop(claims);
        let (interrupt_map_mask, interrupt_map) = match node.property(b"interrupt-map")? {
            None => ([0; 4], Vec::new()),
            Some(map) => {
                let mut mask = node
                    .property(b"interrupt-map-mask")?
                    .ok_or(PciSetupError::Missing("interrupt-map-mask"))?;
                let mut mask_cells = [0; 4];
                for cell in &mut mask_cells {
                    *cell = read_cells(&mut mask, 1)
                        .ok_or(PciSetupError::BadLength("interrupt-map-mask"))?
                        as u32;
                }
                if !mask.is_empty() {
                    return Err(PciSetupError::BadLength("interrupt-map-mask"));
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
        ram: &AddressRange,
        mmio: &AddressRange,
    ) -> Result<Vec<Window>, PciSetupError> {
        for range in
            core::iter::once(&self.cam_range).chain(self.windows.iter().map(|w| &w.cpu_range))
        {
            if range.overlaps(ram) {
                return Err(PciSetupError::OverlapsRam(*range));
            }
        }
        if !mmio.covers(&self.cam_range) {
            return Err(PciSetupError::CamOutsideMmio {
                cam: self.cam_range,
                mmio: *mmio,
            });
        }
        let is_usable = |window: &&Window| window.is_memory() && mmio.covers(&window.cpu_range);
        let mut usable = vec_for(self.windows.iter().filter(is_usable).count(), "ranges")?;
        for window in self.windows.iter().filter(is_usable) {
            if window.pci_address != window.cpu_range.start() {
                return Err(PciSetupError::TranslatedWindow(window.cpu_range));
            }
            usable.push(window.clone());
        }
        if usable.is_empty() {
            return Err(PciSetupError::NoMemoryWindow);
        }
        Ok(usable)
    }
}
