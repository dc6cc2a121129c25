// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! `vm`: boots a vmbase guest under QEMU, like Android's `vm run`.

#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use rustix::fs::OFlags;
use rustix::io::Errno;
use signal_hook::consts::{SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use vmclient::{DeathReason, Error, VirtualMachineRawConfig, VmInstance};

/// Writes a line to stderr. A closed or full stderr must not turn a message into a panic (as
/// `eprintln!` would): the exit code still tells what happened.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// How often to look for a signal while the VM runs, or while waiting for a FIFO's reader.
const SIGNAL_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Signals that end the VM as `Killed`, at any moment; `vm` then exits with 128 + the signal
/// number. (Whatever else kills `vm`, even SIGKILL, the kernel kills QEMU with it.)
const TERMINATING_SIGNALS: [i32; 7] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM];

#[derive(Parser)]
#[command(
    name = "vm",
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
  128+N  Killed               vm got signal N (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
                              SIGUSR2 or SIGALRM), at any moment, also before the VM ran
  1      StartFailed          bad flags, config or image, QEMU missing (nothing is left
                              running, no output file touched)
  2      InfrastructureError  or Unknown: anything else, also the console or log could not
                              be written (after `VM ended: <reason>`, the error on stderr)

With --icount, a guest that powered off or reset also gets a line `instructions: N`: the exact
number of guest instructions executed from reset until then, whatever SHIFT (QEMU's count)."
)]
struct RunArgs {
    /// VM config in AOSP's JSON format (`bootloader` or `kernel` and `initrd`, `params`,
    /// `disks`, `protected`, `memory_mib`, `cpu_topology` or `num_cpus`, `platform_version`,
    /// `name`, and this project's `firmware`); relative paths are taken from its directory.
    /// Flags override it.
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

    /// Guest RAM in MiB [default: the config's, else 256]. At least what the image needs (2 MiB
    /// of device tree, the image, and up to the end of a vmbase image's boot stack), or what
    /// kernel, initrd and device tree need (a refusal says how much); at most 16384 and the
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

    /// Write the guest's console to this file instead of stdout. It is emptied only once the
    /// VM starts, and must not be one of the VM's input files; a FIFO is waited on until a
    /// reader opens it.
    #[arg(long, value_name = "PATH")]
    console: Option<PathBuf>,

    /// Write QEMU's own messages to this file instead of stdout (same rules as --console).
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

    /// Leave out the virtio-rng device every VM otherwise gets (crosvm's flag).
    #[arg(long)]
    no_rng: bool,

    /// Run the VM protected, as under pKVM: QEMU has no pKVM, so vmbase's pKVM double runs at
    /// EL2 below the guest, answers pKVM's hypercalls and enforces the MMIO guard and memory
    /// sharing (docs/protected.md). Same memory map, registers and exit codes; one CPU, at most
    /// 2048 MiB, no --dtb. Needs out/pkvm_double.bin (`make guests`).
    #[arg(long)]
    protected: bool,

    /// Give the guest's virtio console (a virtio-serial device with one virtconsole port) this
    /// file's bytes as its input (AOSP's flag; a FIFO is opened when QEMU starts).
    #[arg(long, value_name = "PATH")]
    console_in: Option<PathBuf>,

    /// Write the guest's virtio console output to this file (created or emptied when QEMU
    /// starts); adds the virtio console like --console-in. The UART stays on --console.
    #[arg(long, value_name = "PATH")]
    virtio_console: Option<PathBuf>,
}

