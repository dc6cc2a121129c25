// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Runs the `vm` binary: booting, exit codes, and precise errors for bad input.
//!
//! Each run gets its own `TMPDIR`, which must be empty afterwards, and a unique `--name`, which
//! no process may still carry afterwards: nothing is left behind, whatever happened.

mod common;

use common::{
    HELLO, REGISTER_PRINTING_FIRMWARE, RESET, SPIN, assemble, processes_with_argument, require_qemu,
};
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tempfile::TempDir;

/// What a `vm` run printed and how it exited.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A unique VM name for this test process.
fn unique_name() -> String {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "vm-cli-test-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A `vm` command with its own `TMPDIR`; `finish` checks nothing was left behind.
struct Vm {
    command: Command,
    temp_dir: TempDir,
    name: String,
}

impl Vm {
    fn new(args: &[&str]) -> Self {
        let temp_dir = tempfile::tempdir().unwrap();
        let name = unique_name();
        let mut command = Command::new(env!("CARGO_BIN_EXE_vm"));
        command
            .args(args)
            .args(["--name", &name])
            .env("TMPDIR", temp_dir.path());
        command.stdin(Stdio::null());
        Self {
            command,
            temp_dir,
            name,
        }
    }

    fn run(mut self) -> Run {
        let output = self.command.output().unwrap();
        self.finish(output)
    }

    fn finish(self, output: Output) -> Run {
        let leftovers: Vec<_> = fs::read_dir(self.temp_dir.path()).unwrap().collect();
        assert!(
            leftovers.is_empty(),
            "temporary files left behind: {leftovers:?}"
        );
        assert_eq!(processes_with_argument(&self.name), [], "QEMU left running");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

fn vm(args: &[&str]) -> Run {
    Vm::new(args).run()
}

fn run_path(image: &Path) -> String {
    image.to_str().unwrap().to_owned()
}

/// Asserts `vm` refused to start with exit code 1 and an error containing `message`.
fn assert_start_failed(run: &Run, message: &str) {
    assert_eq!(
        run.code,
        Some(1),
        "stdout: {} stderr: {}",
        run.stdout,
        run.stderr
    );
    assert!(run.stderr.starts_with("vm: error: "), "{}", run.stderr);
    assert!(
        run.stderr.contains(message),
        "expected {message:?} in {:?}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn boots_bootloader_with_console_on_stdout() {
    require_qemu();
    let guest = assemble(HELLO);
    let run = vm(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--mem",
        "16",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "hello\nVM ended: Shutdown\n");
}

#[test]
fn boots_json_config_with_relative_paths_and_console_file() {
    require_qemu();
    let guest = assemble(HELLO);
    let dir = guest.dir.path();
    fs::write(dir.join("disk.img"), [0; 4096]).unwrap();
    fs::write(
        dir.join("vm.json"),
        r#"{
            "name": "ignored-by-the-name-flag",
            "bootloader": "guest.bin",
            "params": "quiet",
            "disks": [{"image": "disk.img", "writable": false}],
            "protected": false,
            "memory_mib": 32,
            "cpu_topology": "one_cpu",
            "platform_version": "~1.0"
        }"#,
    )
    .unwrap();
    let console = dir.join("console.txt");
    let log = dir.join("log.txt");
    let run = vm(&[
        "run",
        dir.join("vm.json").to_str().unwrap(),
        "--console",
        console.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "VM ended: Shutdown\n");
    assert_eq!(fs::read_to_string(console).unwrap(), "hello\n");
    assert_eq!(fs::read_to_string(log).unwrap(), "");
}

#[test]
fn reset_exits_32() {
    require_qemu();
    let guest = assemble(RESET);
    let run = vm(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--cpus",
        "2",
    ]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(32), "VM ended: Reboot\n")
    );
}

#[test]
fn timeout_kills_spinning_guest() {
    require_qemu();
    let guest = assemble(SPIN);
    let run = vm(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--timeout",
        "0.5",
    ]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(137), "VM ended: Killed\n")
    );
}

#[test]
fn icount_run_prints_the_instruction_count() {
    require_qemu();
    let guest = assemble(HELLO);
    let run = vm(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--icount",
        "1",
        // QEMU warns that with sleep=off no timer is active: keep its log out of stdout.
        "--log",
        "/dev/null",
    ]);
    // The boot stub's 6 instructions and the guest's 34 (see boot.rs).
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "hello\nVM ended: Shutdown\ninstructions: 40\n")
    );

    let guest = assemble(RESET);
    let run = vm(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--icount",
        "0",
        "--log",
        "/dev/null",
    ]);
    let count = run
        .stdout
        .strip_prefix("VM ended: Reboot\ninstructions: ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .and_then(|count| count.parse::<u64>().ok());
    assert!(count.is_some_and(|count| count > 0), "{}", run.stdout);
    assert_eq!(run.code, Some(32));
}

