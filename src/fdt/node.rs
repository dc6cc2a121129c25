// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Nodes and properties: finding a node by path or alias, reading its properties, and decoding
//! the values boot code needs (`reg`, `ranges`, `/chosen`).

use super::iterators::{Children, CompatibleNodes, MemoryRanges, Properties};
use super::walk::{Stop, Token};
use super::{
    c_string, components, node_name_matches, read_cells, Cells, Fdt, FdtError, MAX_DEPTH,
    MAX_VALUE_CELLS,
};
use crate::memory::AddressRange;

/// A node of the tree: a cursor at its `FDT_BEGIN_NODE` token.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    pub(super) fdt: &'a Fdt<'a>,
    /// Offset of the node's token in the structure block.
    pub(super) offset: usize,
    /// Offset of the first token after the node's name.
    pub(super) body: usize,
    pub(super) name: &'a [u8],
    /// The parent's `#address-cells` and `#size-cells`, which encode this node's `reg`.
    pub(super) parent_cells: Cells,
}

/// A property of a node.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Property<'a> {
    /// The property's name.
    pub name: &'a [u8],
    /// The property's raw value.
    pub value: &'a [u8],
}

/// What `/chosen` tells boot code.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Chosen<'a> {
    /// `bootargs`, the kernel command line, without its NUL.
    pub bootargs: Option<&'a [u8]>,
    /// `stdout-path`, without its NUL ([`Fdt::stdout`] finds the node it names).
    pub stdout_path: Option<&'a [u8]>,
    /// `linux,initrd-start` to `linux,initrd-end`.
    pub initrd: Option<AddressRange>,
}

