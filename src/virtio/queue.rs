// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A split virtqueue (virtio 1.2, 2.7) that carries one request at a time.
//!
//! `virtio-drivers` 0.7 keeps its `VirtQueue` to itself, has no entropy driver, and its console
//! waits for the device without a bound: [`crate::virtio::rng::Rng`] and
//! [`crate::virtio::console::Console`] drive their queues through this one instead, and poll it
//! with their own bound. One request in flight is all they need, which keeps the queue simple:
//! its descriptor chain always starts at descriptor 0, and the token is 0.

use super::VirtioHal;
use core::marker::PhantomData;
use core::mem::{offset_of, size_of};
use core::ptr::{addr_of, addr_of_mut, NonNull};
use core::sync::atomic::{fence, Ordering};
use virtio_drivers::transport::Transport;
use virtio_drivers::{BufferDirection, Error, Hal, PhysAddr, Result, PAGE_SIZE};

/// Descriptors in the queue: the most buffers one request may have.
const QUEUE_SIZE: usize = 4;
/// The token of the request in flight: the head of its descriptor chain.
const TOKEN: u16 = 0;
/// Pages of DMA memory for the queue: the descriptors and the available ring in the first, the
/// used ring in the second (the legacy layout, which suits the modern interface as well).
const PAGES: usize = 2;

/// `VIRTQ_DESC_F_NEXT`: the chain goes on at `next`.
const DESC_NEXT: u16 = 1;
/// `VIRTQ_DESC_F_WRITE`: the device writes this buffer.
const DESC_WRITE: u16 = 2;
/// `VIRTQ_USED_F_NO_NOTIFY`: the device asks not to be notified.
const USED_NO_NOTIFY: u16 = 1;

