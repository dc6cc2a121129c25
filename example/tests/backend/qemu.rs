// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The Cargo backend: the example image from `make guests`, booted by this repository's
//! QEMU launcher through the shared test harness.

use super::{BOOT_TIMEOUT, Run};
use vmbase_test_harness::{boot, guest_image};
use vmclient::VirtualMachineRawConfig;

/// Boots the example with `memory_mib` of RAM and `num_cpus` CPUs, in a protected VM (under the
/// pKVM double) if `protected`, and waits for it to end (a VM still running after the timeout is
/// killed: `Killed`).
pub fn boot_example(memory_mib: u32, num_cpus: u32, protected: bool) -> Run {
    let config = VirtualMachineRawConfig {
        name: "VmBaseTest".to_owned(),
        bootloader: Some(guest_image("vmbase_example")),
        memory_mib,
        num_cpus,
        protected_vm: protected,
        platform_version: "~1.0".to_owned(),
        ..Default::default()
    };
    let boot = boot(&config, BOOT_TIMEOUT).expect("boot the example under QEMU");
    Run {
        reason: boot.reason,
        console: boot.lines(),
    }
}