#[test]
fn icount_run_killed_prints_no_count() {
    require_qemu();
    let guest = assemble(SPIN);
    let run = vm(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--icount",
        "0",
        "--timeout",
        "0.5",
        "--log",
        "/dev/null",
    ]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(137), "VM ended: Killed\n")
    );
}

#[test]
fn sigterm_kills_the_vm() {
    require_qemu();
    let guest = assemble(SPIN);
    let mut vm = Vm::new(&["run", "--bootloader", &run_path(&guest.image)]);
    let child = vm
        .command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until QEMU (a child of `vm` with the VM's name) runs, so the signal lands while the
    // VM does.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let is_qemu = |&(_, parent): &(u32, u32)| parent == child.id();
    while !processes_with_argument(&vm.name).iter().any(is_qemu) {
        assert!(std::time::Instant::now() < deadline, "QEMU never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let run = vm.finish(child.wait_with_output().unwrap());
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(128 + 15), "VM ended: Killed\n")
    );
}

#[test]
fn help_explains_usage_and_exit_codes() {
    let output = Command::new(env!("CARGO_BIN_EXE_vm"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "Usage: vm run [OPTIONS] <CONFIG.json|--bootloader <PATH>|--kernel <IMAGE>>",
        "--initrd <FILE>",
        "--firmware <FW.bin>",
        "x1 = kernel entry point, x2 = kernel size in bytes",
        "--mem <MIB>",
        "--cpus <N>",
        "--console <PATH>",
        "--log <PATH>",
        "--gdb <PORT>",
        "--timeout <SECONDS>",
        "--icount <SHIFT>",
        "`instructions: N`",
        "0      Shutdown",
        "137    Killed",
    ] {
        assert!(
            help.contains(expected),
            "{expected:?} missing from:\n{help}"
        );
    }
}

#[test]
fn missing_image() {
    let run = vm(&["run", "--bootloader", "/nonexistent/guest.bin"]);
    assert_start_failed(
        &run,
        "cannot read bootloader image /nonexistent/guest.bin: No such file or directory",
    );
}

#[test]
fn empty_image() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("empty.bin");
    fs::write(&image, []).unwrap();
    let run = vm(&["run", "--bootloader", &run_path(&image)]);
    assert_start_failed(&run, "is empty");
}

#[test]
fn unreadable_image() {
    let dir = tempfile::tempdir().unwrap();
    let run = vm(&["run", "--bootloader", &run_path(dir.path())]);
    assert_start_failed(&run, "it is not a regular file");
}

#[test]
fn image_too_large_for_memory() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("big.bin");
    fs::write(&image, vec![0; 3 << 20]).unwrap();
    let run = vm(&["run", "--bootloader", &run_path(&image), "--mem", "4"]);
    assert_start_failed(
        &run,
        "is 3145728 bytes but only 2097152 bytes of RAM follow its load address 0x8020_0000 with \
         memory_mib 4; raise memory_mib to at least 5",
    );
}

#[test]
fn memory_too_small() {
    let guest = assemble(HELLO);
    let run = vm(&["run", "--bootloader", &run_path(&guest.image), "--mem", "2"]);
    assert_start_failed(&run, "memory_mib 2 is too small");
}

#[test]
fn memory_too_large() {
    let guest = assemble(HELLO);
    let run = vm(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--mem",
        "1000000",
    ]);
    assert_start_failed(&run, "memory_mib 1000000 is more than the limit of");
}

fn config_file(json: &str) -> (TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vm.json");
    fs::write(&path, json).unwrap();
    let path = run_path(&path);
    (dir, path)
}

#[test]
fn malformed_json() {
    let (_dir, path) = config_file("{\n  \"bootloader\": \"a.bin\"\n  \"memory_mib\": 16\n}");
    let run = vm(&["run", &path]);
    assert_start_failed(&run, "at line 3, column 3: expected `,` or `}`");
}

#[test]
fn unknown_field() {
    let (_dir, path) = config_file("{\"bootloader\": \"a.bin\", \"memory\": 16}");
    let run = vm(&["run", &path]);
    assert_start_failed(
        &run,
        "at line 1, column 32: unknown field `memory`, expected one of",
    );
}

