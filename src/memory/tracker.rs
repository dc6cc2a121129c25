// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Maps and unmaps RAM and MMIO found at run time on the live page table, and remembers what it
//! mapped so that ranges never overlap and nothing is both writable and executable.

use super::overlaps;
use crate::layout::PAGE_SIZE;
use crate::paging::{PageTable, CODE, DATA, DEVICE, RODATA};
use aarch64_paging::paging::Attributes;
use aarch64_paging::MapError;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::num::NonZeroUsize;
use core::ops::Range;

/// How a range is mapped. A page has exactly one type, so W^X holds by construction: only
/// [`ReadOnly`](Self::ReadOnly) RAM is readable and [`Executable`](Self::Executable) RAM is
/// never writable.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum MemoryType {
    /// MMIO: Device-nGnRE, never executable.
    Device,
    /// RAM, read-only, never executable.
    ReadOnly,
    /// RAM, read-write, never executable.
    ReadWrite,
    /// RAM, read-only and executable at EL1.
    Executable,
}

impl MemoryType {
    fn attributes(self) -> Attributes {
        match self {
            Self::Device => DEVICE,
            Self::ReadOnly => RODATA,
            Self::ReadWrite => DATA,
            Self::Executable => CODE,
        }
    }
}

/// A range the tracker mapped.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Region {
    /// The addresses, page-aligned.
    pub range: Range<usize>,
    /// How they are mapped.
    pub memory_type: MemoryType,
}

/// Why the tracker refused a request.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum MemoryTrackerError {
    /// The range holds no byte (its end is not after its start), or its end overflows.
    Empty(Range<usize>),
    /// The RAM or MMIO range given to [`MemoryTracker::new`] does not start and end on a page.
    Unaligned(Range<usize>),
    /// The RAM and MMIO ranges given to [`MemoryTracker::new`] overlap.
    RamOverlapsMmio,
    /// The range is not inside the RAM (for RAM types) or the MMIO range (for devices) that the
    /// tracker was given.
    OutOfRange {
        /// The range asked for, rounded out to pages.
        range: Range<usize>,
        /// Where ranges of this type must lie.
        allowed: Range<usize>,
    },
    /// Part of the range is already mapped, by the tracker or by the page table it was given
    /// (the image, the stacks, the boot MMIO).
    Overlaps(Range<usize>),
    /// The range is not one the tracker mapped (unmap takes exactly a range it mapped).
    NotMapped(Range<usize>),
    /// The page table refused the change.
    PageTable(MapError),
    /// The hypervisor's MMIO guard refused to register or unregister the range's pages.
    MmioGuard(crate::hyp::Error),
}

impl fmt::Display for MemoryTrackerError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Empty(range) => write!(f, "empty range {range:#x?}"),
            Self::Unaligned(range) => write!(f, "range {range:#x?} is not page-aligned"),
            Self::RamOverlapsMmio => write!(f, "the RAM and MMIO ranges overlap"),
            Self::OutOfRange { range, allowed } => {
                write!(f, "range {range:#x?} is outside {allowed:#x?}")
            }
            Self::Overlaps(range) => write!(f, "range {range:#x?} overlaps a mapping"),
            Self::NotMapped(range) => write!(f, "range {range:#x?} was not mapped by the tracker"),
            Self::PageTable(error) => write!(f, "page table: {error}"),
            Self::MmioGuard(error) => write!(f, "MMIO guard: {error}"),
        }
    }
}

#[cfg(has_core_error)]
impl core::error::Error for MemoryTrackerError {}

impl From<MapError> for MemoryTrackerError {
    fn from(error: MapError) -> Self {
        Self::PageTable(error)
    }
}

/// The page table of a running vmbase binary, with the RAM and MMIO ranges it may map and the
/// regions mapped so far (AOSP libvmbase's `MemoryTracker`).
///
/// Build it from a [`PageTable`] that already maps the image, stacks and the MMIO in use, then
/// [`activate`](Self::activate) it; every later change applies to the live table with
/// break-before-make and TLB maintenance.
#[derive(Debug)]
pub struct MemoryTracker {
    page_table: PageTable,
    ram: Range<usize>,
    mmio: Range<usize>,
    regions: Vec<Region>,
}

fn round_out_to_pages(range: &Range<usize>) -> Result<Range<usize>, MemoryTrackerError> {
    let start = range.start & !(PAGE_SIZE - 1);
    let end = range
        .end
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(MemoryTrackerError::Empty(range.clone()))?;
    if range.start >= range.end {
        return Err(MemoryTrackerError::Empty(range.clone()));
    }
    Ok(start..end)
}

