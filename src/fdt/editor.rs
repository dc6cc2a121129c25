// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Editing a device tree in place, in a buffer the caller owns: set, add and delete properties,
//! add nodes, move into a larger buffer, pack.
//!
//! The tree is checked once when opened ([`Fdt::check`]) and kept in the canonical layout
//! (header, memory reservations, structure block, strings block, then free space up to the end
//! of the buffer), so every edit is one move of the bytes after it. An edit that does not fit
//! fails with [`FdtError::NoSpace`] and leaves the tree as it was.

use super::header::{
    be32, BOOT_CPUID_PHYS, FDT_MAGIC, HEADER_SIZE, LAST_COMP_VERSION, OFF_DT_STRINGS,
    OFF_DT_STRUCT, OFF_MEM_RSVMAP, READER_VERSION, SIZE_DT_STRINGS, SIZE_DT_STRUCT, TOTAL_SIZE,
    VERSION, WRITER_LAST_COMP_VERSION,
};
use super::walk::{Token, FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP};
use super::{Fdt, FdtError};

/// One memory reservation entry: address and size, 64 bits each.
const RESERVATION_SIZE: usize = 16;

/// A device tree being edited inside a buffer; the tree is at its start.
#[derive(Debug)]
pub struct FdtEditor<'b> {
    buffer: &'b mut [u8],
}

fn field(blob: &[u8], offset: usize) -> usize {
    // Opening checked that the header is there; a missing field reads as 0, never a panic.
    be32(blob, offset).unwrap_or(0) as usize
}

fn put(buffer: &mut [u8], offset: usize, value: usize) {
    let value = u32::try_from(value).unwrap_or(u32::MAX).to_be_bytes();
    if let Some(slot) = buffer.get_mut(offset..offset + 4) {
        slot.copy_from_slice(&value);
    }
}

/// Checks a name to write: non-empty, no NUL, and for nodes no '/'.
fn check_name(name: &[u8], node: bool) -> Result<(), FdtError> {
    if name.is_empty() || name.contains(&0) || (node && name.contains(&b'/')) {
        return Err(FdtError::BadName);
    }
    Ok(())
}

/// The offset of the terminating entry of the memory reservation block at `start`, if it ends
/// before `limit`.
fn reservations_end(blob: &[u8], start: usize, limit: usize) -> Result<usize, FdtError> {
    let mut offset = start;
    while offset
        .checked_add(RESERVATION_SIZE)
        .is_some_and(|end| end <= limit)
    {
        let entry = &blob[offset..offset + RESERVATION_SIZE];
        offset += RESERVATION_SIZE;
        if entry.iter().all(|&b| b == 0) {
            return Ok(offset);
        }
    }
    Err(FdtError::BadLayout)
}

/// The tree `blob` (its header checked, not its structure) and its memory reservation block
/// (terminator included): what [`FdtEditor::open_into`] copies, with the structure and strings
/// blocks.
fn packed_parts(blob: &[u8]) -> Result<(Fdt<'_>, &[u8]), FdtError> {
    let fdt = Fdt::new(blob)?;
    let blob = fdt.as_bytes();
    let rsv_start = field(blob, OFF_MEM_RSVMAP);
    if rsv_start < HEADER_SIZE || rsv_start % 8 != 0 {
        return Err(FdtError::BadLayout);
    }
    let rsv_end = reservations_end(blob, rsv_start, blob.len())?;
    Ok((fdt, &blob[rsv_start..rsv_end]))
}

/// The bytes the tree `blob` takes once packed, as [`FdtEditor::open_into`] copies it: its
/// `totalsize` less any padding (a tree `dtc -S` or `-p` padded is larger than its content).
/// It reads the header and the reservation block only, so that sizing a buffer costs no walk of
/// the structure: [`FdtEditor::open_into`] checks the whole tree.
pub fn packed_size(blob: &[u8]) -> Result<usize, FdtError> {
    let (fdt, reservations) = packed_parts(blob)?;
    Ok(HEADER_SIZE + reservations.len() + fdt.structure.len() + fdt.strings.len())
}

