// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Checks that a `VmInstance` never leaves QEMU processes or temporary directories behind.
//!
//! These tests count this process's children and the `vmclient-PID-*` entries of the temporary
//! directory that name this process (other programs' VMs may come and go meanwhile), so they take
//! a lock and run one at a time.

mod common;

use common::{HELLO, RESET, SPIN, assemble, children_of_this_process, require_qemu, send_signal};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use vmclient::{DeathReason, VirtualMachineRawConfig, VmInstance};

static SERIAL: Mutex<()> = Mutex::new(());

const NO_PROCESSES: [u32; 0] = [];

fn serialize() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The temporary directories of this process's VMs (`vmclient-PID-*`).
fn vmclient_temp_dirs() -> BTreeSet<PathBuf> {
    let prefix = format!("vmclient-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
        .collect()
}

/// Checks that no `vmclient-*` directory appeared since `before` was taken. (Some of `before`
/// may be gone: `create` reclaims the directories of processes that died without cleaning up.)
fn assert_no_new_temp_dirs(before: &BTreeSet<PathBuf>) {
    let new: Vec<_> = vmclient_temp_dirs().difference(before).cloned().collect();
    assert_eq!(
        new,
        Vec::<PathBuf>::new(),
        "temporary directories left behind"
    );
}

fn config(image: PathBuf) -> VirtualMachineRawConfig {
    VirtualMachineRawConfig {
        bootloader: Some(image),
        memory_mib: 16,
        ..Default::default()
    }
}

/// The one QEMU child of this process.
fn qemu_pid() -> u32 {
    let children = children_of_this_process();
    assert_eq!(
        children.len(),
        1,
        "expected exactly one QEMU child: {children:?}"
    );
    children[0]
}

#[test]
fn dropping_a_running_vm_kills_qemu_and_removes_its_files() {
    require_qemu();
    let _serial = serialize();
    let guest = assemble(SPIN);
    let dirs_before = vmclient_temp_dirs();
    assert_eq!(children_of_this_process(), NO_PROCESSES);

    let mut vm = VmInstance::create(&config(guest.image.clone()), None, None).unwrap();
    let new_dirs: Vec<_> = vmclient_temp_dirs()
        .difference(&dirs_before)
        .cloned()
        .collect();
    assert_eq!(new_dirs.len(), 1, "create makes one temporary directory");
    assert_eq!(
        children_of_this_process(),
        NO_PROCESSES,
        "create leaves no process (the DTB dump ended)"
    );
    vm.start().unwrap();
    let qemu = qemu_pid();
    assert_eq!(
        vm.wait_for_death_with_timeout(Duration::from_millis(200)),
        None
    );

    drop(vm);
    assert_eq!(
        children_of_this_process(),
        NO_PROCESSES,
        "QEMU is killed and reaped"
    );
    assert!(!PathBuf::from(format!("/proc/{qemu}")).exists());
    assert!(!new_dirs[0].exists(), "the temporary directory is removed");
}

#[test]
fn nothing_is_left_after_shutdown_kill_or_unstarted_drop() {
    require_qemu();
    let _serial = serialize();
    let dirs_before = vmclient_temp_dirs();
    let hello = assemble(HELLO);
    let spin = assemble(SPIN);

    let mut vm = VmInstance::create(&config(hello.image.clone()), None, None).unwrap();
    vm.start().unwrap();
    assert_eq!(vm.wait_for_death(), DeathReason::Shutdown);
    assert_eq!(
        children_of_this_process(),
        NO_PROCESSES,
        "a dead VM's QEMU is reaped at once"
    );
    drop(vm);

    let mut vm = VmInstance::create(&config(spin.image.clone()), None, None).unwrap();
    vm.start().unwrap();
    assert_eq!(vm.kill(), DeathReason::Killed);
    assert_eq!(children_of_this_process(), NO_PROCESSES);
    drop(vm);

    drop(VmInstance::create(&config(hello.image.clone()), None, None).unwrap());

    let too_small = VirtualMachineRawConfig {
        memory_mib: 1,
        ..config(hello.image.clone())
    };
    assert!(VmInstance::create(&too_small, None, None).is_err());

    assert_no_new_temp_dirs(&dirs_before);
    assert_eq!(children_of_this_process(), NO_PROCESSES);
}

#[test]
fn qemu_dying_without_shutdown_event_is_a_crash() {
    require_qemu();
    let _serial = serialize();
    let guest = assemble(SPIN);
    let mut vm = VmInstance::create(&config(guest.image.clone()), None, None).unwrap();
    vm.start().unwrap();
    send_signal("-SEGV", qemu_pid());
    assert_eq!(
        vm.wait_for_death_with_timeout(Duration::from_secs(20)),
        Some(DeathReason::Crash)
    );
    assert_eq!(children_of_this_process(), NO_PROCESSES);
}

#[test]
fn qemu_killed_by_someone_else_is_killed() {
    require_qemu();
    let _serial = serialize();
    let guest = assemble(SPIN);
    for signal in ["-TERM", "-KILL"] {
        let mut vm = VmInstance::create(&config(guest.image.clone()), None, None).unwrap();
        vm.start().unwrap();
        send_signal(signal, qemu_pid());
        let reason = vm.wait_for_death_with_timeout(Duration::from_secs(20));
        assert_eq!(reason, Some(DeathReason::Killed), "after kill {signal}");
    }
}

#[test]
fn icount_vms_leave_nothing_behind() {
    require_qemu();
    let _serial = serialize();
    let dirs_before = vmclient_temp_dirs();
    let counted = |image| VirtualMachineRawConfig {
        icount_shift: Some(0),
        ..config(image)
    };
    // QEMU pauses at the guest's shutdown or reset until it is told to quit.
    for (guest, expected) in [
        (assemble(HELLO), DeathReason::Shutdown),
        (assemble(RESET), DeathReason::Reboot),
    ] {
        let mut vm = VmInstance::create(&counted(guest.image.clone()), None, None).unwrap();
        vm.start().unwrap();
        assert_eq!(vm.wait_for_death(), expected);
        assert!(vm.instructions_executed().is_some());
        assert_eq!(children_of_this_process(), NO_PROCESSES);
    }

    // Killed, crashed or killed by someone else: no count, no hang, nothing left.
    let spin = assemble(SPIN);
    let mut vm = VmInstance::create(&counted(spin.image.clone()), None, None).unwrap();
    vm.start().unwrap();
    assert_eq!(vm.kill(), DeathReason::Killed);
    assert_eq!(vm.instructions_executed(), None);
    assert_eq!(children_of_this_process(), NO_PROCESSES);
    drop(vm);
    for (signal, expected) in [
        ("-TERM", DeathReason::Killed),
        ("-KILL", DeathReason::Killed),
        ("-SEGV", DeathReason::Crash),
    ] {
        let mut vm = VmInstance::create(&counted(spin.image.clone()), None, None).unwrap();
        vm.start().unwrap();
        send_signal(signal, qemu_pid());
        let reason = vm.wait_for_death_with_timeout(Duration::from_secs(20));
        assert_eq!(reason, Some(expected), "after kill {signal}");
        assert_eq!(vm.instructions_executed(), None);
        assert_eq!(children_of_this_process(), NO_PROCESSES);
    }

    assert_no_new_temp_dirs(&dirs_before);
}

/// QEMU dies with the process that started it, but not with the thread: a VM started from a
/// thread that has ended keeps running until it is killed.
#[test]
fn a_vm_outlives_the_thread_that_started_it() {
    require_qemu();
    let _serial = serialize();
    let guest = assemble(SPIN);
    let mut vm = std::thread::spawn(move || {
        let mut vm = VmInstance::create(&config(guest.image.clone()), None, None).unwrap();
        vm.start().unwrap();
        vm
    })
    .join()
    .unwrap();
    let qemu = qemu_pid();
    assert_eq!(
        vm.wait_for_death_with_timeout(Duration::from_millis(500)),
        None,
        "QEMU died with the thread that started it"
    );
    assert!(PathBuf::from(format!("/proc/{qemu}")).exists());
    assert_eq!(vm.kill(), DeathReason::Killed);
    assert_eq!(children_of_this_process(), NO_PROCESSES);
}
