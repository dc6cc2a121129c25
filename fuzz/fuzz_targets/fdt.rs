// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the guest's FDT reader and console selection, fed an arbitrary (hostile) blob.

#![no_main]

// The guest's own sources, compiled for the host.
#[allow(dead_code)]
#[path = "../../src/console.rs"]
mod console;
#[allow(dead_code)]
#[path = "../../src/layout/crosvm.rs"]
mod crosvm;
#[allow(dead_code)]
#[path = "../../src/fdt/mod.rs"]
mod fdt;
#[allow(dead_code)]
#[path = "../../src/uart.rs"]
mod uart;
/// crosvm's memory map where the guest's sources look for it: the FDT reader and the console
/// take their limits from it.
mod layout {
    pub(crate) use super::crosvm;
}

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
    if let Ok(tree) = fdt::Fdt::new(blob) {
        read_everything(&tree);
    }
    let _ = console::ConsoleDevice::from_fdt(blob);
});

/// Every read the reader offers, each run to its end.
fn read_everything(fdt: &fdt::Fdt) {
    let _ = fdt.check();
    let _ = fdt.chosen();
    let _ = fdt.resolve(b"serial0");
    let _ = fdt.resolve(b"/chosen");
    if let Ok(memory) = fdt.memory() {
        memory.for_each(drop);
    }
    fdt.compatible_nodes(b"arm,pl011").for_each(drop);
    let mut level: Vec<_> = fdt.root().into_iter().collect();
    for _ in 0..=fdt::MAX_DEPTH {
        let mut next = Vec::new();
        for node in &level {
            node.properties().for_each(drop);
            let _ = node.cells();
            let _ = node.reg().map(|reg| reg.map(Iterator::count));
            let _ = node.ranges().map(|ranges| ranges.map(Iterator::count));
            next.extend(node.children().map_while(Result::ok).take(64));
            let mut seen = 0;
            let _ = node.scan_children(None, |_| {
                seen += 1;
                Ok(seen == 3)
            });
            if let Ok((cells, children)) = node.cells_and_children() {
                let _ = node.scan_child_offsets(children, |offset, _, _| {
                    let _ = fdt.node_at(offset, cells);
                    false
                });
            }
        }
        level = next;
    }
}
