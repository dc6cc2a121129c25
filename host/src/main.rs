// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! `vm`: boots a vmbase guest under QEMU, like Android's `vm run`.

#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use vmclient::{DeathReason, Error, VirtualMachineRawConfig, VmInstance};

/// How often to look for a signal while the VM runs.
const SIGNAL_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Signals that end the VM as `Killed`; `vm` then exits with 128 + the signal number.
const TERMINATING_SIGNALS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

#[derive(Parser)]
#[command(
    version,
    about = "Runs vmbase guests under QEMU with crosvm's aarch64 memory map"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    Run(RunArgs),
}

/// Boots a VM and waits until it ends.
///
/// The guest sees crosvm's aarch64 platform: RAM from 0x8000_0000, PSCI over hvc, and QEMU's
/// PL011 at 0x0900_0000 as its console. A bootloader image is loaded and entered at 0x8020_0000
/// with x0 = its device tree, at the start of RAM. A kernel (arm64 Image) is loaded at
/// 0x8000_0000 + its text_offset and entered there, its initrd at the next 16 MiB boundary, its
/// device tree 2 MiB + 64 KiB below the end of RAM; with --firmware, the firmware is loaded at
/// 0x7fc0_0000 and entered first, with x0 = device tree, x1 = kernel entry, x2 = kernel size.
#[derive(Args)]
#[command(
    group = clap::ArgGroup::new("image").required(true).args(["config", "bootloader", "kernel"]),
    after_help = "\
Prints `VM ended: <reason>` and exits with:
  0      Shutdown             the guest called PSCI SYSTEM_OFF
  32     Reboot               the guest called PSCI SYSTEM_RESET (vmbase: panic or failure)
  33     Crash                QEMU or the guest crashed
  137    Killed               --timeout expired (128 + SIGKILL, which QEMU gets)
  128+N  Killed               vm got signal N (SIGINT, SIGTERM or SIGHUP)
  1      StartFailed          bad config or image, QEMU missing (nothing is left running)
  2      InfrastructureError  or Unknown: anything else

With --icount, a guest that powered off or reset also gets a line `instructions: N`: the exact
number of guest instructions executed from reset until then, whatever SHIFT (QEMU's count)."
)]
struct RunArgs {
    /// VM config in AOSP's JSON format (`bootloader` or `kernel` and `initrd`, `params`,
    /// `disks`, `protected`, `memory_mib`, `cpu_topology`, `platform_version`, `name`, and this
    /// project's `firmware`); relative paths are taken from its directory. Flags override it.
    #[arg(value_name = "CONFIG.json")]
    config: Option<PathBuf>,

    /// Raw aarch64 image to boot, instead of a config file.
    #[arg(long, value_name = "PATH")]
    bootloader: Option<PathBuf>,

    /// Linux kernel (uncompressed arm64 Image) to boot, instead of a config file or bootloader.
    /// Its command line starts with panic=-1, as under crosvm.
    #[arg(long, value_name = "IMAGE")]
    kernel: Option<PathBuf>,

    /// Initrd (e.g. a cpio archive) for --kernel.
    #[arg(long, value_name = "FILE", requires = "kernel")]
    initrd: Option<PathBuf>,

    /// VM firmware that boots --kernel, as crosvm's --unprotected-vm-with-firmware: loaded in
    /// the 4 MiB region at 0x7fc0_0000 and entered at its first byte with x0 = device tree,
    /// x1 = kernel entry point, x2 = kernel size in bytes, x3 = 0.
    #[arg(long, value_name = "FW.bin", requires = "kernel")]
    firmware: Option<PathBuf>,

    /// Guest RAM in MiB [default: the config's, else 256]. At least 3 (2 MiB of device tree
    /// plus the image) or what kernel, initrd and device tree need, at most 16384 and the
    /// host's physical memory.
    #[arg(long, value_name = "MIB")]
    mem: Option<u32>,

    /// Number of virtual CPUs [default: the config's, else 1].
    #[arg(long, value_name = "N")]
    cpus: Option<u32>,

    /// Guest command line, given as /chosen/bootargs in its device tree (after panic=-1 for a
    /// kernel).
    #[arg(long, value_name = "STRING")]
    params: Option<String>,

    /// Name of the VM, shown in the host's process list.
    #[arg(long)]
    name: Option<String>,

    /// Write the guest's console to this file instead of stdout.
    #[arg(long, value_name = "PATH")]
    console: Option<PathBuf>,

    /// Write QEMU's own messages to this file instead of stdout.
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,

    /// Start paused with QEMU's gdb stub on 127.0.0.1:PORT; the guest runs once the debugger
    /// continues it (`target remote :PORT`, then `continue`).
    #[arg(long, value_name = "PORT")]
    gdb: Option<u16>,

