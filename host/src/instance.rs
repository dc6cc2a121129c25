// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! `VmInstance`: one QEMU process running one VM, and the files it needs.

use crate::boot_stub::boot_stub_for;
use crate::config::VirtualMachineRawConfig;
use crate::death_reason::DeathReason;
use crate::device_tree;
use crate::error::Error;
use crate::monitor::{self, Ending};
use crate::output::Copier;
use crate::plan::{BootPlan, VirtioConsole};
use crate::qemu::{self, QEMU, RunFiles};
use crate::qmp::{QmpClient, ReadLimit};
use crate::supervise;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use signal_hook::consts::{SIGHUP, SIGINT, SIGKILL, SIGTERM};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long QEMU may take to connect its QMP monitor and answer the first commands.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How often to check on QEMU (and the interrupt flag) while waiting for it to connect; the
/// connection itself is taken the moment it comes.
const START_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// How long QEMU may take to exit after it closed its monitor during start-up.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// How long QEMU may take to exit after it closed its monitor while the VM ran.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Files in the instance's temporary directory.
const QEMU_DTB_FILE: &str = "qemu.dtb";
const DEVICE_TREE_FILE: &str = "fdt.dtb";
const BOOT_STUB_FILE: &str = "boot-stub.bin";
const QMP_SOCKET_FILE: &str = "qmp.sock";
/// The base name of the virtio console's pipe backend (QEMU opens `.in` and `.out`).
const VIRTIO_CONSOLE_PIPE: &str = "virtcon";

/// A VM: created with [`VmInstance::create`], booted with [`VmInstance::start`].
///
/// Dropping it kills QEMU (if still running) and removes its temporary directory.
pub struct VmInstance {
    qemu_args: Vec<OsString>,
    waits_for_debugger: bool,
    /// Whether QEMU counts instructions (`-icount`, with `-no-shutdown`).
    counts_instructions: bool,
    /// Guest instructions executed until the guest powered off or reset, once known.
    instructions_executed: Option<u64>,
    /// Raised by the caller to stop waiting for QEMU while the VM is created or started.
    interrupt: Arc<AtomicBool>,
    /// Why the console or log could not be written, once the VM ended.
    output_error: Option<Error>,
    // Declared before `temp_dir` so that QEMU is killed before its files are removed.
    state: State,
    temp_dir: TempDir,
}

enum State {
    Created {
        console: Option<File>,
        log: Option<File>,
    },
    Running(RunningVm),
    Dead(DeathReason),
}

/// Gives QEMU's pipe backend the virtio console's files under the names it opens
/// (`BASE.in`, `BASE.out`, both read-write): links to the input and to the output (created
/// empty first), or to `/dev/null`.
fn link_virtio_console(console: &VirtioConsole, dir: &Path) -> Result<(), Error> {
    let output = match &console.output {
        Some(output) => {
            File::create(output).map_err(Error::io("create the virtio console output"))?;
            output.as_path()
        }
        None => Path::new("/dev/null"),
    };
    for (target, suffix) in [(console.input.as_path(), "in"), (output, "out")] {
        let link = dir.join(format!("{VIRTIO_CONSOLE_PIPE}.{suffix}"));
        std::os::unix::fs::symlink(target, &link)
            .map_err(Error::io("link the virtio console's files"))?;
    }
    Ok(())
}

