// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Boots tiny hand-written guests through the library API under QEMU.

mod common;

use common::{CHECK_ENTRY_STATE, Guest, HELLO, RESET, SPIN, assemble, require_qemu};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vmclient::{DeathReason, DiskImage, Error, VirtualMachineRawConfig, VmInstance};

/// Far more than any of these guests needs under TCG, so a hang fails instead of blocking.
const BOOT_TIMEOUT: Duration = Duration::from_secs(20);

fn config(guest: &Guest) -> VirtualMachineRawConfig {
    VirtualMachineRawConfig {
        name: "vmclient-boot-test".to_owned(),
        bootloader: Some(guest.image.clone()),
        memory_mib: 16,
        ..Default::default()
    }
}

/// Boots `config` and returns the death reason (`Killed` if the guest outlives the timeout) and
/// the console output.
fn boot(config: &VirtualMachineRawConfig) -> (DeathReason, String) {
    require_qemu();
    let boot = vmbase_test_harness::boot(config, BOOT_TIMEOUT).unwrap();
    (boot.reason, boot.console)
}

/// A boot through the library: the guest, how its config differs from [`config`]'s, and how
/// the VM must end and what its console must say.
struct Boot {
    name: &'static str,
    /// Assembly, joined: the guest's body.
    guest: &'static [&'static str],
    /// Changes the config; gets the guest's directory, for files of its own.
    change: fn(&mut VirtualMachineRawConfig, &Path),
    reason: DeathReason,
    console: &'static str,
}

const BOOTS: &[Boot] = &[
    Boot {
        name: "SYSTEM_OFF is Shutdown and the console is captured",
        guest: &[HELLO],
        change: |_, _| {},
        reason: DeathReason::Shutdown,
        console: "hello\n",
    },
    Boot {
        name: "SYSTEM_RESET is Reboot",
        guest: &[RESET],
        change: |_, _| {},
        reason: DeathReason::Reboot,
        console: "",
    },
    Boot {
        name: "the guest gets crosvm's entry state and device tree",
        guest: &[CHECK_ENTRY_STATE],
        change: |_, _| {},
        reason: DeathReason::Shutdown,
        console: "entry state ok\n",
    },
    // The check guest, entered one instruction late (x0 cleared), must reset: the row above
    // would otherwise prove nothing.
    Boot {
        name: "the entry state check can fail",
        guest: &["    mov x0, xzr\n", CHECK_ENTRY_STATE],
        change: |_, _| {},
        reason: DeathReason::Reboot,
        console: "bad entry state\n",
    },
    // A secondary running the image too would print twice.
    Boot {
        name: "secondary CPUs stay off",
        guest: &[HELLO],
        change: |config, _| config.num_cpus = 2,
        reason: DeathReason::Shutdown,
        console: "hello\n",
    },
    Boot {
        name: "an icount boot",
        guest: &[HELLO],
        change: |config, _| config.icount_shift = Some(2),
        reason: DeathReason::Shutdown,
        console: "hello\n",
    },
    // A comma in a path must be escaped on QEMU's command line.
    Boot {
        name: "disks are attached",
        guest: &[HELLO],
        change: |config, dir| {
            for (name, writable) in [("ro,1.img", false), ("rw.img", true)] {
                let image = dir.join(name);
                fs::write(&image, vec![0; 64 * 1024]).unwrap();
                config.disks.push(DiskImage { image, writable });
            }
        },
        reason: DeathReason::Shutdown,
        console: "hello\n",
    },
    Boot {
        name: "params and large memory",
        guest: &[CHECK_ENTRY_STATE],
        change: |config, _| {
            config.params = Some("console=ttyAMA0".to_owned());
            config.memory_mib = 2048;
        },
        reason: DeathReason::Shutdown,
        console: "entry state ok\n",
    },
];

