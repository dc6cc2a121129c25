// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! `vm`: boots a vmbase guest under QEMU, like Android's `vm run`.

#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use rustix::fs::OFlags;
use signal_hook::consts::{SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use vmclient::{
    Accelerator, DeathReason, DiskImage, Error, OutputFile, VirtualMachineRawConfig, VmInstance,
    VmOutputs,
};

/// Writes a line to stderr. A closed or full stderr must not turn a message into a panic (as
/// `eprintln!` would): the exit code still tells what happened.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// How often to look for a signal or the timeout while the VM runs.
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
  2      InfrastructureError  or Unknown: anything else, also an output (console, log,
                              virtio console, stdout) could not be written (after
                              `VM ended: <reason>`, the error on stderr)

Whatever comes first decides: a VM that ended by itself keeps its reason and exit code
if a signal or the timeout comes while its output is still being written (which then
stops: exit 2 if output was lost); a VM ended by a signal or the timeout is Killed.
--timeout counts from the start of vm and covers every wait: QEMU, a FIFO's reader,
an output's reader.

With --icount, a guest that powered off or reset also gets a line `instructions: N`: the exact
number of guest instructions executed from reset until then, whatever SHIFT (QEMU's count)."
)]
struct RunArgs {
    /// VM config in AOSP's JSON format (`bootloader` or `kernel` and `initrd`, `params`,
    /// `disks`, `protected`, `memory_mib`, `cpu_topology` or `num_cpus`, `platform_version`,
    /// `name`, and this project's `firmware` and `accel`); relative paths are taken from its
    /// directory. Flags override it.
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

    /// Name of the VM, shown in the host's process list (QEMU's -name guest=NAME), taken
    /// literally.
    #[arg(long)]
    name: Option<String>,

    /// Attach this raw disk image as a virtio-blk PCI device, after the config's disks;
    /// read-only unless followed by `,writable`. Repeat for more disks.
    #[arg(long, value_name = "PATH[,writable]", value_parser = parse_disk)]
    disk: Vec<DiskImage>,

    /// Write the guest's console to this file instead of stdout. It is opened (created,
    /// emptied) only once QEMU has started, and must not be one of the VM's input files; a
    /// FIFO is waited on until a reader opens it. Outputs that are one file (also stdout, e.g.
    /// /dev/stdout) share one open file.
    #[arg(long, value_name = "PATH")]
    console: Option<PathBuf>,

    /// Write QEMU's own messages to this file instead of stdout (same rules as --console).
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,

    /// Start paused with QEMU's gdb stub on 127.0.0.1:PORT; the guest runs once the debugger
    /// continues it (`target remote :PORT`, then `continue`).
    #[arg(long, value_name = "PORT")]
    gdb: Option<u16>,

    /// Kill the VM if it has not ended this many seconds (fractions allowed) after vm started:
    /// every wait counts (QEMU starting, a FIFO's reader, an output's reader).
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    timeout: Option<Duration>,

    /// Count instructions for deterministic timing: each takes 2^SHIFT ns of virtual time
    /// (QEMU -icount shift=SHIFT; 0 to 10). Also prints `instructions: N` at the end.
    #[arg(long, value_name = "SHIFT")]
    icount: Option<u32>,

    /// The accelerator: kvm (the host's CPU, on an aarch64 host with a usable /dev/kvm; refused
    /// elsewhere, with the reason), tcg (QEMU emulates every instruction), or auto: KVM where
    /// usable and --icount is not given, else TCG [default: the config's `accel`, else auto].
    /// `vm` says on stderr which one it used.
    #[arg(long, value_name = "kvm|tcg|auto")]
    accel: Option<Accelerator>,

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
    /// file's bytes as its input (AOSP's flag; a regular file, FIFO or character device that
    /// QEMU can open read-write; a FIFO is opened when QEMU starts).
    #[arg(long, value_name = "PATH")]
    console_in: Option<PathBuf>,