impl VmInstance {
    /// Checks `config` and prepares everything QEMU needs, without starting it.
    ///
    /// The guest's console (QEMU's PL011) goes to `console`, QEMU's own messages to `log`;
    /// `None` discards them. A write error on either is reported by
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
        let generated_device_tree = dir.join(DEVICE_TREE_FILE);
        let files = RunFiles {
            boot_stub: &dir.join(BOOT_STUB_FILE),
            device_tree: plan
                .given_device_tree
                .as_deref()
                .unwrap_or(generated_device_tree.as_path()),
            qmp_socket: &dir.join(QMP_SOCKET_FILE),
            virtio_console: &dir.join(VIRTIO_CONSOLE_PIPE),
        };
        let placement = &plan.placement;
        if let Some(console) = &plan.virtio_console {
            link_virtio_console(console, dir)?;
        }
        // Written first: QEMU's device tree is dumped with it as `-bios`, as the boot runs.
        fs::write(files.boot_stub, boot_stub_for(&placement.entry))
            .map_err(Error::io("write the boot stub"))?;
        if plan.given_device_tree.is_none() {
            let qemu_dtb = device_tree::qemu_device_tree(
                plan.memory_mib,
                plan.num_cpus,
                files.boot_stub,
                &dir.join(QEMU_DTB_FILE),
                &interrupt,
            )?;
            let dtb = device_tree::rewrite(
                &qemu_dtb,
                plan.memory_mib,
                placement.bootargs.as_deref(),
                placement.initrd.as_ref(),
            )?;
            fs::write(&generated_device_tree, dtb).map_err(Error::io("write the device tree"))?;
        }
        Ok(Self {
            qemu_args: qemu::run_args(plan, &files, console.is_some()),
            waits_for_debugger: plan.gdb_port.is_some(),
            counts_instructions: plan.icount_shift.is_some(),
            instructions_executed: None,
            interrupt,
            output_error: None,
            state: State::Created { console, log },
            temp_dir,
        })
    }

    /// Starts QEMU and lets the guest run, or, with a `gdb_port`, leaves it paused at its first
    /// instruction until a debugger continues it.
    ///
    /// On failure nothing is left running and the death reason is
    /// [`DeathReason::StartFailed`].
    pub fn start(&mut self) -> Result<(), Error> {
        let state = std::mem::replace(&mut self.state, State::Dead(DeathReason::StartFailed));
        let State::Created { console, log } = state else {
            self.state = state;
            return Err(Error::AlreadyStarted);
        };
        self.state = State::Running(self.launch(console, log)?);
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

    /// Why the console or log could not be written ([`Error::OutputWrite`]), if that happened:
    /// what came after the error was dropped. Known once the VM ended.
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
            self.output_error = vm.close();
        }
        reason
    }

    /// Spawns QEMU, accepts its QMP connection and lets the guest run.
    fn launch(&self, console: Option<File>, log: Option<File>) -> Result<RunningVm, Error> {
        let dir = self.temp_dir.path();
        let listener = UnixListener::bind(dir.join(QMP_SOCKET_FILE))
            .map_err(Error::io("listen on the QMP socket"))?;
        // QEMU writes into pipes that threads copy to the caller's files, so that write
        // errors there are seen, and QEMU's last messages are at hand to explain a failure.
        let (stdout, console) = match console {
            Some(console) => {
                let (reader, writer) = io::pipe().map_err(Error::io("create a pipe"))?;
                let copier = Copier::start("console", reader, Some(console))
                    .map_err(Error::io("start the console thread"))?;
                (Stdio::from(writer), Some(copier))
            }
            None => (Stdio::null(), None),
        };
        let (reader, writer) = io::pipe().map_err(Error::io("create a pipe"))?;
        let mut log =
            Copier::start("log", reader, log).map_err(Error::io("start the log thread"))?;
        let mut command = Command::new(QEMU);
        command
            .args(&self.qemu_args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(writer);
        let mut qemu = QemuProcess::spawn(command).map_err(|error| match error.kind() {
            ErrorKind::NotFound => Error::QemuNotFound,
            _ => Error::QemuSpawn(error),
        })?;

        let stream = match self.accept_qmp(&listener, &mut qemu) {
            Ok(stream) => stream,
            Err(NoConnection::QemuExited(status)) => return Err(start_failure(status, &mut log)),
            Err(NoConnection::Failed(error)) => return Err(error),
        };
        let mut qmp = QmpClient::new(stream)?;
        qmp.limit_reads(Some(ReadLimit {
            deadline: supervise::deadline_after(START_TIMEOUT),
            timeout: START_TIMEOUT,
            interrupt: Arc::clone(&self.interrupt),
        }));
        let started = qmp.negotiate().and_then(|()| {
            if self.waits_for_debugger {
                Ok(())
            } else {
                qmp.cont()
            }
        });
        if let Err(error) = started {
            // QEMU closes the monitor when it fails to build the machine: report why.
            return Err(match (&error, wait_with_timeout(&mut qemu, EXIT_GRACE)) {
                (Error::Qmp(_), Some(status)) => start_failure(status, &mut log),
                _ => error,
            });
        }
        qmp.limit_reads(None);

        let (sender, monitor_result) = mpsc::channel();
        let counts_instructions = self.counts_instructions;
        let monitor = thread::Builder::new()
            .name("vmclient-qmp".to_owned())
            .spawn(move || {
                // The receiver is gone only when the instance was dropped: nobody to tell.
                let _ = sender.send(monitor::watch(qmp, counts_instructions));
            })
            .map_err(Error::io("start the QMP monitor thread"))?;
        Ok(RunningVm {
            qemu,
            monitor_result,
            monitor: Some(monitor),
            console,
            log,
        })
    }

    /// Waits for QEMU to connect to `listener`, at most [`START_TIMEOUT`] and only until the
    /// interrupt flag is raised.
    fn accept_qmp(
        &self,
        listener: &UnixListener,
        qemu: &mut QemuProcess,
    ) -> Result<UnixStream, NoConnection> {
        let failed = |action| move |error| NoConnection::Failed(Error::io(action)(error));
        listener
            .set_nonblocking(true)
            .map_err(failed("poll the QMP socket"))?;
        let deadline = supervise::deadline_after(START_TIMEOUT);
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream
                        .set_nonblocking(false)
                        .map_err(failed("set up the QMP socket"))?;
                    return Ok(stream);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(error) => return Err(failed("accept QEMU's QMP connection")(error)),
            }
            if let Some(status) = qemu.child.try_wait().map_err(failed("check on QEMU"))? {
                return Err(NoConnection::QemuExited(status));
            }
            if self.interrupt.load(Ordering::Relaxed) {
                return Err(NoConnection::Failed(Error::Interrupted));
            }
            if Instant::now() > deadline {
                return Err(NoConnection::Failed(Error::QemuStartTimeout(START_TIMEOUT)));
            }
            // Sleeping instead would take a connection up to a whole interval late: QEMU
            // connects as it starts, so that would add to every VM's start.
            let interval = Timespec::try_from(START_POLL_INTERVAL).unwrap_or_default();
            match rustix::event::poll(&mut [PollFd::new(listener, PollFlags::IN)], Some(&interval))
            {
                Ok(_) | Err(Errno::INTR) => {}
                Err(errno) => return Err(failed("wait for QEMU's QMP connection")(errno.into())),
            }
        }
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

