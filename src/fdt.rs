// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A small reader of flattened device trees: just enough to find the console the VMM chose.
//!
//! The FDT comes from the host and is untrusted. Every read here is bounds-checked, nothing
//! panics, and every walk moves strictly forward through the blob, so a corrupt tree can only
//! produce an [`FdtError`]. (General-purpose FDT crates were not written with that guarantee for
//! hostile input; this reader is fuzzed for it, see `fuzz/`.)

use core::ffi::CStr;
use core::fmt;
use core::ops::Range;

/// The magic number at the start of every FDT.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Size of the FDT header (version 17).
pub const HEADER_SIZE: usize = 40;
/// The oldest FDT version whose layout this reader understands.
const LAST_COMPATIBLE_VERSION: u32 = 16;
/// Nodes nested deeper than this are rejected rather than tracked.
const MAX_DEPTH: usize = 16;
/// `#address-cells` when a node does not say (Devicetree Specification 2.3.5).
const DEFAULT_ADDRESS_CELLS: u32 = 2;

// Structure block tokens (Devicetree Specification 5.4.1).
const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_NOP: u32 = 0x4;
const FDT_END: u32 = 0x9;

/// Why an FDT could not be read, or did not name a usable console.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FdtError {
    /// The blob is shorter than its header or than the size the header claims.
    Truncated,
    /// The blob does not start with [`FDT_MAGIC`]; holds what it starts with instead.
    BadMagic(u32),
    /// The header's `last_comp_version` is newer than this reader understands.
    UnsupportedVersion(u32),
    /// The header places the structure or strings block outside the blob.
    BadLayout,
    /// The structure block is malformed at this byte offset into the blob.
    BadStructure(usize),
    /// A property name offset points outside the strings block or at an unterminated string.
    BadStrings(usize),
    /// Nodes are nested deeper than this reader tracks.
    TooDeep,
    /// The structure block ends more nodes than it begins.
    UnbalancedNodes,
    /// `/chosen` has no `stdout-path` property.
    NoStdoutPath,
    /// `stdout-path` names an alias that `/aliases` does not define.
    UnknownAlias,
    /// No node has the path that `stdout-path` names.
    NodeNotFound,
    /// The console node has no usable `reg` property.
    NoReg,
    /// The console node sits under a bus that translates addresses (non-empty `ranges`).
    TranslatedAddress,
}

impl fmt::Display for FdtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(f, "truncated FDT"),
            Self::BadMagic(magic) => write!(f, "bad FDT magic {magic:#010x}"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported FDT version {v}"),
            Self::BadLayout => write!(f, "FDT blocks lie outside the blob"),
            Self::BadStructure(offset) => {
                write!(f, "malformed FDT structure at offset {offset:#x}")
            }
            Self::BadStrings(offset) => write!(f, "bad FDT property name offset {offset:#x}"),
            Self::TooDeep => write!(f, "FDT nodes nested deeper than {MAX_DEPTH}"),
            Self::UnbalancedNodes => write!(f, "FDT ends more nodes than it begins"),
            Self::NoStdoutPath => write!(f, "no /chosen/stdout-path"),
            Self::UnknownAlias => write!(f, "stdout-path names an unknown alias"),
            Self::NodeNotFound => write!(f, "stdout-path names a node that does not exist"),
            Self::NoReg => write!(f, "console node has no usable reg"),
            Self::TranslatedAddress => write!(f, "console node is behind an address translation"),
        }
    }
}

/// The node that `/chosen/stdout-path` points to.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct StdoutNode<'a> {
    /// The raw `compatible` string list (NUL-separated), empty if absent.
    pub compatible: &'a [u8],
    /// The first address of the node's `reg` property.
    pub address: u64,
}

impl StdoutNode<'_> {
    /// Whether `compatible` lists `name`.
    pub fn is_compatible(&self, name: &str) -> bool {
        self.compatible
            .split(|&b| b == 0)
            .any(|entry| entry == name.as_bytes())
    }
}