#[test]
fn guests_end_as_their_config_and_code_say() {
    // Concurrently: each row is a VM of its own.
    std::thread::scope(|scope| {
        for row in BOOTS {
            scope.spawn(move || {
                let guest = assemble(&row.guest.concat());
                let mut config = config(&guest);
                (row.change)(&mut config, guest.dir.path());
                assert_eq!(
                    boot(&config),
                    (row.reason, row.console.to_owned()),
                    "{}",
                    row.name
                );
            });
        }
    });
}

#[test]
fn spinning_guest_is_killed() {
    require_qemu();
    let guest = assemble(SPIN);
    let mut vm = VmInstance::create(&config(&guest), None, None).unwrap();
    vm.start().unwrap();
    assert_eq!(
        vm.wait_for_death_with_timeout(Duration::from_millis(300)),
        None
    );
    assert_eq!(vm.kill(), DeathReason::Killed);
    assert_eq!(vm.wait_for_death(), DeathReason::Killed);
    assert_eq!(
        vm.wait_for_death_with_timeout(Duration::ZERO),
        Some(DeathReason::Killed)
    );
}

#[test]
fn killing_a_dead_vm_keeps_its_reason() {
    require_qemu();
    let guest = assemble(HELLO);
    let mut vm = VmInstance::create(&config(&guest), None, None).unwrap();
    vm.start().unwrap();
    assert_eq!(vm.wait_for_death(), DeathReason::Shutdown);
    assert_eq!(vm.kill(), DeathReason::Shutdown);
}

#[test]
fn start_twice_is_refused() {
    require_qemu();
    let guest = assemble(SPIN);
    let mut vm = VmInstance::create(&config(&guest), None, None).unwrap();
    vm.start().unwrap();
    assert!(matches!(vm.start(), Err(Error::AlreadyStarted)));
}

#[test]
fn unstarted_vm_reports_start_failed() {
    require_qemu();
    let guest = assemble(HELLO);
    let mut vm = VmInstance::create(&config(&guest), None, None).unwrap();
    assert_eq!(vm.wait_for_death(), DeathReason::StartFailed);
}

/// Boots `config` to its end and returns the death reason and the instruction count.
fn boot_counting(config: &VirtualMachineRawConfig) -> (DeathReason, Option<u64>) {
    require_qemu();
    let mut vm = VmInstance::create(config, None, None).unwrap();
    vm.start().unwrap();
    assert_eq!(vm.instructions_executed(), None, "nothing counted yet");
    let reason = vm
        .wait_for_death_with_timeout(BOOT_TIMEOUT)
        .expect("the guest did not stop");
    (reason, vm.instructions_executed())
}

/// Instructions from reset to the `hvc` of `system_off`/`system_reset`, both included: the
/// boot stub's 6, then the guest's.
const BOOT_STUB_INSTRUCTIONS: u64 = 6;

#[test]
fn icount_counts_instructions_exactly_and_deterministically() {
    let guest = assemble(HELLO);
    let counted = |shift| VirtualMachineRawConfig {
        icount_shift: Some(shift),
        ..config(&guest)
    };
    let first = boot_counting(&counted(0));
    let second = boot_counting(&counted(0));
    assert_eq!(first.0, DeathReason::Shutdown);
    assert!(first.1.is_some_and(|count| count > 0), "{first:?}");
    assert_eq!(first, second, "the same guest runs the same instructions");
    // adr, bl; puts: movz, 4 per character of "hello\n", ldrb and cbz on the NUL, ret; then b,
    // and system_off's movz, movk, hvc.
    assert_eq!(
        first.1,
        Some(BOOT_STUB_INSTRUCTIONS + 2 + 1 + 6 * 4 + 2 + 1 + 1 + 3)
    );
    // The shift sets how long an instruction takes, not how many run.
    assert_eq!(boot_counting(&counted(3)), first);
}

#[test]
fn icount_counts_a_reset() {
    let guest = assemble(RESET);
    let config = VirtualMachineRawConfig {
        icount_shift: Some(0),
        ..config(&guest)
    };
    // b system_reset; movz, movk, hvc.
    assert_eq!(
        boot_counting(&config),
        (DeathReason::Reboot, Some(BOOT_STUB_INSTRUCTIONS + 1 + 3))
    );
}