/// Why QEMU did not connect its QMP monitor.
enum NoConnection {
    /// QEMU exited first, with this status.
    QemuExited(ExitStatus),
    /// Waiting failed, timed out or was interrupted.
    Failed(Error),
}

/// The error for QEMU exiting with `status` before the guest ran, with its last messages.
fn start_failure(status: ExitStatus, log: &mut Copier) -> Error {
    let messages = String::from_utf8_lossy(&log.finish().tail)
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
    /// Copies the guest's console, when there is one.
    console: Option<Copier>,
    /// Copies QEMU's messages.
    log: Copier,
}

impl RunningVm {
    /// Kills and reaps QEMU (if still there), waits for its monitor and output threads, and
    /// says why the console or log could not be written, if that happened.
    fn close(&mut self) -> Option<Error> {
        self.qemu.kill_and_reap();
        // QEMU is gone, so its monitor socket and output pipes are closed and the threads end.
        if let Some(monitor) = self.monitor.take() {
            let _ = monitor.join();
        }
        let console = self.console.as_mut().map(Copier::finish);
        let log = self.log.finish();
        [("console", console), ("log", Some(log))]
            .into_iter()
            .find_map(|(output, copied)| {
                let source = copied?.write_error?;
                Some(Error::OutputWrite { output, source })
            })
    }
}

impl Drop for RunningVm {
    fn drop(&mut self) {
        self.close();
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
