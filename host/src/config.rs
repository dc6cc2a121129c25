// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! VM configuration: the library's `VirtualMachineRawConfig` and AOSP's `vm run` JSON format.

use crate::boot_stub::EntryState;
use crate::error::Error;
use crate::image::{self, ImageKind};
use crate::kernel::{IMAGE_HEADER_SIZE, ImageHeader, KernelPayload, kernel_layout};
use crate::layout::{
    FDT_ADDRESS, FDT_MAX_SIZE, FIRMWARE_ADDRESS, FIRMWARE_MAX_SIZE, IMAGE_ADDRESS, MAX_MEMORY_MIB,
    MIB, MIN_MEMORY_MIB, RAM_START,
};
use serde::Deserialize;
use std::fs;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// RAM given to a VM whose config does not say, in MiB: crosvm's default `--mem`.
pub const DEFAULT_MEMORY_MIB: u32 = 256;

/// The platform version this host provides; `platform_version` must accept it.
pub const SUPPORTED_PLATFORM_VERSION: &str = "1.0.0";

/// The platform version requirement used when a config does not give one.
const DEFAULT_PLATFORM_VERSION: &str = "~1.0";

/// The largest `-icount` shift QEMU accepts.
const MAX_ICOUNT_SHIFT: u32 = 10;

/// What a kernel boot's command line starts with, as under crosvm: a kernel panic resets the VM
/// at once (the host sees `Reboot`) instead of leaving it hung.
pub(crate) const KERNEL_BASE_PARAMS: &str = "panic=-1";

/// A VM to boot, named after AOSP's `VirtualMachineRawConfig`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualMachineRawConfig {
    /// Name of the VM, shown in the host's process list (QEMU's `-name`).
    pub name: String,
    /// Raw aarch64 image loaded at `0x8020_0000` and entered at its first byte. Exclusive with
    /// `kernel` and `initrd`.
    pub bootloader: Option<PathBuf>,
    /// A Linux kernel (arm64 `Image`) to boot as crosvm does: loaded at `0x8000_0000` plus its
    /// `text_offset` and entered there, with the device tree 2 MiB + 64 KiB below the end of
    /// RAM; or, with a `firmware`, handed to the firmware.
    pub kernel: Option<PathBuf>,
    /// An initrd for `kernel`, loaded at the first 16 MiB boundary after it and named in
    /// `/chosen` (`linux,initrd-start`, `linux,initrd-end`).
    pub initrd: Option<PathBuf>,
    /// Command line for the guest, given as `/chosen/bootargs` in its device tree; a kernel's
    /// starts with `panic=-1`, as under crosvm.
    pub params: Option<String>,
    /// A VM firmware that boots `kernel`, as crosvm's `--unprotected-vm-with-firmware` runs
    /// one: loaded in the 4 MiB region at `0x7fc0_0000` and entered at its first byte with
    /// `x0` = device tree, `x1` = the kernel's entry point, `x2` = the kernel's size in bytes,
    /// `x3` = 0. Kernel, initrd and device tree are where a direct kernel boot puts them. A
    /// kernel that is not an arm64 `Image` is then loaded at `0x8000_0000` as it is, for the
    /// firmware to refuse. Not part of AOSP's `VirtualMachineRawConfig`.
    pub firmware: Option<PathBuf>,
    /// Disk images, attached as virtio-blk PCI devices in order.
    pub disks: Vec<DiskImage>,
    /// Whether the VM must be protected (pKVM): refused, QEMU cannot provide it.
    pub protected_vm: bool,
    /// RAM described to the guest, from `0x8000_0000`, in MiB.
    pub memory_mib: u32,
    /// Number of virtual CPUs; all but the first start powered off until PSCI `CPU_ON`.
    pub num_cpus: u32,
    /// Semver requirement on the platform version, e.g. `~1.0`; must accept
    /// [`SUPPORTED_PLATFORM_VERSION`].
    pub platform_version: String,
    /// When set, QEMU's gdb stub listens on this port of 127.0.0.1 and the VM waits, paused,
    /// until a debugger connects and continues it.
    pub gdb_port: Option<u16>,
    /// When set, QEMU counts instructions (`-icount shift=N`): each instruction takes
    /// 2^N ns of virtual time, making guest timing deterministic at the cost of speed, and
    /// [`crate::VmInstance::instructions_executed`] tells how many ran.
    pub icount_shift: Option<u32>,
    /// A device tree to give the guest instead of QEMU's own (rewritten for this config):
    /// loaded as it is, unchecked, so a guest can be tried on another platform's tree (such
    /// as crosvm's) or on a corrupt one. At most 2 MiB. Not part of AOSP's JSON format.
    pub device_tree: Option<PathBuf>,
    /// Whether the VM gets a virtio-rng PCI device (after the disks) fed by the host's
    /// entropy, as crosvm gives every VM one unless told `--no-rng`.
    pub rng: bool,
    /// A file (or FIFO) whose bytes the guest reads from its virtio console (AOSP's
    /// `--console-in`). With this or [`Self::virtio_console`] set, the VM gets a virtio-serial
    /// PCI device with one `virtconsole` port, after the disks and the rng.
    pub console_in: Option<PathBuf>,
    /// Where the guest's virtio console output goes (the UART console stays `--console`).
    pub virtio_console: Option<PathBuf>,
}

