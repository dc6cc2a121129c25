// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! `VmInstance`: one QEMU process running one VM, and the files it needs.

use crate::boot_stub::boot_stub_for;
use crate::config::VirtualMachineRawConfig;
use crate::death_reason::DeathReason;
use crate::device_tree;
use crate::error::Error;
use crate::qemu::{self, QEMU, RunFiles};
use crate::qmp::{Ending, QmpClient};
use signal_hook::consts::{SIGHUP, SIGINT, SIGKILL, SIGTERM};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long QEMU may take to connect its QMP monitor and answer the first commands.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How often to check on QEMU while waiting for it to connect.
const START_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// How long QEMU may take to exit after it closed its monitor during start-up.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Files in the instance's temporary directory.
const QEMU_DTB_FILE: &str = "qemu.dtb";
const DEVICE_TREE_FILE: &str = "fdt.dtb";
const BOOT_STUB_FILE: &str = "boot-stub.bin";
const QMP_SOCKET_FILE: &str = "qmp.sock";
/// QEMU's standard error when the caller gives no log, kept to explain start failures.
const STDERR_FILE: &str = "qemu-stderr.log";

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

impl VmInstance {
    /// Checks `config` and prepares everything QEMU needs, without starting it.
    ///
    /// The guest's console (QEMU's PL011) goes to `console`, QEMU's own messages to `log`;
    /// `None` discards them.
    pub fn create(
        config: &VirtualMachineRawConfig,
        console: Option<File>,
        log: Option<File>,
    ) -> Result<Self, Error> {
        let image = config.validate()?;
        let temp_dir = tempfile::Builder::new()
            .prefix("vmclient-")
            .tempdir()
            .map_err(Error::io("create a temporary directory"))?;
        let dir = temp_dir.path();
        let generated_device_tree = dir.join(DEVICE_TREE_FILE);
        let files = RunFiles {
            boot_stub: &dir.join(BOOT_STUB_FILE),
            device_tree: config
                .device_tree
                .as_deref()
                .unwrap_or(generated_device_tree.as_path()),
            qmp_socket: &dir.join(QMP_SOCKET_FILE),
        };
        // Written first: QEMU's device tree is dumped with it as `-bios`, as the boot runs.
        fs::write(files.boot_stub, boot_stub_for(&image.entry))
            .map_err(Error::io("write the boot stub"))?;
        if config.device_tree.is_none() {
            let qemu_dtb = device_tree::qemu_device_tree(
                config.memory_mib,
                config.num_cpus,
                files.boot_stub,
                &dir.join(QEMU_DTB_FILE),
            )?;
            let dtb = device_tree::rewrite(
                &qemu_dtb,
                config.memory_mib,
                image.bootargs.as_deref(),
                image.initrd.as_ref(),
            )?;
            fs::write(&generated_device_tree, dtb).map_err(Error::io("write the device tree"))?;
        }
        Ok(Self {
            qemu_args: qemu::run_args(config, &image, &files, console.is_some()),
            waits_for_debugger: config.gdb_port.is_some(),
            counts_instructions: config.icount_shift.is_some(),
            instructions_executed: None,
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
    /// (The generated device tree's `/chosen/rng-seed` and `kaslr-seed` are QEMU's random
    /// ones, so a guest whose control flow depends on them counts differently; vmbase guests
    /// do not read them.)
    ///
    /// `None` until [`VmInstance::wait_for_death`] or
    /// [`VmInstance::wait_for_death_with_timeout`] has seen the VM end that way, and stays
    /// `None` when it ended otherwise: no `icount_shift`, a guest killed, crashed or timed out,
    /// or QEMU gone before it said.
    pub fn instructions_executed(&self) -> Option<u64> {
        self.instructions_executed
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
        // Dropping the running VM kills and reaps QEMU.
        self.state = State::Dead(DeathReason::Killed);
        DeathReason::Killed
    }

    /// Spawns QEMU, accepts its QMP connection and lets the guest run.
    fn launch(&self, console: Option<File>, log: Option<File>) -> Result<RunningVm, Error> {
        let dir = self.temp_dir.path();
        let listener = UnixListener::bind(dir.join(QMP_SOCKET_FILE))
            .map_err(Error::io("listen on the QMP socket"))?;
        let stdout = match (console, &log) {
            (Some(console), _) => Stdio::from(console),
            (None, Some(log)) => Stdio::from(log.try_clone().map_err(Error::io("share the log"))?),
            (None, None) => Stdio::null(),
        };
        let stderr = match log {
            Some(log) => Stdio::from(log),
            None => Stdio::from(
                File::create(dir.join(STDERR_FILE)).map_err(Error::io("create QEMU's log"))?,
            ),
        };
        let child = Command::new(QEMU)
            .args(&self.qemu_args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|error| match error.kind() {
                ErrorKind::NotFound => Error::QemuNotFound,
                _ => Error::QemuSpawn(error),
            })?;
        let mut qemu = QemuProcess(child);

        let stream = self.accept_qmp(&listener, &mut qemu)?;
        let stream_timeouts = stream
            .try_clone()
            .map_err(Error::io("clone the QMP socket"))?;
        stream_timeouts
            .set_read_timeout(Some(START_TIMEOUT))
            .map_err(Error::io("set a QMP timeout"))?;
        let mut qmp = QmpClient::new(stream)?;
        let started = qmp.negotiate().and_then(|()| {
            if self.waits_for_debugger {
                Ok(())
            } else {
                qmp.execute("cont")
            }
        });
        if let Err(error) = started {
            // QEMU closes the monitor when it fails to build the machine: report why.
            return Err(match wait_with_timeout(&mut qemu, EXIT_GRACE) {
                Some(status) => self.start_failure(status),
                None => error,
            });
        }
        stream_timeouts
            .set_read_timeout(None)
            .map_err(Error::io("clear a QMP timeout"))?;

        let (sender, monitor_result) = mpsc::channel();
        let counts_instructions = self.counts_instructions;
        let monitor = thread::Builder::new()
            .name("vmclient-qmp".to_owned())
            .spawn(move || {
                // The receiver is gone only when the instance was dropped: nobody to tell.
                let _ = sender.send(qmp.wait_for_close(counts_instructions));
            })
            .map_err(Error::io("start the QMP monitor thread"))?;
        Ok(RunningVm {
            qemu,
            monitor_result,
            monitor: Some(monitor),
        })
    }

    /// Waits for QEMU to connect to `listener`, failing early if QEMU exits first.
    fn accept_qmp(
        &self,
        listener: &UnixListener,
        qemu: &mut QemuProcess,
    ) -> Result<UnixStream, Error> {
        listener
            .set_nonblocking(true)
            .map_err(Error::io("poll the QMP socket"))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream
                        .set_nonblocking(false)
                        .map_err(Error::io("set up the QMP socket"))?;
                    return Ok(stream);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(error) => return Err(Error::io("accept QEMU's QMP connection")(error)),
            }
            if let Some(status) = qemu.0.try_wait().map_err(Error::io("check on QEMU"))? {
                return Err(self.start_failure(status));
            }
            if Instant::now() > deadline {
                return Err(Error::QemuStartTimeout(START_TIMEOUT));
            }
            thread::sleep(START_POLL_INTERVAL);
        }
    }

    /// The error for QEMU exiting with `status` before the guest ran.
    fn start_failure(&self, status: ExitStatus) -> Error {
        let stderr = fs::read_to_string(self.temp_dir.path().join(STDERR_FILE))
            .map(|text| text.trim().to_owned())
            .unwrap_or_else(|_| "see the VM log for QEMU's messages".to_owned());
        Error::QemuFailed {
            action: "start the VM",
            status,
            stderr,
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
                DeathReason::from_qemu_shutdown_cause(&cause)
            }
            Some(Ok(Ending {
                shutdown_cause: None,
                ..
            })) => match vm.qemu.0.wait() {
                Ok(status) if status.signal().is_some_and(is_kill_signal) => DeathReason::Killed,
                // An error exit or a fatal signal such as SIGSEGV or SIGABRT.
                Ok(_) => DeathReason::Crash,
                Err(_) => DeathReason::InfrastructureError,
            },
            Some(Err(_)) | None => DeathReason::InfrastructureError,
        };
        // Dropping the running VM reaps QEMU, killing it first if it is somehow still there.
        self.state = State::Dead(reason);
        reason
    }
}

/// QEMU and the thread that reads its QMP monitor.
struct RunningVm {
    qemu: QemuProcess,
    /// The monitor thread's result: the first `SHUTDOWN` cause and the instruction count, once
    /// QEMU closed the monitor.
    monitor_result: Receiver<Result<Ending, Error>>,
    monitor: Option<JoinHandle<()>>,
}

impl Drop for RunningVm {
    fn drop(&mut self) {
        self.qemu.kill_and_reap();
        // QEMU is gone, so its monitor socket is closed and the thread ends.
        if let Some(monitor) = self.monitor.take() {
            let _ = monitor.join();
        }
    }
}

/// A QEMU process that is killed and reaped when dropped, so none is ever left behind.
struct QemuProcess(Child);

impl QemuProcess {
    fn kill_and_reap(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // Errors mean it already exited, which is what we want.
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
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
    let deadline = Instant::now() + timeout;
    loop {
        match qemu.0.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(START_POLL_INTERVAL),
            Ok(None) | Err(_) => return None,
        }
    }
}
