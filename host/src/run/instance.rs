// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! `VmInstance`: one QEMU process running one VM, and the files it needs.

use crate::config::VirtualMachineRawConfig;
use crate::device_tree;
use crate::error::Error;
use crate::plan::BootPlan;
use crate::qemu::boot_stub::boot_stub_for;
use crate::qemu::{self, MachineArgs, QEMU, RunFiles};
use crate::run::death_reason::DeathReason;
use crate::run::monitor::{self, Ending};
use crate::run::output::{Copier, OutputFile};
use crate::run::qmp::{QmpClient, ReadLimit};
use crate::supervise;
use rustix::fs::{Mode, OFlags};
use signal_hook::consts::{SIGHUP, SIGINT, SIGKILL, SIGTERM};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use tempfile::TempDir;

/// How long QEMU may take to greet on its QMP monitor and answer the first commands.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long QEMU may take to exit after it closed its monitor during start-up.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// How long QEMU may take to exit after it closed its monitor while the VM ran.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Files in the instance's temporary directory.
const QEMU_DTB_FILE: &str = "qemu.dtb";
const DEVICE_TREE_FILE: &str = "fdt.dtb";
const BOOT_STUB_FILE: &str = "boot-stub.bin";
/// The base name of the virtio console's pipe backend (QEMU opens `.in` and `.out`).
const VIRTIO_CONSOLE_PIPE: &str = "virtcon";

/// A VM: created with [`VmInstance::create`], booted with [`VmInstance::start`].
///
/// Dropping it kills QEMU (if still running) and removes its temporary directory.
pub struct VmInstance {
    qemu_args: Vec<OsString>,
    /// Where the virtio console's output goes for [`VmInstance::start`], if the VM has one.
    virtio_console_output: Option<PathBuf>,
    /// Whether the VM has a virtio console.
    has_virtio_console: bool,
    waits_for_debugger: bool,
    /// Whether QEMU counts instructions (`-icount`, with `-no-shutdown`).
    counts_instructions: bool,
    /// Guest instructions executed until the guest powered off or reset, once known.
    instructions_executed: Option<u64>,
    /// Raised by the caller to stop waiting for QEMU while the VM is created or started.
    interrupt: Arc<AtomicBool>,
    /// Why an output could not be written, once the VM ended.
    output_error: Option<Error>,
    // Declared before `temp_dir` so that QEMU is killed before its files are removed.
    state: State,
    /// The instance's files, until the VM starts: then the monitor thread removes them once
    /// QEMU no longer needs them.
    temp_dir: Option<TempDir>,
}

enum State {
    Created {
        console: Option<File>,
        log: Option<File>,
    },
    Running(Box<RunningVm>),
    Dead(DeathReason),
}

/// Where a VM's output goes, given to [`VmInstance::start_with_outputs`] once QEMU is ready;
/// `None` discards that output.
#[derive(Debug, Default)]
pub struct VmOutputs {
    /// The guest's console (QEMU's PL011).
    pub console: Option<File>,
    /// QEMU's own messages.
    pub log: Option<File>,
    /// The guest's virtio console output, for a VM that has one.
    pub virtio_console: Option<File>,
}

/// Gives QEMU's pipe backend the virtio console's files under the names it opens
/// (`BASE.in`, `BASE.out`, both read-write): a link to the input, and a FIFO of our own for the
/// output, which a thread copies to wherever the output goes.
fn make_virtio_console_files(input: &Path, dir: &Path) -> Result<(), Error> {
    std::os::unix::fs::symlink(input, virtio_console_file(dir, "in"))
        .map_err(Error::io("link the virtio console's input"))?;
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        virtio_console_file(dir, "out"),
        Mode::RUSR | Mode::WUSR,
    )
    .map_err(|errno| Error::io("make the virtio console's FIFO")(errno.into()))
}

/// `BASE.suffix` of the virtio console's pipe backend in `dir`.
fn virtio_console_file(dir: &Path, suffix: &str) -> PathBuf {
    dir.join(format!("{VIRTIO_CONSOLE_PIPE}.{suffix}"))
}

