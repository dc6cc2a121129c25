// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Boots vmbase_example on a CPU without FEAT_RNG (QEMU's cortex-a57, and QEMU offers no SMCCC
//! TRNG): vmbase must still boot, warn on the console that the stack guard is not random, and
//! refuse to make up entropy. Its own test binary, because it puts a QEMU wrapper first on PATH
//! for the whole process.

mod backend;

use backend::{DeathReason, boot_example};
use vmbase_test_harness::{assert_in_order, use_cpu_without_rng};

#[test]
fn example_boots_without_entropy_and_says_so() {
    // SAFETY: This test binary has this one test, so no other thread uses the environment.
    let _qemu_wrapper = unsafe { use_cpu_without_rng() };

    let run = boot_example(300, 1, false);
    let lines = run.console;
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
        run.reason,
        DeathReason::Shutdown,
        "console:\n{}",
        lines.join("\n")
    );
}