    /// Kill the VM if it has not ended after this many seconds (fractions allowed).
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    timeout: Option<Duration>,

    /// Count instructions for deterministic timing: each takes 2^SHIFT ns of virtual time
    /// (QEMU -icount shift=SHIFT; 0 to 10). Also prints `instructions: N` at the end.
    #[arg(long, value_name = "SHIFT")]
    icount: Option<u32>,

    /// Give the guest this device tree, as it is, instead of QEMU's own (rewritten with the
    /// memory size and params): to try a guest on another platform's tree or a corrupt one.
    /// Loaded where the boot puts the device tree (for a kernel: no initrd or params added).
    #[arg(long, value_name = "PATH")]
    dtb: Option<PathBuf>,
}

fn main() -> ExitCode {
    let Commands::Run(args) = Cli::parse().command;
    match run(&args) {
        Ok(outcome) => {
            // The verdict is in the exit code too: a closed stdout must not turn it into a panic.
            let mut stdout = std::io::stdout();
            let _ = writeln!(stdout, "VM ended: {}", outcome.reason);
            if let Some(instructions) = outcome.instructions {
                let _ = writeln!(stdout, "instructions: {instructions}");
            }
            ExitCode::from(outcome.exit_code)
        }
        Err(error) => {
            eprintln!("vm: error: {error}");
            ExitCode::from(DeathReason::StartFailed.exit_code())
        }
    }
}

/// How the VM ended and what `vm` exits with.
struct Outcome {
    reason: DeathReason,
    exit_code: u8,
    /// Guest instructions executed, when counted (`--icount`) and the guest ended the VM.
    instructions: Option<u64>,
}

fn run(args: &RunArgs) -> Result<Outcome, Error> {
    let signal = Arc::new(AtomicUsize::new(0));
    for number in TERMINATING_SIGNALS {
        signal_hook::flag::register_usize(number, Arc::clone(&signal), number as usize).map_err(
            |source| Error::Io {
                action: "install a signal handler",
                source,
            },
        )?;
    }

    let config = vm_config(args)?;
    let console = open_output(args.console.as_deref(), "create the console file")?;
    let log = open_output(args.log.as_deref(), "create the log file")?;
    let mut vm = VmInstance::create(&config, Some(console), Some(log))?;
    vm.start()?;

    let deadline = args.timeout.map(|timeout| Instant::now() + timeout);
    let reason = loop {
        if let Some(reason) = vm.wait_for_death_with_timeout(SIGNAL_POLL_INTERVAL) {
            break reason;
        }
        let timed_out = deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if timed_out || signal.load(Ordering::Relaxed) != 0 {
            break vm.kill();
        }
    };
    // A terminal's Ctrl-C also reaches QEMU, which may end the VM before `vm` notices the
    // signal: the signal decides the exit code either way.
    let exit_code = match signal.load(Ordering::Relaxed) {
        0 => reason.exit_code(),
        // The signal number is one of TERMINATING_SIGNALS, all below 128.
        number => 128 + u8::try_from(number).unwrap_or(0),
    };
    Ok(Outcome {
        reason,
        exit_code,
        instructions: vm.instructions_executed(),
    })
}

/// The config file or `--bootloader`, with the flags applied.
fn vm_config(args: &RunArgs) -> Result<VirtualMachineRawConfig, Error> {
    let mut config = match &args.config {
        Some(path) => VirtualMachineRawConfig::from_json_file(path)?,
        None => VirtualMachineRawConfig {
            bootloader: args.bootloader.clone(),
            kernel: args.kernel.clone(),
            initrd: args.initrd.clone(),
            firmware: args.firmware.clone(),
            ..Default::default()
        },
    };
    if let Some(mem) = args.mem {
        config.memory_mib = mem;
    }
    if let Some(cpus) = args.cpus {
        config.num_cpus = cpus;
    }
    if let Some(params) = &args.params {
        config.params = Some(params.clone());
    }
    if let Some(name) = &args.name {
        config.name = name.clone();
    }
    config.gdb_port = args.gdb;
    config.icount_shift = args.icount;
    if let Some(device_tree) = &args.dtb {
        config.device_tree = Some(device_tree.clone());
    }
    Ok(config)
}

/// The file at `path`, created or truncated, or a handle on stdout.
fn open_output(path: Option<&Path>, action: &'static str) -> Result<File, Error> {
    match path {
        Some(path) => File::create(path),
        None => std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(File::from),
    }
    .map_err(|source| Error::Io { action, source })
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|error| format!("{error}"))?;
    if seconds <= 0.0 {
        return Err("must be more than 0".to_owned());
    }
    Duration::try_from_secs_f64(seconds).map_err(|error| error.to_string())
}
