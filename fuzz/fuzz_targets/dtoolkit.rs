// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0
//! Evaluation target: Google's `dtoolkit` crate (reader and in-place writer) fed the same
//! hostile blobs as vmbase's own FDT code. Kept to re-check a newer dtoolkit against the bar
//! the README sets before switching to it.

#![no_main]

use dtoolkit::fdt::Fdt;
use dtoolkit::fdt_mut::FdtMut;
use dtoolkit::{Node, Property};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // dtoolkit wants the slice to be exactly totalsize long.
    let size = match data.get(4..8) {
        Some(field) => u32::from_be_bytes(field.try_into().unwrap()) as usize,
        None => return,
    };
    let Some(blob) = data.get(..size) else { return };
    let Ok(fdt) = Fdt::new(blob) else { return };

    // Reads a bootloader makes.
    let _ = fdt
        .memory()
        .map(|memory| memory.reg().map(|reg| reg.map(|r| r.count())));
    if let Some(chosen) = fdt.chosen() {
        let _ = chosen.bootargs();
        let _ = chosen.stdout_path();
    }
    let _ = fdt.find_node("/chosen");
    let _ = fdt.find_node("/soc/uart");
    let _ = fdt.memory_reservations().count();
    // Every node, without recursion, with its properties and decoded reg/ranges.
    let mut stack = vec![fdt.root()];
    let mut visited = 0;
    while let Some(node) = stack.pop() {
        visited += 1;
        if visited > 10_000 {
            break;
        }
        let _ = node.name();
        for property in node.properties() {
            let _ = property.value_as::<&str>();
            let _ = property.value_as::<u32>();
        }
        let _ = node.compatible().map(Iterator::count);
        if let Ok(Some(reg)) = node.reg() {
            for entry in reg {
                let _ = entry.address::<u64>();
            }
        }
        let _ = node.ranges().map(|ranges| ranges.map(Iterator::count));
        stack.extend(node.children());
    }

    // Edits a bootloader makes, in a larger buffer, then a re-read.
    let Ok(mut tree) = FdtMut::new(blob.to_vec()) else {
        return;
    };
    if let Some(mut chosen) = tree.find_node_mut("/chosen") {
        let _ = chosen.add_property("kaslr-seed", [0u8; 8]);
        if let Some(mut bootargs) = chosen.property_mut("bootargs") {
            let _ = bootargs.set_value(&b"console=ttyS0 a-longer-command-line\0"[..]);
        }
        chosen.remove_property("stdout-path");
    }
    let mut root = tree.root_mut();
    let _ = root.add_property("added", 7u32);
    let _ = root.remove_child("memory");
    tree.compact();
    let edited = tree.as_read_only().data().to_vec();
    assert!(Fdt::new(&edited).is_ok(), "an edit left an invalid tree");
});
