// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The global heap: a buddy allocator over the `.bss` region the binary sets aside with
//! [`configure_heap!`](crate::configure_heap), ready before `main` (as in AOSP's libvmbase).
//! A binary without `configure_heap!` gets [`DEFAULT_HEAP_SIZE`] bytes.
//!
//! vmbase sets the heap up first thing in `rust_entry`; an allocation before that (only vmbase's
//! own early code could make one) is reported and reboots. When the heap is exhausted, the failed
//! request is reported and `alloc` panics as usual, which also reboots.

use buddy_system_allocator::Heap;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::{null_mut, NonNull};
use spin::mutex::SpinMutex;

/// Block orders of the buddy allocator: blocks up to 2^31 bytes.
const ORDER: usize = 32;

/// The allocator behind `alloc` in vmbase binaries.
pub struct VmbaseHeap {
    heap: SpinMutex<HeapState>,
}

/// The allocator, set up in place: it is a few hundred bytes, which building it elsewhere and
/// moving it into the static would cost a copy of at every boot.
struct HeapState {
    heap: Heap<ORDER>,
    /// Whether `init` gave the allocator its region.
    ready: bool,
}

impl HeapState {
    const fn new() -> Self {
        Self {
            heap: Heap::empty(),
            ready: false,
        }
    }

    /// The allocator, once it has its region.
    fn ready(&mut self) -> Option<&mut Heap<ORDER>> {
        self.ready.then_some(&mut self.heap)
    }
}

#[cfg_attr(
    all(target_arch = "aarch64", not(target_os = "linux"), not(test)),
    global_allocator
)]
static HEAP: VmbaseHeap = VmbaseHeap {
    heap: SpinMutex::new(HeapState::new()),
};

/// The heap of a binary that has no [`configure_heap!`](crate::configure_heap): 256 KiB of
/// `.bss`, as much as the template's. `configure_heap!(SIZE)` replaces it (it is then not linked
/// in at all).
pub const DEFAULT_HEAP_SIZE: usize = 64 * 4096;

#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
extern "Rust" {
    /// The binary's heap region, defined by [`configure_heap!`](crate::configure_heap); to be
    /// called at most once. Without `configure_heap!`, sections.ld makes this symbol
    /// `vmbase_default_heap_region` (`PROVIDE`).
    fn vmbase_heap_region() -> &'static mut [u8];
}

/// The heap region of a binary without [`configure_heap!`](crate::configure_heap):
/// [`DEFAULT_HEAP_SIZE`] bytes. sections.ld links `vmbase_heap_region` to it only when the
/// binary defines no `vmbase_heap_region` of its own; otherwise `--gc-sections` drops it and its
/// region.
///
/// # Safety
///
/// Call it at most once.
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
#[unsafe(no_mangle)]
unsafe fn vmbase_default_heap_region() -> &'static mut [u8] {
    static REGION: StaticRegion<DEFAULT_HEAP_SIZE> = StaticRegion::new();
    // SAFETY: The caller promises to call this function at most once.
    unsafe { REGION.take() }
}

/// Gives the region of the binary's [`configure_heap!`](crate::configure_heap) to the global
/// allocator. Called by `rust_entry`, before anything allocates.
///
/// # Safety
///
/// Call it at most once.
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
pub(crate) unsafe fn init() {
    // SAFETY: configure_heap! (or vmbase_default_heap_region, which sections.ld provides in its
    // place) defines the function with this signature, and the caller promises that this is its
    // only call.
    HEAP.init(unsafe { vmbase_heap_region() });
}

/// Heap usage: (bytes allocated, bytes managed), or `None` before vmbase set the heap up.
pub fn usage() -> Option<(usize, usize)> {
    HEAP.heap
        .lock()
        .ready()
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
                "vmbase: allocation of {} bytes before vmbase set up the heap",
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
    /// Hands `region` to the allocator, which must not have one yet.
    #[cfg(any(test, all(target_arch = "aarch64", not(target_os = "linux"))))]
    fn init(&self, region: &'static mut [u8]) {
        let mut state = self.heap.lock();
        debug_assert!(!state.ready, "the heap is set up once");
        // SAFETY: region is exclusively ours for the rest of the program ('static and &mut).
        unsafe { state.heap.init(region.as_mut_ptr() as usize, region.len()) };
        state.ready = true;
    }

    fn try_alloc(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let mut heap = self.heap.lock();
        let heap = heap.ready().ok_or(AllocError::BeforeInit(layout))?;
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
        if let (Some(heap), Some(block)) = (self.heap.lock().ready(), NonNull::new(ptr)) {
            // SAFETY: The caller promises ptr came from alloc with this layout.
            unsafe { heap.dealloc(block, layout) };
        }
    }
}

