// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! virtio-blk: sectors read and written with a bounded wait, errors that name the device and
//! the request.

use super::{find_transports, poll_until, VirtioHal, VirtioTransport, DEFAULT_TIMEOUT_MS};
use super::{DeviceError, DeviceErrorKind, Request};
use crate::pci::PciBus;
use alloc::vec::Vec;
use core::mem::size_of;
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::pci::bus::DeviceFunction;
use virtio_drivers::transport::DeviceType;

/// Bytes per sector.
pub const SECTOR: usize = SECTOR_SIZE;

/// The bounce buffers `share` allocates for a request of `len` bytes, in its order: the
/// header, the data, the status byte (virtio-drivers queues reads and writes alike this way).
fn request_bounces(len: usize) -> [usize; 3] {
    [size_of::<BlkReq>(), len, size_of::<BlkResp>()]
}

/// A virtio-blk disk on PCI.
pub struct Disk {
    device: VirtIOBlk<VirtioHal, VirtioTransport>,
    function: DeviceFunction,
    max_request: usize,
    timeout_ms: u64,
    broken: bool,
}

impl Disk {
    /// Drives the disk at `function` through `transport`; requests carry at most `max_request`
    /// bytes (rounded down to sectors, at least one): a bounce buffer of that size must fit in
    /// the DMA pool.
    pub fn new(
        transport: VirtioTransport,
        function: DeviceFunction,
        max_request: usize,
    ) -> Result<Self, DeviceError> {
        let device = VirtIOBlk::new(transport).map_err(|error| DeviceError {
            device: function,
            request: Request::Setup(DeviceType::Block),
            kind: DeviceErrorKind::Device(error),
        })?;
        let mut disk = Self {
            device,
            function,
            max_request: 0,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            broken: false,
        };
        disk.set_max_request(max_request);
        Ok(disk)
    }

    /// Every virtio-blk disk on `pci`, in bus order (the order of crosvm's and `vm`'s disks),
    /// each as [`Disk::new`] makes it with `max_request`.
    pub fn find_all(pci: &mut PciBus, max_request: usize) -> Result<Vec<Self>, DeviceError> {
        find_transports(pci, DeviceType::Block)?
            .into_iter()
            .map(|(function, transport)| Self::new(transport, function, max_request))
            .collect()
    }

    /// Sets the largest request in bytes (rounded down to sectors, at least one); a bounce
    /// buffer of that size must fit in the DMA pool.
    pub fn set_max_request(&mut self, max_request: usize) {
        self.max_request = (max_request / SECTOR).max(1) * SECTOR;
    }

    /// Sets how long one request may take (the default is [`DEFAULT_TIMEOUT_MS`]).
    pub fn set_timeout_ms(&mut self, timeout_ms: u64) {
        self.timeout_ms = timeout_ms;
    }

    /// The disk's PCI address.
    pub fn function(&self) -> DeviceFunction {
        self.function
    }

    /// Its size in sectors.
    pub fn sectors(&self) -> u64 {
        self.device.capacity()
    }

    /// Whether the device refuses writes.
    pub fn read_only(&self) -> bool {
        self.device.readonly()
    }

    /// The largest request in bytes.
    pub fn max_request(&self) -> usize {
        self.max_request
    }

    fn check(&self, request: Request, sector: u64, len: usize) -> Result<(), DeviceError> {
        let error = |kind| self.error(request, kind);
        if self.broken {
            return Err(error(DeviceErrorKind::Broken));
        }
        if len == 0 || len & (SECTOR - 1) != 0 {
            return Err(error(DeviceErrorKind::BadLength));
        }
        if len > self.max_request {
            return Err(error(DeviceErrorKind::TooLarge));
        }
        let end = sector.checked_add((len / SECTOR) as u64);
        if !matches!(end, Some(end) if end <= self.sectors()) {
            return Err(error(DeviceErrorKind::OutOfRange));
        }
        if matches!(request, Request::Write { .. }) && self.read_only() {
            return Err(error(DeviceErrorKind::ReadOnly));
        }
        if !super::pool::has_room_for_bounces(&request_bounces(len)) {
            return Err(error(DeviceErrorKind::NoDmaMemory));
        }
        Ok(())
    }

    /// Reads `buffer.len()` bytes (whole sectors, at most [`Disk::max_request`]) from `sector`.
    pub fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), DeviceError> {
        let len = buffer.len();
        let asked = Request::Read { sector, len };
        self.check(asked, sector, len)?;
        let mut request = BlkReq::default();
        let mut response = BlkResp::default();
        // SAFETY: VirtioHal copies request, buffer and response into the DMA pool when they are
        // queued and back when they are popped: the device never touches them, so they may be
        // used (or dropped) whatever the device does.
        let token = unsafe {
            self.device
                .read_blocks_nb(sector as usize, &mut request, buffer, &mut response)
        };
        let token = token.map_err(|e| self.device_error(asked, e))?;
        self.wait(asked)?;
        // SAFETY: The same buffers as read_blocks_nb got, for the token it returned.
        let result = unsafe {
            self.device
                .complete_read_blocks(token, &request, buffer, &mut response)
        };
        result.map_err(|e| self.device_error(asked, e))
    }

    /// Writes `buffer` (whole sectors, at most [`Disk::max_request`]) at `sector`.
    pub fn write(&mut self, sector: u64, buffer: &[u8]) -> Result<(), DeviceError> {
        let len = buffer.len();
        let asked = Request::Write { sector, len };
        self.check(asked, sector, len)?;
        let mut request = BlkReq::default();
        let mut response = BlkResp::default();
        // SAFETY: As in read: the device only sees bounce copies in the DMA pool.
        let token = unsafe {
            self.device
                .write_blocks_nb(sector as usize, &mut request, buffer, &mut response)
        };
        let token = token.map_err(|e| self.device_error(asked, e))?;
        self.wait(asked)?;
        // SAFETY: The same buffers as write_blocks_nb got, for the token it returned.
        let result = unsafe {
            self.device
                .complete_write_blocks(token, &request, buffer, &mut response)
        };
        result.map_err(|e| self.device_error(asked, e))
    }

    fn wait(&mut self, request: Request) -> Result<(), DeviceError> {
        let device = &mut self.device;
        if poll_until(self.timeout_ms, || device.peek_used().is_some()) {
            return Ok(());
        }
        // The request stays queued; its bounce buffers stay allocated in the pool (the device
        // may still write them), and the disk takes no more requests.
        self.broken = true;
        Err(self.error(request, DeviceErrorKind::TimedOut))
    }

    fn error(&self, request: Request, kind: DeviceErrorKind) -> DeviceError {
        DeviceError {
            device: self.function,
            request,
            kind,
        }
    }

    fn device_error(&self, request: Request, error: virtio_drivers::Error) -> DeviceError {
        self.error(request, DeviceErrorKind::Device(error))
    }
}
