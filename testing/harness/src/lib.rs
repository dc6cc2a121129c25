// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Boots a guest under the QEMU launcher (`vmclient`) and captures its console: the one helper
//! behind the host tests that boot guests and `make bench`. Guest images come from `make guests`,
//! run once per process, so that a test never boots a stale image and never skips for want of one.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::thread;
use std::time::Duration;
use vmclient::{DeathReason, VirtualMachineRawConfig, VmInstance};

#[path = "../../../example/tests/console.rs"]
mod console;

pub use console::assert_in_order;

/// The repository root.
pub fn repository_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The path of `out/NAME.bin`, after bringing every guest image up to date with `make guests`.
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

/// How one boot went.
#[derive(Debug)]
pub struct Boot {
    /// How the VM ended: `Killed` if it outlived the timeout.
    pub reason: DeathReason,
    /// Everything the guest wrote to its console.
    pub console: String,
    /// Guest instructions from reset to the end, when the config asked for `icount_shift` and
    /// the guest ended itself.
    pub instructions: Option<u64>,
}

impl Boot {
    /// The console, line by line.
    pub fn lines(&self) -> Vec<String> {
        self.console.lines().map(str::to_owned).collect()
    }
}

/// Boots `config` and waits for the VM to end, killing it after `timeout`. The console is read
/// through a pipe; QEMU's own messages go to an unnamed temporary file.
pub fn boot(config: &VirtualMachineRawConfig, timeout: Duration) -> Result<Boot, vmclient::Error> {
    let io = |action| move |source| vmclient::Error::Io { action, source };
    let (mut reader, writer) = std::io::pipe().map_err(io("create the console pipe"))?;
    let log = tempfile::tempfile().map_err(io("create the log file"))?;
    let mut vm = VmInstance::create(config, Some(File::from(OwnedFd::from(writer))), Some(log))?;
    let console = thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error ends the capture early; the assertions on the console then say so.
        let _ = reader.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    vm.start()?;
    let reason = vm
        .wait_for_death_with_timeout(timeout)
        .unwrap_or_else(|| vm.kill());
    let instructions = vm.instructions_executed();
    // Dropping the VM closes the last write end of the pipe, which ends the reader.
    drop(vm);
    Ok(Boot {
        reason,
        console: console.join().expect("console reader"),
        instructions,
    })
}

/// [`boot`] for a test: how the VM ended and its console lines, failing the test if the VM
/// cannot start.
pub fn boot_to_end(
    config: &VirtualMachineRawConfig,
    timeout: Duration,
) -> (DeathReason, Vec<String>) {
    let boot = boot(config, timeout).expect("start the guest");
    (boot.reason, boot.lines())
}
