// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The DMA pool: the only memory virtio devices see, and so the only memory vmbase shares with
//! the host. It is a `restricted-dma-pool` from the device tree or pages taken from the heap;
//! every buffer a driver passes to a device is copied through it.
//!
//! Under a hypervisor that protects guest memory (pKVM: `hyp::memory_sharing_granule` is
//! `Some`), the pool is shared with the host granule by granule when it is set up
//! ([`crate::hyp::mem_share`]) and unshared when it is released ([`release_dma_pool`]). There,
//! like AOSP's pvmfw, vmbase takes the pool from the heap and leaves the tree's
//! `restricted-dma-pool` alone. The tree's region is for hypervisors without `MEM_SHARE`
//! (Gunyah, for one), where the host designates it as shared before the guest starts: it is used
//! as it is, never shared again. Without memory protection at all (crosvm without pKVM, QEMU)
//! the host sees all guest memory and nothing is shared.

use crate::fdt::{Fdt, FdtError};
use crate::layout::PAGE_SIZE;
use buddy_system_allocator::Heap;
use core::alloc::Layout;
use core::fmt;
use core::ops::Range;
use core::ptr::NonNull;
use spin::mutex::SpinMutex;

/// `compatible` of a reserved-memory region for bounce buffers (Linux's swiotlb pool).
const RESTRICTED_DMA_POOL: &[u8] = b"restricted-dma-pool";
/// Block orders of the pool's buddy allocator: blocks up to 2^31 bytes.
const ORDER: usize = 32;
/// Alignment of bounce buffers: enough for every virtio structure.
pub(crate) const BOUNCE_ALIGN: usize = 16;

static POOL: SpinMutex<Option<DmaPool>> = SpinMutex::new(None);

struct DmaPool {
    heap: Heap<ORDER>,
    range: Range<usize>,
    /// Whether vmbase shared the range with the host, and so must unshare it.
    shared: bool,
    /// The heap allocation the range is, if it came from the heap.
    from_heap: Option<Layout>,
}

impl DmaPool {
    /// Whether bounce buffers of `sizes` bytes, allocated in this order (as `share` allocates a
    /// request's buffers, one per descriptor), would all fit now. They are taken and given back:
    /// the same allocations from the same state, so the answer is what `share` will find.
    #[cfg(any(test, target_arch = "aarch64"))]
    fn has_room_for_bounces(&mut self, sizes: &[usize]) -> bool {
        let mut taken: [Option<(NonNull<u8>, Layout)>; MAX_BOUNCES] = [None; MAX_BOUNCES];
        let fits = sizes.len() <= MAX_BOUNCES
            && sizes.iter().zip(&mut taken).all(|(&size, slot)| {
                let Some(layout) = bounce_layout(size) else {
                    return false;
                };
                *slot = self.heap.alloc(layout).ok().map(|block| (block, layout));
                slot.is_some()
            });
        for (block, layout) in taken.into_iter().flatten() {
            // The block was just allocated with this layout, and is given back once.
            self.heap.dealloc(block, layout);
        }
        fits
    }
}

/// The most bounce buffers [`DmaPool::has_room_for_bounces`] checks at once (a block request
/// has three).
#[cfg(any(test, target_arch = "aarch64"))]
const MAX_BOUNCES: usize = 4;

/// The allocation behind a bounce buffer of `size` bytes.
fn bounce_layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.max(1), BOUNCE_ALIGN).ok()
}

/// Why the DMA pool could not be set up.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum DmaPoolError {
    /// The pool was already set up.
    AlreadyInitialised,
    /// The region is empty, not page-aligned, or not a whole number of pages.
    BadRegion(Range<usize>),
    /// The heap could not give the pages asked for; holds the size.
    HeapExhausted(usize),
    /// The device tree's `restricted-dma-pool` could not be read.
    Fdt(FdtError),
    /// The `restricted-dma-pool` could not be mapped.
    Map(crate::memory::MemoryTrackerError),
    /// The hypervisor did not share the pool with the host (nothing of it stays shared).
    Share(crate::hyp::Error),
    /// [`release_dma_pool`] found no pool.
    NotInitialised,
    /// The hypervisor did not unshare the pool: part of it may still be visible to the host,
    /// so it is never used again, nor given back to the heap.
    Unshare(crate::hyp::Error),
}

