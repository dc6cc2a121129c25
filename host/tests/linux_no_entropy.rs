// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! vmbase_linuxboot on a CPU without FEAT_RNG (QEMU's cortex-a57; QEMU offers no SMCCC TRNG):
//! with no entropy for the kernel's seeds it must refuse to boot, in one line. Its own test
//! binary, because it puts a QEMU wrapper first on PATH for the whole process.

mod common;

use common::linux::LinuxBoot;
use std::os::unix::fs::PermissionsExt;
use vmbase_test_harness::guest_image;
use vmclient::DeathReason;

/// A `qemu-system-aarch64` that runs the real one with `-cpu cortex-a57` instead of `-cpu max`.
const WRAPPER: &str = r#"#!/bin/sh
for arg in "$@"; do
    shift
    if [ "$arg" = max ]; then set -- "$@" cortex-a57; else set -- "$@" "$arg"; fi
done
exec "$REAL_QEMU" "$@"
"#;

#[test]
fn vmbase_linuxboot_refuses_to_boot_without_entropy() {
    let firmware = guest_image("vmbase_linuxboot");
    let path = std::env::var_os("PATH").expect("PATH is set");
    let real_qemu = std::env::split_paths(&path)
        .map(|directory| directory.join("qemu-system-aarch64"))
        .find(|qemu| qemu.is_file())
        .expect("qemu-system-aarch64 on PATH");
    let directory = tempfile::tempdir().unwrap();
    let wrapper = directory.path().join("qemu-system-aarch64");
    std::fs::write(&wrapper, WRAPPER).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(
        std::iter::once(directory.path().to_owned()).chain(std::env::split_paths(&path)),
    )
    .unwrap();
    // SAFETY: This test binary has this one test, so no other thread reads the environment.
    unsafe {
        std::env::set_var("PATH", path);
        std::env::set_var("REAL_QEMU", real_qemu);
    }

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
