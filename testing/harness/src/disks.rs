// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The disks of vmbase_virtio's `disks` test: what the read-only one holds and what the guest
//! writes to the writable one (shared by vmbase_virtio's tests and the nested-KVM tests). The
//! patterns and sizes must match the guest's (testing/virtio/src/main.rs).

/// The size of each disk.
pub const DISK_SIZE: usize = 1 << 20;
/// A virtio-blk sector.
pub const SECTOR: usize = 512;
/// Must match WRITE_SECTORS in the guest.
pub const WRITE_SECTORS: std::ops::Range<usize> = 3..3 + 700;
/// What the writable disk holds before the guest writes.
pub const FILL: u8 = 0xee;

/// Must match the guest's read_pattern.
fn read_pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(0x9e37_79b9) >> 13) as u8 ^ (offset >> 9) as u8
}

/// Must match the guest's write_pattern.
fn write_pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(0x0100_0193) >> 7) as u8 ^ 0x5a ^ (offset >> 9) as u8
}

/// The first disk's image: the read pattern, then the FNV-1a hash of it (little-endian).
pub fn source_image() -> Vec<u8> {
    let mut image: Vec<u8> = (0..(DISK_SIZE - 8) as u64).map(read_pattern).collect();
    let hash = image.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    image.extend_from_slice(&hash.to_le_bytes());
    image
}

/// The writable disk after the guest's `disks` test: [`FILL`], with the write pattern over
/// [`WRITE_SECTORS`].
pub fn written_target_image() -> Vec<u8> {
    let inside = WRITE_SECTORS.start * SECTOR..WRITE_SECTORS.end * SECTOR;
    (0..DISK_SIZE)
        .map(|offset| {
            if inside.contains(&offset) {
                write_pattern(offset as u64)
            } else {
                FILL
            }
        })
        .collect()
}
