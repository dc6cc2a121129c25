// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! KVM's vendor-hypervisor calls as pKVM answers them to a protected VM, through any SMCCC
//! conduit: detection, the granules, memory sharing and the MMIO guard.

use super::Error;
use crate::layout::PAGE_SIZE;
use core::marker::PhantomData;
use core::ops::Range;
use smccc::arch::Version;
use smccc::Call;

/// The SMCCC version from which the vendor-hypervisor calls may be made (as Linux requires).
pub const SMCCC_VERSION_1_1: Version = Version { major: 1, minor: 1 };
/// `ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID` (SMC32): the UID of the hypervisor's services, in
/// w0 to w3.
pub const VENDOR_HYP_CALL_UID: u32 = 0x8600_ff01;
/// KVM's UID, `28b46fb6-2ec5-11e9-a9ca-4b564d003a74`, as w0 to w3 carry it.
pub const KVM_UID: [u32; 4] = [0xb66f_b428, 0xe911_c52e, 0x564b_caa9, 0x743a_004d];
/// `ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID` (SMC32): a bitmap of the KVM functions offered, one
/// bit per function number, in w0.
pub const KVM_FEATURES: u32 = 0x8600_0000;
/// A 64-bit fast call in the vendor-hypervisor range: `0xc600_0000 | function number`.
const KVM_FAST_CALL64: u32 = 0xc600_0000;

/// A KVM vendor-hypervisor function, by its number (its bit in the features bitmap).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[repr(u32)]
pub enum Function {
    /// `ARM_SMCCC_KVM_FUNC_FEATURES`: the bitmap itself.
    Features = 0,
    /// `ARM_SMCCC_KVM_FUNC_HYP_MEMINFO`: the memory-protection granule.
    HypMeminfo = 2,
    /// `ARM_SMCCC_KVM_FUNC_MEM_SHARE`: share one granule of guest memory with the host.
    MemShare = 3,
    /// `ARM_SMCCC_KVM_FUNC_MEM_UNSHARE`: make a shared granule private again.
    MemUnshare = 4,
    /// `ARM_SMCCC_KVM_FUNC_MMIO_GUARD_INFO`: the MMIO guard's granule.
    MmioGuardInfo = 5,
    /// `ARM_SMCCC_KVM_FUNC_MMIO_GUARD_ENROLL`: from now on, only registered device pages work.
    MmioGuardEnroll = 6,
    /// `ARM_SMCCC_KVM_FUNC_MMIO_GUARD_MAP`: register one device granule.
    MmioGuardMap = 7,
    /// `ARM_SMCCC_KVM_FUNC_MMIO_GUARD_UNMAP`: unregister one device granule.
    MmioGuardUnmap = 8,
    /// `ARM_SMCCC_KVM_FUNC_MEM_RELINQUISH`: give one granule back to the host.
    MemRelinquish = 9,
}

impl Function {
    /// Its SMCCC function ID: `0xc600_00nn` (fast call, SMC64, vendor-hypervisor service), but
    /// `0x8600_0000` (SMC32) for the features bitmap.
    pub const fn id(self) -> u32 {
        match self {
            Self::Features => KVM_FEATURES,
            _ => KVM_FAST_CALL64 | self as u32,
        }
    }
}

/// The functions a KVM hypervisor offers (`ARM_SMCCC_KVM_FUNC_FEATURES`, w0).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct Features(pub u32);

impl Features {
    /// Whether `function`'s bit is set.
    pub fn offers(self, function: Function) -> bool {
        self.0 & (1 << function as u32) != 0
    }
}

/// KVM's services as they were found through SMCCC conduit `C` (`smccc::Hvc` in a VM).
#[derive(Debug)]
pub struct Kvm<C: Call> {
    features: Features,
    conduit: PhantomData<C>,
}

impl<C: Call> Kvm<C> {
    /// Asks the hypervisor whether it is KVM: SMCCC 1.1 or later, KVM's vendor-hypervisor UID.
    /// `None` when it is not (then none of KVM's functions may be called). Two or three calls.
    pub fn probe() -> Option<Self> {
        if smccc::arch::version::<C>().ok()? < SMCCC_VERSION_1_1 {
            return None;
        }
        let uid = C::call32(VENDOR_HYP_CALL_UID, [0; 7]);
        if uid[..4] != KVM_UID {
            return None;
        }
        let features = Features(C::call32(KVM_FEATURES, [0; 7])[0]);
        Some(Self {
            features,
            conduit: PhantomData,
        })
    }

