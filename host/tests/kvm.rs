// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Every guest under real KVM, through nested virtualization: an outer QEMU (TCG, with EL2)
//! boots Debian's arm64 kernel, which brings up KVM in one of its three modes; its initramfs
//! holds the aarch64 `vm`, Debian's arm64 QEMU and the guest images, and its init runs each case
//! with `vm run --accel kvm`, reporting exit codes and consoles back through the outer console.
//!
//! This proves KVM's own code paths (stage 2, vGIC, virtual timer, PSCI, the SMCCC TRNG, and
//! with `protected` pKVM's hypervisor at EL2) with every guest. Instructions still execute under
//! TCG, so nothing here says anything about timing on hardware.

mod common;

use common::linux::{arm64_qemu_cache, debian_busybox, debian_kernel};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use vmbase_test_harness::disks;
use vmbase_test_harness::{
    CROSVM_LIKE_TREE_MEMORY_MIB, assert_in_order, crosvm_like_device_tree, guest_image,
    newc_archive, repository_root, stand_in_kernel,
};

/// RAM of the outer VM: the initramfs (about 70 MB, twice while it is unpacked) and the memory
/// two inner VMs at a time touch.
const OUTER_MEMORY_MIB: u32 = 2048;

/// Far more than one mode's cases need (about 4 minutes on a loaded 2-core host), so that a
/// hang fails the tests instead of blocking them.
const OUTER_TIMEOUT: Duration = Duration::from_secs(900);

/// What the init script prints before a case's output, and after it with the exit code.
const CASE_PREFIX: &str = "kvm-case: ";

/// What the init script prints before the lines it reports about the kernel and the files the
/// cases wrote.
const REPORT_PREFIX: &str = "kvm-report: ";

/// The outer VM's `/init`: mounts what `vm` and QEMU need, reports the kernel's KVM banner,
/// runs the cases of `/cases` (one shell command line each) in two lanes, one per CPU, prints
/// each lane's log and powers off. A case is `vm run --accel kvm` (or a config that asks for
/// KVM) with a timeout, between `kvm-case: NAME: begin …` and `kvm-case: NAME: exit CODE`.
const INIT_SCRIPT: &str = r#"#!/bin/busybox sh
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
export PATH=/bin LD_LIBRARY_PATH=/lib XDG_CACHE_HOME=/tmp/cache TMPDIR=/tmp
$bb dmesg | $bb grep 'kvm \[' | $bb sed 's/^/kvm-report: /'
[ -c /dev/kvm ] && echo "kvm-report: /dev/kvm present"
run() {
    name=$1
    shift
    echo "kvm-case: $name: begin at $($bb cut -d' ' -f1 /proc/uptime) s"
    vm run --timeout 120 "$@" 2>&1
    echo "kvm-case: $name: exit $?"
}
kvm() {
    name=$1
    shift
    run "$name" --accel kvm "$@"
}
lane() {
    $bb awk -v lane="$1" 'NR % 2 == lane % 2' /cases |
        while read -r line; do eval "$line" </dev/null; done >/tmp/lane$1.log 2>&1
}
lane 1 &
lane 2 &
wait
$bb cat /tmp/lane1.log /tmp/lane2.log
echo "kvm-report: done at $($bb cut -d' ' -f1 /proc/uptime) s"
$bb poweroff -f
"#;

