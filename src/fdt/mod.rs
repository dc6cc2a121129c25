// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A reader and an in-place editor of flattened device trees (FDT), safe on hostile input.
//!
//! The FDT comes from the host and is untrusted. [`Fdt::new`] checks only the header (so opening
//! a tree costs nothing); every later read is bounds-checked, nothing panics, and every walk moves
//! strictly forward through the structure block, so a corrupt tree can only produce an
//! [`FdtError`]. Nodes are cursors into the blob ([`Node`]); lookups stop as soon as they have
//! their answer. [`writer`] edits a tree in a caller's buffer. Both are fuzzed (`fuzz/`).

pub mod writer;

use core::ffi::CStr;
use core::fmt;
use core::ops::Range;

/// The magic number at the start of every FDT.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Size of the FDT header (version 17).
pub const HEADER_SIZE: usize = 40;
/// Header fields, by byte offset (Devicetree Specification 5.2).
const TOTAL_SIZE: usize = 4;
const OFF_DT_STRUCT: usize = 8;
const OFF_DT_STRINGS: usize = 12;
const OFF_MEM_RSVMAP: usize = 16;
const VERSION: usize = 20;
const LAST_COMP_VERSION: usize = 24;
const BOOT_CPUID_PHYS: usize = 28;
const SIZE_DT_STRINGS: usize = 32;
const SIZE_DT_STRUCT: usize = 36;
/// The largest tree [`from_region`] takes: crosvm's limit, and Linux's (booting.rst). It bounds
/// what vmbase reads when `region` is large, as a window over all of RAM is.
pub const MAX_SIZE: usize = crate::layout::crosvm::FDT_MAX_SIZE;
/// The oldest FDT version whose layout this reader understands.
const LAST_COMPATIBLE_VERSION: u32 = 16;
/// Nodes nested deeper than this are rejected by walks that track every level.
pub const MAX_DEPTH: usize = 16;
/// `#address-cells` when a node does not say (Devicetree Specification 2.3.5).
const DEFAULT_ADDRESS_CELLS: u32 = 2;
/// `#size-cells` when a node does not say (Devicetree Specification 2.3.5).
const DEFAULT_SIZE_CELLS: u32 = 1;
/// The most cells a decoded address or size may have: values are 64-bit.
const MAX_VALUE_CELLS: u32 = 2;

// Structure block tokens (Devicetree Specification 5.4.1).
const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_NOP: u32 = 0x4;
const FDT_END: u32 = 0x9;

/// The length of the NUL-terminated name whose first word is `words[first]`, if it ends inside
/// `words`.
#[inline(always)]
fn name_length(words: &[u32], first: usize) -> Option<usize> {
    Some(skip_name(words.get(first..)?)?.1)
}

/// The words after the NUL-terminated name at the start of `words` and the name's length in
/// bytes, if it ends inside `words`. Two words per step, one length check and one zero-byte
/// test for both.
#[inline(always)]
fn skip_name(words: &[u32]) -> Option<(&[u32], usize)> {
    let mut rest = words;
    loop {
        match *rest {
            [low, high, ref after @ ..] => {
                // The bytes in memory order, first byte lowest.
                let pair = u64::from(u32::from_le(low)) | u64::from(u32::from_le(high)) << 32;
                let zeros =
                    pair.wrapping_sub(0x0101_0101_0101_0101) & !pair & 0x8080_8080_8080_8080;
                if zeros != 0 {
                    let nul = zeros.trailing_zeros() as usize / 8;
                    let len = (words.len() - rest.len()) * 4 + nul;
                    // The name's last word is the first of the pair if the NUL is there.
                    return Some((rest.get(1 + nul / 4..)?, len));
                }
                rest = after;
            }
            [last, ref after @ ..] => {
                let zeros = zero_bytes(u32::from_le(last));
                let len = (words.len() - rest.len()) * 4 + zeros.trailing_zeros() as usize / 8;
                return (zeros != 0).then_some((after, len));
            }
            [] => return None,
        }
    }
}

/// A word whose lowest set bit marks the first zero byte of `word` (memory order, first byte
/// lowest), or zero if there is none: borrows only reach bytes above the first zero.
#[inline(always)]
fn zero_bytes(word: u32) -> u32 {
    word.wrapping_sub(0x0101_0101) & !word & 0x8080_8080
}

/// Why an FDT could not be read or edited.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FdtError {
    /// The blob is shorter than its header or than the size the header claims.
    Truncated,
    /// The blob is not 8-byte aligned in memory, as the Devicetree Specification requires.
    Misaligned,
    /// The blob does not start with [`FDT_MAGIC`]; holds what it starts with instead.
    BadMagic(u32),
    /// The header's `last_comp_version` is newer than this reader understands.
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

impl core::error::Error for FdtError {}

