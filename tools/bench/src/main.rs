// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! `make bench`: what vmbase costs. Deterministic figures first (guest instructions under QEMU
//! `-icount shift=0`, image sizes), then host wall times. Prints one table and writes the same
//! figures to out/bench.json.
//!
//! Under `-icount shift=0` every guest instruction takes 1 ns of virtual time and QEMU's generic
//! timer runs at 62.5 MHz, so one counter tick is 16 instructions: the guests print the counter
//! at milestones, and the launcher reports the exact total at `SYSTEM_OFF`.

mod peers;

use anyhow::{Context, Result, bail};
use object::{Object, ObjectSection};
use peers::Peer;
use serde_json::{Value, json};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use vmbase_test_harness::{
    STAND_IN_EFI_KERNEL_INSTRUCTIONS, STAND_IN_KERNEL_INSTRUCTIONS, linux_cache_dir, newc_archive,
    power_off_bootloader, repository_root, stand_in_efi_kernel, stand_in_kernel,
};
use vmclient::layout::{FDT_ADDRESS, IMAGE_ADDRESS, QEMU_RAM_BELOW_RAM_START_MIB};
use vmclient::{DeathReason, DiskImage, VirtualMachineRawConfig, boot_stub};

/// Guest instructions per counter tick under `-icount shift=0` (16 ns at 62.5 MHz).
const INSTRUCTIONS_PER_TICK: u64 = 16;
/// Instructions of the launcher's boot stub, before the image's first.
const BOOT_STUB_INSTRUCTIONS: u64 = 6;
/// Alternating runs for each wall-time median of the launcher: a few milliseconds apart in tens,
/// which host noise hides in fewer runs.
const WALL_TIME_RUNS: usize = 41;
/// VMs started at once for the parallel figure.
const PARALLEL_VMS: usize = 8;
/// Guest RAM for the bootloader images' runs.
const MEMORY_MIB: u32 = 64;
const TIMEOUT: Duration = Duration::from_secs(60);

/// RAM for the firmware benchmarks: room for the largest stand-in kernel and the tree.
const FIRMWARE_MEMORY_MIB: u32 = 64;
/// Sizes of the stand-in kernel: tiny, and as large as Debian's (which the firmware must not
/// read through: the count should not grow).
const STAND_IN_KERNEL_SIZES: [usize; 2] = [0x50, 32 << 20];

/// Alternating runs for each Linux wall-time median (each boots a whole kernel).
const LINUX_WALL_TIME_RUNS: usize = 7;
/// RAM for the Linux boots.
const LINUX_MEMORY_MIB: u32 = 300;
/// How long one Linux boot may take (about 2 s on an idle host) before it counts as hung.
const LINUX_TIMEOUT: Duration = Duration::from_secs(300);

/// A guest image and the ELF it was made from.
struct Guest {
    name: &'static str,
    label: &'static str,
}

const GUESTS: [Guest; 3] = [
    Guest {
        name: "vmbase_example",
        label: "vmbase example",
    },
    Guest {
        name: "vmbase_hello",
        label: "vmbase hello",
    },
    Guest {
        name: "baseline_hello",
        label: "baseline hello",
    },
];

/// What one deterministic boot of a guest showed.
struct BootCost {
    bss: u64,
    data: u64,
    image_bytes: u64,
    rust_entry: Option<u64>,
    main: u64,
    system_off: u64,
}

impl BootCost {
    /// The model of the instructions no entry path can avoid: the boot stub, one store per
    /// 32 bytes of .bss (STP of two zeroed Q registers, or DC ZVA and an ADD per 64 bytes), and
    /// one load and one store per 32 bytes of .data (LDP and STP of two Q registers).
    fn floor(&self) -> u64 {
        BOOT_STUB_INSTRUCTIONS + self.bss.div_ceil(32) + 2 * self.data.div_ceil(32)
    }
}

/// Sizes of the ELF's .bss and .data sections.
fn section_sizes(elf: &Path) -> Result<(u64, u64)> {
    let bytes = fs::read(elf).with_context(|| format!("read {}", elf.display()))?;
    let file = object::File::parse(&*bytes).with_context(|| format!("parse {}", elf.display()))?;
    let size = |name| {
        file.section_by_name(name)
            .map_or(0, |section| section.size())
    };
    Ok((size(".bss"), size(".data")))
}