// vmbase runs little-endian, as the rings are: their fields are stored as they are.

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Descriptor {
    address: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// What the driver writes: the descriptor table, then the available ring.
#[repr(C)]
struct DriverArea {
    descriptors: [Descriptor; QUEUE_SIZE],
    avail_flags: u16,
    avail_idx: u16,
    avail_ring: [u16; QUEUE_SIZE],
    used_event: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct UsedElement {
    id: u32,
    len: u32,
}

/// What the device writes: the used ring.
#[repr(C)]
struct DeviceArea {
    used_flags: u16,
    used_idx: u16,
    used_ring: [UsedElement; QUEUE_SIZE],
    avail_event: u16,
}

const _: () = assert!(size_of::<DriverArea>() <= PAGE_SIZE && size_of::<DeviceArea>() <= PAGE_SIZE);

/// The queue's DMA memory, shared with the device: every access is volatile.
struct Rings {
    driver: NonNull<DriverArea>,
    device: NonNull<DeviceArea>,
}

impl Rings {
    /// # Safety
    ///
    /// `base` points to [`PAGES`] zeroed, page-aligned pages that only this value and the device
    /// use until it is dropped.
    unsafe fn new(base: NonNull<u8>) -> Self {
        // SAFETY: The second page is within the PAGES the caller gave, so not null.
        let device = unsafe { NonNull::new_unchecked(base.as_ptr().add(PAGE_SIZE)) };
        Self {
            driver: base.cast(),
            device: device.cast(),
        }
    }

    fn set_descriptor(&mut self, index: usize, descriptor: Descriptor) {
        // SAFETY: The driver area is ours (Rings::new), aligned, and index is checked by the
        // array indexing inside addr_of_mut.
        unsafe {
            addr_of_mut!((*self.driver.as_ptr()).descriptors[index]).write_volatile(descriptor)
        }
    }

    /// Offers the chain at `head` to the device as available entry `idx`.
    fn publish(&mut self, idx: u16, head: u16) {
        let slot = usize::from(idx) % QUEUE_SIZE;
        let driver = self.driver.as_ptr();
        // SAFETY: As in set_descriptor.
        unsafe { addr_of_mut!((*driver).avail_ring[slot]).write_volatile(head) };
        // The descriptors and the ring entry must be visible before the index that offers them.
        fence(Ordering::SeqCst);
        // SAFETY: As in set_descriptor.
        unsafe { addr_of_mut!((*driver).avail_idx).write_volatile(idx.wrapping_add(1)) };
        fence(Ordering::SeqCst);
    }

    fn used_flags(&self) -> u16 {
        // SAFETY: The device area is ours (Rings::new) and aligned.
        unsafe { addr_of!((*self.device.as_ptr()).used_flags).read_volatile() }
    }

    fn used_idx(&self) -> u16 {
        // SAFETY: As in used_flags.
        unsafe { addr_of!((*self.device.as_ptr()).used_idx).read_volatile() }
    }

    fn used_element(&self, idx: u16) -> UsedElement {
        let slot = usize::from(idx) % QUEUE_SIZE;
        // SAFETY: As in used_flags; slot is below QUEUE_SIZE.
        unsafe { addr_of!((*self.device.as_ptr()).used_ring[slot]).read_volatile() }
    }
}

/// A virtqueue of four descriptors (a request has at most four buffers) with DMA through `H`
/// (by default [`VirtioHal`], which bounces every buffer through the DMA pool), one request at a
/// time. Its methods never wait: the driver polls [`RequestQueue::can_pop`] with its own bound.
pub struct RequestQueue<H: Hal = VirtioHal> {
    rings: Rings,
    /// The queue's memory, as `H::dma_alloc` returned it.
    physical: PhysAddr,
    base: NonNull<u8>,
    /// Where `H::share` put each buffer of the request in flight: what `unshare` is given,
    /// whatever the device writes to the descriptors meanwhile.
    shared: [PhysAddr; QUEUE_SIZE],
    /// The number of buffers of the request in flight, if there is one.
    in_flight: Option<usize>,
    avail_idx: u16,
    last_used_idx: u16,
    _hal: PhantomData<H>,
}

impl<H: Hal> RequestQueue<H> {
    /// Allocates queue `index` of the device behind `transport` and tells the device where it
    /// is.
    pub fn new<T: Transport>(transport: &mut T, index: u16) -> Result<Self> {
        if transport.queue_used(index) {
            return Err(Error::AlreadyUsed);
        }
        if transport.max_queue_size(index) < QUEUE_SIZE as u32 {
            return Err(Error::InvalidParam);
        }
        let (physical, base) = H::dma_alloc(PAGES, BufferDirection::Both);
        if physical == 0 {
            return Err(Error::DmaError);
        }
        // SAFETY: dma_alloc gave PAGES pages, ours until dma_dealloc (in Drop).
        unsafe { base.as_ptr().write_bytes(0, PAGES * PAGE_SIZE) };
        transport.queue_set(
            index,
            QUEUE_SIZE as u32,
            physical,
            physical + offset_of!(DriverArea, avail_flags),
            physical + PAGE_SIZE,
        );
        Ok(Self {
            // SAFETY: Zeroed, page-aligned, ours until Drop.
            rings: unsafe { Rings::new(base) },
            physical,
            base,
            shared: [0; QUEUE_SIZE],
            in_flight: None,
            avail_idx: 0,
            last_used_idx: 0,
            _hal: PhantomData,
        })
    }

    /// Offers the device a request: `inputs` for it to read, then `outputs` for it to write.
    /// Returns its token; fails with `Error::QueueFull` while a request is in flight.
    ///
    /// # Safety
    ///
    /// The buffers must stay valid, and not be used, until [`RequestQueue::pop_used`] is given
    /// them back; with a HAL that bounces buffers (such as [`VirtioHal`]) the device never
    /// touches them, so that is only what the HAL asks.
    pub unsafe fn add(&mut self, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<u16> {
        if self.in_flight.is_some() {
            return Err(Error::QueueFull);
        }
        let count = inputs.len() + outputs.len();
        let too_long = |len: usize| u32::try_from(len).is_err();
        if count == 0
            || count > QUEUE_SIZE
            || inputs.iter().any(|b| b.is_empty() || too_long(b.len()))
            || outputs.iter().any(|b| b.is_empty() || too_long(b.len()))
        {
            return Err(Error::InvalidParam);
        }
        for_each_buffer(inputs, outputs, |index, buffer, direction| {
            // SAFETY: The caller keeps the buffer valid until pop_used unshares it.
            let physical = unsafe { H::share(buffer, direction) };
            self.shared[index] = physical;
            let mut flags = 0;
            if index + 1 < count {
                flags |= DESC_NEXT;
            }
            if direction == BufferDirection::DeviceToDriver {
                flags |= DESC_WRITE;
            }
            self.rings.set_descriptor(
                index,
                Descriptor {
                    address: physical as u64,
                    len: buffer.len() as u32,
                    flags,
                    next: (index + 1) as u16,
                },
            );
        });
        self.in_flight = Some(count);
        self.rings.publish(self.avail_idx, TOKEN);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        Ok(TOKEN)
    }

    /// Whether the device wants to be notified of the request just added.
    pub fn should_notify(&self) -> bool {
        fence(Ordering::SeqCst);
        self.rings.used_flags() & USED_NO_NOTIFY == 0
    }

    /// Whether the device has answered a request.
    pub fn can_pop(&self) -> bool {
        fence(Ordering::SeqCst);
        self.rings.used_idx() != self.last_used_idx
    }

    /// Takes the device's answer to the request `token` and hands the buffers back (with a
    /// bouncing HAL, copying what the device wrote into `outputs`). Returns how many bytes the
    /// device says it wrote.
    ///
    /// # Safety
    ///
    /// `inputs` and `outputs` are the buffers [`RequestQueue::add`] was given for `token`.
    pub unsafe fn pop_used(
        &mut self,
        token: u16,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> Result<u32> {
        if !self.can_pop() {
            return Err(Error::NotReady);
        }
        let Some(count) = self.in_flight else {
            return Err(Error::WrongToken);
        };
        if count != inputs.len() + outputs.len() {
            return Err(Error::InvalidParam);
        }
        let used = self.rings.used_element(self.last_used_idx);
        if token != TOKEN || used.id != u32::from(TOKEN) {
            return Err(Error::WrongToken);
        }
        for_each_buffer(inputs, outputs, |index, buffer, direction| {
            // SAFETY: share returned this physical address for this buffer (the caller's
            // promise), and the device is done with it.
            unsafe { H::unshare(self.shared[index], buffer, direction) };
        });
        self.in_flight = None;
        self.last_used_idx = self.last_used_idx.wrapping_add(1);
        Ok(used.len)
    }
}

impl<H: Hal> Drop for RequestQueue<H> {
    fn drop(&mut self) {
        // SAFETY: What dma_alloc returned in new, for PAGES; the device has been told to drop
        // the queue (the drivers unset it first) or reset.
        unsafe { H::dma_dealloc(self.physical, self.base, PAGES) };
    }
}

// SAFETY: The queue's pointers lead to DMA memory owned by this value alone.
unsafe impl<H: Hal> Send for RequestQueue<H> {}

/// Calls `visit` with each of a request's buffers in descriptor order, the device-readable
/// `inputs` first, with its index and direction: the order [`RequestQueue::add`] shares them in
/// and `pop_used` unshares them in.
fn for_each_buffer(
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
    mut visit: impl FnMut(usize, NonNull<[u8]>, BufferDirection),
) {
    let readable = inputs
        .iter()
        .map(|buffer| (NonNull::from(*buffer), BufferDirection::DriverToDevice));
    let writable = outputs.iter_mut().map(|buffer| {
        (
            NonNull::from(&mut **buffer),
            BufferDirection::DeviceToDriver,
        )
    });
    for (index, (buffer, direction)) in readable.chain(writable).enumerate() {
        visit(index, buffer, direction);
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::transport::tests::StubbornDevice;
    use std::alloc::{alloc_zeroed, dealloc, Layout};
    use std::cell::RefCell;
    use std::vec::Vec;

    std::thread_local! {
        /// The addresses TestHal::unshare was given.
        static UNSHARED: RefCell<Vec<PhysAddr>> = const { RefCell::new(Vec::new()) };
    }

    /// Queue memory from the host's heap; buffers handed over as they are.
    struct TestHal;

    fn queue_layout(pages: usize) -> Layout {
        Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).unwrap()
    }

    // SAFETY: dma_alloc returns zeroed, page-aligned heap memory until dma_dealloc; share hands
    // out the buffer itself, which the tests' device only uses while the request is in flight.
    unsafe impl Hal for TestHal {
        fn dma_alloc(pages: usize, _: BufferDirection) -> (PhysAddr, NonNull<u8>) {
            // SAFETY: The layout is not empty.
            let memory = NonNull::new(unsafe { alloc_zeroed(queue_layout(pages)) }).unwrap();
            (memory.as_ptr() as PhysAddr, memory)
        }
        unsafe fn dma_dealloc(_: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
            // SAFETY: dma_alloc allocated it with this layout.
            unsafe { dealloc(vaddr.as_ptr(), queue_layout(pages)) };
            0
        }
        unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _: usize) -> NonNull<u8> {
            NonNull::new(paddr as *mut u8).unwrap()
        }
        unsafe fn share(buffer: NonNull<[u8]>, _: BufferDirection) -> PhysAddr {
            buffer.cast::<u8>().as_ptr() as PhysAddr
        }
        unsafe fn unshare(paddr: PhysAddr, _: NonNull<[u8]>, _: BufferDirection) {
            UNSHARED.with(|unshared| unshared.borrow_mut().push(paddr));
        }
    }

    /// The device's side of the queue the driver put at `queue`: it takes the available
    /// request, writes `answer` into its last buffer and puts `id` in the used ring.
    struct Device {
        queue: (u16, u32, PhysAddr, PhysAddr, PhysAddr),
    }

    impl Device {
        fn driver(&self) -> *mut DriverArea {
            self.queue.2 as *mut DriverArea
        }

        /// The chain offered last, as (address, len, flags) per descriptor.
        fn available(&self) -> Vec<(u64, u32, u16)> {
            let driver = self.driver();
            // SAFETY: The queue's memory, alive while the test's queue is.
            let idx = unsafe { addr_of!((*driver).avail_idx).read_volatile() };
            let slot = usize::from(idx.wrapping_sub(1)) % QUEUE_SIZE;
            // SAFETY: As above.
            let mut next = unsafe { addr_of!((*driver).avail_ring[slot]).read_volatile() };
            let mut chain = Vec::new();
            loop {
                // SAFETY: As above.
                let d = unsafe { addr_of!((*driver).descriptors[usize::from(next)]).read() };
                chain.push((d.address, d.len, d.flags));
                if d.flags & DESC_NEXT == 0 {
                    return chain;
                }
                next = d.next;
            }
        }

        fn answer(&self, id: u32, answer: &[u8]) {
            let (address, len, _) = *self.available().last().unwrap();
            assert!(answer.len() <= len as usize);
            let device = self.queue.4 as *mut DeviceArea;
            // SAFETY: The buffer was shared as it is (TestHal) and is in flight; the device
            // area is the queue's.
            unsafe {
                core::ptr::copy_nonoverlapping(answer.as_ptr(), address as *mut u8, answer.len());
                let idx = addr_of!((*device).used_idx).read_volatile();
                addr_of_mut!((*device).used_ring[usize::from(idx) % QUEUE_SIZE]).write(
                    UsedElement {
                        id,
                        len: answer.len() as u32,
                    },
                );
                addr_of_mut!((*device).used_idx).write_volatile(idx.wrapping_add(1));
            }
        }

        /// Points descriptor `index` elsewhere, as a hostile device could.
        fn rewrite_descriptor(&self, index: usize, address: u64) {
            // SAFETY: The queue's memory.
            unsafe { addr_of_mut!((*self.driver()).descriptors[index].address).write(address) };
        }
    }

    fn queue() -> (RequestQueue<TestHal>, Device) {
        let mut transport = StubbornDevice::default();
        let queue = RequestQueue::<TestHal>::new(&mut transport, 0).unwrap();
        let device = Device {
            queue: transport.queues[0],
        };
        (queue, device)
    }

    #[test]
    fn a_request_reaches_the_device_and_its_answer_comes_back() {
        let (mut queue, device) = queue();
        assert_eq!(device.queue.1, QUEUE_SIZE as u32);
        let request = *b"ping";
        let mut answer = [0u8; 8];
        // SAFETY: The buffers outlive the request, popped below.
        let token = unsafe { queue.add(&[&request], &mut [&mut answer]) }.unwrap();
        assert!(queue.should_notify());
        assert!(!queue.can_pop());
        let chain = device.available();
        assert_eq!(
            chain,
            [
                (request.as_ptr() as u64, 4, DESC_NEXT),
                (answer.as_ptr() as u64, 8, DESC_WRITE)
            ]
        );
        device.answer(u32::from(token), b"pong");
        assert!(queue.can_pop());
        // SAFETY: The buffers add got.
        let written = unsafe { queue.pop_used(token, &[&request], &mut [&mut answer]) };
        assert_eq!(written, Ok(4));
        assert_eq!(&answer[..4], b"pong");
        assert!(!queue.can_pop());
        // The queue takes the next request, published as the next available entry.
        // SAFETY: As above.
        let token = unsafe { queue.add(&[], &mut [&mut answer]) }.unwrap();
        device.answer(u32::from(token), b"again");
        // SAFETY: As above.
        let written = unsafe { queue.pop_used(token, &[], &mut [&mut answer]) };
        assert_eq!(written, Ok(5));
    }

    #[test]
    fn a_second_request_waits_for_the_first_answer() {
        let (mut queue, _device) = queue();
        let mut first = [0u8; 4];
        let mut second = [0u8; 4];
        // SAFETY: The buffers outlive the queue.
        unsafe {
            queue.add(&[], &mut [&mut first]).unwrap();
            assert_eq!(queue.add(&[], &mut [&mut second]), Err(Error::QueueFull));
        }
    }

    #[test]
    fn an_answer_to_another_request_is_refused() {
        let (mut queue, device) = queue();
        let mut buffer = [0u8; 4];
        // SAFETY: The buffer outlives the queue.
        let token = unsafe { queue.add(&[], &mut [&mut buffer]) }.unwrap();
        device.answer(u32::from(token) + 1, b"x");
        // SAFETY: The buffer add got.
        let popped = unsafe { queue.pop_used(token, &[], &mut [&mut buffer]) };
        assert_eq!(popped, Err(Error::WrongToken));
    }

    #[test]
    fn buffers_are_handed_back_where_they_were_shared_whatever_the_device_rewrote() {
        let (mut queue, device) = queue();
        let mut buffer = [0u8; 4];
        // SAFETY: The buffer outlives the request.
        let token = unsafe { queue.add(&[], &mut [&mut buffer]) }.unwrap();
        device.answer(u32::from(token), b"x");
        device.rewrite_descriptor(0, 0xdead_0000);
        UNSHARED.with(|unshared| unshared.borrow_mut().clear());
        // SAFETY: The buffer add got.
        unsafe { queue.pop_used(token, &[], &mut [&mut buffer]) }.unwrap();
        let unshared = UNSHARED.with(|unshared| unshared.take());
        assert_eq!(unshared, [buffer.as_ptr() as PhysAddr]);
    }

    #[test]
    fn requests_the_queue_cannot_carry_are_refused() {
        let (mut queue, _device) = queue();
        let mut buffers = [[0u8; 1]; QUEUE_SIZE + 1];
        let mut too_many: Vec<&mut [u8]> = buffers.iter_mut().map(|b| &mut b[..]).collect();
        // SAFETY: Nothing is queued.
        unsafe {
            assert_eq!(queue.add(&[], &mut too_many), Err(Error::InvalidParam));
            assert_eq!(queue.add(&[], &mut []), Err(Error::InvalidParam));
            assert_eq!(queue.add(&[&[]], &mut []), Err(Error::InvalidParam));
        }
    }
}
