// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The guest side of the hypervisor's services for protected VMs: pKVM's guest ABI (KVM's
//! vendor-hypervisor SMCCC calls). vmbase uses it by itself (see docs/protected.md): it enrolls
//! in the MMIO guard before `main` and registers the console, the [`MemoryTracker`] registers
//! the MMIO it maps, and the virtio DMA pool is shared with the host. A binary calls
//! [`mem_share`] itself only for memory it hands to a device outside the pool.
//!
//! Without KVM's services (QEMU without a hypervisor, or another hypervisor) every call here
//! returns [`Error::NoHypervisorServices`] and asks nothing: guest memory is then not protected,
//! there is nothing to share, and [`memory_sharing_granule`] says so.
//!
//! [`MemoryTracker`]: crate::memory::MemoryTracker

mod error;
mod kvm;

pub use error::{Error, INVALID_PARAMETER, NOT_REQUIRED, NOT_SUPPORTED};
pub use kvm::{
    Features, Function, Kvm, KVM_FEATURES, KVM_UID, SMCCC_VERSION_1_1, VENDOR_HYP_CALL_UID,
};

use crate::layout::PAGE_SIZE;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Once;

/// How vmbase reaches the hypervisor: HVC, as in crosvm's and pKVM's VMs.
#[cfg(target_arch = "aarch64")]
type Conduit = smccc::Hvc;
/// Host builds (unit tests) have no hypervisor: every call answers `NOT_SUPPORTED`.
#[cfg(not(target_arch = "aarch64"))]
type Conduit = NoHypervisor;

/// A conduit with nothing behind it, for host builds.
#[cfg(not(target_arch = "aarch64"))]
struct NoHypervisor;

#[cfg(not(target_arch = "aarch64"))]
impl smccc::Call for NoHypervisor {
    fn call32(_: u32, _: [u32; 7]) -> [u32; 8] {
        [NOT_SUPPORTED as u32; 8]
    }

    fn call64(_: u32, _: [u64; 17]) -> [u64; 18] {
        [NOT_SUPPORTED as u64; 18]
    }
}

/// KVM's services, as found the first time anything here was called.
struct Services {
    kvm: Kvm<Conduit>,
    /// The sharing granule, if the hypervisor offers `MEM_SHARE` and `MEM_UNSHARE`.
    sharing: Option<Result<usize, Error>>,
    /// The MMIO guard's granule, if the hypervisor offers the whole guard.
    mmio_guard: Option<Result<usize, Error>>,
}

static SERVICES: Once<Option<Services>> = Once::new();
/// Whether vmbase enrolled in the MMIO guard (before `main`).
static MMIO_GUARD_ENROLLED: AtomicBool = AtomicBool::new(false);

fn services() -> Option<&'static Services> {
    SERVICES
        .call_once(|| {
            let kvm = Kvm::<Conduit>::probe()?;
            let features = kvm.features();
            let offers_all = |functions: &[Function]| functions.iter().all(|f| features.offers(*f));
            let sharing = offers_all(&[
                Function::HypMeminfo,
                Function::MemShare,
                Function::MemUnshare,
            ])
            .then(|| kvm.hyp_meminfo());
            let mmio_guard = offers_all(&[
                Function::MmioGuardInfo,
                Function::MmioGuardEnroll,
                Function::MmioGuardMap,
                Function::MmioGuardUnmap,
            ])
            .then(|| kvm.mmio_guard_info());
            Some(Services {
                kvm,
                sharing,
                mmio_guard,
            })
        })
        .as_ref()
}

/// The KVM functions the hypervisor offers, or `None` without KVM's services.
pub fn features() -> Option<Features> {
    services().map(|services| services.kvm.features())
}

/// The granule in which memory must be shared with the host before a device may use it:
/// `Ok(None)` when the hypervisor does not protect guest memory (no `MEM_SHARE`: everything is
/// already visible to the host), an error when it offers sharing with a granule vmbase cannot
/// use.
pub fn memory_sharing_granule() -> Result<Option<usize>, Error> {
    match services().and_then(|services| services.sharing) {
        None => Ok(None),
        Some(granule) => granule.map(Some),
    }
}

/// The sharing granule, or why memory cannot be shared.
fn sharing() -> Result<(&'static Kvm<Conduit>, usize), Error> {
    let services = services().ok_or(Error::NoHypervisorServices)?;
    let granule = services.sharing.ok_or(Error::NotSupported)??;
    Ok((&services.kvm, granule))
}

