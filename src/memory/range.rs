// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! [`AddressRange`]: the one type for a range of guest physical addresses as the device tree,
//! PCI and the firmware's hand-off describe them (64-bit, whatever the guest's pointer width).

use core::fmt;
use core::ops::Range;

/// The guest physical addresses from `start` up to (not including) `end`, with `start <= end`:
/// it never wraps, so its length and every test on it are exact. Built only by checked
/// constructors ([`AddressRange::new`], [`AddressRange::from_bounds`]).
///
/// The [`MemoryTracker`](super::MemoryTracker) and the page tables work on `Range<usize>` (what
/// the guest can address): [`AddressRange::to_usize_range`] is the checked way there.
#[derive(Clone, Copy, Default, Eq, Hash, PartialEq)]
pub struct AddressRange {
    start: u64,
    end: u64,
}

impl AddressRange {
    /// `size` bytes from `start`, if they end inside the 64-bit address space.
    pub const fn new(start: u64, size: u64) -> Option<Self> {
        match start.checked_add(size) {
            Some(end) => Some(Self { start, end }),
            None => None,
        }
    }

    /// `start` up to `end`, if `start <= end`.
    pub const fn from_bounds(start: u64, end: u64) -> Option<Self> {
        if start <= end {
            Some(Self { start, end })
        } else {
            None
        }
    }

    /// The first address.
    pub const fn start(&self) -> u64 {
        self.start
    }

    /// The address after the last.
    pub const fn end(&self) -> u64 {
        self.end
    }

    /// How many bytes it covers.
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether it covers no byte.
    pub const fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether `address` is in it.
    pub const fn contains(&self, address: u64) -> bool {
        self.start <= address && address < self.end
    }

    /// Whether every address of `other` is in it (an empty `other` must lie within its bounds).
    pub const fn covers(&self, other: &Self) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// Whether it and `other` have an address in common: each starts before the other ends,
    /// and neither is empty.
    pub const fn overlaps(&self, other: &Self) -> bool {
        self.start < other.end && other.start < self.end && !self.is_empty() && !other.is_empty()
    }

    /// The smallest range of whole `alignment`-sized blocks (a power of two: pages, say) that
    /// covers it, if that ends inside the address space.
    pub const fn align_out(&self, alignment: u64) -> Option<Self> {
        debug_assert!(alignment.is_power_of_two());
        let start = self.start & !(alignment - 1);
        match self.end.checked_next_multiple_of(alignment) {
            Some(end) => Some(Self { start, end }),
            None => None,
        }
    }

    /// The whole `alignment`-sized blocks (a power of two) inside it, if there is at least one:
    /// what a page table can map of a range that need not be aligned (`/memory`'s RAM).
    pub const fn align_in(&self, alignment: u64) -> Option<Self> {
        debug_assert!(alignment.is_power_of_two());
        let end = self.end & !(alignment - 1);
        match self.start.checked_next_multiple_of(alignment) {
            Some(start) if start < end => Some(Self { start, end }),
            _ => None,
        }
    }

    /// The same addresses as a `Range<usize>`, if the guest can address them all.
    pub fn to_usize_range(&self) -> Option<Range<usize>> {
        Some(usize::try_from(self.start).ok()?..usize::try_from(self.end).ok()?)
    }

    /// The addresses of a `Range<usize>` (which need not be checked: `usize` is at most 64
    /// bits), or `None` if it is backwards.
    pub fn from_usize_range(range: &Range<usize>) -> Option<Self> {
        Self::from_bounds(range.start as u64, range.end as u64)
    }
}

impl From<AddressRange> for Range<u64> {
    fn from(range: AddressRange) -> Self {
        range.start..range.end
    }
}

/// For tests' literals: a backwards range panics.
#[cfg(test)]
impl From<Range<u64>> for AddressRange {
    fn from(range: Range<u64>) -> Self {
        Self::from_bounds(range.start, range.end).expect("a range that is not backwards")
    }
}

