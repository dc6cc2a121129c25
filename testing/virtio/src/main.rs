// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! vmbase_virtio: finds PCI in the device tree and runs the device test that `/chosen/bootargs`
//! names (`virtio=TEST`); it powers off when the test passes and reboots when anything fails.

#![no_main]
#![no_std]

extern crate alloc;

mod unshared;

use alloc::vec;
use core::cell::UnsafeCell;
use core::fmt::Write;
use core::ops::Range;
use vmbase::fdt::Fdt;
use vmbase::layout::Layout;
use vmbase::memory::{whole_pages, MemoryTracker};
use vmbase::paging::PageTable;
use vmbase::pci::PciBus;
use vmbase::virtio::blk::{Disk, SECTOR};
use vmbase::virtio::console::Console;
use vmbase::virtio::rng::Rng;
use vmbase::virtio::DeviceErrorKind;
use vmbase::{configure_heap, main, power, println};

const HEAP_SIZE: usize = 1024 * 1024;
configure_heap!(HEAP_SIZE);
/// The DMA pool, from the heap (QEMU's tree has no `restricted-dma-pool`).
const DMA_POOL_SIZE: usize = 512 * 1024;
/// The largest block request: its bounce buffer must fit in the pool beside the queues.
const MAX_REQUEST: usize = 128 * 1024;

/// Where the `write` test writes in the second disk, in sectors: an odd start, and more than
/// one request's worth so that requests of different sizes follow one another.
const WRITE_SECTORS: Range<u64> = 3..3 + 700;

/// How long the `timeout` test waits for its silent disk.
const TIMEOUT_MS: u64 = 200;

main!(main);

/// Runs the test named in the boot arguments.
pub fn main(_: u64, _: u64, _: u64, _: u64) {
    let Some(fdt) = vmbase::entry::boot_fdt().and_then(|blob| Fdt::new(blob).ok()) else {
        fail(format_args!("no valid device tree"));
    };
    let test = fdt
        .property(b"/chosen", b"bootargs")
        .ok()
        .flatten()
        .and_then(test_from_bootargs)
        .unwrap_or("pci");
    println!("virtio guest: running {test}");
    let tracker = activate_page_table(&fdt);
    let bench_memory = (test == "bench").then(|| bench_memory(tracker));
    if bench_memory.is_none() {
        match vmbase::virtio::init_dma_pool_from_fdt(&fdt, tracker, DMA_POOL_SIZE) {
            Ok(pool) => println!("virtio guest: DMA pool {:#x}..{:#x}", pool.start, pool.end),
            Err(error) => fail(format_args!("DMA pool: {error}")),
        }
    }
    let mut pci = match PciBus::new(&fdt, tracker) {
        Ok(pci) => pci,
        Err(error) => fail(format_args!("PCI: {error}")),
    };
    for device in pci.devices() {
        println!(
            "virtio guest: PCI {} {:04x}:{:04x} {:?}",
            device.function,
            device.info.vendor_id,
            device.info.device_id,
            device.virtio_type()
        );
    }
    match test {
        "pci" => {}
        "disks" => check_disks(&mut pci),
        "read-only" => check_read_only(&mut pci),
        "rng" => check_rng(&mut pci),
        "timeout" => check_timeout(&mut pci),
        "console" => check_console(&mut pci),
        "unshared-buffer" => unshared::run(&mut pci),
        "bench" => {
            if let Some((source, target)) = bench_memory {
                bench(&mut pci, source, target);
            }
        }
        _ => fail(format_args!("unknown test {test}")),
    }
    println!("virtio guest: {test} passed");
}

/// Reports and reboots: the host sees a failure.
fn fail(reason: core::fmt::Arguments) -> ! {
    println!("virtio guest: {reason}");
    power::reboot()
}

/// The `TEST` of the first `virtio=TEST` in the NUL-terminated `bootargs`.
fn test_from_bootargs(bootargs: &[u8]) -> Option<&str> {
    let text = core::str::from_utf8(bootargs.split(|&b| b == 0).next()?).ok()?;
    text.split_ascii_whitespace()
        .find_map(|arg| arg.strip_prefix("virtio="))
}

/// The first `/memory` range, rounded in to pages.
fn ram(fdt: &Fdt) -> Option<Range<usize>> {
    whole_pages(&fdt.memory().ok()?.next()?.ok()?)
}

