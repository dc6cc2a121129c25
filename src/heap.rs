// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The global heap: a buddy allocator over memory the binary hands over with [`init`] (usually
//! through [`configure_heap!`](crate::configure_heap)).
//!
//! Allocating before [`init`] reports the mistake and reboots. When the heap is exhausted, the
//! failed request is reported and `alloc` panics as usual, which also reboots.

use buddy_system_allocator::Heap;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::{null_mut, NonNull};
use core::sync::atomic::{AtomicBool, Ordering};
use spin::mutex::SpinMutex;

/// Block orders of the buddy allocator: blocks up to 2^31 bytes.
const ORDER: usize = 32;

/// The allocator behind `alloc` in vmbase binaries.
pub struct VmbaseHeap {
    heap: SpinMutex<Option<Heap<ORDER>>>,
}

#[cfg_attr(not(test), global_allocator)]
static HEAP: VmbaseHeap = VmbaseHeap {
    heap: SpinMutex::new(None),
};

/// Why [`init`] refused.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum HeapError {
    /// [`init`] already ran.
    AlreadyInitialised,
}

/// Gives `region` to the global allocator. Call it once, before anything allocates.
pub fn init(region: &'static mut [u8]) -> Result<(), HeapError> {
    let mut heap = HEAP.heap.lock();
    if heap.is_some() {
        return Err(HeapError::AlreadyInitialised);
    }
    let mut new_heap = Heap::empty();
    // SAFETY: region is exclusively ours for the rest of the program ('static and &mut).
    unsafe { new_heap.init(region.as_mut_ptr() as usize, region.len()) };
    *heap = Some(new_heap);
    Ok(())
}

/// Heap usage: (bytes allocated, bytes managed), or `None` before [`init`].
pub fn usage() -> Option<(usize, usize)> {
    HEAP.heap
        .lock()
        .as_ref()
        .map(|heap| (heap.stats_alloc_actual(), heap.stats_total_bytes()))
}

/// Why an allocation failed.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum AllocError {
    /// The heap was not set up yet.
    BeforeInit(Layout),
    /// No free block is large enough.
    Exhausted {
        request: Layout,
        allocated: usize,
        total: usize,
    },
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BeforeInit(request) => write!(
                f,
                "vmbase: allocation of {} bytes before the heap was initialised (vmbase::heap::init)",
                request.size()
            ),
            Self::Exhausted { request, allocated, total } => write!(
                f,
                "vmbase: heap exhausted: {} bytes (align {}) requested, {allocated} of {total} bytes in use",
                request.size(),
                request.align()
            ),
        }
    }
}

impl VmbaseHeap {
    fn try_alloc(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let mut heap = self.heap.lock();
        let heap = heap.as_mut().ok_or(AllocError::BeforeInit(layout))?;
        heap.alloc(layout).map_err(|()| AllocError::Exhausted {
            request: layout,
            allocated: heap.stats_alloc_actual(),
            total: heap.stats_total_bytes(),
        })
    }
}

// SAFETY: Allocation is delegated to buddy_system_allocator's Heap, behind a lock; blocks it
// returns are within the region given to init, which nothing else uses.
unsafe impl GlobalAlloc for VmbaseHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.try_alloc(layout) {
            Ok(block) => block.as_ptr(),
            Err(error @ AllocError::BeforeInit(_)) => {
                crate::eprintln!("{error}");
                allocation_before_init()
            }
            // The caller (alloc's handle_alloc_error) panics next, which reboots.
            Err(error @ AllocError::Exhausted { .. }) => {
                crate::eprintln!("{error}");
                null_mut()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let (Some(heap), Some(block)) = (self.heap.lock().as_mut(), NonNull::new(ptr)) {
            // SAFETY: The caller promises ptr came from alloc with this layout.
            unsafe { heap.dealloc(block, layout) };
        }
    }
}