/// As `start..end`, with the formatter's flags applied to both (`{:#x?}` gives hex).
impl fmt::Debug for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&(self.start..self.end), f)
    }
}

/// As `0x1000..0x2000`.
impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn range(start: u64, end: u64) -> AddressRange {
        AddressRange::from_bounds(start, end).unwrap()
    }

    #[test]
    fn construction_refuses_wrapping_and_backwards_ranges() {
        assert_eq!(
            AddressRange::new(0x1000, 0x2000),
            Some(range(0x1000, 0x3000))
        );
        assert_eq!(
            AddressRange::new(u64::MAX, 0),
            Some(range(u64::MAX, u64::MAX))
        );
        assert_eq!(AddressRange::new(u64::MAX, 1), None);
        assert_eq!(AddressRange::new(0xffff_ffff_ffff_f000, 0x1000), None);
        assert_eq!(AddressRange::from_bounds(0x2000, 0x1000), None);
        assert!(AddressRange::from_bounds(7, 7).unwrap().is_empty());
    }

    #[test]
    fn length_membership_and_cover() {
        let r = range(0x1000, 0x3000);
        assert_eq!(r.len(), 0x2000);
        assert!(r.contains(0x1000) && r.contains(0x2fff));
        assert!(!r.contains(0x3000) && !r.contains(0xfff));
        assert!(r.covers(&range(0x1000, 0x3000)));
        assert!(r.covers(&range(0x2000, 0x2800)));
        assert!(!r.covers(&range(0x2000, 0x3001)));
        assert!(!r.covers(&range(0x800, 0x1800)));
    }

    #[test]
    fn ranges_that_only_touch_do_not_overlap() {
        let r = range(0x1000, 0x2000);
        assert!(r.overlaps(&range(0x1fff, 0x3000)));
        assert!(r.overlaps(&range(0, 0x1001)));
        assert!(r.overlaps(&range(0x1800, 0x1900)));
        assert!(!r.overlaps(&range(0x2000, 0x3000)));
        assert!(!r.overlaps(&range(0, 0x1000)));
        assert!(
            !r.overlaps(&range(0x1800, 0x1800)),
            "an empty range has no address"
        );
    }

    #[test]
    fn rounding_out_covers_and_rounding_in_stays_inside() {
        assert_eq!(
            range(0x1001, 0x2fff).align_out(0x1000),
            Some(range(0x1000, 0x3000))
        );
        assert_eq!(
            range(0x1000, 0x3000).align_out(0x1000),
            Some(range(0x1000, 0x3000))
        );
        assert_eq!(range(0, u64::MAX).align_out(0x1000), None);
        assert_eq!(
            range(0x1000, 0x3000).align_in(0x1000),
            Some(range(0x1000, 0x3000))
        );
        assert_eq!(
            range(0x1001, 0x3fff).align_in(0x1000),
            Some(range(0x2000, 0x3000))
        );
        assert_eq!(range(0x1001, 0x2fff).align_in(0x1000), None);
        assert_eq!(range(u64::MAX - 10, u64::MAX).align_in(0x1000), None);
    }

    #[test]
    fn usize_conversion_is_checked_and_formats_are_hex() {
        assert_eq!(range(0x1000, 0x2000).to_usize_range(), Some(0x1000..0x2000));
        assert_eq!(
            AddressRange::from_usize_range(&(0x1000..0x2000)),
            Some(range(0x1000, 0x2000))
        );
        let backwards = Range {
            start: 0x2000usize,
            end: 0x1000,
        };
        assert_eq!(AddressRange::from_usize_range(&backwards), None);
        assert_eq!(Range::from(range(1, 2)), 1..2);
        assert_eq!(format!("{}", range(0x1000, 0x2000)), "0x1000..0x2000");
        assert_eq!(format!("{:#x?}", range(0x1000, 0x2000)), "0x1000..0x2000");
    }
}