impl Default for VirtualMachineRawConfig {
    fn default() -> Self {
        Self {
            name: "vm".to_owned(),
            bootloader: None,
            kernel: None,
            initrd: None,
            params: None,
            firmware: None,
            disks: Vec::new(),
            protected_vm: false,
            memory_mib: DEFAULT_MEMORY_MIB,
            num_cpus: 1,
            platform_version: DEFAULT_PLATFORM_VERSION.to_owned(),
            gdb_port: None,
            icount_shift: None,
            device_tree: None,
            rng: true,
            console_in: None,
            virtio_console: None,
        }
    }
}

/// A disk image attached to the VM.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskImage {
    /// The raw image file.
    pub image: PathBuf,
    /// Whether the guest may write to it; otherwise QEMU opens it read-only.
    #[serde(default)]
    pub writable: bool,
}

/// How many CPUs a JSON config asks for, with AOSP's names.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CpuTopology {
    /// One vCPU.
    OneCpu,
    /// As many vCPUs as the host has CPUs.
    MatchHost,
}

/// The JSON config file of `vm run`, with AOSP's field names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VmConfigJson {
    name: Option<String>,
    bootloader: Option<PathBuf>,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    params: Option<String>,
    /// This project's extension to AOSP's format: see [`VirtualMachineRawConfig::firmware`].
    firmware: Option<PathBuf>,
    #[serde(default)]
    disks: Vec<DiskImage>,
    #[serde(default)]
    protected: bool,
    memory_mib: Option<u32>,
    cpu_topology: Option<CpuTopology>,
    num_cpus: Option<u32>,
    platform_version: Option<String>,
}

impl VirtualMachineRawConfig {
    /// Reads an AOSP `vm run` JSON config; relative paths are taken from the file's directory.
    pub fn from_json_file(path: &Path) -> Result<Self, Error> {
        let text = fs::read_to_string(path).map_err(|source| Error::ConfigUnreadable {
            path: path.to_owned(),
            source,
        })?;
        let base_dir = path.parent().unwrap_or(Path::new(""));
        Self::from_json_str(&text, path, base_dir)
    }

    /// Parses an AOSP `vm run` JSON config; `path` names it in errors and relative paths are
    /// taken from `base_dir`.
    pub fn from_json_str(text: &str, path: &Path, base_dir: &Path) -> Result<Self, Error> {
        let json: VmConfigJson =
            serde_json::from_str(text).map_err(|error| Error::ConfigMalformed {
                path: path.to_owned(),
                line: error.line(),
                column: error.column(),
                message: json_error_message(&error),
            })?;
        let num_cpus = match (json.cpu_topology, json.num_cpus) {
            (Some(_), Some(_)) => {
                return Err(Error::ConfigInvalid {
                    path: path.to_owned(),
                    reason: "give either `cpu_topology` or `num_cpus`, not both".to_owned(),
                });
            }
            (Some(CpuTopology::OneCpu), None) | (None, None) => 1,
            (Some(CpuTopology::MatchHost), None) => host_cpu_count(),
            (None, Some(num_cpus)) => num_cpus,
        };
        let resolve = |relative: PathBuf| base_dir.join(relative);
        let defaults = Self::default();
        Ok(Self {
            name: json.name.unwrap_or(defaults.name),
            bootloader: json.bootloader.map(resolve),
            kernel: json.kernel.map(resolve),
            initrd: json.initrd.map(resolve),
            params: json.params,
            firmware: json.firmware.map(resolve),
            disks: json
                .disks
                .into_iter()
                .map(|disk| DiskImage {
                    image: resolve(disk.image),
                    writable: disk.writable,
                })
                .collect(),
            protected_vm: json.protected,
            memory_mib: json.memory_mib.unwrap_or(defaults.memory_mib),
            num_cpus,
            platform_version: json.platform_version.unwrap_or(defaults.platform_version),
            gdb_port: None,
            icount_shift: None,
            device_tree: None,
            ..defaults
        })
    }

