// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The SMCCC calls a protected guest makes, answered as the Android common kernel's pKVM answers
//! them (`arch/arm64/kvm/hyp/nvhe/pkvm.c` and `mem_protect.c`, android14-6.1, whose calls each
//! take one granule; a page count in x2, which later branches accept, is accepted too), with the
//! function IDs of its `include/linux/arm-smccc.h`.

use crate::pages::{GRANULE, PageSet};

/// `SMCCC_VERSION`.
pub const SMCCC_VERSION: u32 = 0x8000_0000;
/// SMCCC 1.1, what KVM reports.
const SMCCC_VERSION_1_1: u64 = 0x1_0001;
/// The vendor-specific hypervisor service's UID call.
pub const VENDOR_HYP_CALL_UID: u32 = 0x8600_ff01;
/// KVM's UID, w0–w3 of the UID call (`ARM_SMCCC_VENDOR_HYP_UID_KVM_REG_*`).
pub const KVM_UID: [u64; 4] = [0xb66f_b428, 0xe911_c52e, 0x564b_caa9, 0x743a_004d];
/// KVM's features bitmap: bit N set when function N of the vendor hypervisor range exists.
pub const KVM_FEATURES: u32 = 0x8600_0000;

/// Function numbers of KVM's vendor-hypervisor calls (`ARM_SMCCC_KVM_FUNC_*`).
mod function {
    pub const FEATURES: u32 = 0;
    pub const HYP_MEMINFO: u32 = 2;
    pub const MEM_SHARE: u32 = 3;
    pub const MEM_UNSHARE: u32 = 4;
    pub const MMIO_GUARD_INFO: u32 = 5;
    pub const MMIO_GUARD_ENROLL: u32 = 6;
    pub const MMIO_GUARD_MAP: u32 = 7;
    pub const MMIO_GUARD_UNMAP: u32 = 8;
}

/// The 64-bit fast call ID of KVM's vendor-hypervisor function `number`.
const fn kvm_call(number: u32) -> u32 {
    0xc600_0000 | number
}

pub const HYP_MEMINFO: u32 = kvm_call(function::HYP_MEMINFO);
pub const MEM_SHARE: u32 = kvm_call(function::MEM_SHARE);
pub const MEM_UNSHARE: u32 = kvm_call(function::MEM_UNSHARE);
pub const MMIO_GUARD_INFO: u32 = kvm_call(function::MMIO_GUARD_INFO);
pub const MMIO_GUARD_ENROLL: u32 = kvm_call(function::MMIO_GUARD_ENROLL);
pub const MMIO_GUARD_MAP: u32 = kvm_call(function::MMIO_GUARD_MAP);
pub const MMIO_GUARD_UNMAP: u32 = kvm_call(function::MMIO_GUARD_UNMAP);

/// The features bitmap the double reports: the calls above.
const FEATURES_BITMAP: u64 = 1 << function::FEATURES
    | 1 << function::HYP_MEMINFO
    | 1 << function::MEM_SHARE
    | 1 << function::MEM_UNSHARE
    | 1 << function::MMIO_GUARD_INFO
    | 1 << function::MMIO_GUARD_ENROLL
    | 1 << function::MMIO_GUARD_MAP
    | 1 << function::MMIO_GUARD_UNMAP;

/// `SMCCC_RET_SUCCESS`.
pub const SUCCESS: u64 = 0;
/// `SMCCC_RET_NOT_SUPPORTED` (-1).
pub const NOT_SUPPORTED: u64 = -1_i64 as u64;
/// `SMCCC_RET_INVALID_PARAMETER` (-3).
pub const INVALID_PARAMETER: u64 = -3_i64 as u64;

/// What to do with a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Return these values in x0–x3.
    Return([u64; 4]),
    /// Pass the call on to the firmware below (QEMU's PSCI, by SMC): PSCI and the TRNG.
    Forward,
}

/// A call's function ID and its arguments x1–x3.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub function: u32,
    pub args: [u64; 3],
}

/// One protected VM's state as pKVM keeps it: which pages it shares with the host, whether it
/// enrolled in the MMIO guard, and which device pages it registered.
pub struct Guest<'a> {
    /// Pages of guest RAM shared with the host (`MEM_SHARE`).
    pub shared: PageSet<'a>,
    /// Device pages registered with `MMIO_GUARD_MAP`.
    pub registered: PageSet<'a>,
    /// Whether the guest called `MMIO_GUARD_ENROLL`.
    pub enrolled: bool,
}