/// One token of the structure block. Property names are left as offsets into the strings
/// block: most walks look at few of them.
#[derive(Clone, Copy)]
enum Token<'a> {
    BeginNode(&'a [u8]),
    EndNode,
    Property { name_offset: usize, value: &'a [u8] },
    Nop,
    End,
}

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

fn be32(blob: &[u8], offset: usize) -> Option<u32> {
    let bytes = blob.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// Reads the `totalsize` field of an FDT header, after checking the magic.
///
/// `header` needs only the first [`HEADER_SIZE`] bytes; this is how a caller learns how much of
/// memory to look at before calling [`Fdt::new`].
pub fn total_size(header: &[u8]) -> Result<usize, FdtError> {
    let magic = be32(header, 0).ok_or(FdtError::Truncated)?;
    if magic != FDT_MAGIC {
        return Err(FdtError::BadMagic(magic));
    }
    let size = be32(header, TOTAL_SIZE).ok_or(FdtError::Truncated)?;
    usize::try_from(size).map_err(|_| FdtError::BadLayout)
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
    if !region.contains(&start) || header_end > region.end || !start.is_multiple_of(8) {
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

/// `bytes` up to (not including) its first NUL.
pub fn c_string(bytes: &[u8]) -> &[u8] {
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
pub fn node_name_matches(name: &[u8], component: &[u8]) -> bool {
    // The cheap test first: most names differ in length, or in the byte after the component.
    let boundary = match name.get(component.len()) {
        None => name.len() == component.len(),
        Some(&b'@') => !component.contains(&b'@'),
        Some(_) => false,
    };
    // And the first byte before calling memcmp.
    boundary && same_bytes(&name[..component.len()], component)
}

/// The non-empty components of a path ("/soc/uart@0" gives "soc", "uart@0").
pub fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

impl<'a> Fdt<'a> {
    /// Checks the header of `blob` and the placement of its blocks. The structure block is
    /// checked as it is read, so this costs the same for any size of tree.
    pub fn new(blob: &'a [u8]) -> Result<Self, FdtError> {
        let size = total_size(blob)?;
        if size < HEADER_SIZE || size > blob.len() {
            return Err(FdtError::Truncated);
        }
        let blob = &blob[..size];
        let field = |offset| {
            be32(blob, offset)
                .map(|v| v as usize)
                .ok_or(FdtError::Truncated)
        };
        let last_compatible = field(LAST_COMP_VERSION)? as u32;
        if last_compatible > LAST_COMPATIBLE_VERSION + 1 {
            return Err(FdtError::UnsupportedVersion(last_compatible));
        }
        let block = |offset: usize, len: usize| {
            let end = offset.checked_add(len).ok_or(FdtError::BadLayout)?;
            blob.get(offset..end).ok_or(FdtError::BadLayout)
        };
        let structure_start = field(OFF_DT_STRUCT)?;
        let structure = block(structure_start, field(SIZE_DT_STRUCT)?)?;
        let strings = block(field(OFF_DT_STRINGS)?, field(SIZE_DT_STRINGS)?)?;
        if !structure_start.is_multiple_of(4) {
            return Err(FdtError::BadLayout);
        }
        if !(blob.as_ptr() as usize).is_multiple_of(8) {
            return Err(FdtError::Misaligned);
        }
        // SAFETY: Every bit pattern is a valid u32, and the words borrow the same bytes.
        let (prefix, words, _) = unsafe { structure.align_to::<u32>() };
        if !prefix.is_empty() {
            return Err(FdtError::Misaligned);
        }
        Ok(Self {
            blob,
            structure_start,
            structure,
            words,
            strings,
        })
    }

    /// The whole blob, `totalsize` bytes long.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.blob
    }

    /// The big-endian word at byte `offset` (a multiple of 4) of the structure block.
    #[inline]
    fn word(&self, offset: usize) -> Option<u32> {
        self.words.get(offset / 4).map(|&word| u32::from_be(word))
    }

    /// The length of the NUL-terminated name at byte `offset` (a multiple of 4) of the
    /// structure block.
    #[inline(always)]
    fn name_length(&self, offset: usize) -> Option<usize> {
        name_length(self.words, offset / 4)
    }

    /// The token at `offset` into the structure block, and the offset of the next one.
    #[inline(always)]
    fn token(&self, offset: usize) -> Result<(Token<'a>, usize), FdtError> {
        let bad = || FdtError::BadStructure(self.structure_start.saturating_add(offset));
        let tag = self.word(offset).ok_or_else(bad)?;
        let body = offset + 4;
        // Tokens are 4-byte aligned; the block's end need not be, so the next offset may lie
        // past it (and reading there is an error).
        match tag {
            FDT_BEGIN_NODE => {
                let len = self.name_length(body).ok_or_else(bad)?;
                let name = self.structure.get(body..body + len).ok_or_else(bad)?;
                // The name and its NUL, padded to whole words.
                Ok((Token::BeginNode(name), body + (len / 4 + 1) * 4))
            }
            FDT_END_NODE => Ok((Token::EndNode, body)),
            FDT_PROP => {
                let len = self.word(body).ok_or_else(bad)? as usize;
                let name_offset = self.word(body + 4).ok_or_else(bad)? as usize;
                let start = body + 8;
                let end = start.checked_add(len).ok_or_else(bad)?;
                let value = self.structure.get(start..end).ok_or_else(bad)?;
                Ok((
                    Token::Property { name_offset, value },
                    start + len.next_multiple_of(4),
                ))
            }
            FDT_NOP => Ok((Token::Nop, body)),
            FDT_END => Ok((Token::End, body)),
            _ => Err(bad()),
        }
    }

    /// The offset after the `FDT_END_NODE` that closes the node whose properties start at
    /// `offset`.
    #[inline(always)]
    fn skip_subtree(&self, offset: usize) -> Result<usize, FdtError> {
        Ok(self.walk(offset / 4, |_, _, _| false)? * 4)
    }

    /// Walks forward from the token at word `index`, in the body of a node, to the
    /// `FDT_END_NODE` that closes it, and returns the word index after that token. Calls
    /// `child` with the word index of each child's `FDT_BEGIN_NODE`, the length of its name and
    /// the word index of its properties; if that returns `true`, stops and returns the last.
    /// Skipping is most of what lookups do, so this reads no more than token tags, property
    /// lengths and name words, comparing tags in the blob's byte order.
    #[inline(always)]
    fn walk(
        &self,
        mut index: usize,
        mut child: impl FnMut(usize, usize, usize) -> bool,
    ) -> Result<usize, FdtError> {
        let words = self.words;
        // Each step reads a tag and the word after it (a property's length, a node's first
        // name word): both exist while the tag's index is below this. A valid block ends with
        // FDT_END, so no tag this loop accepts is in its last word.
        let Some(last) = words.len().checked_sub(1) else {
            return Err(self.bad_structure(index.saturating_mul(4)));
        };
        // Nodes open below the one walked.
        let mut depth = 0usize;
        'walk: loop {
            // Properties come in runs: a loop of their own keeps this one short.
            let tag = loop {
                if index >= last {
                    break 'walk;
                }
                let (tag, next) = (u32::from_be(words[index]), words[index + 1]);
                if tag != FDT_PROP {
                    break tag;
                }
                // The value (and the name offset before it) is not read. Tag, length, name
                // offset and the value in whole words: 3 + ceil(len / 4) = (len + 15) / 4.
                index += (u32::from_be(next) as usize + 15) / 4;
            };
            if tag == FDT_BEGIN_NODE {
                let Some((after, name_len)) = skip_name(&words[index + 1..]) else {
                    break;
                };
                let after_name = words.len() - after.len();
                if depth == 0 && child(index, name_len, after_name) {
                    return Ok(after_name);
                }
                index = after_name;
                depth += 1;
            } else if tag == FDT_END_NODE {
                index += 1;
                if depth == 0 {
                    return Ok(index);
                }
                depth -= 1;
            } else if tag == FDT_NOP {
                index += 1;
            } else if tag == FDT_END {
                return Err(FdtError::UnbalancedNodes);
            } else {
                break;
            }
        }
        Err(self.bad_structure(index.saturating_mul(4)))
    }

    fn bad_structure(&self, offset: usize) -> FdtError {
        FdtError::BadStructure(self.structure_start.saturating_add(offset))
    }

    /// The name at `offset` in the strings block (NUL-terminated there), without its NUL.
    fn string(&self, offset: usize) -> Result<&'a [u8], FdtError> {
        let rest = self
            .strings
            .get(offset..)
            .ok_or(FdtError::BadStrings(offset))?;
        let name = CStr::from_bytes_until_nul(rest).map_err(|_| FdtError::BadStrings(offset))?;
        Ok(name.to_bytes())
    }

    /// Whether the string at `offset` in the strings block is `name`, without measuring it.
    /// The terminator is tested first: most names differ in length.
    #[inline(always)]
    fn string_is(&self, offset: usize, name: &[u8]) -> bool {
        offset
            .checked_add(name.len())
            .and_then(|end| self.strings.get(offset..=end))
            .is_some_and(|s| s[name.len()] == 0 && same_bytes(&s[..name.len()], name))
    }

    /// The root node.
    pub fn root(&self) -> Result<Node<'_>, FdtError> {
        let mut offset = 0;
        loop {
            match self.token(offset)? {
                (Token::Nop, next) => offset = next,
                (Token::BeginNode(name), body) if name.is_empty() => {
                    return Ok(Node {
                        fdt: self,
                        offset,
                        body,
                        name,
                        parent_cells: Cells::default(),
                    });
                }
                _ => return Err(FdtError::BadStructure(self.structure_start + offset)),
            }
        }
    }

    /// The node whose `FDT_BEGIN_NODE` token is at `offset` ([`Node::offset`]) and whose parent
    /// has `parent_cells`: how a caller returns to a node it passed without walking again.
    pub fn node_at(&self, offset: usize, parent_cells: Cells) -> Result<Node<'_>, FdtError> {
        if !offset.is_multiple_of(4) {
            return Err(self.bad_structure(offset));
        }
        match self.token(offset)? {
            (Token::BeginNode(name), body) => Ok(Node {
                fdt: self,
                offset,
                body,
                name,
                parent_cells,
            }),
            _ => Err(FdtError::BadStructure(
                self.structure_start.saturating_add(offset),
            )),
        }
    }

    /// The node at absolute `path` ("/soc/uart@1000"; "uart" also matches "uart@1000").
    pub fn node(&self, path: &[u8]) -> Result<Option<Node<'_>>, FdtError> {
        let mut node = self.root()?;
        for component in components(path) {
            match node.child(component)? {
                Some(child) => node = child,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// The value of property `name` of the node at absolute `path`, if both exist.
    pub fn property(&self, path: &[u8], name: &[u8]) -> Result<Option<&'a [u8]>, FdtError> {
        match self.node(path)? {
            Some(node) => self.property_at(node.body, name),
            None => Ok(None),
        }
    }

    /// The value of property `name` among the properties that start at `body`.
    fn property_at(&self, body: usize, name: &[u8]) -> Result<Option<&'a [u8]>, FdtError> {
        let [value] = self.properties_at(body, [name])?;
        Ok(value)
    }

    /// The values of properties `names` among the properties that start at `body`, in one scan
    /// that stops once all are found.
    #[inline(always)]
    fn properties_at<const N: usize>(
        &self,
        body: usize,
        names: [&[u8]; N],
    ) -> Result<[Option<&'a [u8]>; N], FdtError> {
        let mut places = [const { None }; N];
        let mut missing = N;
        // A name with a NUL in it names no property; string_is would take "\0" for "".
        let named: [bool; N] = core::array::from_fn(|i| !names[i].contains(&0));
        self.scan_properties(body, |name_offset, value| {
            for ((name, place), named) in names.iter().zip(&mut places).zip(named) {
                if named && place.is_none() && self.string_is(name_offset, name) {
                    *place = Some(value);
                    missing -= 1;
                    break;
                }
            }
            missing == 0
        })?;
        let mut values = [None; N];
        for (value, place) in values.iter_mut().zip(places) {
            *value = place.map(|place| self.value(place)).transpose()?;
        }
        Ok(values)
    }

    /// Calls `visit` with the name offset and the value's place (for [`Fdt::value`]) of each
    /// property from byte `body` on, until it returns `true` or the properties end; returns the
    /// offset of the token it stopped at. Values are only sliced when asked for.
    #[inline(always)]
    fn scan_properties(
        &self,
        body: usize,
        mut visit: impl FnMut(usize, Range<usize>) -> bool,
    ) -> Result<usize, FdtError> {
        let words = self.words;
        // A tag and the word after it exist while the tag's index is below this.
        let last = words.len().saturating_sub(1);
        let mut index = body / 4;
        while index < last {
            let (tag, len) = (u32::from_be(words[index]), u32::from_be(words[index + 1]));
            if tag == FDT_PROP {
                let Some(&name_offset) = words.get(index + 2) else {
                    break;
                };
                let name_offset = u32::from_be(name_offset) as usize;
                let start = (index + 3) * 4;
                let value = start..start.saturating_add(len as usize);
                if visit(name_offset, value) {
                    return Ok(index * 4);
                }
                // As in walk: a length past the block ends the loop.
                index += (len as usize + 15) / 4;
            } else if tag == FDT_NOP {
                index += 1;
            } else if tag == FDT_BEGIN_NODE || tag == FDT_END_NODE {
                return Ok(index * 4);
            } else if tag == FDT_END {
                return Err(FdtError::UnbalancedNodes);
            } else {
                break;
            }
        }
        Err(self.bad_structure(index.saturating_mul(4)))
    }

    /// The bytes of a property value that [`Fdt::scan_properties`] placed.
    fn value(&self, place: Range<usize>) -> Result<&'a [u8], FdtError> {
        let offset = place.start;
        self.structure
            .get(place)
            .ok_or_else(|| self.bad_structure(offset))
    }

    /// The path `/aliases` gives for `alias`, without its NUL.
    pub fn alias(&self, alias: &[u8]) -> Result<Option<&'a [u8]>, FdtError> {
        Ok(self.property(b"/aliases", alias)?.map(c_string))
    }

    /// The node `path` names: an absolute path, or an alias optionally followed by a relative
    /// path ("serial0", "i2c1/eeprom@50").
    pub fn resolve(&self, path: &[u8]) -> Result<Option<Node<'_>>, FdtError> {
        if path.first() == Some(&b'/') {
            return self.node(path);
        }
        let (alias, rest) = match path.iter().position(|&b| b == b'/') {
            Some(slash) => path.split_at(slash),
            None => (path, &[][..]),
        };
        let Some(base) = self.alias(alias)? else {
            return Ok(None);
        };
        if base.first() != Some(&b'/') {
            return Ok(None);
        }
        let Some(mut node) = self.node(base)? else {
            return Ok(None);
        };
        for component in components(rest) {
            match node.child(component)? {
                Some(child) => node = child,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// Every node whose `compatible` lists `compatible`, in tree order.
    pub fn compatible_nodes<'s>(&'s self, compatible: &'s [u8]) -> CompatibleNodes<'s> {
        CompatibleNodes {
            fdt: self,
            compatible,
            offset: 0,
            cells: [Cells::default(); MAX_DEPTH + 1],
            depth: 0,
            done: false,
        }
    }

    /// The RAM that the `/memory` nodes (by `device_type` or name) describe, as address ranges.
    pub fn memory(&self) -> Result<MemoryRanges<'_>, FdtError> {
        Ok(MemoryRanges {
            nodes: self.root()?.children(),
            reg: None,
        })
    }

    /// The properties of `/chosen` that boot code reads, if `/chosen` exists.
    pub fn chosen(&self) -> Result<Option<Chosen<'_>>, FdtError> {
        let Some(node) = self.node(b"/chosen")? else {
            return Ok(None);
        };
        let start = node.property(b"linux,initrd-start")?;
        let end = node.property(b"linux,initrd-end")?;
        let initrd = match (start, end) {
            (None, None) => None,
            (Some(start), Some(end)) => {
                let (start, end) = (be_value(start)?, be_value(end)?);
                if end < start {
                    return Err(FdtError::InitrdEndBeforeStart { start, end });
                }
                Some(start..end)
            }
            (Some(_), None) => return Err(FdtError::InitrdHalf("linux,initrd-end")),
            (None, Some(_)) => return Err(FdtError::InitrdHalf("linux,initrd-start")),
        };
        Ok(Some(Chosen {
            bootargs: node.property(b"bootargs")?.map(c_string),
            stdout_path: node.property(b"stdout-path")?.map(c_string),
            initrd,
        }))
    }

    /// Walks the whole structure block once and checks it: tokens inside the block, names
    /// terminated, property names inside the strings block, nodes balanced under one root,
    /// `FDT_END` last. Reads do not need it; [`writer`] does it before editing.
    pub fn check(&self) -> Result<(), FdtError> {
        let root = self.root()?;
        let mut offset = root.body;
        let mut depth = 1usize;
        while depth > 0 {
            let (token, next) = self.token(offset)?;
            match token {
                Token::BeginNode(_) => depth += 1,
                Token::EndNode => depth -= 1,
                Token::Property { name_offset, .. } => {
                    self.string(name_offset)?;
                }
                Token::Nop => {}
                Token::End => return Err(FdtError::UnbalancedNodes),
            }
            offset = next;
        }
        loop {
            match self.token(offset)? {
                (Token::Nop, next) => offset = next,
                (Token::End, next) if next == self.structure.len() => return Ok(()),
                _ => return Err(FdtError::BadStructure(self.structure_start + offset)),
            }
        }
    }
}

