// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! virtio-blk: sectors read and written with a bounded wait, errors that name the device and
//! the request.

use super::VirtioTransport;
use super::{poll_until, VirtioHal, DEFAULT_TIMEOUT_MS};
use core::fmt;
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::pci::bus::DeviceFunction;

/// Bytes per sector.
pub const SECTOR: usize = SECTOR_SIZE;

/// The bounce buffers `share` allocates for a request of `len` bytes, in its order: the
/// header, the data, the status byte (virtio-drivers queues reads and writes alike this way).
fn request_bounces(len: usize) -> [usize; 3] {
    [size_of::<BlkReq>(), len, size_of::<BlkResp>()]
}

/// What was asked of the disk.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Operation {
    /// Reading sectors.
    Read,
    /// Writing sectors.
    Write,
}

/// A request that failed: which disk, what, and why.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct BlockError {
    /// The disk's PCI address.
    pub device: DeviceFunction,
    /// What was asked.
    pub operation: Operation,
    /// The first sector.
    pub sector: u64,
    /// Bytes asked for.
    pub len: usize,
    /// Why it failed.
    pub kind: BlockErrorKind,
}

/// Why a block request failed.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum BlockErrorKind {
    /// The disk is read-only (`VIRTIO_BLK_F_RO`); nothing was sent.
    ReadOnly,
    /// The buffer is empty or not a whole number of sectors.
    BadLength,
    /// The request is larger than [`Disk::max_request`].
    TooLarge,
    /// The sectors lie (partly) past the end of the disk.
    OutOfRange,
    /// The device did not answer in time; the disk refuses every later request.
    TimedOut,
    /// An earlier request timed out.
    Broken,
    /// The DMA pool has no room for the request's bounce buffer now; nothing was sent.
    NoDmaMemory,
    /// The device or the driver reported an error.
    Device(virtio_drivers::Error),
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let operation = match self.operation {
            Operation::Read => "read",
            Operation::Write => "write",
        };
        write!(
            f,
            "virtio-blk {}: {operation} of {} bytes at sector {}: ",
            self.device, self.len, self.sector
        )?;
        match self.kind {
            BlockErrorKind::ReadOnly => write!(f, "the disk is read-only"),
            BlockErrorKind::BadLength => write!(f, "not a whole number of sectors"),
            BlockErrorKind::TooLarge => write!(f, "larger than the largest request"),
            BlockErrorKind::OutOfRange => write!(f, "past the end of the disk"),
            BlockErrorKind::TimedOut => write!(f, "no answer in time"),
            BlockErrorKind::Broken => write!(f, "an earlier request timed out"),
            BlockErrorKind::NoDmaMemory => write!(f, "no room in the DMA pool"),
            BlockErrorKind::Device(error) => write!(f, "{error}"),
        }
    }
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
    ) -> Result<Self, virtio_drivers::Error> {
        let mut disk = Self {
            device: VirtIOBlk::new(transport)?,
            function,
            max_request: 0,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            broken: false,
        };
        disk.set_max_request(max_request);
        Ok(disk)
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

    fn check(&self, operation: Operation, sector: u64, len: usize) -> Result<(), BlockError> {
        let error = |kind| self.error(operation, sector, len, kind);
        if self.broken {
            return Err(error(BlockErrorKind::Broken));
        }
        if len == 0 || !len.is_multiple_of(SECTOR) {
            return Err(error(BlockErrorKind::BadLength));
        }
        if len > self.max_request {
            return Err(error(BlockErrorKind::TooLarge));
        }
        let end = sector.checked_add((len / SECTOR) as u64);
        if end.is_none_or(|end| end > self.sectors()) {
            return Err(error(BlockErrorKind::OutOfRange));
        }
        if operation == Operation::Write && self.read_only() {
            return Err(error(BlockErrorKind::ReadOnly));
        }
        if !super::pool::has_room_for_bounces(&request_bounces(len)) {
            return Err(error(BlockErrorKind::NoDmaMemory));
        }
        Ok(())
    }

    /// Reads `buffer.len()` bytes (whole sectors, at most [`Disk::max_request`]) from `sector`.
    pub fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BlockError> {
        self.check(Operation::Read, sector, buffer.len())?;
        let mut request = BlkReq::default();
        let mut response = BlkResp::default();
        // SAFETY: VirtioHal copies request, buffer and response into the DMA pool when they are
        // queued and back when they are popped: the device never touches them, so they may be
        // used (or dropped) whatever the device does.
        let token = unsafe {
            self.device
                .read_blocks_nb(sector as usize, &mut request, buffer, &mut response)
        };
        let token =
            token.map_err(|e| self.device_error(Operation::Read, sector, buffer.len(), e))?;
        self.wait(Operation::Read, sector, buffer.len())?;
        // SAFETY: The same buffers as read_blocks_nb got, for the token it returned.
        let result = unsafe {
            self.device
                .complete_read_blocks(token, &request, buffer, &mut response)
        };
        result.map_err(|e| self.device_error(Operation::Read, sector, buffer.len(), e))
    }

    /// Writes `buffer` (whole sectors, at most [`Disk::max_request`]) at `sector`.
    pub fn write(&mut self, sector: u64, buffer: &[u8]) -> Result<(), BlockError> {
        self.check(Operation::Write, sector, buffer.len())?;
        let mut request = BlkReq::default();
        let mut response = BlkResp::default();
        // SAFETY: As in read: the device only sees bounce copies in the DMA pool.
        let token = unsafe {
            self.device
                .write_blocks_nb(sector as usize, &mut request, buffer, &mut response)
        };
        let token =
            token.map_err(|e| self.device_error(Operation::Write, sector, buffer.len(), e))?;
        self.wait(Operation::Write, sector, buffer.len())?;
        // SAFETY: The same buffers as write_blocks_nb got, for the token it returned.
        let result = unsafe {
            self.device
                .complete_write_blocks(token, &request, buffer, &mut response)
        };
        result.map_err(|e| self.device_error(Operation::Write, sector, buffer.len(), e))
    }

    fn wait(&mut self, operation: Operation, sector: u64, len: usize) -> Result<(), BlockError> {
        let device = &mut self.device;
        if poll_until(self.timeout_ms, || device.peek_used().is_some()) {
            return Ok(());
        }
        // The request stays queued; its bounce buffers stay allocated in the pool (the device
        // may still write them), and the disk takes no more requests.
        self.broken = true;
        Err(self.error(operation, sector, len, BlockErrorKind::TimedOut))
    }

    fn error(
        &self,
        operation: Operation,
        sector: u64,
        len: usize,
        kind: BlockErrorKind,
    ) -> BlockError {
        BlockError {
            device: self.function,
            operation,
            sector,
            len,
            kind,
        }
    }

    fn device_error(
        &self,
        operation: Operation,
        sector: u64,
        len: usize,
        error: virtio_drivers::Error,
    ) -> BlockError {
        self.error(operation, sector, len, BlockErrorKind::Device(error))
    }
}