/// One step of a walk through the structure block. Property names are left as offsets into
/// the strings block: most walks only look at a few of them.
enum Token<'a> {
    BeginNode(&'a [u8]),
    EndNode,
    Property { name_offset: usize, value: &'a [u8] },
}

/// A validated view of an FDT blob.
#[derive(Clone, Debug)]
pub struct Fdt<'a> {
    blob: &'a [u8],
    structure: core::ops::Range<usize>,
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
    let size = be32(header, 4).ok_or(FdtError::Truncated)?;
    usize::try_from(size).map_err(|_| FdtError::BadLayout)
}

/// The FDT a VMM passed at `address`, if its header and the size it claims lie inside `region`.
/// Nothing outside `region` is read, whatever `address` is.
///
/// # Safety
///
/// `region` must be memory that is readable, and not written, for the rest of the program.
pub unsafe fn from_region(address: u64, region: Range<usize>) -> Option<&'static [u8]> {
    let start = usize::try_from(address).ok()?;
    let header_end = start.checked_add(HEADER_SIZE)?;
    if !region.contains(&start) || header_end > region.end {
        return None;
    }
    // SAFETY: The header lies within region, which the caller promises is readable and stable.
    let header = unsafe { core::slice::from_raw_parts(start as *const u8, HEADER_SIZE) };
    let size = total_size(header).ok()?;
    if size > region.end - start {
        return None;
    }
    // SAFETY: As above, for the whole blob, which the check above keeps inside region.
    Some(unsafe { core::slice::from_raw_parts(start as *const u8, size) })
}

