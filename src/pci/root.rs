// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The running PCI root complex: configuration space and windows mapped as device memory, BARs
//! assigned, devices enumerated.

use super::TransportError;
use super::{bar_pages, capability_loop, BarAllocator, CamKind, PciInfo, PciSetupError};
use crate::fdt::Fdt;
use crate::memory::{AddressRange, MemoryTracker};
use crate::virtio::VirtioTransport;
use alloc::vec::Vec;
use core::ops::Range;
use virtio_drivers::transport::pci::bus::{
    BarInfo, Cam, Command, DeviceFunction, DeviceFunctionInfo, HeaderType, MemoryBarType, PciError,
    PciRoot,
};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport, VirtioPciError};
use virtio_drivers::transport::DeviceType;

/// The vendor ID a configuration read of an absent function returns.
const ABSENT_VENDOR: u16 = u16::MAX;
/// BARs in a type 0 header.
const BARS: u8 = 6;

/// A device function found on the bus.
#[derive(Clone, Debug)]
pub struct PciDevice {
    /// Where it is.
    pub function: DeviceFunction,
    /// What it is.
    pub info: DeviceFunctionInfo,
}

impl PciDevice {
    /// Its virtio device type, if it is a virtio device.
    pub fn virtio_type(&self) -> Option<DeviceType> {
        virtio_device_type(&self.info)
    }
}

/// The PCI root complex from the device tree, ready for drivers.
pub struct PciBus {
    root: PciRoot,
    info: PciInfo,
    devices: Vec<PciDevice>,
}

/// The guest's own addresses of `range`, for the tracker; `PciSetupError::Overflow` if it
/// cannot address them all.
fn guest_range(range: &AddressRange) -> Result<Range<usize>, PciSetupError> {
    range
        .to_usize_range()
        .ok_or(PciSetupError::Overflow(range.start()))
}

/// The tracker's `range` (a valid range, as the tracker keeps only those) as an [`AddressRange`].
fn tracker_range(range: &Range<usize>) -> AddressRange {
    AddressRange::from_usize_range(range).unwrap_or_default()
}

impl PciBus {
    /// Finds the host bridge in `fdt`, checks it against the tracker's RAM and MMIO ranges, maps
    /// its configuration space as device memory, assigns every memory BAR that the VMM left
    /// unassigned (or placed outside the usable windows), maps the pages of every BAR as device
    /// memory, and enables memory decoding and bus mastering on every type 0 function of its
    /// buses. Only BARs are mapped, not whole windows: under the hypervisor's MMIO guard every
    /// mapped page is registered, and a window is up to hundreds of MiB.
    pub fn new(fdt: &Fdt, tracker: &mut MemoryTracker) -> Result<Self, PciSetupError> {
        let info = PciInfo::from_fdt(fdt)?;
        let ram = tracker_range(tracker.ram());
        let windows = info.usable_windows(&ram, &tracker_range(tracker.mmio()))?;
        tracker.map_mmio_range(guest_range(&info.cam_range)?)?;
        let bus_zero = info
            .bus_zero_address()
            .and_then(|address| usize::try_from(address).ok())
            .filter(|&address| address != 0)
            .ok_or(PciSetupError::Config(
                "bus 0's configuration space would lie at or below address 0",
            ))?;
        let cam = match info.cam {
            CamKind::Cam => Cam::MmioCam,
            CamKind::Ecam => Cam::Ecam,
        };
        // SAFETY: The tracker just mapped the configuration space of the buses of `bus-range`
        // as device memory, and refuses to map it again; only this root uses it. The root is
        // given where bus 0's would be, and reaches only those buses: PciBus asks it about the
        // functions of those buses alone (enumerated here, or checked by `reachable`).
        let mut root = unsafe { PciRoot::new(bus_zero as *mut u8, cam) };
        let mut devices = Vec::new();
        for bus_number in info.bus_range.clone() {
            for (function, function_info) in root.enumerate_bus(bus_number) {
                if function_info.header_type == HeaderType::Standard {
                    devices.push(PciDevice {
                        function,
                        info: function_info,
                    });
                }
            }
        }
        let bars = assign_bars(&mut root, &devices, BarAllocator::new(&windows))?;
        for pages in bar_pages(bars) {
            tracker.map_mmio_range(guest_range(&pages)?)?;
        }
        for device in &devices {
            root.set_command(device.function, Command::MEMORY_SPACE | Command::BUS_MASTER);
        }
        Ok(Self {
            root,
            info,
            devices,
        })
    }

    /// Whether `function` lies on the buses of `bus-range`, whose configuration space is mapped;
    /// other functions read as absent and ignore writes.
    fn reachable(&self, function: DeviceFunction) -> bool {
        function.valid() && self.info.bus_range.contains(&function.bus)
    }

    /// What the device tree said about the bridge.
    pub fn info(&self) -> &PciInfo {
        &self.info
    }

    /// The type 0 functions found, in bus order.
    pub fn devices(&self) -> &[PciDevice] {
        &self.devices
    }

    /// The virtio devices of type `device_type`, in bus order.
    pub fn virtio_devices(&self, device_type: DeviceType) -> impl Iterator<Item = &PciDevice> {
        self.devices
            .iter()
            .filter(move |device| device.virtio_type() == Some(device_type))
    }