#[test]
fn instructions_are_unknown_without_icount_or_guest_end() {
    let hello = assemble(HELLO);
    assert_eq!(
        boot_counting(&config(&hello)),
        (DeathReason::Shutdown, None)
    );

    let spin = assemble(SPIN);
    let config = VirtualMachineRawConfig {
        icount_shift: Some(0),
        ..config(&spin)
    };
    let mut vm = VmInstance::create(&config, None, None).unwrap();
    vm.start().unwrap();
    assert_eq!(
        vm.wait_for_death_with_timeout(Duration::from_millis(300)),
        None
    );
    assert_eq!(vm.instructions_executed(), None);
    assert_eq!(vm.kill(), DeathReason::Killed);
    assert_eq!(vm.instructions_executed(), None);
}

/// Sends one GDB remote-protocol packet.
fn send_gdb_packet(stream: &mut TcpStream, packet: &str) {
    let checksum = packet.bytes().fold(0u8, |sum, byte| sum.wrapping_add(byte));
    write!(stream, "${packet}#{checksum:02x}").unwrap();
}

/// Starts `guest` paused for a debugger on a free port, with its console to `console`;
/// returns the VM and the port.
fn start_for_gdb(guest: &Guest, console: Option<File>) -> (VmInstance, u16) {
    require_qemu();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = VirtualMachineRawConfig {
        gdb_port: Some(port),
        ..config(guest)
    };
    let mut vm = VmInstance::create(&config, console, None).unwrap();
    vm.start().unwrap();
    (vm, port)
}

#[test]
fn gdb_holds_the_guest_until_the_debugger_continues() {
    let guest = assemble(HELLO);
    let console_path = guest.dir.path().join("console.txt");
    let (mut vm, port) = start_for_gdb(&guest, Some(File::create(&console_path).unwrap()));
    assert_eq!(
        vm.wait_for_death_with_timeout(Duration::from_millis(300)),
        None
    );
    assert_eq!(fs::read_to_string(&console_path).unwrap(), "");

    let mut debugger = TcpStream::connect(("127.0.0.1", port)).unwrap();
    send_gdb_packet(&mut debugger, "c");
    let mut ack = [0];
    debugger.read_exact(&mut ack).unwrap();
    assert_eq!(&ack, b"+");
    assert_eq!(
        vm.wait_for_death_with_timeout(BOOT_TIMEOUT),
        Some(DeathReason::Shutdown)
    );
    assert_eq!(fs::read_to_string(&console_path).unwrap(), "hello\n");
}

/// A config for `guest` that cannot start: its writable disk is locked by another running VM,
/// which is returned too and must be kept alive. QEMU says why it failed.
fn config_with_locked_disk(guest: &Guest) -> (VmInstance, VirtualMachineRawConfig) {
    let image = guest.dir.path().join("shared.img");
    fs::write(&image, vec![0; 4096]).unwrap();
    let disk = DiskImage {
        image,
        writable: true,
    };
    let spinner = assemble(SPIN);
    let holder_config = VirtualMachineRawConfig {
        disks: vec![disk.clone()],
        ..config(&spinner)
    };
    let mut holder = VmInstance::create(&holder_config, None, None).unwrap();
    holder.start().unwrap();
    let config = VirtualMachineRawConfig {
        disks: vec![disk],
        ..config(guest)
    };
    (holder, config)
}

#[test]
fn log_gets_qemu_messages_and_the_error_quotes_them() {
    require_qemu();
    let guest = assemble(HELLO);
    let log_path = guest.dir.path().join("log.txt");
    let (_holder, config) = config_with_locked_disk(&guest);
    let log = File::create(&log_path).unwrap();
    let mut vm = VmInstance::create(&config, None, Some(log)).unwrap();
    let error = vm.start().unwrap_err();
    assert!(
        matches!(
            error,
            Error::QemuFailed {
                action: "start the VM",
                ..
            }
        ),
        "{error}"
    );
    // QEMU's message is in the error too, not only in the log.
    assert!(
        error.to_string().contains("Failed to get \"write\" lock"),
        "{error}"
    );
    assert_eq!(vm.wait_for_death(), DeathReason::StartFailed);
    let log = fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("Failed to get \"write\" lock"), "{log}");
}