/// The cases, one shell command line each for the init script (`kvm NAME ARGS` runs
/// `vm run --accel kvm ARGS`), the slowest first so that the two lanes end together.
fn case_commands() -> Vec<String> {
    let mut commands = vec![
        format!("kvm example --bootloader /images/vmbase_example.bin --mem {EXAMPLE_MEMORY_MIB}"),
        // With a crosvm-like tree instead of QEMU's, and more RAM than the tree describes, so
        // that the example's `RAM from /memory` line shows which tree it read.
        format!(
            "kvm example-crosvm-tree --bootloader /images/vmbase_example.bin --mem {} \
             --dtb /images/crosvm-like-virt.dtb",
            CROSVM_LIKE_TREE_MEMORY_MIB + 20
        ),
        // The disks case asks for KVM in its JSON config, and then checks both files.
        "$bb cp /images/source.img /tmp/source.img; $bb cp /images/fill.img /tmp/target.img; \
         run virtio-disks /images/virtio-disks.json; \
         $bb cmp /images/written.img /tmp/target.img && echo 'kvm-report: target disk as expected'; \
         $bb cmp /images/source.img /tmp/source.img && echo 'kvm-report: source disk unchanged'"
            .to_owned(),
        "kvm virtio-console --bootloader /images/vmbase_virtio.bin --mem 64 \
         --params virtio=console --console-in /images/console-in.txt \
         --virtio-console /tmp/console-out.txt; \
         $bb sed 's/^/kvm-report: virtio console: /' /tmp/console-out.txt"
            .to_owned(),
        "kvm virtio-rng --bootloader /images/vmbase_virtio.bin --mem 64 --params virtio=rng"
            .to_owned(),
        "kvm linuxboot --kernel /images/stand-in-kernel --firmware /images/vmbase_linuxboot.bin \
         --mem 64"
            .to_owned(),
        "kvm hello --bootloader /images/vmbase_hello.bin".to_owned(),
        "kvm fault-early --bootloader /images/vmbase_faults_early.bin --mem 64 --params fault=none"
            .to_owned(),
    ];
    commands.extend(FAULTS.iter().map(|(fault, _, _)| {
        format!(
            "kvm fault-{fault} --bootloader /images/vmbase_faults.bin --mem 64 --params fault={fault}"
        )
    }));
    commands
}

/// The example's `--mem` on QEMU's tree: the RAM the crosvm-like tree describes, so that both
/// example cases print the same `/memory` line.
const EXAMPLE_MEMORY_MIB: u32 = CROSVM_LIKE_TREE_MEMORY_MIB;

/// The virtio `disks` test, as a JSON config that asks for KVM itself.
const VIRTIO_DISKS_CONFIG: &str = r#"{
    "name": "vmbase-virtio-disks-kvm",
    "bootloader": "vmbase_virtio.bin",
    "params": "virtio=disks",
    "memory_mib": 64,
    "accel": "kvm",
    "disks": [
        { "image": "/tmp/source.img" },
        { "image": "/tmp/target.img", "writable": true }
    ]
}
"#;

/// What the virtio console case reads.
const CONSOLE_INPUT: &str = "hello from the host\n";

/// The report line of an unhandled synchronous exception that starts with `$rest`.
macro_rules! sync {
    ($rest:literal) => {
        concat!(
            "vmbase: unhandled synchronous exception at the current EL: ",
            $rest
        )
    };
}

/// Every fault of the fault suite (testing/faults), with how its VM ends (the exit code of
/// `vm`: 0 Shutdown, 32 Reboot) and the start of the key line of its report.
const FAULTS: &[(&str, i32, &str)] = &[
    ("none", 0, "VM ended: Shutdown"),
    ("reboot", 32, "VM ended: Reboot"),
    ("undefined-instruction", 32, sync!("undefined instruction")),
    ("unmapped-read", 32, "vmbase: FAR=0x0000000040000000"),
    ("null-read", 32, "vmbase: FAR=0x0000000000000000"),
    (
        "null-write",
        32,
        sync!("data abort: translation fault, level 2, on write"),
    ),
    (
        "read-only-write",
        32,
        sync!("data abort: permission fault, level 3, on write"),
    ),
    (
        "execute-data",
        32,
        sync!("instruction abort: permission fault, level 3"),
    ),
    (
        "stack-overflow",
        32,
        "vmbase: stack overflow: the boot stack ran into its guard page",
    ),
    (
        "heap-exhaustion",
        32,
        "vmbase: heap exhausted: 1073741824 bytes (align 1) requested",
    ),
    ("panic", 32, "injected panic"),
    ("double-panic", 32, "vmbase: panicked while panicking"),
    ("panic-holding-console", 32, "panic while formatting"),
    (
        "panic-in-handler",
        32,
        "injected panic in sync_exception_current",
    ),
    (
        "fault-in-handler",
        32,
        "vmbase: exception inside an exception handler",
    ),
    ("irq", 32, "vmbase: unhandled IRQ at the current EL"),
    (
        "skip-instruction",
        0,
        "fault guest: resumed after the skipped instruction",
    ),
    ("nested-irq", 0, "fault guest: both IRQ handlers returned"),
    (
        "corrupt-fdt",
        0,
        "fault guest: corrupt FDT (garbage tokens): falls back",
    ),
    (
        "garbage-x0",
        0,
        "fault guest: x0 = 0x80000001: no FDT, ignored",
    ),
    (
        "misaligned-sp",
        32,
        "fault guest: SP alignment checking is on",
    ),
];