impl<'a> Fdt<'a> {
    /// Checks the header of `blob` and the placement of its blocks.
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
        let last_compatible = field(24)? as u32;
        if last_compatible > LAST_COMPATIBLE_VERSION + 1 {
            return Err(FdtError::UnsupportedVersion(last_compatible));
        }
        let block = |offset: usize, len: usize| {
            let end = offset.checked_add(len).ok_or(FdtError::BadLayout)?;
            if end > size {
                return Err(FdtError::BadLayout);
            }
            Ok(offset..end)
        };
        let structure = block(field(8)?, field(36)?)?;
        let strings = block(field(12)?, field(32)?)?;
        if structure.start % 4 != 0 {
            return Err(FdtError::BadLayout);
        }
        Ok(Self {
            blob,
            structure,
            strings: &blob[strings],
        })
    }

    /// Calls `visit` for every token of the structure block, in order, until it returns `true`.
    /// Returns whether `visit` stopped the walk.
    fn walk(
        &self,
        mut visit: impl FnMut(Token<'a>) -> Result<bool, FdtError>,
    ) -> Result<bool, FdtError> {
        let structure: &'a [u8] = self
            .blob
            .get(self.structure.clone())
            .ok_or(FdtError::BadLayout)?;
        // The unread part of the structure block; every token shortens it, so the walk ends.
        let mut rest = structure;
        loop {
            let bad = FdtError::BadStructure(self.structure.start + structure.len() - rest.len());
            let (token, body) = rest.split_first_chunk::<4>().ok_or(bad)?;
            let (token, size) = match u32::from_be_bytes(*token) {
                FDT_BEGIN_NODE => {
                    let name = CStr::from_bytes_until_nul(body)
                        .map_err(|_| bad)?
                        .to_bytes();
                    (Token::BeginNode(name), name.len() + 1)
                }
                FDT_END_NODE => (Token::EndNode, 0),
                FDT_PROP => {
                    let (len, after_len) = body.split_first_chunk::<4>().ok_or(bad)?;
                    let (name_offset, value) = after_len.split_first_chunk::<4>().ok_or(bad)?;
                    let len = u32::from_be_bytes(*len) as usize;
                    let name_offset = u32::from_be_bytes(*name_offset) as usize;
                    let value = value.get(..len).ok_or(bad)?;
                    (Token::Property { name_offset, value }, 8 + len)
                }
                FDT_NOP => {
                    rest = body;
                    continue;
                }
                FDT_END => return Ok(false),
                _ => return Err(bad),
            };
            // Tokens are 4-byte aligned; the structure block's end need not be.
            rest = body.get(size.next_multiple_of(4)..).unwrap_or_default();
            if visit(token)? {
                return Ok(true);
            }
        }
    }

    /// The name at `offset` in the strings block (NUL-terminated there), without its NUL.
    fn property_name(&self, offset: usize) -> Result<&'a [u8], FdtError> {
        let strings: &'a [u8] = self.strings;
        let rest = strings.get(offset..).ok_or(FdtError::BadStrings(offset))?;
        let name = CStr::from_bytes_until_nul(rest).map_err(|_| FdtError::BadStrings(offset))?;
        Ok(name.to_bytes())
    }

    /// The value of property `name` of the node at absolute `path`, if both exist.
    pub fn property(&self, path: &[u8], name: &[u8]) -> Result<Option<&'a [u8]>, FdtError> {
        let mut found = None;
        let mut tracker = PathTracker::new(path);
        self.walk(|token| {
            match token {
                Token::BeginNode(node) => tracker.enter(node)?,
                Token::EndNode => tracker.leave()?,
                Token::Property { name_offset, value } => {
                    if tracker.at_target() && self.property_name(name_offset)? == name {
                        found = Some(value);
                        return Ok(true);
                    }
                }
            }
            Ok(false)
        })?;
        Ok(found)
    }

    /// Follows `/chosen/stdout-path` (through `/aliases` if needed) to the console's node.
    pub fn stdout(&self) -> Result<StdoutNode<'a>, FdtError> {
        let stdout_path = self
            .property(b"/chosen", b"stdout-path")?
            .ok_or(FdtError::NoStdoutPath)?;
        let mut path = c_string(stdout_path);
        // Anything after ':' is options for the console, such as its baud rate.
        if let Some(colon) = path.iter().position(|&b| b == b':') {
            path = &path[..colon];
        }
        if path.first() != Some(&b'/') {
            let alias = self
                .property(b"/aliases", path)?
                .ok_or(FdtError::UnknownAlias)?;
            path = c_string(alias);
            if path.first() != Some(&b'/') {
                return Err(FdtError::UnknownAlias);
            }
        }
        self.node_reg(path)
    }

    /// The `compatible` and first `reg` address of the node at absolute `path`.
    fn node_reg(&self, path: &[u8]) -> Result<StdoutNode<'a>, FdtError> {
        let mut tracker = PathTracker::new(path);
        // Per depth: the node's #address-cells, and whether its children share its addresses.
        let mut address_cells = [DEFAULT_ADDRESS_CELLS; MAX_DEPTH + 1];
        let mut identity_ranges = [false; MAX_DEPTH + 1];
        let mut compatible: &[u8] = &[];
        let mut reg = None;
        let mut found = false;
        self.walk(|token| {
            match token {
                Token::BeginNode(name) => {
                    tracker.enter(name)?;
                    let depth = tracker.depth;
                    address_cells[depth] = DEFAULT_ADDRESS_CELLS;
                    identity_ranges[depth] = false;
                    found |= tracker.at_target();
                }
                Token::EndNode => {
                    let done = tracker.at_target();
                    tracker.leave()?;
                    return Ok(done);
                }
                // Only the properties of the target and of the nodes on the way to it matter.
                Token::Property { name_offset, value } if tracker.matched == tracker.depth => {
                    let depth = tracker.depth;
                    match self.property_name(name_offset)? {
                        b"#address-cells" => {
                            address_cells[depth] = be32(value, 0).ok_or(FdtError::NoReg)?;
                        }
                        b"ranges" => identity_ranges[depth] = value.is_empty(),
                        b"compatible" if tracker.at_target() => compatible = value,
                        b"reg" if tracker.at_target() => reg = Some(value),
                        _ => {}
                    }
                }
                Token::Property { .. } => {}
            }
            Ok(false)
        })?;
        if !found {
            return Err(FdtError::NodeNotFound);
        }
        let depth = tracker.target_depth;
        // The root (depth 1 in this count) has no parent bus; every bus below it must map its
        // children's addresses one to one for `reg` to be a CPU physical address.
        if (2..depth).any(|bus| !identity_ranges[bus]) {
            return Err(FdtError::TranslatedAddress);
        }
        let cells = address_cells[depth - 1];
        let reg = reg.ok_or(FdtError::NoReg)?;
        let address = match cells {
            1 => be32(reg, 0).map(u64::from),
            2 => be32(reg, 0)
                .zip(be32(reg, 4))
                .map(|(hi, lo)| u64::from(hi) << 32 | u64::from(lo)),
            _ => None,
        };
        Ok(StdoutNode {
            compatible,
            address: address.ok_or(FdtError::NoReg)?,
        })
    }
}

