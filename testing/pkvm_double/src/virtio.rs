// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Catching a virtio buffer handed to a device while not shared with the host.
//!
//! In a protected VM the host (crosvm's devices) cannot reach private memory, so a buffer the
//! guest forgot to share fails there, silently or not. QEMU's devices reach everything, so the
//! double checks instead, at the moment a device is told to look: every access to device memory
//! traps to the double, which knows where each virtio-pci device's notify region is (from the
//! devices' capabilities in PCI configuration space). On a write there (a queue notification) it
//! reads the queue's addresses from the device's common configuration, checks that the rings are
//! shared, walks the available ring's new entries and every descriptor chain they start
//! (indirect tables included), and only then performs the write. A buffer that is not shared is
//! named and ends the VM.

/// Reads and writes of guest memory or device registers, as the double does them.
pub trait Bus {
    /// Reads `size` bytes (1, 2, 4 or 8) at `address`, zero-extended.
    fn read(&self, address: u64, size: u64) -> u64;
    /// Writes the low `size` bytes of `value` at `address`.
    fn write(&self, address: u64, size: u64, value: u64);
}

/// The virtio-pci vendor ID.
const VIRTIO_VENDOR: u64 = 0x1af4;
/// PCI status register bit: the device has a capability list.
const STATUS_CAPABILITIES: u64 = 1 << 4;
/// PCI capability ID of a vendor-specific capability, which virtio-pci's are.
const VENDOR_CAPABILITY: u64 = 0x09;
/// `cfg_type` of virtio's common configuration and notification capabilities.
const COMMON_CFG: u64 = 1;
const NOTIFY_CFG: u64 = 2;
/// Devices (slots) on bus 0, the only bus QEMU's virt machine puts devices on.
pub const SLOTS: usize = 32;
/// Capabilities looked at per device at most: a cycle in the list must not hang the double.
const MAX_CAPABILITIES: usize = 48;

/// Offsets in virtio-pci's common configuration structure.
mod common {
    pub const QUEUE_SELECT: u64 = 0x16;
    pub const QUEUE_SIZE: u64 = 0x18;
    pub const QUEUE_DESC: u64 = 0x20;
    pub const QUEUE_DRIVER: u64 = 0x28;
    pub const QUEUE_DEVICE: u64 = 0x30;
}

/// Descriptor flags.
const DESC_NEXT: u64 = 1;
const DESC_INDIRECT: u64 = 4;
/// Bytes of one descriptor.
const DESC_SIZE: u64 = 16;
/// Descriptors looked at in one indirect table at most.
const MAX_INDIRECT: u64 = 1024;

/// A virtio-pci device's registers that matter here, where its BARs put them now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    /// The notification region: start and length.
    pub notify: (u64, u64),
    /// The common configuration structure.
    pub common: u64,
}

/// Finds the virtio-pci devices on bus 0 of the ECAM at `ecam`, as their BARs place them now.
pub fn scan(bus: &impl Bus, ecam: u64) -> [Option<Device>; SLOTS] {
    core::array::from_fn(|slot| scan_function(bus, ecam + ((slot as u64) << 15)))
}

/// The virtio device at configuration space `config`, if it is one.
fn scan_function(bus: &impl Bus, config: u64) -> Option<Device> {
    if bus.read(config, 2) != VIRTIO_VENDOR || bus.read(config + 6, 2) & STATUS_CAPABILITIES == 0 {
        return None;
    }
    let (mut common, mut notify) = (None, None);
    let mut pointer = bus.read(config + 0x34, 1) & 0xfc;
    for _ in 0..MAX_CAPABILITIES {
        if pointer < 0x40 {
            break;
        }
        let capability = config + pointer;
        if bus.read(capability, 1) == VENDOR_CAPABILITY {
            let bar = bus.read(capability + 4, 1);
            let offset = bus.read(capability + 8, 4);
            let length = bus.read(capability + 12, 4);
            let base = bar_address(bus, config, bar);
            match (bus.read(capability + 3, 1), base) {
                (COMMON_CFG, Some(base)) => common = Some(base + offset),
                (NOTIFY_CFG, Some(base)) => notify = Some((base + offset, length)),
                _ => {}
            }
        }
        pointer = bus.read(capability + 1, 1) & 0xfc;
    }
    Some(Device {
        notify: notify?,
        common: common?,
    })
}