/// A mode of KVM on arm64, as the outer kernel's command line selects it.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// The kernel runs at EL2 (VHE), the default where the CPU has VHE.
    Vhe,
    /// `kvm-arm.mode=nvhe`: the kernel at EL1, KVM's hypervisor at EL2.
    Nvhe,
    /// `kvm-arm.mode=protected`: pKVM's hypervisor at EL2, deprivileging the host.
    Protected,
}

impl Mode {
    /// The outer kernel's parameter that selects the mode.
    fn parameter(self) -> &'static str {
        match self {
            Self::Vhe => "",
            Self::Nvhe => "kvm-arm.mode=nvhe",
            Self::Protected => "kvm-arm.mode=protected",
        }
    }

    /// The end of the line KVM logs when it came up in this mode.
    fn banner(self) -> &'static str {
        match self {
            Self::Vhe => "VHE mode initialized successfully",
            Self::Nvhe => "Hyp mode initialized successfully",
            Self::Protected => "Protected nVHE mode initialized successfully",
        }
    }
}

/// One case's result: `vm`'s exit code and everything printed in between (guest console and
/// `vm`'s own lines).
#[derive(Debug)]
struct Case {
    exit: i32,
    lines: Vec<String>,
}

/// One outer boot's results.
#[derive(Debug)]
struct Suite {
    /// The outer console, for failure messages.
    console: String,
    /// The init script's report lines, without their prefix.
    report: Vec<String>,
    cases: BTreeMap<String, Case>,
}

impl Suite {
    /// The case named `name`, which must have run to its end.
    fn case(&self, name: &str) -> &Case {
        self.cases.get(name).unwrap_or_else(|| {
            panic!(
                "case {name} did not run to its end; outer console:\n{}",
                self.console
            )
        })
    }

    /// Asserts that case `name` ran under KVM, ended with `exit` and printed `expected` in
    /// order.
    fn assert_case(&self, name: &str, exit: i32, expected: &[&str]) {
        let case = self.case(name);
        let mut lines = vec!["vm: accelerator: KVM"];
        lines.extend(expected);
        assert_in_order(&case.lines, &lines);
        assert_eq!(
            case.exit,
            exit,
            "case {name}; its output:\n{}",
            case.lines.join("\n")
        );
    }

    fn assert_reported(&self, line: &str) {
        assert!(
            self.report.iter().any(|reported| reported == line),
            "no report {line:?}; outer console:\n{}",
            self.console
        );
    }
}

/// Splits the outer console into the init script's report and the cases.
fn parse(console: String) -> Suite {
    let mut report = Vec::new();
    let mut cases = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in console.lines().map(|line| line.trim_end_matches('\r')) {
        if let Some(reported) = line.strip_prefix(REPORT_PREFIX) {
            report.push(reported.to_owned());
        } else if let Some(marker) = line.strip_prefix(CASE_PREFIX) {
            let (name, event) = marker.split_once(": ").expect("a case marker");
            if event.starts_with("begin") {
                current = Some((name.to_owned(), Vec::new()));
            } else if let (Some(exit), Some((running, lines))) =
                (event.strip_prefix("exit "), current.take())
            {
                assert_eq!(running, name, "case markers out of order");
                let exit = exit.parse().expect("an exit code");
                cases.insert(name.to_owned(), Case { exit, lines });
            }
        } else if let Some((_, lines)) = &mut current {
            lines.push(line.to_owned());
        }
    }
    Suite {
        console,
        report,
        cases,
    }
}

