// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The firmwares a user who wants to boot Linux in a VM would otherwise pick, Debian's U-Boot
//! and EDK2 for QEMU, booted on the machine `vm run` gives vmbase_linuxboot, straight from
//! QEMU: their instructions from reset to the kernel's first, and their Linux boots' wall time.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use vmbase_test_harness::STAND_IN_EFI_KERNEL_INSTRUCTIONS;

/// Debian's U-Boot for QEMU's `virt` (package u-boot-qemu), run from QEMU's flash.
const U_BOOT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
/// Debian's EDK2 for QEMU's `virt` (package qemu-efi-aarch64).
const EDK2: &str = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd";

/// Where U-Boot's `booti` finds the kernel and initrd: its own defaults, `kernel_addr_r` and
/// `ramdisk_addr_r`, where QEMU's loader puts them before U-Boot starts.
const U_BOOT_KERNEL_ADDRESS: u64 = 0x4040_0000;
const U_BOOT_INITRD_ADDRESS: u64 = 0x4400_0000;
/// U-Boot's environment for QEMU: at the start of the second flash bank, 256 KiB, behind a
/// CRC-32 of the rest.
const U_BOOT_ENV_SIZE: usize = 0x4_0000;
/// The size of a flash bank of QEMU's `virt`, which a `-drive if=pflash` file must have.
const FLASH_BANK_SIZE: usize = 64 << 20;

/// How long one peer boot may take before it counts as hung.
const TIMEOUT: Duration = Duration::from_secs(300);

/// A firmware that boots Linux.
#[derive(Clone, Copy)]
pub(crate) enum Peer {
    /// U-Boot, told by its environment to `booti` the kernel at once.
    UBoot,
    /// EDK2, which starts QEMU's `-kernel` as an EFI application.
    Edk2,
}

impl Peer {
    pub(crate) const ALL: [Peer; 2] = [Peer::UBoot, Peer::Edk2];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Peer::UBoot => "u-boot",
            Peer::Edk2 => "edk2",
        }
    }

    /// The Debian package and version, e.g. "u-boot-qemu 2023.01+dfsg-2+deb12u3".
    pub(crate) fn package(self) -> String {
        let package = match self {
            Peer::UBoot => "u-boot-qemu",
            Peer::Edk2 => "qemu-efi-aarch64",
        };
        let version = Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", package])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
            .unwrap_or_else(|| "?".to_owned());
        format!("{package} {version}")
    }

    /// Instructions the stand-in EFI kernel runs up to its `hvc` when this firmware enters it.
    pub(crate) fn kernel_instructions(self) -> u64 {
        match self {
            Peer::UBoot => STAND_IN_EFI_KERNEL_INSTRUCTIONS.0,
            Peer::Edk2 => STAND_IN_EFI_KERNEL_INSTRUCTIONS.1,
        }
    }

    /// QEMU's arguments that boot `kernel` (with `initrd` and Linux's command line `cmdline`,
    /// if given) through this firmware on `vm run`'s machine with `memory_mib` of guest RAM;
    /// files it needs go into `dir`.
    pub(crate) fn qemu_args(
        self,
        memory_mib: u32,
        kernel: &Path,
        initrd: Option<&Path>,
        cmdline: &str,
        dir: &Path,
    ) -> Result<Vec<OsString>> {
        let mut args = crate::vm_machine_args(memory_mib);
        match self {
            Peer::UBoot => {
                let ramdisk = match initrd {
                    Some(initrd) => format!(
                        "{U_BOOT_INITRD_ADDRESS:#x}:{:#x}",
                        fs::metadata(initrd)?.len()
                    ),
                    None => "-".to_owned(),
                };
                let environment = [
                    "bootdelay=0".to_owned(),
                    format!("bootargs={cmdline}"),
                    // `reset` only runs if booti returns, which it does when it fails: QEMU
                    // then exits (-no-reboot) rather than wait at U-Boot's prompt.
                    format!(
                        "bootcmd=booti {U_BOOT_KERNEL_ADDRESS:#x} {ramdisk} ${{fdtcontroladdr}}; \
                         reset"
                    ),
                ];
                let flash = dir.join("u-boot-env.img");
                fs::write(&flash, u_boot_env_flash(&environment)?)?;
                args.extend(["-bios".into(), U_BOOT.into(), "-drive".into()]);
                args.push(arg(&["if=pflash,unit=1,format=raw,file=", path(&flash)]));
                let mut load = |file: &Path, address: u64| {
                    args.push("-device".into());
                    args.push(arg(&[
                        "loader,file=",
                        path(file),
                        &format!(",addr={address:#x},force-raw=on"),
                    ]));
                };
                load(kernel, U_BOOT_KERNEL_ADDRESS);
                if let Some(initrd) = initrd {
                    load(initrd, U_BOOT_INITRD_ADDRESS);
                }
            }
            Peer::Edk2 => {
                args.extend(["-bios".into(), EDK2.into(), "-kernel".into(), kernel.into()]);
                if let Some(initrd) = initrd {
                    args.extend(["-initrd".into(), initrd.into()]);
                }
                args.extend(["-append".into(), cmdline.into()]);
            }
        }
        Ok(args)
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn arg(parts: &[&str]) -> OsString {
    parts.concat().into()
}

/// A flash bank holding a U-Boot environment of `variables` ("name=value"): a CRC-32 of the
/// environment's 256 KiB, then the variables, each NUL-terminated, an empty one last; the rest
/// of the bank erased (0xff).
fn u_boot_env_flash(variables: &[String]) -> Result<Vec<u8>> {
    let mut environment = Vec::new();
    for variable in variables {
        environment.extend_from_slice(variable.as_bytes());
        environment.push(0);
    }
    environment.push(0);
    if environment.len() > U_BOOT_ENV_SIZE - 4 {
        bail!(
            "U-Boot environment of {} bytes is too large",
            environment.len()
        );
    }
    environment.resize(U_BOOT_ENV_SIZE - 4, 0);
    let mut flash = crc32(&environment).to_le_bytes().to_vec();
    flash.extend_from_slice(&environment);
    flash.resize(FLASH_BANK_SIZE, 0xff);
    Ok(flash)
}

/// The CRC-32 of zlib and U-Boot (reflected polynomial 0xedb88320).
fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0_u32, |crc, &byte| {
        (0..8).fold(crc ^ u32::from(byte), |crc, _| {
            (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg())
        })
    })
}

