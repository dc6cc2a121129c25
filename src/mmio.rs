// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Typed access to a device's memory-mapped registers.
//!
//! A [`RegisterBlock`] owns the registers of one device, described by a type `R` that has the
//! size and alignment of the whole register bank (its contents are never read as an `R`). Each
//! register is a [`Register`] constant: its offset in `R`, its integer type and whether it is
//! read or written. [`Register::at`] checks that the register lies inside the bank and is
//! aligned, so once [`RegisterBlock::new`]'s caller has vouched for the bank, every access
//! through the block is sound.
//!
//! ```
//! use vmbase::mmio::{ReadOnly, Register, RegisterBlock, WriteOnly};
//!
//! #[repr(C, align(4))]
//! struct Timer([u8; 16]);
//!
//! const COUNT: Register<Timer, u32, ReadOnly> = Register::at(0x0);
//! const RELOAD: Register<Timer, u32, WriteOnly> = Register::at(0x8);
//!
//! fn restart(timer: &mut RegisterBlock<'_, Timer>) -> u32 {
//!     let left = timer.read(COUNT);
//!     timer.write(RELOAD, 1000);
//!     left
//! }
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::NonNull;

/// The registers of one device, which this owns for `'a`.
pub struct RegisterBlock<'a, R> {
    base: NonNull<R>,
    registers: PhantomData<&'a mut R>,
}

impl<'a, R> RegisterBlock<'a, R> {
    /// Takes ownership of the register bank at `base`.
    ///
    /// # Safety
    ///
    /// For `'a`, `base` must be aligned for `R`, the `size_of::<R>()` bytes from it must be
    /// either the registers of the device `R` describes, mapped as device memory, or ordinary
    /// memory that holds an integer at every offset (a stand-in bank for tests), and nothing else
    /// may access them. Every [`Register`] of `R` must be one the device has, with that access.
    pub unsafe fn new(base: NonNull<R>) -> Self {
        Self {
            base,
            registers: PhantomData,
        }
    }

    /// Reads `register`.
    pub fn read<T: RegisterValue>(&self, register: Register<R, T, ReadOnly>) -> T {
        // SAFETY: Register::at checked that the register lies inside R and is aligned for T, and
        // new's caller promised that the bank is this device's registers (or memory standing in
        // for them), aligned for R, which this block alone accesses.
        unsafe { T::read(self.address_of(&register)) }
    }

    /// Writes `value` to `register`.
    pub fn write<T: RegisterValue>(&mut self, register: Register<R, T, WriteOnly>, value: T) {
        // SAFETY: As in read; `&mut self` makes this the only access in progress.
        unsafe { T::write(self.address_of(&register), value) }
    }

    fn address_of<T, A>(&self, register: &Register<R, T, A>) -> *mut T {
        // Not pointer::add: wrapping_add keeps this safe, and the offset is inside R anyway.
        self.base
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(register.offset)
            .cast()
    }
}

impl<R> fmt::Debug for RegisterBlock<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegisterBlock({:p})", self.base)
    }
}

/// A register of type `T` in the register bank `R`, with access `A` ([`ReadOnly`] or
/// [`WriteOnly`]).
pub struct Register<R, T, A> {
    offset: usize,
    types: PhantomData<(R, T, A)>,
}

impl<R, T: RegisterValue, A> Register<R, T, A> {
    /// The register at byte `offset` of `R`.
    ///
    /// # Panics
    ///
    /// If the register would not lie wholly inside `R`, or would not be aligned for `T` in an `R`
    /// (when the register is a constant, this stops the build).
    pub const fn at(offset: usize) -> Self {
        assert!(
            size_of::<T>() <= size_of::<R>() && offset <= size_of::<R>() - size_of::<T>(),
            "the register is outside its register bank"
        );
        // Alignments are powers of two.
        assert!(
            offset & (align_of::<T>() - 1) == 0 && align_of::<T>() <= align_of::<R>(),
            "the register is misaligned"
        );
        Self {
            offset,
            types: PhantomData,
        }
    }
}

/// Access of a register that is read but never written.
#[derive(Debug)]
pub enum ReadOnly {}

/// Access of a register that is written but never read (reading it may have an effect, such as
/// taking a received byte).
#[derive(Debug)]
pub enum WriteOnly {}

/// A register's type: an integer whose width is the access width.
pub trait RegisterValue: access::SingleAccess {}

impl RegisterValue for u8 {}
impl RegisterValue for u32 {}

