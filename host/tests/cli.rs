// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Runs the `vm` binary: booting, exit codes, and precise errors for bad input.
//!
//! Each run gets its own `TMPDIR`, which must be empty afterwards, and a unique `--name`, which
//! no process may still carry afterwards: nothing is left behind, whatever happened.

mod common;

use common::{
    HELLO, REGISTER_PRINTING_FIRMWARE, RESET, SPIN, assemble, processes_with_argument,
    require_qemu, send_signal,
};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use vmbase::linux::RawImageHeader;
use vmbase_test_harness::{
    CROSVM_LIKE_TREE_MEMORY_MIB, assert_in_order, crosvm_like_device_tree, guest_image,
};

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

    /// Starts `vm` with its output piped, for a test that signals it while it runs.
    fn spawn(&mut self) -> Child {
        self.command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
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

/// An arm64 `Image` header (image_size 64 KiB, text_offset 0) whose first instruction jumps
/// over it: put before a guest body, it makes a kernel that a direct kernel boot accepts.
const IMAGE_HEADER: &str = r#"
    b 1f                       // code0: over the header
    .word 0                    // code1
    .quad 0                    // text_offset
    .quad 0x10000              // image_size
    .quad 0                    // flags: little-endian
    .quad 0, 0, 0              // res2, res3, res4
    .ascii "ARM\x64"           // magic
    .word 0                    // res5
1:
"#;

/// A `vm` run that boots: its arguments, and what it must exit with and print.
///
/// In `args` and `stdout`, `{dir}` stands for the directory [`boot_fixture`] makes, and
/// `{hello size}` for the size of its `hello.bin` as 16 hexadecimal digits.
struct Boot {
    name: &'static str,
    args: &'static [&'static str],
    code: i32,
    stdout: &'static str,
    /// What stderr must contain ("" for anything).
    stderr: &'static str,
}

impl Boot {
    /// A boot that exits with `code` after printing `stdout`, whatever it writes to stderr.
    const fn new(
        name: &'static str,
        args: &'static [&'static str],
        code: i32,
        stdout: &'static str,
    ) -> Self {
        Self {
            name,
            args,
            code,
            stdout,
            stderr: "",
        }
    }

    /// A boot of a guest that prints "hello" and powers off.
    const fn hello(name: &'static str, args: &'static [&'static str]) -> Self {
        Self::new(name, args, 0, "hello\nVM ended: Shutdown\n")
    }
}

/// What the register-printing firmware prints when it boots `hello.bin` in 64 MiB, then the
/// payload's own output.
const FIRMWARE_BOOTS_HELLO: &str = "firmware: x0=0000000083df0000 x1=0000000080000000 \
    x2={hello size} x3=0000000000000000\nhello\nVM ended: Shutdown\n";

/// Boots of tiny guests, each with the exit code and stdout it must give.
const BOOTS: &[Boot] = &[
    Boot::hello(
        "bootloader with the console on stdout",
        &["--bootloader", "{dir}/hello.bin", "--mem", "16"],
    ),
    Boot::new(
        "a reset exits 32",
        &["--bootloader", "{dir}/reset.bin", "--cpus", "2"],
        32,
        "VM ended: Reboot\n",
    ),
    Boot::new(
        "the timeout kills a spinning guest",
        &["--bootloader", "{dir}/spin.bin", "--timeout", "0.5"],
        137,
        "VM ended: Killed\n",
    ),
    // QEMU warns that with sleep=off no timer is active: its log stays out of stdout.
    Boot::new(
        "icount prints the instruction count",
        &[
            "--bootloader",
            "{dir}/hello.bin",
            "--icount",
            "1",
            "--log",
            "/dev/null",
        ],
        0,
        // The boot stub's 6 instructions and the guest's 34 (see boot.rs).
        "hello\nVM ended: Shutdown\ninstructions: 40\n",
    ),
    Boot::new(
        "an icount run that is killed prints no count",
        &[
            "--bootloader",
            "{dir}/spin.bin",
            "--icount",
            "0",
            "--timeout",
            "0.5",
            "--log",
            "/dev/null",
        ],
        137,
        "VM ended: Killed\n",
    ),
    Boot::hello(
        "timeout 1e19 does not overflow",
        &["--bootloader", "{dir}/hello.bin", "--timeout", "1e19"],
    ),
    Boot::hello(
        "timeout 1e300 does not overflow",
        &["--bootloader", "{dir}/hello.bin", "--timeout", "1e300"],
    ),
    Boot::hello(
        "timeout inf is no timeout",
        &["--bootloader", "{dir}/hello.bin", "--timeout", "inf"],
    ),
    Boot {
        name: "a console write error exits 2",
        args: &["--bootloader", "{dir}/hello.bin", "--console", "/dev/full"],
        code: 2,
        stdout: "VM ended: Shutdown\n",
        stderr: "vm: error: cannot write the VM's console: No space left on device",
    },
    // hello.bin is not an Image: with a firmware it is loaded at 0x8000_0000 as it is, and run
    // by the firmware here.
    Boot::new(
        "the firmware gets crosvm's registers and can enter the payload",
        &[
            "--kernel",
            "{dir}/hello.bin",
            "--firmware",
            "{dir}/firmware.bin",
            "--mem",
            "64",
        ],
        0,
        FIRMWARE_BOOTS_HELLO,
    ),
    Boot::new(
        "a firmware of exactly 4 MiB",
        &[
            "--kernel",
            "{dir}/hello.bin",
            "--firmware",
            "{dir}/firmware-4mib.bin",
            "--mem",
            "64",
        ],
        0,
        FIRMWARE_BOOTS_HELLO,
    ),
    // The kernel's 64 KiB and the device tree's 2 MiB + 64 KiB: 3 MiB.
    Boot::hello(
        "a kernel at its minimum memory",
        &["--kernel", "{dir}/kernel.bin", "--mem", "3"],
    ),
    // The initrd at 16 MiB and the device tree's 2 MiB + 64 KiB after it: 19 MiB.
    Boot::hello(
        "a kernel and initrd at their minimum memory",
        &[
            "--kernel",
            "{dir}/kernel.bin",
            "--initrd",
            "{dir}/initrd",
            "--mem",
            "19",
        ],
    ),
];

