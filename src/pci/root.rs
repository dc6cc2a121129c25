// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The running PCI root complex: configuration space and windows mapped as device memory, BARs
//! assigned, devices enumerated.

use super::{
    bar_pages, capability_loop, BarAllocator, CamKind, PciInfo, PciSetupError, TransportError,
};
use crate::fdt::Fdt;
use crate::memory::{AddressRange, MemoryTracker};
use crate::virtio::VirtioTransport;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::{Deref, Range};
use core::ptr::NonNull;
use safe_mmio::fields::ReadPureWrite;
use safe_mmio::UniqueMmioPointer;
use spin::mutex::SpinMutex;
use virtio_drivers::transport::pci::bus::{
    self, BarInfo, Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, HeaderType,
    MemoryBarType,
};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::DeviceType;

/// What a configuration read of an absent function returns.
const ABSENT: u32 = u32::MAX;

/// Configuration space reached through memory (CAM or ECAM), limited to the buses the device
/// tree gave: functions on other buses read as absent and ignore writes.
///
/// There is one `UniqueMmioPointer` to configuration space, as `safe-mmio` requires, however many
/// copies `virtio-drivers` makes ([`ConfigurationAccess::unsafe_clone`], for enumerating a bus
/// while the bus is borrowed): they share it, one access at a time, and a copy only reads.
pub struct CamAccess {
    mmio: Arc<SpinMutex<UniqueMmioPointer<'static, [ReadPureWrite<u32>]>>>,
    /// Whether writes go through: false for the read-only copies.
    writable: bool,
    cam: CamKind,
    first_bus: u8,
    buses: usize,
}

impl CamAccess {
    /// Configuration space of `info`'s buses at its CPU address, or `None` if that is 0 (or
    /// more than the guest can address).
    ///
    /// # Safety
    ///
    /// `info.cam_range` must be mapped as device memory for the rest of the program, hold the
    /// bridge's configuration space, and be accessed through nothing else.
    pub unsafe fn new(info: &PciInfo) -> Option<Self> {
        let words = usize::try_from(info.cam_range.len() / 4).ok()?;
        let base =
            NonNull::new(usize::try_from(info.cam_range.start()).ok()? as *mut ReadPureWrite<u32>)?;
        // SAFETY: The caller promises the range is mapped device memory used by nothing else;
        // this is the only pointer made to it, and the copies share it.
        let mmio = unsafe { UniqueMmioPointer::new(NonNull::slice_from_raw_parts(base, words)) };
        Some(Self {
            mmio: Arc::new(SpinMutex::new(mmio)),
            writable: true,
            cam: info.cam,
            first_bus: *info.bus_range.start(),
            buses: usize::from(*info.bus_range.end() - *info.bus_range.start()) + 1,
        })
    }

    /// The word index of `register` of `function`, if it is in range.
    fn word_index(&self, function: DeviceFunction, register: u8) -> Option<usize> {
        let bus = usize::from(function.bus.checked_sub(self.first_bus)?);
        if bus >= self.buses || !function.valid() {
            return None;
        }
        let devfn = (bus << 8) | usize::from(function.device) << 3 | usize::from(function.function);
        let offset = (devfn << self.cam.function_shift()) | usize::from(register & !3);
        Some(offset / 4)
    }
}

impl ConfigurationAccess for CamAccess {
    fn read_word(&self, function: DeviceFunction, register: u8) -> u32 {
        let Some(index) = self.word_index(function, register) else {
            return ABSENT;
        };
        let mmio = self.mmio.lock();
        Deref::deref(&*mmio)
            .get(index)
            .map_or(ABSENT, |word| word.read())
    }

    fn write_word(&mut self, function: DeviceFunction, register: u8, data: u32) {
        if !self.writable {
            return;
        }
        if let Some(index) = self.word_index(function, register) {
            if let Some(mut word) = self.mmio.lock().get(index) {
                word.write(data);
            }
        }
    }

    /// A copy that shares this one's MMIO pointer and ignores writes. Being safe to make and to
    /// use, it asks nothing of the caller beyond what the trait does.
    unsafe fn unsafe_clone(&self) -> Self {
        Self {
            mmio: Arc::clone(&self.mmio),
            writable: false,
            cam: self.cam,
            first_bus: self.first_bus,
            buses: self.buses,
        }
    }
}

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
    root: bus::PciRoot<CamAccess>,
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
        // SAFETY: The tracker just mapped configuration space as device memory, and refuses to
        // map it again; only this CamAccess uses it.
        let cam = unsafe { CamAccess::new(&info) }
            .ok_or(PciSetupError::Config("configuration space at address 0"))?;
        let mut root = bus::PciRoot::new(cam);
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
        if let Some(offset) = capability_loop(&self.root, function) {
            return Err(TransportError::CapabilityLoop { function, offset });
        }
        let transport = PciTransport::new::<crate::virtio::VirtioHal, _>(&mut self.root, function)?;
        Ok(VirtioTransport::new(transport))
    }
}

fn bar_error(error: bus::PciError) -> PciSetupError {
    match error {
        bus::PciError::InvalidBarType => PciSetupError::Config("invalid BAR type"),
    }
}

/// Keeps the BARs the VMM placed inside a window without overlap, then places the others.
/// Returns where every memory BAR is.
fn assign_bars(
    root: &mut bus::PciRoot<CamAccess>,
    devices: &[PciDevice],
    mut allocator: BarAllocator<'_>,
) -> Result<Vec<AddressRange>, PciSetupError> {
    let mut unplaced = Vec::new();
    for device in devices {
        let bars = root.bars(device.function).map_err(bar_error)?;
        for (index, bar) in bars.into_iter().enumerate() {
            let Some(BarInfo::Memory {
                address_type,
                prefetchable,
                address,
                size,
            }) = bar
            else {
                continue;
            };
            if size == 0 {
                continue;
            }
            let range = AddressRange::new(address, size).ok_or(PciSetupError::Overflow(address))?;
            if !allocator.reserve(&range)? {
                unplaced.push((
                    device.function,
                    index as u8,
                    address_type,
                    prefetchable,
                    size,
                ));
            }
        }
    }
    for (function, index, address_type, prefetchable, size) in unplaced {
        match address_type {
            MemoryBarType::Width64 => {
                let address = allocator.allocate(size, true, prefetchable)?;
                root.set_bar_64(function, index, address);
            }
            MemoryBarType::Below1MiB => {
                return Err(PciSetupError::Config("a BAR must lie below 1 MiB"))
            }
            MemoryBarType::Width32 => {
                let address = allocator.allocate(size, false, prefetchable)?;
                let address32 =
                    u32::try_from(address).map_err(|_| PciSetupError::Overflow(address))?;
                root.set_bar_32(function, index, address32);
            }
        }
    }
    Ok(allocator.used().to_vec())
}