    /// Lets `function` reach memory (bus mastering) or not; without it a device cannot read its
    /// queues, so it answers nothing (which is how the tests make a device unresponsive).
    pub fn set_bus_master(&mut self, function: DeviceFunction, enabled: bool) {
        if !self.reachable(function) {
            return;
        }
        let mut command = Command::MEMORY_SPACE;
        if enabled {
            command |= Command::BUS_MASTER;
        }
        self.root.set_command(function, command);
    }

    /// A virtio transport for `function`, with DMA through [`crate::virtio::VirtioHal`] and
    /// every wait on the device bounded ([`VirtioTransport`]). A capability list that loops is
    /// refused before `virtio-drivers` walks it. (A host that rewrites the list between the two
    /// walks could still make it loop; it could as well stop the VM.)
    pub fn transport(
        &mut self,
        function: DeviceFunction,
    ) -> Result<VirtioTransport, TransportError> {
        if !self.reachable(function) {
            return Err(VirtioPciError::InvalidVendorId(ABSENT_VENDOR).into());
        }
        if let Some(offset) = capability_loop(&self.root, function) {
            return Err(TransportError::CapabilityLoop { function, offset });
        }
        let transport = PciTransport::new::<crate::virtio::VirtioHal>(&mut self.root, function)?;
        Ok(VirtioTransport::new(transport))
    }
}

fn bar_error(error: PciError) -> PciSetupError {
    match error {
        PciError::InvalidBarType => PciSetupError::Config("invalid BAR type"),
    }
}

/// A memory BAR of a function.
struct MemoryBar {
    index: u8,
    address_type: MemoryBarType,
    prefetchable: bool,
    address: u64,
    size: u64,
}

/// The memory BARs of `function`, probed with its memory and I/O decoding off (the probe
/// writes all ones to each BAR), which is restored afterwards.
fn memory_bars(
    root: &mut PciRoot,
    function: DeviceFunction,
) -> Result<Vec<MemoryBar>, PciSetupError> {
    let (_, command) = root.get_status_command(function);
    root.set_command(
        function,
        command - (Command::IO_SPACE | Command::MEMORY_SPACE),
    );
    let bars = probe_memory_bars(root, function);
    root.set_command(function, command);
    bars
}

fn probe_memory_bars(
    root: &mut PciRoot,
    function: DeviceFunction,
) -> Result<Vec<MemoryBar>, PciSetupError> {
    let mut bars = Vec::new();
    let mut index = 0;
    while index < BARS {
        let bar = root.bar_info(function, index).map_err(bar_error)?;
        let entries = if bar.takes_two_entries() { 2 } else { 1 };
        if let BarInfo::Memory {
            address_type,
            prefetchable,
            address,
            size,
        } = bar
        {
            let size = match address_type {
                MemoryBarType::Width64 => bar_size_64(root, function, index, address)?,
                _ => u64::from(size),
            };
            bars.push(MemoryBar {
                index,
                address_type,
                prefetchable,
                address,
                size,
            });
        }
        index += entries;
    }
    Ok(bars)
}

/// The size of the 64-bit BAR `index` of `function`, now at `address`. `virtio-drivers` 0.7
/// sizes a BAR by its low word alone, which makes one of 4 GiB or more look empty: here both
/// words are set to all ones and read back (as the BAR's address) for the size mask, then the
/// address is restored.
fn bar_size_64(
    root: &mut PciRoot,
    function: DeviceFunction,
    index: u8,
    address: u64,
) -> Result<u64, PciSetupError> {
    root.set_bar_64(function, index, u64::MAX);
    let probed = root.bar_info(function, index).map_err(bar_error);
    root.set_bar_64(function, index, address);
    match probed? {
        BarInfo::Memory { address: mask, .. } => Ok((!mask).wrapping_add(1)),
        BarInfo::IO { .. } => Err(PciSetupError::Config("a 64-bit BAR turned into an I/O BAR")),
    }
}

/// Keeps the BARs the VMM placed inside a window without overlap, then places the others.
/// Returns where every memory BAR is.
fn assign_bars(
    root: &mut PciRoot,
    devices: &[PciDevice],
    mut allocator: BarAllocator<'_>,
) -> Result<Vec<AddressRange>, PciSetupError> {
    let mut unplaced = Vec::new();
    for device in devices {
        for bar in memory_bars(root, device.function)? {
            if bar.size == 0 {
                continue;
            }
            let range = AddressRange::new(bar.address, bar.size)
                .ok_or(PciSetupError::Overflow(bar.address))?;
            if !allocator.reserve(&range)? {
                unplaced.push((device.function, bar));
            }
        }
    }
    for (function, bar) in unplaced {
        match bar.address_type {
            MemoryBarType::Width64 => {
                let address = allocator.allocate(bar.size, true, bar.prefetchable)?;
                root.set_bar_64(function, bar.index, address);
            }
            MemoryBarType::Below1MiB => {
                return Err(PciSetupError::Config("a BAR must lie below 1 MiB"))
            }
            MemoryBarType::Width32 => {
                let address = allocator.allocate(bar.size, false, bar.prefetchable)?;
                let address32 =
                    u32::try_from(address).map_err(|_| PciSetupError::Overflow(address))?;
                root.set_bar_32(function, bar.index, address32);
            }
        }
    }
    Ok(allocator.used().to_vec())
}
