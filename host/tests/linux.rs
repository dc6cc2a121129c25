// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Boots Debian's real arm64 kernel with a busybox initramfs: directly, through a test firmware
//! that prints its registers, and through vmbase_linuxboot, which must also refuse hostile
//! payloads, each with its one-line reason and a reset.

mod common;

use common::linux::{
    LINUX_MEMORY_MIB, LinuxBoot, debian_kernel, expected_init_report, init_report,
};
use common::{REGISTER_PRINTING_FIRMWARE, assemble};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use vmbase_test_harness::{compiled_device_tree, guest_image, stand_in_kernel};
use vmclient::DeathReason;

/// The command line the tests give; the kernel's starts with `panic=-1`, as under crosvm.
const PARAMS: &str = "vmbase.test=linux";

/// What init reports about `/chosen` seeds. Both were in the tree; Linux consumes them early:
/// it zeroes `kaslr-seed` in place but deletes `rng-seed`, so only the first is still visible.
const SEED_REPORT: [&str; 2] = ["kaslr-seed: present", "rng-seed: absent"];

/// What init reports before the device tree's size.
const FDT_BYTES: &str = "fdt bytes: ";

/// The device tree's address in these boots: 2 MiB + 64 KiB below the end of RAM.
const FDT_ADDRESS: u64 = 0x8000_0000 + ((LINUX_MEMORY_MIB as u64) << 20) - (2 << 20) - 0x1_0000;

/// Bytes of `/chosen/rng-seed`: the host's (QEMU's size) and vmbase_linuxboot's.
const HOST_RNG_SEED_BYTES: usize = 32;
const FIRMWARE_RNG_SEED_BYTES: usize = 64;

/// Asserts the kernel's own banner, init's report and a clean power-off; returns the size of
/// the device tree the kernel was given, as init read it from `/sys/firmware/fdt`.
fn assert_linux_ran(reason: DeathReason, console: &str) -> usize {
    assert_linux_ran_with(LINUX_MEMORY_MIB, reason, console)
}

/// [`assert_linux_ran`] in a VM of `memory_mib`.
fn assert_linux_ran_with(memory_mib: u32, reason: DeathReason, console: &str) -> usize {
    assert!(
        console.contains("Linux version "),
        "no kernel banner:\n{console}"
    );
    let mut expected = expected_init_report(&format!("panic=-1 {PARAMS}"), memory_mib);
    expected.extend(SEED_REPORT.map(str::to_owned));
    let report = init_report(console);
    let (fdt_bytes, rest) = report.split_last().expect("init printed nothing");
    assert_eq!(rest, expected, "{console}");
    assert_eq!(reason, DeathReason::Shutdown, "{console}");
    fdt_bytes
        .strip_prefix(FDT_BYTES)
        .and_then(|bytes| bytes.parse().ok())
        .unwrap_or_else(|| panic!("no device tree size from init: {fdt_bytes:?}\n{console}"))
}

#[test]
fn debian_kernel_boots_directly() {
    let (reason, console) = LinuxBoot::new(PARAMS, None).boot();
    assert_linux_ran(reason, &console);
}

#[test]
fn debian_kernel_boots_through_a_firmware_with_crosvm_registers() {
    let firmware = assemble(REGISTER_PRINTING_FIRMWARE);
    let (reason, console) = LinuxBoot::new(PARAMS, Some(&firmware.image)).boot();
    let kernel_size = fs::metadata(debian_kernel()).unwrap().len();
    let registers = format!(
        "firmware: x0={FDT_ADDRESS:016x} x1={:016x} x2={kernel_size:016x} x3={:016x}\n",
        0x8000_0000_u64, 0
    );
    assert!(
        console.starts_with(&registers),
        "expected {registers:?} first in:\n{console}"
    );
    assert_linux_ran(reason, &console);
}

/// The numbers in vmbase_linuxboot's line before it enters the kernel: where the kernel is,
/// where its device tree is and how large, and how large the VMM's was.
struct Handover {
    entry: u64,
    fdt: u64,
    fdt_bytes: usize,
    vmm_fdt_bytes: usize,
    vmm_fdt: u64,
}

