// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Boots vmbase_virtio's `rng` test on a CPU without FEAT_RNG (QEMU's cortex-a57; QEMU offers no
//! SMCCC TRNG): `vmbase::rand` must then take its entropy from the virtio-rng fallback. Its own
//! test binary, because it puts a QEMU wrapper first on PATH for the whole process.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use vmbase_test_harness::{assert_in_order, boot_to_end as boot, guest_image};
use vmclient::{DeathReason, VirtualMachineRawConfig};

const DEADLINE: Duration = Duration::from_secs(30);

/// A `qemu-system-aarch64` that runs the real one with `-cpu cortex-a57` instead of `-cpu max`.
const WRAPPER: &str = r#"#!/bin/sh
for arg in "$@"; do
    shift
    if [ "$arg" = max ]; then set -- "$@" cortex-a57; else set -- "$@" "$arg"; fi
done
exec "$REAL_QEMU" "$@"
"#;

#[test]
fn rand_falls_back_to_virtio_rng() {
    let image = guest_image("vmbase_virtio");
    let real_qemu = std::env::split_paths(&std::env::var_os("PATH").expect("PATH is set"))
        .map(|directory| directory.join("qemu-system-aarch64"))
        .find(|path| path.is_file())
        .expect("qemu-system-aarch64 on PATH");
    let directory = tempfile::tempdir().expect("create temporary directory");
    let wrapper = directory.path().join("qemu-system-aarch64");
    std::fs::write(&wrapper, WRAPPER).expect("write QEMU wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .expect("make QEMU wrapper executable");
    let path = std::env::join_paths(
        std::iter::once(directory.path().to_owned())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .expect("join PATH");
    // SAFETY: This test binary has this one test, so no other thread reads the environment.
    unsafe {
        std::env::set_var("PATH", path);
        std::env::set_var("REAL_QEMU", real_qemu);
    }

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
