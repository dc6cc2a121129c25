// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! How the integration test boots the example: one small interface, two backends. On Android
//! (Soong's `vmbase_example.integration_test`) AOSP's `vmclient` asks VirtualizationService for
//! a crosvm VM; elsewhere (Cargo) this repository's `vmclient` runs it under QEMU with crosvm's
//! memory map. Both crates name how a VM ended `vmclient::DeathReason`.

#[cfg(target_os = "android")]
mod android;
#[cfg(not(target_os = "android"))]
mod qemu;

#[cfg(target_os = "android")]
pub use android::boot_example;
#[cfg(not(target_os = "android"))]
pub use qemu::boot_example;
pub use vmclient::DeathReason;

use std::time::Duration;

/// How long the example may take; it needs well under a second, even under TCG emulation.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// One boot of the example.
pub struct Run {
    /// How the VM ended.
    pub reason: DeathReason,
    /// What the example wrote to its console, line by line.
    pub console: Vec<String>,
}
