// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Finding virtio devices of a type on the PCI bus, with a transport for each.

use super::{DeviceError, DeviceErrorKind, Request, VirtioTransport};
use crate::pci::PciBus;
use alloc::vec::Vec;
use virtio_drivers::transport::pci::bus::DeviceFunction;
use virtio_drivers::transport::DeviceType;

/// A transport for the first virtio device of type `device_type` on `pci`, with its PCI
/// address; `None` if there is none. [`Console::find`] and [`Rng::find`] build their devices
/// on it, as [`Disk::find_all`] does on [`find_transports`].
///
/// [`Console::find`]: crate::virtio::console::Console::find
/// [`Rng::find`]: crate::virtio::rng::Rng::find
/// [`Disk::find_all`]: crate::virtio::blk::Disk::find_all
pub fn find_transport(
    pci: &mut PciBus,
    device_type: DeviceType,
) -> Result<Option<(DeviceFunction, VirtioTransport)>, DeviceError> {
    let first = pci.virtio_devices(device_type).next();
    first
        .map(|device| device.function)
        .map(|function| transport(pci, device_type, function))
        .transpose()
}

/// Transports for every virtio device of type `device_type` on `pci`, in bus order, with their
/// PCI addresses.
pub fn find_transports(
    pci: &mut PciBus,
    device_type: DeviceType,
) -> Result<Vec<(DeviceFunction, VirtioTransport)>, DeviceError> {
    let functions: Vec<DeviceFunction> = pci
        .virtio_devices(device_type)
        .map(|device| device.function)
        .collect();
    functions
        .into_iter()
        .map(|function| transport(pci, device_type, function))
        .collect()
}

fn transport(
    pci: &mut PciBus,
    device_type: DeviceType,
    function: DeviceFunction,
) -> Result<(DeviceFunction, VirtioTransport), DeviceError> {
    let transport = pci.transport(function).map_err(|error| DeviceError {
        device: function,
        request: Request::Setup(device_type),
        kind: DeviceErrorKind::Transport(error),
    })?;
    Ok((function, transport))
}