    /// Write the guest's virtio console output to this file (same rules as --console); adds
    /// the virtio console like --console-in. The UART stays on --console.
    #[arg(long, value_name = "PATH")]
    virtio_console: Option<PathBuf>,
}

fn main() -> ExitCode {
    let stdout_closed = stdout_was_closed();
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
    if let Some(timeout) = args.timeout {
        signals.raise_after(timeout);
    }
    let outcome = match run(&args, &signals, stdout_closed) {
        Ok(outcome) => outcome,
        Err(Error::Interrupted) => Outcome {
            reason: DeathReason::Killed,
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
    // A VM ended by a signal or the timeout is Killed, whatever was lost meanwhile; a VM that
    // ended by itself but whose output was lost is not a success.
    if outcome.reason == DeathReason::Killed {
        if let Some(error) = outcome.output_error {
            say!("vm: error: {error}");
        }
        return ExitCode::from(signals.exit_code().unwrap_or(outcome.reason.exit_code()));
    }
    if let Some(error) = outcome.output_error {
        say!("vm: error: {error}");
        return ExitCode::from(DeathReason::InfrastructureError.exit_code());
    }
    ExitCode::from(outcome.reason.exit_code())
}

/// Reports why the VM could not start; returns StartFailed's exit code.
fn refused(error: &Error) -> ExitCode {
    say!("vm: error: {error}");
    ExitCode::from(DeathReason::StartFailed.exit_code())
}

/// Whether stdout was closed when `vm` was started (`vm run … >&-`). Rust's runtime opens
/// `/dev/null` read-write on a closed standard descriptor before `main`, so that no file takes
/// its number; a shell redirects stdout to `/dev/null` write-only.
fn stdout_was_closed() -> bool {
    let is_null = match (
        rustix::fs::fstat(std::io::stdout()),
        fs::metadata("/dev/null"),
    ) {
        (Ok(stdout), Ok(null)) => (stdout.st_dev, stdout.st_ino) == (null.dev(), null.ino()),
        _ => false,
    };
    is_null
        && rustix::fs::fcntl_getfl(std::io::stdout())
            .is_ok_and(|flags| flags & OFlags::ACCMODE == OFlags::RDWR)
}

/// The terminating signals, watched from before anything is checked until `vm` exits, and
/// the timeout, which raises the same flag.
struct Signals {
    /// Raised by any of them, or when the timeout expires: every wait stops.
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

    /// Raises the interrupt flag once `timeout` has passed (a `Duration` too large for that
    /// never expires).
    fn raise_after(&self, timeout: Duration) {
        if timeout == Duration::MAX {
            return;
        }
        let interrupt = Arc::clone(&self.interrupt);
        let spawned = std::thread::Builder::new()
            .name("vm-timeout".to_owned())
            .spawn(move || {
                std::thread::sleep(timeout);
                interrupt.store(true, Ordering::Relaxed);
            });
        if spawned.is_err() {
            // Without the timer the timeout could not be kept: end at once rather than never.
            self.interrupt.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a signal came or the timeout expired.
    fn raised(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
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

/// How the VM ended.
struct Outcome {
    reason: DeathReason,
    /// Guest instructions executed, when counted (`--icount`) and the guest ended the VM.
    instructions: Option<u64>,
    /// Why an output could not be written, if that happened.
    output_error: Option<String>,
}

fn run(args: &RunArgs, signals: &Signals, stdout_closed: bool) -> Result<Outcome, Error> {
    let (config, differences) = vm_config(args)?;
    // Everything is checked before QEMU starts, and no output is touched until it has.
    let plan = config.check()?;
    let mut inputs = config.input_files();
    if let Some(path) = &args.config {
        inputs.push(("VM config", path));
    }
    let outputs = Outputs::plan(args, &inputs, stdout_closed)?;
    let mut vm = VmInstance::create_from_plan(&plan, None, None, Arc::clone(&signals.interrupt))?;
    let mut opened = Vec::new();
    let started = vm.start_with_outputs(|| {
        let opened_outputs = outputs.open(&signals.interrupt, &mut opened)?;
        // Said before the guest runs, so that the line is not spliced into the guest's output,
        // and only once QEMU has started, so that a refusal stays the only message.
        say!("vm: accelerator: {}", plan.accelerator());
        Ok(opened_outputs)
    });
    if let Err(error) = started {
        for output in &opened {
            output.remove_if_created();
        }
        return Err(error);
    }
    if let Some(port) = config.gdb_port {
        say!("vm: waiting for a debugger on 127.0.0.1:{port} (target remote :{port})");
    }
    // Said once the VM runs, so that a refusal is the only message of a refused run.
    for warning in plan.warnings() {
        say!("vm: warning: {warning}");
    }
    for difference in &differences {
        say!("vm: warning: {difference}");
    }

    let reason = loop {
        if let Some(reason) = vm.wait_for_death_with_timeout(SIGNAL_POLL_INTERVAL) {
            break reason;
        }
        if signals.raised() {
            break vm.kill();
        }
    };
    let output_error = vm
        .output_error()
        .map(ToString::to_string)
        .or_else(|| outputs.closed_stdout_error());
    Ok(Outcome {
        reason,
        instructions: vm.instructions_executed(),
        output_error,
    })
}

/// The config file or `--bootloader`, with the flags applied, and where AOSP's `vm` would read
/// the config file differently.
fn vm_config(args: &RunArgs) -> Result<(VirtualMachineRawConfig, Vec<String>), Error> {
    let (mut config, differences) = match &args.config {
        Some(path) => VirtualMachineRawConfig::from_json_file_with_differences(path)?,
        None => (
            VirtualMachineRawConfig {
                bootloader: args.bootloader.clone(),
                kernel: args.kernel.clone(),
                initrd: args.initrd.clone(),
                firmware: args.firmware.clone(),
                ..Default::default()
            },
            Vec::new(),
        ),
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
    if let Some(accelerator) = args.accel {
        config.accelerator = accelerator;
    }
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
    config.disks.extend(args.disk.iter().cloned());
    Ok((config, differences))
}

/// `PATH` or `PATH,writable` (the path itself may hold commas).
fn parse_disk(text: &str) -> Result<DiskImage, String> {
    let (image, writable) = match text.strip_suffix(",writable") {
        Some(image) => (image, true),
        None => (text, false),
    };
    if image.is_empty() {
        return Err("the disk image's path is empty".to_owned());
    }
    Ok(DiskImage {
        image: image.into(),
        writable,
    })
}

/// Where the VM's outputs go: checked before QEMU starts, opened once it has.
struct Outputs {
    /// Each distinct destination, with the roles that write to it, in the order
    /// console, log, virtio console.
    destinations: Vec<(Vec<&'static str>, Destination)>,
    /// Whether stdout was closed when `vm` started.
    stdout_closed: bool,
}

/// One destination of output.
#[derive(Clone, Debug, PartialEq)]
enum Destination {
    /// `vm`'s stdout, as the shell opened it (never emptied).
    Stdout,
    /// A file named on the command line that is not stdout.
    File(PathBuf),
}

impl Outputs {
    /// Checks the outputs `args` names: none may be one of `inputs`, each must be writable;
    /// outputs that are one file (by device and inode, or by path while it does not exist),
    /// stdout included, become one destination.
    fn plan(
        args: &RunArgs,
        inputs: &[(&'static str, &Path)],
        stdout_closed: bool,
    ) -> Result<Self, Error> {
        let stdout = if stdout_closed {
            None
        } else {
            rustix::fs::fstat(std::io::stdout())
                .ok()
                .map(|stat| (stat.st_dev, stat.st_ino) as Identity)
        };
        let named = [
            ("console", args.console.as_ref()),
            ("log", args.log.as_ref()),
            ("virtio console", args.virtio_console.as_ref()),
        ];
        let mut destinations: Vec<(Vec<&'static str>, Destination, Option<Identity>)> = Vec::new();
        for (role, path) in named {
            let (destination, identity) = match path {
                Some(path) => {
                    refuse_input(role, path, inputs)?;
                    let identity = identity(path);
                    if identity.is_some() && identity == stdout {
                        (Destination::Stdout, identity)
                    } else {
                        OutputFile::check(role, path)?;
                        (Destination::File(path.clone()), identity)
                    }
                }
                // The virtio console's output is discarded without a file.
                None if role == "virtio console" => continue,
                None => {
                    refuse_stdout_input(role, inputs)?;
                    (Destination::Stdout, stdout)
                }
            };
            let same = destinations.iter_mut().find(|(_, other, other_identity)| {
                let same_name = match (other, &destination) {
                    (Destination::File(a), Destination::File(b)) => {
                        std::path::absolute(a).ok() == std::path::absolute(b).ok()
                    }
                    (a, b) => a == b,
                };
                same_name || (identity.is_some() && *other_identity == identity)
            });
            match same {
                Some((roles, _, _)) => roles.push(role),
                None => destinations.push((vec![role], destination, identity)),
            }
        }
        Ok(Self {
            destinations: destinations
                .into_iter()
                .map(|(roles, destination, _)| (roles, destination))
                .collect(),
            stdout_closed,
        })
    }

    /// Opens every destination (a FIFO is waited on until a reader opens it, or `interrupt`
    /// is raised), then empties those that are regular files that were there before. What
    /// was opened is left in `opened`, so that the caller can remove the files `vm` created if
    /// the VM does not start after all.
    fn open(
        &self,
        interrupt: &AtomicBool,
        opened: &mut Vec<OutputFile>,
    ) -> Result<VmOutputs, Error> {
        let share = |file: &File| {
            file.try_clone().map_err(|source| Error::Io {
                action: "share an output file",
                source,
            })
        };
        let mut outputs = VmOutputs::default();
        for (roles, destination) in &self.destinations {
            let file = match destination {
                Destination::Stdout if self.stdout_closed => None,
                Destination::Stdout => Some(
                    std::io::stdout()
                        .as_fd()
                        .try_clone_to_owned()
                        .map(File::from)
                        .map_err(|source| Error::Io {
                            action: "share stdout",
                            source,
                        })?,
                ),
                Destination::File(path) => {
                    let role = roles[0];
                    let output = OutputFile::open(role, path, interrupt, || {
                        say!(
                            "vm: waiting for a reader to open the {role} FIFO {}",
                            path.display()
                        );
                    })?;
                    let file = share(output.file())?;
                    opened.push(output);
                    Some(file)
                }
            };
            for &role in roles {
                let file = file.as_ref().map(share).transpose()?;
                match role {
                    "console" => outputs.console = file,
                    "log" => outputs.log = file,
                    _ => outputs.virtio_console = file,
                }
            }
        }
        for output in opened.iter() {
            output.empty()?;
        }
        Ok(outputs)
    }

    /// The error to report for output that went to a closed stdout.
    fn closed_stdout_error(&self) -> Option<String> {
        let roles = self
            .destinations
            .iter()
            .find(|(_, destination)| *destination == Destination::Stdout)
            .filter(|_| self.stdout_closed)
            .map(|(roles, _)| roles.join(" and "))?;
        Some(format!(
            "cannot write the VM's {roles}: standard output is closed"
        ))
    }
}

/// An existing file's device and inode, which tell when two names are one file.
type Identity = (u64, u64);

/// The device and inode of the file `path` names, if it exists.
fn identity(path: &Path) -> Option<Identity> {
    fs::metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
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

/// Seconds, more than 0; more than a `Duration` holds (even `inf`) means no timeout at all.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|error| format!("{error}"))?;
    // Also refuses NaN.
    if seconds.is_nan() || seconds <= 0.0 {
        return Err("must be more than 0".to_owned());
    }
    Ok(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}