/// Opens the virtio console's FIFO for reading without waiting for QEMU, and keeps a write end
/// open too until QEMU is gone: reading then sees end of file only once QEMU has exited.
fn open_virtio_console_fifo(dir: &Path) -> Result<(File, OwnedFd), Error> {
    let path = virtio_console_file(dir, "out");
    let reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlags::NONBLOCK.bits() as i32)
        .open(&path)
        .map_err(Error::io("open the virtio console's FIFO"))?;
    let keeper = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(Error::io("open the virtio console's FIFO"))?;
    let flags = rustix::fs::fcntl_getfl(&reader)
        .map_err(|errno| Error::io("open the virtio console's FIFO")(errno.into()))?;
    rustix::fs::fcntl_setfl(&reader, flags - OFlags::NONBLOCK)
        .map_err(|errno| Error::io("open the virtio console's FIFO")(errno.into()))?;
    Ok((reader, keeper.into()))
}

impl VmInstance {
    /// Checks `config` and prepares everything QEMU needs, without starting it.
    ///
    /// The guest's console (QEMU's PL011) goes to `console`, QEMU's own messages to `log`;
    /// `None` discards them. A virtio console's output goes to the config's
    /// [`virtio_console`](VirtualMachineRawConfig::virtio_console), created or emptied by
    /// [`VmInstance::start`]. A write error on any is reported by
    /// [`VmInstance::output_error`] once the VM ended.
    ///
    /// QEMU is killed if this process dies, however it dies (the kernel sends it `SIGKILL`);
    /// the temporary directory such a process leaves behind is removed by the next `create`.
    pub fn create(
        config: &VirtualMachineRawConfig,
        console: Option<File>,
        log: Option<File>,
    ) -> Result<Self, Error> {
        Self::create_with_interrupt(config, console, log, Arc::default())
    }

    /// Like [`VmInstance::create`], but every wait for QEMU here and in
    /// [`VmInstance::start`] (its device tree dump, its monitor connection) stops as soon as
    /// `interrupt` is raised, e.g. by a signal handler, with [`Error::Interrupted`].
    pub fn create_with_interrupt(
        config: &VirtualMachineRawConfig,
        console: Option<File>,
        log: Option<File>,
        interrupt: Arc<AtomicBool>,
    ) -> Result<Self, Error> {
        Self::create_from_plan(&config.check()?, console, log, interrupt)
    }

    /// Like [`VmInstance::create_with_interrupt`], for a config already checked with
    /// [`VirtualMachineRawConfig::check`]: nothing is checked or read again.
    pub fn create_from_plan(
        plan: &BootPlan,
        console: Option<File>,
        log: Option<File>,
        interrupt: Arc<AtomicBool>,
    ) -> Result<Self, Error> {
        let temp_dir = supervise::instance_temp_dir()?;
        let dir = temp_dir.path();
        let device_tree = dir.join(DEVICE_TREE_FILE);
        let files = RunFiles {
            boot_stub: &dir.join(BOOT_STUB_FILE),
            device_tree: &device_tree,
            virtio_console: &dir.join(VIRTIO_CONSOLE_PIPE),
        };
        let placement = &plan.placement;
        if let Some(console) = &plan.virtio_console {
            make_virtio_console_files(&console.input, dir)?;
        }
        // QEMU loads private copies of what was checked, which cannot change meanwhile.
        let copies: Vec<PathBuf> = (0..placement.files.len())
            .map(|index| dir.join(format!("load-{index}.bin")))
            .collect();
        for (file, copy) in placement.files.iter().zip(&copies) {
            file.input.copy_to(copy)?;
        }
        // Built once: the device tree is dumped from the same machine that runs.
        let machine_args = MachineArgs::new(&plan.machine);
        // Written first: QEMU's device tree is dumped with it as `-bios`, as the boot runs.
        fs::write(files.boot_stub, boot_stub_for(&placement.entry))
            .map_err(Error::io("write the boot stub"))?;
        device_tree::write_guest_device_tree(
            plan,
            &machine_args,
            files.boot_stub,
            &dir.join(QEMU_DTB_FILE),
            &device_tree,
            &interrupt,
        )?;
        let copies: Vec<&Path> = copies.iter().map(PathBuf::as_path).collect();
        Ok(Self {
            qemu_args: qemu::run_args(plan, &machine_args, &files, &copies),
            virtio_console_output: plan
                .virtio_console
                .as_ref()
                .and_then(|console| console.output.clone()),
            has_virtio_console: plan.virtio_console.is_some(),
            waits_for_debugger: plan.gdb_port.is_some(),
            counts_instructions: plan.icount_shift.is_some(),
            instructions_executed: None,
            interrupt,
            output_error: None,
            state: State::Created { console, log },
            temp_dir: Some(temp_dir),
        })
    }