    /// Checks everything that can be checked before running QEMU; returns what to boot.
    pub(crate) fn validate(&self) -> Result<BootImage, Error> {
        self.validate_image().map(|(image, _)| image)
    }

    /// [`Self::validate`], also saying what kind of image it is.
    fn validate_image(&self) -> Result<(BootImage, ImageKind), Error> {
        if self.protected_vm {
            return Err(Error::ProtectedVmUnsupported);
        }
        // AOSP's virtualization manager refuses a bootloader with a kernel or an initrd.
        if self.bootloader.is_some() && (self.kernel.is_some() || self.initrd.is_some()) {
            return Err(Error::BootloaderAndKernel);
        }
        if self.kernel.is_none() && self.initrd.is_some() {
            return Err(Error::InitrdWithoutKernel);
        }
        if self.kernel.is_none() && self.firmware.is_some() {
            return Err(Error::FirmwareWithoutKernel);
        }
        if self.bootloader.is_none() && self.kernel.is_none() {
            return Err(Error::NoImage);
        }
        self.validate_platform_version()?;
        validate_memory_mib(self.memory_mib, host_memory_mib())?;
        if self.num_cpus == 0 {
            return Err(Error::NoCpus);
        }
        if let Some(shift) = self.icount_shift.filter(|&shift| shift > MAX_ICOUNT_SHIFT) {
            return Err(Error::IcountShiftOutOfRange(shift));
        }
        if self.gdb_port == Some(0) {
            return Err(Error::GdbPortZero);
        }
        if self.name.contains('\0') {
            return Err(Error::NulInText { field: "name" });
        }
        if self
            .params
            .as_deref()
            .is_some_and(|params| params.contains('\0'))
        {
            return Err(Error::NulInText { field: "params" });
        }
        for disk in &self.disks {
            regular_file_size("disk image", &disk.image)?;
        }
        if let Some(device_tree) = &self.device_tree {
            let size = regular_file_size("device tree", device_tree)?;
            if size > FDT_MAX_SIZE {
                return Err(Error::GivenDeviceTreeTooLarge {
                    path: device_tree.clone(),
                    size,
                });
            }
            if self.params.is_some() {
                return Err(Error::ParamsWithGivenDeviceTree {
                    path: device_tree.clone(),
                });
            }
        }
        match (&self.bootloader, &self.kernel) {
            (Some(bootloader), _) => self.bootloader_boot(bootloader),
            (None, Some(kernel)) => self.kernel_boot(kernel),
            (None, None) => Err(Error::NoImage),
        }
    }

