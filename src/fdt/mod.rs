// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A reader and an in-place editor of flattened device trees (FDT), safe on hostile input.
//!
//! The FDT comes from the host and is untrusted. [`Fdt::new`] checks only the header (so opening
//! a tree costs nothing); every later read is bounds-checked, nothing panics, and every walk moves
//! strictly forward through the structure block, so a corrupt tree can only produce an
//! [`FdtError`]. Nodes are cursors into the blob ([`Node`]); lookups stop as soon as they have
//! their answer. [`editor`] edits a tree in a caller's buffer. Both are fuzzed (`fuzz/`).
//!
//! The module is split by concern: the header and its version check (`header`), the one walker
//! of the structure block (`walk`), nodes and properties (`node`), the iterators (`iterators`),
//! and the search for the console that `/chosen/stdout-path` names ([`Fdt::stdout`]).

pub mod editor;
mod header;
mod iterators;
mod node;
mod stdout;
#[cfg(test)]
pub(crate) use stdout::REMEMBERED_NODES;
#[cfg(test)]
pub(crate) mod tests;
mod walk;

pub use header::{total_size, FDT_MAGIC, HEADER_SIZE, MAX_SIZE, READER_VERSION};
pub use iterators::{Children, CompatibleNodes, MemoryRanges, Properties};
pub use node::{string_list_contains, Chosen, Entries, Node, Property};
pub use stdout::{StdoutDevice, StdoutError};

use core::fmt;
use core::ops::Range;

/// Nodes nested deeper than this are rejected by walks that track every level.
pub const MAX_DEPTH: usize = 16;
/// `#address-cells` when a node does not say (Devicetree Specification 2.3.5).
const DEFAULT_ADDRESS_CELLS: u32 = 2;
/// `#size-cells` when a node does not say (Devicetree Specification 2.3.5).
const DEFAULT_SIZE_CELLS: u32 = 1;
/// The most cells a decoded address or size may have, in the FDT reader and in everything that
/// decodes values of a tree ([`crate::pci`]): values are 64-bit.
pub(crate) const MAX_VALUE_CELLS: u32 = 2;

/// Why an FDT could not be read or edited.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FdtError {
    /// The blob is shorter than its header or than the size the header claims.
    Truncated,
    /// The blob is not 8-byte aligned in memory, as the Devicetree Specification requires.
    Misaligned,
    /// The blob does not start with [`FDT_MAGIC`]; holds what it starts with instead.
    BadMagic(u32),
    /// The header's `last_comp_version` is newer than [`READER_VERSION`].
    UnsupportedVersion(u32),
    /// The header places the blocks outside the blob (or, for editing, out of order).
    BadLayout,
    /// The structure block is malformed at this byte offset into the blob.
    BadStructure(usize),
    /// A property name offset points outside the strings block or at an unterminated string.
    BadStrings(usize),
    /// Nodes are nested deeper than [`MAX_DEPTH`] where a walk tracks every level.
    TooDeep,
    /// The structure block ends more nodes than it begins.
    UnbalancedNodes,
    /// `#address-cells` or `#size-cells` is absurd, or too large for a 64-bit value.
    BadCells,
    /// A property's value does not have the length its meaning requires.
    BadValue,
    /// `/chosen/linux,initrd-end` is below `linux,initrd-start`.
    InitrdEndBeforeStart {
        /// `linux,initrd-start`.
        start: u64,
        /// `linux,initrd-end`.
        end: u64,
    },
    /// `/chosen` has one of `linux,initrd-start` and `linux,initrd-end` but not the other; holds
    /// the name of the missing one.
    InitrdHalf(&'static str),
    /// A `reg` entry's address plus its size is past the 64-bit address space.
    RegOverflow {
        /// The entry's address.
        address: u64,
        /// The entry's size.
        size: u64,
    },
    /// The node or property to edit does not exist.
    NotFound,
    /// The node to add already exists.
    Exists,
    /// A node or property name to write is empty or contains a forbidden byte.
    BadName,
    /// The edit needs this many bytes of buffer; the buffer is smaller.
    NoSpace(usize),
}

impl fmt::Display for FdtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(f, "truncated FDT"),
            Self::Misaligned => write!(f, "FDT is not 8-byte aligned"),
            Self::BadMagic(magic) => write!(f, "bad FDT magic {magic:#010x}"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported FDT version {v}"),
            Self::BadLayout => write!(f, "FDT blocks lie outside the blob"),
            Self::BadStructure(offset) => {
                write!(f, "malformed FDT structure at offset {offset:#x}")
            }
            Self::BadStrings(offset) => write!(f, "bad FDT property name offset {offset:#x}"),
            Self::TooDeep => write!(f, "FDT nodes nested deeper than {MAX_DEPTH}"),
            Self::UnbalancedNodes => write!(f, "FDT ends more nodes than it begins"),
            Self::BadCells => write!(f, "unsupported #address-cells or #size-cells"),
            Self::BadValue => write!(f, "FDT property value has the wrong length"),
            Self::InitrdEndBeforeStart { start, end } => write!(
                f,
                "/chosen/linux,initrd-end ({end:#x}) is below linux,initrd-start ({start:#x})"
            ),
            Self::InitrdHalf(missing) => write!(
                f,
                "/chosen has only one of linux,initrd-start and linux,initrd-end: no {missing}"
            ),
            Self::RegOverflow { address, size } => write!(
                f,
                "a reg entry at {address:#x} of size {size:#x} ends past the 64-bit address space"
            ),
            Self::NotFound => write!(f, "no such FDT node or property"),
            Self::Exists => write!(f, "FDT node already exists"),
            Self::BadName => write!(f, "invalid FDT node or property name"),
            Self::NoSpace(needed) => write!(
                f,
                "the edited FDT needs {needed} bytes, more than the buffer it is edited in"
            ),
        }
    }
}