    /// Starts QEMU and lets the guest run, or, with a `gdb_port`, leaves it paused at its first
    /// instruction until a debugger continues it.
    ///
    /// On failure nothing is left running and the death reason is
    /// [`DeathReason::StartFailed`].
    pub fn start(&mut self) -> Result<(), Error> {
        let (console, log) = match &mut self.state {
            State::Created { console, log } => (console.take(), log.take()),
            _ => return Err(Error::AlreadyStarted),
        };
        let virtio_console = self.virtio_console_output.clone();
        let interrupt = Arc::clone(&self.interrupt);
        // The caller's files are open already: they get QEMU's messages from the start, also
        // those that explain a failed start.
        let given = VmOutputs {
            console,
            log,
            virtio_console: None,
        };
        self.state = State::Dead(DeathReason::StartFailed);
        let files = self.temp_dir.take();
        let launched = self.launch(files, given, move || {
            let virtio_console = match virtio_console {
                Some(path) => {
                    let output = OutputFile::open("virtio console", &path, &interrupt, || {})?;
                    output.empty()?;
                    let file = output.file().try_clone();
                    Some(file.map_err(Error::io("share an output file"))?)
                }
                None => None,
            };
            Ok(VmOutputs {
                virtio_console,
                ..VmOutputs::default()
            })
        });
        self.state = State::Running(Box::new(launched?));
        Ok(())
    }

    /// Like [`VmInstance::start`], but the outputs are only opened, by `open_outputs`, once
    /// QEMU is up and has built the machine, and the guest runs only after that: a VM that
    /// fails to start never touches them. The files given to [`VmInstance::create`] are not
    /// used. `open_outputs` may wait (for a FIFO's reader); its error is the start's.
    pub fn start_with_outputs(
        &mut self,
        open_outputs: impl FnOnce() -> Result<VmOutputs, Error>,
    ) -> Result<(), Error> {
        if !matches!(self.state, State::Created { .. }) {
            return Err(Error::AlreadyStarted);
        }
        self.state = State::Dead(DeathReason::StartFailed);
        let files = self.temp_dir.take();
        self.state = State::Running(Box::new(self.launch(
            files,
            VmOutputs::default(),
            open_outputs,
        )?));
        Ok(())
    }

    /// Waits until the VM ends and says why.
    ///
    /// A VM that was never started, or failed to start, reports [`DeathReason::StartFailed`].
    pub fn wait_for_death(&mut self) -> DeathReason {
        match &self.state {
            State::Created { .. } => DeathReason::StartFailed,
            State::Dead(reason) => *reason,
            State::Running(vm) => {
                let monitor_result = vm.monitor_result.recv();
                self.finish(monitor_result.ok())
            }
        }
    }

    /// Like [`VmInstance::wait_for_death`], but gives up after `timeout` and returns `None`
    /// if the VM is still running then.
    pub fn wait_for_death_with_timeout(&mut self, timeout: Duration) -> Option<DeathReason> {
        match &self.state {
            State::Created { .. } => Some(DeathReason::StartFailed),
            State::Dead(reason) => Some(*reason),
            State::Running(vm) => match vm.monitor_result.recv_timeout(timeout) {
                Ok(monitor_result) => Some(self.finish(Some(monitor_result))),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(self.finish(None)),
            },
        }
    }

