// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Boots Debian's real arm64 kernel with a busybox initramfs: directly, and through a firmware.

mod common;

use common::linux::{
    LINUX_MEMORY_MIB, LinuxBoot, debian_kernel, expected_init_report, init_report,
};
use common::{REGISTER_PRINTING_FIRMWARE, assemble};
use std::fs;
use vmclient::DeathReason;

/// The command line the tests give; the kernel's starts with `panic=-1`, as under crosvm.
const PARAMS: &str = "vmbase.test=linux";

/// What init reports about `/chosen` seeds. QEMU's tree has both; Linux consumes them early:
/// it zeroes `kaslr-seed` in place but deletes `rng-seed`, so only the first is still visible.
const SEED_REPORT: [&str; 2] = ["kaslr-seed: present", "rng-seed: absent"];

/// Asserts the kernel's own banner, init's report and a clean power-off.
fn assert_linux_ran(reason: DeathReason, console: &str) {
    assert!(
        console.contains("Linux version "),
        "no kernel banner:\n{console}"
    );
    let mut expected = expected_init_report(&format!("panic=-1 {PARAMS}"), LINUX_MEMORY_MIB);
    expected.extend(SEED_REPORT.map(str::to_owned));
    assert_eq!(init_report(console), expected, "{console}");
    assert_eq!(reason, DeathReason::Shutdown, "{console}");
}

#[test]
fn debian_kernel_boots_directly() {
    let (reason, console) = LinuxBoot::new(PARAMS, None).boot();
    assert_linux_ran(reason, &console);
}

#[test]
fn debian_kernel_boots_through_a_firmware_with_crosvm_registers() {
    let firmware = assemble(REGISTER_PRINTING_FIRMWARE);
    let (reason, console) = LinuxBoot::new(PARAMS, Some(&firmware.image)).boot();
    let fdt = 0x8000_0000 + (u64::from(LINUX_MEMORY_MIB) << 20) - (2 << 20) - 0x1_0000;
    let kernel_size = fs::metadata(debian_kernel()).unwrap().len();
    let registers = format!(
        "firmware: x0={fdt:016x} x1={:016x} x2={kernel_size:016x} x3={:016x}\n",
        0x8000_0000_u64, 0
    );
    assert!(
        console.starts_with(&registers),
        "expected {registers:?} first in:\n{console}"
    );
    assert_linux_ran(reason, &console);
}