#[cfg(has_core_error)]
impl core::error::Error for FdtError {}

/// `#address-cells` and `#size-cells` of a node: how its children's `reg` is encoded.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Cells {
    /// Cells per address.
    pub address: u32,
    /// Cells per size.
    pub size: u32,
}

impl Default for Cells {
    fn default() -> Self {
        Self {
            address: DEFAULT_ADDRESS_CELLS,
            size: DEFAULT_SIZE_CELLS,
        }
    }
}

/// A validated view of an FDT blob's header; the structure is checked as it is read.
#[derive(Clone, Copy, Debug)]
pub struct Fdt<'a> {
    blob: &'a [u8],
    /// Offset of the structure block in the blob.
    structure_start: usize,
    structure: &'a [u8],
    /// The whole 32-bit words of the structure block, read as aligned words: tokens, lengths
    /// and name words are each one load.
    words: &'a [u32],
    strings: &'a [u8],
}

/// The FDT a VMM passed at `address`, if its header and the size it claims lie inside `region`
/// and that size is at most [`MAX_SIZE`]. Nothing outside `region`, and nothing more than
/// [`MAX_SIZE`] bytes from `address`, is read, whatever `address` is.
///
/// # Safety
///
/// `region` must be memory that is readable, and not written, for the rest of the program.
pub unsafe fn from_region(address: u64, region: Range<usize>) -> Option<&'static [u8]> {
    let start = usize::try_from(address).ok()?;
    let header_end = start.checked_add(HEADER_SIZE)?;
    if !region.contains(&start) || header_end > region.end || start % 8 != 0 {
        return None;
    }
    // SAFETY: The header lies within region, which the caller promises is readable and stable.
    let header = unsafe { core::slice::from_raw_parts(start as *const u8, HEADER_SIZE) };
    let size = total_size(header).ok()?;
    if size > region.end - start || size > MAX_SIZE {
        return None;
    }
    // SAFETY: As above, for the whole blob, which the check above keeps inside region.
    Some(unsafe { core::slice::from_raw_parts(start as *const u8, size) })
}

/// Reads `count` big-endian cells (at most [`MAX_VALUE_CELLS`]) from the front of `value` as
/// one number, and moves `value` past them; `None` if `value` is shorter or `count` too large.
/// The one decoder of cell values for the crate: `reg`, `ranges`, `/chosen`'s initrd, PCI.
#[inline]
pub(crate) fn read_cells(value: &mut &[u8], count: u32) -> Option<u64> {
    if count > MAX_VALUE_CELLS {
        return None;
    }
    let mut number = 0u64;
    for _ in 0..count {
        let (cell, rest) = value.split_first_chunk::<4>()?;
        number = number << 32 | u64::from(u32::from_be_bytes(*cell));
        *value = rest;
    }
    Some(number)
}

/// Moves `value` past `count` cells that are not decoded (a PCI child address, an interrupt
/// parent's unit address); `None` if it is shorter.
pub(crate) fn skip_cells(value: &mut &[u8], count: u32) -> Option<()> {
    *value = value.get(usize::try_from(count).ok()?.checked_mul(4)?..)?;
    Some(())
}

/// `bytes` up to (not including) its first NUL.
pub(crate) fn c_string(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(bytes)
}

/// Whether `a` and `b` are equal. Names are short, and most that get this far match: a loop
/// inlined at the caller (unrolled against a constant name) costs less than a call to `memcmp`,
/// which compares byte by byte too on targets without unaligned loads.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Whether node `name` ("serial@3f8") is what path component `component` names: the same full
/// name, or the same name before '@' when the component has no unit address.
#[inline]
pub(crate) fn node_name_matches(name: &[u8], component: &[u8]) -> bool {
    // The cheap test first: most names differ in length, or in the byte after the component.
    let boundary = match name.get(component.len()) {
        None => name.len() == component.len(),
        Some(&b'@') => !component.contains(&b'@'),
        Some(_) => false,
    };
    boundary && same_bytes(&name[..component.len()], component)
}

/// The non-empty components of a path ("/soc/uart@0" gives "soc", "uart@0").
fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// Splits a `stdout-path` value into the path (or alias) and the options after ':'.
fn split_stdout_path(value: &[u8]) -> (&[u8], &[u8]) {
    // One pass to the end of the path, whichever of ':' and NUL comes first.
    match value.iter().position(|&b| b == 0 || b == b':') {
        Some(end) if value[end] == b':' => (&value[..end], c_string(&value[end + 1..])),
        Some(end) => (&value[..end], &[]),
        None => (value, &[]),
    }
}

/// Runs every read the module offers over `blob` to its end, ignoring the results: what
/// hostile input must survive. Shared by the unit tests and the fuzz targets (`fuzz/`), which
/// build vmbase with `--cfg fuzzing`; not part of the API otherwise.
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub fn read_everything(blob: &[u8]) {
    let Ok(fdt) = Fdt::new(blob) else { return };
    let _ = fdt.check();
    let _ = fdt.chosen();
    let _ = fdt.stdout();
    let _ = fdt.resolve(b"serial0");
    let _ = fdt.resolve(b"/chosen");
    let _ = fdt.property(b"/chosen", b"stdout-path");
    if let Ok(memory) = fdt.memory() {
        memory.for_each(drop);
    }
    fdt.compatible_nodes(b"arm,pl011").for_each(drop);
    // Every node, breadth by breadth, with everything it has.
    let mut level = alloc::vec::Vec::new();
    level.extend(fdt.root());
    for _ in 0..=MAX_DEPTH {
        let mut next = alloc::vec::Vec::new();
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