/// A big-endian integer of one or two cells (`linux,initrd-start` may be either).
fn be_value(value: &[u8]) -> Result<u64, FdtError> {
    match value.len() {
        4 => Ok(u64::from(be32(value, 0).ok_or(FdtError::BadValue)?)),
        8 => Ok(u64::from_be_bytes(
            value.try_into().map_err(|_| FdtError::BadValue)?,
        )),
        _ => Err(FdtError::BadValue),
    }
}

/// What `/chosen` tells boot code.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Chosen<'a> {
    /// `bootargs`, the kernel command line, without its NUL.
    pub bootargs: Option<&'a [u8]>,
    /// `stdout-path`, without its NUL; see [`split_stdout_path`].
    pub stdout_path: Option<&'a [u8]>,
    /// `linux,initrd-start` to `linux,initrd-end`.
    pub initrd: Option<Range<u64>>,
}

/// Splits a `stdout-path` value into the path (or alias) and the options after ':'.
pub fn split_stdout_path(value: &[u8]) -> (&[u8], &[u8]) {
    // One pass to the end of the path, whichever of ':' and NUL comes first.
    match value.iter().position(|&b| b == 0 || b == b':') {
        Some(end) if value[end] == b':' => (&value[..end], c_string(&value[end + 1..])),
        Some(end) => (&value[..end], &[]),
        None => (value, &[]),
    }
}

