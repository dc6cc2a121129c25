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
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
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
        Self::in_temp_dir(args, tempfile::tempdir().unwrap())
    }

    /// A `vm` command whose `TMPDIR` is `temp_dir`.
    fn in_temp_dir(args: &[&str], temp_dir: TempDir) -> Self {
        let name = unique_name();
        let mut command = Command::new(env!("CARGO_BIN_EXE_vm"));
        command.args(args).env("TMPDIR", temp_dir.path());
        // `vm` without `run` takes no name (and can start nothing).
        if args.first() == Some(&"run") {
            command.args(["--name", &name]);
        }
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
    // Only warnings may come before the error.
    assert!(
        run.stderr
            .lines()
            .all(|line| line.starts_with("vm: warning: ") || line.starts_with("vm: error: ")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("vm: error: "), "{}", run.stderr);
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

/// Spawns `vm` with piped output and waits until its QEMU (a child with the VM's name) runs.
fn spawn_until_qemu_runs(vm: &mut Vm) -> Child {
    let child = vm
        .command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let is_qemu = |&(_, parent): &(u32, u32)| parent == child.id();
    while !processes_with_argument(&vm.name).iter().any(is_qemu) {
        assert!(Instant::now() < deadline, "QEMU never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Sends `signal` (e.g. "-TERM") to `pid`.
fn send_signal(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_kills_the_vm() {
    require_qemu();
    let guest = assemble(SPIN);
    let mut vm = Vm::new(&["run", "--bootloader", &run_path(&guest.image)]);
    let child = spawn_until_qemu_runs(&mut vm);
    send_signal("-TERM", child.id());
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
fn qemu_not_installed() {
    let guest = assemble(HELLO);
    let empty_path = tempfile::tempdir().unwrap();
    let mut vm = Vm::new(&["run", "--bootloader", &run_path(&guest.image)]);
    vm.command.env("PATH", empty_path.path());
    let run = vm.run();
    assert_start_failed(&run, "install it with `apt-get install qemu-system-arm`");
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

/// The example, built by `make guests`.
fn example_image() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../out/vmbase_example.bin");
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: run `make guests` first"
    );
    path.to_owned()
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
fn process_is_gone(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(')')
            .next()
            .unwrap()
            .trim_start()
            .starts_with('Z')
    })
}

/// Waits until no process carries `name`, failing after a generous bound.
fn wait_until_no_process_named(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let alive: Vec<_> = processes_with_argument(name)
            .into_iter()
            .filter(|&(pid, _)| !process_is_gone(pid))
            .collect();
        if alive.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "QEMU outlived vm: {alive:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn qemu_dies_with_vm_whatever_signal_kills_it() {
    require_qemu();
    let spin = assemble(SPIN);
    let hello = assemble(HELLO);
    for (signal, code) in [
        ("-KILL", None),
        ("-QUIT", Some(128 + 3)),
        ("-USR1", Some(128 + 10)),
    ] {
        let mut vm = Vm::new(&["run", "--bootloader", &run_path(&spin.image)]);
        let child = spawn_until_qemu_runs(&mut vm);
        send_signal(signal, child.id());
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), code, "after kill {signal}");
        wait_until_no_process_named(&vm.name);
        // A SIGKILLed vm cannot clean up: the next run reclaims its temporary directory.
        let next = Vm::in_temp_dir(
            &["run", "--bootloader", &run_path(&hello.image)],
            vm.temp_dir,
        );
        assert_eq!(next.run().stdout, "hello\nVM ended: Shutdown\n");
    }
}

#[test]
fn huge_timeouts_do_not_overflow() {
    require_qemu();
    let guest = assemble(HELLO);
    for timeout in ["1e19", "1e300", "inf"] {
        let run = vm(&[
            "run",
            "--bootloader",
            &run_path(&guest.image),
            "--timeout",
            timeout,
        ]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "hello\nVM ended: Shutdown\n"),
            "{}",
            run.stderr
        );
    }
}

/// Spawns `vm` and waits (within a bound) for a line on its stderr that contains `needle`.
fn spawn_until_stderr_says(vm: &mut Vm, needle: &str) -> Child {
    let mut child = vm
        .command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = sender.send(line.unwrap());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(remaining) {
            Ok(line) if line.contains(needle) => return child,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!("vm never said {needle:?}");
            }
        }
    }
}

