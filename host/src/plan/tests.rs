// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The plan's unit tests: configs checked and placed.

use super::checks::validate_memory_mib;
use super::placement::{EntryState, raw_image_name};
use super::*;
use crate::layout::{FDT_MAX_SIZE, FIRMWARE_MAX_SIZE, MAX_MEMORY_MIB, MIB};
use crate::plan::image::tests::header_bytes;
use std::fs;
use std::io::Write;

/// The placement of `config`'s boot, or why it is refused.
fn validate(config: &VirtualMachineRawConfig) -> Result<Placement, Error> {
    BootPlan::new(config).map(|plan| plan.placement)
}

/// Each loaded file's path and address.
fn loaded(placement: &Placement) -> Vec<(PathBuf, u64)> {
    placement
        .files
        .iter()
        .map(|file| (file.input.path.clone(), file.address))
        .collect()
}

#[test]
fn memory_limits() {
    assert!(validate_memory_mib(MAX_MEMORY_MIB, None).is_ok());
    assert!(matches!(
        validate_memory_mib(MAX_MEMORY_MIB + 1, None),
        Err(Error::MemoryTooLarge {
            limit_mib: 16384,
            ..
        })
    ));
    assert!(matches!(
        validate_memory_mib(2048, Some(1024)),
        Err(Error::MemoryTooLarge {
            limit_mib: 1024,
            ..
        })
    ));
}

fn config_with_image(
    image: &[u8],
    memory_mib: u32,
) -> (tempfile::TempDir, VirtualMachineRawConfig) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.bin");
    fs::write(&path, image).unwrap();
    let config = VirtualMachineRawConfig {
        bootloader: Some(path),
        memory_mib,
        ..Default::default()
    };
    (dir, config)
}

#[test]
fn image_must_fit_after_fdt_region() {
    let (_dir, config) = config_with_image(&vec![0; MIB as usize], 3);
    assert!(validate(&config).is_ok());
    let (_dir, config) = config_with_image(&vec![0; MIB as usize + 1], 3);
    let error = validate(&config).unwrap_err();
    assert!(
        matches!(error, Error::ImageTooLarge { available, required_mib: 4, .. } if available == MIB),
        "{error}"
    );
}