impl<'a> Fdt<'a> {
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
                _ => return Err(self.bad_structure(offset)),
            }
        }
    }

    /// The node whose `FDT_BEGIN_NODE` token is at `offset` ([`Node::offset`]) and whose parent
    /// has `parent_cells`: how a caller returns to a node it passed without walking again.
    pub(crate) fn node_at(&self, offset: usize, parent_cells: Cells) -> Result<Node<'_>, FdtError> {
        if offset % 4 != 0 {
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
            _ => Err(self.bad_structure(offset)),
        }
    }

    /// The node at absolute `path` ("/soc/uart@1000"; "uart" also matches "uart@1000").
    pub fn node(&self, path: &[u8]) -> Result<Option<Node<'_>>, FdtError> {
        self.root()?.descendant(path)
    }

    /// The value of property `name` of the node at absolute `path`, if both exist.
    pub fn property(&self, path: &[u8], name: &[u8]) -> Result<Option<&'a [u8]>, FdtError> {
        match self.node(path)? {
            Some(node) => self.property_at(node.body, name),
            None => Ok(None),
        }
    }

    /// The value of property `name` among the properties that start at `body`.
    pub(super) fn property_at(
        &self,
        body: usize,
        name: &[u8],
    ) -> Result<Option<&'a [u8]>, FdtError> {
        // A name with a NUL in it names no property; string_is would take "\0" for "".
        if name.contains(&0) {
            return Ok(None);
        }
        let mut place = None;
        self.scan_properties(body, |name_offset, value| {
            let found = self.string_is(name_offset, name);
            if found {
                place = Some(value);
            }
            found
        })?;
        place.map(|place| self.value(place)).transpose()
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
        match self.node(base)? {
            Some(node) => node.descendant(rest),
            None => Ok(None),
        }
    }

    /// Every node whose `compatible` lists `compatible`, in tree order.
    pub fn compatible_nodes<'s>(&'s self, compatible: &'s [u8]) -> CompatibleNodes<'s> {
        CompatibleNodes {
            fdt: self,
            compatible,
            index: 0,
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
                let (start, end) = (one_or_two_cells(start)?, one_or_two_cells(end)?);
                let range = AddressRange::from_bounds(start, end)
                    .ok_or(FdtError::InitrdEndBeforeStart { start, end })?;
                Some(range)
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
}

impl Fdt<'_> {
    /// The `#address-cells` and `#size-cells` among the properties that start at `body`, and
    /// the offset of the first token after those properties.
    pub(super) fn cells_at(&self, body: usize) -> Result<(Cells, usize), FdtError> {
        let mut cells = Cells::default();
        let mut error = None;
        let children = self.scan_properties(body, |name_offset, value| {
            let count = if self.string_is(name_offset, b"#address-cells") {
                &mut cells.address
            } else if self.string_is(name_offset, b"#size-cells") {
                &mut cells.size
            } else {
                return false;
            };
            match self.value(value).and_then(cell_count) {
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
}

/// A big-endian integer of one or two cells (`linux,initrd-start` may be either).
fn one_or_two_cells(mut value: &[u8]) -> Result<u64, FdtError> {
    let cells = match value.len() {
        4 => 1,
        8 => 2,
        _ => return Err(FdtError::BadValue),
    };
    read_cells(&mut value, cells).ok_or(FdtError::BadValue)
}

impl<'a> Node<'a> {
    /// The node's name with its unit address ("serial@3f8"); empty for the root.
    pub fn name(&self) -> &'a [u8] {
        self.name
    }

    /// Where the node is: the offset of its token in the structure block, for [`Fdt::node_at`].
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// The node's properties, in order.
    pub fn properties(&self) -> Properties<'a> {
        Properties {
            fdt: self.fdt,
            index: self.body / 4,
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
    pub(crate) fn cells_and_children(&self) -> Result<(Cells, usize), FdtError> {
        self.fdt.cells_at(self.body)
    }

    /// The parent's `#address-cells` and `#size-cells`, which encode this node's `reg`.
    pub fn parent_cells(&self) -> Cells {
        self.parent_cells
    }

    /// The node's children, in order.
    pub fn children(&self) -> Children<'a> {
        Children {
            fdt: self.fdt,
            index: self.body / 4,
            skip: false,
            cells: None,
            done: false,
        }
    }

    /// Calls `visit` with each child in order, from the child at `from` (a [`Node::offset`];
    /// the first child if `None`), until it returns `true`; returns the offset after the last
    /// child visited. A tighter loop than [`Node::children`], for scans over many children.
    pub(crate) fn scan_children(
        &self,
        from: Option<usize>,
        mut visit: impl FnMut(&Node<'a>) -> Result<bool, FdtError>,
    ) -> Result<Option<usize>, FdtError> {
        let fdt = self.fdt;
        let (cells, children) = self.cells_and_children()?;
        let start = from.unwrap_or(children);
        // What stopped the walk: a visit that returned true, or an error.
        let mut stopped = Ok(false);
        let stop = fdt.walk(
            start / 4,
            |_, _, _| false,
            |index, name_len, body| {
                let offset = index * 4;
                let name_start = offset + 4;
                let Some(name) = fdt.structure.get(name_start..name_start + name_len) else {
                    stopped = Err(fdt.bad_structure(offset));
                    return true;
                };
                stopped = visit(&Node {
                    fdt,
                    offset,
                    body: body * 4,
                    name,
                    parent_cells: cells,
                });
                stopped != Ok(false)
            },
        )?;
        stopped?;
        match stop {
            Stop::Child { body, .. } => Ok(Some(fdt.skip_subtree(body * 4)?)),
            _ => Ok(None),
        }
    }

    /// Calls `visit` with the offset ([`Node::offset`], for [`Fdt::node_at`]), the name's length
    /// and the name's first four bytes (as in the blob: NUL-padded when shorter) of each child
    /// from offset `from` on (a child's offset, or where [`Node::cells_and_children`] says the
    /// children start), until it returns `true`; returns the offset after the subtree of the
    /// child it stopped at, or `None` if it never did. It makes no [`Node`] and slices no name:
    /// the leanest walk over many children, for callers that look closely at few of them.
    pub(crate) fn scan_child_offsets(
        &self,
        from: usize,
        mut visit: impl FnMut(usize, usize, [u8; 4]) -> bool,
    ) -> Result<Option<usize>, FdtError> {
        let fdt = self.fdt;
        let stop = fdt.walk(
            from / 4,
            |_, _, _| false,
            |index, name_len, _| {
                // The walk found the name's NUL after this word, so it exists.
                let first = fdt
                    .words
                    .get(index + 1)
                    .map_or([0; 4], |word| word.to_ne_bytes());
                visit(index * 4, name_len, first)
            },
        )?;
        match stop {
            Stop::Child { body, .. } => Ok(Some(fdt.skip_subtree(body * 4)?)),
            _ => Ok(None),
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

    /// The node that relative `path` names below this one (this one if it is empty).
    fn descendant(self, path: &[u8]) -> Result<Option<Node<'a>>, FdtError> {
        let mut node = self;
        for component in components(path) {
            match node.child(component)? {
                Some(child) => node = child,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
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
pub(super) fn cell_count(mut value: &[u8]) -> Result<u32, FdtError> {
    if value.len() != 4 {
        return Err(FdtError::BadCells);
    }
    let count = read_cells(&mut value, 1).ok_or(FdtError::BadCells)?;
    // The specification's largest use is PCI's 3-cell addresses; anything above is an attack.
    if count > 4 {
        return Err(FdtError::BadCells);
    }
    Ok(count as u32)
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
        if entry == 0 || value.len() % entry != 0 {
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
            *field = read_cells(&mut self.value, cells)?;
        }
        Some(entry)
    }
}
