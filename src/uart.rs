// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Transmit-only drivers, whose waits are bounded, for the two UARTs a VM console may be: the
//! 8250/16550 that crosvm emulates and the Arm PL011 of QEMU's `virt` machine.

use crate::mmio::{ReadOnly, Register, RegisterBlock, WriteOnly};
use core::fmt;

/// The 16550 register bank: eight byte-wide registers, of which only THR is used (IER, IIR/FCR,
/// LCR, MCR, LSR, MSR and SCR are left as the VMM set them).
#[derive(Debug)]
#[repr(C)]
pub struct Ns16550Registers {
    _registers: [u8; 8],
}

/// Size in bytes of the 16550 register bank.
pub const REGISTERS_SIZE: usize = core::mem::size_of::<Ns16550Registers>();

/// THR, the transmit holding register (with LCR.DLAB = 0).
const NS16550_THR: Register<Ns16550Registers, u8, WriteOnly> = Register::at(0x0);

/// A 16550 UART, used for output only.
///
/// Bytes are written without polling the line status: crosvm's emulated UART accepts every byte,
/// and not polling means a missing device can never hang the console.
#[derive(Debug)]
pub struct Ns16550<'a> {
    registers: RegisterBlock<'a, Ns16550Registers>,
}

impl<'a> Ns16550<'a> {
    /// Wraps the UART whose registers `registers` owns.
    pub fn new(registers: RegisterBlock<'a, Ns16550Registers>) -> Self {
        Self { registers }
    }

    /// Sends one byte.
    pub fn write_byte(&mut self, byte: u8) {
        self.registers.write(NS16550_THR, byte);
    }
}

impl fmt::Write for Ns16550<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            self.write_byte(byte);
        }
        Ok(())
    }
}

/// The PL011 register bank: 4 KiB of 32-bit registers, of which only UARTDR and UARTFR are used.
#[derive(Debug)]
#[repr(C)]
pub struct Pl011Registers {
    _registers: [u32; 0x400],
}

/// UARTDR, the data register: a write queues a byte for transmission (a read would take a
/// received byte).
const PL011_DR: Register<Pl011Registers, u32, WriteOnly> = Register::at(0x0);
/// UARTFR, the flag register.
const PL011_FR: Register<Pl011Registers, u32, ReadOnly> = Register::at(0x18);
/// UARTFR.TXFF: the transmit FIFO is full.
const PL011_FR_TXFF: u32 = 1 << 5;

/// Reads of a PL011's flag register that find the transmit FIFO full, for one byte, before
/// [`Pl011::write_bytes`] gives up on the device. A working PL011 drains a byte in well under
/// that (one byte time is 87 µs at 115200 baud; a device register read takes at least tens of
/// ns), while something that is not a PL011 may report "full" forever.
pub const PL011_MAX_POLLS: u32 = 1 << 16;

/// The device never made room for a byte: it is not a working UART.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct DeviceStuck;

/// An Arm PL011 UART, used for output only, as the VMM set it up.
#[derive(Debug)]
pub struct Pl011<'a> {
    registers: RegisterBlock<'a, Pl011Registers>,
}

impl<'a> Pl011<'a> {
    /// Wraps the UART whose registers `registers` owns.
    pub fn new(registers: RegisterBlock<'a, Pl011Registers>) -> Self {
        Self { registers }
    }

    fn is_tx_fifo_full(&self) -> bool {
        self.registers.read(PL011_FR) & PL011_FR_TXFF != 0
    }

    /// Sends `bytes`, waiting for room in the transmit FIFO at most [`PL011_MAX_POLLS`] times
    /// for each byte.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), DeviceStuck> {
        for &byte in bytes {
            // The first poll apart: when there is room, as there nearly always is, a byte costs
            // one flag read, one test and one store, with no poll counter set up for it.
            if self.is_tx_fifo_full() && !(1..PL011_MAX_POLLS).any(|_| !self.is_tx_fifo_full()) {
                return Err(DeviceStuck);
            }
            self.registers.write(PL011_DR, u32::from(byte));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn register_bank_sizes() {
        assert_eq!(REGISTERS_SIZE, 8);
        assert_eq!(core::mem::size_of::<Pl011Registers>(), 0x1000);
    }

    #[test]
    fn bytes_go_to_the_transmit_register() {
        let mut bank = [0u8; 8];
        let mut uart = Ns16550::new(RegisterBlock::fake(&mut bank));
        write!(uart, "hi").unwrap();
        assert_eq!(bank, [b'i', 0, 0, 0, 0, 0, 0, 0]);
    }

    /// A PL011 register bank in ordinary memory, with the flag register (UARTFR, offset 0x18) set
    /// to `flags`.
    fn fake_pl011(flags: u32) -> Vec<u32> {
        let mut bank = vec![0; core::mem::size_of::<Pl011Registers>() / 4];
        bank[0x18 / 4] = flags;
        bank
    }

    fn pl011(bank: &mut [u32]) -> Pl011<'_> {
        Pl011::new(RegisterBlock::fake(bank))
    }

    const TXFF: u32 = 1 << 5;

    #[test]
    fn pl011_with_room_takes_every_byte() {
        let mut bank = fake_pl011(0);
        assert_eq!(pl011(&mut bank).write_bytes(b"hi"), Ok(()));
        assert_eq!(bank[0], u32::from(b'i'));
    }

    /// BUSY (bit 3) set, as while the UART shifts bytes out, is no reason to wait: only a full
    /// FIFO is.
    #[test]
    fn pl011_busy_with_room_takes_every_byte() {
        let mut bank = fake_pl011(1 << 3);
        assert_eq!(pl011(&mut bank).write_bytes(b"hi"), Ok(()));
        assert_eq!(bank[0], u32::from(b'i'));
    }

    #[test]
    fn pl011_that_never_drains_is_given_up() {
        let mut bank = fake_pl011(TXFF);
        assert_eq!(pl011(&mut bank).write_bytes(b"hi"), Err(DeviceStuck));
        assert_eq!(bank[0], 0, "nothing written to UARTDR");
    }

    /// A device that is not a PL011 (`0x09ff_ffe8` on QEMU virt puts UARTFR on a virtio-mmio
    /// magic value, "virt") has TXFF set for good.
    #[test]
    fn virtio_magic_as_flags_is_given_up() {
        let mut bank = fake_pl011(u32::from_le_bytes(*b"virt"));
        assert_ne!(bank[0x18 / 4] & TXFF, 0);
        assert_eq!(pl011(&mut bank).write_bytes(b"x"), Err(DeviceStuck));
    }
}
