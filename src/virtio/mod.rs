// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! virtio over PCI with the `virtio-drivers` crate: a DMA pool the host may see, the HAL that
//! bounces every buffer through it, and bounded-time wrappers for the devices.

#[cfg(target_arch = "aarch64")]
pub mod blk;
#[cfg(target_arch = "aarch64")]
pub mod console;
mod error;
#[cfg(target_arch = "aarch64")]
mod find;
mod hal;
mod pool;
mod queue;
#[cfg(target_arch = "aarch64")]
pub mod rng;
mod transport;

pub use error::{DeviceError, DeviceErrorKind, Request};
#[cfg(target_arch = "aarch64")]
pub use find::{find_transport, find_transports};
pub use hal::VirtioHal;
#[cfg(target_arch = "aarch64")]
pub use pool::init_dma_pool_from_fdt;
pub use pool::{
    init_dma_pool, init_dma_pool_from_heap, pool_range, release_dma_pool, restricted_dma_pool,
    DmaPoolError,
};
pub use queue::RequestQueue;
pub use transport::VirtioTransport;
pub use virtio_drivers;

/// How long a device may take to answer one request before the driver gives up on it.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;

/// Polls `done` until it answers true, or until `timeout_ms` of the generic timer elapse;
/// returns its last answer.
#[cfg(target_arch = "aarch64")]
pub(crate) fn poll_until(timeout_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let start = crate::counter::ticks();
    let limit = crate::counter::frequency().saturating_mul(timeout_ms) / 1000;
    loop {
        if done() {
            return true;
        }
        if crate::counter::ticks().wrapping_sub(start) > limit {
            return done();
        }
        core::hint::spin_loop();
    }
}

/// Host builds (unit tests) have no generic timer: one poll per millisecond of the timeout.
#[cfg(not(target_arch = "aarch64"))]
pub(crate) fn poll_until(timeout_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    (0..=timeout_ms).any(|_| done())
}
