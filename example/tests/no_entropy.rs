// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Boots vmbase_example on a CPU without FEAT_RNG (QEMU's cortex-a57, and QEMU offers no SMCCC
//! TRNG): vmbase must still boot, warn on the console that the stack guard is not random, and
//! refuse to make up entropy. Its own test binary, because it puts a QEMU wrapper first on PATH
//! for the whole process.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use vmbase_test_harness::{assert_in_order, boot, guest_image};
use vmclient::{DeathReason, VirtualMachineRawConfig};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// A `qemu-system-aarch64` that runs the real one with `-cpu cortex-a57` instead of `-cpu max`.
const WRAPPER: &str = r#"#!/bin/sh
for arg in "$@"; do
    shift
    if [ "$arg" = max ]; then set -- "$@" cortex-a57; else set -- "$@" "$arg"; fi
done
exec "$REAL_QEMU" "$@"
"#;

#[test]
fn example_boots_without_entropy_and_says_so() {
    let image = guest_image("vmbase_example");
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