/// The guests [`BOOTS`] runs, in one directory: `hello.bin`, `reset.bin`, `spin.bin`,
/// `firmware.bin` (the register-printing firmware) and `firmware-4mib.bin` (the same, padded
/// to fill its region exactly), `kernel.bin` (an `Image` that prints "hello") and a one-byte
/// `initrd`.
fn boot_fixture() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let kernel = format!("{IMAGE_HEADER}{HELLO}");
    for (name, body) in [
        ("hello.bin", HELLO),
        ("reset.bin", RESET),
        ("spin.bin", SPIN),
        ("firmware.bin", REGISTER_PRINTING_FIRMWARE),
        ("kernel.bin", &kernel),
    ] {
        fs::copy(assemble(body).image, dir.path().join(name)).unwrap();
    }
    let mut firmware = fs::read(dir.path().join("firmware.bin")).unwrap();
    firmware.resize(4 << 20, 0);
    fs::write(dir.path().join("firmware-4mib.bin"), firmware).unwrap();
    fs::write(dir.path().join("initrd"), [0]).unwrap();
    dir
}

#[test]
fn guests_boot_with_the_exit_code_and_output_each_flag_gives() {
    require_qemu();
    let fixture = boot_fixture();
    let dir = run_path(fixture.path());
    let hello_size = fs::metadata(fixture.path().join("hello.bin"))
        .unwrap()
        .len();
    let hello_size = format!("{hello_size:016x}");
    // Concurrently: each row is a VM of its own, and several load the same files at once.
    std::thread::scope(|scope| {
        for boot in BOOTS {
            let (dir, hello_size) = (&dir, &hello_size);
            scope.spawn(move || {
                let name = boot.name;
                let mut args = vec!["run".to_owned()];
                args.extend(boot.args.iter().map(|arg| arg.replace("{dir}", dir)));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let run = vm(&args);
                let stdout = boot.stdout.replace("{hello size}", hello_size);
                assert_eq!(
                    (run.code, run.stdout.as_str()),
                    (Some(boot.code), stdout.as_str()),
                    "{name}: stderr: {}",
                    run.stderr
                );
                assert!(
                    run.stderr.contains(boot.stderr),
                    "{name}: expected {:?} in {:?}",
                    boot.stderr,
                    run.stderr
                );
            });
        }
    });
}

