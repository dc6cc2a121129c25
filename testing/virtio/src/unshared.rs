// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The `unshared-buffer` test: a virtio-rng request whose buffer is guest memory that was never
//! shared with the host, as a driver that bypasses vmbase's DMA pool would hand it over. Under a
//! hypervisor that protects memory the device must never get to write it.

use super::fail;
use alloc::vec;
use core::ptr::NonNull;
use vmbase::pci::PciBus;
use vmbase::println;
use vmbase::virtio::virtio_drivers::transport::{DeviceType, Transport};
use vmbase::virtio::virtio_drivers::{BufferDirection, Hal, PhysAddr};
use vmbase::virtio::{find_transport, RequestQueue, VirtioHal};

/// The rng's request queue.
const QUEUE: u16 = 0;
/// How long the device may take before the test gives up on it.
const TIMEOUT_MS: u64 = 5000;

/// vmbase's HAL for the queues (in the shared pool), but buffers go to the device as they are:
/// no bounce through the pool, so the device is given private memory.
struct UnsharedHal;

// SAFETY: Queue memory comes from VirtioHal, which keeps that promise. `share` hands the device
// the caller's buffer itself (identity-mapped), which the caller keeps valid until `unshare`;
// that the buffer is not shared with the host is the point of the test, not a memory-safety
// matter for this guest.
unsafe impl Hal for UnsharedHal {
    fn dma_alloc(pages: usize, direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        VirtioHal::dma_alloc(pages, direction)
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        // SAFETY: The caller's promise, passed on: this is what dma_alloc returned.
        unsafe { VirtioHal::dma_dealloc(paddr, vaddr, pages) }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        // SAFETY: The caller's promise, passed on.
        unsafe { VirtioHal::mmio_phys_to_virt(paddr, size) }
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.cast::<u8>().as_ptr() as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// Asks the first virtio-rng device to fill a heap buffer directly. A hypervisor that enforces
/// sharing ends the VM at the notify; if the device answers instead, this reports it and fails.
pub fn run(pci: &mut PciBus) -> ! {
    let (function, mut transport) = match find_transport(pci, DeviceType::EntropySource) {
        Ok(Some(found)) => found,
        Ok(None) => fail(format_args!("no virtio-rng device")),
        Err(error) => fail(format_args!("{error}")),
    };
    transport.begin_init_version_1();
    let mut queue = match RequestQueue::<UnsharedHal>::new(&mut transport, QUEUE) {
        Ok(queue) => queue,
        Err(error) => fail(format_args!("virtio-rng {function}: {error}")),
    };
    transport.finish_init();
    let mut buffer = vec![0u8; 64];
    let address = buffer.as_ptr() as usize;
    let sharing = match vmbase::hyp::memory_sharing_granule() {
        Ok(Some(_)) => "the hypervisor protects memory",
        Ok(None) => "the hypervisor does not protect memory",
        Err(_) => "memory sharing is unusable",
    };
    println!(
        "virtio guest: handing virtio-rng {function} the buffer {address:#x}, never shared with \
         the host ({sharing})"
    );
    // SAFETY: The buffer outlives the request: this function never returns, and the buffer is
    // not touched until the device has answered.
    let token = match unsafe { queue.add(&[], &mut [buffer.as_mut_slice()]) } {
        Ok(token) => token,
        Err(error) => fail(format_args!("virtio-rng {function}: {error}")),
    };
    if queue.should_notify() {
        transport.notify(QUEUE);
    }
    let start = vmbase::counter::ticks();
    let limit = vmbase::counter::frequency() * TIMEOUT_MS / 1000;
    while !queue.can_pop() {
        if vmbase::counter::ticks().wrapping_sub(start) > limit {
            fail(format_args!(
                "virtio-rng {function} did not answer in {TIMEOUT_MS} ms"
            ));
        }
        core::hint::spin_loop();
    }
    // SAFETY: The same buffer as add got, for the token it returned.
    let written = unsafe { queue.pop_used(token, &[], &mut [buffer.as_mut_slice()]) };
    fail(format_args!(
        "virtio-rng {function} answered ({written:?}) into {address:#x}, memory never shared \
         with the host: nothing stopped it"
    ))
}
