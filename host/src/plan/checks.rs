// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Checks of a config that need no placement: what it combines, its numbers and text, its
//! disks and virtio console, and what a protected VM cannot have.

use crate::config::{DiskImage, SUPPORTED_PLATFORM_VERSION, VirtualMachineRawConfig};
use crate::error::Error;
use crate::host::host_memory_mib;
use crate::layout::MAX_MEMORY_MIB;
use crate::plan::files::non_empty_file_start;
use crate::plan::image::ImageKind;
use crate::plan::placement::Placement;
use rustix::fs::Access;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The size of a disk sector: QEMU's raw disks are a whole number of them.
const SECTOR_SIZE: u64 = 512;

/// The largest `-icount` shift QEMU accepts.
const MAX_ICOUNT_SHIFT: u32 = 10;

/// Checks what can be checked of `config` on its own: the combination of images, the platform
/// version, the numbers, the text given to QEMU, and the disks. (RAM's minimum depends on the
/// images, and is checked where they are placed.)
pub(super) fn check_config(config: &VirtualMachineRawConfig) -> Result<(), Error> {
    if config.protected_vm {
        refuse_what_the_double_cannot_honour(config)?;
    }
    // AOSP's virtualization manager refuses a bootloader with a kernel or an initrd.
    if config.bootloader.is_some() && (config.kernel.is_some() || config.initrd.is_some()) {
        return Err(Error::BootloaderAndKernel);
    }
    if config.kernel.is_none() && config.initrd.is_some() {
        return Err(Error::InitrdWithoutKernel);
    }
    if config.kernel.is_none() && config.firmware.is_some() {
        return Err(Error::FirmwareWithoutKernel);
    }
    if config.bootloader.is_none() && config.kernel.is_none() {
        return Err(Error::NoImage);
    }
    validate_platform_version(config)?;
    // The minimum is what the image (or kernel, initrd and device tree) needs: checked with
    // their layout, so that the message says what needs it and gives the real minimum.
    validate_memory_mib(config.memory_mib, host_memory_mib())?;
    if config.num_cpus == 0 {
        return Err(Error::NoCpus);
    }
    if let Some(shift) = config
        .icount_shift
        .filter(|&shift| shift > MAX_ICOUNT_SHIFT)
    {
        return Err(Error::IcountShiftOutOfRange(shift));
    }
    if config.gdb_port == Some(0) {
        return Err(Error::GdbPortZero);
    }
    if config.name.contains('\0') {
        return Err(Error::NulInText { field: "name" });
    }
    if config
        .params
        .as_deref()
        .is_some_and(|params| params.contains('\0'))
    {
        return Err(Error::NulInText { field: "params" });
    }
    for disk in &config.disks {
        non_empty_file_start("disk image", &disk.image, 0)?;
    }
    refuse_shared_writable_disk(&config.disks)?;
    refuse_writable_input_disk(config)?;
    Ok(())
}

/// Checks the virtio console's input as QEMU's pipe backend will open it: a regular file, FIFO
/// or character device that may be opened for reading and writing (it is only read). It is
/// not opened here: opening a FIFO would let a writer waiting for a reader go ahead, and
/// closing it again would leave that writer without one.
pub(super) fn check_console_input(path: &Path) -> Result<(), Error> {
    let role = "virtio console input";
    let unreadable = |source| Error::ImageUnreadable {
        role,
        path: path.to_owned(),
        source,
    };
    let file_type = fs::metadata(path).map_err(unreadable)?.file_type();
    if !(file_type.is_file() || file_type.is_fifo() || file_type.is_char_device()) {
        return Err(Error::NotAFile {
            role,
            path: path.to_owned(),
        });
    }
    rustix::fs::access(path, Access::READ_OK | Access::WRITE_OK).map_err(|errno| {
        Error::ConsoleInputUnopenable {
            path: path.to_owned(),
            source: errno.into(),
        }
    })
}

/// Refuses `output` (the virtio console's) when it names one of the VM's input files.
pub(super) fn refuse_input_as_output(
    config: &VirtualMachineRawConfig,
    output: &Path,
) -> Result<(), Error> {
    let Ok(output_metadata) = fs::metadata(output) else {
        return Ok(());
    };
    for (input_role, input) in config.input_files() {
        if let Ok(input_metadata) = fs::metadata(input)
            && (input_metadata.dev(), input_metadata.ino())
                == (output_metadata.dev(), output_metadata.ino())
        {
            return Err(Error::OutputIsInput {
                output_role: "virtio console",
                output: output.to_owned(),
                input_role,
                input: input.to_owned(),
            });
        }
    }
    Ok(())
}

/// The most RAM the pKVM double maps for a guest: up to 4 GiB (its stage 2 has 32-bit IPAs),
/// which also keeps QEMU's PCI windows below RAM (`highmem=off`), where the double looks for them.
const PROTECTED_MAX_MEMORY_MIB: u32 = 2048;

/// Refuses, for a protected VM, what the pKVM double cannot honour.
fn refuse_what_the_double_cannot_honour(config: &VirtualMachineRawConfig) -> Result<(), Error> {
    let refuse = |what: String, remedy| Err(Error::ProtectedVmWith { what, remedy });
    if config.device_tree.is_some() {
        return refuse(
            "a device tree of its own (--dtb, `device_tree`)".to_owned(),
            "the double works on QEMU's machine as vm describes it; drop --dtb, or --protected",
        );
    }
    if config.num_cpus > 1 {
        return refuse(
            format!("{} CPUs", config.num_cpus),
            "the double runs one vCPU; use --cpus 1",
        );
    }
    if config.memory_mib > PROTECTED_MAX_MEMORY_MIB {
        return refuse(
            format!("{} MiB of RAM", config.memory_mib),
            "the double maps guest RAM below 4 GiB only; use --mem 2048 or less",
        );
    }
    Ok(())
}