/// A node of the tree: a cursor at its `FDT_BEGIN_NODE` token.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    fdt: &'a Fdt<'a>,
    /// Offset of the node's token in the structure block.
    offset: usize,
    /// Offset of the first token after the node's name.
    body: usize,
    name: &'a [u8],
    /// The parent's `#address-cells` and `#size-cells`, which encode this node's `reg`.
    parent_cells: Cells,
}

impl<'a> Node<'a> {
    /// The node's name with its unit address ("serial@3f8"); empty for the root.
    pub fn name(&self) -> &'a [u8] {
        self.name
    }

    /// Where the node is: the offset of its token in the structure block, for [`Fdt::node_at`].
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The node's properties, in order.
    pub fn properties(&self) -> Properties<'a> {
        Properties {
            fdt: self.fdt,
            offset: self.body,
            done: false,
        }
    }

    /// The value of property `name`, if the node has it.
    pub fn property(&self, name: &[u8]) -> Result<Option<&'a [u8]>, FdtError> {
        self.fdt.property_at(self.body, name)
    }

    /// Whether `compatible` lists `name`.
    pub fn is_compatible(&self, name: &[u8]) -> Result<bool, FdtError> {
        Ok(self
            .property(b"compatible")?
            .is_some_and(|list| string_list_contains(list, name)))
    }

    /// The node's `#address-cells` and `#size-cells`: how its children's `reg` is encoded.
    pub fn cells(&self) -> Result<Cells, FdtError> {
        Ok(self.cells_and_children()?.0)
    }

    /// [`Node::cells`], and the offset of the first token after the node's properties (where
    /// [`Node::scan_child_offsets`] starts), which reading them finds.
    pub fn cells_and_children(&self) -> Result<(Cells, usize), FdtError> {
        let mut cells = Cells::default();
        let fdt = self.fdt;
        let mut error = None;
        let children = fdt.scan_properties(self.body, |name_offset, value| {
            let count = if fdt.string_is(name_offset, b"#address-cells") {
                &mut cells.address
            } else if fdt.string_is(name_offset, b"#size-cells") {
                &mut cells.size
            } else {
                return false;
            };
            match fdt.value(value).and_then(cell_count) {
                Ok(value) => *count = value,
                Err(e) => error = Some(e),
            }
            error.is_some()
        })?;
        match error {
            Some(error) => Err(error),
            None => Ok((cells, children)),
        }
    }

    /// The parent's `#address-cells` and `#size-cells`, which encode this node's `reg`.
    pub fn parent_cells(&self) -> Cells {
        self.parent_cells
    }

    /// The node's children, in order.
    pub fn children(&self) -> Children<'a> {
        Children {
            fdt: self.fdt,
            offset: self.body,
            skip: false,
            cells: None,
            done: false,
        }
    }

    /// Calls `visit` with each child in order, from the child at `from` (a [`Node::offset`];
    /// the first child if `None`), until it returns `true`; returns the offset after the last
    /// child visited. A tighter loop than [`Node::children`], for scans over many children.
    pub fn scan_children(
        &self,
        from: Option<usize>,
        mut visit: impl FnMut(&Node<'a>) -> Result<bool, FdtError>,
    ) -> Result<Option<usize>, FdtError> {
        let fdt = self.fdt;
        let (cells, children) = self.cells_and_children()?;
        let start = from.unwrap_or(children);
        // What stopped the walk: a visit that returned true, or an error.
        let mut stopped = Ok(false);
        let after = fdt.walk(start / 4, |index, name_len, after_name| {
            let offset = index * 4;
            let name_start = offset + 4;
            let Some(name) = fdt.structure.get(name_start..name_start + name_len) else {
                stopped = Err(fdt.bad_structure(offset));
                return true;
            };
            stopped = visit(&Node {
                fdt,
                offset,
                body: after_name * 4,
                name,
                parent_cells: cells,
            });
            stopped != Ok(false)
        })?;
        if stopped? {
            Ok(Some(fdt.skip_subtree(after * 4)?))
        } else {
            Ok(None)
        }
    }

    /// Calls `visit` with the offset ([`Node::offset`], for [`Fdt::node_at`]), the name's length
    /// and the name's first four bytes (as in the blob: NUL-padded when shorter) of each child
    /// from offset `from` on (a child's offset, or where [`Node::cells_and_children`] says the
    /// children start), until it returns `true`; returns the offset after the subtree of the
    /// child it stopped at, or `None` if it never did. It makes no [`Node`] and slices no name:
    /// the leanest walk over many children, for callers that look closely at few of them.
    pub fn scan_child_offsets(
        &self,
        from: usize,
        mut visit: impl FnMut(usize, usize, [u8; 4]) -> bool,
    ) -> Result<Option<usize>, FdtError> {
        let fdt = self.fdt;
        let mut stopped = false;
        let after = fdt.walk(from / 4, |index, name_len, _| {
            // The walk found the name's NUL after this word, so it exists.
            let first = fdt
                .words
                .get(index + 1)
                .map_or([0; 4], |word| word.to_ne_bytes());
            stopped = visit(index * 4, name_len, first);
            stopped
        })?;
        if stopped {
            Ok(Some(fdt.skip_subtree(after * 4)?))
        } else {
            Ok(None)
        }
    }

    /// The first child that path component `component` names.
    pub fn child(&self, component: &[u8]) -> Result<Option<Node<'a>>, FdtError> {
        for child in self.children() {
            let child = child?;
            if node_name_matches(child.name, component) {
                return Ok(Some(child));
            }
        }
        Ok(None)
    }

    /// The `(address, size)` pairs of `reg`, decoded with the parent's cells, if the node has
    /// `reg`.
    pub fn reg(&self) -> Result<Option<Entries<'a, 2>>, FdtError> {
        let cells = self.parent_cells;
        match self.property(b"reg")? {
            Some(value) => Entries::new(value, [cells.address, cells.size]).map(Some),
            None => Ok(None),
        }
    }

    /// The `(child address, parent address, size)` triples of `ranges`, if the node has it
    /// (empty: an identity mapping). PCI's 3-cell addresses are not decoded: [`FdtError::BadCells`].
    pub fn ranges(&self) -> Result<Option<Entries<'a, 3>>, FdtError> {
        let Some(value) = self.property(b"ranges")? else {
            return Ok(None);
        };
        let own = self.cells()?;
        Entries::new(value, [own.address, self.parent_cells.address, own.size]).map(Some)
    }
}