/// Parses "linuxboot: entering the kernel at E; device tree at F, N bytes (the VMM's: M bytes
/// at X), with ...".
fn handover(console: &str) -> Handover {
    let line = console
        .lines()
        .find(|line| line.starts_with("linuxboot: entering the kernel at "))
        .unwrap_or_else(|| panic!("the firmware did not enter the kernel:\n{console}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|word| match word.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => word.parse().ok(),
        })
        .collect();
    let [
        entry,
        fdt,
        fdt_bytes,
        vmm_fdt_bytes,
        vmm_fdt,
        rng_seed_bytes,
    ] = numbers[..]
    else {
        panic!("unexpected handover line: {line}");
    };
    assert_eq!(rng_seed_bytes, FIRMWARE_RNG_SEED_BYTES as u64, "{line}");
    Handover {
        entry,
        fdt,
        fdt_bytes: fdt_bytes as usize,
        vmm_fdt_bytes: vmm_fdt_bytes as usize,
        vmm_fdt,
    }
}

/// The firmware's seeds, not the VMM's, reach the kernel. Linux erases both seeds once it has
/// used them (it zeroes `kaslr-seed` and deletes `rng-seed` in place), so their values cannot
/// be compared; what can be is the tree they were in. The firmware replaces the host's 32-byte
/// `rng-seed` with a 64-byte one, so its tree is exactly 32 bytes larger than the VMM's, and the
/// tree the kernel exposes as `/sys/firmware/fdt` has the firmware's size, not the VMM's: the
/// kernel booted with the firmware's tree, whose seeds it consumed.
#[test]
fn debian_kernel_boots_through_vmbase_linuxboot_with_its_seeds() {
    let firmware = guest_image("vmbase_linuxboot");
    let (reason, console) = LinuxBoot::new(PARAMS, Some(&firmware)).boot();
    let handover = handover(&console);
    assert!(
        console.starts_with("linuxboot: entering the kernel at "),
        "the firmware said more than its one line:\n{console}"
    );
    assert_eq!(handover.entry, 0x8000_0000, "{console}");
    assert_eq!(handover.vmm_fdt, FDT_ADDRESS, "{console}");
    // The edited copy follows the VMM's tree in the tree's 2 MiB region.
    assert!(
        handover.fdt >= FDT_ADDRESS + handover.vmm_fdt_bytes as u64
            && handover.fdt + (handover.fdt_bytes as u64) <= FDT_ADDRESS + (2 << 20),
        "{console}"
    );
    assert_eq!(
        handover.fdt_bytes,
        handover.vmm_fdt_bytes + FIRMWARE_RNG_SEED_BYTES - HOST_RNG_SEED_BYTES,
        "{console}"
    );
    let kernel_fdt_bytes = assert_linux_ran(reason, &console);
    assert_eq!(kernel_fdt_bytes, handover.fdt_bytes, "{console}");
}

/// A device tree with QEMU's PL011 as the console, so the firmware's line is seen, and `body`
/// for the rest of the root node: enough for the firmware, not for Linux. Compiled with dtc.
fn small_tree(dir: &Path, body: &str) -> PathBuf {
    let source = format!(
        r#"/dts-v1/;
/ {{
    #address-cells = <2>;
    #size-cells = <2>;
    pl011@9000000 {{
        compatible = "arm,pl011", "arm,primecell";
        reg = <0x0 0x9000000 0x0 0x1000>;
    }};
{body}
}};
"#
    );
    compiled_device_tree(dir, "small", &source)
}

/// `/memory` of `LINUX_MEMORY_MIB` from `0x8000_0000`, as the host describes RAM.
const MEMORY: &str = r#"
    memory@80000000 {
        device_type = "memory";
        reg = <0x0 0x80000000 0x0 0x12c00000>;
    };"#;

/// `/chosen` with the console and `extra` properties.
fn chosen(extra: &str) -> String {
    format!(
        r#"
    chosen {{
        stdout-path = "/pl011@9000000";
        {extra}
    }};"#
    )
}

/// A tree body with the initrd at 0x8010_0000..0x8020_0000: 1 MiB into RAM, where the kernel is
/// loaded.
fn initrd_at_1_mib() -> String {
    format!(
        "{MEMORY}{}",
        chosen(
            "linux,initrd-start = <0x0 0x80100000>;\n        \
             linux,initrd-end = <0x0 0x80200000>;"
        )
    )
}

/// Boots `boot` through vmbase_linuxboot and asserts that it refused with exactly `reason`:
/// one console line, then a reset, and no kernel.
fn assert_refused(mut boot: LinuxBoot, reason: &str) {
    boot.config.firmware = Some(guest_image("vmbase_linuxboot"));
    let (ended, console) = boot.boot();
    let expected = format!("linuxboot: refused: {reason}");
    assert_eq!(console.lines().collect::<Vec<_>>(), [expected.as_str()]);
    assert_eq!(ended, DeathReason::Reboot, "{console}");
}

