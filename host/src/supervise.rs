// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Keeping QEMU tied to its parent: a death signal, bounded waits, and stale temporary
//! directories reclaimed.

use crate::error::Error;
use rustix::io::Errno;
use rustix::process::{Pid, Signal};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How often a bounded wait looks at the child and the interrupt flag.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Prefix of the instance directories in the temporary directory; the creator's pid follows.
const TEMP_DIR_PREFIX: &str = "vmclient-";

/// Spawns `command` so that the kernel kills it with `SIGKILL` when the calling thread ends,
/// whatever ends it (including `SIGKILL` of this process). The calling thread must therefore
/// live as long as the child should.
pub(crate) fn spawn_tied_to_this_thread(command: &mut Command) -> io::Result<Child> {
    let parent = rustix::process::getpid();
    let tie_to_parent = move || {
        rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
        // The parent may have died between fork and prctl: then nobody would send the signal.
        if rustix::process::getppid() != Some(parent) {
            return Err(Errno::SRCH.into());
        }
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // work is allowed: it makes two raw system calls (prctl, getppid) through rustix, and an
    // `Errno` converts to `io::Error` without allocating. It touches no lock or shared state.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(tie_to_parent);
    }
    command.spawn()
}

/// How a bounded wait for a child ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// The child exited.
    Exited(ExitStatus),
    /// The deadline passed first.
    TimedOut,
    /// The interrupt flag was raised first.
    Interrupted,
}

/// Waits for `child` to exit, until `deadline` or until `interrupt` is raised. The child is
/// left as it is on `TimedOut` and `Interrupted`.
pub(crate) fn wait_bounded(
    child: &mut Child,
    deadline: Instant,
    interrupt: &AtomicBool,
) -> io::Result<Waited> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Waited::Exited(status));
        }
        if interrupt.load(Ordering::Relaxed) {
            return Ok(Waited::Interrupted);
        }
        if Instant::now() >= deadline {
            return Ok(Waited::TimedOut);
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Kills and reaps `child`; errors mean it is already gone.
pub(crate) fn kill_and_reap(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// `Instant::now() + timeout`, or a point far enough away when that overflows.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

/// A new instance directory in the system's temporary directory, named after this process so
/// that a later run can tell when its owner is gone, and private to this user (mode 0700: it
/// holds the guest's device tree with its seeds). Directories of owners that died without
/// cleaning up (`SIGKILL`, a crash) are removed first.
pub(crate) fn instance_temp_dir() -> Result<TempDir, Error> {
    let base = temp_base();
    reclaim_stale_dirs(&base);
    tempfile::Builder::new()
        .prefix(&format!(
            "{TEMP_DIR_PREFIX}{}-",
            rustix::process::getpid().as_raw_nonzero()
        ))
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(Error::io("create a temporary directory"))
}

/// The system's temporary directory: `$TMPDIR`, or `/tmp` when that is unset or empty (an empty
/// `TMPDIR` would otherwise put the instance directories in the working directory).
fn temp_base() -> PathBuf {
    match std::env::var_os("TMPDIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/tmp"),
    }
}

/// Makes `fd` (a descriptor of this process, above 2) stay open, under the same number, in the
/// child `command` starts; it must stay open here until then. The child gets no other
/// descriptor of this process but its stdio.
#[allow(unsafe_code)]
pub(crate) fn pass_fd(command: &mut Command, fd: BorrowedFd<'_>) {
    let raw = fd.as_raw_fd();
    let clear_close_on_exec = move || {
        // SAFETY: `raw` is open here until the command is spawned (the caller's promise), so
        // it is open in the forked child, which has a copy of every descriptor; the borrow
        // ends with this call, which only changes its flags.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before exec and makes one raw system call
    // (fcntl) through rustix: async-signal-safe, no allocation, no lock.
    unsafe {
        command.pre_exec(clear_close_on_exec);
    }
}

/// Removes the instance directories in `base` whose owning process no longer exists. Any
/// failure (someone else's directory, a race with another run) is left alone.
fn reclaim_stale_dirs(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|name| owner_pid(name, TEMP_DIR_PREFIX))
        else {
            continue;
        };
        if !process_exists(owner) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The pid in a name `PREFIXPID-RANDOM`, such as an instance directory's `vmclient-PID-RANDOM`.
pub(crate) fn owner_pid(name: &str, prefix: &str) -> Option<Pid> {
    let (pid, _) = name.strip_prefix(prefix)?.split_once('-')?;
    Pid::from_raw(pid.parse().ok()?)
}

/// Whether a process `pid` exists (possibly another user's: then signalling it is refused).
pub(crate) fn process_exists(pid: Pid) -> bool {
    !matches!(rustix::process::test_kill_process(pid), Err(Errno::SRCH))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    fn sleeper() -> Child {
        spawn_tied_to_this_thread(Command::new("sleep").arg("1000").stdin(Stdio::null())).unwrap()
    }

    #[test]
    fn bounded_wait_gives_up_at_the_deadline_or_interrupt() {
        let mut child = sleeper();
        let never = AtomicBool::new(false);
        assert_eq!(
            wait_bounded(&mut child, Instant::now(), &never).unwrap(),
            Waited::TimedOut
        );
        let raised = AtomicBool::new(true);
        let later = Instant::now() + Duration::from_secs(3600);
        assert_eq!(
            wait_bounded(&mut child, later, &raised).unwrap(),
            Waited::Interrupted
        );
        kill_and_reap(&mut child);
        assert!(matches!(
            wait_bounded(&mut child, later, &never).unwrap(),
            Waited::Exited(_)
        ));
    }

    #[test]
    fn child_dies_with_the_thread_that_spawned_it() {
        let child = thread::spawn(sleeper).join().unwrap();
        let mut child = child;
        let never = AtomicBool::new(false);
        let later = Instant::now() + Duration::from_secs(60);
        let Waited::Exited(status) = wait_bounded(&mut child, later, &never).unwrap() else {
            panic!("the child outlived the thread that spawned it");
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }

    #[test]
    fn huge_deadlines_saturate() {
        assert!(deadline_after(Duration::MAX) > Instant::now() + Duration::from_secs(1 << 30));
    }

    #[test]
    fn owner_pid_parsing() {
        assert_eq!(
            owner_pid("vmclient-1234-abc", TEMP_DIR_PREFIX).map(Pid::as_raw_nonzero),
            std::num::NonZeroI32::new(1234)
        );
        assert_eq!(owner_pid("vmclient-abc", TEMP_DIR_PREFIX), None);
        assert_eq!(owner_pid("vmclient-0-abc", TEMP_DIR_PREFIX), None);
        assert_eq!(owner_pid("other-1234-abc", TEMP_DIR_PREFIX), None);
    }

    #[test]
    fn stale_dirs_of_dead_owners_are_reclaimed() {
        let base = tempfile::tempdir().unwrap();
        // A process that has exited and been reaped: its pid no longer exists.
        let mut child = Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let dead = base.path().join(format!("vmclient-{}-x", child.id()));
        let alive = base
            .path()
            .join(format!("vmclient-{}-y", std::process::id()));
        let unrelated = base.path().join("vmclient-z");
        for dir in [&dead, &alive, &unrelated] {
            fs::create_dir(dir).unwrap();
            fs::write(dir.join("file"), b"x").unwrap();
        }
        reclaim_stale_dirs(base.path());
        assert!(!dead.exists());
        assert!(alive.exists());
        assert!(unrelated.exists());
    }
}
