// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Boots vmbase_example on a CPU without FEAT_RNG (QEMU's cortex-a57, and QEMU offers no SMCCC
//! TRNG): vmbase must still boot, warn on the console that the stack guard is not random, and
//! refuse to make up entropy. Its own test binary, because it puts a QEMU wrapper first on PATH
//! for the whole process.

use std::time::Duration;
use vmbase_test_harness::{assert_in_order, boot, guest_image, use_cpu_without_rng};
use vmclient::{DeathReason, VirtualMachineRawConfig};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn example_boots_without_entropy_and_says_so() {
    let image = guest_image("vmbase_example");
    // SAFETY: This test binary has this one test, so no other thread uses the environment.
    let _qemu_wrapper = unsafe { use_cpu_without_rng() };

    let config = VirtualMachineRawConfig {
        name: "VmBaseNoEntropyTest".to_owned(),
        bootloader: Some(image),
        memory_mib: 300,
        num_cpus: 1,
        platform_version: "~1.0".to_owned(),
        ..Default::default()
    };
    let boot = boot(&config, BOOT_TIMEOUT).expect("boot the example");
    let lines = boot.lines();
    assert_in_order(
        &lines,
        &[
            "vmbase: WARNING: no entropy source (no SMCCC TRNG, no RNDR): the stack protector guard is NOT random on this boot",
            "[INFO] Hello world",
            "[INFO] Stack guard at TLS",
            "[INFO] No entropy: no entropy source (no SMCCC TRNG, no RNDR)",
            "[INFO] Activated.",
        ],
    );
    assert_eq!(
        boot.reason,
        DeathReason::Shutdown,
        "console:\n{}",
        lines.join("\n")
    );
}