/// The aarch64 Linux `vm`, brought up to date with `make vm-aarch64` once per process.
fn aarch64_vm() -> PathBuf {
    static BUILD: OnceLock<PathBuf> = OnceLock::new();
    BUILD
        .get_or_init(|| {
            let status = Command::new("make")
                .args(["--no-print-directory", "-s", "vm-aarch64"])
                .current_dir(repository_root())
                .status()
                .expect("run make vm-aarch64");
            assert!(status.success(), "make vm-aarch64 failed: {status}");
            repository_root().join("target/aarch64-unknown-linux-musl/release/vm")
        })
        .clone()
}

/// The outer VM's initramfs, built once per process: busybox, the init script, `vm`, Debian's
/// arm64 QEMU with its libraries, the guest images and what the cases read.
fn outer_initramfs() -> &'static Path {
    static INITRAMFS: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = INITRAMFS.get_or_init(|| {
        let mut files: Vec<(String, u32, Vec<u8>)> = Vec::new();
        for directory in ["bin", "dev", "proc", "sys", "lib", "images"] {
            files.push((directory.to_owned(), 0o040_755, Vec::new()));
        }
        files.push(("tmp".to_owned(), 0o041_777, Vec::new()));
        files.push(("dev/console".to_owned(), 0o020_600, Vec::new()));
        let executable = |name: &str, path: &Path| {
            let bytes = fs::read(path).unwrap_or_else(|error| {
                panic!("cannot read {}: {error}", path.display());
            });
            (name.to_owned(), 0o100_755, bytes)
        };
        files.push(executable("bin/busybox", &debian_busybox()));
        files.push(executable("bin/vm", &aarch64_vm()));
        let qemu = arm64_qemu_cache();
        files.push(executable(
            "bin/qemu-system-aarch64",
            &qemu.join("qemu-system-aarch64"),
        ));
        let mut libraries: Vec<_> = fs::read_dir(qemu.join("lib"))
            .expect("the arm64 QEMU's libraries")
            .map(|entry| entry.unwrap().path())
            .collect();
        libraries.sort();
        assert!(
            libraries.len() > 10,
            "too few libraries in {}",
            qemu.display()
        );
        for library in libraries {
            let name = library.file_name().unwrap().to_str().unwrap();
            files.push(executable(&format!("lib/{name}"), &library));
        }
        for image in [
            "vmbase_hello",
            "vmbase_example",
            "vmbase_faults",
            "vmbase_faults_early",
            "vmbase_virtio",
            "vmbase_linuxboot",
        ] {
            files.push(executable(
                &format!("images/{image}.bin"),
                &guest_image(image),
            ));
        }
        let data = |name: &str, bytes: Vec<u8>| (format!("images/{name}"), 0o100_644, bytes);
        files.push(data("stand-in-kernel", stand_in_kernel(0x1000, 0x1000)));
        let trees = tempfile::tempdir().unwrap();
        let crosvm_like_tree = fs::read(crosvm_like_device_tree(trees.path())).unwrap();
        files.push(data("crosvm-like-virt.dtb", crosvm_like_tree));
        files.push(data("source.img", disks::source_image()));
        files.push(data("fill.img", vec![disks::FILL; disks::DISK_SIZE]));
        files.push(data("written.img", disks::written_target_image()));
        files.push(data("console-in.txt", CONSOLE_INPUT.into()));
        files.push(data("virtio-disks.json", VIRTIO_DISKS_CONFIG.into()));
        files.push(("init".to_owned(), 0o100_755, INIT_SCRIPT.into()));
        let cases = case_commands().join("\n") + "\n";
        files.push(("cases".to_owned(), 0o100_644, cases.into_bytes()));

        let entries: Vec<(&str, u32, &[u8])> = files
            .iter()
            .map(|(name, mode, bytes)| (name.as_str(), *mode, bytes.as_slice()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outer-initramfs.cpio");
        fs::write(&path, newc_archive(&entries).unwrap()).unwrap();
        (dir, path)
    });
    path
}

/// Boots the outer VM in `mode` and runs every case; returns its console. Fails if QEMU cannot
/// run or the VM outlives [`OUTER_TIMEOUT`].
fn boot_outer(mode: Mode) -> String {
    common::require_qemu();
    let initramfs = outer_initramfs();
    let dir = tempfile::tempdir().unwrap();
    let console_path = dir.path().join("console.txt");
    let console = File::create(&console_path).unwrap();
    let append = format!("console=ttyAMA0 quiet panic=-1 {}", mode.parameter());
    // setpriv (util-linux) kills QEMU with this thread, should the test process die first.
    let mut qemu = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "qemu-system-aarch64"])
        .args([
            "-M",
            "virt,virtualization=on,gic-version=3",
            "-cpu",
            "max",
            // As `vm` does: a faster pointer-authentication algorithm under TCG.
            "-global",
            "max-arm-cpu.pauth-impdef=on",
            "-smp",
            "2",
            "-m",
            &OUTER_MEMORY_MIB.to_string(),
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            "stdio",
            "-kernel",
        ])
        .arg(debian_kernel())
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", append.trim_end()])
        .stdin(Stdio::null())
        .stdout(console)
        .stderr(Stdio::piped())
        .spawn()
        .expect("run setpriv (util-linux) and qemu-system-aarch64");
    let deadline = Instant::now() + OUTER_TIMEOUT;
    let status = loop {
        if let Some(status) = qemu.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = qemu.kill();
            let _ = qemu.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(200));
    };
    let console = String::from_utf8_lossy(&fs::read(&console_path).unwrap()).into_owned();
    let status = status.unwrap_or_else(|| {
        panic!("the outer VM ({mode:?}) outlived {OUTER_TIMEOUT:?}; console:\n{console}")
    });
    assert!(
        status.success(),
        "the outer QEMU ({mode:?}) failed: {status}; console:\n{console}"
    );
    console
}