#[test]
fn device_tree_must_fit_its_region() {
    let (dir, mut config) = config_with_image(&[0; 4], 16);
    let tree = dir.path().join("big.dtb");
    fs::write(&tree, vec![0; FDT_MAX_SIZE as usize + 1]).unwrap();
    config.device_tree = Some(tree.clone());
    let error = validate(&config).unwrap_err();
    assert!(
        matches!(error, Error::GivenDeviceTreeTooLarge { ref path, .. } if *path == tree),
        "{error}"
    );
    fs::write(&tree, vec![0; FDT_MAX_SIZE as usize]).unwrap();
    assert!(validate(&config).is_ok());
    config.device_tree = Some(dir.path().join("missing.dtb"));
    let error = validate(&config).unwrap_err();
    assert!(
        matches!(
            error,
            Error::ImageUnreadable {
                role: "device tree",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_protected_vm_refuses_what_the_pkvm_double_cannot_honour() {
    let (_dir, config) = config_with_image(&[0; 4], 16);
    for (change, what) in [
        (
            (|c| c.device_tree = Some("t.dtb".into())) as fn(&mut VirtualMachineRawConfig),
            "a device tree of its own",
        ),
        (|c| c.num_cpus = 2, "2 CPUs"),
        (|c| c.memory_mib = 2049, "2049 MiB of RAM"),
    ] {
        let mut config = config.clone();
        config.protected_vm = true;
        change(&mut config);
        let error = validate(&config).unwrap_err();
        assert!(
            matches!(&error, Error::ProtectedVmWith { what: refused, .. } if refused.starts_with(what)),
            "{error}"
        );
    }
}

#[test]
fn refusals() {
    let (_dir, config) = config_with_image(&[0; 4], 16);
    let refuse = |change: fn(&mut VirtualMachineRawConfig)| {
        let mut config = config.clone();
        change(&mut config);
        validate(&config).unwrap_err()
    };
    assert!(matches!(
        refuse(|c| c.kernel = Some("k".into())),
        Error::BootloaderAndKernel
    ));
    assert!(matches!(
        refuse(|c| c.initrd = Some("i".into())),
        Error::BootloaderAndKernel
    ));
    assert!(matches!(refuse(|c| c.bootloader = None), Error::NoImage));
    assert!(matches!(
        refuse(|c| (c.bootloader, c.initrd) = (None, Some("i".into()))),
        Error::InitrdWithoutKernel
    ));
    assert!(matches!(
        refuse(|c| c.firmware = Some("f".into())),
        Error::FirmwareWithoutKernel
    ));
    assert!(matches!(refuse(|c| c.num_cpus = 0), Error::NoCpus));
    assert!(matches!(
        refuse(|c| c.icount_shift = Some(11)),
        Error::IcountShiftOutOfRange(11)
    ));
    assert!(matches!(
        refuse(|c| c.gdb_port = Some(0)),
        Error::GdbPortZero
    ));
    assert!(matches!(
        refuse(|c| c.platform_version = "~2.0".to_owned()),
        Error::UnsupportedPlatformVersion { .. }
    ));
    assert!(matches!(
        refuse(|c| c.platform_version = "one".to_owned()),
        Error::InvalidPlatformVersion { .. }
    ));
    assert!(matches!(
        refuse(|c| c.disks = vec![DiskImage {
            image: "/nonexistent".into(),
            writable: false
        }]),
        Error::ImageUnreadable {
            role: "disk image",
            ..
        }
    ));
}

#[test]
fn one_file_is_not_two_disks_when_either_is_writable() {
    let (dir, mut config) = config_with_image(&[0; 4], 16);
    let disk = dir.path().join("disk.img");
    fs::write(&disk, [0; 512]).unwrap();
    let link = dir.path().join("link.img");
    fs::hard_link(&disk, &link).unwrap();
    let attach = |image: &Path, writable| DiskImage {
        image: image.to_owned(),
        writable,
    };
    config.disks = vec![attach(&disk, false), attach(&disk, false)];
    assert!(validate(&config).is_ok(), "read-only twice is fine");
    for disks in [
        vec![attach(&disk, true), attach(&disk, false)],
        vec![attach(&disk, false), attach(&link, true)],
    ] {
        config.disks = disks;
        let error = validate(&config).unwrap_err();
        assert!(
            matches!(
                error,
                Error::DiskAttachedTwice {
                    first: 0,
                    second: 1,
                    ..
                }
            ),
            "{error}"
        );
    }
}

#[test]
fn text_that_no_tool_can_carry_and_params_a_given_tree_would_drop() {
    let (dir, config) = config_with_image(&[0; 4], 16);
    let mut named = config.clone();
    named.name = "a\0b".to_owned();
    assert!(matches!(
        validate(&named).unwrap_err(),
        Error::NulInText { field: "name" }
    ));
    let mut with_params = config.clone();
    with_params.params = Some("x\0".to_owned());
    assert!(matches!(
        validate(&with_params).unwrap_err(),
        Error::NulInText { field: "params" }
    ));
    let tree = dir.path().join("given.dtb");
    fs::write(&tree, [0; 16]).unwrap();
    with_params.params = Some("console=ttyAMA0".to_owned());
    with_params.device_tree = Some(tree);
    assert!(matches!(
        validate(&with_params).unwrap_err(),
        Error::ParamsWithGivenDeviceTree { .. }
    ));
}

#[test]
fn elf_images_are_refused_with_the_command_to_run() {
    let (dir, config) = config_with_image(b"\x7fELF\x02\x01\x01\0", 16);
    let error = validate(&config).unwrap_err();
    let image = dir.path().join("image.bin");
    let raw = dir.path().join("image.raw.bin");
    assert_eq!(
        error.to_string(),
        format!(
            "bootloader image {0} is an ELF file, not a raw image: convert it with \
             `llvm-objcopy -O binary {0} {1}` and boot {1}",
            image.display(),
            raw.display()
        )
    );
    assert_eq!(
        raw_image_name(Path::new("out/guest")),
        Path::new("out/guest.bin")
    );
}

#[test]
fn a_linux_image_is_refused_as_a_bootloader() {
    let (_dir, config) = config_with_image(&header_bytes(0, 5 * MIB, 0), 64);
    let error = validate(&config).unwrap_err();
    assert!(
        matches!(
            error,
            Error::KernelAsFirstImage {
                role: "bootloader image",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("boot it with --kernel"),
        "{error}"
    );
}

#[test]
fn the_first_memory_refusal_gives_the_real_minimum() {
    // A 3 MiB image needs 2 + 3 MiB: said at every size below, not 3 first.
    let (_dir, mut config) = config_with_image(&vec![0; 3 << 20], 2);
    for memory_mib in [0, 1, 2, 3, 4] {
        config.memory_mib = memory_mib;
        let error = validate(&config).unwrap_err();
        assert!(
            error.to_string().contains("at least 5"),
            "{memory_mib}: {error}"
        );
    }
    config.memory_mib = 5;
    assert!(validate(&config).is_ok());
}

#[test]
fn what_is_loaded_is_what_was_checked() {
    let dir = tempfile::tempdir().unwrap();
    let config = kernel_config(dir.path());
    let plan = config.check().unwrap();
    let initrd = &plan.placement.files[1];
    assert_eq!(plan.placement.initrd, Some(0x8200_0000..0x8200_0064));
    // The initrd grows after the check: its first 100 bytes are loaded, as its place says.
    fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("initrd"))
        .unwrap()
        .write_all(&[2; 50])
        .unwrap();
    let copy = dir.path().join("copy");
    initrd.input.copy_to(&copy).unwrap();
    assert_eq!(fs::read(&copy).unwrap(), [1; 100]);
    // Cut short: refused, naming it.
    fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("initrd"))
        .unwrap()
        .set_len(10)
        .unwrap();
    let error = initrd
        .input
        .copy_to(&dir.path().join("copy-2"))
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InputChanged {
                size: 100,
                now: 10,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn unknown_images_are_warned_about() {
    let (_dir, config) = config_with_image(b"hello\n", 16);
    let plan = config.check().unwrap();
    let warnings = plan.warnings();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("starts neither like a vmbase entry"),
        "{warnings:?}"
    );
}

#[test]
fn image_file_problems() {
    let (dir, mut config) = config_with_image(&[], 16);
    assert!(matches!(
        validate(&config).unwrap_err(),
        Error::ImageEmpty { .. }
    ));
    config.bootloader = Some(dir.path().to_owned());
    assert!(matches!(
        validate(&config).unwrap_err(),
        Error::NotAFile { .. }
    ));
    config.bootloader = Some(dir.path().join("missing.bin"));
    let error = validate(&config).unwrap_err();
    assert!(matches!(
        error,
        Error::ImageUnreadable {
            role: "bootloader image",
            ..
        }
    ));
    assert!(
        error.to_string().contains("No such file or directory"),
        "{error}"
    );
}

/// A file holding an arm64 `Image` header (text_offset 0, image_size `image_size`) padded
/// to `file_size` bytes.
fn fake_image(dir: &Path, image_size: u64, file_size: usize) -> PathBuf {
    let mut bytes = header_bytes(0, image_size, 0);
    bytes.resize(file_size, 0);
    let path = dir.join("Image");
    fs::write(&path, bytes).unwrap();
    path
}

fn kernel_config(dir: &Path) -> VirtualMachineRawConfig {
    let initrd = dir.join("initrd");
    fs::write(&initrd, [1; 100]).unwrap();
    VirtualMachineRawConfig {
        kernel: Some(fake_image(dir, 0x180_0000, 0x1000)),
        initrd: Some(initrd),
        params: Some("quiet".to_owned()),
        memory_mib: 64,
        ..Default::default()
    }
}

#[test]
fn direct_kernel_boot() {
    let dir = tempfile::tempdir().unwrap();
    let config = kernel_config(dir.path());
    let image = validate(&config).unwrap();
    let fdt_address = 0x8000_0000 + (64 << 20) - (2 << 20) - 0x1_0000;
    assert_eq!(
        loaded(&image),
        [
            (dir.path().join("Image"), 0x8000_0000),
            (dir.path().join("initrd"), 0x8200_0000)
        ]
    );
    assert_eq!(image.fdt_address, fdt_address);
    assert_eq!(
        image.entry,
        EntryState {
            pc: 0x8000_0000,
            x0: fdt_address,
            x1: 0,
            x2: 0,
            x3: 0
        }
    );
    assert_eq!(image.bootargs.as_deref(), Some("panic=-1 quiet"));
    assert_eq!(image.initrd, Some(0x8200_0000..0x8200_0064));
}

#[test]
fn kernel_without_params_still_gets_panic_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kernel_config(dir.path());
    config.params = None;
    assert_eq!(
        validate(&config).unwrap().bootargs.as_deref(),
        Some("panic=-1")
    );
}

#[test]
fn firmware_boot_enters_the_firmware_with_the_kernel_in_x1_x2() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kernel_config(dir.path());
    let firmware = dir.path().join("fw.bin");
    fs::write(&firmware, vec![0; FIRMWARE_MAX_SIZE as usize]).unwrap();
    config.firmware = Some(firmware.clone());
    let image = validate(&config).unwrap();
    assert_eq!(
        loaded(&image).last(),
        Some(&(firmware.clone(), 0x7fc0_0000))
    );
    assert_eq!(
        image.entry,
        EntryState {
            pc: 0x7fc0_0000,
            x0: image.fdt_address,
            x1: 0x8000_0000,
            x2: 0x1000,
            x3: 0
        }
    );

    fs::write(&firmware, vec![0; FIRMWARE_MAX_SIZE as usize + 1]).unwrap();
    let error = validate(&config).unwrap_err();
    assert!(
        matches!(error, Error::FirmwareTooLarge { size, .. } if size == FIRMWARE_MAX_SIZE + 1),
        "{error}"
    );
    fs::write(&firmware, []).unwrap();
    assert!(matches!(
        validate(&config).unwrap_err(),
        Error::FileEmpty {
            role: "firmware",
            ..
        }
    ));
    config.firmware = Some(dir.path().join("missing.bin"));
    assert!(matches!(
        validate(&config).unwrap_err(),
        Error::ImageUnreadable {
            role: "firmware",
            ..
        }
    ));
}

#[test]
fn kernel_that_is_not_an_image_is_refused_unless_a_firmware_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kernel_config(dir.path());
    let not_an_image = dir.path().join("not-an-image");
    fs::write(&not_an_image, [0x14; 200]).unwrap();
    config.kernel = Some(not_an_image);
    let error = validate(&config).unwrap_err();
    assert!(matches!(error, Error::NotAKernelImage { .. }), "{error}");
    assert!(error.to_string().contains("magic"), "{error}");

    let firmware = dir.path().join("fw.bin");
    fs::write(&firmware, [0; 4]).unwrap();
    config.firmware = Some(firmware);
    let image = validate(&config).unwrap();
    assert_eq!(image.entry.x1, 0x8000_0000);
    assert_eq!(image.entry.x2, 200);
    assert_eq!(image.initrd, Some(0x8100_0000..0x8100_0064));
}

#[test]
fn kernel_file_problems() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kernel_config(dir.path());
    fs::write(dir.path().join("initrd"), []).unwrap();
    assert!(matches!(
        validate(&config).unwrap_err(),
        Error::FileEmpty { role: "initrd", .. }
    ));
    config.initrd = Some(dir.path().join("missing"));
    assert!(matches!(
        validate(&config).unwrap_err(),
        Error::ImageUnreadable { role: "initrd", .. }
    ));
    config.initrd = None;
    fs::write(dir.path().join("Image"), []).unwrap();
    assert!(matches!(
        validate(&config).unwrap_err(),
        Error::FileEmpty { role: "kernel", .. }
    ));
    config.kernel = Some(dir.path().to_owned());
    assert!(matches!(
        validate(&config).unwrap_err(),
        Error::NotAFile { role: "kernel", .. }
    ));
}

#[test]
fn a_linux_image_is_refused_as_a_firmware() {
    // It would be entered at its first byte with the firmware's registers, run into its header
    // and hang or reset without a word.
    let dir = tempfile::tempdir().unwrap();
    let mut config = kernel_config(dir.path());
    let firmware = dir.path().join("fw.bin");
    fs::write(&firmware, header_bytes(0, 5 * MIB, 0)).unwrap();
    config.firmware = Some(firmware.clone());
    let error = validate(&config).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "firmware {} is an arm64 Linux Image: boot it with --kernel",
            firmware.display()
        )),
        "{error}"
    );
}

