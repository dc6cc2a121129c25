// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the guest's FDT reader and console selection, fed an arbitrary (hostile) blob.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vmbase::{console, fdt};
use vmbase_fuzz::Aligned;

fuzz_target!(|data: &[u8]| {
    // The blob as the guest finds it: a VMM-given address at the start of a memory region.
    let memory = Aligned::new(data, data.len());
    let blob = memory.bytes();
    let start = blob.as_ptr() as usize;
    // SAFETY: blob is readable and nothing writes it during this call.
    let found = unsafe { fdt::from_region(start as u64, start..start + blob.len()) };
    assert!(found.is_none_or(|found| blob.starts_with(found)));

    let _ = fdt::total_size(blob);
    fdt::read_everything(blob);
    let _ = console::ConsoleDevice::from_fdt(blob);
});