/// Maps the image and the console, and makes the page table live with a tracker over RAM and
/// the MMIO GiB, where the PCI root maps what it needs.
fn activate_page_table(fdt: &Fdt) -> &'static mut MemoryTracker {
    let layout = Layout::current();
    let mut page_table = PageTable::new();
    page_table
        .map_device(&vmbase::console::device().mmio_range())
        .unwrap();
    page_table.map_image(&layout).unwrap();
    let Some(ram) = ram(fdt) else {
        fail(format_args!("no RAM in /memory"));
    };
    let tracker = match MemoryTracker::new(page_table, ram, vmbase::console::MMIO_RANGE) {
        Ok(tracker) => tracker,
        Err(error) => fail(format_args!("memory tracker: {error}")),
    };
    // SAFETY: The table maps the console, the image, .data, .bss (heap and page tables
    // included), both stacks and the FDT: everything this guest touches before the tracker maps
    // more.
    unsafe { tracker.activate() }
}

/// The virtio-blk disks, in bus order (the order of the VM config's `disks`).
fn disks(pci: &mut PciBus) -> vec::Vec<Disk> {
    Disk::find_all(pci, MAX_REQUEST).unwrap_or_else(|error| fail(format_args!("{error}")))
}

/// Byte `offset` of the image the host test writes into the first disk (the last 8 bytes of
/// which hold the FNV-1a checksum of the others instead).
fn read_pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(0x9e37_79b9) >> 13) as u8 ^ (offset >> 9) as u8
}

