// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Assigns memory BARs from the host bridge's windows: naturally aligned, inside one window,
//! never overlapping another BAR, never at PCI address 0 (which means "unassigned").

use super::{push, PciSetupError, Space, Window, FOUR_GIB};
use crate::memory::AddressRange;
use alloc::vec::Vec;

/// The smallest memory BAR (PCI Local Bus Specification: 16 bytes).
const MIN_BAR_SIZE: u64 = 16;

/// Hands out PCI bus addresses for BARs from a set of memory windows.
#[derive(Clone, Debug)]
pub struct BarAllocator<'w> {
    windows: &'w [Window],
    /// PCI addresses already taken (BARs the VMM assigned, and those given out), sorted and
    /// apart, so a search for room walks them once.
    used: Vec<AddressRange>,
}

impl<'w> BarAllocator<'w> {
    /// An allocator over the memory windows among `windows` (I/O windows are ignored).
    pub fn new(windows: &'w [Window]) -> Self {
        Self {
            windows,
            used: Vec::new(),
        }
    }

    fn memory_windows(&self) -> impl Iterator<Item = &'w Window> {
        self.windows.iter().filter(|w| w.is_memory())
    }

    /// Whether `range` (PCI addresses) lies entirely in one memory window.
    pub fn in_window(&self, range: &AddressRange) -> bool {
        self.memory_windows()
            .any(|w| w.pci_range().is_some_and(|window| window.covers(range)))
    }

    /// The PCI addresses taken so far, in address order.
    pub fn used(&self) -> &[AddressRange] {
        &self.used
    }

    /// Where `range` would go in `used`, if it overlaps nothing there.
    fn free_slot(&self, range: &AddressRange) -> Option<usize> {
        let slot = self
            .used
            .partition_point(|used| used.end() <= range.start());
        match self.used.get(slot) {
            Some(next) if next.overlaps(range) => None,
            _ => Some(slot),
        }
    }

    /// Marks `range` as taken, for a BAR the VMM assigned: it is kept if it is not at address 0,
    /// lies in a window and overlaps nothing taken so far. Returns whether it was kept (if not,
    /// assign the BAR anew), or [`PciSetupError::NoMemory`].
    pub fn reserve(&mut self, range: &AddressRange) -> Result<bool, PciSetupError> {
        if range.is_empty() || range.start() == 0 || !self.in_window(range) {
            return Ok(false);
        }
        let Some(slot) = self.free_slot(range) else {
            return Ok(false);
        };
        self.take(slot, *range)?;
        Ok(true)
    }

    fn take(&mut self, slot: usize, range: AddressRange) -> Result<(), PciSetupError> {
        // Grow fallibly, then insert where the order wants it.
        push(&mut self.used, AddressRange::default(), "BARs")?;
        self.used.pop();
        self.used.insert(slot, range);
        Ok(())
    }

    /// The PCI address for a BAR of `size` bytes (a power of two of at least 16), aligned to its
    /// size, never 0. A 32-bit BAR gets an address below 4 GiB; a non-prefetchable BAR never
    /// lands in a prefetchable window. 64-bit BARs try 64-bit windows first, keeping the 32-bit
    /// space for BARs that need it.
    pub fn allocate(
        &mut self,
        size: u64,
        is_64bit: bool,
        prefetchable: bool,
    ) -> Result<u64, PciSetupError> {
        if size < MIN_BAR_SIZE || !size.is_power_of_two() {
            return Err(PciSetupError::BadBarSize(size));
        }
        let fits = |w: &&Window| prefetchable || !w.prefetchable;
        let preferred = |w: &&Window| is_64bit && w.space == Space::Memory64;
        // Preferred windows first, in tree order otherwise.
        let order = (self.memory_windows().filter(fits).filter(preferred))
            .chain(self.memory_windows().filter(fits).filter(|w| !preferred(w)));
        for window in order.filter_map(Window::pci_range) {
            let mut limit = window.end();
            if !is_64bit {
                limit = limit.min(FOUR_GIB);
            }
            if let Some((start, slot)) = self.first_fit(window.start(), limit, size) {
                let bar = AddressRange::new(start, size).ok_or(PciSetupError::Overflow(start))?;
                self.take(slot, bar)?;
                return Ok(start);
            }
        }
        Err(PciSetupError::NoSpaceForBar {
            size,
            is_64bit,
            prefetchable,
        })
    }

    /// The lowest address from `start`, other than 0, where `size` aligned bytes end by `limit`
    /// and overlap nothing taken; and where it goes in `used`.
    fn first_fit(&self, start: u64, limit: u64, size: u64) -> Option<(u64, usize)> {
        let mut candidate = start.max(1).checked_next_multiple_of(size)?;
        let mut slot = self.used.partition_point(|used| used.end() <= candidate);
        loop {
            let end = candidate.checked_add(size)?;
            if end > limit {
                return None;
            }
            match self.used.get(slot) {
                // Alignment moved the candidate past this one.
                Some(used) if used.end() <= candidate => slot += 1,
                Some(used) if used.start() < end => {
                    candidate = used.end().checked_next_multiple_of(size)?;
                    slot += 1;
                }
                _ => return Some((candidate, slot)),
            }
        }
    }
}