impl<'b> FdtEditor<'b> {
    /// Opens the tree at the start of `buffer` for editing; the bytes after its `totalsize`
    /// are room to grow. The tree must already be in the canonical layout (as dtc and libfdt
    /// write it); [`FdtEditor::open_into`] takes any valid tree.
    pub fn new(buffer: &'b mut [u8]) -> Result<Self, FdtError> {
        let fdt = Fdt::new(buffer)?;
        fdt.check()?;
        let blob = fdt.as_bytes();
        let struct_start = field(blob, OFF_DT_STRUCT);
        let strings_start = field(blob, OFF_DT_STRINGS);
        let rsv_start = field(blob, OFF_MEM_RSVMAP);
        if field(blob, VERSION) < READER_VERSION as usize
            || rsv_start < HEADER_SIZE
            || rsv_start % 8 != 0
            || reservations_end(blob, rsv_start, struct_start)? != struct_start
            || struct_start + fdt.structure.len() != strings_start
            || strings_start + fdt.strings.len() != blob.len()
        {
            return Err(FdtError::BadLayout);
        }
        Ok(Self { buffer })
    }

    /// Copies the valid tree `blob` into `buffer` in the canonical layout and opens it there:
    /// how a tree moves into a larger buffer (or leaves a read-only one).
    pub fn open_into(blob: &[u8], buffer: &'b mut [u8]) -> Result<Self, FdtError> {
        let (fdt, reservations) = packed_parts(blob)?;
        fdt.check()?;
        let blob = fdt.as_bytes();
        let struct_start = HEADER_SIZE + reservations.len();
        let strings_start = struct_start + fdt.structure.len();
        let total = strings_start + fdt.strings.len();
        if total > buffer.len() {
            return Err(FdtError::NoSpace(total));
        }
        let header = [
            (0, FDT_MAGIC as usize),
            (TOTAL_SIZE, total),
            (OFF_DT_STRUCT, struct_start),
            (OFF_DT_STRINGS, strings_start),
            (OFF_MEM_RSVMAP, HEADER_SIZE),
            (VERSION, READER_VERSION as usize),
            (LAST_COMP_VERSION, WRITER_LAST_COMP_VERSION as usize),
            (BOOT_CPUID_PHYS, field(blob, BOOT_CPUID_PHYS)),
            (SIZE_DT_STRINGS, fdt.strings.len()),
            (SIZE_DT_STRUCT, fdt.structure.len()),
        ];
        for (offset, value) in header {
            put(buffer, offset, value);
        }
        buffer[HEADER_SIZE..struct_start].copy_from_slice(reservations);
        buffer[struct_start..strings_start].copy_from_slice(fdt.structure);
        buffer[strings_start..total].copy_from_slice(fdt.strings);
        Ok(Self { buffer })
    }

    /// The tree as it is now, `totalsize` bytes.
    pub fn as_bytes(&self) -> &[u8] {
        let total = field(self.buffer, TOTAL_SIZE).min(self.buffer.len());
        &self.buffer[..total]
    }

