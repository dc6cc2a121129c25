// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the guest's FDT editor, running a script of edits on an arbitrary tree in tight
//! buffers. After each edit: a refused edit left the tree's bytes as they were; an accepted one
//! left a valid tree in which the edited node kept its other properties, in order.
//!
//! Input: two bytes of spare room (the in-place buffer's bytes after the tree; the moved copy's
//! bytes after what it needs), a byte of edit count, the edits, then the tree. An edit is an
//! operation byte, a path byte (an index into [`PATHS`]), a name length byte, two bytes of value
//! length (big-endian, taken modulo 2049: values up to 2 KiB), then the name and the value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vmbase::fdt::editor::FdtEditor;
use vmbase::fdt::Fdt;
use vmbase_fuzz::Aligned;

/// Nodes that edits name (the ones hostile trees and the seeds have).
const PATHS: [&[u8]; 8] = [
    b"/",
    b"/chosen",
    b"/aliases",
    b"/memory",
    b"/n",
    b"/n/m",
    b"/soc",
    b"/pcie@10000000",
];
/// Values longer than this are cut.
const MAX_VALUE: usize = 2048;

#[derive(Debug)]
enum Operation {
    Set,
    Delete,
    AddNode,
    Pack,
}

#[derive(Debug)]
struct Edit<'a> {
    operation: Operation,
    path: &'a [u8],
    name: &'a [u8],
    value: &'a [u8],
}

/// Splits the script off the front of `data`: the edits, and the rest (the tree).
fn parse(mut data: &[u8]) -> Option<(usize, usize, Vec<Edit<'_>>, &[u8])> {
    let mut take = |count: usize| {
        let (taken, rest) = data.split_at_checked(count)?;
        data = rest;
        Some(taken)
    };
    let &[in_place_room, moved_room, count] = take(3)? else {
        return None;
    };
    let mut edits = Vec::new();
    for _ in 0..count % 17 {
        let &[operation, path, name_len, value_hi, value_lo] = take(5)? else {
            return None;
        };
        let value_len = usize::from(u16::from_be_bytes([value_hi, value_lo])) % (MAX_VALUE + 1);
        edits.push(Edit {
            operation: match operation % 4 {
                0 => Operation::Set,
                1 => Operation::Delete,
                2 => Operation::AddNode,
                _ => Operation::Pack,
            },
            path: PATHS[usize::from(path) % PATHS.len()],
            name: take(usize::from(name_len))?,
            value: take(value_len)?,
        });
    }
    Some((
        usize::from(in_place_room),
        usize::from(moved_room),
        edits,
        data,
    ))
}

fuzz_target!(|data: &[u8]| {
    let Some((in_place_room, moved_room, edits, tree)) = parse(data) else {
        return;
    };
    // The tree edited where it lies (if it is in the canonical layout), its buffer ending
    // `in_place_room` bytes after it...
    let size = vmbase::fdt::total_size(tree)
        .unwrap_or(tree.len())
        .min(tree.len());
    let mut in_place = Aligned::new(&tree[..size], size + in_place_room);
    if let Ok(mut editor) = FdtEditor::new(in_place.bytes_mut()) {
        run(&mut editor, &edits);
    }
    // ...and moved into a buffer `moved_room` bytes larger than the tree needs (found by a
    // first move into a buffer as large as the input).
    let mut probe = Aligned::new(&[], tree.len());
    let Ok(needed) = FdtEditor::open_into(tree, probe.bytes_mut()).map(|w| w.as_bytes().len())
    else {
        return;
    };
    let mut moved = Aligned::new(&[], needed + moved_room);
    let mut editor = FdtEditor::open_into(tree, moved.bytes_mut()).expect("a larger buffer");
    run(&mut editor, &edits);
});

/// The properties of the node at `path`, without those named `except`; `None` if it cannot be
/// read.
fn properties<'a>(fdt: &'a Fdt, path: &[u8], except: &[u8]) -> Option<Vec<(&'a [u8], &'a [u8])>> {
    let node = fdt.node(path).ok()??;
    node.properties()
        .map(|property| property.map(|p| (p.name, p.value)))
        .filter(|property| !matches!(property, Ok((name, _)) if *name == except))
        .collect::<Result<_, _>>()
        .ok()
}

fn run(editor: &mut FdtEditor, edits: &[Edit]) {
    for edit in edits {
        let before = editor.as_bytes().to_vec();
        let before_fdt = Fdt::new(&before).expect("the open tree reads");
        let kept = properties(&before_fdt, edit.path, edit.name);
        let done = match edit.operation {
            Operation::Set => editor
                .set_property(edit.path, edit.name, edit.value)
                .is_ok(),
            Operation::Delete => editor.delete_property(edit.path, edit.name).is_ok(),
            Operation::AddNode => editor.add_node(edit.path, edit.name).is_ok(),
            Operation::Pack => editor.pack().is_ok(),
        };
        if !done {
            assert_eq!(
                editor.as_bytes(),
                before,
                "a refused {edit:?} changed the tree"
            );
            continue;
        }
        let fdt = editor.fdt().expect("an edit left an unreadable header");
        fdt.check().expect("an edit left an invalid tree");
        assert!(Fdt::new(editor.as_bytes()).is_ok());
        if let Operation::Set = edit.operation {
            assert_eq!(
                fdt.property(edit.path, edit.name).unwrap(),
                Some(edit.value)
            );
        }
        if kept.is_some() {
            assert_eq!(
                properties(&fdt, edit.path, edit.name),
                kept,
                "{edit:?} changed the node's other properties"
            );
        }
    }
}