/// How a register is read or written: in one instruction of its width, which a hypervisor can
/// emulate (an aarch64 load or store without writeback, so the fault syndrome describes it).
mod access {
    /// # Safety
    ///
    /// Callers of both functions: `address` must be valid for a read (or write) of `Self`, and
    /// aligned for it.
    pub trait SingleAccess: Copy {
        unsafe fn read(address: *const Self) -> Self;
        unsafe fn write(address: *mut Self, value: Self);
    }

    /// Implements [`SingleAccess`] for an integer type with aarch64 `load` and `store`
    /// instructions on a W register; elsewhere (host tests) with volatile accesses.
    macro_rules! single_access {
        ($type:ty, $load:literal, $store:literal) => {
            impl SingleAccess for $type {
                #[inline(always)]
                unsafe fn read(address: *const Self) -> Self {
                    #[cfg(target_arch = "aarch64")]
                    {
                        let value: u32;
                        // SAFETY: The caller promises that address is valid for this read and
                        // aligned; the instruction reads only there, and the zero-extended
                        // result fits the type.
                        unsafe {
                            core::arch::asm!(
                                concat!($load, " {value:w}, [{address}]"),
                                address = in(reg) address,
                                value = out(reg) value,
                                options(nostack, preserves_flags),
                            );
                        }
                        value as $type
                    }
                    #[cfg(not(target_arch = "aarch64"))]
                    // SAFETY: The caller promises that address is valid for this read and aligned.
                    unsafe {
                        address.read_volatile()
                    }
                }

                #[inline(always)]
                unsafe fn write(address: *mut Self, value: Self) {
                    #[cfg(target_arch = "aarch64")]
                    // SAFETY: The caller promises that address is valid for this write and
                    // aligned; the instruction writes only the type's width there.
                    unsafe {
                        core::arch::asm!(
                            concat!($store, " {value:w}, [{address}]"),
                            address = in(reg) address,
                            value = in(reg) u32::from(value),
                            options(nostack, preserves_flags),
                        );
                    }
                    #[cfg(not(target_arch = "aarch64"))]
                    // SAFETY: The caller promises that address is valid for this write and
                    // aligned.
                    unsafe {
                        address.write_volatile(value)
                    }
                }
            }
        };
    }

    single_access!(u8, "ldrb", "strb");
    single_access!(u32, "ldr", "str");
}

#[cfg(test)]
impl<'a, R> RegisterBlock<'a, R> {
    /// A register block over `bank`, ordinary memory standing in for a device in host tests.
    pub(crate) fn fake<W: RegisterValue>(bank: &'a mut [W]) -> Self {
        assert!(
            core::mem::size_of_val(bank) >= size_of::<R>(),
            "bank too small"
        );
        assert_eq!(
            bank.as_ptr() as usize & (align_of::<R>() - 1),
            0,
            "bank misaligned"
        );
        // SAFETY: The bank is ordinary memory of integers, as large as R and aligned for it,
        // borrowed mutably for 'a.
        unsafe { Self::new(NonNull::from(bank).cast()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four 32-bit registers.
    type Bank = [u32; 4];

    const WORD: Register<Bank, u32, ReadOnly> = Register::at(8);
    const LAST_BYTE: Register<Bank, u8, WriteOnly> = Register::at(15);

    #[test]
    fn accesses_reach_the_register_offset() {
        let mut memory = [0u32, 0, 0x1234_5678, 0];
        {
            let mut block = RegisterBlock::<Bank>::fake(&mut memory);
            assert_eq!(block.read(WORD), 0x1234_5678);
            block.write(LAST_BYTE, 0xab);
        }
        assert_eq!(
            memory,
            [0, 0, 0x1234_5678, u32::from_ne_bytes([0, 0, 0, 0xab])]
        );
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn register_past_the_end_is_refused() {
        Register::<Bank, u32, ReadOnly>::at(13);
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn register_wider_than_the_bank_is_refused() {
        Register::<u8, u32, ReadOnly>::at(0);
    }

    #[test]
    #[should_panic(expected = "misaligned")]
    fn misaligned_register_is_refused() {
        Register::<Bank, u32, ReadOnly>::at(2);
    }

    #[test]
    #[should_panic(expected = "misaligned")]
    fn register_more_aligned_than_the_bank_is_refused() {
        Register::<[u8; 8], u32, ReadOnly>::at(4);
    }
}
