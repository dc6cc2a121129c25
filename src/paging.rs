// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Identity-mapped page tables with the memory types entry.S configures, on `aarch64-paging`.
//!
//! entry.S sets `MAIR_EL1` index 0 to Device-nGnRE and index 1 to Normal write-back memory, and
//! `TCR_EL1` to a 39-bit address space walked from level 1; tables built here match that.

use crate::layout::{Layout, Stack, PAGE_SIZE};
use aarch64_paging::idmap::IdMap;
use aarch64_paging::paging::{Attributes, MemoryRegion, TranslationRegime};
use aarch64_paging::MapError;
use alloc::boxed::Box;
use core::ops::Range;

/// The level translation starts at; with 4 KiB granules it covers 512 GiB (TCR_EL1.T0SZ = 25).
const ROOT_LEVEL: usize = 1;
/// The ASID of vmbase's page tables; the boot idmap is global (ASID-less).
const ASID: usize = 1;

const BASE: Attributes = Attributes::VALID.union(Attributes::ACCESSED);
const NORMAL: Attributes = BASE
    .union(Attributes::ATTRIBUTE_INDEX_1)
    .union(Attributes::INNER_SHAREABLE);
const NEVER_EXECUTE: Attributes = Attributes::UXN.union(Attributes::PXN);

/// MMIO: Device-nGnRE, never executable.
pub const DEVICE: Attributes = BASE
    .union(Attributes::ATTRIBUTE_INDEX_0)
    .union(NEVER_EXECUTE);
/// Code: read-only, executable at EL1.
pub const CODE: Attributes = NORMAL.union(Attributes::READ_ONLY).union(Attributes::UXN);
/// Constants: read-only, never executable.
pub const RODATA: Attributes = NORMAL.union(Attributes::READ_ONLY).union(NEVER_EXECUTE);
/// Data, heap and stacks: writable, never executable.
pub const DATA: Attributes = NORMAL.union(NEVER_EXECUTE);

/// A mapping that is both writable and executable, found by [`PageTable::find_writable_executable`].
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct WritableExecutable {
    /// The addresses it covers.
    pub range: Range<usize>,
    /// Its attributes.
    pub attributes: Attributes,
}

/// An identity map for EL1, with vmbase's attributes.
#[derive(Debug)]
pub struct PageTable {
    idmap: IdMap,
    /// Whether the table is in `TTBR0_EL1`: every change then needs TLB maintenance, which
    /// aarch64-paging leaves to its user.
    live: bool,
}

impl Default for PageTable {
    fn default() -> Self {
        Self::new()
    }
}

fn region(range: &Range<usize>) -> MemoryRegion {
    MemoryRegion::new(range.start, range.end)
}

fn page_align_up(address: usize) -> usize {
    address.next_multiple_of(PAGE_SIZE)
}

impl PageTable {
    /// An empty page table.
    pub fn new() -> Self {
        Self {
            idmap: IdMap::new(ASID, ROOT_LEVEL, TranslationRegime::El1And0),
            live: false,
        }
    }

    /// Maps `range` with `attributes` (unmaps it if they lack [`Attributes::VALID`]). On a live
    /// table aarch64-paging refuses a change that needs break-before-make
    /// ([`MapError::BreakBeforeMakeViolation`]), and the TLB entries of the range are invalidated
    /// afterwards, so the change holds on every CPU when this returns.
    pub fn map(&mut self, range: &Range<usize>, attributes: Attributes) -> Result<(), MapError> {
        let region = region(range);
        self.idmap.map_range(&region, attributes)?;
        if self.live {
            self.invalidate_tlb_entries(&region)?;
        }
        Ok(())
    }

    /// Drops every CPU's cached translations of `region` after a change to it: the descriptor
    /// writes are made visible to every table walker (`DSB ISHST`), then each descriptor now
    /// covering the region is invalidated for all ASIDs by one address inside it (`TLBI VAAE1IS`;
    /// one is enough for a block of any size), and the invalidation completes before the next
    /// instruction (`DSB ISH`, `ISB`).
    fn invalidate_tlb_entries(&self, region: &MemoryRegion) -> Result<(), MapError> {
        #[cfg(all(target_arch = "aarch64", not(target_os = "linux"), not(test)))]
        {
            use crate::arch::aarch64;
            aarch64::dsb_ishst();
            self.idmap.walk_range(region, &mut |covered, _, _| {
                aarch64::tlbi_vaae1is(covered.start().0);
                Ok(())
            })?;
            aarch64::dsb_ish();
            aarch64::isb();
        }
        // Host builds never load a table into an MMU: they have no TLB to maintain.
        #[cfg(not(all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
        let _ = region;
        Ok(())
    }