/// Boots `image` under icount (in a protected VM, under the pKVM double, if `protected`),
/// returning its console lines and exact instruction count.
fn boot_counted(image: &Path, params: Option<&str>, protected: bool) -> Result<(Vec<String>, u64)> {
    let config = VirtualMachineRawConfig {
        name: "vmbase-bench".to_owned(),
        bootloader: Some(image.to_owned()),
        params: params.map(str::to_owned),
        memory_mib: MEMORY_MIB,
        icount_shift: Some(0),
        protected_vm: protected,
        ..Default::default()
    };
    run_counted(&config, image)
}

/// Boots `config` (which sets `icount_shift`), returning its console lines and exact
/// instruction count; it must end with `Shutdown`. `image` names it in errors.
fn run_counted(config: &VirtualMachineRawConfig, image: &Path) -> Result<(Vec<String>, u64)> {
    let (lines, instructions) = boot_config(config, image)?;
    Ok((lines, instructions.context("no instruction count")?))
}

/// Boots `config`, returning its console lines and, under icount, its instruction count; it
/// must end with `Shutdown`. `image` names it in errors.
fn boot_config(
    config: &VirtualMachineRawConfig,
    image: &Path,
) -> Result<(Vec<String>, Option<u64>)> {
    let boot = vmbase_test_harness::boot(config, TIMEOUT)?;
    if boot.reason != DeathReason::Shutdown {
        bail!(
            "{} ended with {}; console:\n{}",
            image.display(),
            boot.reason,
            boot.console
        );
    }
    Ok((boot.lines(), boot.instructions))
}

/// Bytes of the disk the virtio-blk benchmark reads (the guest's BENCH_SIZE).
const DISK_BYTES: usize = 16 << 20;
/// Guest RAM for the virtio-blk benchmark: the image, 2 x 16 MiB of buffers and a 4 MiB pool.
const DISK_BENCH_MEMORY_MIB: u32 = 64;
/// Runs for the wall-time medians of the virtio-blk benchmark.
const DISK_WALL_RUNS: usize = 5;
/// The phases vmbase_virtio's `bench` times, as it labels them.
const DISK_PHASES: [&str; 3] = [
    "memcpy 16777216 bytes ",
    "read 4096 bytes per request ",
    "read 1048576 bytes per request ",
];

/// What the virtio-blk benchmark measured: per phase, guest instructions (icount) and the
/// median wall time.
struct DiskBench {
    instructions: Vec<u64>,
    wall: Vec<Duration>,
}

/// Boots vmbase_virtio's `bench` on a 16 MiB disk: once under icount for instructions, then
/// `DISK_WALL_RUNS` times without for wall times (the guest times each phase with its counter).
/// In a protected VM if `protected`: vmbase then shares its DMA pool, and the pKVM double
/// performs every device access and checks every notification.
fn disk_bench(root: &Path, protected: bool) -> Result<DiskBench> {
    let dir = tempfile::tempdir()?;
    let disk = dir.path().join("bench.img");
    fs::write(
        &disk,
        (0..DISK_BYTES).map(|i| (i >> 9) as u8).collect::<Vec<u8>>(),
    )?;
    let image = root.join("out/vmbase_virtio.bin");
    let mut config = VirtualMachineRawConfig {
        name: "vmbase-bench-virtio".to_owned(),
        bootloader: Some(image.clone()),
        params: Some("virtio=bench".to_owned()),
        memory_mib: DISK_BENCH_MEMORY_MIB,
        disks: vec![DiskImage {
            image: disk,
            writable: false,
        }],
        icount_shift: Some(0),
        protected_vm: protected,
        ..Default::default()
    };
    let phase_ticks = |lines: &[String]| -> Result<Vec<u64>> {
        DISK_PHASES
            .iter()
            .map(|phase| {
                number_after(lines, &format!("bench {phase}"))
                    .with_context(|| format!("no {phase:?} line in:\n{}", lines.join("\n")))
            })
            .collect()
    };
    let (lines, _) = boot_config(&config, &image)?;
    let instructions = phase_ticks(&lines)?
        .into_iter()
        .map(|ticks| ticks * INSTRUCTIONS_PER_TICK)
        .collect();
    config.icount_shift = None;
    let mut samples = vec![Vec::new(); DISK_PHASES.len()];
    for _ in 0..DISK_WALL_RUNS {
        let (lines, _) = boot_config(&config, &image)?;
        let frequency = number_after(&lines, "bench counter ").context("no counter frequency")?;
        for (phase, ticks) in phase_ticks(&lines)?.into_iter().enumerate() {
            samples[phase].push(Duration::from_secs_f64(ticks as f64 / frequency as f64));
        }
    }
    Ok(DiskBench {
        instructions,
        wall: samples.into_iter().map(median).collect(),
    })
}

