// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the guest's FDT reader and console selection, fed an arbitrary (hostile) blob.

#![no_main]

use vmbase::{console, fdt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The blob as the guest finds it: a VMM-given address at the start of a memory region, 8-byte
    // aligned as the boot protocol requires (libFuzzer's buffer may not be).
    let mut words = vec![0u64; data.len().div_ceil(8)];
    for (word, chunk) in words.iter_mut().zip(data.chunks(8)) {
        let mut bytes = [0; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_ne_bytes(bytes);
    }
    // SAFETY: words holds at least data.len() initialised bytes, and lives past this use.
    let blob = unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), data.len()) };
    let start = blob.as_ptr() as usize;
    // SAFETY: blob is readable and nothing writes it during this call.
    let found = unsafe { fdt::from_region(start as u64, start..start + blob.len()) };
    assert!(found.is_none_or(|found| blob.starts_with(found)));

    let _ = fdt::total_size(blob);
    fdt::read_everything(blob);
    let _ = console::ConsoleDevice::from_fdt(blob);
});