#[test]
fn an_icount_run_that_resets_prints_its_count() {
    require_qemu();
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

/// A config AOSP's `vm` (Android 15) would read differently still boots here, and each
/// difference is a warning; a config it reads the same way gets none.
#[test]
fn json_config_differences_from_aosp_are_warned_about() {
    require_qemu();
    let guest = assemble(HELLO);
    let dir = guest.dir.path();
    fs::write(
        dir.join("ours.json"),
        r#"{"bootloader": "guest.bin", "num_cpus": 2, "memory_mib": 32}"#,
    )
    .unwrap();
    let image = dir.join("guest.bin");
    fs::write(
        dir.join("aosp.json"),
        format!(
            r#"{{"bootloader": {:?}, "memory_mib": 32, "platform_version": "~1.0"}}"#,
            image.to_str().unwrap()
        ),
    )
    .unwrap();

    let run = vm(&["run", dir.join("ours.json").to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "hello\nVM ended: Shutdown\n");
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains("AOSP's vm"))
        .collect();
    assert_eq!(warnings.len(), 3, "{}", run.stderr);
    assert!(warnings[0].starts_with("vm: warning: `num_cpus` is this vm's own field"));
    assert!(warnings[1].starts_with("vm: warning: no `platform_version`: AOSP's vm refuses"));
    assert_eq!(
        warnings[2],
        format!(
            "vm: warning: relative paths (`bootloader`) are taken from the config's folder {} \
             here, from the working directory by AOSP's vm",
            dir.display()
        )
    );

    let run = vm(&["run", dir.join("aosp.json").to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stderr.contains("AOSP's vm"), "{}", run.stderr);
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

/// Spawns `vm` with piped output and waits until its QEMU (a child with the VM's name) runs.
fn spawn_until_qemu_runs(vm: &mut Vm) -> Child {
    let child = vm.spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    let is_qemu = |&(_, parent): &(u32, u32)| parent == child.id();
    while !processes_with_argument(&vm.name).iter().any(is_qemu) {
        assert!(Instant::now() < deadline, "QEMU never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
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

/// Why this host cannot run VMs under KVM, as `vm` puts it, or `None` where it can.
fn why_no_kvm_here() -> Option<String> {
    if std::env::consts::ARCH != "aarch64" {
        return Some(format!(
            "this host is {}, and KVM runs aarch64 guests only on aarch64 hosts",
            std::env::consts::ARCH
        ));
    }
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => None,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Some("there is no /dev/kvm".to_owned())
        }
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            Some("this user may not open /dev/kvm".to_owned())
        }
        Err(error) => Some(format!("cannot open /dev/kvm: {error}")),
    }
}

/// `--accel auto` (the default) takes KVM where the host offers it and TCG elsewhere, saying
/// which and why; `--accel kvm` is refused with the reason where KVM is unusable (on x86 hosts
/// such as CI's: the architecture), and `--accel tcg` always runs under TCG.
#[test]
fn the_accelerator_is_kvm_where_usable_and_said() {
    require_qemu();
    // A vmbase image, which gets no warning: the accelerator is all `vm` says on stderr.
    let image = run_path(&guest_image("vmbase_hello"));
    let why_no_kvm = why_no_kvm_here();
    let auto = vm(&["run", "--bootloader", &image]);
    assert_eq!(auto.code, Some(0), "{}", auto.stderr);
    let expected = match &why_no_kvm {
        Some(reason) => format!("vm: accelerator: TCG (not KVM: {reason}"),
        None => "vm: accelerator: KVM\n".to_owned(),
    };
    assert!(auto.stderr.starts_with(&expected), "{}", auto.stderr);
    assert_eq!(auto.stderr.lines().count(), 1, "{}", auto.stderr);

    let kvm = vm(&["run", "--bootloader", &image, "--accel", "kvm"]);
    match &why_no_kvm {
        Some(reason) => assert_start_failed(
            &kvm,
            &format!("vm: error: cannot run the VM under KVM (`--accel kvm`): {reason}"),
        ),
        None => assert_eq!(kvm.stderr, "vm: accelerator: KVM\n"),
    }

    let tcg = vm(&["run", "--bootloader", &image, "--accel", "tcg"]);
    assert_eq!(tcg.code, Some(0), "{}", tcg.stderr);
    assert!(
        tcg.stdout.ends_with("VM ended: Shutdown\n"),
        "{}",
        tcg.stdout
    );
    assert_eq!(tcg.stderr, "vm: accelerator: TCG\n");
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

/// Boots `guest` with `--mem mem` and `cache` as `XDG_CACHE_HOME`, where device-tree dumps are
/// kept.
fn boot_with_cache(guest: &common::Guest, mem: &str, cache: &Path) -> Run {
    let mut vm = Vm::new(&["run", "--bootloader", &run_path(&guest.image), "--mem", mem]);
    vm.command.env("XDG_CACHE_HOME", cache);
    vm.run()
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
    let boot = |mem| boot_with_cache(&guest, mem, cache.path());
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

/// The example, brought up to date by `make guests`.
fn example_image() -> String {
    run_path(&guest_image("vmbase_example"))
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
    let spin_guest = assemble(SPIN);
    let spinning_kernel_guest = assemble(&format!("{IMAGE_HEADER}{SPIN}"));
    let spin = run_path(&spin_guest.image);
    let spinning_kernel = run_path(&spinning_kernel_guest.image);
    let hello = assemble(HELLO);
    for (signal, code, boot) in [
        ("-KILL", None, ["--bootloader", &spin]),
        ("-QUIT", Some(128 + 3), ["--bootloader", &spin]),
        ("-USR1", Some(128 + 10), ["--bootloader", &spin]),
        ("-HUP", Some(128 + 1), ["--bootloader", &spin]),
        ("-USR2", Some(128 + 12), ["--bootloader", &spin]),
        ("-ALRM", Some(128 + 14), ["--bootloader", &spin]),
        ("-KILL", None, ["--kernel", &spinning_kernel]),
        ("-INT", Some(128 + 2), ["--kernel", &spinning_kernel]),
    ] {
        let mut vm = Vm::new(&["run", boot[0], boot[1]]);
        let child = spawn_until_qemu_runs(&mut vm);
        send_signal(signal, child.id());
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), code, "after kill {signal}, {boot:?}");
        wait_until_no_process_named(&vm.name);
        // A SIGKILLed vm cannot clean up: the next run reclaims its temporary directory.
        let next = Vm::in_temp_dir(
            &["run", "--bootloader", &run_path(&hello.image)],
            vm.temp_dir,
        );
        assert_eq!(next.run().stdout, "hello\nVM ended: Shutdown\n");
    }
}

/// Spawns `vm` and waits (within a bound) for a line on its stderr that contains `needle`.
fn spawn_until_stderr_says(vm: &mut Vm, needle: &str) -> Child {
    let mut child = vm.spawn();
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
    let child = vm.spawn();
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
    let boot = || boot_with_cache(&guest, "16", cache.path());
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
    // Neither waited on nor read without end (before, a FIFO hung vm and /dev/zero ate memory):
    // replaced like any corrupt entry.
    for make_special in ["mkfifo {}", "ln -s /dev/zero {}"] {
        fs::remove_file(&cached).unwrap();
        let command = make_special.replace("{}", &run_path(&cached));
        assert!(
            Command::new("sh")
                .args(["-c", &command])
                .status()
                .unwrap()
                .success()
        );
        let run = boot();
        assert_eq!(
            run.stdout, "hello\nVM ended: Shutdown\n",
            "{command}: {}",
            run.stderr
        );
        let metadata = fs::symlink_metadata(&cached).unwrap();
        assert!(
            metadata.is_file() && metadata.len() == dump.len() as u64,
            "{command}"
        );
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
        // The timeout counts from vm's start: long enough for QEMU to start on a busy host.
        let run = vm(&["run", "--bootloader", &run_path(&image), "--timeout", "5"]);
        let warning = format!(
            "vm: warning: bootloader image {} starts neither like a vmbase entry",
            image.display()
        );
        assert!(
            run.stderr.lines().any(|line| line.starts_with(&warning)),
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
    assert!(
        !run.stderr.contains("warning"),
        "a vmbase image gets no warning: {}",
        run.stderr
    );
}

/// The crosvm-like tree that the nested-KVM suite boots the example on under KVM
/// (host/tests/kvm.rs) boots it under TCG too, through `vm run --dtb`: a broken fixture fails
/// here in seconds. `vm` gets more RAM than the tree describes, so that the example's
/// `RAM from /memory` line shows that it read this tree, not QEMU's as `vm` rewrites it.
#[test]
fn the_example_boots_on_a_crosvm_like_device_tree() {
    require_qemu();
    let dir = tempfile::tempdir().unwrap();
    let tree = crosvm_like_device_tree(dir.path());
    let mem = (CROSVM_LIKE_TREE_MEMORY_MIB + 20).to_string();
    let run = vm(&[
        "run",
        "--bootloader",
        &example_image(),
        "--mem",
        &mem,
        "--dtb",
        &run_path(&tree),
        "--accel",
        "tcg",
    ]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let ram_end = 0x8000_0000 + (u64::from(CROSVM_LIKE_TREE_MEMORY_MIB) << 20);
    let ram = format!("[INFO] RAM from /memory: 0x80000000..{ram_end:#x}");
    let lines: Vec<String> = run.stdout.lines().map(str::to_owned).collect();
    assert_in_order(
        &lines,
        &[
            "[INFO] Hello world",
            "[INFO] x0=0x0000000080000000, x1=0x0000000000000000, x2=0x0000000000000000, x3=0x0000000000000000",
            "[INFO] Entropy works: two draws differ (source: ",
            "[INFO] Activated.",
            &ram,
            "[INFO] Entering a stand-in payload with the MMU off; it powers off if the handoff is right",
            "VM ended: Shutdown",
        ],
    );
}

/// Writes an arm64 `Image` header with `image_size`, and nothing else, to `path`: never
/// booted, only placed.
fn write_fake_kernel(path: &Path, image_size: u64) {
    fs::write(path, RawImageHeader::new(0, image_size, 0).to_bytes()).unwrap();
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
        name: "instruction counting under KVM",
        args: &[
            "run",
            "--bootloader",
            "{dir}/guest.bin",
            "--accel",
            "kvm",
            "--icount",
            "2",
        ],
        code: 1,
        message: "vm: error: instruction counting (`--icount`) needs TCG",
    },
    Refusal {
        name: "protected VM under KVM",
        args: &[
            "run",
            "--bootloader",
            "{dir}/guest.bin",
            "--accel",
            "kvm",
            "--protected",
        ],
        code: 1,
        message: "vm: error: a protected VM (`--protected`), under the pKVM double needs TCG",
    },
    Refusal {
        name: "unknown accelerator",
        args: &["run", "--bootloader", "{dir}/guest.bin", "--accel", "hvf"],
        code: 1,
        message: "\"hvf\" is not an accelerator: give kvm, tcg or auto",
    },
    Refusal {
        name: "protected VM with more CPUs than the pKVM double runs",
        args: &["run", "{dir}/protected.json"],
        code: 1,
        message: "a protected VM (--protected, `\"protected\": true`) runs under vmbase's pKVM \
                  double, which cannot give it 2 CPUs: the double runs one vCPU; use --cpus 1",
    },
    Refusal {
        name: "protected VM with its own device tree",
        args: &[
            "run",
            "--protected",
            "--bootloader",
            "{dir}/guest.bin",
            "--dtb",
            "{dir}/vm.json",
        ],
        code: 1,
        message: "which cannot give it a device tree of its own (--dtb, `device_tree`)",
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
        name: "virtio console output that is a hard link to the image",
        args: &[
            "run",
            "--bootloader",
            "{dir}/guest.bin",
            "--virtio-console",
            "{dir}/link.bin",
        ],
        code: 1,
        message: "the virtio console file {dir}/link.bin is the bootloader image {dir}/guest.bin",
    },
    Refusal {
        name: "a vmbase firmware given as the bootloader",
        args: &["run", "--bootloader", "{dir}/vmbase_linuxboot.bin"],
        code: 1,
        message: "bootloader image {dir}/vmbase_linuxboot.bin is a vmbase image linked at \
                  0x7fc00000, but a bootloader image is loaded at 0x80200000: it is a VM \
                  firmware",
    },
    Refusal {
        name: "a vmbase bootloader given as the firmware",
        args: &[
            "run",
            "--kernel",
            "{dir}/Image",
            "--firmware",
            "{dir}/vmbase_example.bin",
        ],
        code: 1,
        message: "firmware {dir}/vmbase_example.bin is a vmbase image linked at 0x80200000, but \
                  a firmware is loaded at 0x7fc00000: it is a bootloader",
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
                  region\n",
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
    // Before, vm blocked on the FIFO where Ctrl-C could not stop it, and read /dev/zero until
    // memory ran out.
    Refusal {
        name: "config that is a FIFO",
        args: &["run", "{dir}/fifo"],
        code: 1,
        message: "cannot read VM config {dir}/fifo: it is not a regular file",
    },
    Refusal {
        name: "config that is /dev/zero",
        args: &["run", "/dev/zero"],
        code: 1,
        message: "cannot read VM config /dev/zero: it is not a regular file",
    },
    Refusal {
        name: "initrd that is a FIFO",
        args: &["run", "--kernel", "{dir}/Image", "--initrd", "{dir}/fifo"],
        code: 1,
        message: "cannot read initrd {dir}/fifo: it is not a regular file",
    },
    Refusal {
        name: "initrd that is /dev/zero",
        args: &["run", "--kernel", "{dir}/Image", "--initrd", "/dev/zero"],
        code: 1,
        message: "cannot read initrd /dev/zero: it is not a regular file",
    },
    Refusal {
        name: "firmware that is /dev/stdin",
        args: &["run", "--kernel", "{dir}/Image", "--firmware", "/dev/stdin"],
        code: 1,
        message: "cannot read firmware /dev/stdin: it is not a regular file",
    },
    Refusal {
        name: "device tree that is a FIFO",
        args: &["run", "--kernel", "{dir}/Image", "--dtb", "{dir}/fifo"],
        code: 1,
        message: "cannot read device tree {dir}/fifo: it is not a regular file",
    },
    Refusal {
        name: "kernel that is a symbolic link loop",
        args: &["run", "--kernel", "{dir}/loop"],
        code: 1,
        message: "cannot read kernel {dir}/loop: Too many levels of symbolic links",
    },
    Refusal {
        name: "disk that is a directory",
        args: &["run", "{dir}/disk-directory.json"],
        code: 1,
        message: "cannot read disk image {dir}/.: it is not a regular file",
    },
    // Before, QEMU refused it, blaming "another process".
    Refusal {
        name: "one file as two disks, one writable",
        args: &["run", "{dir}/disk-twice.json"],
        code: 1,
        message: "disk image {dir}/./initrd-link is disk 1 and also disk 0 (the same file), and \
                  one of them is writable",
    },
    // Sparse: were it read, this would take minutes.
    Refusal {
        name: "initrd of 100 GiB",
        args: &["run", "--kernel", "{dir}/Image", "--initrd", "{dir}/huge"],
        code: 1,
        message: "kernel {dir}/Image (64 bytes, image_size 4096), initrd {dir}/huge \
                  (107374182400 bytes) and the device tree need at least 102419 MiB of RAM but \
                  memory_mib is 256: the kernel goes at 0x8000_0000 plus its text_offset, the \
                  initrd at the next 16 MiB boundary after it, and the device tree 2 MiB + 64 KiB \
                  below the end of RAM; that is more than the 16384 MiB a VM can have: use a \
                  smaller kernel or initrd\n",
    },
    Refusal {
        name: "bootloader of 100 GiB",
        args: &["run", "--bootloader", "{dir}/huge"],
        code: 1,
        message: "that is more than the 16384 MiB a VM can have: use a smaller image\n",
    },
    Refusal {
        name: "firmware of 100 GiB",
        args: &["run", "--kernel", "{dir}/Image", "--firmware", "{dir}/huge"],
        code: 1,
        message: "firmware {dir}/huge is 107374182400 bytes, more than its 4 MiB region",
    },
    Refusal {
        name: "kernel that is a vmbase image",
        args: &["run", "--kernel", "{dir}/vmbase.bin"],
        code: 1,
        message: "kernel {dir}/vmbase.bin is not an arm64 Linux Image: it is a vmbase image: boot \
                  it with --bootloader",
    },
    Refusal {
        name: "kernel that is an ELF file",
        args: &["run", "--kernel", "{dir}/guest.o"],
        code: 1,
        message: "kernel {dir}/guest.o is not an arm64 Linux Image: it is an ELF file (vmlinux?)",
    },
    Refusal {
        name: "firmware that is an ELF file",
        args: &[
            "run",
            "--kernel",
            "{dir}/Image",
            "--firmware",
            "{dir}/guest.o",
        ],
        code: 1,
        message: "vm: error: firmware {dir}/guest.o is an ELF file, not a raw image",
    },
    // The kernel's 4 KiB image_size and the device tree's 2 MiB + 64 KiB need 3 MiB; the
    // message is the kernel layout's, not the bootloader's.
    Refusal {
        name: "kernel one MiB below its minimum",
        args: &["run", "--kernel", "{dir}/Image", "--mem", "2"],
        code: 1,
        message: "and the device tree need at least 3 MiB of RAM but memory_mib is 2",
    },
    Refusal {
        name: "kernel and initrd one MiB below their minimum",
        args: &[
            "run",
            "--kernel",
            "{dir}/Image",
            "--initrd",
            "{dir}/initrd",
            "--mem",
            "18",
        ],
        code: 1,
        message: "need at least 19 MiB of RAM but memory_mib is 18",
    },
    Refusal {
        name: "console that is a hard link to the initrd",
        args: &[
            "run",
            "--kernel",
            "{dir}/Image",
            "--initrd",
            "{dir}/initrd",
            "--console",
            "{dir}/initrd-link",
        ],
        code: 1,
        message: "the console file {dir}/initrd-link is the initrd {dir}/initrd",
    },
    Refusal {
        name: "log that is the firmware",
        args: &[
            "run",
            "--kernel",
            "{dir}/Image",
            "--firmware",
            "{dir}/guest.bin",
            "--log",
            "{dir}/guest.bin",
        ],
        code: 1,
        message: "the log file {dir}/guest.bin is the firmware {dir}/guest.bin",
    },
    Refusal {
        name: "console that is the kernel",
        args: &["run", "--kernel", "{dir}/Image", "--console", "{dir}/Image"],
        code: 1,
        message: "the console file {dir}/Image is the kernel {dir}/Image",
    },
    Refusal {
        name: "kernel command line longer than Linux takes",
        args: &["run", "{dir}/long-params.json"],
        code: 1,
        message: "the kernel command line is 3010 bytes with its terminating NUL, more than the \
                  2048",
    },
    Refusal {
        name: "JSON kernel that is not a string",
        args: &["run", "{dir}/kernel-list.json"],
        code: 1,
        message: "at line 1, column 11: invalid type: sequence, expected path string",
    },
    Refusal {
        name: "JSON firmware that is not a string",
        args: &["run", "{dir}/firmware-bool.json"],
        code: 1,
        message: "invalid type: boolean `true`, expected path string",
    },
    Refusal {
        name: "JSON params that are not a string",
        args: &["run", "{dir}/params-number.json"],
        code: 1,
        message: "invalid type: integer `1`, expected a string",
    },
    Refusal {
        name: "JSON field misspelt beside a kernel",
        args: &["run", "{dir}/kernal.json"],
        code: 1,
        message: "unknown field `kernal`, expected one of",
    },
    Refusal {
        name: "JSON initrd that is an empty path",
        args: &["run", "{dir}/empty-initrd.json"],
        code: 1,
        message: "invalid VM config {dir}/empty-initrd.json: `initrd` is an empty path",
    },
    Refusal {
        name: "bootloader with kernel",
        args: &["run", "{dir}/bootloader-and-kernel.json"],
        code: 1,
        message: "give a bootloader, or a kernel with an optional initrd",
    },
    Refusal {
        name: "virtio console output that is the config",
        args: &["run", "{dir}/vm.json", "--virtio-console", "{dir}/vm.json"],
        code: 1,
        message: "the virtio console file {dir}/vm.json is the VM config {dir}/vm.json",
    },
    Refusal {
        name: "missing virtio console input",
        args: &[
            "run",
            "{dir}/vm.json",
            "--console-in",
            "{dir}/missing-input",
        ],
        code: 1,
        message: "cannot read virtio console input {dir}/missing-input: No such file",
    },
    Refusal {
        name: "virtio console input that is a directory",
        args: &["run", "{dir}/vm.json", "--console-in", "{dir}"],
        code: 1,
        message: "cannot read virtio console input {dir}: it is not a regular file",
    },
    Refusal {
        name: "virtio console input that is a socket",
        args: &["run", "{dir}/vm.json", "--console-in", "{dir}/socket"],
        code: 1,
        message: "cannot read virtio console input {dir}/socket: it is not a regular file",
    },
    Refusal {
        name: "console that is a Unix socket",
        args: &["run", "{dir}/vm.json", "--console", "{dir}/socket"],
        code: 1,
        message: "cannot open the console file {dir}/socket for writing: it is a Unix socket",
    },
    Refusal {
        name: "log in a missing directory",
        args: &["run", "{dir}/vm.json", "--log", "{dir}/missing/log.txt"],
        code: 1,
        message: "cannot open the log file {dir}/missing/log.txt for writing: No such file",
    },
    Refusal {
        name: "writable disk that is the bootloader",
        args: &["run", "{dir}/disk-is-image.json", "--timeout", "5"],
        code: 1,
        message: "disk image {dir}/./guest.bin (disk 0) is writable and is also the bootloader \
                  image {dir}/guest.bin",
    },
    Refusal {
        name: "writable disk flag that is the kernel",
        args: &[
            "run",
            "--kernel",
            "{dir}/Image",
            "--disk",
            "{dir}/Image,writable",
            "--timeout",
            "5",
        ],
        code: 1,
        message: "is writable and is also the kernel {dir}/Image",
    },
    Refusal {
        name: "empty disk",
        args: &["run", "{dir}/vm.json", "--disk", "{dir}/empty.bin"],
        code: 1,
        message: "disk image {dir}/empty.bin is empty",
    },
    Refusal {
        name: "a Linux Image as the bootloader",
        args: &["run", "--bootloader", "{dir}/Image", "--timeout", "5"],
        code: 1,
        message: "bootloader image {dir}/Image is an arm64 Linux Image: boot it with --kernel",
    },
    Refusal {
        name: "an image given where the config goes",
        args: &["run", "{dir}/vmbase_example.bin", "--timeout", "5"],
        code: 1,
        message: "cannot read VM config {dir}/vmbase_example.bin: it is not a JSON config (it is \
                  not UTF-8 text): to boot an image, give it with --bootloader PATH",
    },
    Refusal {
        name: "too little memory for the example: the real minimum at once",
        args: &[
            "run",
            "--bootloader",
            "{dir}/vmbase_example.bin",
            "--mem",
            "2",
        ],
        code: 1,
        message: "memory_mib 2 is too small: the device tree takes the first 2 MiB of RAM and the \
                  image is loaded after it, so at least 5 MiB are needed",
    },
    Refusal {
        name: "still too little memory for the example",
        args: &[
            "run",
            "--bootloader",
            "{dir}/vmbase_example.bin",
            "--mem",
            "3",
        ],
        code: 1,
        message: "set memory_mib to at least 5",
    },
];

/// The files the refusals name, beside a guest that would boot (`guest.bin`, from `guest.o`).
fn refusal_fixture() -> common::Guest {
    let guest = assemble(HELLO);
    let dir = guest.dir.path();
    // msr vbar_el1, x30; isb: how a vmbase entry starts.
    let vmbase = [0xd518_c01e_u32, 0xd503_3fdf]
        .iter()
        .flat_map(|instruction| instruction.to_le_bytes())
        .collect();
    let long_params = format!(r#"{{"kernel": "Image", "params": "{}"}}"#, "a".repeat(3000));
    let files: [(&str, Vec<u8>); 25] = [
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
            br#"{"bootloader": "guest.bin", "protected": true, "num_cpus": 2}"#.to_vec(),
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
        ("vmbase.bin", vmbase),
        ("initrd", b"initrd".to_vec()),
        ("long-params.json", long_params.into_bytes()),
        ("kernel-list.json", br#"{"kernel": ["Image"]}"#.to_vec()),
        (
            "firmware-bool.json",
            br#"{"kernel": "Image", "firmware": true}"#.to_vec(),
        ),
        (
            "params-number.json",
            br#"{"kernel": "Image", "params": 1}"#.to_vec(),
        ),
        (
            "kernal.json",
            br#"{"kernel": "Image", "kernal": "Image"}"#.to_vec(),
        ),
        (
            "empty-initrd.json",
            br#"{"kernel": "Image", "initrd": ""}"#.to_vec(),
        ),
        (
            "disk-twice.json",
            br#"{"bootloader": "guest.bin", "disks": [{"image": "initrd", "writable": true},
                {"image": "./initrd-link"}]}"#
                .to_vec(),
        ),
        (
            "disk-directory.json",
            br#"{"bootloader": "guest.bin", "disks": [{"image": "."}]}"#.to_vec(),
        ),
        (
            "disk-is-image.json",
            br#"{"bootloader": "guest.bin", "disks": [{"image": "./guest.bin", "writable": true}]}"#
                .to_vec(),
        ),
    ];
    for (name, contents) in files {
        fs::write(dir.join(name), contents).unwrap();
    }
    fs::hard_link(&guest.image, dir.join("link.bin")).unwrap();
    fs::hard_link(dir.join("initrd"), dir.join("initrd-link")).unwrap();
    std::os::unix::fs::symlink("loop", dir.join("loop")).unwrap();
    // A socket file nobody listens on any more.
    drop(std::os::unix::net::UnixListener::bind(dir.join("socket")).unwrap());
    fs::File::create(dir.join("huge"))
        .unwrap()
        .set_len(100 << 30)
        .unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(dir.join("fifo"))
            .status()
            .unwrap()
            .success()
    );
    write_fake_kernel(&dir.join("Image"), 0x1000);
    write_fake_kernel(&dir.join("large-Image"), 64 << 20);
    for image in ["vmbase_example", "vmbase_linuxboot"] {
        fs::copy(guest_image(image), dir.join(format!("{image}.bin"))).unwrap();
    }
    guest
}

/// Every file in `dir` with its size and the contents of the regular files up to 16 MiB (not
/// the sparse 100 GiB one; a FIFO or link is not opened).
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let metadata = fs::symlink_metadata(&path).unwrap();
            let contents = if metadata.is_file() && metadata.len() <= 16 << 20 {
                fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            (path, metadata.len(), contents)
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
fn stdout_that_is_an_input_is_refused_untouched() {
    let fixture = refusal_fixture();
    let kernel = fixture.dir.path().join("Image");
    let before = fs::read(&kernel).unwrap();
    // `vm run --kernel Image >> Image`: the console and log would go to the kernel.
    let mut vm = Vm::new(&["run", "--kernel", &run_path(&kernel), "--timeout", "5"]);
    vm.command
        .stdout(fs::File::options().append(true).open(&kernel).unwrap())
        .stderr(Stdio::piped());
    let output = vm.command.output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        format!(
            "vm: error: the console file (standard output) is the kernel {}: writing it would \
             destroy it; choose another file\n",
            kernel.display()
        )
    );
    assert_eq!(fs::read(&kernel).unwrap(), before);
}

#[test]
fn a_closed_stderr_loses_the_messages_but_not_the_verdict() {
    let fixture = refusal_fixture();
    let text = fixture.dir.path().join("text.bin");
    fs::write(&text, "hello world\n").unwrap();
    // A warning (an image that does not look bootable) and a refusal, both to a closed
    // stderr: before, the write panicked and the panic's own message aborted vm, leaving its
    // temporary directory behind.
    for (args, code, stdout) in [
        (["--timeout", "0.5"], 137, "VM ended: Killed\n"),
        (["--mem", "2"], 1, ""),
    ] {
        let mut vm = Vm::new(&["run", "--bootloader", &run_path(&text)]);
        vm.command.args(args);
        let mut child = vm.spawn();
        drop(child.stderr.take());
        let run = vm.finish(child.wait_with_output().unwrap());
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(code), stdout),
            "{args:?}"
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

/// Prints "x" on the console without end: fills any pipe or FIFO nobody reads.
const CHATTER: &str = r#"
    movz x6, #0x0900, lsl #16
    mov w7, #'x'
1:  str w7, [x6]
    b 1b
"#;

/// Prints 96 KiB of "x" (more than a FIFO holds, less than a FIFO and a pipe), then powers
/// off.
const CHATTER_THEN_OFF: &str = r#"
    movz x6, #0x0900, lsl #16
    mov w7, #'x'
    movz x8, #0x1, lsl #16
    movk x8, #0x8000
1:  str w7, [x6]
    subs x8, x8, #1
    b.ne 1b
    b system_off
"#;

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// Waits (within a bound) for `child` to exit and returns its output, or kills it and fails.
fn wait_bounded(mut child: Child, bound: Duration, what: &str) -> Output {
    let deadline = Instant::now() + bound;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vm did not end within {bound:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_console_reader_that_stalls_cannot_outlast_the_timeout() {
    require_qemu();
    let guest = assemble(CHATTER);
    let fifo = guest.dir.path().join("console.fifo");
    mkfifo(&fifo);
    let mut vm = Vm::new(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--console",
        &run_path(&fifo),
        "--timeout",
        "5",
    ]);
    // A reader that opens the FIFO (without waiting for vm) and never reads.
    let _reader = fs::File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(&fifo)
        .unwrap();
    let child = vm.spawn();
    let output = wait_bounded(child, Duration::from_secs(20), "the reader stalls");
    let run = vm.finish(output);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(137), "VM ended: Killed\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("cannot write the VM's console"),
        "{}",
        run.stderr
    );
}

/// One story for a signal that comes after the guest powered off, while its output is still
/// being written: the VM ended by itself, so that is the verdict; the output that could not be
/// written makes it exit 2, not 128 + N.
#[test]
fn a_signal_after_the_guest_powered_off_keeps_its_verdict() {
    require_qemu();
    let guest = assemble(CHATTER_THEN_OFF);
    let fifo = guest.dir.path().join("console.fifo");
    mkfifo(&fifo);
    let mut vm = Vm::new(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--console",
        &run_path(&fifo),
    ]);
    let child = vm.spawn();
    // Reads a little, then stalls: the rest of the guest's output stays in vm's hands.
    let mut reader = fs::File::open(&fifo).unwrap();
    let mut start = [0; 4096];
    std::io::Read::read_exact(&mut reader, &mut start).unwrap();
    // Once QEMU (vm's child with the VM's name) has come and gone, the guest has powered off.
    let qemu_runs = || {
        processes_with_argument(&vm.name)
            .into_iter()
            .any(|(pid, parent)| parent == child.id() && !process_is_gone(pid))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !qemu_runs() {
        assert!(Instant::now() < deadline, "QEMU never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    while qemu_runs() {
        assert!(Instant::now() < deadline, "the guest never powered off");
        std::thread::sleep(Duration::from_millis(20));
    }
    send_signal("-TERM", child.id());
    let output = wait_bounded(child, Duration::from_secs(10), "a signal during output");
    let run = vm.finish(output);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(2), "VM ended: Shutdown\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("cannot write the VM's console"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_timeout_covers_the_wait_for_a_console_fifo_reader() {
    let guest = assemble(HELLO);
    let fifo = guest.dir.path().join("console.fifo");
    mkfifo(&fifo);
    let mut vm = Vm::new(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--console",
        &run_path(&fifo),
        "--timeout",
        "1",
    ]);
    let child = vm.spawn();
    let output = wait_bounded(child, Duration::from_secs(20), "nobody reads the FIFO");
    let run = vm.finish(output);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(137), "VM ended: Killed\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_temporary_directory_and_device_tree_are_private() {
    require_qemu();
    let guest = assemble(SPIN);
    let mut vm = Vm::new(&["run", "--bootloader", &run_path(&guest.image)]);
    let child = spawn_until_qemu_runs(&mut vm);
    let dirs: Vec<_> = fs::read_dir(vm.temp_dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let mode = |path: &Path| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(&dirs[0]), 0o700);
    assert_eq!(mode(&dirs[0].join("fdt.dtb")), 0o600);
    send_signal("-TERM", child.id());
    vm.finish(child.wait_with_output().unwrap());
}

#[test]
fn a_refused_start_leaves_every_output_as_it_was() {
    require_qemu();
    let guest = assemble(HELLO);
    let dir = guest.dir.path();
    let console = dir.join("console.txt");
    fs::write(&console, "keep me").unwrap();
    let log = dir.join("new-log.txt");
    let target = dir.join("target.txt");
    let link = dir.join("link.txt");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // QEMU refuses to start: the gdb port is taken.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let run = vm(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--gdb",
        &port,
        "--console",
        &run_path(&console),
        "--log",
        &run_path(&log),
        "--virtio-console",
        &run_path(&link),
    ]);
    assert_start_failed(&run, "qemu-system-aarch64 failed to start the VM");
    assert_eq!(fs::read_to_string(&console).unwrap(), "keep me");
    assert!(!log.exists(), "the log was created");
    assert!(!target.exists(), "the link's target was created");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        target,
        "the link was removed"
    );
}

#[test]
fn stdout_named_as_the_console_is_one_file_with_it() {
    require_qemu();
    let guest = assemble(HELLO);
    let out = guest.dir.path().join("out.txt");
    let mut vm = Vm::new(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--console",
        "/dev/stdout",
    ]);
    vm.command.stdout(fs::File::create(&out).unwrap());
    let output = vm.command.output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "hello\nVM ended: Shutdown\n"
    );

    // `vm run --console log >> log`: what the file held stays.
    fs::write(&out, "before\n").unwrap();
    let mut vm = Vm::new(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--console",
        &run_path(&out),
    ]);
    vm.command
        .stdout(fs::File::options().append(true).open(&out).unwrap());
    let output = vm.command.output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "before\nhello\nVM ended: Shutdown\n"
    );
}