impl Guest<'_> {
    /// Answers `call`.
    pub fn handle(&mut self, call: Call) -> Outcome {
        let [arg1, arg2, arg3] = call.args;
        let value = |x0| Outcome::Return([x0, 0, 0, 0]);
        match call.function {
            SMCCC_VERSION => value(SMCCC_VERSION_1_1),
            VENDOR_HYP_CALL_UID => Outcome::Return(KVM_UID),
            KVM_FEATURES => value(FEATURES_BITMAP),
            HYP_MEMINFO | MMIO_GUARD_INFO if call.args == [0; 3] => value(GRANULE),
            HYP_MEMINFO | MMIO_GUARD_INFO => value(INVALID_PARAMETER),
            MEM_SHARE => each_page(arg1, arg2, arg3, |ipa| self.shared.insert(ipa)),
            MEM_UNSHARE => each_page(arg1, arg2, arg3, |ipa| self.shared.remove(ipa)),
            MMIO_GUARD_ENROLL => {
                self.enrolled = true;
                value(SUCCESS)
            }
            // The single-page guard calls ignore x2 and x3 (pKVM: "might be garbage").
            MMIO_GUARD_MAP => value(self.register(arg1)),
            MMIO_GUARD_UNMAP => value(self.unregister(arg1)),
            0x8400_0000..=0x8400_001f | 0xc400_0000..=0xc400_001f => Outcome::Forward,
            0x8400_0050..=0x8400_0053 | 0xc400_0053 => Outcome::Forward,
            _ => value(NOT_SUPPORTED),
        }
    }

    /// `MMIO_GUARD_MAP`: only once enrolled, only granule-aligned, only device pages (pKVM
    /// refuses an IPA that holds memory). Registering a page twice succeeds.
    fn register(&mut self, ipa: u64) -> u64 {
        if !self.enrolled || !ipa.is_multiple_of(GRANULE) || !self.registered.covers(ipa) {
            return INVALID_PARAMETER;
        }
        self.registered.insert(ipa);
        SUCCESS
    }

    /// `MMIO_GUARD_UNMAP`: only once enrolled; unregisters the page holding `ipa` if it was
    /// registered, and succeeds either way, as pKVM does.
    fn unregister(&mut self, ipa: u64) -> u64 {
        if !self.enrolled {
            return INVALID_PARAMETER;
        }
        self.registered.remove(ipa);
        SUCCESS
    }

    /// Whether the guest may touch `[ipa, ipa + size)` in device memory: anything before it
    /// enrolled, afterwards only registered pages.
    pub fn mmio_allowed(&self, ipa: u64, size: u64) -> bool {
        !self.enrolled || self.registered.contains_range(ipa, size)
    }
}