/// Byte `offset` of what this guest writes into the second disk.
fn write_pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(0x0100_0193) >> 7) as u8 ^ 0x5a ^ (offset >> 9) as u8
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// Reads the first disk whole and checks the pattern and checksum; writes the second pattern
/// into [`WRITE_SECTORS`] of the second disk, in requests of every size up to the largest, and
/// reads it back.
fn check_disks(pci: &mut PciBus) {
    let mut disks = disks(pci);
    let [source, target] = disks.as_mut_slice() else {
        fail(format_args!("expected 2 disks, found {}", disks.len()));
    };
    let size = source.sectors() * SECTOR as u64;
    println!(
        "virtio guest: disk {} has {} sectors (read-only: {})",
        source.function(),
        source.sectors(),
        source.read_only()
    );
    let mut buffer = vec![0u8; source.max_request()];
    let mut hash = FNV_OFFSET_BASIS;
    let mut stored = [0u8; 8];
    let mut offset = 0u64;
    while offset < size {
        let len = (size - offset).min(buffer.len() as u64) as usize;
        if let Err(error) = source.read(offset / SECTOR as u64, &mut buffer[..len]) {
            fail(format_args!("{error}"));
        }
        for (index, &byte) in buffer[..len].iter().enumerate() {
            let at = offset + index as u64;
            if at >= size - 8 {
                stored[(at - (size - 8)) as usize] = byte;
                continue;
            }
            if byte != read_pattern(at) {
                fail(format_args!("byte {at:#x} of the disk is {byte:#04x}"));
            }
            hash = (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
        offset += len as u64;
    }
    if u64::from_le_bytes(stored) != hash {
        fail(format_args!(
            "checksum {hash:#x}, the disk says {stored:02x?}"
        ));
    }
    println!("virtio guest: read {size} bytes, checksum {hash:#018x} matches");

    let mut sector = WRITE_SECTORS.start;
    let mut request_sectors = 1;
    while sector < WRITE_SECTORS.end {
        let count = request_sectors.min(WRITE_SECTORS.end - sector);
        let len = count as usize * SECTOR;
        let start = sector * SECTOR as u64;
        for (index, byte) in buffer[..len].iter_mut().enumerate() {
            *byte = write_pattern(start + index as u64);
        }
        if let Err(error) = target.write(sector, &buffer[..len]) {
            fail(format_args!("{error}"));
        }
        sector += count;
        request_sectors = (request_sectors * 4).min((MAX_REQUEST / SECTOR) as u64);
    }
    let mut sector = WRITE_SECTORS.start;
    while sector < WRITE_SECTORS.end {
        let count = ((MAX_REQUEST / SECTOR) as u64).min(WRITE_SECTORS.end - sector);
        let len = count as usize * SECTOR;
        if let Err(error) = target.read(sector, &mut buffer[..len]) {
            fail(format_args!("{error}"));
        }
        let start = sector * SECTOR as u64;
        if let Some(index) = (0..len).find(|&i| buffer[i] != write_pattern(start + i as u64)) {
            fail(format_args!(
                "read back byte {:#x} wrong",
                start + index as u64
            ));
        }
        sector += count;
    }
    println!(
        "virtio guest: wrote and read back sectors {}..{} of disk {}",
        WRITE_SECTORS.start,
        WRITE_SECTORS.end,
        target.function()
    );
}

/// Writing to a read-only disk must fail with an error that names the disk and the request.
fn check_read_only(pci: &mut PciBus) {
    let mut disks = disks(pci);
    let Some(disk) = disks.first_mut() else {
        fail(format_args!("no disk"));
    };
    let data = [0xa5u8; SECTOR];
    match disk.write(0, &data) {
        Ok(()) => fail(format_args!("the read-only disk accepted a write")),
        Err(error) if error.kind == DeviceErrorKind::ReadOnly => {
            println!("virtio guest: write refused: {error}");
        }
        Err(error) => fail(format_args!("unexpected error: {error}")),
    }
    // A request the size of the whole DMA pool (which also holds the queue) has no room.
    static LARGE: LargeBuffer = LargeBuffer(UnsafeCell::new([0; DMA_POOL_SIZE]));
    // SAFETY: This is the only use of LARGE, and each boot runs one test, once.
    let large = unsafe { &mut *LARGE.0.get() };
    disk.set_max_request(DMA_POOL_SIZE);
    match disk.read(0, large) {
        Err(error) if error.kind == DeviceErrorKind::NoDmaMemory => {
            println!("virtio guest: read refused: {error}");
        }
        other => fail(format_args!("a read larger than the DMA pool: {other:?}")),
    }
    let mut beyond = [0u8; SECTOR];
    match disk.read(disk.sectors(), &mut beyond) {
        Err(error) if error.kind == DeviceErrorKind::OutOfRange => {
            println!("virtio guest: read refused: {error}");
        }
        other => fail(format_args!("read past the end: {other:?}")),
    }
}

/// A buffer as large as the DMA pool, too large for the heap once the pool is carved from it.
struct LargeBuffer(UnsafeCell<[u8; DMA_POOL_SIZE]>);

// SAFETY: check_read_only, its only user, makes the one reference to the bytes.
unsafe impl Sync for LargeBuffer {}

/// Bytes the benchmark copies and reads.
const BENCH_SIZE: usize = 16 << 20;
/// The benchmark's DMA pool, taken from RAM: room for the largest request and the queue.
const BENCH_POOL_SIZE: usize = 4 << 20;
/// The largest request of the benchmark: a quarter of its pool.
const BENCH_MAX_REQUEST: usize = 1 << 20;

/// Maps the top of RAM for the benchmark: a DMA pool (made the pool here, as a
/// `restricted-dma-pool` would be), and two 16 MiB buffers, a source and a target.
fn bench_memory(tracker: &mut MemoryTracker) -> (&'static mut [u8], &'static mut [u8]) {
    let end = tracker.ram().end;
    let Some(start) = end.checked_sub(2 * BENCH_SIZE + BENCH_POOL_SIZE) else {
        fail(format_args!(
            "the benchmark needs {} MiB of RAM",
            (2 * BENCH_SIZE + BENCH_POOL_SIZE) >> 20
        ));
    };
    if let Err(error) = tracker.alloc_range_mut(&(start..end)) {
        fail(format_args!("mapping the benchmark's memory: {error}"));
    }
    // SAFETY: The tracker just mapped the range read-write, and nothing else uses it.
    let memory = unsafe { core::slice::from_raw_parts_mut(start as *mut u8, end - start) };
    let (pool, buffers) = memory.split_at_mut(BENCH_POOL_SIZE);
    if let Err(error) = vmbase::virtio::init_dma_pool(pool) {
        fail(format_args!("DMA pool: {error}"));
    }
    buffers.split_at_mut(BENCH_SIZE)
}

/// Copies 16 MiB, then reads the 16 MiB disk with 4 KiB requests and with the largest, printing
/// the counter ticks each took (16 instructions per tick under `-icount shift=0`).
fn bench(pci: &mut PciBus, source: &mut [u8], target: &mut [u8]) {
    let frequency = vmbase::counter::frequency();
    println!("virtio guest: bench counter {frequency} Hz");
    for (index, byte) in source.iter_mut().enumerate() {
        *byte = index as u8;
    }
    // Once untimed, so that the host has backed every page before the timed copy.
    target.copy_from_slice(source);
    let start = vmbase::counter::ticks();
    target.copy_from_slice(source);
    let ticks = vmbase::counter::ticks() - start;
    println!(
        "virtio guest: bench memcpy {} bytes {ticks} ticks",
        target.len()
    );

    let mut disks = disks(pci);
    let Some(disk) = disks.first_mut() else {
        fail(format_args!("no disk"));
    };
    if disk.sectors() * SECTOR as u64 != BENCH_SIZE as u64 {
        fail(format_args!("the disk must hold {BENCH_SIZE} bytes"));
    }
    for request in [4096, BENCH_MAX_REQUEST] {
        disk.set_max_request(request);
        let start = vmbase::counter::ticks();
        for (index, chunk) in target.chunks_mut(request).enumerate() {
            if let Err(error) = disk.read((index * request / SECTOR) as u64, chunk) {
                fail(format_args!("{error}"));
            }
        }
        let ticks = vmbase::counter::ticks() - start;
        println!("virtio guest: bench read {request} bytes per request {ticks} ticks");
        // The benchmark's disk holds the low byte of each sector's number in every byte.
        if target[BENCH_SIZE - 1] != ((BENCH_SIZE - 1) / SECTOR) as u8 {
            fail(format_args!("the disk's last byte is wrong"));
        }
        target.fill(0);
    }
}

/// Greets on the virtio console, reads a line from it and echoes it there and on the UART.
fn check_console(pci: &mut PciBus) {
    let mut console = match Console::find(pci) {
        Ok(Some(console)) => console,
        Ok(None) => fail(format_args!("no virtio console")),
        Err(error) => fail(format_args!("{error}")),
    };
    if let Err(error) = console.write(b"virtio guest: type a line\n") {
        fail(format_args!("{error}"));
    }
    let mut line = [0u8; 256];
    let length = match console.read_line(&mut line) {
        Ok(length) => length,
        Err(error) => fail(format_args!("{error}")),
    };
    let Ok(line) = core::str::from_utf8(&line[..length]) else {
        fail(format_args!("the line is not UTF-8"));
    };
    println!("virtio guest: read {line:?} from the virtio console");
    if let Err(error) = writeln!(console, "echo: {line}") {
        fail(format_args!("echo on the virtio console: {error}"));
    }
}

/// A disk that cannot reach memory never answers: the read times out with an error that names
/// the disk and the request, and the disk refuses what follows.
fn check_timeout(pci: &mut PciBus) {
    let mut disks = disks(pci);
    let Some(disk) = disks.first_mut() else {
        fail(format_args!("no disk"));
    };
    pci.set_bus_master(disk.function(), false);
    disk.set_timeout_ms(TIMEOUT_MS);
    let mut buffer = [0u8; 4 * SECTOR];
    for expected in [DeviceErrorKind::TimedOut, DeviceErrorKind::Broken] {
        match disk.read(8, &mut buffer) {
            Err(error) if error.kind == expected => println!("virtio guest: {error}"),
            other => fail(format_args!("read from a silent disk: {other:?}")),
        }
    }
}

/// Prints 32 bytes of entropy from virtio-rng, which must not be all zeros; then makes the
/// device `vmbase::rand`'s fallback and prints 32 bytes from `vmbase::rand` with the source it
/// used.
fn check_rng(pci: &mut PciBus) {
    let mut rng = match Rng::find(pci) {
        Ok(Some(rng)) => rng,
        Ok(None) => fail(format_args!("no virtio-rng device")),
        Err(error) => fail(format_args!("{error}")),
    };
    let mut bytes = [0u8; 32];
    if let Err(error) = rng.fill(&mut bytes) {
        fail(format_args!("{error}"));
    }
    if bytes.iter().all(|&b| b == 0) {
        fail(format_args!("virtio-rng gave only zeros"));
    }
    println!("virtio guest: virtio-rng entropy {}", Hex(&bytes));

    if !vmbase::virtio::rng::use_as_fallback(rng) {
        fail(format_args!(
            "a fallback entropy source was already registered"
        ));
    }
    let source = match vmbase::rand::init() {
        Ok(source) => alloc::format!("{source}"),
        Err(vmbase::rand::Error::NoEntropySource) => "virtio-rng (fallback)".into(),
        Err(error) => fail(format_args!("entropy: {error}")),
    };
    if let Err(error) = vmbase::rand::fill_with_entropy(&mut bytes) {
        fail(format_args!("entropy from {source}: {error}"));
    }
    if bytes.iter().all(|&b| b == 0) {
        fail(format_args!("{source} gave only zeros"));
    }
    println!("virtio guest: rand entropy from {source}: {}", Hex(&bytes));
}

/// Bytes as one hexadecimal string.
struct Hex<'a>(&'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}
