// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Fault-injection suite: boots vmbase_faults once per fault (named in its boot arguments) and
//! checks that vmbase reports the fault on the console and ends the VM, as README's table says.

use std::time::Duration;
use vmbase_test_harness::{
    assert_in_order, boot_to_end, boot_under_gdb, guest_image, repository_root,
};
use vmclient::{DeathReason, VirtualMachineRawConfig};

/// Every case ends the VM by itself well within this; a hang ends as `Killed` and fails.
const DEADLINE: Duration = Duration::from_secs(15);

/// Boots `config`, returning how the VM ended and its console lines.
fn boot(config: &VirtualMachineRawConfig) -> (DeathReason, Vec<String>) {
    boot_to_end(config, DEADLINE)
}

const SYNC: &str = "vmbase: unhandled synchronous exception at the current EL: ";

/// Boots `image` told to inject `fault`, in a protected VM (under the pKVM double) if
/// `protected`.
fn inject(image: &str, fault: &str, protected: bool) -> (DeathReason, Vec<String>) {
    let config = VirtualMachineRawConfig {
        name: format!("vmbase-fault-{fault}"),
        bootloader: Some(guest_image(image)),
        params: Some(format!("fault={fault}")),
        memory_mib: 64,
        protected_vm: protected,
        ..Default::default()
    };
    boot(&config)
}

/// Whether the tests of this module boot protected VMs (see `mod protected`).
const PROTECTED: bool = false;

/// Injects `fault` (in a protected VM if `protected`) and checks the outcome and the report
/// lines, in order.
fn check(protected: bool, fault: &str, outcome: DeathReason, report: &[&str]) {
    let (reason, lines) = inject("vmbase_faults", fault, protected);
    let injecting = format!("fault guest: injecting {fault}");
    let expected: Vec<&str> = [injecting.as_str()]
        .into_iter()
        .chain(report.iter().copied())
        .collect();
    assert_in_order(&lines, &expected);
    assert_eq!(reason, outcome, "{fault}; console:\n{}", lines.join("\n"));
}

/// One test per row of README's fault table, booted protected if `PROTECTED` where the macro
/// is used says so.
macro_rules! fault_tests {
    ($($test:ident: $fault:literal => $outcome:ident, [$($line:expr),* $(,)?];)*) => {
        $(
            #[test]
            fn $test() {
                check(PROTECTED, $fault, DeathReason::$outcome, &[$($line),*]);
            }
        )*
    };
}

/// The faults that end the same way with and without protection, given to `$tests`.
macro_rules! faults_with_and_without_protection {
    ($tests:ident) => {
$tests! {
    reboot: "reboot" => Reboot, [];
    undefined_instruction: "undefined-instruction" => Reboot,
        [&format!("{SYNC}undefined instruction (unknown reason)")];
    unmapped_read: "unmapped-read" => Reboot,
        [&format!("{SYNC}data abort: translation fault, level 1, on read"), "vmbase: FAR=0x0000000040000000"];
    null_read: "null-read" => Reboot,
        [&format!("{SYNC}data abort: translation fault, level 2, on read"), "vmbase: FAR=0x0000000000000000"];
    null_write: "null-write" => Reboot,
        [&format!("{SYNC}data abort: translation fault, level 2, on write"), "vmbase: FAR=0x0000000000000000"];
    read_only_write: "read-only-write" => Reboot,
        [&format!("{SYNC}data abort: permission fault, level 3, on write")];
    execute_data: "execute-data" => Reboot,
        [&format!("{SYNC}instruction abort: permission fault, level 3")];
    stack_overflow: "stack-overflow" => Reboot,
        ["vmbase: stack overflow: the boot stack ran into its guard page",
         &format!("{SYNC}data abort: translation fault, level 3, on write")];
    heap_exhaustion: "heap-exhaustion" => Reboot,
        ["vmbase: heap exhausted: 1073741824 bytes (align 1) requested", "vmbase: panic",
         "memory allocation of 1073741824 bytes failed"];
    explicit_panic: "panic" => Reboot,
        ["vmbase: panic", "panicked at testing/faults/src/main.rs", "injected panic"];
    panic_while_panicking: "double-panic" => Reboot,
        ["vmbase: panic", "vmbase: panicked while panicking"];
    panic_holding_the_console_lock: "panic-holding-console" => Reboot,
        ["vmbase: panic", "panicked at testing/faults/src/main.rs", "panic while formatting"];
    panic_in_exception_handler: "panic-in-handler" => Reboot,
        ["vmbase: panic", "panicked at testing/faults/src/main.rs", "injected panic in sync_exception_current"];
    fault_in_exception_handler: "fault-in-handler" => Reboot,
        ["fault guest: faulting inside sync_exception_current", "vmbase: exception inside an exception handler",
         &format!("{SYNC}data abort: translation fault, level 1, on read")];
    unexpected_irq: "irq" => Reboot, ["vmbase: unhandled IRQ at the current EL", "vmbase: ELR="];
    handler_skips_the_faulting_instruction: "skip-instruction" => Shutdown,
        ["fault guest: resumed after the skipped instruction"];
    nested_irq_returns_to_both_interrupted_contexts: "nested-irq" => Shutdown,
        ["fault guest: both IRQ handlers returned; the interrupted code resumed"];
    corrupt_fdt: "corrupt-fdt" => Shutdown,
        ["fault guest: corrupt FDT (bad magic): falls back (bad FDT magic 0x2f0dfeed)",
         "fault guest: corrupt FDT (size beyond blob): falls back (truncated FDT)",
         "fault guest: corrupt FDT (structure outside blob): falls back (FDT blocks lie outside the blob)",
         "fault guest: corrupt FDT (truncated): falls back (truncated FDT)",
         "fault guest: corrupt FDT (garbage tokens): falls back (malformed FDT structure"];
    garbage_x0: "garbage-x0" => Shutdown,
        ["fault guest: x0 = 0x0: no FDT, ignored", "fault guest: x0 = 0xdeadbeef: no FDT, ignored",
         "fault guest: x0 = 0xffffffffffffffff: no FDT, ignored", "fault guest: x0 = 0x801ffff8: no FDT, ignored",
         "fault guest: x0 = 0x80000001: no FDT, ignored"];
}
    };
}