/// `boot` with the given device tree instead of the generated one (and so no params).
fn with_tree(mut boot: LinuxBoot, body: &str) -> LinuxBoot {
    let tree = small_tree(boot.dir.path(), body);
    boot.config.params = None;
    boot.config.device_tree = Some(tree);
    boot
}

/// `boot` with `kernel` (file contents) instead of Debian's.
fn with_kernel(mut boot: LinuxBoot, kernel: &[u8]) -> LinuxBoot {
    let path = boot.dir.path().join("kernel");
    fs::write(&path, kernel).unwrap();
    boot.config.kernel = Some(path);
    boot
}

#[test]
fn vmbase_linuxboot_refuses_what_is_not_an_image() {
    let text = b"#!/bin/sh\necho this is a shell script, not a kernel\n".repeat(100);
    // What the firmware finds where an Image has its magic, "ARM\x64" at 0x38.
    let magic = u32::from_le_bytes(text[0x38..0x3c].try_into().unwrap());
    let boot = with_kernel(LinuxBoot::new(PARAMS, None), &text);
    assert_refused(
        boot,
        &format!("the kernel is not a bootable arm64 Image: bad Image magic {magic:#010x}"),
    );
}

#[test]
fn vmbase_linuxboot_refuses_a_truncated_image() {
    let kernel = fs::read(debian_kernel()).unwrap();
    let boot = with_kernel(LinuxBoot::new(PARAMS, None), &kernel[..48]);
    assert_refused(
        boot,
        "the kernel is not a bootable arm64 Image: 48 bytes is shorter than the 64-byte Image \
         header",
    );
}

/// A valid tree that `dtc -S 2097152` padded to the 2 MiB a tree may have fills its whole
/// region: the edited copy, which went after the VMM's tree there, goes to free RAM instead
/// (it was refused: "FDT needs 7185 bytes of buffer").
#[test]
fn vmbase_linuxboot_boots_with_a_tree_padded_to_its_whole_region() {
    let mut boot = with_tree(
        with_kernel(
            LinuxBoot::new(PARAMS, None),
            &stand_in_kernel(0x50, 4 << 20),
        ),
        &format!("{MEMORY}{}", chosen("")),
    );
    let tree = boot.config.device_tree.clone().unwrap();
    let output = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dtb", "-S", "2097152", "-o"])
        .arg(&tree)
        .arg(&tree)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(fs::metadata(&tree).unwrap().len(), 2 << 20);
    boot.config.firmware = Some(guest_image("vmbase_linuxboot"));
    let (ended, console) = boot.boot();
    let handover = handover(&console);
    assert_eq!(handover.vmm_fdt, FDT_ADDRESS, "{console}");
    assert_eq!(handover.vmm_fdt_bytes, 2 << 20, "{console}");
    // The lowest free page: past the stand-in kernel's 4 MiB at the start of RAM.
    assert_eq!(handover.fdt, 0x8040_0000, "{console}");
    assert_eq!(ended, DeathReason::Shutdown, "{console}");
}

/// A `text_offset` that is not whole pages: 2 would make the entry misaligned (a PC alignment
/// fault in the kernel), 0x800 a kernel that cannot be mapped or moved in pages.
#[test]
fn vmbase_linuxboot_refuses_a_misaligned_text_offset() {
    for (text_offset, reason) in [
        (
            2_u64,
            "text_offset 0x2 would put the kernel's first instruction at an address that is not \
             4-byte aligned",
        ),
        (
            0x800,
            "text_offset 0x800 is not a multiple of the 4 KiB page",
        ),
    ] {
        let mut kernel = stand_in_kernel(0x50, 4 << 20);
        kernel[0x08..0x10].copy_from_slice(&text_offset.to_le_bytes());
        let boot = with_kernel(LinuxBoot::new(PARAMS, None), &kernel);
        assert_refused(
            boot,
            &format!("the kernel is not a bootable arm64 Image: {reason}"),
        );
    }
}

#[test]
fn vmbase_linuxboot_refuses_an_initrd_overlapping_the_kernel() {
    let body = initrd_at_1_mib();
    let boot = with_tree(LinuxBoot::new(PARAMS, None), &body);
    assert_refused(boot, "the initrd overlaps the kernel");
}

#[test]
fn vmbase_linuxboot_refuses_a_tree_without_memory() {
    let boot = with_tree(LinuxBoot::new(PARAMS, None), &chosen(""));
    assert_refused(boot, "the device tree has no /memory");
}