/// `MEM_SHARE`/`MEM_UNSHARE`: `change` on each of the `count` pages from `ipa` (0 meaning one, as
/// for callers that pass only the IPA), stopping at the first page it refuses (already shared,
/// never shared, not memory). Success with the number of pages changed in x1 if it changed any;
/// INVALID_PARAMETER if it changed none, or for an unaligned IPA or a non-zero x3.
fn each_page(ipa: u64, count: u64, arg3: u64, mut change: impl FnMut(u64) -> bool) -> Outcome {
    if arg3 != 0 || !ipa.is_multiple_of(GRANULE) {
        return Outcome::Return([INVALID_PARAMETER, 0, 0, 0]);
    }
    let changed = (0..count.max(1))
        .map_while(|page| ipa.checked_add(page.checked_mul(GRANULE)?))
        .take_while(|&page_ipa| change(page_ipa))
        .count() as u64;
    match changed {
        0 => Outcome::Return([INVALID_PARAMETER, 0, 0, 0]),
        _ => Outcome::Return([SUCCESS, changed, 0, 0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 0x8000_0000;

    fn call(guest: &mut Guest, function: u32, args: [u64; 3]) -> u64 {
        match guest.handle(Call { function, args }) {
            Outcome::Return(values) => values[0],
            Outcome::Forward => panic!("{function:#x} was forwarded"),
        }
    }

    fn with_guest(test: impl FnOnce(&mut Guest)) {
        let (mut shared, mut registered) = ([0; 4], [0; 4]);
        let mut guest = Guest {
            shared: PageSet::new(RAM, &mut shared),
            registered: PageSet::new(0x900_0000, &mut registered),
            enrolled: false,
        };
        test(&mut guest);
    }

    #[test]
    fn discovery_answers_like_kvm() {
        with_guest(|guest| {
            assert_eq!(
                guest.handle(Call {
                    function: VENDOR_HYP_CALL_UID,
                    args: [0; 3]
                }),
                Outcome::Return(KVM_UID)
            );
            assert_eq!(call(guest, KVM_FEATURES, [0; 3]), 0b1_1111_1101);
            assert_eq!(call(guest, SMCCC_VERSION, [0; 3]), 0x1_0001);
            assert_eq!(call(guest, HYP_MEMINFO, [0; 3]), 4096);
            assert_eq!(call(guest, MMIO_GUARD_INFO, [0; 3]), 4096);
            assert_eq!(call(guest, HYP_MEMINFO, [1, 0, 0]), INVALID_PARAMETER);
            assert_eq!(call(guest, kvm_call(9), [0; 3]), NOT_SUPPORTED);
            assert_eq!(call(guest, 0x8400_0099, [0; 3]), NOT_SUPPORTED);
        });
    }

    #[test]
    fn psci_and_trng_go_to_the_firmware() {
        with_guest(|guest| {
            for function in [
                0x8400_0008,
                0x8400_0009,
                0xc400_0003,
                0x8400_0050,
                0xc400_0053,
            ] {
                assert_eq!(
                    guest.handle(Call {
                        function,
                        args: [0; 3]
                    }),
                    Outcome::Forward
                );
            }
        });
    }

    #[test]
    fn share_and_unshare_follow_pkvm() {
        with_guest(|guest| {
            assert_eq!(call(guest, MEM_SHARE, [RAM + 0x1000, 0, 0]), SUCCESS);
            assert_eq!(
                call(guest, MEM_SHARE, [RAM + 0x1000, 0, 0]),
                INVALID_PARAMETER,
                "twice"
            );
            assert_eq!(
                call(guest, MEM_SHARE, [RAM + 0x2800, 0, 0]),
                INVALID_PARAMETER,
                "unaligned"
            );
            assert_eq!(
                call(guest, MEM_SHARE, [RAM + 0x2000, 0, 1]),
                INVALID_PARAMETER,
                "x3"
            );
            assert_eq!(
                call(guest, MEM_SHARE, [0x900_0000, 0, 0]),
                INVALID_PARAMETER,
                "not RAM"
            );
            assert!(guest.shared.contains_range(RAM + 0x1000, 0x1000));
            assert_eq!(
                call(guest, MEM_UNSHARE, [RAM + 0x3000, 0, 0]),
                INVALID_PARAMETER,
                "never shared"
            );
            assert_eq!(call(guest, MEM_UNSHARE, [RAM + 0x1000, 0, 0]), SUCCESS);
            assert!(!guest.shared.contains(RAM + 0x1000));
            assert_eq!(
                guest.handle(Call {
                    function: MEM_SHARE,
                    args: [RAM, 3, 0]
                }),
                Outcome::Return([SUCCESS, 3, 0, 0])
            );
            assert_eq!(
                guest.handle(Call {
                    function: MEM_SHARE,
                    args: [RAM + 0x2000, 2, 0]
                }),
                Outcome::Return([INVALID_PARAMETER, 0, 0, 0]),
                "the first page is shared already"
            );
        });
    }

    #[test]
    fn mmio_guard_follows_pkvm() {
        with_guest(|guest| {
            assert!(
                guest.mmio_allowed(0x900_0000, 4),
                "everything before enrolling"
            );
            assert_eq!(
                call(guest, MMIO_GUARD_MAP, [0x900_0000, 0, 0]),
                INVALID_PARAMETER
            );
            assert_eq!(
                call(guest, MMIO_GUARD_UNMAP, [0x900_0000, 0, 0]),
                INVALID_PARAMETER
            );
            assert_eq!(call(guest, MMIO_GUARD_ENROLL, [0; 3]), SUCCESS);
            assert!(!guest.mmio_allowed(0x900_0000, 4));
            assert_eq!(
                call(guest, MMIO_GUARD_MAP, [0x900_0004, 0, 0]),
                INVALID_PARAMETER
            );
            assert_eq!(
                call(guest, MMIO_GUARD_MAP, [RAM, 0, 0]),
                INVALID_PARAMETER,
                "memory"
            );
            assert_eq!(call(guest, MMIO_GUARD_MAP, [0x900_0000, 7, 7]), SUCCESS);
            assert_eq!(
                call(guest, MMIO_GUARD_MAP, [0x900_0000, 0, 0]),
                SUCCESS,
                "twice"
            );
            assert!(guest.mmio_allowed(0x900_0ffc, 4));
            assert!(
                !guest.mmio_allowed(0x900_0ffc, 8),
                "runs into an unregistered page"
            );
            assert_eq!(
                call(guest, MMIO_GUARD_UNMAP, [0x901_0000, 0, 0]),
                SUCCESS,
                "never mapped"
            );
            assert_eq!(call(guest, MMIO_GUARD_UNMAP, [0x900_0000, 0, 0]), SUCCESS);
            assert!(!guest.mmio_allowed(0x900_0000, 4));
        });
    }
}
