// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Memory placement: where a bootloader, or a kernel, initrd and firmware, and the device tree
//! go in guest memory, and the registers the guest starts with.

use crate::config::VirtualMachineRawConfig;
use crate::error::Error;
use crate::layout::{
    FDT_ADDRESS, FIRMWARE_ADDRESS, FIRMWARE_MAX_SIZE, IMAGE_ADDRESS, MIB, MIN_MEMORY_MIB,
    PKVM_DOUBLE_ADDRESS, RAM_START,
};
use crate::plan::files::{InputFile, non_empty_file_start, pkvm_double, regular_file_start};
use crate::plan::image::{self, ImageKind};
use crate::plan::kernel::{KernelPayload, kernel_layout};
use std::ops::Range;
use std::path::{Path, PathBuf};
use vmbase::linux::{ImageError, ImageHeader};

/// The longest kernel command line, with its terminating NUL, that crosvm passes and arm64 Linux
/// takes (its `COMMAND_LINE_SIZE`); Linux would silently cut a longer one.
const KERNEL_COMMAND_LINE_MAX_SIZE: usize = 2048;

/// What a kernel boot's command line starts with, as under crosvm: a kernel panic resets the VM
/// at once (the host sees `Reboot`) instead of leaving it hung.
const KERNEL_BASE_PARAMS: &str = "panic=-1";

/// A file loaded into guest memory before the first instruction.
#[derive(Debug)]
pub(crate) struct LoadedFile {
    /// The file, as checked.
    pub(crate) input: InputFile,
    /// Where it is loaded.
    pub(crate) address: u64,
}

/// What is loaded into guest memory and where, the device tree's place and contents, and the
/// registers the boot stub sets.
#[derive(Debug)]
pub(crate) struct Placement {
    /// Files loaded into guest memory before the first instruction (the device tree is not
    /// among them).
    pub(crate) files: Vec<LoadedFile>,
    /// Where the device tree is loaded.
    pub(crate) fdt_address: u64,
    /// The guest's first instruction and argument registers.
    pub(crate) entry: EntryState,
    /// `/chosen/bootargs` of the generated device tree.
    pub(crate) bootargs: Option<String>,
    /// The initrd's place, for `/chosen` of the generated device tree.
    pub(crate) initrd: Option<Range<u64>>,
}

/// Places what `config` boots (checked by `check_config`), and says what kind of image runs
/// first.
pub(super) fn place(config: &VirtualMachineRawConfig) -> Result<(Placement, ImageKind), Error> {
    let (mut placement, kind) = match (&config.bootloader, &config.kernel) {
        (Some(bootloader), _) => bootloader_boot(config, bootloader)?,
        (None, Some(kernel)) => kernel_boot(config, kernel)?,
        (None, None) => return Err(Error::NoImage),
    };
    if config.protected_vm {
        placement.files.push(LoadedFile {
            input: pkvm_double()?,
            address: PKVM_DOUBLE_ADDRESS,
        });
        placement.entry = placement.entry.behind_double(PKVM_DOUBLE_ADDRESS);
    }
    Ok((placement, kind))
}

/// A bootloader image at `0x8020_0000`, with the device tree at the start of RAM.
fn bootloader_boot(
    config: &VirtualMachineRawConfig,
    bootloader: &Path,
) -> Result<(Placement, ImageKind), Error> {
    let (image, start) =
        regular_file_start("bootloader image", bootloader, image::INSPECTED_BYTES)?;
    let size = image.size;
    if size == 0 {
        return Err(Error::ImageEmpty {
            path: bootloader.to_owned(),
        });
    }
    let kind = inspect_first_image("bootloader image", bootloader, &start, IMAGE_ADDRESS)?;
    // The real minimum, whichever limit is hit first: the image itself after the device tree
    // region, and what its entry code uses beyond it.
    let image_end = IMAGE_ADDRESS + size;
    let needed_end = image::ram_end_needed(&kind, size).max(image_end);
    let required_mib = (needed_end - RAM_START)
        .div_ceil(MIB)
        .max(MIN_MEMORY_MIB.into());
    let ram_end = RAM_START + u64::from(config.memory_mib) * MIB;
    if ram_end <= IMAGE_ADDRESS {
        return Err(Error::MemoryTooSmall {
            memory_mib: config.memory_mib,
            minimum_mib: required_mib,
        });
    }
    let available = ram_end - IMAGE_ADDRESS;
    if size > available {
        return Err(Error::ImageTooLarge {
            path: bootloader.to_owned(),
            size,
            memory_mib: config.memory_mib,
            available,
            required_mib,
        });
    }
    if needed_end > ram_end {
        return Err(Error::ImageNeedsMoreMemory {
            path: bootloader.to_owned(),
            what: "the end of its boot stack, in writable_data",
            ram_end: needed_end,
            memory_mib: config.memory_mib,
            configured_end: ram_end,
            required_mib,
        });
    }
    let placement = Placement {
        files: vec![LoadedFile {
            input: image,
            address: IMAGE_ADDRESS,
        }],
        fdt_address: FDT_ADDRESS,
        entry: EntryState::BOOTLOADER,
        bootargs: config.params.clone(),
        initrd: None,
    };
    Ok((placement, kind))
}

