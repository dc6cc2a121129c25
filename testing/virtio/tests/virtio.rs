// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Device tests: boots vmbase_virtio with disks the test writes, then checks what the guest
//! read, wrote and refused; and with hostile PCI nodes in the device tree, which the guest must
//! report before it resets.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use vmbase_test_harness::disks::{DISK_SIZE, FILL, SECTOR, source_image, written_target_image};
use vmbase_test_harness::{
    assert_in_order, boot_to_end as boot, compiled_fixture, guest_image, vm_executable,
};
use vmclient::{DeathReason, DiskImage, VirtualMachineRawConfig};

/// Every case ends the VM by itself well within this; a hang ends as `Killed` and fails.
const DEADLINE: Duration = Duration::from_secs(30);
/// The guest's RAM: also what `data/qemu-virt.dtsi` (beside this file) gives `/memory`.
const MEMORY_MIB: u32 = 64;
fn config(name: &str, test: &str) -> VirtualMachineRawConfig {
    VirtualMachineRawConfig {
        name: format!("vmbase-virtio-{name}"),
        bootloader: Some(guest_image("vmbase_virtio")),
        params: Some(format!("virtio={test}")),
        memory_mib: MEMORY_MIB,
        ..Default::default()
    }
}

fn disk(path: &Path, writable: bool) -> DiskImage {
    DiskImage {
        image: path.to_owned(),
        writable,
    }
}

/// Boots `config` and asserts that the console shows `expected` in order and that the VM ended
/// with `ending`.
fn assert_boot(config: &VirtualMachineRawConfig, expected: &[&str], ending: DeathReason) {
    let (reason, lines) = boot(config, DEADLINE);
    assert_in_order(&lines, expected);
    assert_eq!(reason, ending, "{}: {}", config.name, lines.join("\n"));
}

/// Writes the `disks` test's two disks into `dir`: a read-only one holding [`source_image`] and
/// a writable one filled with [`FILL`].
fn source_and_target_disks(dir: &Path) -> Vec<DiskImage> {
    let (source, target) = (dir.join("source.img"), dir.join("target.img"));
    fs::write(&source, source_image()).unwrap();
    fs::write(&target, vec![FILL; DISK_SIZE]).unwrap();
    vec![disk(&source, false), disk(&target, true)]
}

/// Asserts that the guest wrote its pattern to `WRITE_SECTORS` of the writable disk `target`
/// and left the rest as it was.
fn assert_target_written(target: &DiskImage) {
    let written = fs::read(&target.image).unwrap();
    assert_eq!(written.len(), DISK_SIZE, "the disk kept its size");
    let expected = written_target_image();
    if let Some(offset) = (0..DISK_SIZE).find(|&offset| written[offset] != expected[offset]) {
        panic!(
            "byte {offset:#x} of the written disk is {:#x}, not {:#x}",
            written[offset], expected[offset]
        );
    }
}

#[test]
fn reads_one_disk_and_writes_another() {
    read_one_disk_and_write_another(config("disks", "disks"));
}

/// Boots the `disks` test with `config` and checks every byte it read and wrote.
fn read_one_disk_and_write_another(mut config: VirtualMachineRawConfig) {
    let dir = tempfile::tempdir().unwrap();
    config.disks = source_and_target_disks(dir.path());

    assert_boot(
        &config,
        &[
            "virtio guest: disk 00:01.0 has 2048 sectors (read-only: true)",
            "virtio guest: read 1048576 bytes, checksum",
            "virtio guest: wrote and read back sectors 3..703 of disk 00:02.0",
            "virtio guest: disks passed",
        ],
        DeathReason::Shutdown,
    );

    assert_target_written(&config.disks[1]);
    assert_eq!(
        fs::read(&config.disks[0].image).unwrap(),
        source_image(),
        "read-only disk changed"
    );
}

/// A buffer handed to a device without going through the DMA pool: without a hypervisor that
/// protects memory (plain QEMU) the device writes it and nothing stops it, which the guest
/// reports as a failure. Under `--protected` the hypervisor double must end the VM first.
#[test]
fn an_unshared_buffer_reaches_the_device_without_memory_protection() {
    assert_boot(
        &config("unshared-buffer", "unshared-buffer"),
        &[
            "virtio guest: handing virtio-rng 00:01.0 the buffer 0x",
            "virtio guest: virtio-rng 00:01.0 answered (Ok(64)) into 0x",
        ],
        DeathReason::Reboot,
    );
}

#[test]
fn a_read_only_disk_refuses_writes() {
    refuse_writes_to_a_read_only_disk(config("read-only", "read-only"));
}

