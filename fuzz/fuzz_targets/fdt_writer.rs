// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the guest's FDT writer, running a script of edits on an arbitrary tree and
//! re-reading the result after each edit that succeeds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vmbase::fdt::writer::FdtWriter;
use vmbase::fdt::Fdt;

/// Bytes of edit script before the tree: 8 edits of 4 bytes.
const SCRIPT: usize = 32;
const PATHS: [&[u8]; 6] = [b"/", b"/chosen", b"/aliases", b"/memory", b"/n", b"/n/m"];
const NAMES: [&[u8]; 6] = [b"bootargs", b"stdout-path", b"reg", b"x", b"compatible", b"n"];

/// An 8-byte aligned copy of `bytes` in a buffer `room` bytes larger.
fn aligned(bytes: &[u8], room: usize) -> Vec<u64> {
    let mut words = vec![0u64; (bytes.len() + room).div_ceil(8)];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
        let mut padded = [0; 8];
        padded[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_ne_bytes(padded);
    }
    words
}

fn as_bytes(words: &mut [u64]) -> &mut [u8] {
    let len = words.len() * 8;
    // SAFETY: u64 words are plain bytes, and the slice borrows them exclusively.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
}

fuzz_target!(|data: &[u8]| {
    let Some((script, tree)) = data.split_at_checked(SCRIPT) else { return };
    // The tree edited where it lies (if it is in the canonical layout)...
    let mut in_place = aligned(tree, usize::from(script[0]));
    if let Ok(mut writer) = FdtWriter::new(&mut as_bytes(&mut in_place)[..]) {
        run(&mut writer, script);
    }
    // ...and after a move into a larger buffer.
    let mut larger = aligned(&[], tree.len() + usize::from(script[1]) * 4);
    if let Ok(mut writer) = FdtWriter::open_into(tree, as_bytes(&mut larger)) {
        run(&mut writer, script);
    }
});

fn run(writer: &mut FdtWriter, script: &[u8]) {
    for edit in script.chunks_exact(4) {
        let path = PATHS[usize::from(edit[1]) % PATHS.len()];
        let name = NAMES[usize::from(edit[2]) % NAMES.len()];
        let value = vec![edit[3]; usize::from(edit[3] % 64)];
        let done = match edit[0] % 4 {
            0 => writer.set_property(path, name, &value).is_ok(),
            1 => writer.delete_property(path, name).is_ok(),
            2 => writer.add_node(path, name).is_ok(),
            _ => writer.pack().is_ok(),
        };
        if done {
            let fdt = writer.fdt().expect("an edit left an unreadable header");
            fdt.check().expect("an edit left an invalid tree");
            if edit[0] % 4 == 0 {
                assert_eq!(fdt.property(path, name).unwrap(), Some(&value[..]));
            }
            assert!(Fdt::new(writer.as_bytes()).is_ok());
        }
    }
}
