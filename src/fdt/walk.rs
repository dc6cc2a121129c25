// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The structure block: its tokens, and the one walker every read is built on.
//!
//! [`Fdt::walk`] goes forward from inside a node's body, skipping whole subtrees, and stops at
//! the first property or child its callers ask for, or at the end of the node. Lookups,
//! iterators, the console search, [`Fdt::check`] and the editor are all made of such walks, so
//! the bounds checks that keep hostile trees harmless are in one place. [`Fdt::token`] decodes
//! a single token, for code that must see every token in order (the editor's `pack`).

use super::{same_bytes, Fdt, FdtError};
use core::ffi::CStr;
use core::ops::Range;

// Structure block tokens (Devicetree Specification 5.4.1).
pub(super) const FDT_BEGIN_NODE: u32 = 0x1;
pub(super) const FDT_END_NODE: u32 = 0x2;
pub(super) const FDT_PROP: u32 = 0x3;
pub(super) const FDT_NOP: u32 = 0x4;
pub(super) const FDT_END: u32 = 0x9;

/// One token of the structure block, as the editor needs it.
#[derive(Clone, Copy)]
pub(super) enum Token<'a> {
    BeginNode(&'a [u8]),
    EndNode,
    Property { value: &'a [u8] },
    Nop,
    End,
}

/// Where [`Fdt::walk`] stopped. Indices count 32-bit words from the start of the structure
/// block.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) enum Stop {
    /// At the property whose `FDT_PROP` is at this index.
    Property(usize),
    /// At a child of the walked node.
    Child {
        /// Index of its `FDT_BEGIN_NODE`.
        begin: usize,
        /// Length of its name in bytes.
        name_len: usize,
        /// Index of the first token after its name.
        body: usize,
    },
    /// At the end of the walked node: the index after its `FDT_END_NODE`.
    End(usize),
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

impl<'a> Fdt<'a> {
    /// The big-endian word at byte `offset` (a multiple of 4) of the structure block.
    #[inline]
    fn word(&self, offset: usize) -> Option<u32> {
        self.words.get(offset / 4).map(|&word| u32::from_be(word))
    }

    /// The token at byte `offset` into the structure block, and the offset of the next one.
    #[inline(always)]
    pub(super) fn token(&self, offset: usize) -> Result<(Token<'a>, usize), FdtError> {
        let bad = || self.bad_structure(offset);
        let tag = self.word(offset).ok_or_else(bad)?;
        let body = offset + 4;
        // Tokens are 4-byte aligned; the block's end need not be, so the next offset may lie
        // past it (and reading there is an error).
        match tag {
            FDT_BEGIN_NODE => {
                let (_, len) = self
                    .words
                    .get(body / 4..)
                    .and_then(skip_name)
                    .ok_or_else(bad)?;
                let name = self.structure.get(body..body + len).ok_or_else(bad)?;
                // The name and its NUL, padded to whole words.
                Ok((Token::BeginNode(name), body + (len / 4 + 1) * 4))
            }
            FDT_END_NODE => Ok((Token::EndNode, body)),
            FDT_PROP => {
                let len = self.word(body).ok_or_else(bad)? as usize;
                let start = body + 8;
                let end = start.checked_add(len).ok_or_else(bad)?;
                let value = self.structure.get(start..end).ok_or_else(bad)?;
                Ok((Token::Property { value }, start + len.next_multiple_of(4)))
            }
            FDT_NOP => Ok((Token::Nop, body)),
            FDT_END => Ok((Token::End, body)),
            _ => Err(bad()),
        }
    }

    /// Walks forward from the token at word `index`, in the body of a node, to the
    /// `FDT_END_NODE` that closes it. Calls `property` with the index, name offset and value
    /// place (for [`Fdt::value`]) of each of the node's own properties, and `child` with the
    /// `FDT_BEGIN_NODE` index, name length and body index of each child; when either returns
    /// `true` the walk stops there, and otherwise the property or the child's whole subtree is
    /// skipped. Nested properties and names are never looked at: the walk reads token tags,
    /// property lengths and name words, comparing tags in the blob's byte order.
    ///
    /// A name offset whose word lies past the block reads as `usize::MAX`, which names no
    /// string; a value place may lie past the block, which [`Fdt::value`] refuses.
    #[inline(always)]
    pub(super) fn walk(
        &self,
        mut index: usize,
        mut property: impl FnMut(usize, usize, Range<usize>) -> bool,
        mut child: impl FnMut(usize, usize, usize) -> bool,
    ) -> Result<Stop, FdtError> {
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
                let len = u32::from_be(next) as usize;
                if depth == 0 {
                    let name_offset = words
                        .get(index + 2)
                        .map_or(usize::MAX, |&word| u32::from_be(word) as usize);
                    let start = (index + 3) * 4;
                    if property(index, name_offset, start..start.saturating_add(len)) {
                        return Ok(Stop::Property(index));
                    }
                }
                // Tag, length, name offset and the value in whole words:
                // 3 + ceil(len / 4) = (len + 15) / 4. A length past the block ends the walk.
                index += (len + 15) / 4;
            };
            if tag == FDT_BEGIN_NODE {
                let Some((after, name_len)) = skip_name(&words[index + 1..]) else {
                    break;
                };
                let body = words.len() - after.len();
                if depth == 0 && child(index, name_len, body) {
                    return Ok(Stop::Child {
                        begin: index,
                        name_len,
                        body,
                    });
                }
                index = body;
                depth += 1;
            } else if tag == FDT_END_NODE {
                index += 1;
                if depth == 0 {
                    return Ok(Stop::End(index));
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

    /// The byte offset after the `FDT_END_NODE` that closes the node whose body starts at byte
    /// `offset`.
    #[inline(always)]
    pub(super) fn skip_subtree(&self, offset: usize) -> Result<usize, FdtError> {
        match self.walk(offset / 4, |_, _, _| false, |_, _, _| false)? {
            Stop::End(after) => Ok(after * 4),
            // Neither callback stops the walk.
            _ => Err(self.bad_structure(offset)),
        }
    }

    /// Calls `visit` with the name offset and the value's place (for [`Fdt::value`]) of each
    /// property from byte `body` on, until it returns `true` or the properties end; returns the
    /// byte offset of the token it stopped at (that property, the first child, or the node's
    /// `FDT_END_NODE`). Values are only sliced when asked for.
    #[inline(always)]
    pub(super) fn scan_properties(
        &self,
        body: usize,
        mut visit: impl FnMut(usize, Range<usize>) -> bool,
    ) -> Result<usize, FdtError> {
        let stop = self.walk(
            body / 4,
            |_, name_offset, value| visit(name_offset, value),
            |_, _, _| true,
        )?;
        Ok(match stop {
            Stop::Property(index) | Stop::Child { begin: index, .. } => index * 4,
            Stop::End(after) => (after - 1) * 4,
        })
    }

    pub(super) fn bad_structure(&self, offset: usize) -> FdtError {
        FdtError::BadStructure(self.structure_start.saturating_add(offset))
    }

    /// The bytes of a property value that [`Fdt::walk`] placed.
    pub(super) fn value(&self, place: Range<usize>) -> Result<&'a [u8], FdtError> {
        let offset = place.start;
        self.structure
            .get(place)
            .ok_or_else(|| self.bad_structure(offset))
    }

    /// The name at `offset` in the strings block (NUL-terminated there), without its NUL.
    pub(super) fn string(&self, offset: usize) -> Result<&'a [u8], FdtError> {
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
    pub(super) fn string_is(&self, offset: usize, name: &[u8]) -> bool {
        offset
            .checked_add(name.len())
            .and_then(|end| self.strings.get(offset..=end))
            .is_some_and(|s| s[name.len()] == 0 && same_bytes(&s[..name.len()], name))
    }

    /// Walks the whole structure block once and checks it: tokens inside the block, names
    /// terminated, property names and values inside their blocks, nodes balanced under one
    /// root, `FDT_END` last. Reads do not need it; the [editor](super::editor) does it before
    /// editing.
    pub fn check(&self) -> Result<(), FdtError> {
        let mut index = self.root()?.body / 4;
        // Nodes open, the root included; no level is tracked, so any depth is accepted.
        let mut depth = 1usize;
        let mut error = None;
        while depth > 0 {
            let stop = self.walk(
                index,
                |_, name_offset, value| {
                    error = self.string(name_offset).and(self.value(value)).err();
                    error.is_some()
                },
                |_, _, _| true,
            )?;
            if let Some(error) = error {
                return Err(error);
            }
            match stop {
                Stop::Child { body, .. } => {
                    depth += 1;
                    index = body;
                }
                Stop::End(after) => {
                    depth -= 1;
                    index = after;
                }
                Stop::Property(at) => return Err(self.bad_structure(at * 4)),
            }
        }
        let mut offset = index * 4;
        loop {
            match self.token(offset)? {
                (Token::Nop, next) => offset = next,
                (Token::End, next) if next == self.structure.len() => return Ok(()),
                _ => return Err(self.bad_structure(offset)),
            }
        }
    }
}