#[cfg(all(target_arch = "aarch64", not(target_os = "linux"), not(test)))]
fn allocation_before_init() -> ! {
    crate::power::reboot()
}

#[cfg(not(all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
fn allocation_before_init() -> ! {
    panic!("allocation before vmbase set up the heap")
}

/// Memory for [`configure_heap!`](crate::configure_heap), in `.bss`, page aligned so the
/// buddy allocator can hand out large aligned blocks. Only used through the macro.
#[repr(C, align(4096))]
pub struct StaticRegion<const SIZE: usize>(UnsafeCell<[u8; SIZE]>);

// SAFETY: The bytes are only reachable through take(), whose caller promises to call it once.
unsafe impl<const SIZE: usize> Sync for StaticRegion<SIZE> {}

impl<const SIZE: usize> StaticRegion<SIZE> {
    /// Zeroed memory.
    #[allow(
        clippy::new_without_default,
        reason = "only used to initialise statics"
    )]
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; SIZE]))
    }

    /// The region.
    ///
    /// # Safety
    ///
    /// Call it at most once: the reference is the only one to the bytes.
    #[allow(clippy::mut_from_ref, reason = "the caller makes the &mut unique")]
    pub unsafe fn take(&'static self) -> &'static mut [u8] {
        // SAFETY: The caller promises that this is the only reference ever made to the bytes.
        unsafe { &mut *self.0.get() }
    }
}

/// Sets aside `size` bytes of `.bss` for the global allocator, which vmbase sets up before it
/// calls `main` (AOSP libvmbase's `configure_heap!`). An item: write it at most once, at module
/// level; a binary without it gets [`DEFAULT_HEAP_SIZE`] bytes. Two of them fail to link
/// (`vmbase_heap_region` defined twice).
///
/// ```
/// vmbase::configure_heap!(64 * 4096);
/// ```
#[macro_export]
macro_rules! configure_heap {
    ($size:expr) => {
        /// Called once, by vmbase's `rust_entry`, before `main`.
        ///
        /// # Safety
        ///
        /// Call it at most once.
        #[unsafe(export_name = "vmbase_heap_region")]
        unsafe fn __vmbase_heap_region() -> &'static mut [u8] {
            static REGION: $crate::heap::StaticRegion<{ $size }> =
                $crate::heap::StaticRegion::new();
            // SAFETY: The caller promises to call this function at most once.
            unsafe { REGION.take() }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_region_is_page_aligned_and_no_larger_than_asked() {
        static REGION: StaticRegion<8192> = StaticRegion::new();
        assert_eq!(core::mem::size_of_val(&REGION), 8192);
        // SAFETY: The only call.
        let region = unsafe { REGION.take() };
        assert_eq!(region.len(), 8192);
        assert_eq!(region.as_ptr().addr() % 4096, 0);
    }

    #[test]
    fn allocates_from_the_region_and_reports_exhaustion() {
        let heap = VmbaseHeap {
            heap: SpinMutex::new(HeapState::new()),
        };
        let small = Layout::from_size_align(1024, 8).unwrap();
        assert_eq!(heap.try_alloc(small), Err(AllocError::BeforeInit(small)));
        assert_eq!(
            AllocError::BeforeInit(small).to_string(),
            "vmbase: allocation of 1024 bytes before vmbase set up the heap"
        );

        static REGION: StaticRegion<4096> = StaticRegion::new();
        // SAFETY: The only call.
        heap.init(unsafe { REGION.take() });

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
        assert_eq!(heap.heap.lock().ready().unwrap().stats_alloc_actual(), 0);
    }
}