/// Boots the `read-only` test with `config` on a read-only disk and checks the refusals.
fn refuse_writes_to_a_read_only_disk(mut config: VirtualMachineRawConfig) {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("read-only.img");
    let bytes = source_image();
    fs::write(&image, &bytes).unwrap();
    config.disks = vec![disk(&image, false)];

    assert_boot(
        &config,
        &[
            "virtio guest: write refused: virtio-blk 00:01.0: write of 512 bytes at sector 0: \
         the disk is read-only",
            "virtio guest: read refused: virtio-blk 00:01.0: read of 524288 bytes at sector 0: \
         no room in the DMA pool",
            "virtio guest: read refused: virtio-blk 00:01.0: read of 512 bytes at sector 2048: \
         past the end of the disk",
            "virtio guest: read-only passed",
        ],
        DeathReason::Shutdown,
    );
    assert_eq!(fs::read(&image).unwrap(), bytes, "the file changed");
}

#[test]
fn a_silent_disk_times_out() {
    time_out_on_a_silent_disk(config("timeout", "timeout"));
}

/// Boots the `timeout` test with `config` and checks that the silent disk times out.
fn time_out_on_a_silent_disk(mut config: VirtualMachineRawConfig) {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("silent.img");
    fs::write(&image, source_image()).unwrap();
    config.disks = vec![disk(&image, true)];

    assert_boot(
        &config,
        &[
            "virtio guest: virtio-blk 00:01.0: read of 2048 bytes at sector 8: no answer in time",
            "virtio guest: virtio-blk 00:01.0: read of 2048 bytes at sector 8: an earlier \
         request timed out",
            "virtio guest: timeout passed",
        ],
        DeathReason::Shutdown,
    );
}

#[test]
fn echoes_a_line_read_from_the_virtio_console() {
    echo_a_line_read_from_the_virtio_console(config("console", "console"));
}

/// Boots the `console` test with `config`, a line on its virtio console's input, and checks the
/// echo.
fn echo_a_line_read_from_the_virtio_console(mut config: VirtualMachineRawConfig) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    fs::write(&input, "hello from the host\n").unwrap();
    config.console_in = Some(input.clone());
    config.virtio_console = Some(output.clone());

    assert_boot(
        &config,
        &[
            "virtio guest: read \"hello from the host\" from the virtio console",
            "virtio guest: console passed",
        ],
        DeathReason::Shutdown,
    );
    assert_eq!(
        fs::read_to_string(&output).unwrap(),
        "virtio guest: type a line\necho: hello from the host\n"
    );
    assert_eq!(fs::read_to_string(&input).unwrap(), "hello from the host\n");
}

/// `vm run` with `args` on vmbase_virtio running `test`: its exit code and standard output.
fn vm_run(test: &str, args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let output = Command::new(vm_executable())
        .arg("run")
        .arg("--bootloader")
        .arg(guest_image("vmbase_virtio"))
        .args(["--mem", "64", "--timeout", "30", "--params"])
        .arg(format!("virtio={test}"))
        .args(args)
        .output()
        .expect("run vm");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn vm_flags_attach_the_virtio_console_and_leave_out_the_rng() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in"), dir.path().join("out"));
    fs::write(&input, "flags\n").unwrap();
    let (code, stdout) = vm_run(
        "console",
        &[
            "--console-in".as_ref(),
            input.as_os_str(),
            "--virtio-console".as_ref(),
            output.as_os_str(),
        ],
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("virtio guest: read \"flags\" from the virtio console"),
        "{stdout}"
    );
    assert_eq!(
        fs::read_to_string(&output).unwrap(),
        "virtio guest: type a line\necho: flags\n"
    );

    let image = dir.path().join("disk.img");
    fs::write(&image, vec![7u8; SECTOR]).unwrap();
    let mut config = config("console-is-disk", "console");
    config.disks = vec![disk(&image, true)];
    config.virtio_console = Some(image.clone());
    let refused = vmclient::VmInstance::create(&config, None, None).err();
    assert!(
        matches!(refused, Some(vmclient::Error::OutputIsInput { .. })),
        "{refused:?}"
    );
    assert_eq!(
        fs::read(&image).unwrap(),
        vec![7u8; SECTOR],
        "the disk was touched"
    );

    let (code, stdout) = vm_run("rng", &["--no-rng".as_ref()]);
    assert_eq!(code, Some(32), "{stdout}");
    assert!(
        stdout.contains("virtio guest: no virtio-rng device"),
        "{stdout}"
    );
}

/// Boots the `rng` test and returns the entropy lines' hexadecimal strings.
fn rng_boot(run: usize) -> (String, String) {
    rng_boot_with(config(&format!("rng-{run}"), "rng"))
}

