// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! vmbase_linuxboot on a CPU without FEAT_RNG (QEMU's cortex-a57; QEMU offers no SMCCC TRNG):
//! with no entropy for the kernel's seeds it must refuse to boot, in one line. Its own test
//! binary, because it puts a QEMU wrapper first on PATH for the whole process.

mod common;

use common::linux::LinuxBoot;
use vmbase_test_harness::{guest_image, use_cpu_without_rng};
use vmclient::DeathReason;

#[test]
fn vmbase_linuxboot_refuses_to_boot_without_entropy() {
    let firmware = guest_image("vmbase_linuxboot");
    // SAFETY: This test binary has this one test, so no other thread uses the environment.
    let _qemu_wrapper = unsafe { use_cpu_without_rng() };

    let (ended, console) = LinuxBoot::new("", Some(&firmware)).boot();
    assert_eq!(
        console.lines().collect::<Vec<_>>(),
        [
            "vmbase: WARNING: no entropy source (no SMCCC TRNG, no RNDR): the stack protector \
             guard is NOT random on this boot",
            "linuxboot: refused: no entropy for the kernel's seeds: no entropy source (no SMCCC \
             TRNG, no RNDR)",
        ]
    );
    assert_eq!(ended, DeathReason::Reboot, "{console}");
}