/// The number after `label` in the first console line that has it, such as "main after 42".
fn number_after(lines: &[String], label: &str) -> Option<u64> {
    lines.iter().find_map(|line| {
        let rest = &line[line.find(label)? + label.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

/// What one deterministic boot of `guest` costs, in a protected VM if `protected`.
fn boot_cost(root: &Path, guest: &Guest, protected: bool) -> Result<BootCost> {
    let image = root.join("out").join(format!("{}.bin", guest.name));
    let elf = root
        .join("target/aarch64-unknown-none/release")
        .join(guest.name);
    let (bss, data) = section_sizes(&elf)?;
    let (lines, system_off) = boot_counted(&image, None, protected)?;
    let ticks = |label| number_after(&lines, label).map(|ticks| ticks * INSTRUCTIONS_PER_TICK);
    Ok(BootCost {
        bss,
        data,
        image_bytes: fs::metadata(&image)?.len(),
        rust_entry: ticks("reached Rust after "),
        main: ticks("main after ").context("the guest printed no main tick count")?,
        system_off,
    })
}

/// The pKVM double's own instructions when it runs a guest that does nothing but power off: from
/// reset to the guest's first instruction, plus passing the guest's `SYSTEM_OFF` on to QEMU.
/// The guest is a bootloader image of four instructions that powers off; the figure is its
/// protected boot's count less its unprotected one.
fn double_boot_path() -> Result<u64> {
    let dir = tempfile::tempdir()?;
    let image = dir.path().join("power-off.bin");
    fs::write(&image, power_off_bootloader())?;
    let (_, unprotected) = boot_counted(&image, None, false)?;
    let (_, protected) = boot_counted(&image, None, true)?;
    protected
        .checked_sub(unprotected)
        .with_context(|| format!("protected {protected} < unprotected {unprotected}"))
}

/// Instructions from reset to `SYSTEM_OFF` in the stand-in kernel, booted through
/// vmbase_linuxboot, for each of [`STAND_IN_KERNEL_SIZES`].
fn firmware_boot_costs(root: &Path) -> Result<Vec<u64>> {
    let dir = tempfile::tempdir()?;
    STAND_IN_KERNEL_SIZES
        .iter()
        .map(|&size| {
            let kernel = dir.path().join(format!("kernel-{size}"));
            fs::write(&kernel, stand_in_kernel(size, size as u64))?;
            linuxboot_instructions(root, kernel)
        })
        .collect()
}

/// Instructions from reset to `SYSTEM_OFF` in the stand-in `kernel` booted through
/// vmbase_linuxboot.
fn linuxboot_instructions(root: &Path, kernel: PathBuf) -> Result<u64> {
    let firmware = root.join("out/vmbase_linuxboot.bin");
    let config = VirtualMachineRawConfig {
        name: "vmbase-bench-firmware".to_owned(),
        kernel: Some(kernel),
        firmware: Some(firmware.clone()),
        memory_mib: FIRMWARE_MEMORY_MIB,
        icount_shift: Some(0),
        ..Default::default()
    };
    let (lines, instructions) = run_counted(&config, &firmware)?;
    if !lines
        .iter()
        .any(|line| line.starts_with("linuxboot: entering the kernel at 0x80000000"))
    {
        bail!(
            "vmbase_linuxboot did not enter the kernel:\n{}",
            lines.join("\n")
        );
    }
    Ok(instructions)
}

/// One firmware's instructions from reset to the first of the stand-in EFI kernel.
struct FirmwareCost {
    name: &'static str,
    version: String,
    instructions: u64,
}

/// Reset to the kernel's first instruction through vmbase_linuxboot and each [`Peer`], on the
/// same stand-in kernel (an arm64 `Image` that is also an EFI application) and the same machine.
fn peer_boot_costs(root: &Path) -> Result<Vec<FirmwareCost>> {
    peers::check_installed()?;
    let dir = tempfile::tempdir()?;
    let kernel = dir.path().join("kernel");
    fs::write(&kernel, stand_in_efi_kernel(0, 0x2000))?;
    let mut costs = vec![FirmwareCost {
        name: "vmbase_linuxboot",
        version: "this tree".to_owned(),
        instructions: linuxboot_instructions(root, kernel.clone())?
            - STAND_IN_EFI_KERNEL_INSTRUCTIONS.0,
    }];
    for peer in Peer::ALL {
        let args = peer.qemu_args(FIRMWARE_MEMORY_MIB, &kernel, None, "", dir.path())?;
        let console = dir.path().join(format!("{}.console", peer.name()));
        let instructions = peers::count_instructions(&args, dir.path(), &console)
            .with_context(|| format!("boot the stand-in kernel through {}", peer.name()))?;
        costs.push(FirmwareCost {
            name: peer.name(),
            version: peer.package(),
            instructions: instructions - peer.kernel_instructions(),
        });
    }
    Ok(costs)
}

/// Where `tools/install-deps.sh linux` keeps Debian's kernel and busybox.
fn linux_cache() -> Result<PathBuf> {
    let linux = linux_cache_dir().context("neither XDG_CACHE_HOME nor HOME is set")?;
    if !linux.join("Image").is_file() || !linux.join("busybox").is_file() {
        bail!(
            "no Debian kernel in {}: run make linux-deps",
            linux.display()
        );
    }
    Ok(linux)
}

/// A newc initramfs whose `/init` powers the VM off at once: busybox and a console.
fn poweroff_initramfs(busybox: &[u8]) -> Result<Vec<u8>> {
    const INIT: &[u8] = b"#!/bin/busybox sh\n/bin/busybox poweroff -f\n";
    Ok(newc_archive(&[
        ("bin", 0o040_755, b""),
        ("dev", 0o040_755, b""),
        ("bin/busybox", 0o100_755, busybox),
        ("init", 0o100_755, INIT),
        ("dev/console", 0o020_600, b""),
    ])?)
}

/// Ways of booting Debian's kernel that the Linux wall times compare.
const LINUX_BOOTS: [&str; 4] = ["direct", "vmbase_linuxboot", "u-boot", "edk2"];

/// Median wall times of booting Debian's kernel to init's power-off, for each of
/// [`LINUX_BOOTS`], alternating: `vm run` directly and through vmbase_linuxboot, and QEMU with
/// each [`Peer`] on the same machine.
fn linux_wall_times(root: &Path) -> Result<Vec<Duration>> {
    let linux = linux_cache()?;
    let dir = tempfile::tempdir()?;
    let initrd = dir.path().join("initramfs.cpio");
    fs::write(
        &initrd,
        poweroff_initramfs(&fs::read(linux.join("busybox"))?)?,
    )?;
    let image = linux.join("Image");
    let vm_command = |firmware: bool| {
        let mut command = vm_run(root, LINUX_MEMORY_MIB);
        command
            .arg("--kernel")
            .arg(&image)
            .arg("--initrd")
            .arg(&initrd);
        if firmware {
            command
                .arg("--firmware")
                .arg(root.join("out/vmbase_linuxboot.bin"));
        }
        command
    };
    // The kernel's command line `vm run` gives it (host/src/plan/placement.rs).
    let peer_args = Peer::ALL
        .iter()
        .map(|peer| {
            peer.qemu_args(
                LINUX_MEMORY_MIB,
                &image,
                Some(&initrd),
                "panic=-1",
                dir.path(),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let console = dir.path().join("peer.console");
    // Each boot, and for the peers (whose QEMU exits the same way whether Linux powered off or
    // reset) the console line Linux prints as it powers off.
    let boots = || {
        [(vm_command(false), false), (vm_command(true), false)]
            .into_iter()
            .chain(
                peer_args
                    .iter()
                    .map(|args| (peers::bare_qemu(args, &console), true)),
            )
    };
    let run = |(mut command, check_console): (Command, bool)| -> Result<Duration> {
        let _ = fs::remove_file(&console);
        let elapsed = time_bounded(&mut command, LINUX_TIMEOUT)?;
        if check_console {
            let output = fs::read_to_string(&console).unwrap_or_default();
            if !output.contains("reboot: Power down") {
                bail!("{command:?} did not power Linux off; console:\n{output}");
            }
        }
        Ok(elapsed)
    };
    // A first run of each warms the launcher's device-tree cache and the page cache.
    for boot in boots() {
        run(boot)?;
    }
    let mut samples = vec![Vec::new(); LINUX_BOOTS.len()];
    for _ in 0..LINUX_WALL_TIME_RUNS {
        for (samples, boot) in samples.iter_mut().zip(boots()) {
            samples.push(run(boot)?);
        }
    }
    Ok(samples.into_iter().map(median).collect())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Runs `command` to completion, returning how long it took; it must succeed.
fn time(command: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(start.elapsed())
}

/// Like [`time`], but kills `command` and fails once it ran for `timeout`. It looks every
/// 10 ms, which is nothing beside the seconds of the runs it bounds.
fn time_bounded(command: &mut Command, timeout: Duration) -> Result<Duration> {
    let start = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{command:?} failed: {status}");
            }
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{command:?} did not finish in {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// `vm run` with `memory_mib` of RAM, console and log discarded; the caller adds what to boot.
fn vm_run(root: &Path, memory_mib: u32) -> Command {
    let mut command = Command::new(root.join("target/release/vm"));
    command
        .args([
            "run",
            "--console",
            "/dev/null",
            "--log",
            "/dev/null",
            "--mem",
        ])
        .arg(memory_mib.to_string());
    command
}

/// `vm run` on `image`, console and log discarded.
fn vm_command(root: &Path, image: &Path) -> Command {
    let mut command = vm_run(root, MEMORY_MIB);
    command.arg("--bootloader").arg(image);
    command
}

/// The machine `vm run` gives a guest with `memory_mib` of RAM (host/src/qemu/mod.rs): the same
/// CPU, RAM size and devices, its virtio-rng included, without a firmware.
fn vm_machine_args(memory_mib: u32) -> Vec<OsString> {
    [
        "-M",
        "virt,gic-version=3,highmem=off",
        "-cpu",
        "max",
        "-global",
        "max-arm-cpu.pauth-impdef=on",
        "-m",
        &format!("{}M", QEMU_RAM_BELOW_RAM_START_MIB + u64::from(memory_mib)),
        "-smp",
        "1",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-device",
        "virtio-rng-pci",
    ]
    .map(OsString::from)
    .into()
}

/// The same boot as `vm run` without the launcher: QEMU with the same machine and devices, the
/// boot stub, QEMU's own device tree and the image, straight from the shell.
fn bare_qemu_command(files: &Path, image: &Path) -> Command {
    let mut command = Command::new("qemu-system-aarch64");
    command
        .args(vm_machine_args(MEMORY_MIB))
        .args(["-serial", "null", "-bios"])
        .arg(files.join("stub.bin"));
    for (file, address) in [
        (files.join("qemu.dtb"), FDT_ADDRESS),
        (image.to_owned(), IMAGE_ADDRESS),
    ] {
        command.arg("-device").arg(format!(
            "loader,file={},addr={address:#x},force-raw=on",
            file.display()
        ));
    }
    command
}

/// Median wall times of `vm run` and of bare QEMU on `image`, alternating.
fn launcher_overhead(root: &Path, image: &Path) -> Result<(Duration, Duration)> {
    let files = tempfile::tempdir()?;
    fs::write(files.path().join("stub.bin"), boot_stub())?;
    // The same machine as the boot, -bios included (QEMU leaves devices out under -bios).
    time(
        Command::new("qemu-system-aarch64")
            .args(vm_machine_args(MEMORY_MIB))
            .arg("-machine")
            .arg(format!(
                "dumpdtb={}",
                files.path().join("qemu.dtb").display()
            ))
            .arg("-bios")
            .arg(files.path().join("stub.bin")),
    )?;
    // One run of each first, so that caches (the launcher's device tree among them) are warm.
    time(&mut vm_command(root, image))?;
    time(&mut bare_qemu_command(files.path(), image))?;
    let (mut launcher, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..WALL_TIME_RUNS {
        launcher.push(time(&mut vm_command(root, image))?);
        bare.push(time(&mut bare_qemu_command(files.path(), image))?);
    }
    Ok((median(launcher), median(bare)))
}

/// Wall time of `PARALLEL_VMS` `vm run`s started together.
fn parallel_wall_time(root: &Path, image: &Path) -> Result<Duration> {
    let start = Instant::now();
    let children = (0..PARALLEL_VMS)
        .map(|_| vm_command(root, image).stdout(Stdio::null()).spawn())
        .collect::<std::io::Result<Vec<_>>>()?;
    for mut child in children {
        if !child.wait()?.success() {
            bail!("a parallel VM failed");
        }
    }
    Ok(start.elapsed())
}

fn main() -> Result<()> {
    let root = repository_root().canonicalize()?;
    let costs = GUESTS
        .iter()
        .map(|guest| boot_cost(&root, guest, false))
        .collect::<Result<Vec<_>>>()?;
    let hello = &GUESTS[1];
    let protected_hello = boot_cost(&root, hello, true)?;
    let double_boot = double_boot_path()?;

    let faults_image = root.join("out/vmbase_faults.bin");
    let (console_lines, _) = boot_counted(&faults_image, Some("fault=console-cost"), false)?;
    let console_bytes = number_after(&console_lines, "console cost: ").context("console cost")?;
    let println_instructions =
        number_after(&console_lines, "println ").context("println cost")? * INSTRUCTIONS_PER_TICK;
    let raw_instructions =
        number_after(&console_lines, "raw stores ").context("raw cost")? * INSTRUCTIONS_PER_TICK;

    let disk = disk_bench(&root, false)?;
    let protected_disk = disk_bench(&root, true)?;
    let firmware_costs = firmware_boot_costs(&root)?;
    let peer_costs = peer_boot_costs(&root)?;
    let linux_times = linux_wall_times(&root)?;

    let hello_image = root.join("out/vmbase_hello.bin");
    let (launcher, bare) = launcher_overhead(&root, &hello_image)?;
    let parallel = parallel_wall_time(&root, &hello_image)?;

    let qemu_version = Command::new("qemu-system-aarch64")
        .arg("--version")
        .output()?;
    let qemu_version = String::from_utf8_lossy(&qemu_version.stdout);
    let qemu_version = qemu_version.lines().next().unwrap_or("QEMU");
    println!("vmbase benchmarks: {qemu_version}, TCG, -icount shift=0 (1 instruction = 1 ns)");
    println!();
    print!("{:<36}", "guest instructions");
    for guest in &GUESTS {
        print!("{:>16}", guest.label);
    }
    println!();
    let row = |label: &str, values: &mut dyn Iterator<Item = String>| {
        print!("  {label:<34}");
        for value in values {
            print!("{value:>16}");
        }
        println!();
    };
    row(".bss bytes", &mut costs.iter().map(|c| c.bss.to_string()));
    row(".data bytes", &mut costs.iter().map(|c| c.data.to_string()));
    row(
        "floor (see below)",
        &mut costs.iter().map(|c| c.floor().to_string()),
    );
    row(
        "reset -> Rust entry (±16)",
        &mut costs
            .iter()
            .map(|c| c.rust_entry.map_or("-".to_owned(), |n| n.to_string())),
    );
    row(
        "reset -> main (±16)",
        &mut costs.iter().map(|c| c.main.to_string()),
    );
    row(
        "reset -> SYSTEM_OFF (exact)",
        &mut costs.iter().map(|c| c.system_off.to_string()),
    );
    row(
        "Rust entry / floor",
        &mut costs.iter().map(|c| {
            c.rust_entry.map_or("-".to_owned(), |n| {
                format!("{:.2}x", n as f64 / c.floor() as f64)
            })
        }),
    );
    row(
        "main / floor",
        &mut costs
            .iter()
            .map(|c| format!("{:.2}x", c.main as f64 / c.floor() as f64)),
    );
    row(
        ".bin bytes",
        &mut costs.iter().map(|c| c.image_bytes.to_string()),
    );
    println!(
        "  floor = {BOOT_STUB_INSTRUCTIONS} (boot stub) + .bss/32 (one 32-byte store each) + \
         2 x .data/32 (a 32-byte load and store each)"
    );
    println!();
    println!(
        "console, {console_bytes} bytes: println! {println_instructions} instructions ({:.1}/byte), \
         raw stores to the PL011 {raw_instructions} ({:.1}/byte)",
        println_instructions as f64 / console_bytes as f64,
        raw_instructions as f64 / console_bytes as f64
    );
    println!();
    println!(
        "virtio-blk, 16 MiB read (median of {DISK_WALL_RUNS} wall runs) next to a guest memcpy of \
         16 MiB:"
    );
    let megabytes = DISK_BYTES as f64 / 1e6;
    for (index, label) in ["memcpy", "read, 4 KiB requests", "read, 1 MiB requests"]
        .iter()
        .enumerate()
    {
        let instructions = disk.instructions[index];
        println!(
            "  {label:<24}{instructions:>12} instructions ({:.2}/KiB, {:.2}x memcpy){:>10.0} MB/s",
            instructions as f64 / (DISK_BYTES / 1024) as f64,
            instructions as f64 / disk.instructions[0] as f64,
            megabytes / disk.wall[index].as_secs_f64()
        );
    }
    println!();
    let hello_cost = &costs[1];
    let read_1m = 2;
    println!(
        "protected (vm run --protected, under the pKVM double): {} reset -> main {} instructions \
         against {} unprotected ({:.2}x); the double's own boot path {double_boot} instructions \
         (reset to a guest that powers off, and passing on its SYSTEM_OFF); virtio-blk 1 MiB \
         requests {} instructions against {} ({:.2}x), {:.0} MB/s against {:.0}",
        hello.label,
        protected_hello.main,
        hello_cost.main,
        protected_hello.main as f64 / hello_cost.main as f64,
        protected_disk.instructions[read_1m],
        disk.instructions[read_1m],
        protected_disk.instructions[read_1m] as f64 / disk.instructions[read_1m] as f64,
        megabytes / protected_disk.wall[read_1m].as_secs_f64(),
        megabytes / disk.wall[read_1m].as_secs_f64(),
    );
    println!();
    println!(
        "vmbase_linuxboot, reset -> the kernel's first instruction (exact): {} instructions \
         with a {}-byte stand-in kernel, {} with a {} MiB one ({} more instructions to its \
         SYSTEM_OFF not included)",
        firmware_costs[0] - STAND_IN_KERNEL_INSTRUCTIONS,
        STAND_IN_KERNEL_SIZES[0],
        firmware_costs[1] - STAND_IN_KERNEL_INSTRUCTIONS,
        STAND_IN_KERNEL_SIZES[1] >> 20,
        STAND_IN_KERNEL_INSTRUCTIONS
    );
    println!();
    println!(
        "reset -> the kernel's first instruction (exact), one stand-in kernel that is both an \
         arm64 Image and an EFI application:"
    );
    for cost in &peer_costs {
        println!(
            "  {:<18}{:>14} instructions  {:>8.1}x  {}",
            cost.name,
            cost.instructions,
            cost.instructions as f64 / peer_costs[0].instructions as f64,
            cost.version
        );
    }
    println!(
        "Debian's kernel to init's poweroff, median of {LINUX_WALL_TIME_RUNS} alternating runs \
         (relative to direct boot):"
    );
    for (label, duration) in LINUX_BOOTS.iter().zip(&linux_times) {
        println!(
            "  {label:<18}{:>8.0} ms  {:.3}x",
            milliseconds(*duration),
            duration.as_secs_f64() / linux_times[0].as_secs_f64()
        );
    }
    println!();
    println!(
        "host wall time, vmbase hello, median of {WALL_TIME_RUNS} alternating runs: vm run {:.1} ms, \
         bare QEMU {:.1} ms, ratio {:.2}",
        milliseconds(launcher),
        milliseconds(bare),
        launcher.as_secs_f64() / bare.as_secs_f64()
    );
    println!(
        "{PARALLEL_VMS} VMs at once: {:.1} ms against {:.1} ms for one, ratio {:.2} ({} host cores)",
        milliseconds(parallel),
        milliseconds(launcher),
        parallel.as_secs_f64() / launcher.as_secs_f64(),
        thread::available_parallelism().map_or(0, |n| n.get())
    );

    let guests: Vec<Value> = GUESTS
        .iter()
        .zip(&costs)
        .map(|(guest, cost)| {
            json!({
                "name": guest.name,
                "bss_bytes": cost.bss,
                "data_bytes": cost.data,
                "image_bytes": cost.image_bytes,
                "floor_instructions": cost.floor(),
                "rust_entry_instructions": cost.rust_entry,
                "main_instructions": cost.main,
                "system_off_instructions": cost.system_off,
            })
        })
        .collect();
    let report = json!({
        "qemu": qemu_version,
        "guests": guests,
        "virtio_blk": {
            "bytes": DISK_BYTES,
            "memcpy_instructions": disk.instructions[0],
            "read_4k_instructions": disk.instructions[1],
            "read_1m_instructions": disk.instructions[2],
            "memcpy_mb_per_s": megabytes / disk.wall[0].as_secs_f64(),
            "read_4k_mb_per_s": megabytes / disk.wall[1].as_secs_f64(),
            "read_1m_mb_per_s": megabytes / disk.wall[2].as_secs_f64(),
        },
        "console": {
            "bytes": console_bytes,
            "println_instructions": println_instructions,
            "raw_store_instructions": raw_instructions,
        },
        "linuxboot": {
            "reset_to_kernel_instructions": STAND_IN_KERNEL_SIZES
                .iter()
                .zip(&firmware_costs)
                .map(|(size, cost)| json!({ "kernel_bytes": size, "instructions": cost - STAND_IN_KERNEL_INSTRUCTIONS }))
                .collect::<Vec<_>>(),
        },
        "firmware_peers": {
            "reset_to_kernel_instructions": peer_costs
                .iter()
                .map(|cost| json!({ "firmware": cost.name, "version": cost.version, "instructions": cost.instructions }))
                .collect::<Vec<_>>(),
            "linux_to_poweroff_ms": {
                "runs": LINUX_WALL_TIME_RUNS,
                "median": LINUX_BOOTS
                    .iter()
                    .zip(&linux_times)
                    .map(|(label, duration)| (label.to_string(), json!(milliseconds(*duration))))
                    .collect::<serde_json::Map<_, _>>(),
            },
        },
        "protected": {
            "hello_main_instructions": protected_hello.main,
            "hello_main_instructions_unprotected": hello_cost.main,
            "hello_system_off_instructions": protected_hello.system_off,
            "double_boot_path_instructions": double_boot,
            "virtio_blk_read_1m_instructions": protected_disk.instructions[read_1m],
            "virtio_blk_read_1m_instructions_unprotected": disk.instructions[read_1m],
            "virtio_blk_read_1m_mb_per_s": megabytes / protected_disk.wall[read_1m].as_secs_f64(),
            "virtio_blk_read_1m_mb_per_s_unprotected": megabytes / disk.wall[read_1m].as_secs_f64(),
        },
        "wall_time_ms": {
            "vm_run_median": milliseconds(launcher),
            "bare_qemu_median": milliseconds(bare),
            "parallel": { "vms": PARALLEL_VMS, "all": milliseconds(parallel), "one": milliseconds(launcher) },
        },
    });
    let output = root.join("out/bench.json");
    fs::write(&output, serde_json::to_string_pretty(&report)? + "\n")?;
    println!();
    println!("figures written to {}", output.display());
    Ok(())
}