#[test]
fn sigterm_while_waiting_for_a_console_fifo_reader() {
    let guest = assemble(HELLO);
    let fifo = guest.dir.path().join("console.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mut vm = Vm::new(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--console",
        &run_path(&fifo),
    ]);
    let child = spawn_until_stderr_says(&mut vm, "waiting for a reader to open the console FIFO");
    send_signal("-TERM", child.id());
    let run = vm.finish(child.wait_with_output().unwrap());
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(128 + 15), "VM ended: Killed\n")
    );
}

/// A directory with a fake `qemu-system-aarch64` that writes its pid to `$FAKE_QEMU_PID` and
/// hangs; with `dump_for_real`, device-tree dumps go to the real QEMU.
fn hanging_qemu(dump_for_real: bool) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v qemu-system-aarch64"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let dump = if dump_for_real {
        format!(
            "case \"$*\" in *dumpdtb=*) exec {} \"$@\";; esac\n",
            real.trim()
        )
    } else {
        String::new()
    };
    let script = dir.path().join("qemu-system-aarch64");
    fs::write(
        &script,
        format!("#!/bin/sh\n{dump}echo $$ > \"$FAKE_QEMU_PID.tmp\"\nmv \"$FAKE_QEMU_PID.tmp\" \"$FAKE_QEMU_PID\"\nexec sleep 1000\n"),
    )
    .unwrap();
    assert!(
        Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap()
            .success()
    );
    dir
}

/// Runs `vm` with a QEMU that hangs (in its device-tree dump, or before connecting its
/// monitor), sends SIGTERM once it hangs, and checks that `vm` ends at once and takes it along.
fn sigterm_while_qemu_hangs(dump_for_real: bool) {
    require_qemu();
    let guest = assemble(HELLO);
    let fake = hanging_qemu(dump_for_real);
    let cache = tempfile::tempdir().unwrap();
    let pid_file = guest.dir.path().join("qemu.pid");
    let mut vm = Vm::new(&["run", "--bootloader", &run_path(&guest.image)]);
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap()
    );
    vm.command
        .env("PATH", path)
        .env("XDG_CACHE_HOME", cache.path())
        .env("FAKE_QEMU_PID", &pid_file);
    let child = vm
        .command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pid_file.exists() {
        assert!(Instant::now() < deadline, "the fake QEMU never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let qemu: u32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    send_signal("-TERM", child.id());
    let run = vm.finish(child.wait_with_output().unwrap());
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(128 + 15), "VM ended: Killed\n"),
        "{}",
        run.stderr
    );
    assert!(process_is_gone(qemu), "the hanging QEMU was left running");
}

#[test]
fn sigterm_while_qemu_dumps_its_device_tree() {
    sigterm_while_qemu_hangs(false);
}

#[test]
fn sigterm_while_qemu_has_not_connected_its_monitor() {
    sigterm_while_qemu_hangs(true);
}