#[test]
fn vmbase_linuxboot_refuses_a_kernel_outside_ram() {
    let kernel_size = fs::metadata(debian_kernel()).unwrap().len();
    // RAM from 0x8800_0000: the tree (near its end) is inside, the kernel (at 0x8000_0000) not.
    let body = format!(
        r#"
    memory@88000000 {{
        device_type = "memory";
        reg = <0x0 0x88000000 0x0 0xac00000>;
    }};{}"#,
        chosen("")
    );
    let boot = with_tree(LinuxBoot::new(PARAMS, None), &body);
    assert_refused(
        boot,
        &format!(
            "the kernel (0x80000000..{:#x}) is outside RAM (0x88000000..0x92c00000)",
            0x8000_0000 + kernel_size
        ),
    );
}

/// `x0` that is not a device tree vmbase may take: garbage, and a header claiming more than the
/// 2 MiB a tree may have. vmbase finds no console then (under QEMU it is known only through the
/// tree) and falls back to crosvm's 8250, which QEMU does not have: the firmware's refusal is
/// not seen, but it must still end the VM with a reset, never hang or boot the kernel.
#[test]
fn vmbase_linuxboot_resets_when_x0_is_no_device_tree() {
    let mut oversized = vec![0; 64];
    oversized[0..4].copy_from_slice(&0xd00d_feed_u32.to_be_bytes());
    oversized[4..8].copy_from_slice(&(3_u32 << 20).to_be_bytes());
    let garbage = b"not a device tree ".repeat(100);
    for tree in [garbage, oversized] {
        let mut boot = LinuxBoot::new(PARAMS, None);
        let path = boot.dir.path().join("x0.bin");
        fs::write(&path, tree).unwrap();
        boot.config.params = None;
        boot.config.device_tree = Some(path);
        boot.config.firmware = Some(guest_image("vmbase_linuxboot"));
        let (ended, console) = boot.boot();
        assert_eq!(console, "");
        assert_eq!(ended, DeathReason::Reboot);
    }
}

/// A kernel that cannot run where it is: its file (80 bytes at 0x8000_0000) is clear of the
/// initrd, but its 4 MiB `image_size` (its `.bss`) would run over it. The firmware moves it to
/// the lowest 2 MiB boundary where it is clear of everything, 0x8020_0000, and enters it there.
#[test]
fn vmbase_linuxboot_moves_a_kernel_that_would_run_over_the_initrd() {
    let body = initrd_at_1_mib();
    let mut boot = with_tree(
        with_kernel(
            LinuxBoot::new(PARAMS, None),
            &stand_in_kernel(0x50, 4 << 20),
        ),
        &body,
    );
    boot.config.firmware = Some(guest_image("vmbase_linuxboot"));
    let (ended, console) = boot.boot();
    assert_eq!(handover(&console).entry, 0x8020_0000, "{console}");
    assert_eq!(ended, DeathReason::Shutdown, "{console}");
}

/// VMs larger than 3 GiB put the device tree (2 MiB + 64 KiB below the end of RAM) past
/// 0x1_4000_0000, where linuxboot's fixed window over RAM ended: vmbase found no tree, fell back
/// to crosvm's console, which QEMU does not have, and the VM reset without a word. Every size
/// up to `vm`'s largest must enter the (stand-in) kernel, with the firmware's line.
#[test]
fn vmbase_linuxboot_boots_a_kernel_in_vms_up_to_the_largest() {
    for memory_mib in [3074, 3075, 4097, vmclient::layout::MAX_MEMORY_MIB] {
        let mut boot = with_kernel(
            LinuxBoot::new(PARAMS, Some(&guest_image("vmbase_linuxboot"))),
            &stand_in_kernel(0x50, 4 << 20),
        );
        boot.config.memory_mib = memory_mib;
        let (ended, console) = boot.boot();
        let vmm_fdt = 0x8000_0000 + (u64::from(memory_mib) << 20) - (2 << 20) - 0x1_0000;
        assert_eq!(
            handover(&console).vmm_fdt,
            vmm_fdt,
            "{memory_mib} MiB:\n{console}"
        );
        assert_eq!(ended, DeathReason::Shutdown, "{memory_mib} MiB:\n{console}");
    }
}

/// Debian's kernel through vmbase_linuxboot in a VM whose device tree lies above 4 GiB: Linux
/// gets the firmware's tree and sees all its RAM.
#[test]
fn debian_kernel_boots_through_vmbase_linuxboot_above_4_gib() {
    const MEMORY_MIB: u32 = 4 * 1024 + 300;
    let mut boot = LinuxBoot::new(PARAMS, Some(&guest_image("vmbase_linuxboot")));
    boot.config.memory_mib = MEMORY_MIB;
    let (reason, console) = boot.boot();
    let handover = handover(&console);
    let vmm_fdt = 0x8000_0000 + (u64::from(MEMORY_MIB) << 20) - (2 << 20) - 0x1_0000;
    assert_eq!(handover.vmm_fdt, vmm_fdt, "{console}");
    let kernel_fdt_bytes = assert_linux_ran_with(MEMORY_MIB, reason, &console);
    assert_eq!(kernel_fdt_bytes, handover.fdt_bytes, "{console}");
}