/// The results of `mode`'s outer boot, run once per process; one outer VM at a time, as each
/// keeps the host's cores busy.
fn suite(mode: Mode) -> &'static Suite {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    static SUITES: [OnceLock<Suite>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    SUITES[mode as usize].get_or_init(|| {
        let _one = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        parse(boot_outer(mode))
    })
}

fn kernel_brought_up_kvm(mode: Mode) {
    let suite = suite(mode);
    assert!(
        suite
            .report
            .iter()
            .any(|line| line.ends_with(mode.banner())),
        "KVM did not say {:?}; outer console:\n{}",
        mode.banner(),
        suite.console
    );
    suite.assert_reported("/dev/kvm present");
    assert!(
        suite.report.iter().any(|line| line.starts_with("done at ")),
        "init did not finish; outer console:\n{}",
        suite.console
    );
}

fn hello(mode: Mode) {
    suite(mode).assert_case("hello", 0, &["Hello world: reached Rust after "]);
}

/// Asserts that the example's case `name` ran to its clean end, its entropy from KVM's SMCCC
/// TRNG (QEMU's TCG offers none), with `/memory` of [`CROSVM_LIKE_TREE_MEMORY_MIB`].
fn assert_example(mode: Mode, name: &str) {
    let ram_end = 0x8000_0000 + (u64::from(CROSVM_LIKE_TREE_MEMORY_MIB) << 20);
    let ram = format!("[INFO] RAM from /memory: 0x80000000..{ram_end:#x}");
    suite(mode).assert_case(
        name,
        0,
        &[
            "[INFO] Hello world",
            "[INFO] Entropy works: two draws differ (source: SMCCC TRNG)",
            "[INFO] Page table built; no mapping is both writable and executable.",
            "[INFO] Activated.",
            "[INFO] SHA-512 of \"hello world\" is correct",
            &ram,
            "[INFO] Entering a stand-in payload with the MMU off; it powers off if the handoff is right",
            "VM ended: Shutdown",
        ],
    );
}

/// The example on QEMU's tree, as `vm` rewrites it.
fn example(mode: Mode) {
    assert_example(mode, "example");
}

/// The example on a crosvm-like tree (`tests/data/crosvm-like-virt.dts`: crosvm's nodes, QEMU's
/// PL011 as the console), given with `--dtb`; its `/memory` line is the tree's, not the larger
/// RAM `vm` was asked for.
fn example_on_a_crosvm_like_tree(mode: Mode) {
    assert_example(mode, "example-crosvm-tree");
}