    /// How many guest instructions ran from reset until the guest powered off (PSCI
    /// `SYSTEM_OFF`) or reset (`SYSTEM_RESET`), for a VM with an
    /// [`icount_shift`](VirtualMachineRawConfig::icount_shift).
    ///
    /// The count is QEMU's own and exact, whatever the shift, so it serves as a deterministic
    /// benchmark: the same image and config run the same number of instructions every time.
    /// (The generated device tree's `/chosen/rng-seed` and `kaslr-seed` are fresh random
    /// bytes for every VM, so a guest whose control flow depends on them counts differently;
    /// vmbase guests do not read them.)
    ///
    /// `None` until [`VmInstance::wait_for_death`] or
    /// [`VmInstance::wait_for_death_with_timeout`] has seen the VM end that way, and stays
    /// `None` when it ended otherwise: no `icount_shift`, a guest killed, crashed or timed out,
    /// or QEMU gone before it said.
    pub fn instructions_executed(&self) -> Option<u64> {
        self.instructions_executed
    }

    /// Why the console, log or virtio console could not be written ([`Error::OutputWrite`]), if
    /// that happened: what came after the error was dropped, as is all output a reader did not
    /// take once the VM ended and the interrupt flag was raised. Known once the VM ended.
    pub fn output_error(&self) -> Option<&Error> {
        self.output_error.as_ref()
    }

    /// Kills QEMU unless the VM already ended, and says why the VM ended: normally
    /// [`DeathReason::Killed`].
    pub fn kill(&mut self) -> DeathReason {
        match self.state {
            State::Dead(reason) => return reason,
            State::Running(_) => {
                if let Some(reason) = self.wait_for_death_with_timeout(Duration::ZERO) {
                    return reason;
                }
            }
            State::Created { .. } => {}
        }
        self.end(DeathReason::Killed)
    }

    /// Records `reason`, and if the VM was running, kills and reaps QEMU and collects what
    /// happened to its output.
    fn end(&mut self, reason: DeathReason) -> DeathReason {
        if let State::Running(mut vm) = std::mem::replace(&mut self.state, State::Dead(reason)) {
            self.output_error = vm.close(&self.interrupt);
        }
        reason
    }

    /// Spawns QEMU with the `given` outputs, waits for its QMP greeting, opens the others
    /// with `open_outputs` and lets the guest run. The instance's `files` go with the monitor
    /// thread, which removes them once QEMU is done with them; on failure they are removed
    /// after QEMU is killed.
    fn launch(
        &self,
        files: Option<TempDir>,
        given: VmOutputs,
        open_outputs: impl FnOnce() -> Result<VmOutputs, Error>,
    ) -> Result<RunningVm, Error> {
        let (stream, qemu_end) = UnixStream::pair().map_err(Error::io("create a socket pair"))?;
        // QEMU gets its end under the same number, which must not be one of its stdio.
        let qemu_end = {
            let original = qemu_end;
            rustix::io::fcntl_dupfd_cloexec(&original, 3)
                .map_err(|errno| Error::io("pass the QMP socket")(errno.into()))?
        };
        // QEMU writes into pipes (and the virtio console's FIFO) that threads copy to the
        // caller's files, so that write errors there are seen, and QEMU's last messages are at
        // hand to explain a failure. The threads start once QEMU is spawned, which they would
        // only delay: QEMU writes nothing before it has built the machine, and the pipes hold
        // what it writes until then.
        let (console_reader, stdout) = io::pipe().map_err(Error::io("create a pipe"))?;
        let (log_reader, stderr) = io::pipe().map_err(Error::io("create a pipe"))?;
        let (virtio_console_reader, fifo_keeper) = if self.has_virtio_console {
            let dir = files
                .as_ref()
                .map(TempDir::path)
                .ok_or(Error::AlreadyStarted)?;
            let (reader, keeper) = open_virtio_console_fifo(dir)?;
            (Some(reader), Some(keeper))
        } else {
            (None, None)
        };
        let mut command = Command::new(QEMU);
        command
            .args(&self.qemu_args)
            .args(qemu::qmp_args(qemu_end.as_raw_fd()))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        supervise::pass_fd(&mut command, qemu_end.as_fd());
        let mut qemu = QemuProcess::spawn(command).map_err(|error| match error.kind() {
            ErrorKind::NotFound => Error::QemuNotFound,
            _ => Error::QemuSpawn(error),
        })?;
        let mut console = Copier::start("console", console_reader)
            .map_err(Error::io("start the console thread"))?;
        let mut log =
            Copier::start("log", log_reader).map_err(Error::io("start the log thread"))?;
        for (copier, file) in [(&mut console, given.console), (&mut log, given.log)] {
            if file.is_some() {
                copier.deliver(file);
            }
        }
        let mut virtio_console = virtio_console_reader
            .map(|reader| Copier::start("virtio-console", reader))
            .transpose()
            .map_err(Error::io("start the virtio console thread"))?;
        // Only QEMU holds its end now: its exit closes the connection.
        drop(qemu_end);

        let mut qmp = QmpClient::new(stream)?;
        qmp.limit_reads(Some(ReadLimit {
            deadline: supervise::deadline_after(START_TIMEOUT),
            timeout: START_TIMEOUT,
            interrupt: Arc::clone(&self.interrupt),
        }));
        if let Err(error) = qmp.negotiate() {
            // QEMU closes the monitor when it fails to build the machine: report why.
            return Err(match (&error, wait_with_timeout(&mut qemu, EXIT_GRACE)) {
                (Error::Qmp(_), Some(status)) => start_failure(status, &mut log, &self.interrupt),
                _ => error,
            });
        }
        // The machine is built and paused: only now are the other outputs opened (an output
        // given already keeps its file).
        let outputs = open_outputs()?;
        console.deliver(outputs.console);
        log.deliver(outputs.log);
        if let Some(copier) = &mut virtio_console {
            copier.deliver(outputs.virtio_console);
        }
        if !self.waits_for_debugger {
            qmp.cont()?;
        }
        qmp.limit_reads(None);

        let (sender, monitor_result) = mpsc::channel();
        let counts_instructions = self.counts_instructions;
        let monitor = thread::Builder::new()
            .name("vmclient-qmp".to_owned())
            .spawn(move || {
                // The receiver is gone only when the instance was dropped: nobody to tell.
                let _ = sender.send(monitor::watch(qmp, counts_instructions, || drop(files)));
            })
            .map_err(Error::io("start the QMP monitor thread"))?;
        Ok(RunningVm {
            qemu,
            monitor_result,
            monitor: Some(monitor),
            console,
            log,
            virtio_console,
            fifo_keeper,
            interrupt: Arc::clone(&self.interrupt),
        })
    }