/// Where memory BAR `bar` of the function at `config` points, if it is a memory BAR that has
/// been given an address.
fn bar_address(bus: &impl Bus, config: u64, bar: u64) -> Option<u64> {
    if bar >= 6 {
        return None;
    }
    let register = config + 0x10 + 4 * bar;
    let low = bus.read(register, 4);
    if low & 1 != 0 {
        return None;
    }
    let high = match (low >> 1) & 0b11 {
        0b10 if bar < 5 => bus.read(register + 4, 4),
        _ => 0,
    };
    let address = high << 32 | (low & !0xf);
    (address != 0).then_some(address)
}

/// The device whose notification region holds `address`.
pub fn notified(devices: &[Option<Device>], address: u64) -> Option<Device> {
    devices.iter().flatten().copied().find(|device| {
        let (start, length) = device.notify;
        address >= start && address - start < length
    })
}

/// One split virtqueue, as the device's common configuration describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queue {
    pub size: u64,
    pub desc: u64,
    pub driver: u64,
    pub device: u64,
}

impl Queue {
    /// Queue `index` of `device`, read through its common configuration (selecting it, then
    /// putting the driver's selection back).
    pub fn read(bus: &impl Bus, device: &Device, index: u64) -> Self {
        let register = |offset| device.common + offset;
        let read64 =
            |offset| bus.read(register(offset), 4) | bus.read(register(offset + 4), 4) << 32;
        let selected = bus.read(register(common::QUEUE_SELECT), 2);
        bus.write(register(common::QUEUE_SELECT), 2, index);
        let queue = Self {
            size: bus.read(register(common::QUEUE_SIZE), 2),
            desc: read64(common::QUEUE_DESC),
            driver: read64(common::QUEUE_DRIVER),
            device: read64(common::QUEUE_DEVICE),
        };
        bus.write(register(common::QUEUE_SELECT), 2, selected);
        queue
    }
}

/// Memory a device was given that the guest had not shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unshared {
    /// What it is: a ring, a descriptor table or a buffer.
    pub what: &'static str,
    pub ipa: u64,
    pub len: u64,
}

/// Checks what a notification hands `queue`'s device: its rings, and the buffers of the
/// available-ring entries from index `from` (the last one checked) to the ring's current index,
/// which it returns. `shared` says whether a range of guest memory is shared; nothing is read
/// before it has been found shared (hence inside guest RAM).
pub fn check_notification(
    bus: &impl Bus,
    queue: &Queue,
    from: u16,
    shared: impl Fn(u64, u64) -> bool,
) -> Result<u16, Unshared> {
    let size = queue.size;
    if size == 0 {
        return Ok(from);
    }
    let check = |what, ipa, len| {
        if shared(ipa, len) {
            Ok(())
        } else {
            Err(Unshared { what, ipa, len })
        }
    };
    check("descriptor table", queue.desc, DESC_SIZE * size)?;
    // flags, idx, the ring, used_event.
    check("available ring", queue.driver, 6 + 2 * size)?;
    // flags, idx, the ring of (id, len), avail_event.
    check("used ring", queue.device, 6 + 8 * size)?;
    let index = bus.read(queue.driver + 2, 2) as u16;
    let new_entries = u64::from(index.wrapping_sub(from));
    // More new entries than the ring holds: the queue was set up again, its index restarted
    // from 0; check what it has added since.
    let pending = if new_entries <= size {
        new_entries
    } else {
        u64::from(index).min(size)
    };
    for entry in 0..pending {
        let position = u64::from(index.wrapping_sub((pending - entry) as u16)) % size;
        let head = bus.read(queue.driver + 4 + 2 * position, 2);
        check_chain(bus, queue.desc, size, head, &check)?;
    }
    Ok(index)
}