impl fmt::Display for DmaPoolError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::AlreadyInitialised => write!(f, "the DMA pool is already set up"),
            Self::BadRegion(range) => write!(f, "DMA pool region {range:#x?} is not whole pages"),
            Self::HeapExhausted(size) => {
                write!(f, "the heap has no {size:#x} bytes for the DMA pool")
            }
            Self::Fdt(error) => write!(f, "looking for a restricted-dma-pool: {error}"),
            Self::Map(error) => write!(f, "mapping the restricted-dma-pool: {error}"),
            Self::Share(error) => write!(f, "sharing the DMA pool with the host: {error}"),
            Self::NotInitialised => write!(f, "there is no DMA pool"),
            Self::Unshare(error) => write!(f, "unsharing the DMA pool: {error}"),
        }
    }
}

#[cfg(has_core_error)]
impl core::error::Error for DmaPoolError {}

impl From<FdtError> for DmaPoolError {
    fn from(error: FdtError) -> Self {
        Self::Fdt(error)
    }
}

/// Makes `region` the DMA pool, sharing it with the host first if the hypervisor protects
/// guest memory (then it must start and end on the sharing granule).
pub fn init_dma_pool(region: &'static mut [u8]) -> Result<(), DmaPoolError> {
    let range = region.as_mut_ptr_range();
    install(range.start as usize..range.end as usize, None)
}

/// Makes `range` (memory the caller gives up for good, or `from_heap`'s allocation) the pool.
fn install(range: Range<usize>, from_heap: Option<Layout>) -> Result<(), DmaPoolError> {
    if range.is_empty() || (range.start | range.end) & (PAGE_SIZE - 1) != 0 {
        return Err(DmaPoolError::BadRegion(range));
    }
    let mut pool = POOL.lock();
    if pool.is_some() {
        return Err(DmaPoolError::AlreadyInitialised);
    }
    let shared = crate::hyp::memory_sharing_granule()
        .map_err(DmaPoolError::Share)?
        .is_some();
    if shared {
        crate::hyp::mem_share(&range).map_err(DmaPoolError::Share)?;
    }
    let mut heap = Heap::empty();
    // SAFETY: The range is exclusively the pool's for as long as it lives (the caller's
    // 'static &mut, or a heap allocation only release_dma_pool frees).
    unsafe { heap.init(range.start, range.len()) };
    *pool = Some(DmaPool {
        heap,
        range,
        shared,
        from_heap,
    });
    Ok(())
}

/// Makes `size` bytes (rounded up to pages, or to the hypervisor's sharing granule) of the heap
/// the DMA pool, for guests whose device tree has no `restricted-dma-pool` and for protected VMs.
pub fn init_dma_pool_from_heap(size: usize) -> Result<(), DmaPoolError> {
    let granule = crate::hyp::memory_sharing_granule()
        .map_err(DmaPoolError::Share)?
        .unwrap_or(PAGE_SIZE)
        .max(PAGE_SIZE);
    let size = size.next_multiple_of(granule);
    let layout =
        Layout::from_size_align(size, granule).map_err(|_| DmaPoolError::HeapExhausted(size))?;
    if POOL.lock().is_some() {
        return Err(DmaPoolError::AlreadyInitialised);
    }
    if size == 0 {
        return Err(DmaPoolError::BadRegion(0..0));
    }
    // SAFETY: The layout's size is not zero.
    let pages = unsafe { alloc::alloc::alloc_zeroed(layout) };
    if pages.is_null() {
        return Err(DmaPoolError::HeapExhausted(size));
    }
    let range = pages as usize..pages as usize + size;
    install(range, Some(layout)).inspect_err(|_| {
        // SAFETY: install failed, so nothing uses the block and none of it is shared.
        unsafe { alloc::alloc::dealloc(pages, layout) }
    })
}

/// Takes the DMA pool down: unshares it from the host if vmbase shared it, and gives it back to
/// the heap if it came from there. A program that hands the VM to another (a bootloader) calls
/// it first, so that none of its memory stays visible to the host.
///
/// # Safety
///
/// No device may still use the pool and nothing may hold a block of it: every virtio driver and
/// device wrapper is dropped (a device that timed out keeps its buffers; reset it first).
pub unsafe fn release_dma_pool() -> Result<(), DmaPoolError> {
    let pool = POOL.lock().take().ok_or(DmaPoolError::NotInitialised)?;
    if pool.shared {
        crate::hyp::mem_unshare(&pool.range).map_err(DmaPoolError::Unshare)?;
    }
    if let Some(layout) = pool.from_heap {
        // SAFETY: init_dma_pool_from_heap allocated the range with this layout; the caller
        // promises nothing uses it any more, and it is private to the guest again.
        unsafe { alloc::alloc::dealloc(pool.range.start as *mut u8, layout) };
    }
    Ok(())
}

