// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The FDT header (Devicetree Specification 5.2): its fields, the version check, and where the
//! structure and strings blocks lie.

use super::{Fdt, FdtError};

/// The magic number at the start of every FDT.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Size of the FDT header (version 17).
pub const HEADER_SIZE: usize = 40;
/// Header fields, by byte offset.
pub(super) const TOTAL_SIZE: usize = 4;
pub(super) const OFF_DT_STRUCT: usize = 8;
pub(super) const OFF_DT_STRINGS: usize = 12;
pub(super) const OFF_MEM_RSVMAP: usize = 16;
pub(super) const VERSION: usize = 20;
pub(super) const LAST_COMP_VERSION: usize = 24;
pub(super) const BOOT_CPUID_PHYS: usize = 28;
pub(super) const SIZE_DT_STRINGS: usize = 32;
pub(super) const SIZE_DT_STRUCT: usize = 36;
/// The FDT version this reader implements, and the one the editor writes. A tree can be read
/// when its `last_comp_version` (the oldest version it is compatible with) is at most this.
pub const READER_VERSION: u32 = 17;
/// The `last_comp_version` the editor writes: version 17 trees read as version 16 ones.
pub(super) const WRITER_LAST_COMP_VERSION: u32 = 16;
/// The largest tree [`from_region`](super::from_region) takes: crosvm's limit, and Linux's
/// (booting.rst). It bounds what vmbase reads when the region is large, as a window over all of
/// RAM is.
pub const MAX_SIZE: usize = crate::layout::crosvm::FDT_MAX_SIZE;

/// The big-endian word at byte `offset` of `bytes`.
pub(super) fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    let bytes = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// Reads the `totalsize` field of an FDT header, after checking the magic.
///
/// `header` needs only the first [`HEADER_SIZE`] bytes; this is how a caller learns how much of
/// memory to look at before calling [`Fdt::new`].
pub fn total_size(header: &[u8]) -> Result<usize, FdtError> {
    let magic = be32(header, 0).ok_or(FdtError::Truncated)?;
    if magic != FDT_MAGIC {
        return Err(FdtError::BadMagic(magic));
    }
    let size = be32(header, TOTAL_SIZE).ok_or(FdtError::Truncated)?;
    usize::try_from(size).map_err(|_| FdtError::BadLayout)
}

impl<'a> Fdt<'a> {
    /// Checks the header of `blob` and the placement of its blocks. The structure block is
    /// checked as it is read, so this costs the same for any size of tree.
    pub fn new(blob: &'a [u8]) -> Result<Self, FdtError> {
        let size = total_size(blob)?;
        if size < HEADER_SIZE || size > blob.len() {
            return Err(FdtError::Truncated);
        }
        let blob = &blob[..size];
        let field = |offset| {
            be32(blob, offset)
                .map(|v| v as usize)
                .ok_or(FdtError::Truncated)
        };
        let last_compatible = field(LAST_COMP_VERSION)? as u32;
        if last_compatible > READER_VERSION {
            return Err(FdtError::UnsupportedVersion(last_compatible));
        }
        let block = |offset: usize, len: usize| {
            let end = offset.checked_add(len).ok_or(FdtError::BadLayout)?;
            blob.get(offset..end).ok_or(FdtError::BadLayout)
        };
        let structure_start = field(OFF_DT_STRUCT)?;
        let structure = block(structure_start, field(SIZE_DT_STRUCT)?)?;
        let strings = block(field(OFF_DT_STRINGS)?, field(SIZE_DT_STRINGS)?)?;
        if structure_start % 4 != 0 {
            return Err(FdtError::BadLayout);
        }
        if blob.as_ptr() as usize % 8 != 0 {
            return Err(FdtError::Misaligned);
        }
        // SAFETY: Every bit pattern is a valid u32, and the words borrow the same bytes.
        let (prefix, words, _) = unsafe { structure.align_to::<u32>() };
        if !prefix.is_empty() {
            return Err(FdtError::Misaligned);
        }
        Ok(Self {
            blob,
            structure_start,
            structure,
            words,
            strings,
        })
    }

    /// The whole blob, `totalsize` bytes long.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.blob
    }
}