    /// Maps `range` as MMIO: Device-nGnRE, never executable (AOSP's `map_device`).
    pub fn map_device(&mut self, range: &Range<usize>) -> Result<(), MapError> {
        self.map(range, DEVICE)
    }

    /// Maps `range` as code: read-only, executable at EL1 (AOSP's `map_code`).
    pub fn map_code(&mut self, range: &Range<usize>) -> Result<(), MapError> {
        self.map(range, CODE)
    }

    /// Maps `range` as constants: read-only, never executable (AOSP's `map_rodata`).
    pub fn map_rodata(&mut self, range: &Range<usize>) -> Result<(), MapError> {
        self.map(range, RODATA)
    }

    /// Maps `range` as data: writable, never executable (AOSP's `map_data`).
    pub fn map_data(&mut self, range: &Range<usize>) -> Result<(), MapError> {
        self.map(range, DATA)
    }

    /// Maps the binary itself: code, read-only data, the initial values of `.data`, `.data` and
    /// `.bss`, both stacks (leaving their guard pages unmapped, so an overflow faults), and the
    /// FDT region (read-only). The caller maps MMIO and any other memory it uses.
    pub fn map_image(&mut self, layout: &Layout) -> Result<(), MapError> {
        self.map_code(&(layout.text.start..layout.rodata.start))?;
        self.map_rodata(&(layout.rodata.start..page_align_up(layout.image_end)))?;
        self.map_data(&(layout.data.start..page_align_up(layout.bss.end)))?;
        self.map_data(&layout.exception_stack)?;
        self.map_data(&layout.boot_stack)?;
        debug_assert!(!layout
            .boot_stack
            .contains(&layout.guard_page(Stack::Boot).start));
        self.map_rodata(&layout.dtb)
    }

    /// The first mapping in `range` that is both writable and executable at EL1, if any. A
    /// descriptor with bits [`Attributes`] does not name, which this type never writes, is
    /// reported as [`MapError::PteUpdateFault`] rather than judged.
    pub fn find_writable_executable(
        &self,
        range: &Range<usize>,
    ) -> Result<Option<WritableExecutable>, MapError> {
        let mut found = None;
        self.idmap
            .walk_range(&region(range), &mut |mapped, descriptor, level| {
                let attributes = descriptor.flags().ok_or(())?;
                let is_leaf = attributes.contains(Attributes::VALID)
                    && (level == 3 || !attributes.contains(Attributes::TABLE_OR_PAGE));
                let writable = !attributes.contains(Attributes::READ_ONLY);
                let executable = !attributes.contains(Attributes::PXN);
                if found.is_none() && is_leaf && writable && executable {
                    found = Some(WritableExecutable {
                        range: mapped.start().0..mapped.end().0,
                        attributes,
                    });
                }
                Ok(())
            })?;
        Ok(found)
    }

    /// Removes the mappings of `range`. On an active table this is break-before-make's "break":
    /// invalid descriptors are written, then the range is invalidated in every CPU's TLB
    /// (`DSB ISHST`, `TLBI VAAE1IS` per descriptor, `DSB ISH`, `ISB`). aarch64-paging refuses to
    /// split a live block mapping ([`MapError::BreakBeforeMakeViolation`]).
    pub fn unmap(&mut self, range: &Range<usize>) -> Result<(), MapError> {
        self.map(range, Attributes::empty())
    }

    /// Whether any address in `range` is mapped.
    pub fn is_mapped(&self, range: &Range<usize>) -> Result<bool, MapError> {
        let mut mapped = false;
        self.idmap
            .walk_range(&region(range), &mut |_, descriptor, _| {
                mapped |= descriptor.is_valid();
                Ok(())
            })?;
        Ok(mapped)
    }

