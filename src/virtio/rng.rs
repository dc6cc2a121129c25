// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! virtio-rng: entropy from the host, with a bounded wait.

use super::VirtioHal;
use core::fmt;
use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::transport::pci::bus::DeviceFunction;
use virtio_drivers::transport::pci::PciTransport;

/// Why no entropy came from the device.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct RngError {
    /// The device's PCI address.
    pub device: DeviceFunction,
    /// What the driver reported.
    pub error: virtio_drivers::Error,
}

impl fmt::Display for RngError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "virtio-rng {}: {}", self.device, self.error)
    }
}

/// A virtio-rng device on PCI.
pub struct Rng {
    device: VirtIORng<VirtioHal, PciTransport>,
    function: DeviceFunction,
}

/// Bytes asked of the device per request (a bounce buffer of this size comes from the pool).
const CHUNK: usize = 64;

impl Rng {
    /// Drives the entropy device at `function` through `transport`.
    pub fn new(
        transport: PciTransport,
        function: DeviceFunction,
    ) -> Result<Self, virtio_drivers::Error> {
        Ok(Self {
            device: VirtIORng::new(transport)?,
            function,
        })
    }

    /// Fills `bytes` with entropy from the host.
    ///
    /// `virtio-drivers` waits for each answer without a bound; QEMU's and crosvm's devices
    /// answer every request from the host's own generator.
    pub fn fill(&mut self, bytes: &mut [u8]) -> Result<(), RngError> {
        let mut filled = 0;
        while filled < bytes.len() {
            let end = bytes.len().min(filled + CHUNK);
            let got = self
                .device
                .request_entropy(&mut bytes[filled..end])
                .map_err(|error| RngError {
                    device: self.function,
                    error,
                })?;
            filled += got.min(end - filled);
        }
        Ok(())
    }
}
