// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The node that `/chosen/stdout-path` names, found the way boot code can afford: it runs before
//! `main` on every boot, so it is one walk over the root's children, and the few names it reads
//! are compared word by word.

use super::node::Node;
use super::{
    c_string, components, node_name_matches, read_cells, split_stdout_path, Cells, Fdt, FdtError,
    MAX_VALUE_CELLS,
};
use core::fmt;
use core::mem::MaybeUninit;

/// How many children of the root [`Fdt::stdout`] remembers on its way to `/chosen`. QEMU's own
/// tree puts the console node before `/chosen`, its last child; past this many, finding it
/// takes a second walk. crosvm (and `vm`) write `/chosen` first: the walk stops there, and the
/// console node is found by a second walk from it.
pub(crate) const REMEMBERED_NODES: usize = 64;

/// The console device `/chosen/stdout-path` names ([`Fdt::stdout`]).
#[derive(Clone, Copy, Debug)]
pub struct StdoutDevice<'a> {
    /// Its node.
    pub node: Node<'a>,
    /// The first address of its `reg`: where its registers start, in CPU addresses.
    pub address: u64,
}

/// Why [`Fdt::stdout`] found no console device.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum StdoutError {
    /// The tree could not be read.
    Fdt(FdtError),
    /// `/chosen` has no `stdout-path` property.
    NoStdoutPath,
    /// `stdout-path` names an alias that `/aliases` does not define.
    UnknownAlias,
    /// No node has the path that `stdout-path` names.
    NodeNotFound,
    /// The node has no usable `reg` property.
    NoReg,
    /// The node sits under a bus that translates addresses (non-empty `ranges`).
    TranslatedAddress,
}

impl fmt::Display for StdoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fdt(e) => write!(f, "{e}"),
            Self::NoStdoutPath => write!(f, "no /chosen/stdout-path"),
            Self::UnknownAlias => write!(f, "stdout-path names an unknown alias"),
            Self::NodeNotFound => write!(f, "stdout-path names a node that does not exist"),
            Self::NoReg => write!(f, "console node has no usable reg"),
            Self::TranslatedAddress => write!(f, "console node is behind an address translation"),
        }
    }
}

#[cfg(has_core_error)]
impl core::error::Error for StdoutError {}

impl From<FdtError> for StdoutError {
    fn from(e: FdtError) -> Self {
        Self::Fdt(e)
    }
}