#[test]
fn an_elf_firmware_is_named_as_the_firmware() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kernel_config(dir.path());
    let firmware = dir.path().join("fw");
    fs::write(&firmware, b"\x7fELF\x02\x01\x01\0").unwrap();
    config.firmware = Some(firmware.clone());
    let error = validate(&config).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("firmware {} is an ELF file", firmware.display())),
        "{error}"
    );
}

#[test]
fn a_kernel_that_is_a_vmbase_image_or_an_elf_file_is_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kernel_config(dir.path());
    let kernel = dir.path().join("guest");
    // msr vbar_el1, x30; isb: how a vmbase entry starts.
    let mut vmbase = 0xd518_c01e_u32.to_le_bytes().to_vec();
    vmbase.extend(0xd503_3fdf_u32.to_le_bytes());
    vmbase.resize(256, 0);
    config.kernel = Some(kernel.clone());
    for (contents, expected) in [
        (vmbase, "it is a vmbase image: boot it with --bootloader"),
        (
            b"\x7fELF\x02\x01\x01\0".repeat(8),
            "it is an ELF file (vmlinux?), not the raw Image",
        ),
    ] {
        fs::write(&kernel, contents).unwrap();
        let error = validate(&config).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn a_huge_initrd_is_named_and_no_impossible_memory_is_suggested() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kernel_config(dir.path());
    let initrd = dir.path().join("huge-initrd");
    // Sparse: its size is all that may be looked at.
    fs::File::create(&initrd)
        .unwrap()
        .set_len(100 << 30)
        .unwrap();
    config.initrd = Some(initrd.clone());
    let error = validate(&config).unwrap_err().to_string();
    assert!(
        error.contains(&format!("initrd {} (107374182400 bytes)", initrd.display())),
        "{error}"
    );
    assert!(error.contains("more than the 16384 MiB"), "{error}");
    assert!(!error.contains("raise memory_mib"), "{error}");

    // A kernel placed out of reach by its header is named with the header's text_offset.
    let mut far = header_bytes(1 << 63, 0x1000, 0);
    far.resize(0x1000, 0);
    fs::write(config.kernel.as_ref().unwrap(), far).unwrap();
    config.initrd = None;
    let error = validate(&config).unwrap_err().to_string();
    assert!(
        error.contains("(4096 bytes, text_offset 0x8000000000000000)"),
        "{error}"
    );

    let (_dir, config) = config_with_image(&[], 16);
    let image = config.bootloader.clone().unwrap();
    fs::File::create(&image)
        .unwrap()
        .set_len(100 << 30)
        .unwrap();
    let error = validate(&config).unwrap_err().to_string();
    assert!(error.contains("more than the 16384 MiB"), "{error}");
    assert!(!error.contains("raise memory_mib"), "{error}");
}