faults_with_and_without_protection!(fault_tests);

fault_tests! {
    // The hypervisor-misuse cases, without a hypervisor (plain QEMU): nothing stops the read, and
    // with no memory protection there is nothing to share. `mod protected` has them under the
    // pKVM double, which stops the first and refuses the others.
    unregistered_mmio_is_read_without_a_guard: "unregistered-mmio" => Reboot,
        ["fault guest: reading the unregistered device page 0x9010000 (MMIO guard not enrolled)",
         "fault guest: read 0x"];
    sharing_twice_needs_memory_protection: "share-twice" => Reboot,
        ["fault guest: the hypervisor does not protect memory; nothing to share"];
    unsharing_needs_memory_protection: "unshare-unshared" => Reboot,
        ["fault guest: the hypervisor does not protect memory; nothing to share"];
}

/// The same faults in protected VMs, under the pKVM double (`vm run --protected`): each ends as
/// it does without protection. Then the misuses only protection catches.
mod protected {
    use super::*;

    const PROTECTED: bool = true;

    faults_with_and_without_protection!(fault_tests);

    #[test]
    fn no_fault_shuts_down_enrolled_in_the_mmio_guard() {
        let (reason, lines) = inject("vmbase_faults", "none", PROTECTED);
        assert_in_order(
            &lines,
            &[
                "vmbase: enrolled in the hypervisor's MMIO guard; console at 0x9000000 registered",
                "fault guest: injecting none",
            ],
        );
        assert_eq!(
            reason,
            DeathReason::Shutdown,
            "console:\n{}",
            lines.join("\n")
        );
    }

    /// Boots `fault` protected and checks that the guest reports the double's answer to its
    /// misuse as pKVM's: INVALID_PARAMETER.
    fn refused(fault: &str, report: &str) {
        let (reason, lines) = inject("vmbase_faults", fault, PROTECTED);
        let console = lines.join("\n");
        assert!(
            lines.iter().any(|line| line.starts_with(report)
                && line.ends_with(": the hypervisor answered INVALID_PARAMETER (-3)")),
            "no {report:?} refused with INVALID_PARAMETER; console:\n{console}"
        );
        assert_eq!(reason, DeathReason::Shutdown, "console:\n{console}");
    }

    #[test]
    fn sharing_twice_is_refused() {
        refused("share-twice", "fault guest: sharing 0x");
    }

    #[test]
    fn unsharing_what_was_never_shared_is_refused() {
        refused("unshare-unshared", "fault guest: unsharing 0x");
    }

