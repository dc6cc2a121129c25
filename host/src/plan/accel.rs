// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The accelerator QEMU runs a VM with: KVM where the host offers it, else TCG emulation.

use crate::config::Accelerator;
use std::fmt;
use std::fs::OpenOptions;
use std::io;

/// The KVM device QEMU opens.
const KVM_DEVICE: &str = "/dev/kvm";

/// Why this host cannot run a VM under KVM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvmUnusable {
    /// KVM runs guests of the host's own architecture only.
    WrongArchitecture(&'static str),
    /// The kernel offers no KVM (not built in, or no virtualization extensions).
    NoDevice,
    /// `/dev/kvm` is there but this user may not open it.
    NoPermission,
    /// `/dev/kvm` could not be opened for another reason.
    Unopenable(String),
}

impl fmt::Display for KvmUnusable {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::WrongArchitecture(architecture) => write!(
                f,
                "this host is {architecture}, and KVM runs aarch64 guests only on aarch64 hosts"
            ),
            Self::NoDevice => write!(
                f,
                "there is no {KVM_DEVICE} (a kernel without KVM, or a CPU or VM without \
                 virtualization at EL2)"
            ),
            Self::NoPermission => write!(
                f,
                "this user may not open {KVM_DEVICE} (add it to the group that owns it, \
                 usually `kvm`)"
            ),
            Self::Unopenable(reason) => write!(f, "cannot open {KVM_DEVICE}: {reason}"),
        }
    }
}

/// The accelerator a VM runs with, as the plan chose it from the requested one and the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChosenAccelerator {
    /// KVM, with the host's CPU.
    Kvm,
    /// TCG; with `auto`, why KVM was not taken.
    Tcg {
        /// Why `auto` did not take KVM; `None` when TCG was asked for.
        instead_of_kvm: Option<String>,
    },
}

impl ChosenAccelerator {
    /// Whether QEMU runs the VM under KVM.
    pub(crate) fn is_kvm(&self) -> bool {
        matches!(self, Self::Kvm)
    }
}

impl fmt::Display for ChosenAccelerator {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Kvm => write!(f, "KVM"),
            Self::Tcg {
                instead_of_kvm: None,
            } => write!(f, "TCG"),
            Self::Tcg {
                instead_of_kvm: Some(reason),
            } => write!(f, "TCG (not KVM: {reason})"),
        }
    }
}

/// What a VM asks for that only TCG gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcgOnly {
    /// Instruction counting (`--icount`): TCG emulates every instruction, KVM runs them on the
    /// CPU.
    InstructionCounting,
    /// A protected VM (`--protected`): vmbase's pKVM double runs at the EL2 QEMU emulates, which
    /// a KVM guest does not get.
    ProtectedVm,
}

impl fmt::Display for TcgOnly {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::InstructionCounting => write!(f, "instruction counting (`--icount`)"),
            Self::ProtectedVm => write!(f, "a protected VM (`--protected`), under the pKVM double"),
        }
    }
}

/// Why a VM that asks for KVM (`--accel kvm`) cannot have it; the launcher's
/// [`Error`](crate::Error) says it to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KvmRefused {
    /// The host's KVM cannot run the VM.
    Unusable(KvmUnusable),
    /// The VM asks for something only TCG gives.
    NeedsTcg(TcgOnly),
}

/// Decides the accelerator: `requested`, given whether the host's KVM is usable (`kvm`) and
/// what the VM asks for that only TCG gives (`tcg_only`).
pub(crate) fn choose(
    requested: Accelerator,
    kvm: Result<(), KvmUnusable>,
    tcg_only: Option<TcgOnly>,
) -> Result<ChosenAccelerator, KvmRefused> {
    match (requested, tcg_only) {
        (Accelerator::Tcg, _) => Ok(ChosenAccelerator::Tcg {
            instead_of_kvm: None,
        }),
        (Accelerator::Kvm, Some(what)) => Err(KvmRefused::NeedsTcg(what)),
        (Accelerator::Kvm, None) => kvm
            .map(|()| ChosenAccelerator::Kvm)
            .map_err(KvmRefused::Unusable),
        (Accelerator::Auto, Some(what)) => Ok(ChosenAccelerator::Tcg {
            instead_of_kvm: Some(format!("{what} needs TCG")),
        }),
        (Accelerator::Auto, None) => Ok(match kvm {
            Ok(()) => ChosenAccelerator::Kvm,
            Err(reason) => ChosenAccelerator::Tcg {
                instead_of_kvm: Some(reason.to_string()),
            },
        }),
    }
}

