// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the guest's FDT reader and console selection, fed an arbitrary (hostile) blob.

#![no_main]

// The guest's own sources, compiled for the host; the fuzzer uses only the parsing half.
#[allow(dead_code)]
#[path = "../../src/console.rs"]
mod console;
#[allow(dead_code)]
#[path = "../../src/fdt.rs"]
mod fdt;
#[allow(dead_code)]
#[path = "../../src/uart.rs"]
mod uart;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|blob: &[u8]| {
    // The blob as the guest finds it: a VMM-given address at the start of a memory region.
    let start = blob.as_ptr() as usize;
    // SAFETY: blob is readable and nothing writes it during this call.
    let found = unsafe { fdt::from_region(start as u64, start..start + blob.len()) };
    assert!(found.is_none_or(|found| blob.starts_with(found)));

    let _ = fdt::total_size(blob);
    if let Ok(tree) = fdt::Fdt::new(blob) {
        let _ = tree.property(b"/chosen", b"stdout-path");
        if let Ok(node) = tree.stdout() {
            let _ = node.is_compatible("ns16550a");
        }
    }
    let _ = console::ConsoleDevice::from_fdt(blob);
});