/// The CPU addresses of the first `restricted-dma-pool` under `/reserved-memory`, if any.
pub fn restricted_dma_pool(fdt: &Fdt) -> Result<Option<Range<u64>>, FdtError> {
    let Some(node) = fdt
        .compatible_nodes(RESTRICTED_DMA_POOL)
        .next()
        .transpose()?
    else {
        return Ok(None);
    };
    let [address, size] = node
        .reg()?
        .and_then(|mut reg| reg.next())
        .ok_or(FdtError::BadValue)?;
    let end = address
        .checked_add(size)
        .ok_or(FdtError::RegOverflow { address, size })?;
    Ok(Some(address..end))
}

/// Sets the pool up from the device tree's `restricted-dma-pool` (mapped read-write through
/// `tracker`, which refuses one outside RAM or overlapping the image), or else from
/// `heap_size` bytes of the heap; from the heap, and shared with the host, whenever the
/// hypervisor protects guest memory. Returns the pool's addresses.
#[cfg(target_arch = "aarch64")]
pub fn init_dma_pool_from_fdt(
    fdt: &Fdt,
    tracker: &mut crate::memory::MemoryTracker,
    heap_size: usize,
) -> Result<Range<usize>, DmaPoolError> {
    let protected = crate::hyp::memory_sharing_granule()
        .map_err(DmaPoolError::Share)?
        .is_some();
    match restricted_dma_pool(fdt)?.filter(|_| !protected) {
        Some(range) => {
            let range = range.start as usize..range.end as usize;
            if (range.start | range.end) & (PAGE_SIZE - 1) != 0 {
                return Err(DmaPoolError::BadRegion(range));
            }
            tracker.alloc_range_mut(&range).map_err(DmaPoolError::Map)?;
            // SAFETY: The tracker just mapped the range read-write and refuses to map it again;
            // the device tree reserved it, so nothing else in the program uses it.
            let region =
                unsafe { core::slice::from_raw_parts_mut(range.start as *mut u8, range.len()) };
            region.fill(0);
            init_dma_pool(region)?;
        }
        None => init_dma_pool_from_heap(heap_size)?,
    }
    Ok(pool_range().unwrap_or(0..0))
}

/// The pool's addresses, once it is set up.
pub fn pool_range() -> Option<Range<usize>> {
    POOL.lock().as_ref().map(|pool| pool.range.clone())
}

/// Allocates `size` bytes aligned to `align` from the pool, or `None` if it is not set up or is
/// full.
pub(crate) fn alloc(size: usize, align: usize) -> Option<NonNull<u8>> {
    let layout = Layout::from_size_align(size.max(1), align).ok()?;
    POOL.lock().as_mut()?.heap.alloc(layout).ok()
}

/// Whether the pool could give, now, one bounce buffer for each of `sizes`, allocated in this
/// order: what `share` allocates for the descriptors of one request, so that a driver can refuse
/// the request ([`NoDmaMemory`](super::blk::BlockErrorKind::NoDmaMemory)) instead of `share`
/// finding the pool full. The answer holds as long as nothing else allocates from the pool in
/// between (the pool is shared by every device, so a driver on another CPU could).
#[cfg(target_arch = "aarch64")]
pub(crate) fn has_room_for_bounces(sizes: &[usize]) -> bool {
    POOL.lock()
        .as_mut()
        .is_some_and(|pool| pool.has_room_for_bounces(sizes))
}

/// Allocates a bounce buffer of `size` bytes from the pool, or `None` if it is not set up or is
/// full.
pub(crate) fn alloc_bounce(size: usize) -> Option<NonNull<u8>> {
    POOL.lock().as_mut()?.heap.alloc(bounce_layout(size)?).ok()
}

/// Frees what [`alloc_bounce`] returned.
///
/// # Safety
///
/// `block` must come from [`alloc_bounce`] with the same `size`, and not be freed yet.
pub(crate) unsafe fn dealloc_bounce(block: NonNull<u8>, size: usize) {
    let mut pool = POOL.lock();
    let (Some(pool), Some(layout)) = (pool.as_mut(), bounce_layout(size)) else {
        return;
    };
    // Right by the caller's promise: the block came from alloc_bounce, with this layout
    // (buddy_system_allocator 0.10's dealloc trusts its caller).
    pool.heap.dealloc(block, layout);
}

