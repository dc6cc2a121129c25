// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Why a VM ended, with Android's names and crosvm-style exit codes (docs/contract.md, section 5).

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

    /// Maps the `reason` of QEMU's QMP `SHUTDOWN` event (QAPI `ShutdownCause`).
    pub(crate) fn from_qemu_shutdown_cause(cause: &str) -> Self {
        match cause {
            "guest-shutdown" => Self::Shutdown,
            // `-no-reboot` turns every reset into a shutdown that keeps the reset cause.
            "guest-reset" | "host-qmp-system-reset" | "subsystem-reset" => Self::Reboot,
            "guest-panic" | "host-error" => Self::Crash,
            "host-qmp-quit" | "host-signal" | "host-ui" => Self::Killed,
            _ => Self::Unknown,
        }
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
        assert_eq!(
            DeathReason::from_qemu_shutdown_cause("guest-shutdown"),
            DeathReason::Shutdown
        );
        assert_eq!(
            DeathReason::from_qemu_shutdown_cause("guest-reset"),
            DeathReason::Reboot
        );
        assert_eq!(
            DeathReason::from_qemu_shutdown_cause("guest-panic"),
            DeathReason::Crash
        );
        assert_eq!(
            DeathReason::from_qemu_shutdown_cause("host-signal"),
            DeathReason::Killed
        );
        assert_eq!(
            DeathReason::from_qemu_shutdown_cause("snapshot-load"),
            DeathReason::Unknown
        );
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