/// Boots the `rng` test with `config` and returns the entropy lines' hexadecimal strings.
fn rng_boot_with(config: VirtualMachineRawConfig) -> (String, String) {
    let (reason, lines) = boot(&config, DEADLINE);
    assert_eq!(reason, DeathReason::Shutdown, "{}", lines.join("\n"));
    let value = |prefix: &str| {
        lines
            .iter()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{}", lines.join("\n")))
            .to_owned()
    };
    (
        value("virtio guest: virtio-rng entropy "),
        value("virtio guest: rand entropy from RNDR: "),
    )
}

#[test]
fn virtio_rng_entropy_is_not_zero_and_differs_between_boots() {
    let (first, _) = rng_boot(1);
    let (second, _) = rng_boot(2);
    for entropy in [&first, &second] {
        assert_eq!(entropy.len(), 64, "32 bytes in hexadecimal: {entropy}");
        assert!(entropy.chars().any(|c| c != '0'), "all zeros");
    }
    assert_ne!(first, second, "the same entropy on two boots");
}

#[test]
fn vm_attaches_no_rng_when_told() {
    let mut config = config("no-rng", "rng");
    config.rng = false;
    assert_boot(
        &config,
        &["virtio guest: no virtio-rng device"],
        DeathReason::Reboot,
    );
}

/// The device tree fixture `data/NAME.dts` (beside this file), compiled into `dir`.
fn fixture(dir: &Path, name: &str) -> PathBuf {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    compiled_fixture(dir, &data.join(format!("{name}.dts")))
}

/// `test`, which the fixture's `/chosen/bootargs` names, on the device tree fixture `name`
/// ([`fixture`]).
fn fixture_config(dir: &Path, name: &str, test: &str) -> VirtualMachineRawConfig {
    let mut config = config(name.rsplit('/').next().unwrap_or(name), test);
    config.params = None;
    config.device_tree = Some(fixture(dir, name));
    config
}

#[test]
fn a_restricted_dma_pool_carries_the_disk_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fixture_config(dir.path(), "restricted-dma-pool", "disks");
    config.disks = source_and_target_disks(dir.path());

    assert_boot(
        &config,
        &[
            "virtio guest: running disks",
            "virtio guest: DMA pool 0x83000000..0x83400000",
            "virtio guest: disks passed",
        ],
        DeathReason::Shutdown,
    );
    assert_target_written(&config.disks[1]);
}

#[test]
fn hostile_pci_nodes_are_reported_and_reset() {
    let dir = tempfile::tempdir().unwrap();

    assert_boot(
        &fixture_config(dir.path(), "pci", "pci"),
        &[
            "virtio guest: PCI 00:00.0 1b36:0008",
            "virtio guest: pci passed",
        ],
        DeathReason::Shutdown,
    );

    // Each fixture in data/hostile-pci/ is data/pci.dts with one property of the host bridge
    // changed.
    let cases = [
        (
            "ranges-in-ram",
            "virtio guest: PCI: PCI range 0x80000000..0x80100000 overlaps RAM",
        ),
        (
            "window-over-the-gic",
            "virtio guest: PCI: PCI range 0x8000000..0x8010000 overlaps 0x8000000..0x8010000 of \
             device tree node intc@8000000",
        ),
        (
            "empty-window",
            "virtio guest: PCI: PCI window at 0x10000000 is empty",
        ),
        (
            "reg-outside-mmio",
            "virtio guest: PCI: PCI configuration space 0x4010000000..0x4011000000 is outside \
             the MMIO range 0x0..0x40000000",
        ),
        (
            "absurd-address-cells",
            "virtio guest: DMA pool: looking for a restricted-dma-pool: unsupported \
             #address-cells or #size-cells",
        ),
        (
            "size-cells-3",
            "virtio guest: PCI: PCI host bridge cells: #address-cells 3 (3 needed), \
             #size-cells 3",
        ),
        (
            "interrupt-map-unknown-parent",
            "virtio guest: PCI: PCI interrupt-map names interrupt controller 0x1234, which is \
             not a child of the root",
        ),
        (
            "bus-range-backwards",
            "virtio guest: PCI: bad PCI bus-range <5 1>",
        ),
    ];
    for (name, report) in cases {
        let config = fixture_config(dir.path(), &format!("hostile-pci/{name}"), "pci");
        assert_boot(&config, &[report], DeathReason::Reboot);
    }
}

#[test]
fn disks_given_with_flags_are_attached_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let disks = source_and_target_disks(dir.path());
    let writable = format!("{},writable", disks[1].image.display());
    let (code, stdout) = vm_run(
        "disks",
        &[
            "--disk".as_ref(),
            disks[0].image.as_os_str(),
            "--disk".as_ref(),
            writable.as_ref(),
        ],
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("virtio guest: disks passed"), "{stdout}");
    assert_target_written(&disks[1]);
}

