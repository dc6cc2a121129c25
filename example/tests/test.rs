// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Integration test for vmbase_example: boots vmbase_example.bin as a VM's bootloader, the way
//! VirtualizationService does on Android (here through the QEMU launcher), reads its console
//! through a pipe and checks both what it printed and how it ended.

mod harness;

use harness::{assert_in_order, boot, guest_image};
use std::time::Duration;
use vmclient::{DeathReason, VirtualMachineRawConfig};

/// How long the example may take under TCG emulation; it needs well under a second.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

fn example_config(memory_mib: u32, num_cpus: u32) -> VirtualMachineRawConfig {
    VirtualMachineRawConfig {
        name: "VmBaseTest".to_owned(),
        bootloader: Some(guest_image("vmbase_example")),
        memory_mib,
        num_cpus,
        platform_version: "~1.0".to_owned(),
        ..Default::default()
    }
}

const EXPECTED_LINES: &[&str] = &[
    "[INFO] Hello world",
    "[INFO] x0=0x0000000080000000, x1=0x0000000000000000, x2=0x0000000000000000, x3=0x0000000000000000",
    "[INFO] dtb    0x80000000..0x80200000",
    "[INFO] Data looks good",
    "[INFO] Stack guard at TLS",
    "[INFO] Entropy works: two draws differ (source: ",
    "[INFO] Stack guard digest: [",
    "[INFO] Vec: [1, 2, 3, 4, 5]",
    "[INFO] Page table built; no mapping is both writable and executable.",
    "[INFO] Activated.",
    "[INFO] Data looks good",
    "[INFO] SHA-512 of \"hello world\" is correct",
    "[INFO] RAM from /memory: 0x80000000..",
    "[INFO] Mapped read-write at run time, wrote and read back: 0x",
    "[INFO] Unmapped it, mapped it read-only and read the same data back",
    "[INFO] The tracker refuses the image and memory outside RAM",
    "[INFO] Entering a stand-in payload with the MMU off; it powers off if the handoff is right",
];

#[test]
fn example_boots_and_shuts_down() {
    let (reason, lines) = boot(&example_config(300, 1), BOOT_TIMEOUT);
    assert_in_order(&lines, EXPECTED_LINES);
    assert_eq!(
        reason,
        DeathReason::Shutdown,
        "console:\n{}",
        lines.join("\n")
    );
}

#[test]
fn stack_guard_differs_between_boots() {
    let guard_digest = || {
        let (reason, lines) = boot(&example_config(300, 1), BOOT_TIMEOUT);
        assert_eq!(
            reason,
            DeathReason::Shutdown,
            "console:\n{}",
            lines.join("\n")
        );
        let digest = lines
            .iter()
            .find(|line| line.starts_with("[INFO] Stack guard digest: "))
            .cloned();
        digest.unwrap_or_else(|| panic!("no stack guard digest; console:\n{}", lines.join("\n")))
    };
    assert_ne!(guard_digest(), guard_digest());
}

#[test]
fn example_runs_with_small_and_large_memory_and_many_cpus() {
    for (memory_mib, num_cpus) in [(64, 1), (2048, 1), (300, 4)] {
        let (reason, lines) = boot(&example_config(memory_mib, num_cpus), BOOT_TIMEOUT);
        assert_in_order(&lines, EXPECTED_LINES);
        assert_eq!(
            reason,
            DeathReason::Shutdown,
            "{memory_mib} MiB, {num_cpus} CPUs"
        );
    }
}

#[test]
fn a_guest_that_reboots_is_reported_as_a_failure() {
    let config = VirtualMachineRawConfig {
        name: "VmBaseRebootTest".to_owned(),
        bootloader: Some(guest_image("vmbase_faults")),
        params: Some("fault=reboot".to_owned()),
        memory_mib: 64,
        ..Default::default()
    };
    let (reason, lines) = boot(&config, BOOT_TIMEOUT);
    assert_in_order(&lines, &["fault guest: injecting reboot"]);
    assert_eq!(reason, DeathReason::Reboot);
}

/// Device trees the example cannot use: it must still boot, on the fallback console (crosvm's
/// 8250 at 0x3f8, which QEMU does not have, so nothing reaches this console) and shut down.
#[test]
fn example_survives_a_corrupt_device_tree_from_the_host() {
    let qemu_tree = std::fs::read(harness::repository_root().join("tests/data/qemu-virt.dtb"))
        .expect("read the QEMU device tree");
    let mut claims_too_much = qemu_tree.clone();
    claims_too_much[4..8].copy_from_slice(&0x0100_0000u32.to_be_bytes());
    let corrupt_trees = [
        ("garbage", vec![0xa5; 4096]),
        ("truncated", qemu_tree[..200].to_vec()),
        ("larger than its region", claims_too_much),
    ];
    for (what, tree) in corrupt_trees {
        let file = tempfile::NamedTempFile::new().expect("create device tree file");
        std::fs::write(file.path(), tree).expect("write device tree");
        let config = VirtualMachineRawConfig {
            device_tree: Some(file.path().to_owned()),
            ..example_config(300, 1)
        };
        let (reason, lines) = boot(&config, BOOT_TIMEOUT);
        assert_eq!(reason, DeathReason::Shutdown, "{what} device tree");
        assert_eq!(lines, Vec::<String>::new(), "{what} device tree");
    }
}
