// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Where the VMM put things, checked before vmbase_linuxboot maps anything: plain functions over
//! address ranges. A crate of its own so that its unit tests run on the host (`cargo test`), where
//! the firmware itself does not build.

#![cfg_attr(not(test), no_std)]

use core::fmt;
use vmbase::memory::AddressRange;

/// The room crosvm leaves for the device tree at `x0`: the tree and whatever it grows into.
pub const FDT_REGION_SIZE: u64 = 2 << 20;

/// The granule the run-time page table maps in.
const PAGE_SIZE: u64 = 4096;

/// One of the things a firmware boot places in memory.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Part {
    /// The device tree's region (`x0` and the [`FDT_REGION_SIZE`] bytes from it).
    Fdt,
    /// The kernel as loaded (`x1`, `x2` bytes), or as it runs (`image_size` bytes).
    Kernel,
    /// The initrd (`/chosen/linux,initrd-start` to `linux,initrd-end`).
    Initrd,
    /// This firmware: its image, data and stacks.
    Firmware,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Self::Fdt => "the device tree",
            Self::Kernel => "the kernel",
            Self::Initrd => "the initrd",
            Self::Firmware => "the firmware",
        })
    }
}

/// Why the layout the VMM handed over cannot be booted.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum LayoutError {
    /// A part holds no byte, or its end overflows the address space.
    Empty(Part),
    /// A part is not entirely inside RAM.
    OutsideRam {
        /// Which.
        part: Part,
        /// Where it is.
        range: AddressRange,
        /// Where RAM is (`/memory`).
        ram: AddressRange,
    },
    /// Two parts share at least one byte.
    Overlap(Part, Part),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Empty(part) => write!(f, "{part} is empty or ends past the address space"),
            Self::OutsideRam { part, range, ram } => {
                write!(f, "{part} ({range}) is outside RAM ({ram})")
            }
            Self::Overlap(first, second) => write!(f, "{second} overlaps {first}"),
        }
    }
}

/// What the VMM handed the firmware, as address ranges.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Handoff {
    /// RAM, from `/memory`.
    pub ram: AddressRange,
    /// This firmware's memory.
    pub firmware: AddressRange,
    /// The device tree's region: `x0` and [`FDT_REGION_SIZE`] bytes.
    pub fdt: AddressRange,
    /// The kernel as loaded: `x1`, `x2` bytes.
    pub kernel: AddressRange,
    /// The initrd, if `/chosen` names one.
    pub initrd: Option<AddressRange>,
}

impl Handoff {
    /// The firmware, then the parts the VMM placed in RAM, in the order they are checked.
    fn parts(&self) -> impl Iterator<Item = (Part, &AddressRange)> {
        [
            (Part::Firmware, Some(&self.firmware)),
            (Part::Fdt, Some(&self.fdt)),
            (Part::Kernel, Some(&self.kernel)),
            (Part::Initrd, self.initrd.as_ref()),
        ]
        .into_iter()
        .filter_map(|(part, range)| Some((part, range?)))
    }

    /// Checks that the device tree's region, the kernel and the initrd are non-empty and inside
    /// RAM, and that no two of them and the firmware overlap. The first problem found is returned.
    pub fn check(&self) -> Result<(), LayoutError> {
        for (part, range) in self.parts().filter(|(part, _)| *part != Part::Firmware) {
            if range.is_empty() {
                return Err(LayoutError::Empty(part));
            }
            if !self.ram.covers(range) {
                return Err(LayoutError::OutsideRam {
                    part,
                    range: *range,
                    ram: self.ram,
                });
            }
        }
        for (index, (first, a)) in self.parts().enumerate() {
            if let Some((second, _)) = self.parts().skip(index + 1).find(|(_, b)| a.overlaps(b)) {
                return Err(LayoutError::Overlap(first, second));
            }
        }
        Ok(())
    }

    /// The lowest page-aligned `size` bytes of RAM clear of every part and of `running_kernel`
    /// (the kernel's memory where it will run), if RAM has such a gap.
    pub fn free_range(&self, size: u64, running_kernel: &AddressRange) -> Option<AddressRange> {
        let taken = || self.parts().map(|(_, range)| range).chain([running_kernel]);
        // The lowest gap starts at the start of RAM or at the end of something taken.
        core::iter::once(self.ram.start())
            .chain(taken().map(AddressRange::end))
            .filter_map(|start| AddressRange::new(start.checked_next_multiple_of(PAGE_SIZE)?, size))
            .filter(|candidate| {
                self.ram.covers(candidate) && taken().all(|range| !range.overlaps(candidate))
            })
            .min_by_key(AddressRange::start)
    }

