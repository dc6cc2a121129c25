// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the PCI decoder on an arbitrary tree (`PciInfo::from_fdt`, interrupt lookup,
//! usable windows), then the BAR allocator over the windows found, checking the invariants each
//! promises.
//!
//! Input: a device tree, then (after its `totalsize`) a script for the allocator: per 3 bytes,
//! an operation and a size exponent or a window and offset. Without a script (the seeds), a
//! fixed one runs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vmbase::fdt::{self, Fdt};
use vmbase::layout::crosvm::{MEM_START, MMIO_RANGE};
use vmbase::memory::AddressRange;
use vmbase::pci::{BarAllocator, PciInfo, Space, Window};
use vmbase_fuzz::Aligned;

/// What runs when the input has no script: a few BARs of each kind.
const DEFAULT_SCRIPT: &[u8] = &[0, 12, 0, 1, 8, 0, 2, 16, 0, 3, 4, 0, 4, 0, 0, 5, 1, 7];
/// The RAM that windows must stay out of: crosvm's first GiB of it.
const RAM: AddressRange = AddressRange::new(MEM_START as u64, 1 << 30).unwrap();
/// At most this many interrupt-map entries are looked up again, and BARs allocated.
const MAX_CHECKS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let size = fdt::total_size(data).unwrap_or(data.len()).min(data.len());
    let (tree, script) = data.split_at(size);
    let memory = Aligned::new(tree, tree.len());
    let Ok(fdt) = Fdt::new(memory.bytes()) else {
        return;
    };
    let Ok(info) = PciInfo::from_fdt(&fdt) else {
        return;
    };
    check_info(&info);
    check_interrupts(&info, script);
    let mmio = AddressRange::from_usize_range(&MMIO_RANGE).unwrap();
    if let Ok(usable) = info.usable_windows(&RAM, &mmio) {
        assert!(!usable.is_empty());
        for window in &usable {
            assert!(window.is_memory());
            assert!(mmio.covers(&window.cpu_range));
            assert!(!window.cpu_range.overlaps(&RAM));
            assert_eq!(window.pci_address, window.cpu_range.start());
            assert!(info.windows.contains(window));
        }
        allocate(&usable, script);
    }
    // Any decoded windows, translated or not, are fair game for the allocator.
    allocate(&info.windows, script);
});

/// What a decoded bridge promises: non-empty windows that neither overflow nor overlap each
/// other or configuration space; 32-bit windows below 4 GiB on the bus.
fn check_info(info: &PciInfo) {
    let buses = u64::from(*info.bus_range.end() - *info.bus_range.start()) + 1;
    assert_eq!(info.cam_range.len(), buses * info.cam.bus_size());
    for (index, window) in info.windows.iter().enumerate() {
        assert!(!window.cpu_range.is_empty());
        assert!(window.space != Space::Configuration);
        let pci = window.pci_range().expect("a window that ends on the bus");
        assert!(window.space != Space::Memory32 || pci.end() <= 1 << 32);
        assert!(!window.cpu_range.overlaps(&info.cam_range));
        for other in &info.windows[index + 1..] {
            assert!(!window.cpu_range.overlaps(&other.cpu_range));
        }
    }
}

/// Looks up each entry's own unit address and pin (and one taken from the script): a lookup
/// finds an entry that matches under the mask, and finds one whenever an entry can match.
fn check_interrupts(info: &PciInfo, script: &[u8]) {
    let mask = info.interrupt_map_mask;
    let masked = |key: [u32; 4]| core::array::from_fn::<u32, 4, _>(|i| key[i] & mask[i]);
    let mut queries: Vec<(u8, u8, u8, u32)> = info
        .interrupt_map
        .iter()
        .take(MAX_CHECKS)
        .map(|entry| {
            let hi = entry.child_address[0];
            (
                (hi >> 16) as u8,
                (hi >> 11) as u8 & 0x1f,
                (hi >> 8) as u8 & 7,
                entry.child_pin,
            )
        })
        .collect();
    if let [bus, device, function, pin, ..] = *script {
        queries.push((bus, device & 0x1f, function & 7, u32::from(pin)));
    }
    for (bus, device, function, pin) in queries {
        let phys_hi = u32::from(bus) << 16 | u32::from(device) << 11 | u32::from(function) << 8;
        let wanted = masked([phys_hi, 0, 0, pin]);
        let key = |entry: &vmbase::pci::InterruptMapEntry| {
            let [hi, mid, lo] = entry.child_address;
            masked([hi, mid, lo, entry.child_pin])
        };
        let found = info.interrupt(bus, device, function, pin);
        let first = info.interrupt_map.iter().find(|entry| key(entry) == wanted);
        assert_eq!(found, first);
        if let Some(entry) = found {
            assert!(!entry.parent_interrupt().is_empty());
        }
    }
}

/// Runs `script` on an allocator over `windows`: every BAR it hands out or keeps is at a
/// non-zero address aligned to its size, in a window that suits it, apart from all others.
fn allocate(windows: &[Window], script: &[u8]) {
    let script = if script.is_empty() {
        DEFAULT_SCRIPT
    } else {
        script
    };
    let mut allocator = BarAllocator::new(windows);
    let mut given: Vec<AddressRange> = Vec::new();
    for step in script.chunks_exact(3).take(MAX_CHECKS) {
        let size = 1u64.checked_shl(u32::from(step[1] % 64)).unwrap_or(0);
        let (is_64bit, prefetchable) = (step[0] & 1 != 0, step[0] & 2 != 0);
        if step[0] & 4 != 0 {
            // A BAR the VMM placed: at an offset into a window.
            let Some(window) = windows.get(usize::from(step[2]) % windows.len().max(1)) else {
                continue;
            };
            let start = window
                .pci_address
                .saturating_add(size.saturating_mul(u64::from(step[2])));
            let range = AddressRange::from_bounds(start, start.saturating_add(size)).unwrap();
            if allocator.reserve(&range) == Ok(true) {
                assert_ne!(range.start(), 0);
                assert!(allocator.in_window(&range));
                given.push(range);
            }
            continue;
        }
        let Ok(start) = allocator.allocate(size, is_64bit, prefetchable) else {
            continue;
        };
        let range = AddressRange::new(start, size).expect("a BAR that ends in the address space");
        assert_ne!(start, 0, "a BAR at address 0");
        assert_eq!(start % size, 0, "a misaligned BAR");
        assert!(
            is_64bit || range.end() <= 1 << 32,
            "a 32-bit BAR above 4 GiB"
        );
        assert!(
            windows.iter().any(|w| {
                w.is_memory()
                    && (prefetchable || !w.prefetchable)
                    && w.pci_range().is_some_and(|pci| pci.covers(&range))
            }),
            "BAR {range:#x?} is in no suitable window"
        );
        given.push(range);
    }
    for (index, range) in given.iter().enumerate() {
        assert!(given[index + 1..]
            .iter()
            .all(|other| !range.overlaps(other)));
    }
    let used = allocator.used();
    assert!(used.windows(2).all(|pair| pair[0].end() <= pair[1].start()));
    assert!(given.iter().all(|range| used.contains(range)));
}
