// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The memory layout of the running binary, as sections.ld placed it.

use core::ops::Range;

/// Size of a translation granule: the unit of guard pages and page-table permissions.
pub const PAGE_SIZE: usize = 4096;

/// The ranges of a vmbase binary, from the symbols sections.ld defines.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Layout {
    /// The region reserved for the FDT (`dtb_begin..dtb_end`).
    pub dtb: Range<usize>,
    /// Code (`text_begin..text_end`).
    pub text: Range<usize>,
    /// Read-only data, including the initial idmap (`rodata_begin..rodata_end`).
    pub rodata: Range<usize>,
    /// Initialised writable data, at its run address (`data_begin..data_end`).
    pub data: Range<usize>,
    /// Where the image holds the initial values of `.data` (`data_lma`).
    pub data_load_address: usize,
    /// Zero-initialised data (`bss_begin..bss_end`).
    pub bss: Range<usize>,
    /// The stack exception handlers run on (`exception_stack_begin..exception_stack_end`).
    pub exception_stack: Range<usize>,
    /// The stack `main` runs on (`boot_stack_begin..boot_stack_end`).
    pub boot_stack: Range<usize>,
    /// End of the raw image: the last byte the VMM must load, plus one (`bin_end`).
    pub image_end: usize,
}

/// Which stack a faulting address overflowed, if any.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum StackGuard {
    /// The guard page below the boot stack.
    Boot,
    /// The guard page below the exception stack.
    Exception,
}

/// An inconsistency between the layout and what entry.S or the page tables assume.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum LayoutError {
    /// A range that must be page aligned is not; holds its start.
    Unaligned(usize),
    /// Two ranges that must be disjoint overlap; holds the start of the later one.
    Overlap(usize),
    /// A range ends before it starts; holds its start.
    Reversed(usize),
}

impl Layout {
    /// The layout of the running binary.
    #[cfg(all(target_arch = "aarch64", not(test)))]
    pub fn current() -> Self {
        crate::linker::layout()
    }

    /// The image as loaded: code, read-only data and the initial values of `.data`.
    pub fn image(&self) -> Range<usize> {
        self.text.start..self.image_end
    }

    /// Writable memory that page tables must map read-write: `.data` and `.bss`.
    pub fn data_and_bss(&self) -> Range<usize> {
        self.data.start..self.bss.end
    }

    /// The unmapped page below each stack.
    pub fn guard_page(&self, stack: StackGuard) -> Range<usize> {
        let bottom = match stack {
            StackGuard::Boot => self.boot_stack.start,
            StackGuard::Exception => self.exception_stack.start,
        };
        bottom.saturating_sub(PAGE_SIZE)..bottom
    }

    /// Which stack overflowed, if `address` (a fault address) is in a guard page.
    pub fn stack_guard_hit(&self, address: usize) -> Option<StackGuard> {
        [StackGuard::Boot, StackGuard::Exception]
            .into_iter()
            .find(|&stack| self.guard_page(stack).contains(&address))
    }

    /// Checks what vmbase relies on: page-aligned code and read-only data (mapped with
    /// different permissions), stacks with a guard page below them, and disjoint ranges in the
    /// order sections.ld gives.
    pub fn check(&self) -> Result<(), LayoutError> {
        let ordered = [
            &self.text,
            &self.rodata,
            &self.data,
            &self.bss,
            &self.guard_page(StackGuard::Exception),
            &self.exception_stack,
            &self.guard_page(StackGuard::Boot),
            &self.boot_stack,
        ];
        for range in ordered.iter().chain([&&self.dtb]) {
            if range.end < range.start {
                return Err(LayoutError::Reversed(range.start));
            }
        }
        for range in [
            &self.text,
            &self.rodata,
            &self.exception_stack,
            &self.boot_stack,
        ] {
            if range.start % PAGE_SIZE != 0 {
                return Err(LayoutError::Unaligned(range.start));
            }
        }
        for pair in ordered.windows(2) {
            if pair[1].start < pair[0].end {
                return Err(LayoutError::Overlap(pair[1].start));
            }
        }
        if self.dtb.end > self.text.start && self.dtb.start < self.boot_stack.end {
            return Err(LayoutError::Overlap(self.dtb.start.max(self.text.start)));
        }
        Ok(())
    }
}

#[cfg(test)]
impl Layout {
    /// The unit tests' fixture: what sections.ld produces for the example's image.ld.
    pub(crate) fn example() -> Self {
        Self {
            dtb: 0x8000_0000..0x8020_0000,
            text: 0x8020_0000..0x8020_5000,
            rodata: 0x8020_6000..0x8020_8000,
            data: 0x8040_0000..0x8040_0020,
            data_load_address: 0x8020_8000,
            bss: 0x8040_0020..0x8042_0000,
            exception_stack: 0x8042_1000..0x8042_5000,
            boot_stack: 0x8042_6000..0x8044_e000,
            image_end: 0x8020_8020,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_layout_is_consistent() {
        assert_eq!(Layout::example().check(), Ok(()));
        assert_eq!(Layout::example().image(), 0x8020_0000..0x8020_8020);
        assert_eq!(Layout::example().data_and_bss(), 0x8040_0000..0x8042_0000);
    }

    #[test]
    fn guard_pages_sit_below_the_stacks() {
        let layout = Layout::example();
        assert_eq!(
            layout.guard_page(StackGuard::Boot),
            0x8042_5000..0x8042_6000
        );
        assert_eq!(layout.stack_guard_hit(0x8042_5ff8), Some(StackGuard::Boot));
        assert_eq!(
            layout.stack_guard_hit(0x8042_0000),
            Some(StackGuard::Exception)
        );
        assert_eq!(layout.stack_guard_hit(0x8042_6000), None);
        assert_eq!(layout.stack_guard_hit(0x8042_1000), None);
    }

    #[test]
    fn broken_layouts_are_caught() {
        let mut unaligned = Layout::example();
        unaligned.rodata.start += 8;
        assert_eq!(unaligned.check(), Err(LayoutError::Unaligned(0x8020_6008)));

        let mut overlapping = Layout::example();
        overlapping.bss.end = 0x8042_2000;
        assert_eq!(overlapping.check(), Err(LayoutError::Overlap(0x8042_0000)));

        let mut reversed = Layout::example();
        reversed.data.end = reversed.data.start - 1;
        assert_eq!(reversed.check(), Err(LayoutError::Reversed(0x8040_0000)));

        let mut dtb_in_image = Layout::example();
        dtb_in_image.dtb = 0x8040_0000..0x8060_0000;
        assert!(dtb_in_image.check().is_err());
    }
}