/// Whether NUL-separated string list `list` contains `name`.
pub fn string_list_contains(list: &[u8], name: &[u8]) -> bool {
    list.split(|&b| b == 0).any(|entry| entry == name)
}

/// A `#address-cells`/`#size-cells` value.
fn cell_count(value: &[u8]) -> Result<u32, FdtError> {
    if value.len() != 4 {
        return Err(FdtError::BadCells);
    }
    let count = be32(value, 0).ok_or(FdtError::BadCells)?;
    // The specification's largest use is PCI's 3-cell addresses; anything above is an attack.
    if count > 4 {
        return Err(FdtError::BadCells);
    }
    Ok(count)
}

/// A property of a node.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Property<'a> {
    /// The property's name.
    pub name: &'a [u8],
    /// The property's raw value.
    pub value: &'a [u8],
}

/// The properties of a node ([`Node::properties`]).
pub struct Properties<'a> {
    fdt: &'a Fdt<'a>,
    offset: usize,
    done: bool,
}

impl<'a> Iterator for Properties<'a> {
    type Item = Result<Property<'a>, FdtError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let step = self.fdt.token(self.offset);
            match step {
                Ok((Token::Property { name_offset, value }, next)) => {
                    self.offset = next;
                    let property = self
                        .fdt
                        .string(name_offset)
                        .map(|name| Property { name, value });
                    self.done = property.is_err();
                    return Some(property);
                }
                Ok((Token::Nop, next)) => self.offset = next,
                Ok((Token::BeginNode(_) | Token::EndNode, _)) => self.done = true,
                Ok((Token::End, _)) => {
                    self.done = true;
                    return Some(Err(FdtError::UnbalancedNodes));
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
        None
    }
}

/// The children of a node ([`Node::children`]).
pub struct Children<'a> {
    fdt: &'a Fdt<'a>,
    /// The next token to read; while `skip` is set, the body of the child returned last, whose
    /// subtree comes first.
    offset: usize,
    skip: bool,
    /// The parent's cells, once its properties have been read.
    cells: Option<Cells>,
    done: bool,
}

impl<'a> Children<'a> {
    #[inline]
    fn step(&mut self) -> Result<Option<Node<'a>>, FdtError> {
        let cells = match self.cells {
            Some(cells) => cells,
            None => {
                // The parent's cells, read while skipping its properties.
                let mut cells = Cells::default();
                loop {
                    match self.fdt.token(self.offset)? {
                        (Token::Property { name_offset, value }, next) => {
                            if self.fdt.string_is(name_offset, b"#address-cells") {
                                cells.address = cell_count(value)?;
                            } else if self.fdt.string_is(name_offset, b"#size-cells") {
                                cells.size = cell_count(value)?;
                            }
                            self.offset = next;
                        }
                        (Token::Nop, next) => self.offset = next,
                        _ => break,
                    }
                }
                self.cells = Some(cells);
                cells
            }
        };
        if self.skip {
            self.offset = self.fdt.skip_subtree(self.offset)?;
            self.skip = false;
        }
        loop {
            match self.fdt.token(self.offset)? {
                (Token::Nop, next) => self.offset = next,
                (Token::BeginNode(name), body) => {
                    let child = Node {
                        fdt: self.fdt,
                        offset: self.offset,
                        body,
                        name,
                        parent_cells: cells,
                    };
                    self.offset = body;
                    self.skip = true;
                    return Ok(Some(child));
                }
                (Token::EndNode, _) => return Ok(None),
                _ => {
                    return Err(FdtError::BadStructure(
                        self.fdt.structure_start + self.offset,
                    ))
                }
            }
        }
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Node<'a>, FdtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = self.step();
        self.done = !matches!(step, Ok(Some(_)));
        step.transpose()
    }
}

/// A prop-encoded array of `N` fields per entry, each a 64-bit value of the given cell counts
/// (`reg`: address and size; `ranges`: child address, parent address and size).
pub struct Entries<'a, const N: usize> {
    value: &'a [u8],
    cells: [u32; N],
}

impl<'a, const N: usize> Entries<'a, N> {
    fn new(value: &'a [u8], cells: [u32; N]) -> Result<Self, FdtError> {
        if cells.iter().any(|&c| c > MAX_VALUE_CELLS) {
            return Err(FdtError::BadCells);
        }
        let entry: usize = cells.iter().map(|&c| c as usize * 4).sum();
        if entry == 0 || !value.len().is_multiple_of(entry) {
            return Err(FdtError::BadValue);
        }
        Ok(Self { value, cells })
    }
}

impl<const N: usize> Iterator for Entries<'_, N> {
    type Item = [u64; N];

    fn next(&mut self) -> Option<[u64; N]> {
        if self.value.is_empty() {
            return None;
        }
        let mut entry = [0; N];
        for (field, &cells) in entry.iter_mut().zip(&self.cells) {
            for _ in 0..cells {
                let (cell, rest) = self.value.split_first_chunk::<4>()?;
                *field = *field << 32 | u64::from(u32::from_be_bytes(*cell));
                self.value = rest;
            }
        }
        Some(entry)
    }
}

/// The RAM ranges of the `/memory` nodes ([`Fdt::memory`]).
pub struct MemoryRanges<'a> {
    nodes: Children<'a>,
    reg: Option<Entries<'a, 2>>,
}

impl MemoryRanges<'_> {
    fn step(&mut self) -> Result<Option<Range<u64>>, FdtError> {
        loop {
            if let Some([address, size]) = self.reg.as_mut().and_then(Iterator::next) {
                let end = address
                    .checked_add(size)
                    .ok_or(FdtError::RegOverflow { address, size })?;
                return Ok(Some(address..end));
            }
            let Some(node) = self.nodes.next().transpose()? else {
                return Ok(None);
            };
            let is_memory = match node.property(b"device_type")? {
                Some(kind) => c_string(kind) == b"memory",
                None => node_name_matches(node.name, b"memory"),
            };
            if is_memory {
                self.reg = node.reg()?;
            }
        }
    }
}