    /// The functions the hypervisor offers.
    pub fn features(&self) -> Features {
        self.features
    }

    /// Calls `function` with `x1 = arg` and `x2`, `x3` zero, as pKVM requires; `x0` as the
    /// hypervisor left it. `NotSupported` without a call when the bitmap does not offer it.
    fn call(&self, function: Function, arg: u64) -> Result<u64, Error> {
        if !self.features.offers(function) {
            return Err(Error::NotSupported);
        }
        let mut args = [0; 17];
        args[0] = arg;
        Ok(C::call64(function.id(), args)[0])
    }

    /// Calls `function` on one address; only 0 is success.
    fn call_expecting_zero(&self, function: Function, address: u64) -> Result<(), Error> {
        match self.call(function, address)? {
            0 => Ok(()),
            code => Err(Error::from(code as i64)),
        }
    }

    /// Calls a granule query: a negative code, or the granule in bytes.
    fn granule(&self, function: Function) -> Result<usize, Error> {
        let answer = self.call(function, 0)?;
        if (answer as i64) < 0 {
            return Err(Error::from(answer as i64));
        }
        usable_granule(answer)
    }

    /// `HYP_MEMINFO`: the granule in which memory is shared and unshared.
    pub fn hyp_meminfo(&self) -> Result<usize, Error> {
        self.granule(Function::HypMeminfo)
    }

    /// `MMIO_GUARD_INFO`: the granule in which device pages are registered.
    pub fn mmio_guard_info(&self) -> Result<usize, Error> {
        self.granule(Function::MmioGuardInfo)
    }

    /// `MEM_SHARE` of the granule at `ipa`.
    pub fn mem_share(&self, ipa: u64) -> Result<(), Error> {
        self.call_expecting_zero(Function::MemShare, ipa)
    }

    /// `MEM_UNSHARE` of the granule at `ipa`.
    pub fn mem_unshare(&self, ipa: u64) -> Result<(), Error> {
        self.call_expecting_zero(Function::MemUnshare, ipa)
    }

    /// `MEM_RELINQUISH` of the granule at `ipa`.
    pub fn mem_relinquish(&self, ipa: u64) -> Result<(), Error> {
        self.call_expecting_zero(Function::MemRelinquish, ipa)
    }

    /// `MMIO_GUARD_ENROLL`: after it, a device page works only once registered.
    pub fn mmio_guard_enroll(&self) -> Result<(), Error> {
        self.call_expecting_zero(Function::MmioGuardEnroll, 0)
    }

    /// `MMIO_GUARD_MAP` of the device granule at `ipa`.
    pub fn mmio_guard_map(&self, ipa: u64) -> Result<(), Error> {
        self.call_expecting_zero(Function::MmioGuardMap, ipa)
    }

    /// `MMIO_GUARD_UNMAP` of the device granule at `ipa`.
    pub fn mmio_guard_unmap(&self, ipa: u64) -> Result<(), Error> {
        self.call_expecting_zero(Function::MmioGuardUnmap, ipa)
    }

    /// Shares every `granule` of `range` in order; if one fails, unshares those this call
    /// shared and returns the failure.
    pub fn mem_share_range(&self, range: &Range<usize>, granule: usize) -> Result<(), Error> {
        for_each_granule(
            range,
            granule,
            |ipa| self.mem_share(ipa),
            |ipa| {
                let _ = self.mem_unshare(ipa);
            },
        )
    }

    /// Unshares every `granule` of `range`; stops at the first failure (the rest stays shared).
    pub fn mem_unshare_range(&self, range: &Range<usize>, granule: usize) -> Result<(), Error> {
        for_each_granule(range, granule, |ipa| self.mem_unshare(ipa), |_| {})
    }

    /// Registers every `granule` of `range` with the MMIO guard; if one fails, unregisters those
    /// this call registered and returns the failure.
    pub fn mmio_guard_map_range(&self, range: &Range<usize>, granule: usize) -> Result<(), Error> {
        for_each_granule(
            range,
            granule,
            |ipa| self.mmio_guard_map(ipa),
            |ipa| {
                let _ = self.mmio_guard_unmap(ipa);
            },
        )
    }

