// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Boots vmbase_virtio's `rng` test on a CPU without FEAT_RNG (QEMU's cortex-a57; QEMU offers no
//! SMCCC TRNG): `vmbase::rand` must then take its entropy from the virtio-rng fallback. Its own
//! test binary, because it puts a QEMU wrapper first on PATH for the whole process.

use std::time::Duration;
use vmbase_test_harness::{assert_in_order, boot_to_end as boot, guest_image, use_cpu_without_rng};
use vmclient::{DeathReason, VirtualMachineRawConfig};

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn rand_falls_back_to_virtio_rng() {
    let image = guest_image("vmbase_virtio");
    // SAFETY: This test binary has this one test, so no other thread uses the environment.
    let _qemu_wrapper = unsafe { use_cpu_without_rng() };

    let config = VirtualMachineRawConfig {
        name: "vmbase-virtio-rng-fallback".to_owned(),
        bootloader: Some(image),
        params: Some("virtio=rng".to_owned()),
        memory_mib: 64,
        ..Default::default()
    };
    let (reason, lines) = boot(&config, DEADLINE);
    assert_in_order(
        &lines,
        &[
            "vmbase: WARNING: no entropy source (no SMCCC TRNG, no RNDR)",
            "virtio guest: virtio-rng entropy ",
            "virtio guest: rand entropy from virtio-rng (fallback): ",
            "virtio guest: rng passed",
        ],
    );
    assert_eq!(reason, DeathReason::Shutdown, "{}", lines.join("\n"));
}