    /// A bootloader image at `0x8020_0000`, with the device tree at the start of RAM.
    fn bootloader_boot(&self, bootloader: &Path) -> Result<(BootImage, ImageKind), Error> {
        let size = regular_file_size("bootloader image", bootloader)?;
        if size == 0 {
            return Err(Error::ImageEmpty {
                path: bootloader.to_owned(),
            });
        }
        let kind = image::inspect(&read_start("bootloader image", bootloader)?);
        if kind == ImageKind::Elf {
            return Err(Error::ImageIsElf {
                path: bootloader.to_owned(),
                raw: raw_image_name(bootloader),
            });
        }
        let ram_end = RAM_START + u64::from(self.memory_mib) * MIB;
        let available = ram_end - IMAGE_ADDRESS;
        if size > available {
            return Err(Error::ImageTooLarge {
                path: bootloader.to_owned(),
                size,
                memory_mib: self.memory_mib,
                available,
                required_mib: (IMAGE_ADDRESS - RAM_START + size).div_ceil(MIB),
            });
        }
        let needed_end = image::ram_end_needed(&kind, size);
        if needed_end > ram_end {
            return Err(Error::ImageNeedsMoreMemory {
                path: bootloader.to_owned(),
                what: match kind {
                    ImageKind::Arm64Image { .. } => "the image_size in its arm64 Image header",
                    _ => "the end of its boot stack, in writable_data",
                },
                ram_end: needed_end,
                memory_mib: self.memory_mib,
                configured_end: ram_end,
                required_mib: (needed_end - RAM_START).div_ceil(MIB),
            });
        }
        let image = BootImage {
            files: vec![(bootloader.to_owned(), IMAGE_ADDRESS)],
            fdt_address: FDT_ADDRESS,
            entry: EntryState::BOOTLOADER,
            bootargs: self.params.clone(),
            initrd: None,
        };
        Ok((image, kind))
    }

    /// Checks everything that can be checked without running QEMU, as
    /// [`crate::VmInstance::create`] does first, and returns warnings about what may still go
    /// wrong: a bootloader or firmware image that starts neither like a vmbase binary nor like an
    /// arm64 Linux `Image`.
    pub fn check(&self) -> Result<Vec<String>, Error> {
        let (image, kind) = self.validate_image()?;
        let mut warnings = Vec::new();
        if kind == ImageKind::Unknown {
            let (role, address) = match &self.firmware {
                Some(_) => ("firmware", "0x7fc0_0000"),
                None => ("bootloader image", "0x8020_0000"),
            };
            let path = image
                .files
                .iter()
                .find(|(_, load_address)| *load_address == image.entry.pc)
                .map_or(Path::new(""), |(path, _)| path.as_path());
            warnings.push(format!(
                "{role} {} starts neither like a vmbase entry (msr vbar_el1 and isb within its \
                 first 8 instructions) nor like an arm64 Image (magic ARM\\x64 at 0x38); if it \
                 is not raw aarch64 code linked at {address}, the guest will not run",
                path.display()
            ));
        }
        Ok(warnings)
    }

    /// The files the VM reads, each with what it is for, for callers that must not overwrite
    /// them (an output file that is an input would destroy it).
    pub fn input_files(&self) -> Vec<(&'static str, &Path)> {
        let mut inputs = Vec::new();
        for (role, path) in [
            ("bootloader image", &self.bootloader),
            ("kernel", &self.kernel),
            ("initrd", &self.initrd),
            ("firmware", &self.firmware),
            ("device tree", &self.device_tree),
            ("virtio console input", &self.console_in),
        ] {
            if let Some(path) = path {
                inputs.push((role, path.as_path()));
            }
        }
        for disk in &self.disks {
            inputs.push(("disk image", disk.image.as_path()));
        }
        inputs
    }