    /// The double names the page and ends the VM before the read returns anything.
    #[test]
    fn an_unregistered_device_page_is_named_and_never_read() {
        let (reason, lines) = inject("vmbase_faults", "unregistered-mmio", PROTECTED);
        let console = lines.join("\n");
        assert_in_order(
            &lines,
            &[
                "fault guest: reading the unregistered device page 0x9010000 (MMIO guard enrolled)",
                "hyp: MMIO access to unregistered IPA 0x9010000",
            ],
        );
        assert!(
            !lines
                .iter()
                .any(|line| line.starts_with("fault guest: read 0x")),
            "the read returned a value; console:\n{console}"
        );
        assert_eq!(reason, DeathReason::Reboot, "console:\n{console}");
    }
}

/// A misaligned SP is an SP alignment fault, reported, then a reset: vmbase turns the check on
/// (SCTLR_EL1.SA). QEMU's TCG, the only accelerator `vm` uses, does not implement the check (a
/// load through a misaligned SP just loads), so there the guest says the fault did not come and
/// resets. The test takes either story, but exactly one, with the check on and a reset, so that
/// it holds where the CPU checks (KVM, hardware) and fails if the check is off, or if a fault
/// goes unreported. (The syndrome's decoding is also a unit test of `Syndrome`.)
#[test]
fn misaligned_sp() {
    let (reason, lines) = inject("vmbase_faults", "misaligned-sp", PROTECTED);
    let console = lines.join("\n");
    assert_in_order(
        &lines,
        &[
            "fault guest: injecting misaligned-sp",
            "fault guest: SP alignment checking is on",
        ],
    );
    let reported = lines.iter().any(|line| {
        line.starts_with("vmbase: unhandled synchronous exception at the current EL")
            && line.contains("SP alignment fault")
    });
    let not_checked = lines
        .iter()
        .any(|line| line == "fault guest: this CPU does not check SP alignment");
    assert!(
        reported != not_checked,
        "neither or both of the fault report and the guest's 'no fault' line:\n{console}"
    );
    assert_eq!(reason, DeathReason::Reboot, "{console}");
}

/// `configure_heap!(16 * 4096)` in the fault guest replaces vmbase's default heap (256 KiB,
/// for binaries without it): the exhausted heap's report gives its size.
#[test]
fn configure_heap_sets_the_heap_size() {
    let (reason, lines) = inject("vmbase_faults", "heap-exhaustion", PROTECTED);
    let console = lines.join("\n");
    let report = lines
        .iter()
        .find(|line| line.starts_with("vmbase: heap exhausted: "))
        .unwrap_or_else(|| panic!("no heap report:\n{console}"));
    assert!(report.ends_with(" of 65536 bytes in use"), "{report}");
    assert_eq!(reason, DeathReason::Reboot, "{console}");
}

/// A fault in entry.S, before Rust, the console and the real vector table exist (the first
/// store after the MMU is switched on, as vmbase_faults_early's idmap leaves RAM unmapped):
/// the early vector table resets the VM, silently.
#[test]
fn fault_in_entry_before_rust() {
    let (reason, lines) = inject("vmbase_faults_early", "none", PROTECTED);
    assert_eq!(lines, Vec::<String>::new());
    assert_eq!(reason, DeathReason::Reboot);
}

/// The same guest with nothing injected shuts down cleanly: the suite can tell the difference.
#[test]
fn no_fault_shuts_down() {
    check(PROTECTED, "none", DeathReason::Shutdown, &[]);
}

/// A device tree whose `/chosen/stdout-path` names an `arm,pl011` node at `address`.
fn tree_with_pl011_console_at(address: u64) -> Vec<u8> {
    let mut tree = vm_fdt::FdtWriter::new().expect("start device tree");
    let root = tree.begin_node("").unwrap();
    tree.property_u32("#address-cells", 2).unwrap();
    tree.property_u32("#size-cells", 2).unwrap();
    tree.property_string("compatible", "linux,dummy-virt")
        .unwrap();
    let memory = tree.begin_node("memory@80000000").unwrap();
    tree.property_string("device_type", "memory").unwrap();
    tree.property_array_u64("reg", &[0x8000_0000, 64 << 20])
        .unwrap();
    tree.end_node(memory).unwrap();
    let path = format!("/pl011@{address:x}");
    let chosen = tree.begin_node("chosen").unwrap();
    tree.property_string("stdout-path", &path).unwrap();
    tree.end_node(chosen).unwrap();
    let uart = tree.begin_node(&path[1..]).unwrap();
    tree.property_string_list(
        "compatible",
        vec!["arm,pl011".into(), "arm,primecell".into()],
    )
    .unwrap();
    tree.property_array_u64("reg", &[address, 0x1000]).unwrap();
    tree.end_node(uart).unwrap();
    tree.end_node(root).unwrap();
    tree.finish().expect("finish device tree")
}