    /// Unregisters every `granule` of `range`; stops at the first failure.
    pub fn mmio_guard_unmap_range(
        &self,
        range: &Range<usize>,
        granule: usize,
    ) -> Result<(), Error> {
        for_each_granule(range, granule, |ipa| self.mmio_guard_unmap(ipa), |_| {})
    }
}

/// `granule` as a size vmbase can work in: a power of two, at least a page.
fn usable_granule(granule: u64) -> Result<usize, Error> {
    match usize::try_from(granule) {
        Ok(size) if size.is_power_of_two() && size >= PAGE_SIZE => Ok(size),
        _ => Err(Error::UnsupportedGranule(granule)),
    }
}

/// Calls `each` on every `granule` of `range`, which must start and end on one; when a call
/// fails, calls `undo` on the granules done so far, newest first.
fn for_each_granule(
    range: &Range<usize>,
    granule: usize,
    mut each: impl FnMut(u64) -> Result<(), Error>,
    mut undo: impl FnMut(u64),
) -> Result<(), Error> {
    for address in [range.start, range.end] {
        if address % granule != 0 {
            return Err(Error::Unaligned { address, granule });
        }
    }
    let granules = range.clone().step_by(granule);
    for (done, address) in granules.clone().enumerate() {
        if let Err(error) = each(address as u64) {
            for address in granules.take(done).rev() {
                undo(address as u64);
            }
            return Err(error);
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::hyp::error::{INVALID_PARAMETER, NOT_SUPPORTED};
    use alloc::collections::BTreeSet;
    use alloc::vec::Vec;
    use smccc::arch::SMCCC_VERSION;
    use std::cell::RefCell;

    /// What the fake hypervisor is and does: pKVM's answers, with its rules on shared and
    /// registered granules.
    pub(crate) struct FakeHypervisor {
        pub version: i32,
        pub uid: [u32; 4],
        pub features: u32,
        pub granule: u64,
        pub shared: BTreeSet<u64>,
        pub registered: BTreeSet<u64>,
        pub enrolled: bool,
        /// A granule whose sharing or registration fails, to test the undoing.
        pub refuse: Option<u64>,
        /// Every call: function ID and x1.
        pub calls: Vec<(u32, u64)>,
    }

    /// Every function of [`Function`] but relinquish, like pKVM offers to a protected VM.
    pub(crate) const PKVM_FEATURES: u32 = 0b1_1111_1101;

    impl Default for FakeHypervisor {
        fn default() -> Self {
            Self {
                version: 0x1_0001,
                uid: KVM_UID,
                features: PKVM_FEATURES,
                granule: PAGE_SIZE as u64,
                shared: BTreeSet::new(),
                registered: BTreeSet::new(),
                enrolled: false,
                refuse: None,
                calls: Vec::new(),
            }
        }
    }

    std::thread_local! {
        pub(crate) static HYPERVISOR: RefCell<FakeHypervisor> = RefCell::default();
    }

    pub(crate) fn with_hypervisor(hypervisor: FakeHypervisor) {
        HYPERVISOR.with(|h| *h.borrow_mut() = hypervisor);
    }

    fn calls() -> Vec<(u32, u64)> {
        HYPERVISOR.with(|h| h.borrow().calls.clone())
    }

    /// An SMCCC conduit into [`HYPERVISOR`].
    pub(crate) struct FakeConduit;

    impl Call for FakeConduit {
        fn call32(function: u32, _: [u32; 7]) -> [u32; 8] {
            HYPERVISOR.with(|h| {
                let mut h = h.borrow_mut();
                h.calls.push((function, 0));
                let mut result = [0; 8];
                match function {
                    SMCCC_VERSION => result[0] = h.version as u32,
                    VENDOR_HYP_CALL_UID => result[..4].copy_from_slice(&h.uid),
                    KVM_FEATURES => result[0] = h.features,
                    _ => result[0] = NOT_SUPPORTED as u32,
                }
                result
            })
        }

        fn call64(function: u32, args: [u64; 17]) -> [u64; 18] {
            HYPERVISOR.with(|h| {
                let mut h = h.borrow_mut();
                let h = &mut *h;
                let ipa = args[0];
                h.calls.push((function, ipa));
                let aligned =
                    ipa.checked_rem(h.granule) == Some(0) && args[1..].iter().all(|&arg| arg == 0);
                let refused = h.refuse == Some(ipa);
                let success = |done: bool| if done { 0 } else { INVALID_PARAMETER };
                let answer = match function {
                    _ if function & 0xffff_ff00 != KVM_FAST_CALL64
                        || h.features & (1 << (function & 0xff)) == 0 =>
                    {
                        NOT_SUPPORTED
                    }
                    0xc600_0002 | 0xc600_0005 => h.granule as i64,
                    0xc600_0003 => success(aligned && !refused && h.shared.insert(ipa)),
                    0xc600_0004 => success(aligned && h.shared.remove(&ipa)),
                    0xc600_0006 => {
                        h.enrolled = true;
                        0
                    }
                    0xc600_0007 => success(aligned && !refused && h.registered.insert(ipa)),
                    // android14-6.1 answers 0 whether or not the page was registered.
                    0xc600_0008 => {
                        h.registered.remove(&ipa);
                        success(aligned)
                    }
                    _ => NOT_SUPPORTED,
                };
                let mut result = [0; 18];
                result[0] = answer as u64;
                result
            })
        }
    }

    fn pkvm() -> Kvm<FakeConduit> {
        with_hypervisor(FakeHypervisor::default());
        Kvm::probe().unwrap()
    }

    #[test]
    fn function_ids_are_the_kernels() {
        assert_eq!(Function::Features.id(), 0x8600_0000);
        assert_eq!(Function::HypMeminfo.id(), 0xc600_0002);
        assert_eq!(Function::MemShare.id(), 0xc600_0003);
        assert_eq!(Function::MemUnshare.id(), 0xc600_0004);
        assert_eq!(Function::MmioGuardInfo.id(), 0xc600_0005);
        assert_eq!(Function::MmioGuardEnroll.id(), 0xc600_0006);
        assert_eq!(Function::MmioGuardMap.id(), 0xc600_0007);
        assert_eq!(Function::MmioGuardUnmap.id(), 0xc600_0008);
        assert_eq!(Function::MemRelinquish.id(), 0xc600_0009);
    }

    #[test]
    fn kvm_is_found_by_version_uid_and_features() {
        let kvm = pkvm();
        assert!(kvm.features().offers(Function::MmioGuardEnroll));
        assert!(!kvm.features().offers(Function::MemRelinquish));
        assert_eq!(
            calls(),
            [
                (SMCCC_VERSION, 0),
                (VENDOR_HYP_CALL_UID, 0),
                (KVM_FEATURES, 0)
            ]
        );
    }

    #[test]
    fn no_kvm_without_smccc_1_1_or_with_another_uid() {
        // QEMU without a hypervisor answers NOT_SUPPORTED to everything; SMCCC 1.0 has no
        // vendor-hypervisor calls to trust; another hypervisor has another UID.
        for (version, uid) in [(-1, KVM_UID), (0x1_0000, KVM_UID), (0x1_0002, [1, 2, 3, 4])] {
            with_hypervisor(FakeHypervisor {
                version,
                uid,
                ..Default::default()
            });
            assert!(
                Kvm::<FakeConduit>::probe().is_none(),
                "{version:#x} {uid:x?}"
            );
        }
        with_hypervisor(FakeHypervisor {
            version: -1,
            ..Default::default()
        });
        Kvm::<FakeConduit>::probe();
        assert_eq!(
            calls(),
            [(SMCCC_VERSION, 0)],
            "one call when there is no SMCCC 1.1"
        );
    }

    #[test]
    fn granules_are_checked() {
        let kvm = pkvm();
        assert_eq!(kvm.hyp_meminfo(), Ok(PAGE_SIZE));
        assert_eq!(kvm.mmio_guard_info(), Ok(PAGE_SIZE));
        for (granule, error) in [
            (0x3000, Error::UnsupportedGranule(0x3000)),
            (0x800, Error::UnsupportedGranule(0x800)),
            (0, Error::UnsupportedGranule(0)),
            (-3i64 as u64, Error::InvalidParameter),
        ] {
            HYPERVISOR.with(|h| h.borrow_mut().granule = granule);
            assert_eq!(kvm.hyp_meminfo(), Err(error));
        }
    }

    #[test]
    fn functions_not_offered_are_not_called() {
        with_hypervisor(FakeHypervisor {
            features: 1,
            ..Default::default()
        });
        let kvm = Kvm::<FakeConduit>::probe().unwrap();
        assert_eq!(kvm.mem_share(0x8000_0000), Err(Error::NotSupported));
        assert_eq!(kvm.mmio_guard_enroll(), Err(Error::NotSupported));
        assert_eq!(kvm.hyp_meminfo(), Err(Error::NotSupported));
        assert_eq!(calls().len(), 3, "only the probe's calls");
    }

    #[test]
    fn sharing_twice_and_unsharing_what_was_never_shared_are_refused() {
        let kvm = pkvm();
        assert_eq!(kvm.mem_share(0x8000_1000), Ok(()));
        assert_eq!(kvm.mem_share(0x8000_1000), Err(Error::InvalidParameter));
        assert_eq!(kvm.mem_unshare(0x8000_1000), Ok(()));
        assert_eq!(kvm.mem_unshare(0x8000_1000), Err(Error::InvalidParameter));
        assert_eq!(kvm.mem_share(0x8000_1800), Err(Error::InvalidParameter));
        assert_eq!(
            calls()[3..],
            [
                (0xc600_0003, 0x8000_1000),
                (0xc600_0003, 0x8000_1000),
                (0xc600_0004, 0x8000_1000),
                (0xc600_0004, 0x8000_1000),
                (0xc600_0003, 0x8000_1800),
            ]
        );
    }

    #[test]
    fn ranges_go_granule_by_granule() {
        let kvm = pkvm();
        kvm.mem_share_range(&(0x8000_0000..0x8000_3000), PAGE_SIZE)
            .unwrap();
        kvm.mmio_guard_map_range(&(0x900_0000..0x900_2000), PAGE_SIZE)
            .unwrap();
        HYPERVISOR.with(|h| {
            let h = h.borrow();
            assert_eq!(
                h.shared.iter().copied().collect::<Vec<_>>(),
                [0x8000_0000, 0x8000_1000, 0x8000_2000]
            );
            assert_eq!(
                h.registered.iter().copied().collect::<Vec<_>>(),
                [0x900_0000, 0x900_1000]
            );
        });
        kvm.mem_unshare_range(&(0x8000_0000..0x8000_3000), PAGE_SIZE)
            .unwrap();
        kvm.mmio_guard_unmap_range(&(0x900_0000..0x900_2000), PAGE_SIZE)
            .unwrap();
        HYPERVISOR.with(|h| {
            assert!(h.borrow().shared.is_empty());
            assert!(h.borrow().registered.is_empty());
        });
    }

    #[test]
    fn a_failure_part_way_undoes_the_range() {
        let kvm = pkvm();
        HYPERVISOR.with(|h| h.borrow_mut().refuse = Some(0x8000_2000));
        assert_eq!(
            kvm.mem_share_range(&(0x8000_0000..0x8000_4000), PAGE_SIZE),
            Err(Error::InvalidParameter)
        );
        assert_eq!(
            kvm.mmio_guard_map_range(&(0x8000_0000..0x8000_4000), PAGE_SIZE),
            Err(Error::InvalidParameter)
        );
        HYPERVISOR.with(|h| {
            assert!(h.borrow().shared.is_empty());
            assert!(h.borrow().registered.is_empty());
        });
        let unshares = calls()
            .iter()
            .filter(|(function, _)| *function == 0xc600_0004)
            .map(|(_, ipa)| *ipa)
            .collect::<Vec<_>>();
        assert_eq!(unshares, [0x8000_1000, 0x8000_0000], "newest first");
    }

    #[test]
    fn misaligned_ranges_are_refused_before_any_call() {
        let kvm = pkvm();
        assert_eq!(
            kvm.mem_share_range(&(0x8000_0000..0x8000_1800), PAGE_SIZE),
            Err(Error::Unaligned {
                address: 0x8000_1800,
                granule: PAGE_SIZE
            })
        );
        assert_eq!(
            kvm.mmio_guard_map_range(&(0x900_0010..0x900_1000), PAGE_SIZE),
            Err(Error::Unaligned {
                address: 0x900_0010,
                granule: PAGE_SIZE
            })
        );
        assert_eq!(calls().len(), 3, "only the probe's calls");
    }
}
