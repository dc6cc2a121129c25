// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The one error type of the virtio device wrappers: which device, what was asked, and why it
//! failed.

use crate::pci::TransportError;
use core::fmt;
use virtio_drivers::transport::pci::bus::DeviceFunction;
use virtio_drivers::transport::DeviceType;

/// A virtio request that failed: which device, what, and why. Its `Display` is one line, such as
/// "virtio-blk 00:01.0: read of 2048 bytes at sector 8: no answer in time".
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct DeviceError {
    /// The device's PCI address.
    pub device: DeviceFunction,
    /// What was asked of it.
    pub request: Request,
    /// Why it failed.
    pub kind: DeviceErrorKind,
}

/// What was asked of a virtio device.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Request {
    /// Setting up a device of this type: its transport, its features and its queues.
    Setup(DeviceType),
    /// Reading `len` bytes from a disk, from `sector` on.
    Read {
        /// The first sector.
        sector: u64,
        /// Bytes asked for.
        len: usize,
    },
    /// Writing `len` bytes to a disk, from `sector` on.
    Write {
        /// The first sector.
        sector: u64,
        /// Bytes given.
        len: usize,
    },
    /// Sending bytes to a console.
    ConsoleWrite,
    /// Receiving bytes from a console.
    ConsoleRead,
    /// Asking an entropy source for bytes.
    Entropy,
}

/// Why a virtio request failed.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum DeviceErrorKind {
    /// The device did not answer in time; it takes no more requests (a console still reads).
    TimedOut,
    /// An earlier request timed out.
    Broken,
    /// The disk is read-only (`VIRTIO_BLK_F_RO`); nothing was sent.
    ReadOnly,
    /// The buffer is empty or not a whole number of sectors.
    BadLength,
    /// The request is larger than the disk's largest (`blk::Disk::max_request`).
    TooLarge,
    /// The sectors lie (partly) past the end of the disk.
    OutOfRange,
    /// The DMA pool has no room for the request's bounce buffers now; nothing was sent.
    NoDmaMemory,
    /// The line does not fit the caller's buffer.
    LineTooLong,
    /// The entropy source answered with no bytes, this many times in a row.
    Empty(usize),
    /// No transport could be made for the device.
    Transport(TransportError),
    /// The driver or the device reported an error.
    Device(virtio_drivers::Error),
}

/// How messages name a device of type `device_type`.
fn device_name(device_type: DeviceType) -> &'static str {
    match device_type {
        DeviceType::Block => "virtio-blk",
        DeviceType::Console => "virtio console",
        DeviceType::EntropySource => "virtio-rng",
        _ => "virtio device",
    }
}

impl Request {
    /// The type of device the request is for.
    pub fn device_type(self) -> DeviceType {
        match self {
            Self::Setup(device_type) => device_type,
            Self::Read { .. } | Self::Write { .. } => DeviceType::Block,
            Self::ConsoleWrite | Self::ConsoleRead => DeviceType::Console,
            Self::Entropy => DeviceType::EntropySource,
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Setup(_) => write!(f, "setup"),
            Self::Read { sector, len } => write!(f, "read of {len} bytes at sector {sector}"),
            Self::Write { sector, len } => write!(f, "write of {len} bytes at sector {sector}"),
            Self::ConsoleWrite => write!(f, "write"),
            Self::ConsoleRead => write!(f, "read"),
            Self::Entropy => write!(f, "entropy request"),
        }
    }
}

impl fmt::Display for DeviceErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::TimedOut => write!(f, "no answer in time"),
            Self::Broken => write!(f, "an earlier request timed out"),
            Self::ReadOnly => write!(f, "the disk is read-only"),
            Self::BadLength => write!(f, "not a whole number of sectors"),
            Self::TooLarge => write!(f, "larger than the largest request"),
            Self::OutOfRange => write!(f, "past the end of the disk"),
            Self::NoDmaMemory => write!(f, "no room in the DMA pool"),
            Self::LineTooLong => write!(f, "the line is longer than the buffer"),
            Self::Empty(answers) => write!(f, "{answers} empty answers in a row"),
            Self::Transport(error) => write!(f, "{error}"),
            Self::Device(error) => write!(f, "{error}"),
        }
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let name = device_name(self.request.device_type());
        write!(f, "{name} {}: {}: {}", self.device, self.request, self.kind)
    }
}

#[cfg(has_core_error)]
impl core::error::Error for DeviceError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const FUNCTION: DeviceFunction = DeviceFunction {
        bus: 0,
        device: 1,
        function: 0,
    };

    fn error(request: Request, kind: DeviceErrorKind) -> String {
        DeviceError {
            device: FUNCTION,
            request,
            kind,
        }
        .to_string()
    }

    #[test]
    fn messages_name_the_device_the_request_and_the_reason() {
        let read = Request::Read {
            sector: 8,
            len: 2048,
        };
        assert_eq!(
            error(read, DeviceErrorKind::TimedOut),
            "virtio-blk 00:01.0: read of 2048 bytes at sector 8: no answer in time"
        );
        let write = Request::Write {
            sector: 0,
            len: 512,
        };
        assert_eq!(
            error(write, DeviceErrorKind::ReadOnly),
            "virtio-blk 00:01.0: write of 512 bytes at sector 0: the disk is read-only"
        );
        assert_eq!(
            error(Request::ConsoleRead, DeviceErrorKind::LineTooLong),
            "virtio console 00:01.0: read: the line is longer than the buffer"
        );
        assert_eq!(
            error(Request::Entropy, DeviceErrorKind::Empty(16)),
            "virtio-rng 00:01.0: entropy request: 16 empty answers in a row"
        );
        assert_eq!(
            error(
                Request::Setup(DeviceType::Console),
                DeviceErrorKind::Device(virtio_drivers::Error::DmaError)
            ),
            "virtio console 00:01.0: setup: Failed to allocate DMA memory"
        );
    }

    #[test]
    fn every_request_belongs_to_one_device_type() {
        assert_eq!(Request::Entropy.device_type(), DeviceType::EntropySource);
        assert_eq!(Request::ConsoleWrite.device_type(), DeviceType::Console);
        assert_eq!(
            Request::Write { sector: 0, len: 0 }.device_type(),
            DeviceType::Block
        );
        assert_eq!(
            Request::Setup(DeviceType::Network).device_type(),
            DeviceType::Network
        );
    }
}
