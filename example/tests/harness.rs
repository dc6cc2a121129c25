// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Shared by the host tests that boot guests: the raw guest images under out/, built first
//! (`make guests`) so that a test never runs a stale image and never skips for want of one, and
//! booting one with its console read through a pipe.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::thread;
use std::time::Duration;
use vmclient::{DeathReason, VirtualMachineRawConfig, VmInstance};

/// The repository root.
pub fn repository_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is inside the repository")
}

/// The path of `out/NAME.bin`, after bringing every guest image up to date.
pub fn guest_image(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = Command::new("make")
            .args(["--no-print-directory", "-s", "guests"])
            .current_dir(repository_root())
            .status()
            .expect("run make guests");
        assert!(status.success(), "make guests failed: {status}");
    });
    let image = repository_root().join("out").join(format!("{name}.bin"));
    assert!(image.is_file(), "{} was not built", image.display());
    image
}

/// Boots `config`, returning how the VM ended (`Killed` after `timeout`) and its console lines.
/// QEMU's own messages go to an unnamed temporary file.
pub fn boot(config: &VirtualMachineRawConfig, timeout: Duration) -> (DeathReason, Vec<String>) {
    let (reader, writer) = std::io::pipe().expect("create console pipe");
    let log = tempfile::tempfile().expect("create log file");
    let mut vm = VmInstance::create(config, Some(File::from(OwnedFd::from(writer))), Some(log))
        .expect("create VM");
    let console = thread::spawn(move || {
        BufReader::new(reader)
            .lines()
            .map_while(Result::ok)
            .collect()
    });
    vm.start().expect("start VM");
    let reason = vm
        .wait_for_death_with_timeout(timeout)
        .unwrap_or_else(|| vm.kill());
    // Dropping the VM closes the last write end of the pipe, which ends the reader.
    drop(vm);
    (reason, console.join().expect("console reader"))
}

/// Asserts that `lines` contains lines starting with each of `expected`, in order.
pub fn assert_in_order(lines: &[String], expected: &[&str]) {
    let mut remaining = lines.iter();
    for want in expected {
        assert!(
            remaining.any(|line| line.starts_with(want)),
            "missing (or out of order) console line {want:?}; console was:\n{}",
            lines.join("\n")
        );
    }
}