#[test]
fn protected_vm() {
    let guest = assemble(HELLO);
    let config = guest.dir.path().join("vm.json");
    fs::write(&config, r#"{"bootloader": "guest.bin", "protected": true}"#).unwrap();
    let run = vm(&["run", &run_path(&config)]);
    assert_start_failed(&run, "protected VMs need pKVM");
}

#[test]
fn missing_kernel() {
    let (_dir, path) = config_file(r#"{"kernel": "Image"}"#);
    let run = vm(&["run", &path]);
    assert_start_failed(&run, "cannot read kernel ");
}

#[test]
fn missing_config() {
    let run = vm(&["run", "/nonexistent/vm.json"]);
    assert_start_failed(&run, "cannot read VM config /nonexistent/vm.json");
}

#[test]
fn qemu_not_installed() {
    let guest = assemble(HELLO);
    let empty_path = tempfile::tempdir().unwrap();
    let mut vm = Vm::new(&["run", "--bootloader", &run_path(&guest.image)]);
    vm.command.env("PATH", empty_path.path());
    let run = vm.run();
    assert_start_failed(&run, "install it with `apt-get install qemu-system-arm`");
}

#[test]
fn config_and_bootloader_together_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_vm"))
        .args(["run", "vm.json", "--bootloader", "a.bin"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used with"));
}

/// QEMU's device tree is dumped once per QEMU binary and machine options, then reused.
#[test]
fn device_tree_dumps_are_cached() {
    require_qemu();
    let guest = assemble(HELLO);
    let cache = tempfile::tempdir().unwrap();
    let cached_trees = || -> Vec<_> {
        fs::read_dir(cache.path().join("vmclient"))
            .map(|entries| entries.map(|entry| entry.unwrap().path()).collect())
            .unwrap_or_default()
    };
    let boot = |mem: &str| {
        let mut vm = Vm::new(&["run", "--bootloader", &run_path(&guest.image), "--mem", mem]);
        vm.command.env("XDG_CACHE_HOME", cache.path());
        vm.run()
    };
    assert_eq!(boot("16").stdout, "hello\nVM ended: Shutdown\n");
    let after_first = cached_trees();
    assert_eq!(after_first.len(), 1, "{after_first:?}");
    assert_eq!(boot("16").stdout, "hello\nVM ended: Shutdown\n");
    assert_eq!(
        cached_trees(),
        after_first,
        "the second boot reuses the dump"
    );
    // Other machine options are another dump.
    assert_eq!(boot("32").stdout, "hello\nVM ended: Shutdown\n");
    assert_eq!(cached_trees().len(), 2);
    // A damaged cache entry is replaced, not used.
    fs::write(&after_first[0], b"garbage").unwrap();
    assert_eq!(boot("16").stdout, "hello\nVM ended: Shutdown\n");
    assert!(
        fs::read(&after_first[0])
            .unwrap()
            .starts_with(&[0xd0, 0x0d, 0xfe, 0xed])
    );
}

/// An arm64 `Image` header with `image_size`, and nothing else: never booted, only placed.
fn fake_kernel(dir: &Path, image_size: u64) -> String {
    let mut header = vec![0; 64];
    header[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
    header[0x38..0x3c].copy_from_slice(b"ARM\x64");
    let path = dir.join("Image");
    fs::write(&path, header).unwrap();
    run_path(&path)
}

#[test]
fn firmware_is_entered_with_crosvm_registers_and_can_enter_the_payload() {
    let firmware = assemble(REGISTER_PRINTING_FIRMWARE);
    // Not an Image: with a firmware it is loaded at 0x8000_0000 as it is, and run by it here.
    let payload = assemble(HELLO);
    let payload_size = fs::metadata(&payload.image).unwrap().len();
    let run = vm(&[
        "run",
        "--kernel",
        &run_path(&payload.image),
        "--firmware",
        &run_path(&firmware.image),
        "--mem",
        "64",
    ]);
    assert_eq!(
        run.stdout,
        format!(
            "firmware: x0=0000000083df0000 x1=0000000080000000 x2={payload_size:016x} \
             x3=0000000000000000\nhello\nVM ended: Shutdown\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(run.code, Some(0));
}

#[test]
fn kernel_that_is_not_an_image_is_refused() {
    let payload = assemble(HELLO);
    let run = vm(&["run", "--kernel", &run_path(&payload.image)]);
    assert_start_failed(
        &run,
        "is not an arm64 Linux Image: it lacks the arm64 Image magic",
    );
}

#[test]
fn kernel_that_does_not_fit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = fake_kernel(dir.path(), 64 << 20);
    let run = vm(&["run", "--kernel", &kernel, "--mem", "64"]);
    assert_start_failed(&run, "need at least 67 MiB of RAM but memory_mib is 64");
}

#[test]
fn firmware_too_large_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = fake_kernel(dir.path(), 0x1000);
    let firmware = dir.path().join("fw.bin");
    fs::write(&firmware, vec![0; (4 << 20) + 1]).unwrap();
    let run = vm(&[
        "run",
        "--kernel",
        &kernel,
        "--firmware",
        &run_path(&firmware),
    ]);
    assert_start_failed(&run, "more than its 4 MiB region at 0x7fc0_0000");
}

#[test]
fn missing_initrd_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = fake_kernel(dir.path(), 0x1000);
    let run = vm(&[
        "run",
        "--kernel",
        &kernel,
        "--initrd",
        "/nonexistent/initrd",
    ]);
    assert_start_failed(&run, "cannot read initrd /nonexistent/initrd");
}

#[test]
fn bootloader_with_kernel_is_refused() {
    let (_dir, path) = config_file(r#"{"bootloader": "a.bin", "kernel": "Image"}"#);
    let run = vm(&["run", &path]);
    assert_start_failed(
        &run,
        "give a bootloader, or a kernel with an optional initrd",
    );
}
