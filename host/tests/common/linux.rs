// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Booting Debian's arm64 kernel with a busybox initramfs whose init reports what it saw.
//!
//! The kernel and busybox come from Debian's arm64 packages, which `tools/install-deps.sh linux`
//! fetches into `$XDG_CACHE_HOME/vmbase/linux` (default `~/.cache/vmbase/linux`); the tests run
//! it the first time.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;
use tempfile::TempDir;
use vmbase_test_harness::{linux_cache_dir, newc_archive};
use vmclient::{DeathReason, VirtualMachineRawConfig};

/// RAM for the Linux tests: enough for Debian's kernel, and not a round number, so that the
/// size init reports is clearly the configured one.
pub const LINUX_MEMORY_MIB: u32 = 300;

/// Far more than a boot to init and back needs here (about 2 s with `pauth-impdef=on`, on a
/// loaded 2-core host several times that), so a hang fails the test instead of blocking it.
const LINUX_BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// What every line the test's init prints starts with.
pub const INIT_PREFIX: &str = "vmbase-init: ";

/// The test's `/init`: prints a marker, the command line, each `/memory` node's `reg` as hex,
/// whether `/chosen` still has the seeds, and the size of the device tree the kernel was given
/// (`/sys/firmware/fdt`, the tree as the kernel received it, with the seeds it consumed erased
/// in place), then powers off.
const INIT_SCRIPT: &str = r#"#!/bin/busybox sh
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
echo "vmbase-init: started"
echo "vmbase-init: cmdline: $($bb cat /proc/cmdline)"
for reg in /proc/device-tree/memory*/reg; do
    echo "vmbase-init: memory reg: $($bb od -An -v -tx1 "$reg" | $bb tr -d ' \n')"
done
for seed in kaslr-seed rng-seed; do
    if [ -e /proc/device-tree/chosen/$seed ]; then
        echo "vmbase-init: $seed: present"
    else
        echo "vmbase-init: $seed: absent"
    fi
done
echo "vmbase-init: fdt bytes: $($bb wc -c < /sys/firmware/fdt | $bb tr -d ' ')"
$bb poweroff -f
"#;

/// `directory`, after `tools/install-deps.sh ARGUMENT` fetched `files` (what) into it if any
/// was missing.
fn fetched(argument: &str, directory: PathBuf, files: &[&str], what: &str) -> PathBuf {
    let present = || files.iter().all(|file| directory.join(file).is_file());
    if !present() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/install-deps.sh");
        let output = Command::new(&script)
            .arg(argument)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
        assert!(
            output.status.success() && present(),
            "{} {argument} did not fetch {what} into {}: {}",
            script.display(),
            directory.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    directory
}

/// Where `tools/install-deps.sh linux` puts Debian's kernel and busybox; fetched there first if
/// they are missing, once per test process.
fn linux_cache() -> &'static Path {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| {
        let linux = linux_cache_dir().expect("neither XDG_CACHE_HOME nor HOME is set");
        fetched(
            "linux",
            linux,
            &["Image", "busybox"],
            "Debian's arm64 kernel and busybox",
        )
    })
}

/// Where `tools/install-deps.sh qemu-arm64` puts Debian's arm64 `qemu-system-aarch64` and its
/// libraries (`lib/`, with the dynamic loader), beside the kernel's cache; fetched there first
/// if they are missing, once per test process.
pub fn arm64_qemu_cache() -> &'static Path {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| {
        let linux = linux_cache_dir().expect("neither XDG_CACHE_HOME nor HOME is set");
        fetched(
            "qemu-arm64",
            linux.with_file_name("qemu-arm64"),
            &["qemu-system-aarch64", "lib/ld-linux-aarch64.so.1"],
            "Debian's arm64 QEMU and its libraries",
        )
    })
}

/// Debian's static arm64 busybox.
pub fn debian_busybox() -> PathBuf {
    linux_cache().join("busybox")
}

/// Debian's arm64 kernel, an uncompressed `Image`.
pub fn debian_kernel() -> PathBuf {
    linux_cache().join("Image")
}

/// A newc cpio archive holding busybox as `/bin/busybox`, `/dev/console` and the test's
/// `/init`.
pub fn busybox_initramfs() -> Vec<u8> {
    let busybox = fs::read(debian_busybox()).unwrap();
    newc_archive(&[
        ("bin", 0o040_755, b""),
        ("dev", 0o040_755, b""),
        ("proc", 0o040_755, b""),
        ("sys", 0o040_755, b""),
        ("dev/console", 0o020_600, b""),
        ("bin/busybox", 0o100_755, &busybox),
        ("init", 0o100_755, INIT_SCRIPT.as_bytes()),
    ])
    .unwrap()
}

/// A Linux boot: its config, and the directory holding its initramfs and any file a test adds.
pub struct LinuxBoot {
    pub dir: TempDir,
    pub config: VirtualMachineRawConfig,
}

impl LinuxBoot {
    /// Debian's kernel with the busybox initramfs, `params` and [`LINUX_MEMORY_MIB`]; with a
    /// `firmware`, booted through it.
    pub fn new(params: &str, firmware: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let initrd = dir.path().join("initramfs.cpio");
        fs::write(&initrd, busybox_initramfs()).unwrap();
        let config = VirtualMachineRawConfig {
            name: "vmclient-linux-test".to_owned(),
            kernel: Some(debian_kernel()),
            initrd: Some(initrd),
            params: Some(params.to_owned()),
            firmware: firmware.map(Path::to_owned),
            memory_mib: LINUX_MEMORY_MIB,
            ..Default::default()
        };
        Self { dir, config }
    }

    /// Boots, and returns how the VM ended and its console output. A VM still running after
    /// the timeout is killed, and reported as such.
    pub fn boot(&self) -> (DeathReason, String) {
        super::require_qemu();
        let boot = vmbase_test_harness::boot(&self.config, LINUX_BOOT_TIMEOUT).unwrap();
        (boot.reason, boot.console)
    }

    /// [`boot`](Self::boot), paused for gdb-multiarch, which runs `script`
    /// (`vmbase_test_harness::boot_under_gdb`).
    pub fn boot_under_gdb(&self, script: &[&str]) -> (DeathReason, String) {
        super::require_qemu();
        let (boot, _) =
            vmbase_test_harness::boot_under_gdb(&self.config, script, LINUX_BOOT_TIMEOUT);
        (boot.reason, boot.console)
    }
}

/// The lines the test's init printed, without their prefix.
pub fn init_report(console: &str) -> Vec<&str> {
    console
        .lines()
        .filter_map(|line| line.split_once(INIT_PREFIX).map(|(_, report)| report))
        .collect()
}

/// What init should report for a VM with `memory_mib` of RAM at `0x8000_0000` and command line
/// `cmdline`, before the seed lines.
pub fn expected_init_report(cmdline: &str, memory_mib: u32) -> Vec<String> {
    let size = u64::from(memory_mib) << 20;
    vec![
        "started".to_owned(),
        format!("cmdline: {cmdline}"),
        format!("memory reg: {:016x}{size:016x}", 0x8000_0000_u64),
    ]
}