fn is_page_aligned(range: &Range<usize>) -> bool {
    (range.start | range.end) & (PAGE_SIZE - 1) == 0
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

impl MemoryTracker {
    /// A tracker over `page_table` that maps RAM only inside `ram` and devices only inside
    /// `mmio` (typically `/memory` from the FDT and the platform's MMIO window).
    pub fn new(
        page_table: PageTable,
        ram: Range<usize>,
        mmio: Range<usize>,
    ) -> Result<Self, MemoryTrackerError> {
        for range in [&ram, &mmio] {
            if range.is_empty() {
                return Err(MemoryTrackerError::Empty(range.clone()));
            }
            if !is_page_aligned(range) {
                return Err(MemoryTrackerError::Unaligned(range.clone()));
            }
        }
        if overlaps(&ram, &mmio) {
            return Err(MemoryTrackerError::RamOverlapsMmio);
        }
        Ok(Self {
            page_table,
            ram,
            mmio,
            regions: Vec::new(),
        })
    }

    /// Makes the page table live, for good: the tracker is leaked, so the table is never freed.
    ///
    /// # Safety
    ///
    /// Everything the program touches from now on (code, data, stacks, heap, MMIO) must be mapped
    /// by the page table, with the access it needs, and nothing may alias memory in a way Rust
    /// forbids.
    pub unsafe fn activate(self) -> &'static mut Self {
        let tracker = Box::leak(Box::new(self));
        // SAFETY: The caller's promise; the tracker, and so the table, is leaked.
        unsafe { tracker.page_table.activate_in_place() };
        tracker
    }

    /// Maps `range` (rounded out to pages) as `memory_type`, after checking that it lies in the
    /// RAM or MMIO range that type belongs to and that no part of it is mapped yet. Returns the
    /// page-aligned range mapped. Device pages are registered with the hypervisor's MMIO guard
    /// first when vmbase enrolled in it (`hyp::mmio_guard_enrolled`).
    pub fn map(
        &mut self,
        range: &Range<usize>,
        memory_type: MemoryType,
    ) -> Result<Range<usize>, MemoryTrackerError> {
        let range = round_out_to_pages(range)?;
        let allowed = match memory_type {
            MemoryType::Device => &self.mmio,
            _ => &self.ram,
        };
        if !contains(allowed, &range) {
            return Err(MemoryTrackerError::OutOfRange {
                range,
                allowed: allowed.clone(),
            });
        }
        if self.regions.iter().any(|r| overlaps(&r.range, &range))
            || self.page_table.is_mapped(&range)?
        {
            return Err(MemoryTrackerError::Overlaps(range));
        }
        let guarded = memory_type == MemoryType::Device && crate::hyp::mmio_guard_enrolled();
        if guarded {
            crate::hyp::mmio_guard_map(&range).map_err(MemoryTrackerError::MmioGuard)?;
        }
        if let Err(error) = self.page_table.map(&range, memory_type.attributes()) {
            if guarded {
                // The pages were registered a moment ago, by this call: this only undoes that.
                let _ = crate::hyp::mmio_guard_unmap(&range);
            }
            return Err(error.into());
        }
        self.regions.push(Region {
            range: range.clone(),
            memory_type,
        });
        Ok(range)
    }

    /// Maps `range` of RAM read-only, never executable (AOSP's `alloc_range`).
    pub fn alloc_range(
        &mut self,
        range: &Range<usize>,
    ) -> Result<Range<usize>, MemoryTrackerError> {
        self.map(range, MemoryType::ReadOnly)
    }

    /// Maps `range` of RAM read-write, never executable (AOSP's `alloc_range_mut`).
    pub fn alloc_range_mut(
        &mut self,
        range: &Range<usize>,
    ) -> Result<Range<usize>, MemoryTrackerError> {
        self.map(range, MemoryType::ReadWrite)
    }

    /// Maps `range` of RAM read-only and executable (AOSP's tracker has no such method). Code
    /// written through another mapping must have been cleaned first (e.g. with `memory::flush`).
    pub fn alloc_range_code(
        &mut self,
        range: &Range<usize>,
    ) -> Result<Range<usize>, MemoryTrackerError> {
        self.map(range, MemoryType::Executable)
    }

    /// Maps `size` bytes of RAM from `base` read-only (AOSP's `alloc`).
    pub fn alloc(
        &mut self,
        base: usize,
        size: NonZeroUsize,
    ) -> Result<Range<usize>, MemoryTrackerError> {
        self.alloc_range(&checked_range(base, size)?)
    }

    /// Maps `size` bytes of RAM from `base` read-write (AOSP's `alloc_mut`).
    pub fn alloc_mut(
        &mut self,
        base: usize,
        size: NonZeroUsize,
    ) -> Result<Range<usize>, MemoryTrackerError> {
        self.alloc_range_mut(&checked_range(base, size)?)
    }

    /// Maps `range` of MMIO as device memory, registering every page with the hypervisor's MMIO
    /// guard when vmbase enrolled in it (AOSP's `map_mmio_range` maps lazily and registers a
    /// page on its first access; this registers and maps at once).
    pub fn map_mmio_range(&mut self, range: Range<usize>) -> Result<(), MemoryTrackerError> {
        self.map(&range, MemoryType::Device).map(drop)
    }

    /// Unmaps a range the tracker mapped, given as it was given to the map call (it is rounded
    /// out to pages the same way). Writable RAM is cleaned and invalidated to the point of
    /// coherency first, so what was written reaches memory and no dirty line outlives the
    /// mapping. Device pages are unregistered from the MMIO guard afterwards when vmbase enrolled
    /// in it; if the hypervisor refuses, the range is unmapped all the same and the refusal is
    /// returned.
    ///
    /// # Safety
    ///
    /// No reference or pointer into the range may be used after this returns.
    pub unsafe fn unmap(&mut self, range: &Range<usize>) -> Result<(), MemoryTrackerError> {
        let range = round_out_to_pages(range)?;
        let index = self
            .regions
            .iter()
            .position(|r| r.range == range)
            .ok_or(MemoryTrackerError::NotMapped(range.clone()))?;
        #[cfg(target_arch = "aarch64")]
        if self.regions[index].memory_type == MemoryType::ReadWrite {
            crate::memory::clean_invalidate_range(&range);
        }
        self.page_table.unmap(&range)?;
        let region = self.regions.swap_remove(index);
        if region.memory_type == MemoryType::Device && crate::hyp::mmio_guard_enrolled() {
            crate::hyp::mmio_guard_unmap(&range).map_err(MemoryTrackerError::MmioGuard)?;
        }
        Ok(())
    }

    /// The RAM range the tracker maps RAM types in.
    pub fn ram(&self) -> &Range<usize> {
        &self.ram
    }

    /// The MMIO range the tracker maps devices in.
    pub fn mmio(&self) -> &Range<usize> {
        &self.mmio
    }

    /// The regions mapped through the tracker, in no particular order.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The page table (for example to check it with
    /// [`PageTable::find_writable_executable`]).
    pub fn page_table(&self) -> &PageTable {
        &self.page_table
    }
}