/// Frees what [`alloc`] returned.
///
/// # Safety
///
/// `block` must come from [`alloc`] with the same `size` and `align`, and not be freed yet.
pub(crate) unsafe fn dealloc(block: NonNull<u8>, size: usize, align: usize) {
    let Ok(layout) = Layout::from_size_align(size.max(1), align) else {
        return;
    };
    if let Some(pool) = POOL.lock().as_mut() {
        // Right by the caller's promise (buddy_system_allocator 0.10's dealloc trusts its
        // caller).
        pool.heap.dealloc(block, layout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdt::tests::FdtBuilder;
    use core::mem::size_of;
    use virtio_drivers::device::blk::{BlkReq, BlkResp};

    /// A pool over `pages` fresh pages of the host's heap (leaked: the pool keeps them).
    fn host_pool(pages: usize) -> DmaPool {
        let size = pages * PAGE_SIZE;
        let layout = Layout::from_size_align(size, PAGE_SIZE).unwrap();
        // SAFETY: The layout is not empty.
        let start = unsafe { std::alloc::alloc_zeroed(layout) } as usize;
        assert_ne!(start, 0);
        let mut heap = Heap::empty();
        // SAFETY: The block is ours and never freed.
        unsafe { heap.init(start, size) };
        DmaPool {
            heap,
            range: start..start + size,
            shared: false,
            from_heap: None,
        }
    }

    /// Allocates what `share` would for one request, in order; whether all of it fitted.
    fn share_all(pool: &mut DmaPool, sizes: &[usize]) -> bool {
        let mut taken = std::vec::Vec::new();
        for &size in sizes {
            match pool.heap.alloc(bounce_layout(size).unwrap()) {
                Ok(block) => taken.push((block, size)),
                Err(()) => break,
            }
        }
        let fitted = taken.len() == sizes.len();
        for (block, size) in taken {
            // Allocated just above with this layout.
            pool.heap.dealloc(block, bounce_layout(size).unwrap());
        }
        fitted
    }

    #[test]
    fn room_check_agrees_with_what_share_allocates() {
        // A block request's bounce buffers: its header, the data, the status byte.
        let request = |len| [size_of::<BlkReq>(), len, size_of::<BlkResp>()];
        let mut checked = 0;
        for pages in [1, 2, 3, 8] {
            let mut pool = host_pool(pages);
            // A small allocation held, as a queue or another request would, shapes the free
            // blocks too.
            for held in [None, Some(512)] {
                let block = held.map(|size| pool.heap.alloc(bounce_layout(size).unwrap()).unwrap());
                for sectors in 1..=(pages * PAGE_SIZE / 512 + 1) {
                    let sizes = request(sectors * 512);
                    let room = pool.has_room_for_bounces(&sizes);
                    assert_eq!(
                        room,
                        share_all(&mut pool, &sizes),
                        "{pages} pages, {sizes:?}"
                    );
                    checked += 1;
                }
                if let (Some(block), Some(size)) = (block, held) {
                    // Allocated above with this layout.
                    pool.heap.dealloc(block, bounce_layout(size).unwrap());
                }
                // The check gave back everything it took.
                assert_eq!(pool.heap.stats_alloc_actual(), 0);
            }
        }
        assert!(checked > 100);
        // The case that made `share` panic: the data is a whole free block, which the header,
        // allocated first, splits.
        let mut pool = host_pool(2);
        assert!(!pool.has_room_for_bounces(&request(2 * PAGE_SIZE)));
        assert!(pool.has_room_for_bounces(&request(PAGE_SIZE)));
        assert!(!pool.has_room_for_bounces(&[1; MAX_BOUNCES + 1]));
    }

    #[test]
    fn finds_the_restricted_dma_pool() {
        let blob = FdtBuilder::new()
            .begin("")
            .prop_u32s("#address-cells", &[2])
            .prop_u32s("#size-cells", &[2])
            .begin("reserved-memory")
            .prop_u32s("#address-cells", &[2])
            .prop_u32s("#size-cells", &[2])
            .begin("restricted_dma_reserved")
            .prop("compatible", b"restricted-dma-pool\0")
            .prop_u32s("reg", &[0, 0x9000_0000, 0, 0x40_0000])
            .end()
            .end()
            .end()
            .build();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(
            restricted_dma_pool(&fdt),
            Ok(Some(0x9000_0000..0x9040_0000))
        );
        let none = FdtBuilder::new().begin("").end().build();
        assert_eq!(restricted_dma_pool(&Fdt::new(&none).unwrap()), Ok(None));
    }
}