#[test]
fn a_closed_stdout_is_lost_output() {
    require_qemu();
    let guest = assemble(HELLO);
    let temp_dir = tempfile::tempdir().unwrap();
    let output = Command::new("sh")
        .args(["-c", "exec \"$0\" run --bootloader \"$1\" >&-"])
        .arg(env!("CARGO_BIN_EXE_vm"))
        .arg(&guest.image)
        .env("TMPDIR", temp_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write the VM's console and log: standard output is closed"),
        "{stderr}"
    );
}

#[test]
fn disk_paths_and_names_reach_qemu_literally() {
    require_qemu();
    let guest = assemble(HELLO);
    let dir = guest.dir.path();
    fs::write(dir.join("d:1.img"), [0; 512]).unwrap();
    fs::write(dir.join("file:x,y.img"), [0; 512]).unwrap();
    let temp_dir = tempfile::tempdir().unwrap();
    let name = format!("{}=b,process=c", unique_name());
    let output = Command::new(env!("CARGO_BIN_EXE_vm"))
        .args(["run", "--bootloader", "guest.bin", "--name", &name])
        .args(["--disk", "d:1.img", "--disk", "file:x,y.img,writable"])
        .current_dir(dir)
        .env("TMPDIR", temp_dir.path())
        .output()
        .unwrap();
    assert_eq!(
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap()
        ),
        (Some(0), "hello\nVM ended: Shutdown\n".to_owned()),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_long_tmpdir_is_no_problem() {
    require_qemu();
    let guest = assemble(HELLO);
    let base = tempfile::tempdir().unwrap();
    let long = base.path().join("d".repeat(150));
    fs::create_dir(&long).unwrap();
    let run = Vm::in_temp_dir(
        &["run", "--bootloader", &run_path(&guest.image)],
        tempfile::TempDir::new_in(&long).unwrap(),
    )
    .run();
    assert_eq!(run.stdout, "hello\nVM ended: Shutdown\n", "{}", run.stderr);
}

#[test]
fn an_empty_tmpdir_does_not_mean_the_working_directory() {
    require_qemu();
    let guest = assemble(SPIN);
    let work = tempfile::tempdir().unwrap();
    let mut vm = Vm::new(&["run", "--bootloader", &run_path(&guest.image)]);
    vm.command.env("TMPDIR", "").current_dir(work.path());
    let child = spawn_until_qemu_runs(&mut vm);
    let in_working_directory: Vec<_> = fs::read_dir(work.path()).unwrap().collect();
    send_signal("-TERM", child.id());
    child.wait_with_output().unwrap();
    assert!(in_working_directory.is_empty(), "{in_working_directory:?}");
}

#[test]
fn a_relative_xdg_cache_home_is_ignored() {
    require_qemu();
    let guest = assemble(HELLO);
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut vm = Vm::new(&["run", "--bootloader", &run_path(&guest.image)]);
    vm.command
        .env("XDG_CACHE_HOME", "relative-cache")
        .env("HOME", home.path())
        .current_dir(work.path());
    let run = vm.run();
    assert_eq!(run.stdout, "hello\nVM ended: Shutdown\n", "{}", run.stderr);
    assert!(!work.path().join("relative-cache").exists());
    assert_eq!(
        fs::read_dir(home.path().join(".cache/vmclient"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn a_disk_that_is_not_whole_sectors_is_warned_about() {
    require_qemu();
    let guest = assemble(HELLO);
    let disk = guest.dir.path().join("odd.img");
    fs::write(&disk, [0; 1000]).unwrap();
    let run = vm(&[
        "run",
        "--bootloader",
        &run_path(&guest.image),
        "--disk",
        &run_path(&disk),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "vm: warning: disk image {} is 1000 bytes, not a multiple of 512: the guest sees \
             only its first 512 bytes",
            disk.display()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn the_cargo_runner_passes_configured_and_extra_arguments_to_vm() {
    require_qemu();
    let guest = assemble(HELLO);
    let object = guest.dir.path().join("guest.o");
    let console = guest.dir.path().join("console.txt");
    let temp_dir = tempfile::tempdir().unwrap();
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/cargo-runner.sh");
    // As `runner = ["tools/cargo-runner.sh", "--mem", "16", "--"]` and `cargo run -- ARGS`
    // run it: configured arguments, `--`, the ELF, then the extra ones.
    let output = Command::new(&runner)
        .args(["--mem", "16", "--"])
        .arg(&object)
        .arg("--console")
        .arg(&console)
        .env("VM", env!("CARGO_BIN_EXE_vm"))
        .env("TMPDIR", temp_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "VM ended: Shutdown\n"
    );
    assert_eq!(fs::read_to_string(&console).unwrap(), "hello\n");
}