/// `bytes` up to (not including) its first NUL.
fn c_string(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(bytes)
}

/// Tracks, during a walk, whether the current node is on the way to (or is) a node given by path.
struct PathTracker<'p> {
    /// The path's components ("chosen", "serial@3f8"); those past MAX_DEPTH can never match.
    components: [&'p [u8]; MAX_DEPTH],
    /// Depth of the current node: 1 for the root.
    depth: usize,
    /// How many leading nodes of the current position match the path.
    matched: usize,
    /// Depth of the target node: 1 + the number of path components.
    target_depth: usize,
}

impl<'p> PathTracker<'p> {
    fn new(path: &'p [u8]) -> Self {
        let mut components: [&[u8]; MAX_DEPTH] = [&[]; MAX_DEPTH];
        let mut count = 0;
        for component in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            if let Some(slot) = components.get_mut(count) {
                *slot = component;
            }
            count += 1;
        }
        Self {
            components,
            depth: 0,
            matched: 0,
            target_depth: count + 1,
        }
    }

    fn component(&self, index: usize) -> Option<&'p [u8]> {
        self.components.get(index).copied()
    }

    fn enter(&mut self, name: &[u8]) -> Result<(), FdtError> {
        if self.depth == MAX_DEPTH {
            return Err(FdtError::TooDeep);
        }
        self.depth += 1;
        if self.matched == self.depth - 1 {
            let matches = match self.depth {
                1 => name.is_empty(),
                d => self
                    .component(d - 2)
                    .is_some_and(|c| node_name_matches(name, c)),
            };
            if matches {
                self.matched = self.depth;
            }
        }
        Ok(())
    }

    fn leave(&mut self) -> Result<(), FdtError> {
        if self.depth == 0 {
            return Err(FdtError::UnbalancedNodes);
        }
        if self.matched == self.depth {
            self.matched -= 1;
        }
        self.depth -= 1;
        Ok(())
    }

    fn at_target(&self) -> bool {
        self.depth == self.target_depth && self.matched == self.depth
    }
}

