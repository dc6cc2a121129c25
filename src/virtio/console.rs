// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The virtio console (port 0 of a virtio-serial device, QEMU's `virtconsole`, crosvm's
//! `hardware=virtio-console`): a second output, and input the guest can read lines from, every
//! wait bounded.

use super::{find_transport, poll_until, VirtioTransport, DEFAULT_TIMEOUT_MS};
use super::{DeviceError, DeviceErrorKind, Request, RequestQueue};
use crate::pci::PciBus;
use alloc::boxed::Box;
use core::fmt;
use virtio_drivers::transport::pci::bus::DeviceFunction;
use virtio_drivers::transport::{DeviceType, Transport};

/// Port 0's queues (without `VIRTIO_CONSOLE_F_MULTIPORT`, the only port).
const RECEIVE_QUEUE: u16 = 0;
const TRANSMIT_QUEUE: u16 = 1;
/// Bytes per receive buffer and per transmitted chunk.
const BUFFER_SIZE: usize = 64;

/// A virtio console on PCI.
pub struct Console {
    transport: VirtioTransport,
    receive_queue: RequestQueue,
    transmit_queue: RequestQueue,
    function: DeviceFunction,
    /// The buffer offered to the device for input, while `receive_token` is set.
    receive_buffer: Box<[u8; BUFFER_SIZE]>,
    receive_token: Option<u16>,
    /// Input received and not read yet: `receive_buffer[pending]`.
    pending: core::ops::Range<usize>,
    timeout_ms: u64,
    broken: bool,
}

impl Console {
    /// Drives the console at `function` through `transport`, and offers the device a buffer
    /// for input.
    pub fn new(
        mut transport: VirtioTransport,
        function: DeviceFunction,
    ) -> Result<Self, DeviceError> {
        let error = |error| DeviceError {
            device: function,
            request: Request::Setup(DeviceType::Console),
            kind: DeviceErrorKind::Device(error),
        };
        transport.begin_init_version_1();
        let receive_queue = RequestQueue::new(&mut transport, RECEIVE_QUEUE);
        let transmit_queue = RequestQueue::new(&mut transport, TRANSMIT_QUEUE);
        transport.finish_init();
        let mut console = Self {
            transport,
            receive_queue: receive_queue.map_err(error)?,
            transmit_queue: transmit_queue.map_err(error)?,
            function,
            receive_buffer: Box::new([0; BUFFER_SIZE]),
            receive_token: None,
            pending: 0..0,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            broken: false,
        };
        console.offer_receive_buffer()?;
        Ok(console)
    }

    /// The first virtio console on `pci`, as [`Console::new`] makes it; `None` if there is none.
    pub fn find(pci: &mut PciBus) -> Result<Option<Self>, DeviceError> {
        find_transport(pci, DeviceType::Console)?
            .map(|(function, transport)| Self::new(transport, function))
            .transpose()
    }

    /// Sets how long a write, or a read with nothing to read, may wait.
    pub fn set_timeout_ms(&mut self, timeout_ms: u64) {
        self.timeout_ms = timeout_ms;
    }

    /// The device's PCI address.
    pub fn function(&self) -> DeviceFunction {
        self.function
    }

    fn error(&self, request: Request, kind: DeviceErrorKind) -> DeviceError {
        DeviceError {
            device: self.function,
            request,
            kind,
        }
    }

    fn offer_receive_buffer(&mut self) -> Result<(), DeviceError> {
        // SAFETY: VirtioHal gives the device a bounce copy in the DMA pool; the buffer itself
        // is only written when the token is popped, with the same buffer.
        let token = unsafe {
            self.receive_queue
                .add(&[], &mut [self.receive_buffer.as_mut_slice()])
        };
        let token =
            token.map_err(|e| self.error(Request::ConsoleRead, DeviceErrorKind::Device(e)))?;
        self.receive_token = Some(token);
        if self.receive_queue.should_notify() {
            self.transport.notify(RECEIVE_QUEUE);
        }
        Ok(())
    }

    /// Sends `bytes`, waiting at most the timeout for each chunk to be taken.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), DeviceError> {
        if self.broken {
            return Err(self.error(Request::ConsoleWrite, DeviceErrorKind::Broken));
        }
        for chunk in bytes.chunks(BUFFER_SIZE) {
            let device_error = |console: &Self, e| {
                console.error(Request::ConsoleWrite, DeviceErrorKind::Device(e))
            };
            // SAFETY: VirtioHal gives the device a bounce copy of chunk.
            let token = unsafe { self.transmit_queue.add(&[chunk], &mut []) }
                .map_err(|e| device_error(self, e))?;
            if self.transmit_queue.should_notify() {
                self.transport.notify(TRANSMIT_QUEUE);
            }
            let queue = &self.transmit_queue;
            if !poll_until(self.timeout_ms, || queue.can_pop()) {
                self.broken = true;
                return Err(self.error(Request::ConsoleWrite, DeviceErrorKind::TimedOut));
            }
            // SAFETY: The same buffers as add got, for the token it returned.
            unsafe { self.transmit_queue.pop_used(token, &[chunk], &mut []) }
                .map_err(|e| device_error(self, e))?;
        }
        Ok(())
    }

    /// The next input byte, waiting at most the timeout for one to arrive.
    pub fn read_byte(&mut self) -> Result<u8, DeviceError> {
        if self.pending.is_empty() {
            let Some(token) = self.receive_token else {
                self.offer_receive_buffer()?;
                return self.read_byte();
            };
            let queue = &self.receive_queue;
            if !poll_until(self.timeout_ms, || queue.can_pop()) {
                return Err(self.error(Request::ConsoleRead, DeviceErrorKind::TimedOut));
            }
            // SAFETY: The same buffer as offer_receive_buffer gave add, for its token.
            let received = unsafe {
                self.receive_queue
                    .pop_used(token, &[], &mut [self.receive_buffer.as_mut_slice()])
            };
            self.receive_token = None;
            let received = received
                .map_err(|e| self.error(Request::ConsoleRead, DeviceErrorKind::Device(e)))?;
            self.pending = 0..(received as usize).min(BUFFER_SIZE);
            if self.pending.is_empty() {
                self.offer_receive_buffer()?;
                return self.read_byte();
            }
        }
        let byte = self.receive_buffer[self.pending.start];
        self.pending.start += 1;
        if self.pending.is_empty() {
            self.offer_receive_buffer()?;
        }
        Ok(byte)
    }

    /// Reads a line into `line`, without its `\n` (a `\r` before it is dropped too); returns
    /// its length.
    pub fn read_line(&mut self, line: &mut [u8]) -> Result<usize, DeviceError> {
        let mut length = 0;
        loop {
            match self.read_byte()? {
                b'\n' => break,
                byte => {
                    let slot = line
                        .get_mut(length)
                        .ok_or(self.error(Request::ConsoleRead, DeviceErrorKind::LineTooLong))?;
                    *slot = byte;
                    length += 1;
                }
            }
        }
        if length > 0 && line[length - 1] == b'\r' {
            length -= 1;
        }
        Ok(length)
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.write(text.as_bytes()).map_err(|_| fmt::Error)
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.transport.queue_unset(RECEIVE_QUEUE);
        self.transport.queue_unset(TRANSMIT_QUEUE);
    }
}
