// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Host tests of the host bridge's decoding.

use super::*;
use crate::fdt::tests::FdtBuilder;
use crate::fdt::FdtError;
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

const RAM: AddressRange = bounds(0x8000_0000, 0x9000_0000);
const MMIO: AddressRange = bounds(0, 0x4000_0000);

/// `start..end` in a constant (`Option::unwrap` is not const in Rust 1.78).
const fn bounds(start: u64, end: u64) -> AddressRange {
    match AddressRange::from_bounds(start, end) {
        Some(range) => range,
        None => panic!("an empty or reversed range"),
    }
}

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

fn decode(blob: &[u8]) -> Result<PciInfo, PciSetupError> {
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
    assert_eq!(
        info.cam_range,
        AddressRange::from(0x40_1000_0000..0x40_2000_0000)
    );
    assert_eq!(info.bus_range, 0..=255);
    assert_eq!(
        info.windows,
        [
            Window {
                space: Space::Io,
                prefetchable: false,
                pci_address: 0,
                cpu_range: AddressRange::from(0x3eff_0000..0x3f00_0000),
            },
            Window {
                space: Space::Memory32,
                prefetchable: false,
                pci_address: 0x1000_0000,
                cpu_range: AddressRange::from(0x1000_0000..0x3eff_0000),
            },
            Window {
                space: Space::Memory64,
                prefetchable: false,
                pci_address: 0x80_0000_0000,
                cpu_range: AddressRange::from(0x80_0000_0000..0x100_0000_0000),
            },
        ]
    );
    assert_eq!(
        info.usable_windows(&RAM, &MMIO),
        Err(PciSetupError::CamOutsideMmio {
            cam: AddressRange::from(0x40_1000_0000..0x40_2000_0000),
            mmio: MMIO
        })
    );
}

#[test]
fn qemu_low_tree_is_usable() {
    let info = decode(QEMU_VIRT_LOW).unwrap();
    assert_eq!(info.cam_range, AddressRange::from(0x3f00_0000..0x4000_0000));
    assert_eq!(info.bus_range, 0..=15);
    let usable = info.usable_windows(&RAM, &MMIO).unwrap();
    assert_eq!(usable.len(), 1);
    assert_eq!(
        usable[0].cpu_range,
        AddressRange::from(0x1000_0000..0x3eff_0000)
    );
    assert_eq!(
        usable[0].pci_range(),
        Some(AddressRange::from(0x1000_0000..0x3eff_0000))
    );
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
        Err(PciSetupError::BadLength("interrupt-map"))
    );
    assert_eq!(
        decode(&bridge_with_interrupts(&[0x800, 0, 0, 1, 2, 0, 4, 4], 3)),
        Err(PciSetupError::UnknownInterruptParent(2))
    );
    assert_eq!(
        decode(&bridge_with_interrupts(&good, 0x7fff_ffff)),
        Err(PciSetupError::BadInterruptParent(1))
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
    assert_eq!(info.cam_range, AddressRange::from(0x1_0000..0x2_0000));
    assert_eq!(info.bus_range, 0..=0);
    assert!(info.windows[1].prefetchable);
    assert_eq!(info.windows[1].space, Space::Memory64);
    // The window above 4 GiB overlaps this RAM-sized test's nothing, but is outside MMIO.
    let usable = info
        .usable_windows(&RAM, &(AddressRange::from(0..0x8000_0000)))
        .unwrap();
    assert_eq!(usable.len(), 1);
    assert_eq!(
        usable[0].cpu_range,
        AddressRange::from(0x7000_0000..0x8000_0000)
    );
}

