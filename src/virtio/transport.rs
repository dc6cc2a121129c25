// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A virtio transport whose every wait on the device is bounded, around `virtio-drivers`' own.
//!
//! `virtio-drivers` 0.13 waits on the device without a bound in two places a driver cannot
//! avoid: `PciTransport`'s `Drop` resets the device and spins until its status reads 0, and
//! `Transport::read_consistent` retries until the configuration generation reads the same twice.
//! A device that never complies (or a hostile host) hangs the guest there: when `Disk::new`,
//! `Rng::new` or `Console::new` fail (the transport is dropped), when a disk is dropped after a
//! timeout, or while a driver reads the device's configuration. [`VirtioTransport`] delegates
//! everything else and bounds those two.

use super::DEFAULT_TIMEOUT_MS;
use core::fmt::Debug;
use core::mem::ManuallyDrop;
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Reads of the configuration space `read_consistent` tries before it gives up on a device whose
/// configuration generation changes under every read.
pub const CONFIG_READ_ATTEMPTS: usize = 64;

/// A virtio transport (by default `virtio-drivers`' `PciTransport`, which
/// `pci::PciBus::transport` returns) with bounded waits: dropped,
/// it resets the device and waits at most [`DEFAULT_TIMEOUT_MS`] for the reset to show, and
/// `read_consistent` gives up after [`CONFIG_READ_ATTEMPTS`] with `Error::IoError`. The wrapped
/// transport's own `Drop` never runs (it owns no memory: only device pointers).
#[derive(Debug)]
pub struct VirtioTransport<T: Transport = PciTransport> {
    inner: ManuallyDrop<T>,
}

impl<T: Transport> VirtioTransport<T> {
    /// Wraps `transport`; from now on only this value's `Drop` resets the device.
    pub fn new(transport: T) -> Self {
        Self {
            inner: ManuallyDrop::new(transport),
        }
    }
}

impl<T: Transport> Drop for VirtioTransport<T> {
    fn drop(&mut self) {
        self.inner.set_status(DeviceStatus::empty());
        let inner = &self.inner;
        if !super::poll_until(DEFAULT_TIMEOUT_MS, || inner.get_status().is_empty()) {
            log::warn!(
                "virtio: a {:?} device did not reset in {DEFAULT_TIMEOUT_MS} ms; left as it is",
                inner.device_type()
            );
        }
    }
}

impl<T: Transport> Transport for VirtioTransport<T> {
    fn device_type(&self) -> DeviceType {
        self.inner.device_type()
    }

    fn read_device_features(&mut self) -> u64 {
        self.inner.read_device_features()
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.inner.write_driver_features(driver_features)
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.inner.max_queue_size(queue)
    }

    fn notify(&mut self, queue: u16) {
        self.inner.notify(queue)
    }

    fn get_status(&self) -> DeviceStatus {
        self.inner.get_status()
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.inner.set_status(status)
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.inner.set_guest_page_size(guest_page_size)
    }

    fn requires_legacy_layout(&self) -> bool {
        self.inner.requires_legacy_layout()
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.inner
            .queue_set(queue, size, descriptors, driver_area, device_area)
    }

    fn queue_unset(&mut self, queue: u16) {
        self.inner.queue_unset(queue)
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.inner.queue_used(queue)
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.inner.ack_interrupt()
    }

    fn read_config_generation(&self) -> u32 {
        self.inner.read_config_generation()
    }

    fn read_config_space<V: FromBytes + IntoBytes>(&self, offset: usize) -> Result<V> {
        self.inner.read_config_space(offset)
    }

    fn write_config_space<V: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: V,
    ) -> Result<()> {
        self.inner.write_config_space(offset, value)
    }

    fn read_consistent<V>(&self, read: impl Fn() -> Result<V>) -> Result<V> {
        for _ in 0..CONFIG_READ_ATTEMPTS {
            let before = self.read_config_generation();
            let result = read();
            if self.read_config_generation() == before {
                return result;
            }
        }
        Err(Error::IoError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use std::rc::Rc;

    /// A device that never resets and whose configuration generation changes on every read: the
    /// two misbehaviours `virtio-drivers` would wait on forever. It counts what it was asked.
    #[derive(Debug, Default)]
    struct StubbornDevice {
        resets: Rc<Cell<usize>>,
        generation: Cell<u32>,
    }

    impl Transport for StubbornDevice {
        fn device_type(&self) -> DeviceType {
            DeviceType::Block
        }
        fn read_device_features(&mut self) -> u64 {
            0
        }
        fn write_driver_features(&mut self, _: u64) {}
        fn max_queue_size(&mut self, _: u16) -> u32 {
            4
        }
        fn notify(&mut self, _: u16) {}
        fn get_status(&self) -> DeviceStatus {
            DeviceStatus::DRIVER_OK
        }
        fn set_status(&mut self, status: DeviceStatus) {
            if status.is_empty() {
                self.resets.set(self.resets.get() + 1);
            }
        }
        fn set_guest_page_size(&mut self, _: u32) {}
        fn requires_legacy_layout(&self) -> bool {
            false
        }
        fn queue_set(&mut self, _: u16, _: u32, _: PhysAddr, _: PhysAddr, _: PhysAddr) {}
        fn queue_unset(&mut self, _: u16) {}
        fn queue_used(&mut self, _: u16) -> bool {
            false
        }
        fn ack_interrupt(&mut self) -> InterruptStatus {
            InterruptStatus::empty()
        }
        fn read_config_generation(&self) -> u32 {
            self.generation.set(self.generation.get() + 1);
            self.generation.get()
        }
        fn read_config_space<V: FromBytes + IntoBytes>(&self, _: usize) -> Result<V> {
            V::read_from_bytes(&[0; 64][..size_of::<V>()]).map_err(|_| Error::ConfigSpaceTooSmall)
        }
        fn write_config_space<V: IntoBytes + Immutable>(&mut self, _: usize, _: V) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn dropping_resets_a_device_that_never_complies_and_returns() {
        let device = StubbornDevice::default();
        let resets = device.resets.clone();
        drop(VirtioTransport::new(device));
        assert_eq!(resets.get(), 1);
    }

    #[test]
    fn a_configuration_that_never_settles_is_an_error() {
        let transport = VirtioTransport::new(StubbornDevice::default());
        let reads = Cell::new(0);
        let result = transport.read_consistent(|| {
            reads.set(reads.get() + 1);
            transport.read_config_space::<u64>(0)
        });
        assert_eq!(result, Err(Error::IoError));
        assert_eq!(reads.get(), CONFIG_READ_ATTEMPTS);
        assert_eq!(
            transport.inner.generation.get(),
            2 * CONFIG_READ_ATTEMPTS as u32
        );
    }
}
