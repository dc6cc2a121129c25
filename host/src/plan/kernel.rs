// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Kernel boot: where kernel, initrd and device tree go in RAM.
//!
//! This is crosvm's direct kernel boot: the kernel at the start of RAM plus its `text_offset`,
//! the initrd after it at the next 16 MiB boundary, the device tree 2 MiB + 64 KiB below the end
//! of RAM.

use crate::layout::{
    FDT_MAX_SIZE, INITRD_ALIGNMENT, KERNEL_BOOT_FDT_OFFSET_FROM_END, MIB, RAM_START,
};
use std::ops::Range;
use vmbase::linux::ImageHeader;

/// What is to be loaded in a kernel boot, before it is placed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KernelPayload {
    /// The kernel's header, or `None` for a kernel that is not an `Image`, which is loaded at
    /// the start of RAM as it is (only with a firmware, whose job is to refuse it).
    pub(crate) header: Option<ImageHeader>,
    /// The kernel file's size.
    pub(crate) kernel_file_size: u64,
    /// The initrd file's size, if there is one.
    pub(crate) initrd_size: Option<u64>,
}

/// Where kernel, initrd and device tree go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KernelLayout {
    /// Where the kernel file is loaded; its start is the kernel's entry point.
    pub(crate) kernel: Range<u64>,
    /// Where the initrd is loaded.
    pub(crate) initrd: Option<Range<u64>>,
    /// Where the device tree is loaded (its region is 2 MiB).
    pub(crate) fdt_address: u64,
}

/// Why a kernel boot does not fit in RAM: what needs how much.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DoesNotFit {
    /// The smallest `memory_mib` that fits.
    pub(crate) required_mib: u64,
}

/// Places kernel, initrd and device tree in `memory_mib` of RAM, as crosvm does.
///
/// The initrd follows what the kernel occupies once running (`image_size` when larger than
/// the file, as it is with `.bss`), so that clearing `.bss` cannot overwrite it.
pub(crate) fn kernel_layout(
    payload: &KernelPayload,
    memory_mib: u32,
) -> Result<KernelLayout, DoesNotFit> {
    let (text_offset, image_size) = payload.header.map_or((0, 0), |header| {
        (header.text_offset as u64, header.image_size as u64)
    });
    // Saturating: absurd header values only make the layout not fit.
    let kernel_start = RAM_START.saturating_add(text_offset);
    let kernel = kernel_start..kernel_start.saturating_add(payload.kernel_file_size);
    let kernel_footprint_end =
        kernel_start.saturating_add(image_size.max(payload.kernel_file_size));
    let initrd = payload.initrd_size.map(|size| {
        let start = kernel_footprint_end.saturating_add(INITRD_ALIGNMENT - 1) / INITRD_ALIGNMENT
            * INITRD_ALIGNMENT;
        start..start.saturating_add(size)
    });
    let payload_end = initrd
        .as_ref()
        .map_or(kernel_footprint_end, |initrd| initrd.end);
    // The device tree's region, and the 64 KiB above it, end RAM.
    let needed = (payload_end - RAM_START).saturating_add(KERNEL_BOOT_FDT_OFFSET_FROM_END);
    let memory = u64::from(memory_mib) * MIB;
    if needed > memory {
        return Err(DoesNotFit {
            required_mib: needed.div_ceil(MIB),
        });
    }
    let fdt_address = RAM_START + memory - KERNEL_BOOT_FDT_OFFSET_FROM_END;
    debug_assert!(fdt_address + FDT_MAX_SIZE <= RAM_START + memory);
    Ok(KernelLayout {
        kernel,
        initrd,
        fdt_address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(image_size: u64, file_size: u64, initrd_size: Option<u64>) -> KernelPayload {
        KernelPayload {
            header: Some(ImageHeader {
                text_offset: 0,
                image_size: image_size as usize,
                flags: 0,
            }),
            kernel_file_size: file_size,
            initrd_size,
        }
    }

    #[test]
    fn debian_kernel_with_initrd_in_512_mib() {
        let layout = kernel_layout(&payload(0x201_0000, 0x1f6_e000, Some(0x1c_3000)), 512).unwrap();
        assert_eq!(layout.kernel, 0x8000_0000..0x81f6_e000);
        // image_size reaches past 32 MiB, so the initrd goes to 48 MiB, not 32.
        assert_eq!(layout.initrd, Some(0x8300_0000..0x831c_3000));
        assert_eq!(
            layout.fdt_address,
            0x8000_0000 + (512 << 20) - (2 << 20) - 0x1_0000
        );
    }

    #[test]
    fn initrd_follows_the_larger_of_file_and_image_size() {
        let layout = kernel_layout(&payload(0x10_0000, 0x110_0000, Some(1)), 64).unwrap();
        assert_eq!(layout.initrd, Some(0x8200_0000..0x8200_0001));
        let layout = kernel_layout(&payload(0x100_0000, 0x1000, Some(1)), 64).unwrap();
        assert_eq!(layout.initrd, Some(0x8100_0000..0x8100_0001));
    }

    #[test]
    fn text_offset_moves_the_kernel() {
        let mut kernel = payload(0x1000, 0x800, None);
        kernel.header = Some(ImageHeader {
            text_offset: 0x8_0000,
            image_size: 0x1000,
            flags: 0,
        });
        let layout = kernel_layout(&kernel, 16).unwrap();
        assert_eq!(layout.kernel, 0x8008_0000..0x8008_0800);
        assert_eq!(layout.initrd, None);
    }

    #[test]
    fn raw_payload_goes_to_ram_start() {
        let raw = KernelPayload {
            header: None,
            kernel_file_size: 10,
            initrd_size: Some(10),
        };
        let layout = kernel_layout(&raw, 32).unwrap();
        assert_eq!(layout.kernel, 0x8000_0000..0x8000_000a);
        assert_eq!(layout.initrd, Some(0x8100_0000..0x8100_000a));
    }

    #[test]
    fn refuses_what_does_not_fit() {
        // Kernel up to 32 MiB, initrd at 32 MiB: 32 MiB + 1 byte + 2 MiB + 64 KiB.
        let kernel = payload(0x200_0000, 0x200_0000, Some(1));
        assert_eq!(
            kernel_layout(&kernel, 34),
            Err(DoesNotFit { required_mib: 35 })
        );
        assert!(kernel_layout(&kernel, 35).is_ok());
        // Exactly full: the kernel ends where the device tree's region starts.
        let exact = payload(0x100_0000 - 0x21_0000, 0x1000, None);
        assert_eq!(kernel_layout(&exact, 16).unwrap().fdt_address, 0x80df_0000);
        assert!(kernel_layout(&payload(0x100_0000 - 0x20_ffff, 0x1000, None), 16).is_err());
        // An absurd header does not overflow.
        let absurd = KernelPayload {
            header: Some(ImageHeader {
                text_offset: usize::MAX,
                image_size: usize::MAX,
                flags: 0,
            }),
            kernel_file_size: 1,
            initrd_size: Some(u64::MAX),
        };
        assert!(kernel_layout(&absurd, 16).is_err());
    }
}