/// A console the device tree places on something that is not a PL011 (flash, the end of flash
/// running into the GIC, the last virtio-mmio slot running into the next) reports its transmit
/// FIFO full for ever: vmbase gives up on it, stays silent and the example still shuts down.
#[test]
fn console_on_a_device_that_never_drains() {
    for address in [0x0010_0000, 0x07ff_fff0, 0x09ff_ffe8] {
        let file = tempfile::NamedTempFile::new().expect("create device tree file");
        std::fs::write(file.path(), tree_with_pl011_console_at(address))
            .expect("write device tree");
        let config = VirtualMachineRawConfig {
            name: format!("vmbase-stuck-console-{address:#x}"),
            bootloader: Some(guest_image("vmbase_example")),
            device_tree: Some(file.path().to_owned()),
            memory_mib: 64,
            ..Default::default()
        };
        let (reason, lines) = boot(&config);
        assert_eq!(
            reason,
            DeathReason::Shutdown,
            "console at {address:#x}; console:\n{}",
            lines.join("\n")
        );
    }
}

/// Device trees the example cannot use: vmbase must refuse them and fall back to crosvm's 8250 at
/// 0x3f8, and the example must still run all its checks and shut down. QEMU has no UART at
/// 0x3f8, so the fallback console's output is lost: gdb watches those registers instead, and
/// must see them used, where the tree QEMU made (the control) leaves them alone.
#[test]
fn example_survives_a_corrupt_device_tree_from_the_host() {
    let qemu_tree = std::fs::read(repository_root().join("tests/data/qemu-virt.dtb"))
        .expect("read the QEMU device tree");
    let mut claims_too_much = qemu_tree.clone();
    claims_too_much[4..8].copy_from_slice(&0x0100_0000u32.to_be_bytes());
    let corrupt_trees = [
        ("garbage", vec![0xa5; 4096]),
        ("truncated", qemu_tree[..200].to_vec()),
        ("larger than its region", claims_too_much),
    ];
    for (what, tree) in corrupt_trees {
        let file = tempfile::NamedTempFile::new().expect("create device tree file");
        std::fs::write(file.path(), tree).expect("write device tree");
        let config = VirtualMachineRawConfig {
            name: "vmbase-corrupt-device-tree".to_owned(),
            bootloader: Some(guest_image("vmbase_example")),
            device_tree: Some(file.path().to_owned()),
            memory_mib: 300,
            ..Default::default()
        };
        let (reason, lines, fallback) = boot_watching_the_fallback_uart(&config);
        assert_eq!(reason, DeathReason::Shutdown, "{what} device tree");
        assert!(
            fallback,
            "{what} device tree: the 8250 at 0x3f8 was never used"
        );
        assert_eq!(lines, Vec::<String>::new(), "{what} device tree");
    }
    // The control: QEMU's own tree names its PL011, so the example prints there and never
    // touches 0x3f8.
    let config = VirtualMachineRawConfig {
        name: "vmbase-good-device-tree".to_owned(),
        bootloader: Some(guest_image("vmbase_example")),
        memory_mib: 300,
        ..Default::default()
    };
    let (reason, lines, fallback) = boot_watching_the_fallback_uart(&config);
    assert_eq!(reason, DeathReason::Shutdown, "{}", lines.join("\n"));
    assert!(
        !fallback,
        "the example used the 8250 at 0x3f8 with QEMU's own tree"
    );
    assert!(
        lines.iter().any(|line| line == "[INFO] Hello world"),
        "{}",
        lines.join("\n")
    );
}

/// Boots `config` under gdb, which watches crosvm's 8250 at 0x3f8 (where vmbase's fallback
/// console is; under QEMU nothing answers there). Returns how the VM ended, its console lines,
/// and whether the guest touched the 8250's registers.
fn boot_watching_the_fallback_uart(
    config: &VirtualMachineRawConfig,
) -> (DeathReason, Vec<String>, bool) {
    const MARK: &str = "guest used the 8250 at 0x3f8";
    let announce = format!("echo {MARK}\\n");
    let (boot, gdb) = boot_under_gdb(
        config,
        &[
            // The 8 bytes of the 8250's registers, any access.
            "awatch *(unsigned long *)0x3f8",
            "commands",
            "silent",
            &announce,
            // Once is enough; a watchpoint hit on every poll of the line status is slow.
            "delete",
            "continue",
            "end",
            "continue",
        ],
        DEADLINE,
    );
    (boot.reason, boot.lines(), gdb.contains(MARK))
}
