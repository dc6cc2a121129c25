// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Minimal driver for the 8250/16550 UART that crosvm emulates (transmit only).

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
pub struct Uart<'a> {
    registers: UniqueMmioPointer<'a, Ns16550Registers>,
}

impl<'a> Uart<'a> {
    /// Wraps the UART whose registers `registers` points to.
    pub fn new(registers: UniqueMmioPointer<'a, Ns16550Registers>) -> Self {
        Self { registers }
    }

    /// Sends one byte.
    pub fn write_byte(&mut self, byte: u8) {
        field!(self.registers, thr).write(byte);
    }
}

impl fmt::Write for Uart<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            self.write_byte(byte);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

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
        let mut uart = Uart::new(UniqueMmioPointer::from(&mut fake));
        write!(uart, "hi").unwrap();
        assert_eq!(fake.thr.0, b'i');
        assert_eq!(fake._reserved, [0; 7]);
    }
}
