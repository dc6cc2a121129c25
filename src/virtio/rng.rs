// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! virtio-rng: entropy from the host, with a bounded wait, usable as [`crate::rand`]'s fallback.
//!
//! `virtio-drivers` 0.7 has no entropy driver: this one drives the device's single request queue
//! itself, through [`super::RequestQueue`].

use super::{find_transport, poll_until, VirtioTransport, DEFAULT_TIMEOUT_MS};
use super::{DeviceError, DeviceErrorKind, Request, RequestQueue};
use crate::pci::PciBus;
use spin::mutex::SpinMutex;
use virtio_drivers::transport::pci::bus::DeviceFunction;
use virtio_drivers::transport::{DeviceType, Transport};

/// The device's only queue.
const REQUEST_QUEUE: u16 = 0;
/// Bytes asked of the device per request (a bounce buffer of this size comes from the pool).
const CHUNK: usize = 64;
/// Empty answers in a row after which the device is taken to have no entropy to give.
const EMPTY_ANSWERS: usize = 16;

/// A virtio-rng device on PCI.
pub struct Rng {
    transport: VirtioTransport,
    queue: RequestQueue,
    function: DeviceFunction,
    timeout_ms: u64,
    broken: bool,
}

impl Rng {
    /// Drives the entropy device at `function` through `transport`.
    pub fn new(
        mut transport: VirtioTransport,
        function: DeviceFunction,
    ) -> Result<Self, DeviceError> {
        transport.begin_init_version_1();
        let queue =
            RequestQueue::new(&mut transport, REQUEST_QUEUE).map_err(|error| DeviceError {
                device: function,
                request: Request::Setup(DeviceType::EntropySource),
                kind: DeviceErrorKind::Device(error),
            })?;
        transport.finish_init();
        Ok(Self {
            transport,
            queue,
            function,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            broken: false,
        })
    }

    /// The first virtio-rng device on `pci`, as [`Rng::new`] makes it; `None` if there is none.
    pub fn find(pci: &mut PciBus) -> Result<Option<Self>, DeviceError> {
        find_transport(pci, DeviceType::EntropySource)?
            .map(|(function, transport)| Self::new(transport, function))
            .transpose()
    }

    /// The device's PCI address.
    pub fn function(&self) -> DeviceFunction {
        self.function
    }

    /// Fills `bytes` with entropy from the host, waiting at most [`DEFAULT_TIMEOUT_MS`] per
    /// request.
    pub fn fill(&mut self, bytes: &mut [u8]) -> Result<(), DeviceError> {
        let error = |kind| DeviceError {
            device: self.function,
            request: Request::Entropy,
            kind,
        };
        if self.broken {
            return Err(error(DeviceErrorKind::Broken));
        }
        let mut filled = 0;
        let mut empty_answers = 0;
        while filled < bytes.len() {
            let end = bytes.len().min(filled + CHUNK);
            let chunk = &mut bytes[filled..end];
            // SAFETY: VirtioHal hands the device a bounce copy in the DMA pool, never chunk
            // itself, so chunk may be used whatever the device does.
            let token = unsafe { self.queue.add(&[], &mut [&mut *chunk]) }
                .map_err(|e| error(DeviceErrorKind::Device(e)))?;
            if self.queue.should_notify() {
                self.transport.notify(REQUEST_QUEUE);
            }
            let queue = &self.queue;
            if !poll_until(self.timeout_ms, || queue.can_pop()) {
                // The request stays queued with its bounce buffer; the device is given up.
                self.broken = true;
                return Err(error(DeviceErrorKind::TimedOut));
            }
            // SAFETY: The same buffers as add got, for the token it returned.
            let written = unsafe { self.queue.pop_used(token, &[], &mut [&mut *chunk]) }
                .map_err(|e| error(DeviceErrorKind::Device(e)))?;
            let written = (written as usize).min(end - filled);
            if written == 0 {
                empty_answers += 1;
                if empty_answers == EMPTY_ANSWERS {
                    return Err(error(DeviceErrorKind::Empty(EMPTY_ANSWERS)));
                }
            } else {
                empty_answers = 0;
            }
            filled += written;
        }
        Ok(())
    }
}

impl Drop for Rng {
    fn drop(&mut self) {
        self.transport.queue_unset(REQUEST_QUEUE);
    }
}

static FALLBACK_DEVICE: SpinMutex<Option<Rng>> = SpinMutex::new(None);

fn fill_from_fallback_device(bytes: &mut [u8]) -> bool {
    FALLBACK_DEVICE
        .lock()
        .as_mut()
        .is_some_and(|rng| rng.fill(bytes).is_ok())
}

/// Makes `rng` the entropy source of [`crate::rand::fill_with_entropy`] for when the
/// hypervisor and the CPU offer none. Returns whether it was registered (only the first
/// fallback is).
pub fn use_as_fallback(rng: Rng) -> bool {
    let mut device = FALLBACK_DEVICE.lock();
    if device.is_some() {
        return false;
    }
    *device = Some(rng);
    drop(device);
    crate::rand::set_fallback(fill_from_fallback_device)
}
