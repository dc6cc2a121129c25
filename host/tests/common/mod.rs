// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Test helpers: tiny aarch64 guests assembled with clang, and a look at this process's children.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// Routines appended to every guest. Calling convention: `bl` with arguments in x5; they clobber
/// x0 and x5–x8, never x1–x4, so a guest can still inspect its entry registers after printing.
const GUEST_LIBRARY: &str = r#"
    .balign 4                  // after the body's strings
// Writes the NUL-terminated string at x5 to QEMU's PL011 data register (UARTDR, offset 0).
puts:
    movz x6, #0x0900, lsl #16
1:  ldrb w7, [x5], #1
    cbz w7, 2f
    str w7, [x6]
    b 1b
2:  ret

// Writes x5 as 16 hexadecimal digits to the PL011; also clobbers x8.
put_hex:
    movz x6, #0x0900, lsl #16
    mov x7, #60                // shift of the most significant digit
1:  lsr x8, x5, x7
    and x8, x8, #0xf
    cmp x8, #10
    add x8, x8, #'0'
    b.lo 2f
    add x8, x8, #('a' - '0' - 10)
2:  str w8, [x6]
    subs x7, x7, #4
    b.pl 1b
    ret

// PSCI SYSTEM_OFF (function 0x8400_0008) over the hvc conduit.
system_off:
    movz w0, #0x0008
    movk w0, #0x8400, lsl #16
    hvc #0
    b .

// PSCI SYSTEM_RESET (function 0x8400_0009) over the hvc conduit.
system_reset:
    movz w0, #0x0009
    movk w0, #0x8400, lsl #16
    hvc #0
    b .
"#;

/// Prints "hello\n" and powers off.
pub const HELLO: &str = r#"
    adr x5, hello
    bl puts
    b system_off
hello: .asciz "hello\n"
"#;

/// Resets: what a vmbase guest does when it fails.
pub const RESET: &str = "    b system_reset\n";

/// Never stops.
pub const SPIN: &str = "    b .\n";

/// Checks crosvm's entry state: x0 = 0x8000_0000 holding a device tree (magic 0xd00dfeed,
/// totalsize at most 2 MiB) and x1–x3 = 0. Powers off if all holds, resets otherwise.
pub const CHECK_ENTRY_STATE: &str = r#"
    movz x9, #0x8000, lsl #16
    cmp x0, x9
    b.ne bad
    cbnz x1, bad
    cbnz x2, bad
    cbnz x3, bad
    ldr w10, [x0]              // fdt_header.magic, big-endian
    rev w10, w10
    movz w11, #0xfeed
    movk w11, #0xd00d, lsl #16
    cmp w10, w11
    b.ne bad
    ldr w10, [x0, #4]          // fdt_header.totalsize, big-endian
    rev w10, w10
    movz w11, #0x20, lsl #16   // 2 MiB
    cmp w10, w11
    b.hi bad
    adr x5, good_message
    bl puts
    b system_off
bad:
    adr x5, bad_message
    bl puts
    b system_reset
good_message: .asciz "entry state ok\n"
bad_message: .asciz "bad entry state\n"
"#;

/// A VM firmware for tests: prints the registers it was entered with as
/// `firmware: x0=… x1=… x2=… x3=…` (16 hex digits each), then enters the payload at `x1` as
/// Linux's arm64 boot protocol asks, with `x0` kept and `x1`–`x3` = 0.
pub const REGISTER_PRINTING_FIRMWARE: &str = r#"
    mov x9, x0
    mov x10, x1
    mov x11, x2
    mov x12, x3
    adr x5, x0_label
    bl puts
    mov x5, x9
    bl put_hex
    adr x5, x1_label
    bl puts
    mov x5, x10
    bl put_hex
    adr x5, x2_label
    bl puts
    mov x5, x11
    bl put_hex
    adr x5, x3_label
    bl puts
    mov x5, x12
    bl put_hex
    adr x5, newline
    bl puts
    mov x0, x9
    mov x1, xzr
    mov x2, xzr
    mov x3, xzr
    br x10
x0_label: .asciz "firmware: x0="
x1_label: .asciz " x1="
x2_label: .asciz " x2="
x3_label: .asciz " x3="
newline: .asciz "\n"
"#;

/// A raw guest image in its own temporary directory.
pub struct Guest {
    pub dir: TempDir,
    pub image: PathBuf,
}

/// Assembles `body` (entered at its first instruction) plus the guest library into a raw image.
pub fn assemble(body: &str) -> Guest {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("guest.S");
    let object = dir.path().join("guest.o");
    let image = dir.path().join("guest.bin");
    fs::write(&source, format!("{body}\n{GUEST_LIBRARY}")).unwrap();
    run(
        "clang (apt-get install clang)",
        Command::new("clang")
            .args(["--target=aarch64-none-elf", "-c", "-o"])
            .arg(&object)
            .arg(&source),
    );
    run(
        "llvm-objcopy (apt-get install llvm)",
        Command::new("llvm-objcopy")
            .args(["-O", "binary", "-j", ".text"])
            .arg(&object)
            .arg(&image),
    );
    Guest { dir, image }
}

fn run(tool: &str, command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {tool}: {error}"));
    assert!(
        output.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Fails loudly when QEMU is missing: these tests must never pass by skipping the boot.
pub fn require_qemu() {
    let found = Command::new("qemu-system-aarch64")
        .arg("--version")
        .output();
    assert!(
        found.is_ok_and(|output| output.status.success()),
        "qemu-system-aarch64 is needed by these tests: apt-get install qemu-system-arm"
    );
}

/// Sends `signal` (e.g. "-TERM") to `pid` with kill(1).
pub fn send_signal(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// Processes with `needle` as an argument (or as `guest=NEEDLE`, QEMU's `-name`), as (pid,
/// parent pid).
pub fn processes_with_argument(needle: &str) -> Vec<(u32, u32)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        // QEMU gets a VM's name as `-name guest=NAME`.
        let matches = cmdline.split(|&byte| byte == 0).any(|arg| {
            arg == needle.as_bytes() || arg.strip_prefix(b"guest=") == Some(needle.as_bytes())
        });
        if matches && let Some(parent) = parent_pid(&entry.path()) {
            found.push((pid, parent));
        }
    }
    found
}

/// The children of this test process, as pids.
pub fn children_of_this_process() -> Vec<u32> {
    let me = std::process::id();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            (parent_pid(&entry.path())? == me).then_some(pid)
        })
        .collect()
}

/// The parent pid from `/proc/PID/stat`, whose second field (the name) may hold spaces.
fn parent_pid(process: &Path) -> Option<u32> {
    let stat = fs::read_to_string(process.join("stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

pub mod linux;