/// A kernel (and initrd) placed as crosvm places them, entered directly or through the
/// firmware.
fn kernel_boot(
    config: &VirtualMachineRawConfig,
    kernel: &Path,
) -> Result<(Placement, ImageKind), Error> {
    let (kernel_file, start) = non_empty_file_start("kernel", kernel, image::INSPECTED_BYTES)?;
    let kernel_file_size = kernel_file.size;
    let header = match (
        ImageHeader::check(&start, kernel_file_size),
        &config.firmware,
    ) {
        (Ok(header), _) => Some(header),
        // Checking the payload is the firmware's job: the tests of firmware rely on that.
        (Err(_), Some(_)) => None,
        (Err(reason), None) => {
            return Err(Error::NotAKernelImage {
                path: kernel.to_owned(),
                reason: not_a_kernel_reason(&start, reason),
            });
        }
    };
    let initrd_file = config
        .initrd
        .as_deref()
        .map(|initrd| non_empty_file_start("initrd", initrd, 0).map(|(file, _)| file))
        .transpose()?;
    let initrd_size = initrd_file.as_ref().map(|initrd| initrd.size);
    // What runs first: the firmware, or else the kernel itself.
    let (kind, firmware_file) = match &config.firmware {
        Some(firmware) => {
            let (file, start) = non_empty_file_start("firmware", firmware, image::INSPECTED_BYTES)?;
            if file.size > FIRMWARE_MAX_SIZE {
                return Err(Error::FirmwareTooLarge {
                    path: firmware.clone(),
                    size: file.size,
                });
            }
            let kind = inspect_first_image("firmware", firmware, &start, FIRMWARE_ADDRESS)?;
            (kind, Some(file))
        }
        None => (
            ImageKind::Arm64Image {
                image_size: header.as_ref().map_or(0, |header| header.image_size as u64),
            },
            None,
        ),
    };
    let payload = KernelPayload {
        header,
        kernel_file_size,
        initrd_size,
    };
    let layout = kernel_layout(&payload, config.memory_mib).map_err(|does_not_fit| {
        Error::KernelDoesNotFit {
            payload: payload_description(kernel, &payload, config.initrd.as_deref()),
            memory_mib: config.memory_mib,
            required_mib: does_not_fit.required_mib,
        }
    })?;

    let mut files = vec![LoadedFile {
        input: kernel_file,
        address: layout.kernel.start,
    }];
    if let (Some(initrd), Some(range)) = (initrd_file, &layout.initrd) {
        files.push(LoadedFile {
            input: initrd,
            address: range.start,
        });
    }
    let entry = match firmware_file {
        Some(firmware) => {
            files.push(LoadedFile {
                input: firmware,
                address: FIRMWARE_ADDRESS,
            });
            EntryState {
                pc: FIRMWARE_ADDRESS,
                x0: layout.fdt_address,
                x1: layout.kernel.start,
                x2: kernel_file_size,
                x3: 0,
            }
        }
        None => EntryState {
            pc: layout.kernel.start,
            x0: layout.fdt_address,
            x1: 0,
            x2: 0,
            x3: 0,
        },
    };
    let bootargs = match &config.params {
        Some(params) => format!("{KERNEL_BASE_PARAMS} {params}"),
        None => KERNEL_BASE_PARAMS.to_owned(),
    };
    let length = bootargs.len() + 1;
    if length > KERNEL_COMMAND_LINE_MAX_SIZE {
        return Err(Error::KernelCommandLineTooLong {
            length,
            limit: KERNEL_COMMAND_LINE_MAX_SIZE,
        });
    }
    let placement = Placement {
        files,
        fdt_address: layout.fdt_address,
        entry,
        bootargs: Some(bootargs),
        initrd: layout.initrd,
    };
    Ok((placement, kind))
}

/// Why `start`, the first bytes of a kernel, is not an arm64 `Image`: the header's `reason`,
/// unless it is a mistake that can be named.
fn not_a_kernel_reason(start: &[u8], reason: ImageError) -> String {
    match image::inspect(start) {
        ImageKind::Elf => "it is an ELF file (vmlinux?), not the raw Image".to_owned(),
        ImageKind::Vmbase { .. } => {
            "it is a vmbase image: boot it with --bootloader (`bootloader` in a config)".to_owned()
        }
        ImageKind::Arm64Image { .. } | ImageKind::Unknown => image::header_refusal(reason),
    }
}

