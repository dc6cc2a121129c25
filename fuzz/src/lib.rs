// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0
//! What the fuzz targets share: fuzz input laid out in memory as the guest finds a tree.

/// Bytes in 8-byte aligned memory, as the boot protocol places a device tree (libFuzzer's
/// buffer may not be aligned), in a buffer of an exact size so that edits meet its real end.
pub struct Aligned {
    words: Vec<u64>,
    len: usize,
}

impl Aligned {
    /// A buffer of `len` bytes (at least `bytes.len()`) that starts with `bytes`, zeroes after.
    pub fn new(bytes: &[u8], len: usize) -> Self {
        let len = len.max(bytes.len());
        let mut words = vec![0u64; len.div_ceil(8)];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
            let mut padded = [0; 8];
            padded[..chunk.len()].copy_from_slice(chunk);
            *word = u64::from_ne_bytes(padded);
        }
        Self { words, len }
    }

    /// The buffer.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: words holds at least len initialised bytes (u64 has no padding), borrowed
        // shared with self.
        unsafe { core::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }

    /// The buffer, to write.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: As in bytes, borrowed exclusively with self; any byte is a valid u64 part.
        unsafe { core::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }
}