#[test]
fn hostile_bridges_are_errors() {
    let cases: &[(&[u32], PciSetupError)] = &[
        (
            &[0x0200_0000, 0, 0x8000_0000, 0, 0x8000_0000, 0, 0x1000],
            PciSetupError::OverlapsRam(AddressRange::from(0x8000_0000..0x8000_1000)),
        ),
        (
            &[0x0200_0000, 0, 0x1000_0000, 0, 0x1000_0000, 0, 0],
            PciSetupError::EmptyWindow(0x1000_0000),
        ),
        (
            &[0x0300_0000, 0, 0, 0xffff_ffff, 0xffff_0000, 0x1, 0],
            PciSetupError::Overflow(0xffff_ffff_ffff_0000),
        ),
        (
            &[0x0200_0000, 0, 0xffff_0000, 0, 0x1000_0000, 0, 0x2_0000],
            PciSetupError::BadSpace(0x0200_0000),
        ),
        (
            &[0x0000_0000, 0, 0x1000_0000, 0, 0x1000_0000, 0, 0x1000],
            PciSetupError::BadSpace(0),
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
            PciSetupError::WindowsOverlap(
                AddressRange::from(0x1000_0000..0x1000_2000),
                AddressRange::from(0x1000_1000..0x1000_2000),
            ),
        ),
        (
            &[0x0200_0000, 0, 0x1000_0000],
            PciSetupError::BadLength("ranges"),
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
        Err(PciSetupError::BadCells { address: 2, .. })
    ));
    assert_eq!(
        replace("#address-cells", &[0xffff_ffff]),
        Err(PciSetupError::Fdt(FdtError::BadCells))
    );
    assert!(matches!(
        replace("#size-cells", &[3]),
        Err(PciSetupError::BadCells { size: 3, .. })
    ));
    assert_eq!(
        replace("bus-range", &[2, 1]),
        Err(PciSetupError::BadBusRange(2, 1))
    );
    assert_eq!(
        replace("bus-range", &[0, 256]),
        Err(PciSetupError::BadBusRange(0, 256))
    );
    assert_eq!(
        replace("bus-range", &[0]),
        Err(PciSetupError::BadLength("bus-range"))
    );
    assert_eq!(
        replace("bus-range", &[0, 1]).map(|info| info.cam_range),
        Ok(AddressRange::from(0x1_0000..0x3_0000))
    );
    assert_eq!(
        replace("reg", &[0, 0x1_0000]),
        Err(PciSetupError::BadLength("reg"))
    );
    assert_eq!(
        replace("reg", &[0, 0x1_0000, 0, 0x1000]),
        Err(PciSetupError::CamTooSmall {
            size: 0x1000,
            needed: 0x1_0000
        })
    );
    assert_eq!(
        replace("reg", &[0xffff_ffff, 0xffff_0000, 0, 0x1_0000]),
        Err(PciSetupError::Overflow(0xffff_ffff_ffff_0000))
    );
    let far = replace("reg", &[0x100, 0, 0, 0x1_0000]).unwrap();
    assert!(matches!(
        far.usable_windows(&RAM, &MMIO),
        Err(PciSetupError::CamOutsideMmio { .. })
    ));
    let empty = FdtBuilder::new().begin("").end().build();
    assert_eq!(decode(&empty), Err(PciSetupError::NoHostBridge));
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
        Err(PciSetupError::NoMemory {
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
        Err(PciSetupError::NoMemory {
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
fn bridge_among_devices(cam: u32, window: core::ops::Range<u32>) -> Vec<u8> {
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
        over_ram
            .unwrap()
            .usable_windows(&RAM, &(AddressRange::from(0..0x1_0000_0000))),
        Err(PciSetupError::OverlapsRam(AddressRange::from(
            0x8000_0000..0x8000_1000
        )))
    );
    // Over the GIC's redistributors (its second reg entry).
    assert_eq!(
        refused(0x3f00_0000, 0x810_0000..0x3eff_0000),
        PciSetupError::OverlapsDevice {
            pci: AddressRange::from(0x810_0000..0x3eff_0000),
            device: AddressRange::from(0x80a_0000..0x900_0000),
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
        PciSetupError::OverlapsDevice { node, .. } if node == NodeName::new(b"platform-bus@c000000")
    ));
    // Configuration space over the GIC.
    assert!(matches!(
        refused(0x800_8000, 0x1000_0000..0x3eff_0000),
        PciSetupError::OverlapsDevice { pci, .. } if pci == (AddressRange::from(0x800_8000..0x801_8000))
    ));
    // Configuration space inside a window.
    assert_eq!(
        refused(0x2000_0000, 0x1000_0000..0x3eff_0000),
        PciSetupError::WindowsOverlap(
            AddressRange::from(0x2000_0000..0x2001_0000),
            AddressRange::from(0x1000_0000..0x3eff_0000)
        )
    );
}

#[test]
fn long_node_names_are_cut_in_errors() {
    let name = NodeName::new(&[b'a'; 40]);
    assert_eq!(name.to_string(), ["a".repeat(32), "...".into()].concat());
    assert_eq!(NodeName::new(b"uart\xff").to_string(), "uart\u{fffd}");
}

#[test]
fn bus_zero_lies_below_the_first_bus_of_bus_range() {
    let info = |cam: CamKind, first_bus: u8, start: u64| PciInfo {
        cam,
        cam_range: AddressRange::new(start, cam.bus_size()).unwrap(),
        bus_range: first_bus..=first_bus,
        windows: Vec::new(),
        interrupt_map_mask: [0; 4],
        interrupt_map: Vec::new(),
    };
    assert_eq!(
        info(CamKind::Ecam, 0, 0x3f00_0000).bus_zero_address(),
        Some(0x3f00_0000)
    );
    assert_eq!(
        info(CamKind::Ecam, 2, 0x3f20_0000).bus_zero_address(),
        Some(0x3f00_0000)
    );
    assert_eq!(
        info(CamKind::Cam, 3, 0x7_0000).bus_zero_address(),
        Some(0x4_0000)
    );
    // Bus 0 would be below address 0.
    assert_eq!(info(CamKind::Cam, 2, 0x1_0000).bus_zero_address(), None);
}