/// `x0` anywhere: the VM is started paused under `--gdb`, and gdb-multiarch replaces `x0` at the
/// firmware's first instruction. Outside linuxboot's RAM window (0x8000_0000 up to 512 GiB)
/// vmbase reads nothing; inside it but past the end of RAM the first read faults. Either way the VM
/// must reset (`Reboot`), never hang, and never reach the kernel.
#[test]
fn vmbase_linuxboot_resets_whatever_x0_points_at() {
    for x0 in [
        0x0_u64,               // null: MMIO, outside the window
        0x8000_0004,           // in RAM but misaligned
        0x9000_0000,           // in RAM, no tree there
        0x1_2000_0000,         // in the window, past the end of the VM's 300 MiB of RAM
        0x2_0000_0000,         // in the window, far past the end of RAM
        0x80_0000_0000,        // past the window
        0xffff_ffff_ffff_fff8, // the top of the address space
    ] {
        let boot = LinuxBoot::new(PARAMS, Some(&guest_image("vmbase_linuxboot")));
        let set_x0 = format!("set $x0 = {x0:#x}");
        let (ended, console) = boot.boot_under_gdb(&[
            "break *0x7fc00000",
            "continue",
            &set_x0,
            "delete",
            "continue",
        ]);
        assert!(
            !console.contains("Linux version"),
            "x0 = {x0:#x}:\n{console}"
        );
        assert_eq!(ended, DeathReason::Reboot, "x0 = {x0:#x}:\n{console}");
    }
}

/// Linux and its firmware in protected VMs, under the pKVM double (`vm run --protected`).
mod protected {
    use super::*;

    /// `boot` in a protected VM.
    fn protected(mut boot: LinuxBoot) -> LinuxBoot {
        boot.config.protected_vm = true;
        boot
    }

    /// vmbase_linuxboot, this project's pvmfw, runs protected: it enrolls in the MMIO guard,
    /// checks the payload and hands over with crosvm's registers; the stand-in kernel powers
    /// off.
    #[test]
    fn vmbase_linuxboot_hands_over_to_a_kernel() {
        let boot = protected(with_kernel(
            LinuxBoot::new(PARAMS, Some(&guest_image("vmbase_linuxboot"))),
            &stand_in_kernel(0x50, 4 << 20),
        ));
        let (reason, console) = boot.boot();
        assert!(
            console.starts_with("vmbase: enrolled in the hypervisor's MMIO guard; console at "),
            "{console}"
        );
        assert!(
            console.contains("linuxboot: entering the kernel at 0x80000000"),
            "{console}"
        );
        assert_eq!(reason, DeathReason::Shutdown, "{console}");
    }

    /// Debian's kernel knows nothing of pKVM: it neither enrolls in the MMIO guard nor shares
    /// memory. Entered directly it runs to its init and powers off, as without protection: the
    /// double lets a guest that never enrolled touch every device, and nothing hands a device a
    /// buffer (the busybox initramfs loads no virtio driver).
    #[test]
    fn debian_kernel_boots_directly() {
        let (reason, console) = protected(LinuxBoot::new(PARAMS, None)).boot();
        assert_linux_ran(reason, &console);
    }

    /// Behind vmbase_linuxboot, which enrolled in the MMIO guard for the whole VM and registered
    /// only its console, Debian's kernel is stopped at its first access to another device page
    /// (the GIC's), named by the double, as pKVM would stop it.
    #[test]
    fn debian_kernel_behind_vmbase_linuxboot_is_stopped_at_an_unregistered_device() {
        let firmware = guest_image("vmbase_linuxboot");
        let (reason, console) = protected(LinuxBoot::new(PARAMS, Some(&firmware))).boot();
        let handed_over = console
            .find("linuxboot: entering the kernel at ")
            .unwrap_or_else(|| panic!("the firmware did not hand over:\n{console}"));
        let stopped = console
            .find("hyp: MMIO access to unregistered IPA 0x")
            .unwrap_or_else(|| panic!("the double did not stop the kernel:\n{console}"));
        assert!(handed_over < stopped, "{console}");
        assert!(init_report(&console).is_empty(), "init ran:\n{console}");
        assert_eq!(reason, DeathReason::Reboot, "{console}");
    }
}