#[test]
fn the_virtio_console_output_follows_the_rules_of_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::write(&input, "rules\n").unwrap();
    let console_in = ["--console-in".as_ref(), input.as_os_str()];
    let expected = "virtio guest: type a line\necho: rules\n";

    // A FIFO: its reader gets everything, not an end of file before the VM starts.
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
    };
    let (code, stdout) = vm_run(
        "console",
        &[
            console_in[0],
            console_in[1],
            "--virtio-console".as_ref(),
            fifo.as_os_str(),
        ],
    );
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(reader.join().unwrap(), expected);

    // A write error is lost output: exit 2.
    let (code, stdout) = vm_run(
        "console",
        &[
            console_in[0],
            console_in[1],
            "--virtio-console".as_ref(),
            "/dev/full".as_ref(),
        ],
    );
    assert_eq!(code, Some(2), "{stdout}");
    assert!(stdout.contains("virtio guest: console passed"), "{stdout}");

    // The same file as the console: one open file holding both.
    let both = dir.path().join("both.txt");
    let (code, stdout) = vm_run(
        "console",
        &[
            console_in[0],
            console_in[1],
            "--virtio-console".as_ref(),
            both.as_os_str(),
            "--console".as_ref(),
            both.as_os_str(),
        ],
    );
    assert_eq!(code, Some(0), "{stdout}");
    // The two outputs interleave (the UART's bytes come one by one), each in its order, and
    // neither overwrites the other.
    let written = fs::read_to_string(&both).unwrap();
    for output in [
        expected,
        "virtio guest: read \"rules\" from the virtio console\nvirtio guest: console passed\n",
    ] {
        let mut rest = written.chars();
        assert!(
            output
                .chars()
                .all(|wanted| rest.any(|found| found == wanted)),
            "{output:?} is not in {written:?}"
        );
    }
}

/// The device tests in protected VMs, under the pKVM double (`vm run --protected`): vmbase shares
/// its DMA pool with the host, and the double checks every buffer a device is given against what
/// was shared, so these pass only if nothing reaches a device unshared.
mod protected {
    use super::*;

    /// `config` for `test`, in a protected VM.
    fn protected_config(name: &str, test: &str) -> VirtualMachineRawConfig {
        VirtualMachineRawConfig {
            protected_vm: true,
            ..config(&format!("{name}-protected"), test)
        }
    }

    #[test]
    fn reads_one_disk_and_writes_another() {
        read_one_disk_and_write_another(protected_config("disks", "disks"));
    }

    #[test]
    fn echoes_a_line_read_from_the_virtio_console() {
        echo_a_line_read_from_the_virtio_console(protected_config("console", "console"));
    }

    #[test]
    fn a_read_only_disk_refuses_writes() {
        refuse_writes_to_a_read_only_disk(protected_config("read-only", "read-only"));
    }

    #[test]
    fn a_silent_disk_times_out() {
        time_out_on_a_silent_disk(protected_config("timeout", "timeout"));
    }

    #[test]
    fn virtio_rng_entropy_is_not_zero() {
        let (entropy, _) = rng_boot_with(protected_config("rng", "rng"));
        assert_eq!(entropy.len(), 64, "32 bytes in hexadecimal: {entropy}");
        assert!(entropy.chars().any(|c| c != '0'), "all zeros");
    }

    /// The double ends the VM at the notification, naming the buffer, before the device
    /// answers.
    #[test]
    fn an_unshared_buffer_is_named_before_the_device_sees_it() {
        let (reason, lines) = boot(
            &protected_config("unshared-buffer", "unshared-buffer"),
            DEADLINE,
        );
        let console = lines.join("\n");
        assert_in_order(
            &lines,
            &[
                "virtio guest: handing virtio-rng 00:01.0 the buffer 0x",
                "hyp: virtio buffer at IPA 0x",
            ],
        );
        let handed = lines
            .iter()
            .find_map(|line| {
                line.strip_prefix("virtio guest: handing virtio-rng 00:01.0 the buffer ")
            })
            .and_then(|rest| rest.split(',').next())
            .expect("the guest names its buffer");
        assert!(
            console.contains(&format!("hyp: virtio buffer at IPA {handed} ")),
            "the double named another address than {handed}; console:\n{console}"
        );
        assert!(
            !console.contains("answered"),
            "the device answered; console:\n{console}"
        );
        assert_eq!(reason, DeathReason::Reboot, "console:\n{console}");
    }
}