impl Iterator for MemoryRanges<'_> {
    type Item = Result<Range<u64>, FdtError>;

    fn next(&mut self) -> Option<Self::Item> {
        let step = self.step();
        if step.is_err() {
            self.nodes.done = true;
            self.reg = None;
        }
        step.transpose()
    }
}

/// The nodes whose `compatible` lists a name ([`Fdt::compatible_nodes`]).
pub struct CompatibleNodes<'a> {
    fdt: &'a Fdt<'a>,
    compatible: &'a [u8],
    /// The next token to read.
    offset: usize,
    /// Cells of each open node, by depth (index 0: the root's parent, the defaults).
    cells: [Cells; MAX_DEPTH + 1],
    depth: usize,
    done: bool,
}

impl<'a> CompatibleNodes<'a> {
    fn step(&mut self) -> Result<Option<Node<'a>>, FdtError> {
        loop {
            let (token, next) = self.fdt.token(self.offset)?;
            let here = self.offset;
            self.offset = next;
            match token {
                Token::BeginNode(name) => {
                    if self.depth == MAX_DEPTH {
                        return Err(FdtError::TooDeep);
                    }
                    let node = Node {
                        fdt: self.fdt,
                        offset: here,
                        body: next,
                        name,
                        parent_cells: self.cells[self.depth],
                    };
                    self.depth += 1;
                    self.cells[self.depth] = node.cells()?;
                    if node.is_compatible(self.compatible)? {
                        return Ok(Some(node));
                    }
                }
                Token::EndNode => {
                    self.depth = self.depth.checked_sub(1).ok_or(FdtError::UnbalancedNodes)?;
                    if self.depth == 0 {
                        return Ok(None);
                    }
                }
                Token::Property { .. } | Token::Nop => {}
                Token::End => return Err(FdtError::UnbalancedNodes),
            }
        }
    }
}

impl<'a> Iterator for CompatibleNodes<'a> {
    type Item = Result<Node<'a>, FdtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = self.step();
        self.done = !matches!(step, Ok(Some(_)));
        step.transpose()
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds FDT blobs for tests.
    pub(crate) struct FdtBuilder {
        structure: Vec<u8>,
        strings: Vec<u8>,
    }

    impl FdtBuilder {
        pub(crate) fn new() -> Self {
            Self {
                structure: Vec::new(),
                strings: Vec::new(),
            }
        }

        pub(crate) fn token(&mut self, token: u32) -> &mut Self {
            self.structure.extend_from_slice(&token.to_be_bytes());
            self
        }

        pub(crate) fn begin(&mut self, name: &str) -> &mut Self {
            self.token(FDT_BEGIN_NODE);
            self.structure.extend_from_slice(name.as_bytes());
            self.structure.push(0);
            self.structure
                .resize(self.structure.len().next_multiple_of(4), 0);
            self
        }

        pub(crate) fn end(&mut self) -> &mut Self {
            self.token(FDT_END_NODE)
        }

        pub(crate) fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let name_offset = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.token(FDT_PROP);
            self.structure
                .extend_from_slice(&(value.len() as u32).to_be_bytes());
            self.structure.extend_from_slice(&name_offset.to_be_bytes());
            self.structure.extend_from_slice(value);
            self.structure
                .resize(self.structure.len().next_multiple_of(4), 0);
            self
        }

        pub(crate) fn prop_u32s(&mut self, name: &str, cells: &[u32]) -> &mut Self {
            let value: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
            self.prop(name, &value)
        }