/// The whole fault suite, each fault checked on its own. `misaligned-sp` may fault (a CPU that
/// checks SP alignment) or run on (TCG's, as in this nested setup), but must reset either way.
fn faults(mode: Mode) {
    let suite = suite(mode);
    for &(fault, exit, line) in FAULTS {
        let injecting = format!("fault guest: injecting {fault}");
        suite.assert_case(&format!("fault-{fault}"), exit, &[&injecting, line]);
    }
    let misaligned = suite.case("fault-misaligned-sp");
    let reported = misaligned.lines.iter().any(|line| {
        line.starts_with(sync!("SP alignment fault"))
            || line == "fault guest: this CPU does not check SP alignment"
    });
    assert!(reported, "{}", misaligned.lines.join("\n"));
    let early = suite.case("fault-early");
    assert_eq!(early.exit, 32, "{}", early.lines.join("\n"));
    assert_eq!(
        early.lines,
        ["vm: accelerator: KVM", "VM ended: Reboot"],
        "a silent reset"
    );
}

fn virtio_disks(mode: Mode) {
    let suite = suite(mode);
    suite.assert_case(
        "virtio-disks",
        0,
        &[
            "virtio guest: disk 00:01.0 has 2048 sectors (read-only: true)",
            "virtio guest: read 1048576 bytes, checksum",
            "virtio guest: wrote and read back sectors 3..703 of disk 00:02.0",
            "virtio guest: disks passed",
        ],
    );
    suite.assert_reported("target disk as expected");
    suite.assert_reported("source disk unchanged");
}

fn virtio_console(mode: Mode) {
    let suite = suite(mode);
    suite.assert_case(
        "virtio-console",
        0,
        &[
            "virtio guest: read \"hello from the host\" from the virtio console",
            "virtio guest: console passed",
        ],
    );
    suite.assert_reported("virtio console: virtio guest: type a line");
    suite.assert_reported("virtio console: echo: hello from the host");
}

/// The virtio-rng device, and vmbase's own entropy from KVM's SMCCC TRNG.
fn virtio_rng(mode: Mode) {
    suite(mode).assert_case(
        "virtio-rng",
        0,
        &[
            "virtio guest: virtio-rng entropy ",
            "virtio guest: rand entropy from SMCCC TRNG: ",
        ],
    );
}

/// vmbase_linuxboot hands over to a kernel: a stand-in `Image` that powers the VM off (Debian's
/// kernel takes minutes to boot under nested KVM; `host/tests/linux.rs` boots it under TCG).
fn linuxboot(mode: Mode) {
    suite(mode).assert_case("linuxboot", 0, &["linuxboot: entering the kernel at "]);
}

/// One test per mode and check, named `kvm_MODE_CHECK`.
macro_rules! kvm_tests {
    ($($mode_name:ident: $mode:ident;)*) => {
        $(
            mod $mode_name {
                use super::*;

                #[test]
                fn kvm_kernel_brought_up_kvm() {
                    kernel_brought_up_kvm(Mode::$mode);
                }

                #[test]
                fn kvm_hello() {
                    hello(Mode::$mode);
                }

                #[test]
                fn kvm_example() {
                    example(Mode::$mode);
                }

                #[test]
                fn kvm_example_on_a_crosvm_like_tree() {
                    example_on_a_crosvm_like_tree(Mode::$mode);
                }

                #[test]
                fn kvm_faults() {
                    faults(Mode::$mode);
                }

                #[test]
                fn kvm_virtio_disks() {
                    virtio_disks(Mode::$mode);
                }

                #[test]
                fn kvm_virtio_console() {
                    virtio_console(Mode::$mode);
                }

                #[test]
                fn kvm_virtio_rng() {
                    virtio_rng(Mode::$mode);
                }

                #[test]
                fn kvm_linuxboot() {
                    linuxboot(Mode::$mode);
                }
            }
        )*
    };
}

kvm_tests! {
    vhe: Vhe;
    nvhe: Nvhe;
    protected: Protected;
}
