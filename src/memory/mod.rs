// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Memory at run time: the [`MemoryTracker`] that maps and unmaps ranges on the live page table,
//! and cache maintenance by address range to the point of coherency.

mod range;
mod tracker;

pub use range::AddressRange;
pub use tracker::{MemoryTracker, MemoryTrackerError, MemoryType, Region};

use crate::layout::PAGE_SIZE;
use core::ops::Range;

/// The whole pages inside `range` (a `/memory` range, which need not be page-aligned): the RAM a
/// [`MemoryTracker`] can manage. `None` if it holds no whole page, or one the guest cannot
/// address.
pub fn whole_pages(range: &AddressRange) -> Option<Range<usize>> {
    range.align_in(PAGE_SIZE as u64)?.to_usize_range()
}

/// `CTR_EL0.DminLine`, bits [19:16]: log2 of the smallest data cache line, in 4-byte words.
const CTR_DMINLINE_SHIFT: u64 = 16;
const CTR_DMINLINE_MASK: u64 = 0xf;

/// The smallest data cache line size in bytes, decoded from a `CTR_EL0` value.
pub fn dcache_line_size(ctr_el0: u64) -> usize {
    4 << ((ctr_el0 >> CTR_DMINLINE_SHIFT) & CTR_DMINLINE_MASK)
}

/// The smallest data cache line of any cache level on this CPU, in bytes.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub fn min_dcache_line_size() -> usize {
    dcache_line_size(crate::read_sysreg!("ctr_el0"))
}

/// Whether `a` and `b` have an address in common: each starts before the other ends. For the
/// guest's own `Range<usize>`s (the tracker, the kernel's placement); [`AddressRange::overlaps`]
/// is the same test for the addresses a VMM describes.
pub(crate) fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// The start address of every cache line of `line_size` bytes (a power of two) that `range`
/// touches.
pub fn cache_lines(range: &Range<usize>, line_size: usize) -> impl Iterator<Item = usize> {
    let first = range.start & !(line_size - 1);
    let end = if range.is_empty() { first } else { range.end };
    (first..end).step_by(line_size)
}

/// Cleans the data cache over `range` to the point of coherency, so a reader with the MMU or
/// caches off (or another observer that bypasses the cache) sees what was written. Every
/// address in `range` must be mapped (a fault otherwise), readable is enough.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub fn clean_range(range: &Range<usize>) {
    use crate::arch::aarch64;
    for line in cache_lines(range, min_dcache_line_size()) {
        aarch64::dc_cvac(line);
    }
    aarch64::dsb_sy();
}

/// Cleans and invalidates the data cache over `range` to the point of coherency: what was
/// written reaches memory and no stale line stays behind to be read or written back later.
/// Every address in `range` must be mapped (a fault otherwise).
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub fn clean_invalidate_range(range: &Range<usize>) {
    use crate::arch::aarch64;
    for line in cache_lines(range, min_dcache_line_size()) {
        aarch64::dc_civac(line);
    }
    aarch64::dsb_sy();
}

/// Writes `region` back to the point of coherency (`DC CVAC`). AOSP libvmbase has a `flush` of
/// the same shape that cleans only to the point of unification (`DC CVAU`): not the same.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub fn flush(region: &[u8]) {
    let addresses = region.as_ptr_range();
    clean_range(&(addresses.start as usize..addresses.end as usize));
}

/// Zeroes `region` in a way the compiler cannot elide, then writes the zeroes back to the point
/// of coherency, so no copy of a secret survives in memory or in a cache line.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub fn flushed_zeroize(region: &mut [u8]) {
    zeroize::Zeroize::zeroize(region);
    flush(region);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn ram_is_rounded_in_to_whole_pages() {
        let pages = |start, end| whole_pages(&AddressRange::from_bounds(start, end).unwrap());
        assert_eq!(pages(0x1000, 0x3000), Some(0x1000..0x3000));
        assert_eq!(pages(0x1001, 0x3fff), Some(0x2000..0x3000));
        assert_eq!(pages(0x1001, 0x2fff), None);
        assert_eq!(pages(u64::MAX - 10, u64::MAX), None);
    }

    #[test]
    fn line_size_comes_from_dminline() {
        // QEMU's -cpu max: CTR_EL0 = 0x8444c004, DminLine = 4, 64-byte lines.
        assert_eq!(dcache_line_size(0x8444_c004), 64);
        assert_eq!(dcache_line_size(0), 4);
        assert_eq!(dcache_line_size(0xf << 16), 4 << 15);
    }

    #[test]
    fn cache_lines_cover_unaligned_ends() {
        let lines: Vec<usize> = cache_lines(&(0x1030..0x10c1), 64).collect();
        assert_eq!(lines, [0x1000, 0x1040, 0x1080, 0x10c0]);
    }

    #[test]
    fn an_empty_range_has_no_cache_lines() {
        assert_eq!(cache_lines(&(0x1030..0x1030), 64).count(), 0);
        let backwards = Range {
            start: 0x1040,
            end: 0x1000,
        };
        assert_eq!(cache_lines(&backwards, 64).count(), 0);
    }
}