#[cfg(all(target_arch = "aarch64", not(test)))]
fn allocation_before_init() -> ! {
    crate::power::reboot()
}

#[cfg(not(all(target_arch = "aarch64", not(test))))]
fn allocation_before_init() -> ! {
    panic!("allocation before vmbase::heap::init")
}

/// Memory for [`configure_heap!`](crate::configure_heap), in `.bss`; hands itself out once.
pub struct StaticRegion<const SIZE: usize> {
    taken: AtomicBool,
    bytes: UnsafeCell<PageAligned<SIZE>>,
}

/// Page alignment lets the buddy allocator use every byte of the region.
#[repr(C, align(4096))]
struct PageAligned<const SIZE: usize>([u8; SIZE]);

// SAFETY: The bytes are only reachable through take(), which hands them out at most once.
unsafe impl<const SIZE: usize> Sync for StaticRegion<SIZE> {}

impl<const SIZE: usize> StaticRegion<SIZE> {
    /// An unused region.
    #[allow(
        clippy::new_without_default,
        reason = "only used to initialise statics"
    )]
    pub const fn new() -> Self {
        Self {
            taken: AtomicBool::new(false),
            bytes: UnsafeCell::new(PageAligned([0; SIZE])),
        }
    }

    /// The region, the first time; `None` after that.
    #[allow(clippy::mut_from_ref, reason = "the flag makes the &mut unique")]
    pub fn take(&'static self) -> Option<&'static mut [u8]> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: taken was false, so this is the only reference ever made to bytes.
        Some(unsafe { &mut (*self.bytes.get()).0 })
    }
}

/// Sets up the heap with a `.bss` region of `size` bytes. Evaluates to `Ok(())`, or an error if
/// the heap was already set up.
///
/// ```ignore
/// vmbase::configure_heap!(128 * 1024).unwrap();
/// ```
#[macro_export]
macro_rules! configure_heap {
    ($size:expr) => {{
        static REGION: $crate::heap::StaticRegion<{ $size }> = $crate::heap::StaticRegion::new();
        match REGION.take() {
            Some(region) => $crate::heap::init(region),
            None => Err($crate::heap::HeapError::AlreadyInitialised),
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_region_is_handed_out_once() {
        static REGION: StaticRegion<64> = StaticRegion::new();
        assert_eq!(REGION.take().map(|r| r.len()), Some(64));
        assert!(REGION.take().is_none());
    }

    #[test]
    fn allocates_from_the_region_and_reports_exhaustion() {
        let heap = VmbaseHeap {
            heap: SpinMutex::new(None),
        };
        let small = Layout::from_size_align(1024, 8).unwrap();
        assert_eq!(heap.try_alloc(small), Err(AllocError::BeforeInit(small)));
        assert_eq!(
            AllocError::BeforeInit(small).to_string(),
            "vmbase: allocation of 1024 bytes before the heap was initialised (vmbase::heap::init)"
        );

        static REGION: StaticRegion<4096> = StaticRegion::new();
        let region = REGION.take().unwrap();
        let mut inner = Heap::empty();
        // SAFETY: The region is exclusively ours.
        unsafe { inner.init(region.as_mut_ptr() as usize, region.len()) };
        *heap.heap.lock() = Some(inner);

        let block = heap.try_alloc(small).unwrap();
        let large = Layout::from_size_align(8192, 8).unwrap();
        let error = heap.try_alloc(large).unwrap_err();
        assert_eq!(
            error,
            AllocError::Exhausted {
                request: large,
                allocated: 1024,
                total: 4096
            }
        );
        assert_eq!(
            error.to_string(),
            "vmbase: heap exhausted: 8192 bytes (align 8) requested, 1024 of 4096 bytes in use"
        );
        // SAFETY: block came from this heap with this layout.
        unsafe { heap.dealloc(block.as_ptr(), small) };
        assert_eq!(heap.heap.lock().as_ref().unwrap().stats_alloc_actual(), 0);
    }
}