#[test]
fn outputs_are_emptied_when_the_vm_starts() {
    require_qemu();
    let guest = assemble(HELLO);
    let both = guest.dir.path().join("both.txt");
    fs::write(&both, "old contents that are longer than the new ones").unwrap();
    let run = vm(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--console",
        &run_path(&both),
        "--log",
        &run_path(&both),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(fs::read_to_string(&both).unwrap(), "hello\n");
}

#[test]
fn a_corrupt_cached_device_tree_is_dumped_again() {
    require_qemu();
    let guest = assemble(HELLO);
    let cache = tempfile::tempdir().unwrap();
    let boot = || {
        let mut vm = Vm::new(&[
            "run",
            "--bootloader",
            &run_path(&guest.image),
            "--mem",
            "16",
        ]);
        vm.command.env("XDG_CACHE_HOME", cache.path());
        vm.run()
    };
    assert_eq!(boot().stdout, "hello\nVM ended: Shutdown\n");
    let cached = fs::read_dir(cache.path().join("vmclient"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let dump = fs::read(&cached).unwrap();
    let mut garbage_after_magic = dump[..8].to_vec();
    garbage_after_magic.extend([0xff; 64]);
    for corrupt in [dump[..dump.len() / 2].to_vec(), garbage_after_magic] {
        fs::write(&cached, corrupt).unwrap();
        let run = boot();
        assert_eq!(run.stdout, "hello\nVM ended: Shutdown\n", "{}", run.stderr);
        let repaired = fs::read(&cached).unwrap();
        // Dumped again: a whole tree (its seeds differ from the first dump's).
        assert!(repaired.len() == dump.len() && fdt::Fdt::new(&repaired).is_ok());
    }
}

#[test]
fn images_that_do_not_look_bootable_are_warned_about() {
    require_qemu();
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in [
        ("text.bin", b"hello world\n".to_vec()),
        ("zeros.bin", vec![0; 4096]),
    ] {
        let image = dir.path().join(name);
        fs::write(&image, contents).unwrap();
        let run = vm(&["run", "--bootloader", &run_path(&image), "--timeout", "0.5"]);
        assert!(
            run.stderr.starts_with(&format!(
                "vm: warning: bootloader image {} starts neither like a vmbase entry",
                image.display()
            )),
            "{}",
            run.stderr
        );
    }
}

/// The end of the example's boot stack, from the ELF cargo built (`boot_stack_end`).
fn example_boot_stack_end() -> u64 {
    let elf = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/aarch64-unknown-none/release/vmbase_example"
    );
    let output = Command::new("llvm-nm")
        .arg(elf)
        .output()
        .expect("llvm-nm is needed (apt-get install llvm)");
    assert!(output.status.success(), "llvm-nm {elf} failed");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .find_map(|line| {
            let (address, name) = line.split_once(' ')?;
            name.ends_with(" boot_stack_end")
                .then(|| u64::from_str_radix(address, 16).unwrap())
        })
        .expect("the example has a boot_stack_end")
}

#[test]
fn the_example_needs_ram_up_to_its_boot_stack() {
    require_qemu();
    let example = example_image();
    let ram_end = example_boot_stack_end();
    let required_mib = (ram_end - 0x8000_0000).div_ceil(1 << 20);
    for mem in [3, required_mib - 1] {
        let run = vm(&["run", "--bootloader", &example, "--mem", &mem.to_string()]);
        assert_start_failed(
            &run,
            &format!(
                "needs RAM up to {ram_end:#x} (the end of its boot stack, in writable_data), but \
                 memory_mib {mem} ends RAM at"
            ),
        );
        assert!(
            run.stderr
                .contains(&format!("set memory_mib to at least {required_mib}")),
            "{}",
            run.stderr
        );
    }
    let run = vm(&[
        "run",
        "--bootloader",
        &example,
        "--mem",
        &required_mib.to_string(),
    ]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.ends_with("VM ended: Shutdown\n"),
        "{}",
        run.stdout
    );
    assert_eq!(run.stderr, "", "a vmbase image gets no warning");
}

#[test]
fn console_write_errors_exit_2() {
    require_qemu();
    let guest = assemble(HELLO);
    let run = vm(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--console",
        "/dev/full",
    ]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(2), "VM ended: Shutdown\n")
    );
    assert!(
        run.stderr
            .contains("vm: error: cannot write the VM's console: No space left on device"),
        "{}",
        run.stderr
    );
}