    /// A kernel (and initrd) placed as crosvm places them, entered directly or through the
    /// firmware.
    fn kernel_boot(&self, kernel: &Path) -> Result<(BootImage, ImageKind), Error> {
        let kernel_file_size = non_empty_file_size("kernel", kernel)?;
        let header = match (ImageHeader::parse(&file_start(kernel)?), &self.firmware) {
            (Ok(header), _) => Some(header),
            // Checking the payload is the firmware's job: the tests of firmware rely on that.
            (Err(_), Some(_)) => None,
            (Err(reason), None) => {
                return Err(Error::NotAKernelImage {
                    path: kernel.to_owned(),
                    reason,
                });
            }
        };
        let initrd_size = self
            .initrd
            .as_deref()
            .map(|initrd| non_empty_file_size("initrd", initrd))
            .transpose()?;
        // What runs first: the firmware, or else the kernel itself.
        let kind = match &self.firmware {
            Some(firmware) => {
                let size = non_empty_file_size("firmware", firmware)?;
                if size > FIRMWARE_MAX_SIZE {
                    return Err(Error::FirmwareTooLarge {
                        path: firmware.clone(),
                        size,
                    });
                }
                let kind = image::inspect(&read_start("firmware", firmware)?);
                if kind == ImageKind::Elf {
                    return Err(Error::ImageIsElf {
                        path: firmware.clone(),
                        raw: raw_image_name(firmware),
                    });
                }
                kind
            }
            None => ImageKind::Arm64Image {
                image_size: header.as_ref().map_or(0, |header| header.image_size),
            },
        };
        let payload = KernelPayload {
            header,
            kernel_file_size,
            initrd_size,
        };
        let layout = kernel_layout(&payload, self.memory_mib).map_err(|does_not_fit| {
            Error::KernelDoesNotFit {
                memory_mib: self.memory_mib,
                required_mib: does_not_fit.required_mib,
            }
        })?;

        let mut files = vec![(kernel.to_owned(), layout.kernel.start)];
        if let (Some(initrd), Some(range)) = (&self.initrd, &layout.initrd) {
            files.push((initrd.clone(), range.start));
        }
        let entry = match &self.firmware {
            Some(firmware) => {
                files.push((firmware.clone(), FIRMWARE_ADDRESS));
                EntryState {
                    pc: FIRMWARE_ADDRESS,
                    x0: layout.fdt_address,
                    x1: layout.kernel.start,
                    x2: kernel_file_size,
                }
            }
            None => EntryState {
                pc: layout.kernel.start,
                x0: layout.fdt_address,
                x1: 0,
                x2: 0,
            },
        };
        let bootargs = match &self.params {
            Some(params) => format!("{KERNEL_BASE_PARAMS} {params}"),
            None => KERNEL_BASE_PARAMS.to_owned(),
        };
        let image = BootImage {
            files,
            fdt_address: layout.fdt_address,
            entry,
            bootargs: Some(bootargs),
            initrd: layout.initrd,
        };
        Ok((image, kind))
    }

    fn validate_platform_version(&self) -> Result<(), Error> {
        let requirement = semver::VersionReq::parse(&self.platform_version).map_err(|source| {
            Error::InvalidPlatformVersion {
                requested: self.platform_version.clone(),
                source,
            }
        })?;
        let supported = semver::Version::parse(SUPPORTED_PLATFORM_VERSION)
            .expect("SUPPORTED_PLATFORM_VERSION is a valid version");
        if !requirement.matches(&supported) {
            return Err(Error::UnsupportedPlatformVersion {
                requested: self.platform_version.clone(),
                supported: SUPPORTED_PLATFORM_VERSION,
            });
        }
        Ok(())
    }
}

/// What a validated config boots: the files QEMU loads, the device tree's place and contents,
/// and the registers the boot stub sets.
#[derive(Debug)]
pub(crate) struct BootImage {
    /// Files loaded into guest memory before the first instruction, with their addresses (the
    /// device tree is not among them).
    pub(crate) files: Vec<(PathBuf, u64)>,
    /// Where the device tree is loaded.
    pub(crate) fdt_address: u64,
    /// The guest's first instruction and argument registers.
    pub(crate) entry: EntryState,
    /// `/chosen/bootargs` of the generated device tree.
    pub(crate) bootargs: Option<String>,
    /// The initrd's place, for `/chosen` of the generated device tree.
    pub(crate) initrd: Option<Range<u64>>,
}

/// The first bytes of an image, as many as [`image::inspect`] looks at.
fn read_start(role: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    let mut start = Vec::with_capacity(image::INSPECTED_BYTES);
    fs::File::open(path)
        .and_then(|file| {
            file.take(image::INSPECTED_BYTES as u64)
                .read_to_end(&mut start)
        })
        .map_err(|source| Error::ImageUnreadable {
            role,
            path: path.to_owned(),
            source,
        })?;
    Ok(start)
}

/// Where to suggest writing the raw image made from ELF file `elf`: beside it, `.bin`.
fn raw_image_name(elf: &Path) -> PathBuf {
    let raw = elf.with_extension("bin");
    if raw == elf {
        elf.with_extension("raw.bin")
    } else {
        raw
    }
}

/// serde_json's message without its trailing " at line L column C", which the error repeats.
fn json_error_message(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    message
        .strip_suffix(&position)
        .unwrap_or(&message)
        .to_owned()
}

