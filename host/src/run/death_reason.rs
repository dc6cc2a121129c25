// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Why a VM ended, with Android's names and crosvm-style exit codes (docs/contract.md, section 5).

use serde::Deserialize;
use std::fmt;

/// Why a VM ended, named after Android's `DeathReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeathReason {
    /// The guest called PSCI `SYSTEM_OFF`: a clean shutdown, i.e. success.
    Shutdown,
    /// The guest called PSCI `SYSTEM_RESET`: vmbase guests do this on panic or failure.
    Reboot,
    /// The guest or the VMM crashed (QEMU died without a shutdown event, or the guest panicked).
    Crash,
    /// The host killed the VM (a timeout, a signal, or [`crate::VmInstance::kill`]).
    Killed,
    /// The VM could not be started (bad config or image, QEMU missing).
    StartFailed,
    /// The host could not observe the VM (e.g. its QMP monitor misbehaved).
    InfrastructureError,
    /// QEMU reported a shutdown cause this crate does not know.
    Unknown,
}

impl DeathReason {
    /// Exit code of `vm run` for this death reason.
    ///
    /// `Killed` is 137 (128 + `SIGKILL`, the signal the host uses on QEMU); `vm run` itself uses
    /// 128 + the signal number instead when it was interrupted by a signal.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Shutdown => 0,
            Self::Reboot => 32,
            Self::Crash => 33,
            Self::Killed => 137,
            Self::StartFailed => 1,
            Self::InfrastructureError | Self::Unknown => 2,
        }
    }
}

/// Why QEMU stopped the VM: the `reason` of its QMP `SHUTDOWN` event (QAPI `ShutdownCause`),
/// with QAPI's names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ShutdownCause {
    /// The guest powered off (PSCI `SYSTEM_OFF`).
    GuestShutdown,
    /// The guest reset (PSCI `SYSTEM_RESET`); `-no-reboot` turns it into a shutdown.
    GuestReset,
    /// A reset requested over QMP.
    HostQmpSystemReset,
    /// A reset of part of the machine that resets it all.
    SubsystemReset,
    /// The guest reported a panic to QEMU.
    GuestPanic,
    /// QEMU hit an error it cannot recover from.
    HostError,
    /// QMP's `quit`.
    HostQmpQuit,
    /// QEMU got SIGINT, SIGTERM or SIGHUP.
    HostSignal,
    /// QEMU's user interface was closed.
    HostUi,
    /// A cause this crate does not know, or none given.
    #[default]
    #[serde(other)]
    Other,
}

impl ShutdownCause {
    /// The death reason of a VM that QEMU stopped for this cause.
    pub(crate) fn death_reason(self) -> DeathReason {
        match self {
            Self::GuestShutdown => DeathReason::Shutdown,
            Self::GuestReset | Self::HostQmpSystemReset | Self::SubsystemReset => {
                DeathReason::Reboot
            }
            Self::GuestPanic | Self::HostError => DeathReason::Crash,
            Self::HostQmpQuit | Self::HostSignal | Self::HostUi => DeathReason::Killed,
            Self::Other => DeathReason::Unknown,
        }
    }

    /// Whether the guest itself ended the VM, powering off or resetting: only then does the
    /// number of instructions it executed mean something.
    pub(crate) fn guest_ended_the_vm(self) -> bool {
        matches!(self, Self::GuestShutdown | Self::GuestReset)
    }
}

impl fmt::Display for DeathReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_design() {
        assert_eq!(DeathReason::Shutdown.exit_code(), 0);
        assert_eq!(DeathReason::Reboot.exit_code(), 32);
        assert_eq!(DeathReason::Crash.exit_code(), 33);
        assert_eq!(DeathReason::Killed.exit_code(), 137);
        assert_eq!(DeathReason::StartFailed.exit_code(), 1);
        assert_eq!(DeathReason::InfrastructureError.exit_code(), 2);
        assert_eq!(DeathReason::Unknown.exit_code(), 2);
    }

    #[test]
    fn qemu_shutdown_causes() {
        let classified = |cause: &str| {
            let cause: ShutdownCause = serde_json::from_value(cause.into()).unwrap();
            (cause.death_reason(), cause.guest_ended_the_vm())
        };
        assert_eq!(classified("guest-shutdown"), (DeathReason::Shutdown, true));
        assert_eq!(classified("guest-reset"), (DeathReason::Reboot, true));
        assert_eq!(classified("subsystem-reset"), (DeathReason::Reboot, false));
        assert_eq!(classified("guest-panic"), (DeathReason::Crash, false));
        assert_eq!(classified("host-signal"), (DeathReason::Killed, false));
        assert_eq!(classified("host-qmp-quit"), (DeathReason::Killed, false));
        assert_eq!(classified("snapshot-load"), (DeathReason::Unknown, false));
    }

    #[test]
    fn displays_android_name() {
        assert_eq!(DeathReason::Shutdown.to_string(), "Shutdown");
        assert_eq!(
            DeathReason::InfrastructureError.to_string(),
            "InfrastructureError"
        );
    }
}