/// The kernel boot's files and their sizes, for a refusal that they do not fit.
fn payload_description(kernel: &Path, payload: &KernelPayload, initrd: Option<&Path>) -> String {
    let mut description = format!(
        "kernel {} ({} bytes",
        kernel.display(),
        payload.kernel_file_size
    );
    if let Some(header) = payload.header {
        // What makes it need more than its size: its place, and what it takes once running.
        if header.text_offset != 0 {
            description += &format!(", text_offset {:#x}", header.text_offset);
        }
        if header.image_size as u64 > payload.kernel_file_size {
            description += &format!(", image_size {}", header.image_size);
        }
    }
    description += ")";
    if let (Some(initrd), Some(size)) = (initrd, payload.initrd_size) {
        description += &format!(", initrd {} ({size} bytes)", initrd.display());
    }
    description
}

/// Where to suggest writing the raw image made from ELF file `elf`: beside it, `.bin`.
pub(super) fn raw_image_name(elf: &Path) -> PathBuf {
    let raw = elf.with_extension("bin");
    if raw == elf {
        elf.with_extension("raw.bin")
    } else {
        raw
    }
}

/// What kind of image `path` is from its first bytes, `start`: the image that runs first (the
/// bootloader or the firmware), loaded at `loaded_at`. Refused if it is an ELF file, a Linux
/// kernel, or a vmbase image linked elsewhere.
fn inspect_first_image(
    role: &'static str,
    path: &Path,
    start: &[u8],
    loaded_at: u64,
) -> Result<ImageKind, Error> {
    let kind = image::inspect(start);
    match kind {
        ImageKind::Elf => {
            return Err(Error::ImageIsElf {
                role,
                path: path.to_owned(),
                raw: raw_image_name(path),
            });
        }
        ImageKind::Arm64Image { .. } => {
            return Err(Error::KernelAsFirstImage {
                role,
                path: path.to_owned(),
            });
        }
        ImageKind::Vmbase { .. } | ImageKind::Unknown => {}
    }
    refuse_linked_elsewhere(role, path, &kind, loaded_at)?;
    Ok(kind)
}

/// Refuses a vmbase image (`kind`) linked to run elsewhere than `loaded_at`: without relocation
/// its entry code would find itself at the wrong address and reset the VM before any console.
fn refuse_linked_elsewhere(
    role: &'static str,
    path: &Path,
    kind: &ImageKind,
    loaded_at: u64,
) -> Result<(), Error> {
    match *kind {
        ImageKind::Vmbase {
            linked_at: Some(linked_at),
            ..
        } if linked_at != loaded_at => Err(Error::ImageLinkedElsewhere {
            role,
            path: path.to_owned(),
            linked_at,
            loaded_at,
            hint: if linked_at == FIRMWARE_ADDRESS {
                "it is a VM firmware: boot a kernel through it with --kernel IMAGE --firmware"
            } else if linked_at == IMAGE_ADDRESS {
                "it is a bootloader: boot it with --bootloader"
            } else {
                "link it at the address its boot mode loads it at (see its image.ld)"
            },
        }),
        _ => Ok(()),
    }
}

/// The registers crosvm sets before the first instruction (all others are 0), and that
/// instruction's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryState {
    /// Where the guest starts: the bootloader, the kernel, or the firmware.
    pub(crate) pc: u64,
    /// The device tree's address.
    pub(crate) x0: u64,
    /// With a firmware, the payload's (kernel's) entry point; otherwise 0.
    pub(crate) x1: u64,
    /// With a firmware, the payload's size in bytes; otherwise 0.
    pub(crate) x2: u64,
    /// 0 for a guest (crosvm's value); under the pKVM double, which runs first, the guest's
    /// first instruction.
    pub(crate) x3: u64,
}

impl EntryState {
    /// A bootloader image: entered at `0x8020_0000` with the device tree at `0x8000_0000`.
    pub(crate) const BOOTLOADER: Self = Self {
        pc: IMAGE_ADDRESS,
        x0: FDT_ADDRESS,
        x1: 0,
        x2: 0,
        x3: 0,
    };

    /// This entry state behind the pKVM double at `double`: the double starts with the
    /// guest's registers and the guest's first instruction in x3, and enters it at EL1.
    pub(crate) fn behind_double(&self, double: u64) -> Self {
        Self {
            pc: double,
            x3: self.pc,
            ..*self
        }
    }
}