/// Checks `memory_mib` against the layout and against `host_memory_mib` when known.
fn validate_memory_mib(memory_mib: u32, host_memory_mib: Option<u64>) -> Result<(), Error> {
    if memory_mib < MIN_MEMORY_MIB {
        return Err(Error::MemoryTooSmall {
            memory_mib,
            minimum_mib: MIN_MEMORY_MIB,
        });
    }
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

/// The size of a regular file that can be opened for reading.
fn regular_file_size(role: &'static str, path: &Path) -> Result<u64, Error> {
    let unreadable = |source| Error::ImageUnreadable {
        role,
        path: path.to_owned(),
        source,
    };
    let metadata = fs::metadata(path).map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(Error::NotAFile {
            role,
            path: path.to_owned(),
        });
    }
    fs::File::open(path).map_err(unreadable)?;
    Ok(metadata.len())
}

/// The size of a file that [`regular_file_size`] accepts and that is not empty.
fn non_empty_file_size(role: &'static str, path: &Path) -> Result<u64, Error> {
    match regular_file_size(role, path)? {
        0 => Err(Error::FileEmpty {
            role,
            path: path.to_owned(),
        }),
        size => Ok(size),
    }
}

/// The first bytes of a kernel file: its `Image` header if it has one.
fn file_start(path: &Path) -> Result<Vec<u8>, Error> {
    let mut start = Vec::with_capacity(IMAGE_HEADER_SIZE);
    fs::File::open(path)
        .and_then(|file| file.take(IMAGE_HEADER_SIZE as u64).read_to_end(&mut start))
        .map_err(|source| Error::ImageUnreadable {
            role: "kernel",
            path: path.to_owned(),
            source,
        })?;
    Ok(start)
}

/// The host's physical memory (`MemTotal`), if `/proc/meminfo` says.
fn host_memory_mib() -> Option<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib / 1024)
}