    /// Reaps QEMU after its monitor closed (`monitor_result`), or after the monitor thread
    /// vanished (`None`), and records the death reason.
    fn finish(&mut self, monitor_result: Option<Result<Ending, Error>>) -> DeathReason {
        let State::Running(vm) = &mut self.state else {
            unreachable!("finish is only called on a running VM");
        };
        let reason = match monitor_result {
            Some(Ok(Ending {
                shutdown_cause: Some(cause),
                instructions,
            })) => {
                self.instructions_executed = instructions;
                cause.death_reason()
            }
            Some(Ok(Ending {
                shutdown_cause: None,
                ..
            })) => match wait_with_timeout(&mut vm.qemu, EXIT_TIMEOUT) {
                // Killed by someone, or told to exit by a debugger (gdb's `kill`): QEMU exits
                // with status 0 then, without a shutdown event.
                Some(status) if status.success() || status.signal().is_some_and(is_kill_signal) => {
                    DeathReason::Killed
                }
                // An error exit or a fatal signal such as SIGSEGV or SIGABRT.
                Some(_) => DeathReason::Crash,
                // It closed its monitor but does not exit: it is killed below.
                None => DeathReason::InfrastructureError,
            },
            Some(Err(_)) | None => DeathReason::InfrastructureError,
        };
        self.end(reason)
    }
}

/// The error for QEMU exiting with `status` before the guest ran, with its last messages.
fn start_failure(status: ExitStatus, log: &mut Copier, interrupt: &AtomicBool) -> Error {
    let messages = String::from_utf8_lossy(&log.finish(interrupt).tail)
        .trim()
        .to_owned();
    Error::QemuFailed {
        action: "start the VM",
        status,
        stderr: if messages.is_empty() {
            "it printed nothing".to_owned()
        } else {
            messages
        },
    }
}

