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
    /// The binary's heap region, defined by [`configure_heap!`](crate::configure_heap).
    fn vmbase_heap_region() -> HeapRegion;
}

/// The heap region of a binary without [`configure_heap!`](crate::configure_heap):
/// [`DEFAULT_HEAP_SIZE`] bytes. sections.ld links `vmbase_heap_region` to it only when the
/// binary defines no `vmbase_heap_region` of its own; otherwise `--gc-sections` drops it and its
/// region.
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
#[no_mangle]
fn vmbase_default_heap_region() -> HeapRegion {
    static MEMORY: HeapMemory<DEFAULT_HEAP_SIZE> = HeapMemory::new();
    MEMORY.region()
}

/// Gives the region of the binary's [`configure_heap!`](crate::configure_heap) to the global
/// allocator. Called by `rust_entry`, before anything allocates.
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
pub(crate) fn init() {
    // SAFETY: configure_heap! defines `vmbase_heap_region` as a safe Rust function with this
    // signature; without it, sections.ld makes the symbol vmbase_default_heap_region, which has
    // it too.
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
    /// Hands `region` to the allocator, unless it has one already.
    #[cfg(any(test, all(target_arch = "aarch64", not(target_os = "linux"))))]
    fn init(&self, region: HeapRegion) {
        let mut state = self.heap.lock();
        if state.ready {
            return;
        }
        // SAFETY: Only this function makes a reference to a HeapRegion's bytes, and only for
        // the allocator that has no region yet, which then keeps it; HEAP is the only allocator
        // outside unit tests (each of which has its own region), so no other reference to these
        // bytes exists or will.
        let bytes = unsafe { &mut *region.0.get() };
        // SAFETY: bytes are exclusively the allocator's for the rest of the program.
        unsafe { state.heap.init(bytes.as_mut_ptr() as usize, bytes.len()) };
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

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: The caller's promises about `layout` are the ones alloc needs.
        let block = unsafe { self.alloc(layout) };
        if !block.is_null() {
            // SAFETY: alloc returned `layout.size()` bytes at `block`, the caller's alone.
            unsafe { zero(block, layout.size()) };
        }
        block
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let (Some(heap), Some(block)) = (self.heap.lock().ready(), NonNull::new(ptr)) {
            // buddy_system_allocator 0.10's dealloc is a safe fn that trusts its caller: the
            // caller's promise (ptr came from alloc with this layout) is what makes this right.
            heap.dealloc(block, layout);
        }
    }
}

/// Bytes [`zero`] clears per iteration of its fast loop.
#[cfg(target_arch = "aarch64")]
const ZERO_CHUNK: usize = 128;

/// Zeroes `size` bytes at `block`. Page tables are the large zeroed allocations (aarch64-paging
/// asks for each one zeroed): a 4 KiB table costs about 200 instructions here against about
/// 1,550 through `memset`, which stores 8 bytes at a time.
///
/// # Safety
///
/// `block` must be valid for writes of `size` bytes.
unsafe fn zero(block: *mut u8, size: usize) {
    #[cfg(target_arch = "aarch64")]
    if block as usize % 16 == 0 && size % ZERO_CHUNK == 0 && size > 0 {
        // SAFETY: The loop writes exactly `size` bytes from `block`, which the caller promises
        // are writable; it uses only the registers it names.
        unsafe {
            core::arch::asm!(
                "movi v0.2d, #0",
                "movi v1.2d, #0",
                // Four 32-byte stores per iteration: ZERO_CHUNK bytes.
                "2:",
                "stp q0, q1, [{cursor}]",
                "stp q0, q1, [{cursor}, #32]",
                "stp q0, q1, [{cursor}, #64]",
                "stp q0, q1, [{cursor}, #96]",
                "add {cursor}, {cursor}, {chunk}",
                "subs {left}, {left}, {chunk}",
                "b.ne 2b",
                cursor = inout(reg) block => _,
                left = inout(reg) size => _,
                out("v0") _,
                out("v1") _,
                chunk = in(reg) ZERO_CHUNK,
                options(nostack),
            );
        }
        return;
    }
    // SAFETY: The caller promises `size` writable bytes at `block`.
    unsafe { block.write_bytes(0, size) };
}