    /// A reader of the tree as it is now.
    pub fn fdt(&self) -> Result<Fdt<'_>, FdtError> {
        Fdt::new(self.as_bytes())
    }

    /// Sets property `name` of the node at `path` to `value`, adding it if it is missing.
    pub fn set_property(&mut self, path: &[u8], name: &[u8], value: &[u8]) -> Result<(), FdtError> {
        check_name(name, false)?;
        let len = u32::try_from(value.len()).map_err(|_| FdtError::NoSpace(usize::MAX))?;
        let padded = value.len().next_multiple_of(4);
        let (struct_start, found) = self.find_property(path, name)?;
        let value_start = match found {
            Found::Property { offset, value_len } => {
                let old_padded = value_len.next_multiple_of(4);
                let value_start = struct_start + offset + 12;
                if padded > old_padded {
                    self.insert(value_start + old_padded, padded - old_padded)?;
                } else {
                    self.remove(value_start + padded, old_padded - padded);
                }
                value_start
            }
            Found::Node { properties_end } => {
                let existing = self.find_string(name);
                let string_size = if existing.is_some() {
                    0
                } else {
                    name.len() + 1
                };
                let needed = self.as_bytes().len() + 12 + padded + string_size;
                if needed > self.buffer.len() {
                    return Err(FdtError::NoSpace(needed));
                }
                let name_offset = match existing {
                    Some(offset) => offset,
                    None => self.append_string(name)?,
                };
                let at = struct_start + properties_end;
                self.insert(at, 12 + padded)?;
                put(self.buffer, at, FDT_PROP as usize);
                put(self.buffer, at + 8, name_offset);
                at + 12
            }
        };
        put(self.buffer, value_start - 8, len as usize);
        self.buffer[value_start..value_start + value.len()].copy_from_slice(value);
        self.buffer[value_start + value.len()..value_start + padded].fill(0);
        Ok(())
    }

    /// Deletes property `name` of the node at `path`.
    pub fn delete_property(&mut self, path: &[u8], name: &[u8]) -> Result<(), FdtError> {
        // As for set_property: "\0" must not be taken for a property named "".
        check_name(name, false)?;
        match self.find_property(path, name)? {
            (struct_start, Found::Property { offset, value_len }) => {
                self.remove(struct_start + offset, 12 + value_len.next_multiple_of(4));
                Ok(())
            }
            (_, Found::Node { .. }) => Err(FdtError::NotFound),
        }
    }

    /// Adds an empty node `name` ("uart@1000") as the first child of the node at `parent`.
    pub fn add_node(&mut self, parent: &[u8], name: &[u8]) -> Result<(), FdtError> {
        check_name(name, true)?;
        let fdt = self.fdt()?;
        let node = fdt.node(parent)?.ok_or(FdtError::NotFound)?;
        for child in node.children() {
            if child?.name() == name {
                return Err(FdtError::Exists);
            }
        }
        let at = fdt.structure_start + properties_end(&fdt, node.body)?;
        let name_size = (name.len() + 1).next_multiple_of(4);
        self.insert(at, 4 + name_size + 4)?;
        put(self.buffer, at, FDT_BEGIN_NODE as usize);
        self.buffer[at + 4..at + 4 + name.len()].copy_from_slice(name);
        self.buffer[at + 4 + name.len()..at + 4 + name_size].fill(0);
        put(self.buffer, at + 4 + name_size, FDT_END_NODE as usize);
        Ok(())
    }

    /// Removes the `FDT_NOP` tokens (which other tools leave where they deleted something) and
    /// returns the tree's size, which is then the least its contents need.
    pub fn pack(&mut self) -> Result<usize, FdtError> {
        let fdt = self.fdt()?;
        let (struct_start, struct_len) = (fdt.structure_start, fdt.structure.len());
        let strings = struct_start + struct_len..struct_start + struct_len + fdt.strings.len();
        // One pass: each token that is not a NOP moves down over the NOPs before it. Reading
        // stays ahead of writing, and the header is only updated at the end.
        let (mut read, mut write) = (0, 0);
        loop {
            let (token, next) = self.fdt()?.token(read)?;
            let (is_nop, is_end) = (matches!(token, Token::Nop), matches!(token, Token::End));
            let next = next.min(struct_len);
            if !is_nop {
                self.buffer.copy_within(
                    struct_start + read..struct_start + next,
                    struct_start + write,
                );
                write += next - read;
            }
            read = next;
            if is_end || read >= struct_len {
                break;
            }
        }
        let removed = struct_len - write;
        let total = strings.end;
        self.buffer.copy_within(strings, struct_start + write);
        self.buffer[total - removed..total].fill(0);
        self.resize_structure(-(removed as isize));
        Ok(self.as_bytes().len())
    }

    /// Where property `name` of the node at `path` is, relative to the structure block (whose
    /// offset in the blob comes first), or where a new one would go.
    fn find_property(&self, path: &[u8], name: &[u8]) -> Result<(usize, Found), FdtError> {
        let fdt = self.fdt()?;
        let node = fdt.node(path)?.ok_or(FdtError::NotFound)?;
        let properties_end =
            fdt.scan_properties(node.body, |name_offset, _| fdt.string_is(name_offset, name))?;
        let found = match fdt.token(properties_end)? {
            (Token::Property { value, .. }, _) => Found::Property {
                offset: properties_end,
                value_len: value.len(),
            },
            _ => Found::Node { properties_end },
        };
        Ok((fdt.structure_start, found))
    }

    /// The offset of `name` in the strings block, if it is there.
    fn find_string(&self, name: &[u8]) -> Option<usize> {
        let fdt = self.fdt().ok()?;
        fdt.strings
            .windows(name.len() + 1)
            .position(|w| w[..name.len()] == *name && w[name.len()] == 0)
    }

    /// Appends `name` to the strings block (the end of the tree) and returns its offset there.
    fn append_string(&mut self, name: &[u8]) -> Result<usize, FdtError> {
        let total = self.as_bytes().len();
        let needed = total + name.len() + 1;
        if needed > self.buffer.len() {
            return Err(FdtError::NoSpace(needed));
        }
        self.buffer[total..total + name.len()].copy_from_slice(name);
        self.buffer[total + name.len()] = 0;
        let strings_size = field(self.buffer, SIZE_DT_STRINGS);
        put(self.buffer, SIZE_DT_STRINGS, strings_size + name.len() + 1);
        put(self.buffer, TOTAL_SIZE, needed);
        Ok(strings_size)
    }

    /// Opens `len` zeroed bytes at blob offset `at` in the structure block.
    fn insert(&mut self, at: usize, len: usize) -> Result<(), FdtError> {
        let total = self.as_bytes().len();
        let needed = total
            .checked_add(len)
            .ok_or(FdtError::NoSpace(usize::MAX))?;
        if needed > self.buffer.len() || needed > u32::MAX as usize {
            return Err(FdtError::NoSpace(needed));
        }
        self.buffer.copy_within(at..total, at + len);
        self.buffer[at..at + len].fill(0);
        self.resize_structure(len as isize);
        Ok(())
    }

    /// Closes `len` bytes at blob offset `at` in the structure block.
    fn remove(&mut self, at: usize, len: usize) {
        let total = self.as_bytes().len();
        self.buffer.copy_within(at + len..total, at);
        self.buffer[total - len..total].fill(0);
        self.resize_structure(-(len as isize));
    }

    fn resize_structure(&mut self, delta: isize) {
        for offset in [TOTAL_SIZE, OFF_DT_STRINGS, SIZE_DT_STRUCT] {
            let value = field(self.buffer, offset).wrapping_add_signed(delta);
            put(self.buffer, offset, value);
        }
    }
}