        pub(crate) fn build(&mut self) -> Vec<u8> {
            self.token(FDT_END);
            let reserve_map = HEADER_SIZE;
            let structure = reserve_map + 16;
            let strings = structure + self.structure.len();
            let total = strings + self.strings.len();
            let mut blob = Vec::new();
            for field in [
                FDT_MAGIC,
                total as u32,
                structure as u32,
                strings as u32,
                reserve_map as u32,
                17,
                16,
                0,
                self.strings.len() as u32,
                self.structure.len() as u32,
            ] {
                blob.extend_from_slice(&field.to_be_bytes());
            }
            blob.extend_from_slice(&[0; 16]);
            blob.extend_from_slice(&self.structure);
            blob.extend_from_slice(&self.strings);
            blob
        }
    }

    /// The shape of crosvm's tree: ns16550a serial at 0x3f8, stdout-path to it.
    pub(crate) fn crosvm_like() -> Vec<u8> {
        FdtBuilder::new()
            .begin("")
            .prop_u32s("#address-cells", &[2])
            .prop_u32s("#size-cells", &[2])
            .begin("chosen")
            .prop("stdout-path", b"/U6_16550A@3f8\0")
            .end()
            .begin("U6_16550A@3f8")
            .prop("compatible", b"ns16550a\0")
            .prop_u32s("reg", &[0, 0x3f8, 0, 8])
            .end()
            .end()
            .build()
    }

    /// QEMU virt's tree, dumped with `-M virt,gic-version=3,dumpdtb=...` (QEMU 7.2).
    const QEMU_VIRT_DTB: &[u8] = include_bytes!("../../tests/data/qemu-virt.dtb");

    /// The inputs in `tests/data/fdt-regressions/`: the fuzzer's seeds, hand-made malformed
    /// trees and every input the fuzzer (`fuzz/`) ever crashed on. Never empty: a test that
    /// replays them must replay something.
    pub(crate) fn regression_inputs() -> Vec<Vec<u8>> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fdt-regressions");
        let inputs: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .collect();
        assert!(!inputs.is_empty(), "no inputs in {dir}");
        inputs
    }

    /// QEMU virt's tree, in a heap buffer (8-byte aligned, unlike `include_bytes!`).
    pub(crate) fn qemu_virt() -> Vec<u8> {
        QEMU_VIRT_DTB.to_vec()
    }

    #[test]
    fn scans_stop_and_resume() {
        let blob = qemu_virt();
        let fdt = Fdt::new(&blob).unwrap();
        let root = fdt.root().unwrap();
        let all: Vec<_> = root.children().map(|c| c.unwrap().name()).collect();
        let mut first = Vec::new();
        let after = root
            .scan_children(None, |child| {
                first.push(child.name());
                Ok(child.name() == b"fw-cfg@9020000")
            })
            .unwrap();
        let mut rest = Vec::new();
        let end = root
            .scan_children(after, |child| {
                rest.push(child.name());
                Ok(false)
            })
            .unwrap();
        assert_eq!(end, None);
        assert_eq!(first.len(), 4);
        assert_eq!([first, rest].concat(), all);
    }

    #[test]
    fn child_offsets_name_each_child_and_resume() {
        let blob = qemu_virt();
        let fdt = Fdt::new(&blob).unwrap();
        let root = fdt.root().unwrap();
        let (cells, children) = root.cells_and_children().unwrap();
        let all: Vec<_> = root.children().map(|c| c.unwrap()).collect();
        let mut first = Vec::new();
        let after = root
            .scan_child_offsets(children, |offset, name_len, first_bytes| {
                first.push((offset, name_len, first_bytes));
                offset == all[3].offset()
            })
            .unwrap();
        let mut rest = Vec::new();
        let end = root
            .scan_child_offsets(after.unwrap(), |offset, name_len, first_bytes| {
                rest.push((offset, name_len, first_bytes));
                false
            })
            .unwrap();
        assert_eq!(end, None);
        assert_eq!(first.len(), 4);
        let seen = [first, rest].concat();
        assert_eq!(seen.len(), all.len());
        for ((offset, name_len, first_bytes), child) in seen.into_iter().zip(&all) {
            assert_eq!(offset, child.offset());
            assert_eq!(name_len, child.name().len());
            let mut padded = child.name().to_vec();
            padded.resize(4.max(padded.len()), 0);
            assert_eq!(first_bytes, padded[..4]);
            assert_eq!(fdt.node_at(offset, cells).unwrap().name(), child.name());
        }
    }

    #[test]
    fn stdout_path_ends_at_the_first_colon_or_nul() {
        assert_eq!(split_stdout_path(b"/uart@1\0"), (&b"/uart@1"[..], &b""[..]));
        assert_eq!(split_stdout_path(b"serial0"), (&b"serial0"[..], &b""[..]));
        assert_eq!(
            split_stdout_path(b"serial0:115200n8\0:x"),
            (&b"serial0"[..], &b"115200n8"[..])
        );
        assert_eq!(split_stdout_path(b"/a\0:b\0"), (&b"/a"[..], &b""[..]));
        assert_eq!(split_stdout_path(b":9600"), (&b""[..], &b"9600"[..]));
    }

    #[test]
    fn qemu_virt_nodes_and_properties() {
        let blob = qemu_virt();
        let fdt = Fdt::new(&blob).unwrap();
        fdt.check().unwrap();
        let uart = fdt.node(b"/pl011@9000000").unwrap().unwrap();
        assert!(uart.is_compatible(b"arm,pl011").unwrap());
        assert_eq!(
            uart.parent_cells(),
            Cells {
                address: 2,
                size: 2
            }
        );
        let reg: Vec<_> = uart.reg().unwrap().unwrap().collect();
        assert_eq!(reg, [[0x900_0000, 0x1000]]);
        assert_eq!(
            fdt.node(b"/pl011").unwrap().unwrap().name(),
            b"pl011@9000000"
        );
        assert!(fdt.node(b"/pl011@1").unwrap().is_none());
        let memory: Vec<_> = fdt.memory().unwrap().map(Result::unwrap).collect();
        assert_eq!(memory, vec![0x4000_0000..0x4000_0000 + 0x52c0_0000]);
        let chosen = fdt.chosen().unwrap().unwrap();
        assert_eq!(chosen.stdout_path, Some(&b"/pl011@9000000"[..]));
        assert_eq!(chosen.initrd, None);
        let intc: Vec<_> = fdt
            .compatible_nodes(b"arm,gic-v3")
            .map(|node| node.unwrap().name())
            .collect();
        assert_eq!(intc, [b"intc@8000000"]);
        let names: Vec<_> = fdt
            .node(b"/psci")
            .unwrap()
            .unwrap()
            .properties()
            .map(|p| p.unwrap().name)
            .collect();
        assert!(names.contains(&&b"method"[..]));
    }

    #[test]
    fn aliases_and_translated_buses() {
        let blob = FdtBuilder::new()
            .begin("")
            .begin("aliases")
            .prop("serial0", b"/soc/uart@1000\0")
            .prop("soc", b"/soc\0")
            .end()
            .begin("chosen")
            .prop("stdout-path", b"serial0:115200n8\0")
            .prop("bootargs", b"console=ttyS0\0")
            .prop_u32s("linux,initrd-start", &[0x8100_0000])
            .prop("linux,initrd-end", &0x8200_0000u64.to_be_bytes())
            .end()
            .begin("soc")
            .prop_u32s("#address-cells", &[1])
            .prop_u32s("#size-cells", &[1])
            .prop_u32s("ranges", &[0x1000, 0, 0x2000_1000, 0x1000])
            .begin("uart@1000")
            .prop("compatible", b"vendor,uart\0arm,pl011\0")
            .prop_u32s("reg", &[0x1000, 0x100, 0x3000, 0x10])
            .end()
            .end()
            .end()
            .build();
        let fdt = Fdt::new(&blob).unwrap();
        fdt.check().unwrap();
        let chosen = fdt.chosen().unwrap().unwrap();
        assert_eq!(chosen.bootargs, Some(&b"console=ttyS0"[..]));
        assert_eq!(chosen.initrd, Some(0x8100_0000..0x8200_0000));
        let (path, options) = split_stdout_path(chosen.stdout_path.unwrap());
        assert_eq!((path, options), (&b"serial0"[..], &b"115200n8"[..]));
        let uart = fdt.resolve(path).unwrap().unwrap();
        assert_eq!(uart.name(), b"uart@1000");
        assert_eq!(
            fdt.resolve(b"soc/uart").unwrap().unwrap().name(),
            b"uart@1000"
        );
        assert!(fdt.resolve(b"serial1").unwrap().is_none());
        let reg: Vec<_> = uart.reg().unwrap().unwrap().collect();
        assert_eq!(reg, [[0x1000, 0x100], [0x3000, 0x10]]);
        let soc = fdt.node(b"/soc").unwrap().unwrap();
        let ranges: Vec<_> = soc.ranges().unwrap().unwrap().collect();
        assert_eq!(ranges, [[0x1000, 0x2000_1000, 0x1000]]);
        let found: Vec<_> = fdt
            .compatible_nodes(b"arm,pl011")
            .map(|n| n.unwrap().name())
            .collect();
        assert_eq!(found, [b"uart@1000"]);
    }

    #[test]
    fn absurd_cells_and_values_are_errors() {
        let tree = |cells: u32, reg: &[u32]| {
            FdtBuilder::new()
                .begin("")
                .prop_u32s("#address-cells", &[cells])
                .prop_u32s("#size-cells", &[1])
                .begin("memory@0")
                .prop("device_type", b"memory\0")
                .prop_u32s("reg", reg)
                .end()
                .end()
                .build()
        };
        let huge = tree(0xffff_ffff, &[0, 0x1000]);
        let fdt = Fdt::new(&huge).unwrap();
        assert_eq!(fdt.memory().unwrap().next(), Some(Err(FdtError::BadCells)));
        let pci = tree(3, &[0, 0, 0, 0x1000]);
        let fdt = Fdt::new(&pci).unwrap();
        assert_eq!(fdt.memory().unwrap().next(), Some(Err(FdtError::BadCells)));
        let ragged = tree(1, &[0, 0x1000, 7]);
        let fdt = Fdt::new(&ragged).unwrap();
        assert_eq!(fdt.memory().unwrap().next(), Some(Err(FdtError::BadValue)));
        let wraps = tree(1, &[0xffff_ffff, 0xffff_ffff]);
        let fdt = Fdt::new(&wraps).unwrap();
        assert_eq!(
            fdt.memory().unwrap().next(),
            Some(Ok(0xffff_ffff..0x1_ffff_fffe))
        );

        let overflows = tree(2, &[0xffff_ffff, 0xffff_f000, 0x1000]);
        let error = Fdt::new(&overflows).unwrap().memory().unwrap().next();
        assert_eq!(
            error,
            Some(Err(FdtError::RegOverflow {
                address: 0xffff_ffff_ffff_f000,
                size: 0x1000
            }))
        );
        assert_eq!(
            error.unwrap().unwrap_err().to_string(),
            "a reg entry at 0xfffffffffffff000 of size 0x1000 ends past the 64-bit address space"
        );
    }

    #[test]
    fn each_bad_initrd_has_its_own_error() {
        let chosen = |properties: &[(&str, u32)]| {
            let mut builder = FdtBuilder::new();
            builder.begin("").begin("chosen");
            for &(name, value) in properties {
                builder.prop_u32s(name, &[value]);
            }
            builder.end().end().build()
        };
        let cases = [
            (
                chosen(&[("linux,initrd-start", 0x2000), ("linux,initrd-end", 0x1000)]),
                FdtError::InitrdEndBeforeStart {
                    start: 0x2000,
                    end: 0x1000,
                },
                "/chosen/linux,initrd-end (0x1000) is below linux,initrd-start (0x2000)",
            ),
            (
                chosen(&[("linux,initrd-start", 0x2000)]),
                FdtError::InitrdHalf("linux,initrd-end"),
                "/chosen has only one of linux,initrd-start and linux,initrd-end: no \
                 linux,initrd-end",
            ),
            (
                chosen(&[("linux,initrd-end", 0x2000)]),
                FdtError::InitrdHalf("linux,initrd-start"),
                "/chosen has only one of linux,initrd-start and linux,initrd-end: no \
                 linux,initrd-start",
            ),
        ];
        for (blob, error, message) in cases {
            assert_eq!(Fdt::new(&blob).unwrap().chosen(), Err(error));
            assert_eq!(error.to_string(), message);
        }
        // A value of the wrong length is still that.
        let three_bytes = FdtBuilder::new()
            .begin("")
            .begin("chosen")
            .prop("linux,initrd-start", &[0, 0, 0])
            .prop_u32s("linux,initrd-end", &[0x1000])
            .end()
            .end()
            .build();
        assert_eq!(
            Fdt::new(&three_bytes).unwrap().chosen(),
            Err(FdtError::BadValue)
        );
    }

    #[test]
    fn component_without_unit_address_matches() {
        assert!(node_name_matches(b"uart@1000", b"uart"));
        assert!(!node_name_matches(b"uart@1000", b"uart@2000"));
        assert!(!node_name_matches(b"uartx", b"uart"));
    }

    #[test]
    fn header_errors() {
        assert_eq!(Fdt::new(&[]).unwrap_err(), FdtError::Truncated);
        assert_eq!(Fdt::new(&[0; 64]).unwrap_err(), FdtError::BadMagic(0));
        let mut blob = crosvm_like();
        blob.truncate(blob.len() - 1);
        assert_eq!(Fdt::new(&blob).unwrap_err(), FdtError::Truncated);

        let mut blob = crosvm_like();
        blob[8..12].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
        assert_eq!(Fdt::new(&blob).unwrap_err(), FdtError::BadLayout);

        let mut blob = crosvm_like();
        blob[24..28].copy_from_slice(&99u32.to_be_bytes());
        assert_eq!(
            Fdt::new(&blob).unwrap_err(),
            FdtError::UnsupportedVersion(99)
        );
    }

    #[test]
    fn check_finds_what_lookups_may_skip() {
        let good = crosvm_like();
        Fdt::new(&good).unwrap().check().unwrap();
        // A second root after the first.
        let mut blob = good.clone();
        let structure = u32::from_be_bytes(blob[8..12].try_into().unwrap()) as usize;
        let size = u32::from_be_bytes(blob[36..40].try_into().unwrap()) as usize;
        blob[structure + size - 4..structure + size].copy_from_slice(&FDT_NOP.to_be_bytes());
        assert!(Fdt::new(&blob).unwrap().check().is_err());
    }

    #[test]
    fn corruptions_are_errors_not_panics() {
        for good in [crosvm_like(), QEMU_VIRT_DTB[..2048].to_vec()] {
            // Corrupt each byte of the blob in turn: every outcome must be a value.
            for index in 0..good.len() {
                for value in [0x00, 0x01, 0x02, 0x03, 0x04, 0x09, 0x7f, 0xff] {
                    let mut blob = good.clone();
                    blob[index] = value;
                    read_everything(&blob);
                }
            }
        }
        let good = crosvm_like();
        // And every truncation of a valid tree whose header still claims the full size.
        for len in 0..good.len() {
            assert!(Fdt::new(&good[..len]).is_err());
        }
    }

    /// The fuzzer's seeds, hand-made malformed trees and any input the fuzzer (`fuzz/`) ever
    /// crashed on: each must be read to a result, never a panic.
    #[test]
    fn fuzz_regressions_never_panic() {
        for blob in regression_inputs() {
            read_everything(&blob);
        }
    }

    #[test]
    fn blobs_are_only_taken_from_inside_the_region() {
        let mut memory = vec![0u8; 4096];
        let tree = crosvm_like();
        memory[256..256 + tree.len()].copy_from_slice(&tree);
        let base = memory.as_ptr() as usize;
        let region = base..base + memory.len();
        let at = |offset: usize| (base + offset) as u64;
        // SAFETY: memory is readable and not written while these slices are used.
        unsafe {
            assert_eq!(
                from_region(at(256), region.clone()),
                Some(&memory[256..256 + tree.len()])
            );
            assert_eq!(from_region(at(0), region.clone()), None, "no FDT magic");
            assert_eq!(from_region(0xdead_beef, region.clone()), None);
            assert_eq!(from_region(u64::MAX, region.clone()), None);
            assert_eq!(
                from_region(at(4096 - 8), region.clone()),
                None,
                "header crosses the end"
            );
            // A header claiming more than the region holds.
            memory[4096 - 64..4096 - 60].copy_from_slice(&FDT_MAGIC.to_be_bytes());
            memory[4096 - 60..4096 - 56].copy_from_slice(&0x1000u32.to_be_bytes());
            assert_eq!(from_region(at(4096 - 64), region.clone()), None);
        }
    }

    #[test]
    fn blobs_larger_than_the_maximum_are_refused_even_in_a_larger_region() {
        let mut memory = vec![0u8; MAX_SIZE + 4096];
        let tree = crosvm_like();
        memory[..tree.len()].copy_from_slice(&tree);
        let base = memory.as_ptr() as usize;
        let region = base..base + memory.len();
        // SAFETY: memory is readable and not written while these slices are used.
        unsafe {
            assert_eq!(
                from_region(base as u64, region.clone()),
                Some(&memory[..tree.len()])
            );
            memory[4..8].copy_from_slice(&(MAX_SIZE as u32 + 8).to_be_bytes());
            assert_eq!(from_region(base as u64, region.clone()), None);
        }
    }

    #[test]
    fn deep_nesting_is_refused_where_levels_are_tracked() {
        let mut builder = FdtBuilder::new();
        builder.begin("");
        for _ in 0..MAX_DEPTH {
            builder.begin("n");
        }
        for _ in 0..=MAX_DEPTH {
            builder.end();
        }
        let blob = builder.build();
        let fdt = Fdt::new(&blob).unwrap();
        assert!(matches!(
            fdt.compatible_nodes(b"x").next(),
            Some(Err(FdtError::TooDeep))
        ));
        // Path lookups and checks track no levels, so they still work.
        fdt.check().unwrap();
        assert!(fdt.node(b"/n/n/n").unwrap().is_some());
    }
}