/// Whether node `name` ("serial@3f8") is what path component `component` names: the same full
/// name, or the same name before '@' when the component has no unit address.
fn node_name_matches(name: &[u8], component: &[u8]) -> bool {
    if name == component {
        return true;
    }
    !component.contains(&b'@') && name.split(|&b| b == b'@').next() == Some(component)
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

        fn token(&mut self, token: u32) -> &mut Self {
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
    const QEMU_VIRT_DTB: &[u8] = include_bytes!("../tests/data/qemu-virt.dtb");

    #[test]
    fn qemu_virt_console_is_the_pl011() {
        let stdout = Fdt::new(QEMU_VIRT_DTB).unwrap().stdout().unwrap();
        assert!(stdout.is_compatible("arm,pl011"));
        assert_eq!(stdout.address, 0x0900_0000);
    }

    #[test]
    fn crosvm_console_is_the_8250() {
        let blob = crosvm_like();
        let stdout = Fdt::new(&blob).unwrap().stdout().unwrap();
        assert!(stdout.is_compatible("ns16550a"));
        assert!(!stdout.is_compatible("ns16550"));
        assert_eq!(stdout.address, 0x3f8);
    }

    #[test]
    fn stdout_path_through_alias_with_options() {
        let blob = FdtBuilder::new()
            .begin("")
            .begin("aliases")
            .prop("serial0", b"/soc/uart@1000\0")
            .end()
            .begin("chosen")
            .prop("stdout-path", b"serial0:115200n8\0")
            .end()
            .begin("soc")
            .prop_u32s("#address-cells", &[1])
            .prop("ranges", b"")
            .begin("uart@1000")
            .prop("compatible", b"vendor,uart\0arm,pl011\0")
            .prop_u32s("reg", &[0x1000, 0x100])
            .end()
            .end()
            .end()
            .build();
        let stdout = Fdt::new(&blob).unwrap().stdout().unwrap();
        assert!(stdout.is_compatible("arm,pl011"));
        assert_eq!(stdout.address, 0x1000);
    }

    #[test]
    fn component_without_unit_address_matches() {
        assert!(node_name_matches(b"uart@1000", b"uart"));
        assert!(!node_name_matches(b"uart@1000", b"uart@2000"));
        assert!(!node_name_matches(b"uartx", b"uart"));
    }

    #[test]
    fn translated_bus_is_refused() {
        let blob = FdtBuilder::new()
            .begin("")
            .begin("chosen")
            .prop("stdout-path", b"/bus/uart@0\0")
            .end()
            .begin("bus")
            .prop_u32s("ranges", &[0, 0, 0x1000, 0, 0x1000])
            .begin("uart@0")
            .prop_u32s("reg", &[0, 0, 0, 8])
            .end()
            .end()
            .end()
            .build();
        assert_eq!(
            Fdt::new(&blob).unwrap().stdout(),
            Err(FdtError::TranslatedAddress)
        );
    }

    #[test]
    fn missing_pieces_are_errors() {
        let no_chosen = FdtBuilder::new().begin("").end().build();
        assert_eq!(
            Fdt::new(&no_chosen).unwrap().stdout(),
            Err(FdtError::NoStdoutPath)
        );

        let dangling = FdtBuilder::new()
            .begin("")
            .begin("chosen")
            .prop("stdout-path", b"/nowhere\0")
            .end()
            .end()
            .build();
        assert_eq!(
            Fdt::new(&dangling).unwrap().stdout(),
            Err(FdtError::NodeNotFound)
        );

        let bad_alias = FdtBuilder::new()
            .begin("")
            .begin("chosen")
            .prop("stdout-path", b"serial3\0")
            .end()
            .end()
            .build();
        assert_eq!(
            Fdt::new(&bad_alias).unwrap().stdout(),
            Err(FdtError::UnknownAlias)
        );

        let no_reg = FdtBuilder::new()
            .begin("")
            .begin("chosen")
            .prop("stdout-path", b"/uart\0")
            .end()
            .begin("uart")
            .end()
            .end()
            .build();
        assert_eq!(Fdt::new(&no_reg).unwrap().stdout(), Err(FdtError::NoReg));
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
    fn structure_errors_never_panic() {
        let good = crosvm_like();
        // Corrupt each byte of the blob in turn: every outcome must be a value, never a panic.
        for index in 0..good.len() {
            for value in [0x00, 0x01, 0x02, 0x03, 0x09, 0x7f, 0xff] {
                let mut blob = good.clone();
                blob[index] = value;
                if let Ok(fdt) = Fdt::new(&blob) {
                    let _ = fdt.stdout();
                }
            }
        }
        // And every truncation of a valid tree whose header still claims the full size.
        for len in 0..good.len() {
            assert!(Fdt::new(&good[..len]).is_err());
        }
    }

    /// The fuzzer's seeds, hand-made malformed trees and any input the fuzzer (`fuzz/`) ever
    /// crashed on: each must be read to a result, never a panic.
    #[test]
    fn fuzz_regressions_never_panic() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fdt-regressions");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let blob = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(fdt) = Fdt::new(&blob) {
                let _ = fdt.stdout();
                let _ = fdt.property(b"/chosen", b"stdout-path");
            }
            count += 1;
        }
        assert!(count > 0, "no inputs in {dir}");
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
    fn deep_nesting_is_refused() {
        let mut builder = FdtBuilder::new();
        builder.begin("");
        for _ in 0..MAX_DEPTH {
            builder.begin("n");
        }
        for _ in 0..=MAX_DEPTH {
            builder.end();
        }
        let blob = builder.build();
        assert_eq!(Fdt::new(&blob).unwrap().stdout(), Err(FdtError::TooDeep));
    }
}