/// Writes an arm64 `Image` header with `image_size`, and nothing else, to `path`: never
/// booted, only placed.
fn write_fake_kernel(path: &Path, image_size: u64) {
    let mut header = vec![0; 64];
    header[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
    header[0x38..0x3c].copy_from_slice(b"ARM\x64");
    fs::write(path, header).unwrap();
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

/// A refused `vm` run: its arguments, and what it must exit with and print on stderr.
///
/// In `args` and `message`, `{dir}` stands for the directory of files that
/// [`refusal_fixture`] makes.
struct Refusal {
    name: &'static str,
    args: &'static [&'static str],
    code: i32,
    message: &'static str,
}

/// The refusals of bad input: every one exits before QEMU runs, leaves every file as it was
/// (the console and log included), and says what is wrong with which input.
const REFUSALS: &[Refusal] = &[
    Refusal {
        name: "missing image",
        args: &["run", "--bootloader", "/nonexistent/guest.bin"],
        code: 1,
        message: "vm: error: cannot read bootloader image /nonexistent/guest.bin: No such file or \
                  directory",
    },
    Refusal {
        name: "empty image",
        args: &["run", "--bootloader", "{dir}/empty.bin"],
        code: 1,
        message: "is empty",
    },
    Refusal {
        name: "image that is a directory",
        args: &["run", "--bootloader", "{dir}"],
        code: 1,
        message: "it is not a regular file",
    },
    Refusal {
        name: "image too large for memory",
        args: &["run", "--bootloader", "{dir}/big.bin", "--mem", "4"],
        code: 1,
        message: "is 3145728 bytes but only 2097152 bytes of RAM follow its load address \
                  0x8020_0000 with memory_mib 4; raise memory_mib to at least 5",
    },
    Refusal {
        name: "memory too small",
        args: &["run", "--bootloader", "{dir}/guest.bin", "--mem", "2"],
        code: 1,
        message: "memory_mib 2 is too small",
    },
    Refusal {
        name: "memory too large",
        args: &["run", "--bootloader", "{dir}/guest.bin", "--mem", "1000000"],
        code: 1,
        message: "memory_mib 1000000 is more than the limit of",
    },
    Refusal {
        name: "malformed JSON",
        args: &["run", "{dir}/malformed.json"],
        code: 1,
        message: "at line 3, column 3: expected `,` or `}`",
    },
    Refusal {
        name: "unknown JSON field",
        args: &["run", "{dir}/unknown-field.json"],
        code: 1,
        message: "at line 1, column 32: unknown field `memory`, expected one of",
    },
    Refusal {
        name: "protected VM",
        args: &["run", "{dir}/protected.json"],
        code: 1,
        message: "protected VMs need pKVM",
    },
    Refusal {
        name: "missing kernel",
        args: &["run", "{dir}/missing-kernel.json"],
        code: 1,
        message: "cannot read kernel {dir}/missing-Image",
    },
    Refusal {
        name: "missing config",
        args: &["run", "/nonexistent/vm.json"],
        code: 1,
        message: "cannot read VM config /nonexistent/vm.json",
    },
    Refusal {
        name: "config and bootloader together",
        args: &["run", "{dir}/vm.json", "--bootloader", "{dir}/guest.bin"],
        code: 1,
        message: "cannot be used with",
    },
    Refusal {
        name: "refused run with existing console and log",
        args: &[
            "run",
            "--bootloader",
            "{dir}/guest.bin",
            "--mem",
            "2",
            "--console",
            "{dir}/console.txt",
            "--log",
            "{dir}/log.txt",
        ],
        code: 1,
        message: "memory_mib 2 is too small",
    },
    Refusal {
        name: "refused run with a new console",
        args: &[
            "run",
            "--bootloader",
            "{dir}/guest.bin",
            "--mem",
            "2",
            "--console",
            "{dir}/new-console.txt",
            "--log",
            "{dir}/log.txt",
        ],
        code: 1,
        message: "memory_mib 2 is too small",
    },
    Refusal {
        name: "console that is the image",
        args: &[
            "run",
            "--bootloader",
            "{dir}/guest.bin",
            "--console",
            "{dir}/guest.bin",
        ],
        code: 1,
        message: "the console file {dir}/guest.bin is the bootloader image {dir}/guest.bin",
    },
    Refusal {
        name: "log that is a hard link to the image",
        args: &[
            "run",
            "--bootloader",
            "{dir}/guest.bin",
            "--log",
            "{dir}/link.bin",
        ],
        code: 1,
        message: "is the bootloader image",
    },
    Refusal {
        name: "console that is the config",
        args: &["run", "{dir}/vm.json", "--console", "{dir}/vm.json"],
        code: 1,
        message: "is the VM config",
    },
    // Before ELF files were refused, this one spun until the timeout.
    Refusal {
        name: "ELF image",
        args: &["run", "--bootloader", "{dir}/guest.o", "--timeout", "5"],
        code: 1,
        message: "is an ELF file, not a raw image: convert it with \
                  `llvm-objcopy -O binary {dir}/guest.o {dir}/guest.bin`",
    },
    Refusal {
        name: "gdb port out of range",
        args: &["run", "--bootloader", "{dir}/guest.bin", "--gdb", "70000"],
        code: 1,
        message: "error: invalid value '70000' for '--gdb <PORT>'",
    },
    Refusal {
        name: "unknown flag",
        args: &["run", "--bootloader", "{dir}/guest.bin", "--bogus"],
        code: 1,
        message: "error: unexpected argument '--bogus' found",
    },
    Refusal {
        name: "negative timeout",
        args: &["run", "--bootloader", "{dir}/guest.bin", "--timeout", "-1"],
        code: 1,
        message: "error: unexpected argument '-1' found",
    },
    Refusal {
        name: "nothing to run",
        args: &["run"],
        code: 1,
        message: "error: the following required arguments were not provided",
    },
    Refusal {
        name: "no command",
        args: &[],
        code: 1,
        message: "Usage: vm <COMMAND>",
    },
    Refusal {
        name: "gdb port 0",
        args: &["run", "--bootloader", "{dir}/guest.bin", "--gdb", "0"],
        code: 1,
        message: "gdb port 0 is not valid",
    },
    Refusal {
        name: "device tree too large, blamed on the tree",
        args: &[
            "run",
            "--bootloader",
            "{dir}/guest.bin",
            "--dtb",
            "{dir}/big.dtb",
        ],
        code: 1,
        // The whole line: the tree is blamed, not `params`.
        message: "vm: error: device tree {dir}/big.dtb is 3145728 bytes, more than its 2 MiB \
                  region at 0x8000_0000\n",
    },
    Refusal {
        name: "params with a given device tree",
        args: &[
            "run",
            "--bootloader",
            "{dir}/guest.bin",
            "--dtb",
            "{dir}/small.dtb",
            "--params",
            "quiet",
        ],
        code: 1,
        message: "`params` cannot be used with a given device tree",
    },
    Refusal {
        name: "NUL in params",
        args: &["run", "{dir}/params-nul.json"],
        code: 1,
        message: "`params` contains a NUL byte",
    },
    Refusal {
        name: "kernel that is not an Image",
        args: &["run", "--kernel", "{dir}/guest.bin"],
        code: 1,
        message: "is not an arm64 Linux Image: it lacks the arm64 Image magic",
    },
    Refusal {
        name: "kernel that does not fit",
        args: &["run", "--kernel", "{dir}/large-Image", "--mem", "64"],
        code: 1,
        message: "need at least 67 MiB of RAM but memory_mib is 64",
    },
    Refusal {
        name: "firmware too large",
        args: &[
            "run",
            "--kernel",
            "{dir}/Image",
            "--firmware",
            "{dir}/big-fw.bin",
        ],
        code: 1,
        message: "more than its 4 MiB region at 0x7fc0_0000",
    },
    Refusal {
        name: "missing initrd",
        args: &[
            "run",
            "--kernel",
            "{dir}/Image",
            "--initrd",
            "/nonexistent/initrd",
        ],
        code: 1,
        message: "cannot read initrd /nonexistent/initrd",
    },
    Refusal {
        name: "bootloader with kernel",
        args: &["run", "{dir}/bootloader-and-kernel.json"],
        code: 1,
        message: "give a bootloader, or a kernel with an optional initrd",
    },
];

/// The files the refusals name, beside a guest that would boot (`guest.bin`, from `guest.o`).
fn refusal_fixture() -> common::Guest {
    let guest = assemble(HELLO);
    let dir = guest.dir.path();
    let files: [(&str, Vec<u8>); 14] = [
        ("empty.bin", Vec::new()),
        ("big.bin", vec![0; 3 << 20]),
        ("big.dtb", vec![0; 3 << 20]),
        ("small.dtb", vec![0; 64]),
        ("big-fw.bin", vec![0; (4 << 20) + 1]),
        ("console.txt", b"keep me".to_vec()),
        ("log.txt", b"keep me too".to_vec()),
        (
            "malformed.json",
            b"{\n  \"bootloader\": \"a.bin\"\n  \"memory_mib\": 16\n}".to_vec(),
        ),
        (
            "unknown-field.json",
            b"{\"bootloader\": \"a.bin\", \"memory\": 16}".to_vec(),
        ),
        (
            "protected.json",
            br#"{"bootloader": "guest.bin", "protected": true}"#.to_vec(),
        ),
        (
            "missing-kernel.json",
            br#"{"kernel": "missing-Image"}"#.to_vec(),
        ),
        (
            "vm.json",
            br#"{"bootloader": "guest.bin", "memory_mib": 16}"#.to_vec(),
        ),
        (
            "params-nul.json",
            br#"{"bootloader": "guest.bin", "params": "a\u0000b"}"#.to_vec(),
        ),
        (
            "bootloader-and-kernel.json",
            br#"{"bootloader": "guest.bin", "kernel": "Image"}"#.to_vec(),
        ),
    ];
    for (name, contents) in files {
        fs::write(dir.join(name), contents).unwrap();
    }
    fs::hard_link(&guest.image, dir.join("link.bin")).unwrap();
    write_fake_kernel(&dir.join("Image"), 0x1000);
    write_fake_kernel(&dir.join("large-Image"), 64 << 20);
    guest
}

/// Every file in `dir` with its contents.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let contents = fs::read(&path).unwrap();
            (path, contents)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn bad_input_is_refused_with_a_message_naming_it() {
    let fixture = refusal_fixture();
    let dir = run_path(fixture.dir.path());
    let before = snapshot(fixture.dir.path());
    for refusal in REFUSALS {
        let name = refusal.name;
        let args: Vec<String> = refusal
            .args
            .iter()
            .map(|arg| arg.replace("{dir}", &dir))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = vm(&args);
        assert_eq!(
            run.code,
            Some(refusal.code),
            "{name}: stdout: {} stderr: {}",
            run.stdout,
            run.stderr
        );
        let message = refusal.message.replace("{dir}", &dir);
        assert!(
            run.stderr.contains(&message),
            "{name}: expected {message:?} in {:?}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "{name}");
        // A refusal by vm itself is its only message, after any warnings.
        if run.stderr.contains("vm: error: ") {
            assert!(
                run.stderr.lines().all(
                    |line| line.starts_with("vm: warning: ") || line.starts_with("vm: error: ")
                ),
                "{name}: {}",
                run.stderr
            );
        }
        assert_eq!(
            snapshot(fixture.dir.path()),
            before,
            "{name}: files were changed"
        );
    }
}

#[test]
fn help_and_version_exit_0() {
    for args in [&["--help"][..], &["--version"], &["run", "--help"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_vm"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
    }
}
