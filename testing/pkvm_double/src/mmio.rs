// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Decoding a guest's trapped device access from `ESR_EL2`, so that the double can perform it.

/// A load or store the guest made to an address its stage 2 does not map, as the instruction
/// syndrome (ESR_EL2.ISS of a data abort with ISV set) describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The IPA accessed.
    pub ipa: u64,
    /// Bytes accessed: 1, 2, 4 or 8.
    pub size: u64,
    /// A store (`true`) or a load.
    pub write: bool,
    /// The general-purpose register loaded or stored; 31 is the zero register.
    pub register: usize,
    /// A load sign-extends the value (`ldrsb`, `ldrsh`, `ldrsw`).
    pub sign_extend: bool,
    /// The register is 64-bit (`x`), else 32-bit (`w`).
    pub sixty_four: bool,
}

/// ESR_EL2.ISS.ISV (bit 24): the fields below are valid. Only single loads and stores of one
/// general-purpose register without writeback have them; pKVM and crosvm cannot emulate
/// anything else either.
const ISV: u64 = 1 << 24;
/// ESR_EL2.ISS.SAS (bits 23:22): the access size, log2 bytes.
const SAS_SHIFT: u64 = 22;
/// ESR_EL2.ISS.SSE (bit 21): sign extension.
const SSE: u64 = 1 << 21;
/// ESR_EL2.ISS.SRT (bits 20:16): the register.
const SRT_SHIFT: u64 = 16;
/// ESR_EL2.ISS.SF (bit 15): 64-bit register.
const SF: u64 = 1 << 15;
/// ESR_EL2.ISS.S1PTW (bit 7): the fault is on the guest's own page-table walk.
pub const S1PTW: u64 = 1 << 7;
/// ESR_EL2.ISS.WnR (bit 6): a write.
pub const WNR: u64 = 1 << 6;

impl Access {
    /// The access `esr` describes at `ipa`, or `None` if it has no instruction syndrome (or is
    /// a fault on the guest's page-table walk, which is no access to emulate).
    pub fn decode(esr: u64, ipa: u64) -> Option<Self> {
        if esr & ISV == 0 || esr & S1PTW != 0 {
            return None;
        }
        Some(Self {
            ipa,
            size: 1 << ((esr >> SAS_SHIFT) & 0b11),
            write: esr & WNR != 0,
            register: ((esr >> SRT_SHIFT) & 0b1_1111) as usize,
            sign_extend: esr & SSE != 0,
            sixty_four: esr & SF != 0,
        })
    }

    /// What a load of `raw` (zero-extended from `size` bytes) leaves in the register.
    pub fn loaded_value(&self, raw: u64) -> u64 {
        let bits = self.size * 8;
        let value = if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            (((raw << shift) as i64) >> shift) as u64
        } else {
            raw
        };
        if self.sixty_four {
            value
        } else {
            value & 0xffff_ffff
        }
    }

    /// `value` cut to the access's size, what a store writes.
    pub fn stored_value(&self, value: u64) -> u64 {
        match self.size {
            8 => value,
            size => value & ((1 << (size * 8)) - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ESR_EL2 of a data abort from a lower EL (EC 0x24, IL) with `iss`.
    fn esr(iss: u64) -> u64 {
        0x24 << 26 | 1 << 25 | iss
    }

    #[test]
    fn store_of_a_word_register() {
        // str w3, [x1]: ISV, SAS=2, SRT=3, WnR, translation fault level 3.
        let access = Access::decode(esr(ISV | 2 << 22 | 3 << 16 | WNR | 0b00_0111), 0x900_0000);
        assert_eq!(
            access,
            Some(Access {
                ipa: 0x900_0000,
                size: 4,
                write: true,
                register: 3,
                sign_extend: false,
                sixty_four: false
            })
        );
        assert_eq!(
            access.unwrap().stored_value(0x1234_5678_9abc_def0),
            0x9abc_def0
        );
    }

    #[test]
    fn loads_extend_as_the_instruction_does() {
        // ldrsb x5 (SAS=0, SSE, SF) and ldrh w5 (SAS=1).
        let ldrsb = Access::decode(esr(ISV | SSE | 5 << 16 | SF), 0).unwrap();
        assert_eq!(ldrsb.loaded_value(0x80), 0xffff_ffff_ffff_ff80);
        let ldrsb_w = Access::decode(esr(ISV | SSE | 5 << 16), 0).unwrap();
        assert_eq!(ldrsb_w.loaded_value(0x80), 0xffff_ff80);
        let ldrh = Access::decode(esr(ISV | 1 << 22 | 5 << 16), 0).unwrap();
        assert_eq!(ldrh.loaded_value(0x8000), 0x8000);
        let ldr_x = Access::decode(esr(ISV | 3 << 22 | 31 << 16 | SF), 0).unwrap();
        assert_eq!((ldr_x.size, ldr_x.register), (8, 31));
        assert_eq!(ldr_x.loaded_value(u64::MAX), u64::MAX);
    }

    #[test]
    fn no_syndrome_or_a_table_walk_is_not_emulated() {
        assert_eq!(Access::decode(esr(2 << 22 | WNR), 0), None);
        assert_eq!(Access::decode(esr(ISV | S1PTW), 0), None);
    }
}