/// What [`FdtEditor::find_property`] found.
enum Found {
    /// The property, at this offset into the structure block, with a value this long.
    Property { offset: usize, value_len: usize },
    /// No such property; a new one goes at this offset, after the node's last property.
    Node { properties_end: usize },
}

/// The offset after the properties (and NOPs among them) that start at `body`.
fn properties_end(fdt: &Fdt, body: usize) -> Result<usize, FdtError> {
    fdt.scan_properties(body, |_, _| false)
}

#[cfg(test)]
mod tests {
    use super::super::split_stdout_path;
    use super::super::tests::{crosvm_like, qemu_virt, FdtBuilder};
    use super::super::walk::FDT_NOP;
    use super::*;
    use crate::memory::AddressRange;
    use std::process::Command;

    /// Runs dtc, which `tools/install-deps.sh` installs (package `device-tree-compiler`).
    fn dtc(args: &[&str], input: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut child = Command::new("dtc")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dtc is missing: run tools/install-deps.sh (or make test)");
        child.stdin.take().unwrap().write_all(input).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "dtc {args:?} failed");
        output.stdout
    }

    #[test]
    fn a_padded_tree_packs_to_its_content() {
        let original = qemu_virt();
        let packed = packed_size(&original).unwrap();
        assert!(packed <= original.len());
        // dtc -S pads the tree to the size asked for: 2 MiB, the most a tree may have.
        let padded = dtc(&["-I", "dtb", "-O", "dtb", "-S", "2097152"], &original);
        assert_eq!(padded.len(), 2 << 20);
        assert_eq!(packed_size(&padded), Ok(packed));
        let mut buffer = vec![0u8; packed];
        let editor = FdtEditor::open_into(&padded, &mut buffer).unwrap();
        assert_eq!(editor.as_bytes().len(), packed);
        assert_eq!(
            FdtEditor::open_into(&padded, &mut buffer[..packed - 1]).err(),
            Some(FdtError::NoSpace(packed))
        );
        assert_eq!(
            FdtError::NoSpace(packed).to_string(),
            format!("the edited FDT needs {packed} bytes, more than the buffer it is edited in")
        );
    }

    #[test]
    fn edits_read_back_through_the_reader_and_dtc() {
        let original = qemu_virt();
        let mut buffer = vec![0u8; original.len() + 4096];
        let mut editor = FdtEditor::open_into(&original, &mut buffer).unwrap();
        editor
            .set_property(b"/chosen", b"bootargs", b"console=ttyAMA0 panic=-1 quiet\0")
            .unwrap();
        editor
            .set_property(b"/chosen", b"kaslr-seed", &[7; 8])
            .unwrap();
        editor
            .set_property(b"/chosen", b"rng-seed", &[1; 3])
            .unwrap();
        editor.delete_property(b"/chosen", b"stdout-path").unwrap();
        editor.add_node(b"/", b"firmware@1000").unwrap();
        editor
            .set_property(b"/firmware@1000", b"compatible", b"vmbase,test\0")
            .unwrap();
        editor
            .set_property(
                b"/firmware",
                b"reg",
                &[0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x10, 0],
            )
            .unwrap();
        let size = editor.pack().unwrap();
        assert_eq!(size, editor.as_bytes().len());

        let fdt = editor.fdt().unwrap();
        fdt.check().unwrap();
        let chosen = fdt.chosen().unwrap().unwrap();
        assert_eq!(
            chosen.bootargs,
            Some(&b"console=ttyAMA0 panic=-1 quiet"[..])
        );
        assert_eq!(chosen.stdout_path, None);
        assert_eq!(
            fdt.property(b"/chosen", b"kaslr-seed").unwrap(),
            Some(&[7; 8][..])
        );
        assert_eq!(
            fdt.property(b"/chosen", b"rng-seed").unwrap(),
            Some(&[1; 3][..])
        );
        let firmware = fdt.node(b"/firmware").unwrap().unwrap();
        let reg: Vec<_> = firmware.reg().unwrap().unwrap().collect();
        assert_eq!(reg, [[0x1000, 0x1000]]);
        // Everything else is as QEMU wrote it.
        let before = Fdt::new(&original).unwrap();
        for path in [
            &b"/pl011@9000000"[..],
            b"/memory",
            b"/intc@8000000/its@8080000",
        ] {
            let old: Vec<_> = before.node(path).unwrap().unwrap().properties().collect();
            let new: Vec<_> = fdt.node(path).unwrap().unwrap().properties().collect();
            assert_eq!(old, new);
        }

        // dtc reads what the editor wrote...
        let dts = String::from_utf8(dtc(&["-I", "dtb", "-O", "dts"], editor.as_bytes())).unwrap();
        assert!(
            dts.contains("bootargs = \"console=ttyAMA0 panic=-1 quiet\";"),
            "{dts}"
        );
        assert!(dts.contains("firmware@1000 {"), "{dts}");
        assert!(dts.contains("compatible = \"vmbase,test\";"), "{dts}");
        assert!(!dts.contains("stdout-path"), "{dts}");
        // ...and writes the same tree back, which the reader reads the same.
        let again = dtc(&["-I", "dts", "-O", "dtb"], dts.as_bytes());
        let again = Fdt::new(&again).unwrap();
        again.check().unwrap();
        assert_eq!(
            again.property(b"/firmware@1000", b"compatible").unwrap(),
            Some(&b"vmbase,test\0"[..])
        );
        assert_eq!(again.chosen().unwrap().unwrap().bootargs, chosen.bootargs);
    }

    #[test]
    fn reads_what_dtc_compiles() {
        let source = b"/dts-v1/;
            / {
                #address-cells = <1>; #size-cells = <1>;
                aliases { serial0 = &uart; };
                chosen { stdout-path = \"serial0:115200n8\"; linux,initrd-start = <0x100>; linux,initrd-end = <0x200>; };
                memory@80000000 { device_type = \"memory\"; reg = <0x80000000 0x1000 0x90000000 0x2000>; };
                soc { #address-cells = <1>; #size-cells = <1>; ranges = <0x0 0x10000000 0x1000>;
                    uart: serial@100 { compatible = \"acme,uart\", \"ns16550a\"; reg = <0x100 0x8>; };
                };
            };";
        let blob = dtc(&["-I", "dts", "-O", "dtb"], source);
        let fdt = Fdt::new(&blob).unwrap();
        fdt.check().unwrap();
        let memory: Vec<_> = fdt.memory().unwrap().map(Result::unwrap).collect();
        assert_eq!(
            memory,
            [
                AddressRange::from(0x8000_0000..0x8000_1000),
                AddressRange::from(0x9000_0000..0x9000_2000)
            ]
        );
        let chosen = fdt.chosen().unwrap().unwrap();
        assert_eq!(chosen.initrd, Some(AddressRange::from(0x100..0x200)));
        let (alias, _) = split_stdout_path(chosen.stdout_path.unwrap());
        let uart = fdt.resolve(alias).unwrap().unwrap();
        assert_eq!(uart.name(), b"serial@100");
        assert_eq!(
            uart.reg().unwrap().unwrap().collect::<Vec<_>>(),
            [[0x100, 8]]
        );
        let soc = fdt.node(b"/soc").unwrap().unwrap();
        assert_eq!(
            soc.ranges().unwrap().unwrap().collect::<Vec<_>>(),
            [[0, 0x1000_0000, 0x1000]]
        );
        let found: Vec<_> = fdt
            .compatible_nodes(b"ns16550a")
            .map(|node| node.unwrap().name())
            .collect();
        assert_eq!(found, [b"serial@100"]);
    }

    #[test]
    fn an_edit_that_does_not_fit_changes_nothing() {
        let original = crosvm_like();
        let mut buffer = original.clone();
        buffer.extend_from_slice(&[0; 16]);
        let mut editor = FdtEditor::new(&mut buffer).unwrap();
        let before = editor.as_bytes().to_vec();
        assert!(matches!(
            editor.set_property(b"/chosen", b"a-new-name", &[0; 8]),
            Err(FdtError::NoSpace(_))
        ));
        assert!(matches!(
            editor.set_property(b"/chosen", b"stdout-path", &[b'x'; 64]),
            Err(FdtError::NoSpace(_))
        ));
        assert!(matches!(
            editor.add_node(b"/", b"a-long-node-name-that-needs-room"),
            Err(FdtError::NoSpace(_))
        ));
        assert_eq!(editor.as_bytes(), before);
        // It fits once the tree moves into a larger buffer.
        let mut larger = vec![0u8; 4096];
        let mut editor = FdtEditor::open_into(&before, &mut larger).unwrap();
        editor
            .set_property(b"/chosen", b"a-new-name", &[0; 8])
            .unwrap();
        assert!(editor.fdt().unwrap().check().is_ok());
    }

    #[test]
    fn a_name_with_a_nul_is_no_property_name() {
        // Found by the fdt_writer fuzz target: deleting "\0" deleted the property named "",
        // whose name string is followed by another NUL (here: a second empty name).
        let mut builder = FdtBuilder::new();
        builder
            .begin("")
            .prop("", &[0, 0, 0, 1])
            .prop("", &[3])
            .prop("x", &[2])
            .end();
        let mut buffer = builder.build();
        let original = buffer.clone();
        buffer.extend_from_slice(&[0; 64]);
        let mut editor = FdtEditor::new(&mut buffer).unwrap();
        assert_eq!(editor.fdt().unwrap().property(b"/", b"\0"), Ok(None));
        assert_eq!(editor.fdt().unwrap().property(b"/", b"x\0"), Ok(None));
        assert_eq!(editor.delete_property(b"/", b"\0"), Err(FdtError::BadName));
        assert_eq!(editor.as_bytes(), original);
    }

    #[test]
    fn refusals() {
        let mut buffer = crosvm_like();
        buffer.extend_from_slice(&[0; 256]);
        let mut editor = FdtEditor::new(&mut buffer).unwrap();
        assert_eq!(
            editor.set_property(b"/nowhere", b"x", b""),
            Err(FdtError::NotFound)
        );
        assert_eq!(
            editor.delete_property(b"/chosen", b"x"),
            Err(FdtError::NotFound)
        );
        assert_eq!(editor.add_node(b"/", b"chosen"), Err(FdtError::Exists));
        assert_eq!(editor.add_node(b"/", b"a/b"), Err(FdtError::BadName));
        assert_eq!(editor.add_node(b"/", b""), Err(FdtError::BadName));
        assert_eq!(
            editor.set_property(b"/", b"a\0b", b""),
            Err(FdtError::BadName)
        );
        // A tree that is not 8-byte aligned in memory.
        let mut unaligned = vec![0u8; crosvm_like().len() + 8];
        unaligned[1..crosvm_like().len() + 1].copy_from_slice(&crosvm_like());
        assert_eq!(
            FdtEditor::new(&mut unaligned[1..]).unwrap_err(),
            FdtError::Misaligned
        );
    }

    #[test]
    fn pack_removes_nops() {
        let blob = FdtBuilder::new()
            .begin("")
            .token(FDT_NOP)
            .prop("a", b"1\0")
            .token(FDT_NOP)
            .token(FDT_NOP)
            .begin("child")
            .token(FDT_NOP)
            .end()
            .end()
            .token(FDT_NOP)
            .build();
        let mut buffer = blob.clone();
        let mut editor = FdtEditor::new(&mut buffer).unwrap();
        assert_eq!(editor.pack().unwrap(), blob.len() - 5 * 4);
        let fdt = editor.fdt().unwrap();
        fdt.check().unwrap();
        assert_eq!(fdt.property(b"/", b"a").unwrap(), Some(&b"1\0"[..]));
        assert!(fdt.node(b"/child").unwrap().is_some());
    }

    /// Edits on every regression input: refused or done, never a panic, and a done edit leaves
    /// a tree that passes [`Fdt::check`]. The corpus must hold both trees the editor refuses and
    /// trees it edits, or one of the two paths goes untested.
    #[test]
    fn hostile_trees_are_refused_or_edited_safely() {
        let (mut edited, mut refused) = (0, 0);
        for blob in super::super::tests::regression_inputs() {
            let mut buffer = vec![0u8; blob.len() + 512];
            let Ok(mut editor) = FdtEditor::open_into(&blob, &mut buffer) else {
                refused += 1;
                continue;
            };
            edited += 1;
            let _ = editor.set_property(b"/chosen", b"kaslr-seed", &[0; 8]);
            let _ = editor.set_property(b"/chosen", b"bootargs", b"quiet\0");
            let _ = editor.delete_property(b"/chosen", b"stdout-path");
            let _ = editor.add_node(b"/", b"added");
            let _ = editor.pack();
            editor.fdt().unwrap().check().unwrap();
        }
        assert!(
            edited > 0 && refused > 0,
            "{edited} edited, {refused} refused"
        );
    }
}
