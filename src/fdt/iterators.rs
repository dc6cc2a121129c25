// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Iterators over a tree: a node's properties and children, the `/memory` ranges, and the nodes
//! compatible with a driver. Each step is one [`Fdt::walk`], resumed where the last one stopped;
//! after an error an iterator ends.

use super::node::{Node, Property};
use super::walk::Stop;
use super::{c_string, node_name_matches, Cells, Entries, Fdt, FdtError, MAX_DEPTH};
use crate::memory::AddressRange;

/// The properties of a node ([`Node::properties`]).
pub struct Properties<'a> {
    pub(super) fdt: &'a Fdt<'a>,
    /// Word index of the next token to read.
    pub(super) index: usize,
    pub(super) done: bool,
}

impl<'a> Iterator for Properties<'a> {
    type Item = Result<Property<'a>, FdtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let fdt = self.fdt;
        let mut found = None;
        let stop = fdt.walk(
            self.index,
            |_, name_offset, value| {
                found = Some((name_offset, value));
                true
            },
            |_, _, _| true,
        );
        let (Ok(Stop::Property(_)), Some((name_offset, place))) = (stop, found) else {
            self.done = true;
            return stop.err().map(Err);
        };
        // The value, padded to whole words; a place past the block fails to read below.
        self.index = place.end.div_ceil(4);
        let property = fdt.value(place).and_then(|value| {
            Ok(Property {
                name: fdt.string(name_offset)?,
                value,
            })
        });
        self.done = property.is_err();
        Some(property)
    }
}

/// The children of a node ([`Node::children`]).
pub struct Children<'a> {
    pub(super) fdt: &'a Fdt<'a>,
    /// Word index of the next token to read; while `skip` is set, the body of the child returned
    /// last, whose subtree comes first.
    pub(super) index: usize,
    pub(super) skip: bool,
    /// The parent's cells, once its properties have been read.
    pub(super) cells: Option<Cells>,
    pub(super) done: bool,
}

impl<'a> Children<'a> {
    #[inline]
    fn step(&mut self) -> Result<Option<Node<'a>>, FdtError> {
        let fdt = self.fdt;
        let cells = match self.cells {
            Some(cells) => cells,
            None => {
                let (cells, children) = fdt.cells_at(self.index * 4)?;
                self.index = children / 4;
                self.cells = Some(cells);
                cells
            }
        };
        if self.skip {
            self.index = fdt.skip_subtree(self.index * 4)? / 4;
            self.skip = false;
        }
        match fdt.walk(self.index, |_, _, _| false, |_, _, _| true)? {
            Stop::Child {
                begin,
                name_len,
                body,
            } => {
                let child = fdt.child_node(begin, name_len, body, cells)?;
                self.index = body;
                self.skip = true;
                Ok(Some(child))
            }
            _ => Ok(None),
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

/// The RAM ranges of the `/memory` nodes ([`Fdt::memory`]).
pub struct MemoryRanges<'a> {
    pub(super) nodes: Children<'a>,
    pub(super) reg: Option<Entries<'a, 2>>,
}

impl MemoryRanges<'_> {
    fn step(&mut self) -> Result<Option<AddressRange>, FdtError> {
        loop {
            if let Some([address, size]) = self.reg.as_mut().and_then(Iterator::next) {
                let range = AddressRange::new(address, size)
                    .ok_or(FdtError::RegOverflow { address, size })?;
                return Ok(Some(range));
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
    type Item = Result<AddressRange, FdtError>;

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
    pub(super) fdt: &'a Fdt<'a>,
    pub(super) compatible: &'a [u8],
    /// Word index of the next token to read.
    pub(super) index: usize,
    /// Cells of each open node, by depth (index 0: the root's parent, the defaults).
    pub(super) cells: [Cells; MAX_DEPTH + 1],
    /// Nodes open; the walk from the start of the block finds the root as a child.
    pub(super) depth: usize,
    pub(super) done: bool,
}

impl<'a> CompatibleNodes<'a> {
    fn step(&mut self) -> Result<Option<Node<'a>>, FdtError> {
        let fdt = self.fdt;
        loop {
            match fdt.walk(self.index, |_, _, _| false, |_, _, _| true)? {
                Stop::Child {
                    begin,
                    name_len,
                    body,
                } => {
                    if self.depth == MAX_DEPTH {
                        return Err(FdtError::TooDeep);
                    }
                    let node = fdt.child_node(begin, name_len, body, self.cells[self.depth])?;
                    let (cells, children) = node.cells_and_children()?;
                    self.depth += 1;
                    self.cells[self.depth] = cells;
                    self.index = children / 4;
                    if node.is_compatible(self.compatible)? {
                        return Ok(Some(node));
                    }
                }
                Stop::End(after) => {
                    self.depth = self.depth.checked_sub(1).ok_or(FdtError::UnbalancedNodes)?;
                    self.index = after;
                    if self.depth == 0 {
                        return Ok(None);
                    }
                }
                Stop::Property(index) => return Err(fdt.bad_structure(index * 4)),
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

impl<'a> Fdt<'a> {
    /// The child that a walk stopped at (`FDT_BEGIN_NODE` at word `begin`, a name of
    /// `name_len` bytes, body at word `body`), whose parent has `parent_cells`.
    pub(super) fn child_node(
        &'a self,
        begin: usize,
        name_len: usize,
        body: usize,
        parent_cells: Cells,
    ) -> Result<Node<'a>, FdtError> {
        let offset = begin * 4;
        let name_start = offset + 4;
        let name = self
            .structure
            .get(name_start..name_start + name_len)
            .ok_or_else(|| self.bad_structure(offset))?;
        Ok(Node {
            fdt: self,
            offset,
            body: body * 4,
            name,
            parent_cells,
        })
    }
}