#[test]
fn start_failure_without_log_quotes_qemu() {
    require_qemu();
    let guest = assemble(HELLO);
    let (_holder, config) = config_with_locked_disk(&guest);
    let mut vm = VmInstance::create(&config, None, None).unwrap();
    let error = vm.start().unwrap_err().to_string();
    assert!(error.contains("Failed to get \"write\" lock"), "{error}");
}

#[test]
fn missing_image_is_refused_before_qemu_runs() {
    let config = VirtualMachineRawConfig {
        bootloader: Some(PathBuf::from("/nonexistent/guest.bin")),
        ..Default::default()
    };
    let error = VmInstance::create(&config, None, None).err().unwrap();
    assert!(matches!(error, Error::ImageUnreadable { .. }), "{error}");
}

#[test]
fn a_debuggers_kill_is_killed() {
    let (mut vm, port) = start_for_gdb(&assemble(SPIN), None);
    let mut debugger = TcpStream::connect(("127.0.0.1", port)).unwrap();
    send_gdb_packet(&mut debugger, "k");
    assert_eq!(
        vm.wait_for_death_with_timeout(BOOT_TIMEOUT),
        Some(DeathReason::Killed)
    );
}

#[test]
fn console_write_errors_are_reported() {
    require_qemu();
    let guest = assemble(HELLO);
    let full = File::options().write(true).open("/dev/full").unwrap();
    let mut vm = VmInstance::create(&config(&guest), Some(full), None).unwrap();
    vm.start().unwrap();
    assert_eq!(
        vm.wait_for_death_with_timeout(BOOT_TIMEOUT),
        Some(DeathReason::Shutdown)
    );
    let error = vm
        .output_error()
        .expect("the console write error is reported");
    assert_eq!(
        error.to_string(),
        "cannot write the VM's console: No space left on device (os error 28)"
    );
}

/// Prints the device tree it was given (x0), byte by byte in hex, then powers off.
const PRINT_DEVICE_TREE: &str = r#"
    mov x9, x0
    ldr w10, [x9, #4]          // fdt_header.totalsize, big-endian
    rev w10, w10
    add x10, x9, x10
    adr x11, hex_digits
    movz x6, #0x0900, lsl #16  // PL011 data register
1:  cmp x9, x10
    b.hs 2f
    ldrb w7, [x9], #1
    lsr w12, w7, #4
    ldrb w12, [x11, x12]
    str w12, [x6]
    and w12, w7, #0xf
    ldrb w12, [x11, x12]
    str w12, [x6]
    b 1b
2:  b system_off
hex_digits: .ascii "0123456789abcdef"
"#;

/// The `/chosen/kaslr-seed` and `rng-seed` a booted guest saw.
fn seeds_seen_by_a_guest(guest: &Guest) -> Vec<Vec<u8>> {
    let (reason, console) = boot(&config(guest));
    assert_eq!(reason, DeathReason::Shutdown);
    let dtb: Vec<u8> = (0..console.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&console[index..index + 2], 16).unwrap())
        .collect();
    let fdt = fdt::Fdt::new(&dtb).unwrap();
    let chosen = fdt.find_node("/chosen").unwrap();
    ["kaslr-seed", "rng-seed"]
        .iter()
        .map(|name| chosen.property(name).unwrap().value.to_vec())
        .collect()
}

#[test]
fn every_boot_gets_fresh_seeds() {
    let guest = assemble(PRINT_DEVICE_TREE);
    let first = seeds_seen_by_a_guest(&guest);
    let second = seeds_seen_by_a_guest(&guest);
    assert_eq!(first[0].len(), 8);
    assert!(first[1].len() >= 32);
    assert_ne!(first[0], second[0]);
    assert_ne!(first[1], second[1]);
}
