// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Transmit-only UART drivers whose waits are bounded: a minimal one for the 8250/16550 UART that
//! crosvm emulates, and a bounded write for the PL011 driver of the `arm-pl011-uart` crate (whose
//! own `write_str` waits for room in the FIFO forever).

use core::fmt;
use safe_mmio::fields::WriteOnly;
use safe_mmio::{field, UniqueMmioPointer};

/// The 16550 register bank: eight byte-wide registers, of which only THR is used.
#[derive(Debug)]
#[repr(C)]
pub struct Ns16550Registers {
    /// 0x0: transmit holding register (with LCR.DLAB = 0).
    thr: WriteOnly<u8>,
    /// 0x1-0x7: IER, IIR/FCR, LCR, MCR, LSR, MSR, SCR; left as the VMM set them.
    _reserved: [u8; 7],
}

/// Size in bytes of the register bank.
pub const REGISTERS_SIZE: usize = core::mem::size_of::<Ns16550Registers>();

/// A 16550 UART, used for output only.
///
/// Bytes are written without polling the line status: crosvm's emulated UART accepts every byte,
/// and not polling means a missing device can never hang the console.
#[derive(Debug)]
pub struct Ns16550<'a> {
    registers: UniqueMmioPointer<'a, Ns16550Registers>,
}

impl<'a> Ns16550<'a> {
    /// Wraps the UART whose registers `registers` points to.
    pub fn new(registers: UniqueMmioPointer<'a, Ns16550Registers>) -> Self {
        Self { registers }
    }

    /// Sends one byte.
    pub fn write_byte(&mut self, byte: u8) {
        field!(self.registers, thr).write(byte);
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

/// Reads of a PL011's flag register that find the transmit FIFO full, for one byte, before
/// [`write_pl011`] gives up on the device. A working PL011 drains a byte in well under that (one
/// byte time is 87 µs at 115200 baud; a device register read takes at least tens of ns), while
/// something that is not a PL011 may report "full" forever.
pub const PL011_MAX_POLLS: u32 = 1 << 16;

/// The device never made room for a byte: it is not a working UART.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct DeviceStuck;

/// Writes `bytes` to a PL011, waiting for room in its transmit FIFO at most
/// [`PL011_MAX_POLLS`] times for each byte.
pub fn write_pl011(uart: &mut arm_pl011_uart::Uart<'_>, bytes: &[u8]) -> Result<(), DeviceStuck> {
    for &byte in bytes {
        // The first poll apart: when there is room, as there nearly always is, a byte costs one
        // flag read, one test and one store, with no poll counter set up for it.
        if uart.is_tx_fifo_full() && !(1..PL011_MAX_POLLS).any(|_| !uart.is_tx_fifo_full()) {
            return Err(DeviceStuck);
        }
        uart.write_word(byte);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;
    use core::ptr::NonNull;

    #[test]
    fn register_offsets() {
        assert_eq!(REGISTERS_SIZE, 8);
    }

    #[test]
    fn bytes_go_to_the_transmit_register() {
        let mut fake = Ns16550Registers {
            thr: WriteOnly(0),
            _reserved: [0; 7],
        };
        let mut uart = Ns16550::new(UniqueMmioPointer::from(&mut fake));
        write!(uart, "hi").unwrap();
        assert_eq!(fake.thr.0, b'i');
        assert_eq!(fake._reserved, [0; 7]);
    }

    /// A PL011 register bank in ordinary memory, with the flag register (UARTFR, offset 0x18) set
    /// to `flags`.
    fn fake_pl011(flags: u32) -> Vec<u32> {
        let mut bank = vec![0; core::mem::size_of::<arm_pl011_uart::PL011Registers>() / 4];
        bank[0x18 / 4] = flags;
        bank
    }

    fn pl011(bank: &mut [u32]) -> arm_pl011_uart::Uart<'_> {
        assert!(bank.len() * 4 >= core::mem::size_of::<arm_pl011_uart::PL011Registers>());
        // SAFETY: The bank is ordinary memory, aligned and large enough for PL011Registers,
        // borrowed mutably for the driver's lifetime; reads and writes of it have no side effects.
        arm_pl011_uart::Uart::new(unsafe { UniqueMmioPointer::new(NonNull::from(bank).cast()) })
    }

    const TXFF: u32 = 1 << 5;

    #[test]
    fn pl011_with_room_takes_every_byte() {
        let mut bank = fake_pl011(0);
        assert_eq!(write_pl011(&mut pl011(&mut bank), b"hi"), Ok(()));
        assert_eq!(bank[0], u32::from(b'i'));
    }

    #[test]
    fn pl011_that_never_drains_is_given_up() {
        let mut bank = fake_pl011(TXFF);
        assert_eq!(write_pl011(&mut pl011(&mut bank), b"hi"), Err(DeviceStuck));
        assert_eq!(bank[0], 0, "nothing written to UARTDR");
    }

    /// A device that is not a PL011 (`0x09ff_ffe8` on QEMU virt puts UARTFR on a virtio-mmio
    /// magic value, "virt") has TXFF set for good.
    #[test]
    fn virtio_magic_as_flags_is_given_up() {
        let mut bank = fake_pl011(u32::from_le_bytes(*b"virt"));
        assert_ne!(bank[0x18 / 4] & TXFF, 0);
        assert_eq!(write_pl011(&mut pl011(&mut bank), b"x"), Err(DeviceStuck));
    }
}