/// QEMU and the thread that reads its QMP monitor.
struct RunningVm {
    qemu: QemuProcess,
    /// The monitor thread's result: the first `SHUTDOWN` cause and the instruction count, once
    /// QEMU closed the monitor.
    monitor_result: Receiver<Result<Ending, Error>>,
    monitor: Option<JoinHandle<()>>,
    /// Copies the guest's console.
    console: Copier,
    /// Copies QEMU's messages.
    log: Copier,
    /// Copies the guest's virtio console output, when there is one.
    virtio_console: Option<Copier>,
    /// A write end of the virtio console's FIFO, kept until QEMU is gone (see
    /// `open_virtio_console_fifo`).
    fifo_keeper: Option<OwnedFd>,
    /// Raised by the caller to stop waiting for outputs to be written.
    interrupt: Arc<AtomicBool>,
}

impl RunningVm {
    /// Kills and reaps QEMU (if still there), waits for its monitor and output threads (for
    /// the outputs, only until `interrupt` is raised), and says why an output could not be
    /// written, if that happened.
    fn close(&mut self, interrupt: &AtomicBool) -> Option<Error> {
        self.qemu.kill_and_reap();
        self.fifo_keeper = None;
        // QEMU is gone, so its monitor socket and output pipes are closed and the threads end.
        if let Some(monitor) = self.monitor.take() {
            let _ = monitor.join();
        }
        let mut first_error = None;
        let outputs = [
            ("console", Some(&mut self.console)),
            ("log", Some(&mut self.log)),
            ("virtio console", self.virtio_console.as_mut()),
        ];
        for (output, copier) in outputs {
            let Some(copier) = copier else { continue };
            let copied = copier.finish(interrupt);
            if first_error.is_none()
                && let Some(error) = &copied.write_error
            {
                first_error = Some(Error::OutputWrite {
                    output,
                    source: io::Error::new(error.kind(), error.to_string()),
                });
            }
        }
        first_error
    }
}

impl Drop for RunningVm {
    fn drop(&mut self) {
        let interrupt = Arc::clone(&self.interrupt);
        self.close(&interrupt);
    }
}

/// A QEMU process that is killed and reaped when dropped, so none is ever left behind.
struct QemuProcess {
    child: Child,
    /// The thread that spawned QEMU, which must outlive it (QEMU's parent-death signal follows
    /// that thread), and the sender whose drop lets it end.
    spawner: Option<(Sender<()>, JoinHandle<()>)>,
}

impl QemuProcess {
    /// Spawns `command` from a thread of its own that lives until QEMU is reaped, so that QEMU
    /// dies with this process but not with the caller's thread.
    fn spawn(mut command: Command) -> io::Result<Self> {
        let (spawned_sender, spawned) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let spawner = thread::Builder::new()
            .name("vmclient-qemu".to_owned())
            .spawn(move || {
                let child = supervise::spawn_tied_to_this_thread(&mut command);
                // Closes this process's ends of QEMU's output pipes.
                drop(command);
                let _ = spawned_sender.send(child);
                // Returns once `release` is dropped.
                let _ = released.recv();
            })?;
        let child = spawned
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the thread spawning QEMU died")));
        match child {
            Ok(child) => Ok(Self {
                child,
                spawner: Some((release, spawner)),
            }),
            Err(error) => {
                drop(release);
                let _ = spawner.join();
                Err(error)
            }
        }
    }

    fn kill_and_reap(&mut self) {
        supervise::kill_and_reap(&mut self.child);
        if let Some((release, spawner)) = self.spawner.take() {
            drop(release);
            let _ = spawner.join();
        }
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// Whether QEMU dying of `signal` means someone killed it rather than that it crashed.
/// (QEMU turns SIGINT, SIGTERM and SIGHUP into a `SHUTDOWN` event, so they rarely get here.)
fn is_kill_signal(signal: i32) -> bool {
    matches!(signal, SIGHUP | SIGINT | SIGKILL | SIGTERM)
}

/// Waits up to `timeout` for QEMU to exit.
fn wait_with_timeout(qemu: &mut QemuProcess, timeout: Duration) -> Option<ExitStatus> {
    let deadline = supervise::deadline_after(timeout);
    match supervise::wait_bounded(&mut qemu.child, deadline, &AtomicBool::new(false)) {
        Ok(supervise::Waited::Exited(status)) => Some(status),
        _ => None,
    }
}