/// Checks the buffers of the descriptor chain from `head` in the table at `table` (`size`
/// entries), and those of any indirect table it points to.
fn check_chain(
    bus: &impl Bus,
    table: u64,
    size: u64,
    head: u64,
    check: &impl Fn(&'static str, u64, u64) -> Result<(), Unshared>,
) -> Result<(), Unshared> {
    let mut next = head;
    for _ in 0..size {
        if next >= size {
            break;
        }
        let descriptor = table + DESC_SIZE * next;
        let (address, len) = (bus.read(descriptor, 8), bus.read(descriptor + 8, 4));
        let flags = bus.read(descriptor + 12, 2);
        if flags & DESC_INDIRECT != 0 {
            check("indirect descriptor table", address, len)?;
            let entries = (len / DESC_SIZE).min(MAX_INDIRECT);
            for entry in 0..entries {
                let indirect = address + DESC_SIZE * entry;
                check("buffer", bus.read(indirect, 8), bus.read(indirect + 8, 4))?;
            }
        } else {
            check("buffer", address, len)?;
        }
        if flags & DESC_NEXT == 0 {
            break;
        }
        next = bus.read(descriptor + 14, 2);
    }
    Ok(())
}

/// The last available index checked for each queue, by descriptor table address.
pub struct Progress {
    queues: [(u64, u16); 16],
    next_slot: usize,
}

impl Progress {
    pub const fn new() -> Self {
        Self {
            queues: [(0, 0); 16],
            next_slot: 0,
        }
    }

    /// The last index checked for the queue at `desc` (0 for a queue never seen).
    pub fn last(&self, desc: u64) -> u16 {
        self.queues
            .iter()
            .find(|(table, _)| *table == desc)
            .map_or(0, |&(_, index)| index)
    }

    /// Records `index` as checked for the queue at `desc`, forgetting the oldest queue if all
    /// slots are taken (it is then checked from its ring's start again, which costs time only).
    pub fn record(&mut self, desc: u64, index: u16) {
        if let Some(slot) = self.queues.iter_mut().find(|(table, _)| *table == desc) {
            slot.1 = index;
            return;
        }
        self.queues[self.next_slot] = (desc, index);
        self.next_slot = (self.next_slot + 1) % self.queues.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// Byte-addressed memory, zero where never written.
    #[derive(Default)]
    struct FakeBus(RefCell<BTreeMap<u64, u8>>);

    impl Bus for FakeBus {
        fn read(&self, address: u64, size: u64) -> u64 {
            let bytes = self.0.borrow();
            (0..size).fold(0, |value, byte| {
                value | u64::from(*bytes.get(&(address + byte)).unwrap_or(&0)) << (8 * byte)
            })
        }
        fn write(&self, address: u64, size: u64, value: u64) {
            let mut bytes = self.0.borrow_mut();
            for byte in 0..size {
                bytes.insert(address + byte, (value >> (8 * byte)) as u8);
            }
        }
    }

    const ECAM: u64 = 0x3f00_0000;

    /// A virtio device in slot 2 with a 64-bit BAR 4 at 0x1000_0000: common configuration at
    /// +0, notifications at +0x3000 (0x1000 long). The capability list loops back on itself.
    fn device_bus() -> FakeBus {
        let bus = FakeBus::default();
        let config = ECAM + (2 << 15);
        bus.write(config, 2, VIRTIO_VENDOR);
        bus.write(config + 6, 2, STATUS_CAPABILITIES);
        bus.write(config + 0x10 + 16, 4, 0b100);
        bus.write(config + 0x10 + 20, 4, 0);
        bus.write(config + 0x10 + 16, 4, 0x1000_0004);
        bus.write(config + 0x34, 1, 0x40);
        for (pointer, next, cfg_type, offset, length) in [
            (0x40, 0x50, COMMON_CFG, 0, 0x38),
            (0x50, 0x40, NOTIFY_CFG, 0x3000, 0x1000),
        ] {
            let capability = config + pointer;
            bus.write(capability, 1, VENDOR_CAPABILITY);
            bus.write(capability + 1, 1, next);
            bus.write(capability + 3, 1, cfg_type);
            bus.write(capability + 4, 1, 4);
            bus.write(capability + 8, 4, offset);
            bus.write(capability + 12, 4, length);
        }
        bus
    }

    #[test]
    fn finds_the_notify_region_through_a_looping_capability_list() {
        let bus = device_bus();
        let devices = scan(&bus, ECAM);
        let expected = Device {
            notify: (0x1000_3000, 0x1000),
            common: 0x1000_0000,
        };
        assert_eq!(devices.iter().flatten().count(), 1);
        assert_eq!(notified(&devices, 0x1000_3ffe), Some(expected));
        assert_eq!(notified(&devices, 0x1000_4000), None);
        assert_eq!(
            notified(&devices, 0x1000_0016),
            None,
            "common configuration"
        );
    }

    /// A queue of 4 at 0x8000_0000 whose available ring holds `chains` (descriptor indexes).
    fn queue_with(bus: &FakeBus, chains: &[&[(u64, u64, u64)]]) -> Queue {
        let queue = Queue {
            size: 4,
            desc: 0x8000_0000,
            driver: 0x8000_1000,
            device: 0x8000_2000,
        };
        let mut slot = 0;
        for (entry, chain) in chains.iter().enumerate() {
            bus.write(queue.driver + 4 + 2 * entry as u64, 2, slot);
            for (link, &(address, len, flags)) in chain.iter().enumerate() {
                let descriptor = queue.desc + 16 * slot;
                let more = link + 1 < chain.len();
                bus.write(descriptor, 8, address);
                bus.write(descriptor + 8, 4, len);
                bus.write(descriptor + 12, 2, flags | if more { DESC_NEXT } else { 0 });
                bus.write(descriptor + 14, 2, slot + 1);
                slot += 1;
            }
        }
        bus.write(queue.driver + 2, 2, chains.len() as u64);
        queue
    }

    /// Shared: the rings' pages and 0x8010_0000..0x8020_0000.
    fn shared(ipa: u64, len: u64) -> bool {
        let end = ipa + len;
        (0x8000_0000..=0x8000_3000).contains(&ipa) && end <= 0x8000_3000
            || ipa >= 0x8010_0000 && end <= 0x8020_0000
    }

    #[test]
    fn a_chain_of_shared_buffers_passes() {
        let bus = FakeBus::default();
        let queue = queue_with(&bus, &[&[(0x8010_0000, 16, 0), (0x8010_1000, 512, 2)]]);
        assert_eq!(check_notification(&bus, &queue, 0, shared), Ok(1));
        assert_eq!(
            check_notification(&bus, &queue, 1, shared),
            Ok(1),
            "nothing new"
        );
    }

    #[test]
    fn an_unshared_buffer_in_a_chain_is_named() {
        let bus = FakeBus::default();
        let queue = queue_with(
            &bus,
            &[
                &[(0x8010_0000, 16, 0)],
                &[(0x8010_0000, 16, 0), (0x8030_0000, 512, 2)],
            ],
        );
        assert_eq!(
            check_notification(&bus, &queue, 0, shared),
            Err(Unshared {
                what: "buffer",
                ipa: 0x8030_0000,
                len: 512
            })
        );
        assert_eq!(
            check_notification(&bus, &queue, 2, shared),
            Ok(2),
            "already checked"
        );
    }

    #[test]
    fn indirect_tables_and_rings_are_checked() {
        let bus = FakeBus::default();
        let queue = queue_with(&bus, &[&[(0x8010_0000, 32, DESC_INDIRECT)]]);
        bus.write(0x8010_0000, 8, 0x8010_0800);
        bus.write(0x8010_0000 + 8, 4, 8);
        bus.write(0x8010_0000 + 16, 8, 0x8040_0000);
        bus.write(0x8010_0000 + 24, 4, 8);
        assert_eq!(
            check_notification(&bus, &queue, 0, shared),
            Err(Unshared {
                what: "buffer",
                ipa: 0x8040_0000,
                len: 8
            })
        );
        let unshared_ring = Queue {
            driver: 0x8050_0000,
            ..queue
        };
        assert_eq!(
            check_notification(&bus, &unshared_ring, 0, shared)
                .unwrap_err()
                .what,
            "available ring"
        );
    }

    #[test]
    fn progress_is_kept_per_queue() {
        let mut progress = Progress::new();
        assert_eq!(progress.last(0x8000_0000), 0);
        progress.record(0x8000_0000, 7);
        progress.record(0x9000_0000, 3);
        assert_eq!(progress.last(0x8000_0000), 7);
        for queue in 0..16 {
            progress.record(0xa000_0000 + queue * 0x1000, 1);
        }
        assert_eq!(
            progress.last(0x8000_0000),
            0,
            "forgotten, checked from the start"
        );
    }

    #[test]
    fn reading_a_queue_restores_the_drivers_selection() {
        let bus = device_bus();
        let device = notified(&scan(&bus, ECAM), 0x1000_3000).unwrap();
        bus.write(device.common + common::QUEUE_SELECT, 2, 5);
        let queue = Queue::read(&bus, &device, 1);
        assert_eq!(queue.size, 0);
        assert_eq!(bus.read(device.common + common::QUEUE_SELECT, 2), 5);
    }
}
