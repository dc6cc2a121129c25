// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A virtio transport whose wait for a device reset is bounded, around `virtio-drivers`' own.
//!
//! `virtio-drivers` 0.7's `PciTransport` resets the device when dropped and spins until its
//! status reads 0, without a bound. A device that never complies (or a hostile host) would hang
//! the guest there: when `Disk::new`, `Rng::new` or `Console::new` fail (the transport is
//! dropped), or when a disk is dropped after a timeout. [`VirtioTransport`] delegates everything
//! else and bounds that wait.

use super::DEFAULT_TIMEOUT_MS;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::{DeviceStatus, DeviceType, Transport};
use virtio_drivers::{PhysAddr, Result, PAGE_SIZE};

/// `VIRTIO_F_VERSION_1`: the device follows virtio 1.0 or later, not the legacy interface.
const VERSION_1: u64 = 1 << 32;

/// A virtio transport (by default `virtio-drivers`' `PciTransport`, which
/// `pci::PciBus::transport` returns) with a bounded reset: dropped, it resets the device and
/// waits at most [`DEFAULT_TIMEOUT_MS`] for the reset to show. The wrapped transport's own `Drop`
/// never runs (it owns no memory: only device pointers).
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

    /// Begins the device's initialisation (virtio 1.2, 3.1.1) for a driver that asks for no
    /// feature but `VIRTIO_F_VERSION_1`: resets the device, acknowledges it, and accepts that
    /// feature if the device offers it. The driver then sets up its queues and calls
    /// `finish_init`. (`Transport::begin_init` wants the features as a `bitflags` type, and
    /// `virtio-drivers` 0.7 keeps its own to itself.)
    pub fn begin_init_version_1(&mut self) {
        self.set_status(DeviceStatus::empty());
        self.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
        let features = self.read_device_features() & VERSION_1;
        self.write_driver_features(features);
        self.set_status(
            DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK,
        );
        self.set_guest_page_size(PAGE_SIZE as u32);
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

    fn ack_interrupt(&mut self) -> bool {
        self.inner.ack_interrupt()
    }

    fn config_space<V: 'static>(&self) -> Result<NonNull<V>> {
        self.inner.config_space()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use core::cell::RefCell;
    use std::rc::Rc;
    use std::vec::Vec;
    use virtio_drivers::Error;

    /// A device that never resets, and records what the driver did to it: the statuses it was
    /// given, the features it was told, and where each queue was put.
    #[derive(Debug, Default)]
    pub struct StubbornDevice {
        pub statuses: Rc<RefCell<Vec<DeviceStatus>>>,
        pub device_features: u64,
        pub driver_features: Option<u64>,
        pub queues: Vec<(u16, u32, PhysAddr, PhysAddr, PhysAddr)>,
        pub notified: Vec<u16>,
    }

    impl Transport for StubbornDevice {
        fn device_type(&self) -> DeviceType {
            DeviceType::Block
        }
        fn read_device_features(&mut self) -> u64 {
            self.device_features
        }
        fn write_driver_features(&mut self, features: u64) {
            self.driver_features = Some(features);
        }
        fn max_queue_size(&mut self, _: u16) -> u32 {
            4
        }
        fn notify(&mut self, queue: u16) {
            self.notified.push(queue);
        }
        fn get_status(&self) -> DeviceStatus {
            DeviceStatus::DRIVER_OK
        }
        fn set_status(&mut self, status: DeviceStatus) {
            self.statuses.borrow_mut().push(status);
        }
        fn set_guest_page_size(&mut self, _: u32) {}
        fn requires_legacy_layout(&self) -> bool {
            false
        }
        fn queue_set(&mut self, queue: u16, size: u32, desc: PhysAddr, a: PhysAddr, u: PhysAddr) {
            self.queues.push((queue, size, desc, a, u));
        }
        fn queue_unset(&mut self, _: u16) {}
        fn queue_used(&mut self, _: u16) -> bool {
            false
        }
        fn ack_interrupt(&mut self) -> bool {
            false
        }
        fn config_space<V: 'static>(&self) -> Result<NonNull<V>> {
            Err(Error::ConfigSpaceMissing)
        }
    }

    #[test]
    fn dropping_resets_a_device_that_never_complies_and_returns() {
        let device = StubbornDevice::default();
        let statuses = device.statuses.clone();
        drop(VirtioTransport::new(device));
        assert_eq!(statuses.take(), [DeviceStatus::empty()]);
    }

    #[test]
    fn version_1_is_the_only_feature_accepted() {
        for (offered, accepted) in [
            (u64::MAX, VERSION_1),
            (!VERSION_1, 0),
            (VERSION_1, VERSION_1),
        ] {
            let mut transport = VirtioTransport::new(StubbornDevice {
                device_features: offered,
                ..Default::default()
            });
            transport.begin_init_version_1();
            assert_eq!(transport.inner.driver_features, Some(accepted));
            let statuses = transport.inner.statuses.take();
            assert_eq!(
                statuses.last(),
                Some(
                    &(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK)
                )
            );
            assert_eq!(statuses.first(), Some(&DeviceStatus::empty()));
        }
    }
}