/// The number of CPUs this process may use, for `cpu_topology: "match_host"`.
fn host_cpu_count() -> u32 {
    std::thread::available_parallelism()
        .map_or(1, |count| u32::try_from(count.get()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<VirtualMachineRawConfig, Error> {
        VirtualMachineRawConfig::from_json_str(text, Path::new("vm.json"), Path::new("/configs"))
    }

    #[test]
    fn full_json_config() {
        let config = parse(
            r#"{
                "name": "example",
                "bootloader": "out/vmbase_example.bin",
                "params": "console=pl011",
                "disks": [{"image": "disk.img", "writable": true}, {"image": "/abs/ro.img"}],
                "protected": false,
                "memory_mib": 64,
                "cpu_topology": "one_cpu",
                "platform_version": "~1.0"
            }"#,
        )
        .unwrap();
        assert_eq!(
            config,
            VirtualMachineRawConfig {
                name: "example".to_owned(),
                bootloader: Some("/configs/out/vmbase_example.bin".into()),
                params: Some("console=pl011".to_owned()),
                disks: vec![
                    DiskImage {
                        image: "/configs/disk.img".into(),
                        writable: true
                    },
                    DiskImage {
                        image: "/abs/ro.img".into(),
                        writable: false
                    },
                ],
                memory_mib: 64,
                ..Default::default()
            }
        );
    }

    #[test]
    fn minimal_json_config_takes_defaults() {
        let config = parse(r#"{"bootloader": "a.bin"}"#).unwrap();
        assert_eq!(config.memory_mib, DEFAULT_MEMORY_MIB);
        assert_eq!(config.num_cpus, 1);
        assert_eq!(config.platform_version, "~1.0");
        assert!(!config.protected_vm);
    }

    #[test]
    fn match_host_and_num_cpus() {
        assert_eq!(
            parse(r#"{"cpu_topology": "match_host"}"#).unwrap().num_cpus,
            host_cpu_count()
        );
        assert_eq!(parse(r#"{"num_cpus": 3}"#).unwrap().num_cpus, 3);
        let error = parse(r#"{"num_cpus": 3, "cpu_topology": "one_cpu"}"#).unwrap_err();
        assert!(matches!(error, Error::ConfigInvalid { .. }), "{error}");
    }

    #[test]
    fn malformed_json_reports_position() {
        let error = parse("{\n  \"bootloader\": \"a.bin\",\n  \"memory_mib\": ,\n}").unwrap_err();
        let Error::ConfigMalformed { line, column, .. } = &error else {
            panic!("{error}")
        };
        assert_eq!((*line, *column), (3, 17));
        assert!(
            error
                .to_string()
                .starts_with("malformed VM config vm.json at line 3, column 17: ")
        );
        assert!(
            !error.to_string().contains(" at line 3 column 17"),
            "{error}"
        );
    }

    #[test]
    fn unknown_field_is_refused_with_position() {
        let error = parse("{\n  \"bootloadr\": \"a.bin\"\n}").unwrap_err();
        let Error::ConfigMalformed { line, message, .. } = &error else {
            panic!("{error}")
        };
        assert_eq!(*line, 2);
        assert!(
            message.starts_with("unknown field `bootloadr`"),
            "{message}"
        );
    }

    #[test]
    fn unknown_disk_field_and_bad_topology_are_refused() {
        let error = parse(r#"{"disks": [{"image": "a", "partitions": []}]}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `partitions`"),
            "{error}"
        );
        let error = parse(r#"{"cpu_topology": "two_cpus"}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown variant `two_cpus`"),
            "{error}"
        );
    }

    #[test]
    fn memory_limits() {
        assert!(matches!(
            validate_memory_mib(MIN_MEMORY_MIB - 1, None),
            Err(Error::MemoryTooSmall { .. })
        ));
        assert!(validate_memory_mib(MIN_MEMORY_MIB, None).is_ok());
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
        assert!(config.validate().is_ok());
        let (_dir, config) = config_with_image(&vec![0; MIB as usize + 1], 3);
        let error = config.validate().unwrap_err();
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
        let error = config.validate().unwrap_err();
        assert!(
            matches!(error, Error::GivenDeviceTreeTooLarge { ref path, .. } if *path == tree),
            "{error}"
        );
        fs::write(&tree, vec![0; FDT_MAX_SIZE as usize]).unwrap();
        assert!(config.validate().is_ok());
        config.device_tree = Some(dir.path().join("missing.dtb"));
        let error = config.validate().unwrap_err();
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
    fn refusals() {
        let (_dir, config) = config_with_image(&[0; 4], 16);
        let refuse = |change: fn(&mut VirtualMachineRawConfig)| {
            let mut config = config.clone();
            change(&mut config);
            config.validate().unwrap_err()
        };
        assert!(matches!(
            refuse(|c| c.protected_vm = true),
            Error::ProtectedVmUnsupported
        ));
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
    fn text_that_no_tool_can_carry_and_params_a_given_tree_would_drop() {
        let (dir, config) = config_with_image(&[0; 4], 16);
        let mut named = config.clone();
        named.name = "a\0b".to_owned();
        assert!(matches!(
            named.validate().unwrap_err(),
            Error::NulInText { field: "name" }
        ));
        let mut with_params = config.clone();
        with_params.params = Some("x\0".to_owned());
        assert!(matches!(
            with_params.validate().unwrap_err(),
            Error::NulInText { field: "params" }
        ));
        let tree = dir.path().join("given.dtb");
        fs::write(&tree, [0; 16]).unwrap();
        with_params.params = Some("console=ttyAMA0".to_owned());
        with_params.device_tree = Some(tree);
        assert!(matches!(
            with_params.validate().unwrap_err(),
            Error::ParamsWithGivenDeviceTree { .. }
        ));
    }

    #[test]
    fn elf_images_are_refused_with_the_command_to_run() {
        let (dir, config) = config_with_image(b"\x7fELF\x02\x01\x01\0", 16);
        let error = config.validate().unwrap_err();
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
    fn arm64_image_needs_its_image_size_in_ram() {
        let mut header = vec![0; 64];
        header[16..24].copy_from_slice(&(5 * MIB).to_le_bytes());
        header[0x38..0x3c].copy_from_slice(b"ARM\x64");
        let (_dir, config) = config_with_image(&header, 6);
        let error = config.validate().unwrap_err();
        assert!(
            matches!(
                error,
                Error::ImageNeedsMoreMemory {
                    required_mib: 7,
                    ram_end: 0x8070_0000,
                    ..
                }
            ),
            "{error}"
        );
        let (_dir, config) = config_with_image(&header, 7);
        assert_eq!(config.check().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn unknown_images_are_warned_about() {
        let (_dir, config) = config_with_image(b"hello\n", 16);
        let warnings = config.check().unwrap();
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
            config.validate().unwrap_err(),
            Error::ImageEmpty { .. }
        ));
        config.bootloader = Some(dir.path().to_owned());
        assert!(matches!(
            config.validate().unwrap_err(),
            Error::NotAFile { .. }
        ));
        config.bootloader = Some(dir.path().join("missing.bin"));
        let error = config.validate().unwrap_err();
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
        let mut bytes = vec![0; file_size];
        bytes[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
        bytes[0x38..0x3c].copy_from_slice(b"ARM\x64");
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
    fn json_kernel_initrd_and_firmware() {
        let config =
            parse(r#"{"kernel": "Image", "initrd": "/i.cpio", "firmware": "fw.bin"}"#).unwrap();
        assert_eq!(config.kernel, Some("/configs/Image".into()));
        assert_eq!(config.initrd, Some("/i.cpio".into()));
        assert_eq!(config.firmware, Some("/configs/fw.bin".into()));
    }

    #[test]
    fn direct_kernel_boot() {
        let dir = tempfile::tempdir().unwrap();
        let config = kernel_config(dir.path());
        let image = config.validate().unwrap();
        let fdt_address = 0x8000_0000 + (64 << 20) - (2 << 20) - 0x1_0000;
        assert_eq!(
            image.files,
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
                x2: 0
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
            config.validate().unwrap().bootargs.as_deref(),
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
        let image = config.validate().unwrap();
        assert_eq!(image.files.last(), Some(&(firmware.clone(), 0x7fc0_0000)));
        assert_eq!(
            image.entry,
            EntryState {
                pc: 0x7fc0_0000,
                x0: image.fdt_address,
                x1: 0x8000_0000,
                x2: 0x1000
            }
        );

        fs::write(&firmware, vec![0; FIRMWARE_MAX_SIZE as usize + 1]).unwrap();
        let error = config.validate().unwrap_err();
        assert!(
            matches!(error, Error::FirmwareTooLarge { size, .. } if size == FIRMWARE_MAX_SIZE + 1),
            "{error}"
        );
        fs::write(&firmware, []).unwrap();
        assert!(matches!(
            config.validate().unwrap_err(),
            Error::FileEmpty {
                role: "firmware",
                ..
            }
        ));
        config.firmware = Some(dir.path().join("missing.bin"));
        assert!(matches!(
            config.validate().unwrap_err(),
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
        let error = config.validate().unwrap_err();
        assert!(matches!(error, Error::NotAKernelImage { .. }), "{error}");
        assert!(error.to_string().contains("magic"), "{error}");

        let firmware = dir.path().join("fw.bin");
        fs::write(&firmware, [0; 4]).unwrap();
        config.firmware = Some(firmware);
        let image = config.validate().unwrap();
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
            config.validate().unwrap_err(),
            Error::FileEmpty { role: "initrd", .. }
        ));
        config.initrd = Some(dir.path().join("missing"));
        assert!(matches!(
            config.validate().unwrap_err(),
            Error::ImageUnreadable { role: "initrd", .. }
        ));
        config.initrd = None;
        fs::write(dir.path().join("Image"), []).unwrap();
        assert!(matches!(
            config.validate().unwrap_err(),
            Error::FileEmpty { role: "kernel", .. }
        ));
        config.kernel = Some(dir.path().to_owned());
        assert!(matches!(
            config.validate().unwrap_err(),
            Error::NotAFile { role: "kernel", .. }
        ));
    }

    #[test]
    fn kernel_initrd_and_device_tree_must_fit() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = kernel_config(dir.path());
        // Kernel up to 24 MiB, initrd at 32 MiB, device tree region + 64 KiB: 35 MiB.
        config.memory_mib = 34;
        let error = config.validate().unwrap_err();
        assert!(
            matches!(
                error,
                Error::KernelDoesNotFit {
                    memory_mib: 34,
                    required_mib: 35
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("at least 35 MiB"), "{error}");
        config.memory_mib = 35;
        assert!(config.validate().is_ok());
    }
}