#[test]
fn a_kernel_command_line_longer_than_linux_takes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kernel_config(dir.path());
    // With "panic=-1 " and the NUL, 2048 bytes: the most crosvm and Linux take.
    config.params = Some("a".repeat(2048 - 10));
    assert!(validate(&config).is_ok());
    config.params = Some("a".repeat(2048 - 9));
    let error = validate(&config).unwrap_err();
    assert!(
        matches!(error, Error::KernelCommandLineTooLong { length: 2049, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("`params`"), "{error}");
}

#[test]
fn kernel_initrd_and_device_tree_must_fit() {
    let dir = tempfile::tempdir().unwrap();
    let with_initrd = kernel_config(dir.path());
    let without_initrd = VirtualMachineRawConfig {
        initrd: None,
        ..with_initrd.clone()
    };
    // Kernel up to 24 MiB, initrd at 32 MiB, device tree region + 64 KiB: 35 MiB. Without
    // the initrd 27 MiB, also below the 3 MiB a bootloader needs: the kernel layout's
    // number, not the bootloader's.
    for (mut config, below, minimum) in [(with_initrd, 34, 35), (without_initrd, 2, 27)] {
        config.memory_mib = below;
        let error = validate(&config).unwrap_err();
        assert!(
            matches!(
                error,
                Error::KernelDoesNotFit { memory_mib, required_mib, .. }
                    if (memory_mib, required_mib) == (below, minimum)
            ),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains(&format!("at least {minimum} MiB")),
            "{error}"
        );
        config.memory_mib = minimum as u32;
        assert!(validate(&config).is_ok());
    }
}
