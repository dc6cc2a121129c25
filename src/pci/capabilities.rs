// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A function's capability list, walked with a bound before `virtio-drivers` walks it without.

use core::fmt;
use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::VirtioPciError;

/// Capabilities a function's configuration space can hold: 64 words, one capability at least
/// each. A walk that yields more has been round a loop.
const MAX_CAPABILITIES: usize = 64;

/// Why `pci::PciBus::transport` made no transport for a function.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum TransportError {
    /// The function's capability list comes back to the capability at this offset: walking it,
    /// as `virtio-drivers` does when it makes a transport, would never end.
    CapabilityLoop {
        /// The function.
        function: DeviceFunction,
        /// Where the list loops back to.
        offset: u8,
    },
    /// `virtio-drivers` refused the function.
    Virtio(VirtioPciError),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::CapabilityLoop { function, offset } => write!(
                f,
                "PCI function {function}: its capability list loops back to offset {offset:#04x}"
            ),
            Self::Virtio(error) => write!(f, "{error}"),
        }
    }
}

#[cfg(has_core_error)]
impl core::error::Error for TransportError {}

impl From<VirtioPciError> for TransportError {
    fn from(error: VirtioPciError) -> Self {
        Self::Virtio(error)
    }
}

/// Where the capability list of `function` loops back on itself, if it does. It takes
/// `virtio-drivers`' own walk (`PciRoot::capabilities`, which `PciTransport::new` runs to its
/// end and which has no guard against a loop), but at most 65 steps of it (64 capabilities
/// fit): so when this returns `None`, that walk ends.
pub fn capability_loop(root: &PciRoot, function: DeviceFunction) -> Option<u8> {
    let mut visited = [false; MAX_CAPABILITIES];
    root.capabilities(function)
        .take(MAX_CAPABILITIES + 1)
        .map(|capability| capability.offset)
        .find(|&offset| core::mem::replace(&mut visited[usize::from(offset / 4)], true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;
    use virtio_drivers::transport::pci::bus::Cam;

    /// The function under test.
    const FUNCTION: DeviceFunction = DeviceFunction {
        bus: 0,
        device: 1,
        function: 0,
    };

    /// Configuration space (PCI CAM, all of it) on the host's heap, in which one function's is
    /// crafted: a hostile device model, and the root that reads it.
    struct Crafted {
        root: PciRoot,
        /// What `root` points into; it must outlive `root`, and is not touched otherwise.
        _space: Vec<u32>,
    }

    impl Crafted {
        fn new(function_space: [u32; 64]) -> Self {
            let mut space = vec![0; Cam::MmioCam.size() as usize / 4];
            let start = usize::from(FUNCTION.device) << 3 << 8 >> 2;
            space[start..start + 64].copy_from_slice(&function_space);
            // SAFETY: space is all of a CAM's configuration space, word-aligned, lives as long
            // as the root (both are in this value, and the vector's memory does not move), and
            // is only reached through the root from now on.
            let root = unsafe { PciRoot::new(space.as_mut_ptr().cast(), Cam::MmioCam) };
            Self {
                root,
                _space: space,
            }
        }
    }

    /// A virtio-blk function with a capability list: `capabilities` pairs an offset with its
    /// next pointer, and the pointer at 0x34 is `first`.
    fn function(first: u8, capabilities: &[(u8, u8)]) -> Crafted {
        Crafted::new(config_space(first, capabilities))
    }

    /// The configuration space of [`function`].
    fn config_space(first: u8, capabilities: &[(u8, u8)]) -> [u32; 64] {
        let mut words = [0; 64];
        words[0] = 0x1042_1af4; // virtio-blk, from Red Hat's vendor ID
        words[1] = 1 << (16 + 4); // status: has a capability list
        words[0x34 / 4] = u32::from(first);
        for &(offset, next) in capabilities {
            // A vendor-specific capability (ID 9), 16 bytes long.
            words[usize::from(offset / 4)] = 0x10 << 16 | u32::from(next) << 8 | 0x09;
        }
        words
    }

    #[test]
    fn a_capability_list_that_loops_is_found() {
        let ring_of_all: Vec<_> = (0x40..=0xfc_u8)
            .step_by(4)
            .map(|offset| (offset, if offset == 0xfc { 0x40 } else { offset + 4 }))
            .collect();
        let hostile = [
            (0x40, vec![(0x40, 0x40)]),                             // points at itself
            (0x40, vec![(0x40, 0x50), (0x50, 0x40)]),               // two in a ring
            (0x40, vec![(0x40, 0x50), (0x50, 0x60), (0x60, 0x50)]), // a ring after a tail
            (0xfc, vec![(0xfc, 0xfc)]),                             // the last word
            (0x40, ring_of_all),                                    // all 48 in a ring
        ];
        assert!(!hostile.is_empty());
        for (first, capabilities) in &hostile {
            let root = &function(*first, capabilities).root;
            // virtio-drivers' own walk never ends on these.
            assert_eq!(root.capabilities(FUNCTION).take(1000).count(), 1000);
            let looped_to = capabilities.last().unwrap().1;
            assert_eq!(
                capability_loop(root, FUNCTION),
                Some(looped_to),
                "{capabilities:x?}"
            );
        }
    }

    #[test]
    fn lists_that_end_are_walked_to_their_end() {
        let fine = [
            function(0x40, &[(0x40, 0x50), (0x50, 0x00)]),
            // Next pointers virtio-drivers stops at: below 64, misaligned.
            function(0x40, &[(0x40, 0x3c)]),
            function(0x40, &[(0x40, 0x52)]),
            // The first pointer's low bits are ignored.
            function(0x43, &[(0x40, 0x00)]),
        ];
        for Crafted { root, .. } in &fine {
            assert_eq!(capability_loop(root, FUNCTION), None);
            // And virtio-drivers' walk does end there.
            assert!(root.capabilities(FUNCTION).count() <= 2);
        }
        // A loop the status register says is not there: not walked.
        let mut no_list = config_space(0x40, &[(0x40, 0x40)]);
        no_list[1] = 0;
        assert_eq!(capability_loop(&Crafted::new(no_list).root, FUNCTION), None);
        assert_eq!(
            TransportError::CapabilityLoop {
                function: FUNCTION,
                offset: 0x40
            }
            .to_string(),
            "PCI function 00:01.0: its capability list loops back to offset 0x40"
        );
    }
}