    /// Where the kernel's copy of the tree goes if it fits in the tree's region: `size` bytes
    /// from the first 8-byte boundary after the VMM's tree (`vmm_tree_len` bytes from the
    /// region's start), as crosvm intends the region's free end to be used.
    pub fn tree_copy_slot(&self, vmm_tree_len: u64, size: u64) -> Option<AddressRange> {
        let start = self
            .fdt
            .start()
            .checked_add(vmm_tree_len)?
            .checked_next_multiple_of(8)?;
        AddressRange::new(start, size).filter(|slot| self.fdt.covers(slot))
    }

    /// The first part (other than the kernel) that the kernel's memory once it runs, `footprint`
    /// (its `image_size` from where it runs, `.bss` included), would overlap.
    pub fn footprint_overlap(&self, footprint: &AddressRange) -> Option<Part> {
        self.parts()
            .filter(|(part, _)| *part != Part::Kernel)
            .find(|(_, range)| footprint.overlaps(range))
            .map(|(part, _)| part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `start..end`, for the tests' literals.
    fn r(start: u64, end: u64) -> AddressRange {
        AddressRange::from_bounds(start, end).unwrap()
    }

    /// `size` bytes from `start`.
    fn range(start: u64, size: u64) -> Option<AddressRange> {
        AddressRange::new(start, size)
    }

    const MIB: u64 = 1 << 20;
    const RAM_START: u64 = 0x8000_0000;

    /// What `vm run --firmware` hands over with 300 MiB: a 30 MiB kernel with a 40 MiB
    /// footprint at the start of RAM, the initrd at the next 16 MiB boundary, the tree 2 MiB +
    /// 64 KiB below the end of RAM.
    fn crosvm_like() -> Handoff {
        let ram = r(RAM_START, RAM_START + 300 * MIB);
        Handoff {
            fdt: range(ram.end() - 2 * MIB - 0x1_0000, FDT_REGION_SIZE).unwrap(),
            kernel: range(RAM_START, 30 * MIB).unwrap(),
            initrd: range(RAM_START + 48 * MIB, 3 * MIB),
            firmware: r(RAM_START - 4 * MIB, RAM_START),
            ram,
        }
    }

    #[test]
    fn crosvm_layout_is_accepted() {
        assert_eq!(crosvm_like().check(), Ok(()));
        let without_initrd = Handoff {
            initrd: None,
            ..crosvm_like()
        };
        assert_eq!(without_initrd.check(), Ok(()));
    }

    #[test]
    fn each_part_must_be_inside_ram() {
        let base = crosvm_like();
        let outside = [
            (Part::Kernel, r(RAM_START - 0x1000, RAM_START + 0x1000)),
            (Part::Kernel, r(0x4000_0000, 0x4100_0000)),
            (Part::Initrd, r(base.ram.end() - 0x1000, base.ram.end() + 1)),
            (
                Part::Fdt,
                r(
                    base.ram.end() - 0x1000,
                    base.ram.end() - 0x1000 + FDT_REGION_SIZE,
                ),
            ),
        ];
        for (part, range) in outside {
            let mut handoff = base.clone();
            match part {
                Part::Kernel => handoff.kernel = range,
                Part::Initrd => handoff.initrd = Some(range),
                _ => handoff.fdt = range,
            }
            assert_eq!(
                handoff.check(),
                Err(LayoutError::OutsideRam {
                    part,
                    range,
                    ram: base.ram
                })
            );
        }
    }

    #[test]
    fn an_empty_part_is_refused() {
        let handoff = Handoff {
            kernel: r(RAM_START, RAM_START),
            ..crosvm_like()
        };
        assert_eq!(handoff.check(), Err(LayoutError::Empty(Part::Kernel)));
    }

    #[test]
    fn overlaps_are_refused_and_named() {
        let base = crosvm_like();
        let initrd_in_kernel = Handoff {
            initrd: range(RAM_START + 16 * MIB, MIB),
            ..base.clone()
        };
        assert_eq!(
            initrd_in_kernel.check(),
            Err(LayoutError::Overlap(Part::Kernel, Part::Initrd))
        );
        assert_eq!(
            initrd_in_kernel.check().unwrap_err().to_string(),
            "the initrd overlaps the kernel"
        );
        let initrd_on_fdt = Handoff {
            initrd: range(base.fdt.start() - 0x1000, 0x2000),
            ..base.clone()
        };
        assert_eq!(
            initrd_on_fdt.check(),
            Err(LayoutError::Overlap(Part::Fdt, Part::Initrd))
        );
        let kernel_on_fdt = Handoff {
            kernel: r(base.fdt.end() - 8, base.fdt.end() + 8),
            initrd: None,
            ..base.clone()
        };
        assert_eq!(
            kernel_on_fdt.check(),
            Err(LayoutError::Overlap(Part::Fdt, Part::Kernel))
        );
        // Touching ends are not an overlap.
        let adjacent = Handoff {
            initrd: Some(r(base.kernel.end(), base.kernel.end() + MIB)),
            ..base
        };
        assert_eq!(adjacent.check(), Ok(()));
    }

    #[test]
    fn ram_that_includes_the_firmware_must_not_put_anything_on_it() {
        let mut handoff = crosvm_like();
        handoff.ram = r(RAM_START - 4 * MIB, handoff.ram.end());
        handoff.kernel = r(RAM_START - MIB, RAM_START + MIB);
        assert_eq!(
            handoff.check(),
            Err(LayoutError::Overlap(Part::Firmware, Part::Kernel))
        );
    }

    #[test]
    fn free_range_is_the_lowest_gap_clear_of_everything() {
        let handoff = crosvm_like();
        let kernel_runs = r(RAM_START, RAM_START + 40 * MIB);
        // Past the running kernel, below the initrd at 48 MiB.
        assert_eq!(
            handoff.free_range(0x3000, &kernel_runs),
            range(RAM_START + 40 * MIB, 0x3000)
        );
        // Too large for that gap: past the initrd.
        assert_eq!(
            handoff.free_range(9 * MIB, &kernel_runs),
            range(RAM_START + 51 * MIB, 9 * MIB)
        );
        // Ends are rounded up to pages.
        let odd_kernel = r(RAM_START, RAM_START + 40 * MIB + 1);
        assert_eq!(
            handoff.free_range(0x1000, &odd_kernel),
            range(RAM_START + 40 * MIB + 0x1000, 0x1000)
        );
        // Nothing fits: all of RAM, or more than the gaps.
        assert_eq!(handoff.free_range(300 * MIB, &kernel_runs), None);
        let ram_is_full = Handoff {
            kernel: r(handoff.ram.start(), handoff.fdt.start()),
            initrd: None,
            ..handoff.clone()
        };
        assert_eq!(ram_is_full.free_range(0x10_0000, &ram_is_full.kernel), None);
        assert_eq!(handoff.free_range(u64::MAX, &kernel_runs), None);
    }

    #[test]
    fn the_tree_copy_goes_after_the_vmm_tree_when_the_region_has_room() {
        let handoff = crosvm_like();
        let start = handoff.fdt.start();
        assert_eq!(
            handoff.tree_copy_slot(3466, 7562),
            range(start + 3472, 7562),
            "the copy starts at the next 8-byte boundary"
        );
        assert_eq!(
            handoff.tree_copy_slot(0x1000, FDT_REGION_SIZE - 0x1000),
            range(start + 0x1000, FDT_REGION_SIZE - 0x1000),
            "exactly the rest of the region fits"
        );
        assert_eq!(
            handoff.tree_copy_slot(0x1000, FDT_REGION_SIZE - 0xfff),
            None
        );
        assert_eq!(
            handoff.tree_copy_slot(FDT_REGION_SIZE, 8),
            None,
            "a padded tree"
        );
        assert_eq!(handoff.tree_copy_slot(u64::MAX, 8), None);
    }

    #[test]
    fn the_running_kernel_must_leave_the_other_parts_alone() {
        let handoff = crosvm_like();
        // Debian's kernel: a 30 MiB file, 40 MiB once .bss is counted: short of the initrd.
        assert_eq!(
            handoff.footprint_overlap(&r(RAM_START, RAM_START + 40 * MIB)),
            None
        );
        assert_eq!(
            handoff.footprint_overlap(&r(RAM_START, RAM_START + 50 * MIB)),
            Some(Part::Initrd)
        );
        // The first part in the way is named, the device tree before the initrd.
        assert_eq!(
            handoff.footprint_overlap(&r(RAM_START, handoff.ram.end())),
            Some(Part::Fdt)
        );
        assert_eq!(
            handoff.footprint_overlap(&r(RAM_START - 0x1000, RAM_START + 0x1000)),
            Some(Part::Firmware)
        );
    }
}