/// A QEMU that is killed and reaped when dropped, so that an error never leaves one behind.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs QEMU with `args` under `-icount shift=0` until the guest powers off, and returns how
/// many instructions it executed: QEMU pauses at the `SHUTDOWN` event (`-no-shutdown`) and is
/// asked over QMP, as the launcher does. The console goes to `console`.
pub(crate) fn count_instructions(args: &[OsString], dir: &Path, console: &Path) -> Result<u64> {
    let socket = dir.join("qmp.sock");
    let _ = fs::remove_file(&socket);
    let mut qemu = Qemu(
        Command::new("qemu-system-aarch64")
            .args(args)
            .args(["-icount", "shift=0,sleep=off", "-no-shutdown", "-serial"])
            .arg(arg(&["file:", path(console)]))
            .arg("-qmp")
            // QEMU waits for this connection before it starts the guest.
            .arg(arg(&["unix:", path(&socket), ",server=on,wait=on"]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("start qemu-system-aarch64")?,
    );
    let deadline = Instant::now() + TIMEOUT;
    let stream = loop {
        match UnixStream::connect(&socket) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline && qemu.0.try_wait()?.is_none() => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(error) => {
                let mut stderr = String::new();
                if let Some(mut pipe) = qemu.0.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                bail!("QEMU's QMP socket: {error}; QEMU said: {stderr}");
            }
        }
    };
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut next = || -> Result<Value> {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            bail!("QEMU closed its monitor; console: {}", console.display());
        }
        Ok(serde_json::from_str(&line)?)
    };
    next()?; // The greeting.
    writer.write_all(b"{\"execute\": \"qmp_capabilities\"}\n")?;
    while next()?.get("return").is_none() {}
    loop {
        let message = next()?;
        if message["event"] == "SHUTDOWN" {
            if message["data"]["reason"] != "guest-shutdown" {
                bail!(
                    "the guest ended with {message}; console: {}",
                    console.display()
                );
            }
            break;
        }
    }
    writer.write_all(b"{\"execute\": \"query-replay\"}\n")?;
    let count = loop {
        if let Some(count) = next()?.get("return") {
            break count["icount"]
                .as_u64()
                .context("query-replay gave no icount")?;
        }
    };
    writer.write_all(b"{\"execute\": \"quit\"}\n")?;
    qemu.0.wait()?;
    Ok(count)
}

/// The peers' firmware files, or an error saying how to install them.
pub(crate) fn check_installed() -> Result<()> {
    for firmware in [U_BOOT, EDK2] {
        if !Path::new(firmware).is_file() {
            bail!("no {firmware}: run make peer-deps");
        }
    }
    Ok(())
}

/// `qemu-system-aarch64 args`, the console written to `console`.
pub(crate) fn bare_qemu(args: &[OsString], console: &Path) -> Command {
    let mut command = Command::new("qemu-system-aarch64");
    command
        .args(args)
        .arg("-serial")
        .arg(arg(&["file:", path(console)]));
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn u_boot_environment_is_checksummed_and_terminated() {
        let flash = u_boot_env_flash(&["bootdelay=0".to_owned(), "bootcmd=x".to_owned()]).unwrap();
        assert_eq!(flash.len(), FLASH_BANK_SIZE);
        let (crc, environment) = flash[..U_BOOT_ENV_SIZE].split_at(4);
        assert_eq!(crc, crc32(environment).to_le_bytes());
        assert!(environment.starts_with(b"bootdelay=0\0bootcmd=x\0\0"));
        assert!(flash[U_BOOT_ENV_SIZE..].iter().all(|&byte| byte == 0xff));
    }

    #[test]
    fn oversized_u_boot_environment_is_refused() {
        assert!(u_boot_env_flash(&["x".repeat(U_BOOT_ENV_SIZE)]).is_err());
    }
}
