// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! What a newcomer sees first from `vm`: its name and version, and where `--gdb` waits.

mod common;

use common::{SPIN, assemble, require_qemu};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};

#[test]
fn version_names_the_vm_command() {
    let output = Command::new(env!("CARGO_BIN_EXE_vm"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("vm {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn gdb_says_where_it_waits_for_the_debugger() {
    require_qemu();
    let guest = assemble(SPIN);
    // A port nobody uses right now: bind to port 0, note the port, let it go.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut vm = Command::new(env!("CARGO_BIN_EXE_vm"))
        .args(["run", "--bootloader"])
        .arg(&guest.image)
        .args(["--gdb", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `vm` first says which accelerator it uses, then where it waits.
    let mut stderr = BufReader::new(vm.stderr.take().unwrap());
    let (mut accelerator_line, mut waiting_line) = (String::new(), String::new());
    stderr.read_line(&mut accelerator_line).unwrap();
    stderr.read_line(&mut waiting_line).unwrap();
    // The guest stays paused until a debugger comes: end the VM the way Ctrl-C would.
    let terminated = Command::new("kill")
        .args(["-TERM", &vm.id().to_string()])
        .status()
        .unwrap();
    let output = vm.wait_with_output().unwrap();
    assert!(terminated.success());
    assert!(
        accelerator_line.starts_with("vm: accelerator: "),
        "{accelerator_line}"
    );
    assert_eq!(
        waiting_line,
        format!("vm: waiting for a debugger on 127.0.0.1:{port} (target remote :{port})\n")
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "VM ended: Killed\n"
    );
    assert_eq!(output.status.code(), Some(128 + 15));
}