/// The pages `bars` lie in, as few ranges as possible: rounded out to pages, sorted, and merged
/// where they overlap or touch (small BARs may share a page). A BAR in the last page of the
/// address space, which no range can round out, is left as it is (and mapping it fails).
pub fn bar_pages(mut bars: Vec<AddressRange>) -> Vec<AddressRange> {
    let page = crate::layout::PAGE_SIZE as u64;
    bars.sort_by_key(AddressRange::start);
    let mut pages: Vec<AddressRange> = Vec::new();
    for bar in bars {
        let bar_pages = bar.align_out(page).unwrap_or(bar);
        match pages.last_mut() {
            Some(last) if bar_pages.start() <= last.end() => {
                let end = last.end().max(bar_pages.end());
                *last = AddressRange::from_bounds(last.start(), end).unwrap_or(*last);
            }
            _ => pages.push(bar_pages),
        }
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ops::Range;

    fn window(space: Space, prefetchable: bool, range: Range<u64>) -> Window {
        Window {
            space,
            prefetchable,
            pci_address: range.start,
            cpu_range: range.into(),
        }
    }

    fn ranges<const N: usize>(ranges: [Range<u64>; N]) -> Vec<AddressRange> {
        ranges.into_iter().map(AddressRange::from).collect()
    }

    /// QEMU's windows (I/O, 32-bit, 64-bit) and a prefetchable one.
    fn windows() -> Vec<Window> {
        alloc::vec![
            window(Space::Io, false, 0x3eff_0000..0x3f00_0000),
            window(Space::Memory32, false, 0x1000_0000..0x1001_0000),
            window(Space::Memory64, false, 0x80_0000_0000..0x80_0001_0000),
            window(Space::Memory64, true, 0x90_0000_0000..0x90_0000_1000),
        ]
    }

    #[test]
    fn bars_are_aligned_to_their_size_and_never_overlap() {
        let windows = windows();
        let mut allocator = BarAllocator::new(&windows);
        assert_eq!(allocator.allocate(0x100, false, false), Ok(0x1000_0000));
        assert_eq!(allocator.allocate(0x1000, false, false), Ok(0x1000_1000));
        assert_eq!(allocator.allocate(0x10, false, false), Ok(0x1000_0100));
        assert_eq!(allocator.allocate(0x4000, false, false), Ok(0x1000_4000));
        let mut given: Vec<AddressRange> = Vec::new();
        for size in [0x10, 0x800, 0x100, 0x2000] {
            let start = allocator.allocate(size, false, false).unwrap();
            assert_eq!(start % size, 0);
            let range = AddressRange::new(start, size).unwrap();
            assert!(allocator.in_window(&range));
            assert!(given.iter().all(|g| !g.overlaps(&range)));
            given.push(range);
        }
    }

    #[test]
    fn sixty_four_bit_bars_prefer_sixty_four_bit_windows() {
        let windows = windows();
        let mut allocator = BarAllocator::new(&windows);
        assert_eq!(allocator.allocate(0x4000, true, false), Ok(0x80_0000_0000));
        assert_eq!(allocator.allocate(0x1000, true, true), Ok(0x80_0000_4000));
        // Non-prefetchable BARs stay out of the prefetchable window, and fall back to 32-bit.
        assert_eq!(allocator.allocate(0x8000, true, false), Ok(0x80_0000_8000));
        assert_eq!(allocator.allocate(0x8000, true, false), Ok(0x1000_0000));
        // Gaps are filled before the next window is used.
        assert_eq!(allocator.allocate(0x2000, true, true), Ok(0x80_0000_6000));
        assert_eq!(allocator.allocate(0x1000, true, true), Ok(0x80_0000_5000));
        assert_eq!(allocator.allocate(0x1000, true, true), Ok(0x90_0000_0000));
    }

    #[test]
    fn a_window_never_overflows() {
        let windows = windows();
        let mut allocator = BarAllocator::new(&windows);
        assert_eq!(allocator.allocate(0x1_0000, false, false), Ok(0x1000_0000));
        assert_eq!(
            allocator.allocate(0x10, false, false),
            Err(PciSetupError::NoSpaceForBar {
                size: 0x10,
                is_64bit: false,
                prefetchable: false
            })
        );
        assert!(allocator.allocate(0x2_0000, true, true).is_err());
    }

    #[test]
    fn thirty_two_bit_bars_stay_below_four_gib() {
        let straddling = [window(Space::Memory64, false, 0xffff_f000..0x1_0001_0000)];
        let mut allocator = BarAllocator::new(&straddling);
        assert_eq!(allocator.allocate(0x1000, false, false), Ok(0xffff_f000));
        assert!(allocator.allocate(0x1000, false, false).is_err());
        assert_eq!(allocator.allocate(0x1000, true, false), Ok(0x1_0000_0000));
    }

    #[test]
    fn reserved_bars_are_kept_and_avoided() {
        let windows = windows();
        let mut allocator = BarAllocator::new(&windows);
        assert_eq!(
            allocator.reserve(&AddressRange::from(0x1000_0000..0x1000_1000)),
            Ok(true)
        );
        assert_eq!(
            allocator.reserve(&AddressRange::from(0x1000_0800..0x1000_0900)),
            Ok(false),
            "overlap"
        );
        assert_eq!(
            allocator.reserve(&AddressRange::from(0x2000_0000..0x2000_1000)),
            Ok(false),
            "outside"
        );
        assert_eq!(
            allocator.reserve(&AddressRange::from(0x3eff_0000..0x3eff_0010)),
            Ok(false),
            "I/O window"
        );
        assert_eq!(allocator.allocate(0x1000, false, false), Ok(0x1000_1000));
    }

    #[test]
    fn bad_sizes_are_refused() {
        let windows = windows();
        let mut allocator = BarAllocator::new(&windows);
        for size in [0, 8, 0x300] {
            assert_eq!(
                allocator.allocate(size, false, false),
                Err(PciSetupError::BadBarSize(size))
            );
        }
        let mut empty = BarAllocator::new(&[]);
        assert!(empty.allocate(0x1000, true, true).is_err());
    }

    #[test]
    fn bar_pages_are_merged_where_they_share_a_page() {
        assert_eq!(
            bar_pages(ranges([
                0x1000_4000..0x1000_8000,
                0x1000_0000..0x1000_0010,
                0x1000_0020..0x1000_0040,
                0x1000_8000..0x1000_9000,
                0x1002_0000..0x1002_1000,
            ])),
            ranges([
                0x1000_0000..0x1000_1000,
                0x1000_4000..0x1000_9000,
                0x1002_0000..0x1002_1000
            ])
        );
        assert!(bar_pages(Vec::new()).is_empty());
    }

    #[test]
    fn no_bar_is_ever_at_address_zero() {
        // A window that starts at PCI address 0 (identity mapped: CPU address 0 too).
        let low = [window(Space::Memory32, false, 0..0x1_0000)];
        let mut allocator = BarAllocator::new(&low);
        assert_eq!(allocator.reserve(&AddressRange::from(0..0x1000)), Ok(false));
        assert_eq!(allocator.allocate(0x1000, false, false), Ok(0x1000));
        assert_eq!(allocator.allocate(0x10, false, false), Ok(0x10));
        assert_eq!(allocator.allocate(0x8000, false, false), Ok(0x8000));
        assert_eq!(
            allocator.used(),
            ranges([0x10..0x20, 0x1000..0x2000, 0x8000..0x1_0000])
        );
    }
}