#[cfg(all(target_arch = "aarch64", not(target_os = "linux"), not(test)))]
fn allocation_before_init() -> ! {
    crate::power::reboot()
}

#[cfg(not(all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
fn allocation_before_init() -> ! {
    panic!("allocation before vmbase set up the heap")
}

/// [`configure_heap!`](crate::configure_heap)'s memory: zeroed `.bss`, page aligned so the
/// buddy allocator can hand out large aligned blocks. Nothing outside this module can reach its
/// bytes.
#[doc(hidden)]
#[repr(C, align(4096))]
pub struct HeapMemory<const SIZE: usize>(UnsafeCell<[u8; SIZE]>);

// SAFETY: Only VmbaseHeap::init reaches the bytes (through a HeapRegion), once.
unsafe impl<const SIZE: usize> Sync for HeapMemory<SIZE> {}

impl<const SIZE: usize> HeapMemory<SIZE> {
    /// Zeroed memory.
    // Only used to initialise statics.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; SIZE]))
    }

    /// The memory, as what `vmbase_heap_region` returns.
    pub fn region(&'static self) -> HeapRegion {
        HeapRegion(&self.0)
    }
}

/// What `vmbase_heap_region` (defined by [`configure_heap!`](crate::configure_heap)) hands
/// vmbase: the heap's memory, which only the global allocator can reach.
#[doc(hidden)]
pub struct HeapRegion(
    // Host builds have no global allocator to set up.
    #[cfg_attr(
        not(any(test, all(target_arch = "aarch64", not(target_os = "linux")))),
        allow(dead_code)
    )]
    &'static UnsafeCell<[u8]>,
);

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
        /// Called by vmbase's `rust_entry`, before `main`.
        #[export_name = "vmbase_heap_region"]
        fn __vmbase_heap_region() -> $crate::heap::HeapRegion {
            static MEMORY: $crate::heap::HeapMemory<{ $size }> = $crate::heap::HeapMemory::new();
            MEMORY.region()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_memory_is_page_aligned_and_no_larger_than_asked() {
        static MEMORY: HeapMemory<8192> = HeapMemory::new();
        assert_eq!(core::mem::size_of_val(&MEMORY), 8192);
        let region = MEMORY.region();
        assert_eq!(core::ptr::NonNull::new(region.0.get()).unwrap().len(), 8192);
        assert_eq!(region.0.get().cast::<u8>() as usize % 4096, 0);
    }

    #[test]
    fn alloc_zeroed_zeroes_a_reused_block() {
        let heap = VmbaseHeap {
            heap: SpinMutex::new(HeapState::new()),
        };
        static MEMORY: HeapMemory<8192> = HeapMemory::new();
        heap.init(MEMORY.region());
        for layout in [
            Layout::from_size_align(4096, 4096).unwrap(),
            Layout::from_size_align(100, 8).unwrap(),
        ] {
            // SAFETY: The layouts are non-zero in size; each block is written within its size
            // and freed with its layout.
            unsafe {
                let dirty = heap.alloc(layout);
                dirty.write_bytes(0xa5, layout.size());
                heap.dealloc(dirty, layout);
                let block = heap.alloc_zeroed(layout);
                assert_eq!(block, dirty, "the test needs the dirty block back");
                let bytes = core::slice::from_raw_parts(block, layout.size());
                assert!(bytes.iter().all(|&byte| byte == 0));
                heap.dealloc(block, layout);
            }
        }
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

        static MEMORY: HeapMemory<4096> = HeapMemory::new();
        heap.init(MEMORY.region());

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

    #[test]
    fn a_heap_keeps_its_first_region() {
        let heap = VmbaseHeap {
            heap: SpinMutex::new(HeapState::new()),
        };
        static FIRST: HeapMemory<4096> = HeapMemory::new();
        static SECOND: HeapMemory<8192> = HeapMemory::new();
        heap.init(FIRST.region());
        heap.init(SECOND.region());
        assert_eq!(usage_of(&heap), Some((0, 4096)));
    }

    fn usage_of(heap: &VmbaseHeap) -> Option<(usize, usize)> {
        heap.heap
            .lock()
            .ready()
            .map(|heap| (heap.stats_alloc_actual(), heap.stats_total_bytes()))
    }
}
