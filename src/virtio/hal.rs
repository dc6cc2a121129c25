// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The `virtio-drivers` HAL: DMA memory and bounce buffers from the pool, identity-mapped MMIO.

use super::pool;
use crate::layout::PAGE_SIZE;
use core::ptr::{copy_nonoverlapping, NonNull};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// DMA for `virtio-drivers`: queues and buffers live in the DMA pool (set up first with
/// `virtio::init_dma_pool_from_fdt` or its siblings); vmbase's page tables are an identity map,
/// so CPU and device addresses are the same.
///
/// `share` copies every buffer into the pool, so a device never sees other memory. When the
/// pool is full or not set up, `share` and queue allocation fail: `dma_alloc` returns 0 (an
/// error `virtio-drivers` reports), `share` panics (the trait has no error path), which the
/// device wrappers avoid: the block device checks that the pool has room for each request's
/// bounce buffers, allocated as `share` will allocate them, first; the others send small chunks.
#[derive(Debug)]
pub struct VirtioHal;

// SAFETY: dma_alloc returns zeroed, page-aligned pool blocks that nothing else uses until
// dma_dealloc; share hands out pool blocks the same way; MMIO is identity-mapped by the PCI root.
// One departure from the trait's contract: on failure dma_alloc returns physical address 0 with a
// dangling pointer, which is not valid. virtio-drivers 0.7.4 calls dma_alloc only from
// `Dma::new`, and vmbase only from `RequestQueue::new`: both check for address 0 and return
// `Error::DmaError` without using the pointer; the Cargo.toml pins that version, and another
// must be checked for this.
unsafe impl Hal for VirtioHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(size) = pages.checked_mul(PAGE_SIZE) else {
            return (0, NonNull::dangling());
        };
        match pool::alloc(size, PAGE_SIZE) {
            Some(block) => {
                // SAFETY: The block is size bytes of the pool, ours until dma_dealloc.
                unsafe { block.as_ptr().write_bytes(0, size) };
                (block.as_ptr() as PhysAddr, block)
            }
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        // SAFETY: The caller passes what dma_alloc returned for `pages`.
        unsafe { pool::dealloc(vaddr, pages * PAGE_SIZE, PAGE_SIZE) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // The identity map: BARs lie in windows the PCI root mapped.
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let size = buffer.len();
        let Some(bounce) = pool::alloc_bounce(size) else {
            panic!("virtio: the DMA pool has no {size} bytes for a buffer");
        };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: The caller promises buffer is valid; bounce is size fresh bytes.
            unsafe { copy_nonoverlapping(buffer.as_ptr().cast::<u8>(), bounce.as_ptr(), size) };
        }
        bounce.as_ptr() as PhysAddr
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let size = buffer.len();
        let bounce = paddr as *mut u8;
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: paddr is the bounce block share made for this buffer (identity-mapped);
            // the caller promises buffer is valid and unused by others.
            unsafe { copy_nonoverlapping(bounce, buffer.as_ptr().cast::<u8>(), size) };
        }
        if let Some(bounce) = NonNull::new(bounce) {
            // SAFETY: share allocated this bounce block with this size.
            unsafe { pool::dealloc_bounce(bounce, size) };
        }
    }
}