/// Whether a host of `architecture` (as [`std::env::consts::ARCH`] names it) can run VMs under
/// KVM, where `open` opens `/dev/kvm` read-write (only tried on aarch64).
fn kvm_usability(
    architecture: &'static str,
    open: impl FnOnce() -> io::Result<()>,
) -> Result<(), KvmUnusable> {
    if architecture != "aarch64" {
        return Err(KvmUnusable::WrongArchitecture(architecture));
    }
    open().map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => KvmUnusable::NoDevice,
        io::ErrorKind::PermissionDenied => KvmUnusable::NoPermission,
        _ => KvmUnusable::Unopenable(error.to_string()),
    })
}

/// Whether this host can run VMs under KVM: aarch64, with a `/dev/kvm` this user may open.
pub(crate) fn host_kvm() -> Result<(), KvmUnusable> {
    kvm_usability(std::env::consts::ARCH, || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(KVM_DEVICE)
            .map(drop)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// [`kvm_usability`] where opening `/dev/kvm` gives `opened`.
    fn usability(architecture: &'static str, opened: io::Result<()>) -> Result<(), KvmUnusable> {
        kvm_usability(architecture, || opened)
    }

    #[test]
    fn kvm_is_usable_only_on_aarch64_with_an_openable_device() {
        assert_eq!(usability("aarch64", Ok(())), Ok(()));
        assert_eq!(
            usability("x86_64", Ok(())),
            Err(KvmUnusable::WrongArchitecture("x86_64"))
        );
        assert_eq!(
            usability("aarch64", Err(io::Error::from(io::ErrorKind::NotFound))),
            Err(KvmUnusable::NoDevice)
        );
        assert_eq!(
            usability(
                "aarch64",
                Err(io::Error::from(io::ErrorKind::PermissionDenied))
            ),
            Err(KvmUnusable::NoPermission)
        );
        let busy = usability("aarch64", Err(io::Error::from_raw_os_error(16)));
        assert!(
            matches!(&busy, Err(KvmUnusable::Unopenable(reason)) if reason.contains("busy")),
            "{busy:?}"
        );
    }

    #[test]
    fn auto_takes_kvm_when_usable_and_says_why_not_otherwise() {
        assert_eq!(
            choose(Accelerator::Auto, Ok(()), None).unwrap(),
            ChosenAccelerator::Kvm
        );
        let on_x86 = choose(
            Accelerator::Auto,
            Err(KvmUnusable::WrongArchitecture("x86_64")),
            None,
        )
        .unwrap();
        assert_eq!(
            on_x86.to_string(),
            "TCG (not KVM: this host is x86_64, and KVM runs aarch64 guests only on aarch64 \
             hosts)"
        );
        let counting = choose(
            Accelerator::Auto,
            Ok(()),
            Some(TcgOnly::InstructionCounting),
        )
        .unwrap();
        assert_eq!(
            counting.to_string(),
            "TCG (not KVM: instruction counting (`--icount`) needs TCG)"
        );
        let protected = choose(Accelerator::Auto, Ok(()), Some(TcgOnly::ProtectedVm)).unwrap();
        assert_eq!(
            protected.to_string(),
            "TCG (not KVM: a protected VM (`--protected`), under the pKVM double needs TCG)"
        );
    }

    #[test]
    fn kvm_is_refused_with_the_reason_or_with_what_needs_tcg() {
        for reason in [
            KvmUnusable::WrongArchitecture("x86_64"),
            KvmUnusable::NoDevice,
            KvmUnusable::NoPermission,
        ] {
            let refusal = choose(Accelerator::Kvm, Err(reason.clone()), None).unwrap_err();
            assert_eq!(refusal, KvmRefused::Unusable(reason.clone()));
            let error = Error::from(refusal);
            assert!(
                matches!(&error, Error::KvmUnusable { reason: given } if *given == reason),
                "{error}"
            );
            assert!(error.to_string().contains(&reason.to_string()), "{error}");
        }
        for what in [TcgOnly::InstructionCounting, TcgOnly::ProtectedVm] {
            let error = Error::from(choose(Accelerator::Kvm, Ok(()), Some(what)).unwrap_err());
            assert!(
                matches!(error, Error::NeedsTcg(given) if given == what),
                "{error}"
            );
        }
    }

    #[test]
    fn tcg_is_taken_whatever_the_host() {
        for kvm in [Ok(()), Err(KvmUnusable::NoDevice)] {
            for tcg_only in [None, Some(TcgOnly::InstructionCounting)] {
                assert_eq!(
                    choose(Accelerator::Tcg, kvm.clone(), tcg_only)
                        .unwrap()
                        .to_string(),
                    "TCG"
                );
            }
        }
    }

    #[test]
    fn accelerator_names_parse() {
        assert_eq!("kvm".parse(), Ok(Accelerator::Kvm));
        assert_eq!("tcg".parse(), Ok(Accelerator::Tcg));
        assert_eq!("auto".parse(), Ok(Accelerator::Auto));
        let error = "hvf".parse::<Accelerator>().unwrap_err();
        assert!(error.contains("kvm, tcg or auto"), "{error}");
    }
}