fn checked_range(base: usize, size: NonZeroUsize) -> Result<Range<usize>, MemoryTrackerError> {
    let end = base
        .checked_add(size.get())
        .ok_or(MemoryTrackerError::Empty(base..base))?;
    Ok(base..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: Range<usize> = 0x8000_0000..0x9000_0000;
    const MMIO: Range<usize> = 0..0x4000_0000;
    const IMAGE: Range<usize> = 0x8020_0000..0x8040_0000;

    /// A tracker over a table that maps an image and one UART, like a booted binary's.
    fn tracker() -> MemoryTracker {
        let mut table = PageTable::new();
        table.map(&IMAGE, CODE).unwrap();
        table.map_device(&(0x900_0000..0x900_1000)).unwrap();
        MemoryTracker::new(table, RAM, MMIO).unwrap()
    }

    fn active_tracker() -> &'static mut MemoryTracker {
        // SAFETY: In host tests activation only marks the table live; no register is written.
        unsafe { tracker().activate() }
    }

    #[test]
    fn maps_each_type_in_its_range() {
        let tracker = active_tracker();
        assert_eq!(
            tracker.alloc_range_mut(&(0x8100_0000..0x8100_2000)),
            Ok(0x8100_0000..0x8100_2000)
        );
        tracker.alloc_range(&(0x8200_0000..0x8200_1000)).unwrap();
        tracker
            .alloc_range_code(&(0x8300_0000..0x8300_1000))
            .unwrap();
        tracker.map_mmio_range(0xa00_0000..0xa00_1000).unwrap();
        assert_eq!(tracker.regions().len(), 4);
        assert!(tracker
            .page_table()
            .is_mapped(&(0x8100_1000..0x8100_2000))
            .unwrap());
        assert_eq!(
            tracker.page_table().find_writable_executable(&(0..1 << 39)),
            Ok(None)
        );
    }

    #[test]
    fn unaligned_ranges_are_rounded_out_to_pages() {
        let tracker = active_tracker();
        assert_eq!(
            tracker.alloc_range(&(0x8100_0010..0x8100_1001)),
            Ok(0x8100_0000..0x8100_2000)
        );
    }

    #[test]
    fn ram_types_outside_ram_are_refused() {
        let tracker = active_tracker();
        assert_eq!(
            tracker.alloc_range_mut(&(0x8fff_f000..0x9000_1000)),
            Err(MemoryTrackerError::OutOfRange {
                range: 0x8fff_f000..0x9000_1000,
                allowed: RAM
            })
        );
        assert!(matches!(
            tracker.alloc_range_code(&(0xa00_0000..0xa00_1000)),
            Err(MemoryTrackerError::OutOfRange { .. })
        ));
    }

    #[test]
    fn devices_outside_mmio_are_refused() {
        let tracker = active_tracker();
        assert_eq!(
            tracker.map_mmio_range(0x8100_0000..0x8100_1000),
            Err(MemoryTrackerError::OutOfRange {
                range: 0x8100_0000..0x8100_1000,
                allowed: MMIO
            })
        );
    }

    #[test]
    fn overlapping_a_tracked_region_is_refused() {
        let tracker = active_tracker();
        tracker
            .alloc_range_mut(&(0x8100_0000..0x8100_2000))
            .unwrap();
        for range in [
            0x8100_1000..0x8100_3000,
            0x80ff_f000..0x8100_1000,
            0x8100_0800..0x8100_0900,
        ] {
            assert_eq!(
                tracker.alloc_range_code(&range),
                Err(MemoryTrackerError::Overlaps(
                    round_out_to_pages(&range).unwrap()
                )),
                "{range:#x?}"
            );
        }
        assert_eq!(tracker.regions().len(), 1);
    }

    #[test]
    fn overlapping_what_the_table_already_maps_is_refused() {
        let tracker = active_tracker();
        assert_eq!(
            tracker.alloc_range_mut(&(0x803f_f000..0x8040_1000)),
            Err(MemoryTrackerError::Overlaps(0x803f_f000..0x8040_1000))
        );
        assert_eq!(
            tracker.map_mmio_range(0x900_0000..0x900_1000),
            Err(MemoryTrackerError::Overlaps(0x900_0000..0x900_1000))
        );
    }

    #[test]
    fn unmap_frees_the_range_for_another_type() {
        let tracker = active_tracker();
        let range = 0x8100_0000..0x8120_0000;
        tracker.alloc_range_mut(&range).unwrap();
        // SAFETY: Host test; nothing points into the range.
        unsafe { tracker.unmap(&range) }.unwrap();
        assert!(tracker.regions().is_empty());
        assert!(!tracker.page_table().is_mapped(&range).unwrap());
        tracker.alloc_range_code(&range).unwrap();
        assert_eq!(
            tracker.regions(),
            [Region {
                range,
                memory_type: MemoryType::Executable
            }]
        );
    }

    #[test]
    fn unmap_takes_only_a_range_the_tracker_mapped() {
        let tracker = active_tracker();
        tracker
            .alloc_range_mut(&(0x8100_0000..0x8100_2000))
            .unwrap();
        for range in [0x8100_0000..0x8100_1000, IMAGE, 0x8200_0000..0x8200_1000] {
            // SAFETY: Host test; nothing is unmapped.
            let result = unsafe { tracker.unmap(&range) };
            assert_eq!(result, Err(MemoryTrackerError::NotMapped(range)));
        }
        assert!(tracker
            .page_table()
            .is_mapped(&(0x8100_0000..0x8100_2000))
            .unwrap());
    }

    #[test]
    fn empty_and_overflowing_ranges_are_refused() {
        let tracker = active_tracker();
        assert_eq!(
            tracker.alloc_range_mut(&(0x8100_0000..0x8100_0000)),
            Err(MemoryTrackerError::Empty(0x8100_0000..0x8100_0000))
        );
        assert!(matches!(
            tracker.alloc_range_mut(&(0x8100_0000..usize::MAX)),
            Err(MemoryTrackerError::Empty(_))
        ));
        assert!(matches!(
            tracker.alloc(usize::MAX - 0xfff, NonZeroUsize::new(0x2000).unwrap()),
            Err(MemoryTrackerError::Empty(_))
        ));
        assert_eq!(
            tracker.alloc_mut(0x8100_0000, NonZeroUsize::new(0x10).unwrap()),
            Ok(0x8100_0000..0x8100_1000)
        );
    }

    #[test]
    fn ram_and_mmio_must_be_aligned_and_disjoint() {
        let new = |ram, mmio| MemoryTracker::new(PageTable::new(), ram, mmio).map(|_| ());
        assert_eq!(
            new(0x8000_0000..0x8000_0800, MMIO),
            Err(MemoryTrackerError::Unaligned(0x8000_0000..0x8000_0800))
        );
        assert_eq!(
            new(0x3000_0000..0x5000_0000, MMIO),
            Err(MemoryTrackerError::RamOverlapsMmio)
        );
        assert_eq!(new(RAM, 0..0), Err(MemoryTrackerError::Empty(0..0)));
    }
}