    /// Switches to this page table for good (it is leaked, never freed), and discards
    /// translations cached from the previous one.
    ///
    /// # Safety
    ///
    /// Everything the program touches from now on (code, data, stacks, heap, MMIO) must be
    /// mapped, with the access it needs, and nothing may alias memory in a way Rust forbids.
    pub unsafe fn activate(self) {
        let table = Box::leak(Box::new(self));
        // SAFETY: The caller's promise; the table is leaked, so it is never freed.
        unsafe { table.activate_in_place() };
    }

    /// Switches to this page table and discards translations cached from the previous one. From
    /// then on aarch64-paging checks every change for break-before-make, and [`map`](Self::map)
    /// and [`unmap`](Self::unmap) do the TLB maintenance.
    ///
    /// # Safety
    ///
    /// As for [`activate`](Self::activate), and the table must never be dropped or moved out of
    /// its current owner afterwards (it stays in use until the VM ends).
    pub(crate) unsafe fn activate_in_place(&mut self) {
        // SAFETY: The caller promises that the table maps all the memory in use and outlives its
        // use.
        unsafe { self.idmap.activate() };
        self.live = true;
        // Drop the previous table's translations, including global ones that changing the ASID
        // does not hide.
        #[cfg(all(target_arch = "aarch64", not(target_os = "linux"), not(test)))]
        crate::arch::aarch64::invalidate_tlb();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idmap_header_agrees_with_the_attributes() {
        let header = crate::layout::tests::defines(include_str!("../include/vmbase/idmap.h"));
        let field = |name| header[name];
        assert_eq!(field("MAIR_INDEX_DEVICE"), 0);
        assert_eq!(field("MAIR_INDEX_NORMAL"), 1);
        let expected = [
            ("DESC_BLOCK", Attributes::VALID),
            ("DESC_TABLE", Attributes::VALID | Attributes::TABLE_OR_PAGE),
            ("DESC_ATTR_DEVICE", Attributes::ATTRIBUTE_INDEX_0),
            ("DESC_ATTR_NORMAL", Attributes::ATTRIBUTE_INDEX_1),
            ("DESC_AP_READ_ONLY", Attributes::READ_ONLY),
            ("DESC_SH_INNER", Attributes::INNER_SHAREABLE),
            ("DESC_AF", Attributes::ACCESSED),
            ("DESC_PXN", Attributes::PXN),
            ("DESC_UXN", Attributes::UXN),
        ];
        for (name, attributes) in expected {
            assert_eq!(field(name), attributes.bits() as u64, "{name}");
        }
        assert_eq!(header.len(), expected.len() + 2);
        // The attribute indices in the descriptors are the MAIR indices (AttrIndx, bits [4:2]).
        assert_eq!(field("DESC_ATTR_DEVICE"), field("MAIR_INDEX_DEVICE") << 2);
        assert_eq!(field("DESC_ATTR_NORMAL"), field("MAIR_INDEX_NORMAL") << 2);
    }

    #[test]
    fn image_mapping_has_no_writable_executable_memory() {
        let mut table = PageTable::new();
        table.map_device(&(0..0x4000_0000)).unwrap();
        table.map_image(&Layout::example()).unwrap();
        assert_eq!(
            table.find_writable_executable(&(0..0x1_0000_0000)),
            Ok(None)
        );
    }

    #[test]
    fn only_a_live_table_refuses_to_split_a_block() {
        let block = 0x8000_0000..0x8020_0000;
        let first_page = 0x8000_0000..0x8000_1000;
        let mut table = PageTable::new();
        table.map_data(&block).unwrap();
        table.unmap(&first_page).unwrap();
        assert!(!table.is_mapped(&first_page).unwrap());

        let mut live = PageTable::new();
        live.map_data(&block).unwrap();
        // SAFETY: In host tests activation only marks the table live; no register is written.
        unsafe { live.activate_in_place() };
        assert!(matches!(
            live.unmap(&first_page),
            Err(MapError::BreakBeforeMakeViolation(_))
        ));
        assert!(live.is_mapped(&first_page).unwrap());
        live.unmap(&block).unwrap();
        assert!(!live.is_mapped(&block).unwrap());
    }

    #[test]
    fn writable_executable_memory_is_found() {
        let mut table = PageTable::new();
        table.map(&(0x8060_0000..0x8060_1000), NORMAL).unwrap();
        let found = table
            .find_writable_executable(&(0..0x1_0000_0000))
            .unwrap()
            .unwrap();
        assert_eq!(found.range, 0x8060_0000..0x8060_1000);
    }
}