/// Shares `range` with the host (`MEM_SHARE`, one call per granule), so that devices can read
/// and write it. It must start and end on the granule ([`memory_sharing_granule`]). If the
/// hypervisor refuses a granule (one already shared, for example), those this call shared are
/// unshared again and the refusal is returned. Without memory protection this is
/// `NoHypervisorServices` or `NotSupported`: check [`memory_sharing_granule`] first.
pub fn mem_share(range: &Range<usize>) -> Result<(), Error> {
    let (kvm, granule) = sharing()?;
    kvm.mem_share_range(range, granule)
}

/// Makes `range` private again (`MEM_UNSHARE`, one call per granule), stopping at the first
/// granule the hypervisor refuses (one never shared, for example).
pub fn mem_unshare(range: &Range<usize>) -> Result<(), Error> {
    let (kvm, granule) = sharing()?;
    kvm.mem_unshare_range(range, granule)
}

/// Whether vmbase enrolled in the hypervisor's MMIO guard before `main`: then a device page
/// works only once registered ([`mmio_guard_map`], which `MemoryTracker::map_mmio_range` calls).
pub fn mmio_guard_enrolled() -> bool {
    MMIO_GUARD_ENROLLED.load(Ordering::Relaxed)
}

/// The MMIO guard's granule, or why it cannot be used.
fn mmio_guard() -> Result<(&'static Kvm<Conduit>, usize), Error> {
    let services = services().ok_or(Error::NoHypervisorServices)?;
    let granule = services.mmio_guard.ok_or(Error::NotSupported)??;
    Ok((&services.kvm, granule))
}

/// Registers the device pages of `range` (rounded out to pages) with the MMIO guard
/// (`MMIO_GUARD_MAP`, one call per page); on a refusal, unregisters those this call registered.
pub fn mmio_guard_map(range: &Range<usize>) -> Result<(), Error> {
    let (kvm, granule) = mmio_guard()?;
    kvm.mmio_guard_map_range(&pages(range), granule)
}

/// Unregisters the device pages of `range` (rounded out to pages) from the MMIO guard
/// (`MMIO_GUARD_UNMAP`), stopping at the first refusal.
pub fn mmio_guard_unmap(range: &Range<usize>) -> Result<(), Error> {
    let (kvm, granule) = mmio_guard()?;
    kvm.mmio_guard_unmap_range(&pages(range), granule)
}

/// `range` rounded out to whole pages (an empty range stays empty).
fn pages(range: &Range<usize>) -> Range<usize> {
    let start = range.start & !(PAGE_SIZE - 1);
    let end = range.end.next_multiple_of(PAGE_SIZE).max(start);
    start..end
}

/// What [`enroll_mmio_guard`] did.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Enrolment {
    /// The hypervisor offers no MMIO guard (or no KVM services at all): every device page works.
    NotOffered,
    /// vmbase enrolled, and registered the console's pages.
    Enrolled,
}

/// Enrolls in the MMIO guard if the hypervisor offers it in 4 KiB pages, then registers the
/// `console`'s pages, so that the console keeps working. vmbase calls this before `main`.
// Entry, its caller, is not built for hosts.
#[cfg_attr(
    not(all(target_arch = "aarch64", not(target_os = "linux"))),
    allow(dead_code)
)]
pub(crate) fn enroll_mmio_guard(console: &Range<usize>) -> Result<Enrolment, Error> {
    let Ok((kvm, granule)) = mmio_guard() else {
        return Ok(Enrolment::NotOffered);
    };
    if granule != PAGE_SIZE {
        return Err(Error::UnsupportedGranule(granule as u64));
    }
    kvm.mmio_guard_enroll()?;
    MMIO_GUARD_ENROLLED.store(true, Ordering::Relaxed);
    kvm.mmio_guard_map_range(&pages(console), granule)?;
    Ok(Enrolment::Enrolled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_builds_have_no_hypervisor_services() {
        assert_eq!(features(), None);
        assert_eq!(memory_sharing_granule(), Ok(None));
        assert_eq!(
            mem_share(&(0x8000_0000..0x8000_1000)),
            Err(Error::NoHypervisorServices)
        );
        assert_eq!(
            mmio_guard_map(&(0x900_0000..0x900_0100)),
            Err(Error::NoHypervisorServices)
        );
        assert_eq!(
            enroll_mmio_guard(&(0x900_0000..0x900_0100)),
            Ok(Enrolment::NotOffered)
        );
        assert!(!mmio_guard_enrolled());
    }

    #[test]
    fn ranges_round_out_to_pages() {
        assert_eq!(pages(&(0x900_0010..0x900_0020)), 0x900_0000..0x900_1000);
        assert_eq!(pages(&(0x3f8..0x400)), 0..0x1000);
        assert_eq!(pages(&(0x1000..0x1000)), 0x1000..0x1000);
    }
}