impl Fdt<'_> {
    /// The device `/chosen/stdout-path` names (through `/aliases` if needed), and where its
    /// registers are. A node under a bus that translates addresses is refused: its `reg` is not
    /// a CPU address.
    pub fn stdout(&self) -> Result<StdoutDevice<'_>, StdoutError> {
        let (node, translated) = self.stdout_node()?;
        if translated {
            return Err(StdoutError::TranslatedAddress);
        }
        let address = first_address(&node)?;
        Ok(StdoutDevice { node, address })
    }

    /// The node `/chosen/stdout-path` names, and whether a bus between it and the root
    /// translates addresses. One walk over the root's children finds `/chosen` and, remembering
    /// where each child was, the console node before it.
    fn stdout_node(&self) -> Result<(Node<'_>, bool), StdoutError> {
        let root = self.root()?;
        let (root_cells, first_child) = root.cells_and_children()?;
        // Offset and name length of each root child before /chosen, as far as they fit: slots
        // are written in order and only the written ones read, so none is initialised before
        // (a cost per slot).
        let mut remembered = [MaybeUninit::<(usize, usize)>::uninit(); REMEMBERED_NODES];
        let mut count = 0;
        let mut aliases = None;
        let mut chosen = None;
        let mut error = None;
        let after_chosen =
            root.scan_child_offsets(first_child, |offset, name_len, first_bytes| {
                if let Some(slot) = remembered.get_mut(count) {
                    slot.write((offset, name_len));
                }
                count += 1;
                // The first byte rules out most names in one test ('a' and 'c' differ in one
                // bit), the first four nearly all the rest; the few left are read whole.
                if first_bytes[0] | (b'a' ^ b'c') != b'c'
                    || (first_bytes != *b"chos" && first_bytes != *b"alia")
                {
                    return false;
                }
                let child = match self.node_at(offset, root_cells) {
                    Ok(child) => child,
                    Err(e) => {
                        error = Some(e);
                        return true;
                    }
                };
                if node_name_matches(child.name(), b"chosen") {
                    chosen = Some(child);
                    return true;
                }
                if aliases.is_none() && node_name_matches(child.name(), b"aliases") {
                    aliases = Some(child);
                }
                false
            })?;
        if let Some(error) = error {
            return Err(error.into());
        }
        let stdout_path = match chosen {
            Some(chosen) => chosen.property(b"stdout-path")?,
            None => None,
        };
        let overflowed = count > REMEMBERED_NODES;
        let (mut path, _options) = split_stdout_path(stdout_path.ok_or(StdoutError::NoStdoutPath)?);
        if path.first() != Some(&b'/') {
            if aliases.is_none() {
                aliases = self.find_after(&root, root_cells, after_chosen, b"aliases")?;
            }
            let alias = aliases
                .ok_or(StdoutError::UnknownAlias)?
                .property(path)?
                .ok_or(StdoutError::UnknownAlias)?;
            path = c_string(alias);
            if path.first() != Some(&b'/') {
                return Err(StdoutError::UnknownAlias);
            }
        }
        let mut components = components(path);
        let Some(first) = components.next() else {
            return Ok((root, false));
        };
        let node = if overflowed {
            root.child(first)?
        } else {
            let written = remembered[..count.min(REMEMBERED_NODES)]
                .iter()
                .map(|slot| {
                    // SAFETY: The walk wrote the first `count` slots (as many as there are).
                    unsafe { slot.assume_init() }
                });
            // A name with its unit address names one node (a full path is unique), so it is
            // sought from the end, near which VMMs write their devices, among names of its
            // length; a name without one matches the first node so named.
            let found = if first.contains(&b'@') {
                self.find_named(root_cells, written.rev(), first, |len| len == first.len())?
            } else {
                self.find_named(root_cells, written, first, |len| len >= first.len())?
            };
            match found {
                Some(node) => Some(node),
                None => self.find_after(&root, root_cells, after_chosen, first)?,
            }
        };
        let mut node = node.ok_or(StdoutError::NodeNotFound)?;
        let mut translated = false;
        for component in components {
            translated |= node
                .property(b"ranges")?
                .map_or(true, |ranges| !ranges.is_empty());
            node = node.child(component)?.ok_or(StdoutError::NodeNotFound)?;
        }
        Ok((node, translated))
    }

    /// The first of the root children at `(offset, name length)` in `children` that path
    /// component `component` names, reading only those whose name length `length_fits`.
    fn find_named(
        &self,
        root_cells: Cells,
        children: impl Iterator<Item = (usize, usize)>,
        component: &[u8],
        length_fits: impl Fn(usize) -> bool,
    ) -> Result<Option<Node<'_>>, FdtError> {
        for (offset, name_len) in children {
            if length_fits(name_len) {
                let node = self.node_at(offset, root_cells)?;
                if node_name_matches(node.name(), component) {
                    return Ok(Some(node));
                }
            }
        }
        Ok(None)
    }

    /// The first child of `root` (whose cells are `root_cells`) from offset `from` on (none if
    /// `None`) that path component `component` names. Like the first walk, it makes a [`Node`]
    /// only of the children whose name has a length that can match.
    fn find_after<'n>(
        &'n self,
        root: &Node<'n>,
        root_cells: Cells,
        from: Option<usize>,
        component: &[u8],
    ) -> Result<Option<Node<'n>>, FdtError> {
        let Some(from) = from else {
            return Ok(None);
        };
        let with_unit_address = component.contains(&b'@');
        let mut found = Ok(None);
        let first_bytes = component.first_chunk::<4>();
        root.scan_child_offsets(from, |offset, name_len, first| {
            // A name with its unit address has the component's length; one without may be
            // longer. Either way a matching name starts with the component.
            if name_len != component.len() && (with_unit_address || name_len < component.len())
                || first_bytes.is_some_and(|bytes| *bytes != first)
            {
                return false;
            }
            found = self
                .node_at(offset, root_cells)
                .map(|child| node_name_matches(child.name(), component).then_some(child));
            !matches!(found, Ok(None))
        })?;
        found
    }
}

/// The first address in `reg` of `node`, in its parent's cells. Only the address must be there:
/// the size is the driver's business.
fn first_address(node: &Node) -> Result<u64, StdoutError> {
    let mut reg = node.property(b"reg")?.ok_or(StdoutError::NoReg)?;
    let cells = node.parent_cells().address;
    if !(1..=MAX_VALUE_CELLS).contains(&cells) {
        return Err(StdoutError::NoReg);
    }
    read_cells(&mut reg, cells).ok_or(StdoutError::NoReg)
}