/// Refuses a writable disk that is also one of the VM's other inputs (image, kernel, initrd,
/// firmware, device tree, console input): the guest would overwrite it.
fn refuse_writable_input_disk(config: &VirtualMachineRawConfig) -> Result<(), Error> {
    let identity = |path: &Path| fs::metadata(path).map(|m| (m.dev(), m.ino())).ok();
    let inputs = config.input_files();
    let others: Vec<_> = inputs
        .iter()
        .filter(|(role, _)| *role != "disk image")
        .filter_map(|&(role, path)| Some((role, path, identity(path)?)))
        .collect();
    for (index, disk) in config.disks.iter().enumerate() {
        let Some(disk_identity) = disk.writable.then(|| identity(&disk.image)).flatten() else {
            continue;
        };
        if let Some(&(input_role, input, _)) =
            others.iter().find(|(_, _, other)| *other == disk_identity)
        {
            return Err(Error::WritableDiskIsInput {
                path: disk.image.clone(),
                index,
                input_role,
                input: input.to_owned(),
            });
        }
    }
    Ok(())
}

/// Warnings about disks whose size is not a whole number of 512-byte sectors: QEMU shows the
/// guest only the whole sectors.
pub(super) fn disk_warnings(disks: &[DiskImage]) -> Vec<String> {
    disks
        .iter()
        .filter_map(|disk| {
            let size = fs::metadata(&disk.image).ok()?.len();
            let cut = size % SECTOR_SIZE;
            (cut != 0).then(|| {
                format!(
                    "disk image {} is {size} bytes, not a multiple of {SECTOR_SIZE}: the guest \
                     sees only its first {} bytes (the last {cut} are cut off)",
                    disk.image.display(),
                    size - cut
                )
            })
        })
        .collect()
}

/// Refuses one file attached as two disks when either is writable: QEMU would refuse it with
/// a message that blames another process.
fn refuse_shared_writable_disk(disks: &[DiskImage]) -> Result<(), Error> {
    // Each disk was checked to be a readable regular file, so its metadata is there.
    let identity = |disk: &DiskImage| fs::metadata(&disk.image).map(|m| (m.dev(), m.ino())).ok();
    for (second, disk) in disks.iter().enumerate() {
        let same = disks[..second].iter().position(|earlier| {
            (earlier.writable || disk.writable) && identity(earlier) == identity(disk)
        });
        if let Some(first) = same {
            return Err(Error::DiskAttachedTwice {
                path: disk.image.clone(),
                first,
                second,
            });
        }
    }
    Ok(())
}

/// Checks that `platform_version` accepts the platform this host provides.
fn validate_platform_version(config: &VirtualMachineRawConfig) -> Result<(), Error> {
    let requirement = semver::VersionReq::parse(&config.platform_version).map_err(|source| {
        Error::InvalidPlatformVersion {
            requested: config.platform_version.clone(),
            source,
        }
    })?;
    let supported = semver::Version::parse(SUPPORTED_PLATFORM_VERSION)
        .expect("SUPPORTED_PLATFORM_VERSION is a valid version");
    if !requirement.matches(&supported) {
        return Err(Error::UnsupportedPlatformVersion {
            requested: config.platform_version.clone(),
            supported: SUPPORTED_PLATFORM_VERSION,
        });
    }
    Ok(())
}

/// Warnings about what may still go wrong: a bootloader or firmware image that starts neither
/// like a vmbase binary nor like an arm64 Linux `Image`.
pub(super) fn warnings(
    config: &VirtualMachineRawConfig,
    placement: &Placement,
    kind: &ImageKind,
) -> Vec<String> {
    if *kind != ImageKind::Unknown {
        return Vec::new();
    }
    let (role, address) = match &config.firmware {
        Some(_) => ("firmware", "0x7fc0_0000"),
        None => ("bootloader image", "0x8020_0000"),
    };
    let path = placement
        .files
        .iter()
        .find(|file| file.address == placement.entry.pc)
        .map_or(Path::new(""), |file| file.input.path.as_path());
    vec![format!(
        "{role} {} starts neither like a vmbase entry (msr vbar_el1 and isb within its first 8 \
         instructions) nor like an arm64 Image (magic ARM\\x64 at 0x38); if it is not raw \
         aarch64 code linked at {address}, the guest will not run",
        path.display()
    )]
}

/// Checks `memory_mib` against the cap, and `host_memory_mib` when known.
pub(super) fn validate_memory_mib(
    memory_mib: u32,
    host_memory_mib: Option<u64>,
) -> Result<(), Error> {
    if memory_mib > MAX_MEMORY_MIB {
        return Err(Error::MemoryTooLarge {
            memory_mib,
            limit_mib: MAX_MEMORY_MIB.into(),
            limit: "vmclient's fixed cap of 16 GiB",
        });
    }
    if let Some(host_memory_mib) = host_memory_mib.filter(|&host| u64::from(memory_mib) > host) {
        return Err(Error::MemoryTooLarge {
            memory_mib,
            limit_mib: host_memory_mib,
            limit: "the host's physical memory",
        });
    }
    Ok(())
}