fn main() -> ExitCode {
    // A bug must not reach the user as a backtrace and an abort: say what happened and exit
    // with InfrastructureError. QEMU dies with this process; its temporary directory is
    // reclaimed by the next run.
    std::panic::set_hook(Box::new(|info| {
        say!("vm: internal error (please report it): {info}");
        std::process::exit(DeathReason::InfrastructureError.exit_code().into());
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // A closed stderr or stdout must not turn the refusal into a panic.
            let _ = error.print();
            // --help and --version succeed; a bad flag is a refusal to start, like a bad config.
            let code = if error.use_stderr() {
                DeathReason::StartFailed.exit_code()
            } else {
                0
            };
            return ExitCode::from(code);
        }
    };
    let Commands::Run(args) = cli.command;
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(error) => return refused(&error),
    };
    let outcome = match run(&args, &signals) {
        Ok(outcome) => outcome,
        Err(Error::Interrupted) => Outcome {
            reason: DeathReason::Killed,
            exit_code: signals
                .exit_code()
                .unwrap_or(DeathReason::Killed.exit_code()),
            instructions: None,
            output_error: None,
        },
        Err(error) => return refused(&error),
    };
    // The verdict is in the exit code too: a closed stdout must not turn it into a panic.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "VM ended: {}", outcome.reason);
    if let Some(instructions) = outcome.instructions {
        let _ = writeln!(stdout, "instructions: {instructions}");
    }
    if let Some(error) = outcome.output_error {
        say!("vm: error: {error}");
        return ExitCode::from(DeathReason::InfrastructureError.exit_code());
    }
    ExitCode::from(outcome.exit_code)
}

/// Reports why the VM could not start; returns StartFailed's exit code.
fn refused(error: &Error) -> ExitCode {
    say!("vm: error: {error}");
    ExitCode::from(DeathReason::StartFailed.exit_code())
}

/// The terminating signals, watched from before anything is checked until `vm` exits.
struct Signals {
    /// Raised by any of them: every wait for QEMU or for a FIFO reader stops.
    interrupt: Arc<AtomicBool>,
    /// The number of the last one received, or 0.
    number: Arc<AtomicUsize>,
}

impl Signals {
    fn install() -> Result<Self, Error> {
        let signals = Self {
            interrupt: Arc::default(),
            number: Arc::default(),
        };
        for number in TERMINATING_SIGNALS {
            signal_hook::flag::register(number, Arc::clone(&signals.interrupt))
                .and_then(|_| {
                    signal_hook::flag::register_usize(
                        number,
                        Arc::clone(&signals.number),
                        number as usize,
                    )
                })
                .map_err(|source| Error::Io {
                    action: "install a signal handler",
                    source,
                })?;
        }
        Ok(signals)
    }

    /// 128 + the signal's number, once one came.
    fn exit_code(&self) -> Option<u8> {
        match self.number.load(Ordering::Relaxed) {
            0 => None,
            // The signal number is one of TERMINATING_SIGNALS, all below 128.
            number => Some(128 + u8::try_from(number).unwrap_or(0)),
        }
    }
}

/// How the VM ended and what `vm` exits with.
struct Outcome {
    reason: DeathReason,
    exit_code: u8,
    /// Guest instructions executed, when counted (`--icount`) and the guest ended the VM.
    instructions: Option<u64>,
    /// Why the console or log could not be written, if that happened.
    output_error: Option<String>,
}

