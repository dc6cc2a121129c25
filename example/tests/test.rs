// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Integration test for vmbase_example: boots vmbase_example.bin as a VM's bootloader, reads its
//! console through a pipe and checks both what it printed and how it ended. The same file builds
//! in both trees: under Soong (Android) it boots the example through VirtualizationService, under
//! Cargo through this repository's QEMU launcher (see `backend`).

mod backend;

use backend::{DeathReason, boot_example};
use vmbase_console_check::assert_in_order;

const EXPECTED_LINES: &[&str] = &[
    "[INFO] Hello world",
    "[INFO] x0=0x0000000080000000, x1=0x0000000000000000, x2=0x0000000000000000, x3=0x0000000000000000",
    "[INFO] dtb    0x80000000..0x80200000",
    "[INFO] Data looks good",
    "[INFO] Stack guard at TLS",
    "[INFO] Entropy works: two draws differ (source: ",
    HASH_LINES[0],
    "[INFO] Vec: [1, 2, 3, 4, 5]",
    "[INFO] Page table built; no mapping is both writable and executable.",
    "[INFO] Activated.",
    "[INFO] Data looks good",
    HASH_LINES[1],
    "[INFO] RAM from /memory: 0x80000000..",
    "[INFO] Mapped read-write at run time, wrote and read back: 0x",
    "[INFO] Unmapped it, mapped it read-only and read the same data back",
    "[INFO] The tracker refuses the image and memory outside RAM",
    "[INFO] Entering a stand-in payload with the MMU off; it powers off if the handoff is right",
];

/// Whether the booted image checks SHA-512 and prints a digest of its stack guard: Soong builds
/// the example without its `sha2` feature (Android 15 has no no_std SHA-2 crate), `make guests`
/// with it.
const HASHES: bool = !cfg!(target_os = "android");

/// What only an image built with the `sha2` feature prints ([`HASHES`]).
const HASH_LINES: [&str; 2] = [
    "[INFO] Stack guard digest: [",
    "[INFO] SHA-512 of \"hello world\" is correct",
];

/// The lines the backend's image prints, in order.
fn expected_lines() -> Vec<&'static str> {
    EXPECTED_LINES
        .iter()
        .copied()
        .filter(|line| HASHES || !HASH_LINES.contains(line))
        .collect()
}

#[test]
fn example_boots_and_shuts_down() {
    let run = boot_example(300, 1, false);
    assert_in_order(&run.console, &expected_lines());
    assert_eq!(
        run.reason,
        DeathReason::Shutdown,
        "console:\n{}",
        run.console.join("\n")
    );
}

/// In a protected VM (under vm's pKVM double, or pKVM on a device), vmbase enrolls in the MMIO
/// guard before `main` and the example runs exactly as without protection.
#[test]
fn example_boots_protected_enrolled_in_the_mmio_guard() {
    let run = boot_example(300, 1, true);
    let enrolled = ["vmbase: enrolled in the hypervisor's MMIO guard; console at 0x"];
    assert_in_order(&run.console, &enrolled);
    assert_in_order(&run.console, &expected_lines());
    assert_eq!(
        run.reason,
        DeathReason::Shutdown,
        "console:\n{}",
        run.console.join("\n")
    );
}

#[test]
#[cfg_attr(
    target_os = "android",
    ignore = "the Soong image prints no stack guard digest (no sha2)"
)]
fn stack_guard_differs_between_boots() {
    let guard_digest = || {
        let run = boot_example(300, 1, false);
        assert_eq!(
            run.reason,
            DeathReason::Shutdown,
            "console:\n{}",
            run.console.join("\n")
        );
        let digest = run
            .console
            .iter()
            .find(|line| line.starts_with("[INFO] Stack guard digest: "))
            .cloned();
        digest.unwrap_or_else(|| {
            panic!(
                "no stack guard digest; console:\n{}",
                run.console.join("\n")
            )
        })
    };
    assert_ne!(guard_digest(), guard_digest());
}

#[test]
fn example_runs_with_small_and_large_memory_and_many_cpus() {
    for (memory_mib, num_cpus) in [(64, 1), (2048, 1), (300, 4)] {
        let run = boot_example(memory_mib, num_cpus, false);
        assert_in_order(&run.console, &expected_lines());
        assert_eq!(
            run.reason,
            DeathReason::Shutdown,
            "{memory_mib} MiB, {num_cpus} CPUs"
        );
    }
}