fn run(args: &RunArgs, signals: &Signals) -> Result<Outcome, Error> {
    let config = vm_config(args)?;
    // Everything is checked before any output file is touched.
    let plan = config.check()?;
    let mut inputs = config.input_files();
    if let Some(path) = &args.config {
        inputs.push(("VM config", path));
    }
    let mut outputs = Outputs::open(args, &inputs, &signals.interrupt)?;
    let (console, log) = outputs.handles()?;
    let created = VmInstance::create_from_plan(
        &plan,
        Some(console),
        Some(log),
        Arc::clone(&signals.interrupt),
    );
    let mut vm = match created {
        Ok(vm) => vm,
        Err(error) => {
            outputs.remove_created();
            return Err(error);
        }
    };
    outputs.empty()?;
    vm.start()?;
    if let Some(port) = config.gdb_port {
        say!("vm: waiting for a debugger on 127.0.0.1:{port} (target remote :{port})");
    }
    // Said once the VM runs, so that a refusal is the only message of a refused run.
    for warning in plan.warnings() {
        say!("vm: warning: {warning}");
    }

    let deadline = args
        .timeout
        .and_then(|timeout| Instant::now().checked_add(timeout));
    let reason = loop {
        if let Some(reason) = vm.wait_for_death_with_timeout(SIGNAL_POLL_INTERVAL) {
            break reason;
        }
        let timed_out = deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if timed_out || signals.interrupt.load(Ordering::Relaxed) {
            break vm.kill();
        }
    };
    // A terminal's Ctrl-C also reaches QEMU, which may end the VM before `vm` notices the
    // signal: the signal decides the exit code either way.
    Ok(Outcome {
        reason,
        exit_code: signals.exit_code().unwrap_or(reason.exit_code()),
        instructions: vm.instructions_executed(),
        output_error: vm.output_error().map(ToString::to_string),
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
    if args.no_rng {
        config.rng = false;
    }
    if args.protected {
        config.protected_vm = true;
    }
    if let Some(console_in) = &args.console_in {
        config.console_in = Some(console_in.clone());
    }
    if let Some(virtio_console) = &args.virtio_console {
        config.virtio_console = Some(virtio_console.clone());
    }
    Ok(config)
}

/// The console and log files (or stdout), opened but not yet emptied.
struct Outputs {
    console: Output,
    /// `None` when the log is the console's file.
    log: Option<Output>,
}

/// One output: a file named on the command line, or stdout.
struct Output {
    file: File,
    /// The path, when `vm` created the file (removed again if the VM is refused).
    created: Option<PathBuf>,
    /// Whether to empty it when the VM starts: a regular file that was there before.
    empty: bool,
}

impl Outputs {
    /// Opens `--console` and `--log` (the same file once if they name one file), after
    /// checking that neither is one of `inputs`.
    fn open(
        args: &RunArgs,
        inputs: &[(&'static str, &Path)],
        interrupt: &AtomicBool,
    ) -> Result<Self, Error> {
        let named = [("console", &args.console), ("log", &args.log)];
        for (role, path) in named {
            match path {
                Some(path) => refuse_input(role, path, inputs)?,
                None => refuse_stdout_input(role, inputs)?,
            }
        }
        let console = Output::open("console", args.console.as_deref(), interrupt)?;
        let same_file = match (&args.console, &args.log) {
            (Some(console_path), Some(log_path)) => {
                console_path == log_path || same_file(&console.file, log_path)
            }
            _ => false,
        };
        let log = if same_file {
            None
        } else {
            match Output::open("log", args.log.as_deref(), interrupt) {
                Ok(log) => Some(log),
                Err(error) => {
                    console.remove_created();
                    return Err(error);
                }
            }
        };
        Ok(Self { console, log })
    }

    /// Handles for the VM: the console's and the log's.
    fn handles(&self) -> Result<(File, File), Error> {
        let clone = |output: &Output| {
            output.file.try_clone().map_err(|source| Error::Io {
                action: "share an output file",
                source,
            })
        };
        let console = clone(&self.console)?;
        let log = clone(self.log.as_ref().unwrap_or(&self.console))?;
        Ok((console, log))
    }

    /// Empties the files that were there before, now that the VM is about to start.
    fn empty(&mut self) -> Result<(), Error> {
        for output in std::iter::once(&self.console).chain(&self.log) {
            if output.empty {
                output.file.set_len(0).map_err(|source| Error::Io {
                    action: "empty an output file",
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Removes the files `vm` created, for a VM that was refused.
    fn remove_created(&self) {
        self.console.remove_created();
        if let Some(log) = &self.log {
            log.remove_created();
        }
    }
}

impl Output {
    /// Opens `path` for writing without emptying it yet, or stdout without a path. A FIFO
    /// without a reader is waited on, until `interrupt` is raised.
    fn open(
        role: &'static str,
        path: Option<&Path>,
        interrupt: &AtomicBool,
    ) -> Result<Self, Error> {
        let Some(path) = path else {
            let file = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map(File::from)
                .map_err(|source| Error::Io {
                    action: "share stdout",
                    source,
                })?;
            return Ok(Self {
                file,
                created: None,
                empty: false,
            });
        };
        let unwritable = |source| Error::OutputUnwritable {
            role,
            path: path.to_owned(),
            source,
        };
        let existed = fs::metadata(path).is_ok();
        let mut waiting = false;
        let file = loop {
            // Non-blocking, so that opening a FIFO nobody reads fails at once instead of
            // blocking where no signal can stop it.
            let opened = OpenOptions::new()
                .write(true)
                .create(true)
                .custom_flags(OFlags::NONBLOCK.bits() as i32)
                .open(path);
            match opened {
                Ok(file) => break file,
                Err(error) if error.raw_os_error() == Some(Errno::NXIO.raw_os_error()) => {
                    if !waiting {
                        say!(
                            "vm: waiting for a reader to open the {role} FIFO {}",
                            path.display()
                        );
                        waiting = true;
                    }
                    if interrupt.load(Ordering::Relaxed) {
                        return Err(Error::Interrupted);
                    }
                    std::thread::sleep(SIGNAL_POLL_INTERVAL);
                }
                Err(error) => return Err(unwritable(error)),
            }
        };
        let flags = rustix::fs::fcntl_getfl(&file).map_err(|errno| unwritable(errno.into()))?;
        rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)
            .map_err(|errno| unwritable(errno.into()))?;
        let is_file = file.metadata().map_err(unwritable)?.is_file();
        Ok(Self {
            file,
            created: (!existed).then(|| path.to_owned()),
            empty: existed && is_file,
        })
    }

    fn remove_created(&self) {
        if let Some(path) = &self.created {
            let _ = fs::remove_file(path);
        }
    }
}

/// Refuses an output `path` that is one of `inputs`: the same file (device and inode), or
/// the same path when it does not exist yet.
fn refuse_input(
    role: &'static str,
    path: &Path,
    inputs: &[(&'static str, &Path)],
) -> Result<(), Error> {
    let output = fs::metadata(path).ok();
    let absolute = std::path::absolute(path).ok();
    for &(input_role, input) in inputs {
        let same = match (&output, fs::metadata(input)) {
            (Some(output), Ok(input)) => (output.dev(), output.ino()) == (input.dev(), input.ino()),
            _ => absolute.is_some() && absolute == std::path::absolute(input).ok(),
        };
        if same {
            return Err(Error::OutputIsInput {
                output_role: role,
                output: path.to_owned(),
                input_role,
                input: input.to_owned(),
            });
        }
    }
    Ok(())
}

/// Refuses stdout as the `role` output when it is one of `inputs` (`vm run … >> IMAGE`).
fn refuse_stdout_input(role: &'static str, inputs: &[(&'static str, &Path)]) -> Result<(), Error> {
    // Without a file behind it (a closed stdout), it is no input either.
    let Ok(stdout) = rustix::fs::fstat(std::io::stdout()) else {
        return Ok(());
    };
    for &(input_role, input) in inputs {
        let is_stdout = fs::metadata(input)
            .is_ok_and(|input| (input.dev(), input.ino()) == (stdout.st_dev, stdout.st_ino));
        if is_stdout {
            return Err(Error::OutputIsInput {
                output_role: role,
                output: PathBuf::from("(standard output)"),
                input_role,
                input: input.to_owned(),
            });
        }
    }
    Ok(())
}

/// Whether `path` is the file `file` has open.
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => (open.dev(), open.ino()) == (named.dev(), named.ino()),
        _ => false,
    }
}

/// Seconds, more than 0; more than a `Duration` holds (even `inf`) means no timeout at all.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|error| format!("{error}"))?;
    // Also refuses NaN.
    if seconds.is_nan() || seconds <= 0.0 {
        return Err("must be more than 0".to_owned());
    }
    Ok(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}
