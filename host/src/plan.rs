// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The boot plan: a config checked once, before anything is written or started, and turned into
//! the machine QEMU builds, what it loads where, and the registers the guest starts with.

use crate::accel::{self, ChosenAccelerator, TcgOnly};
use crate::boot_stub::EntryState;
use crate::config::{DiskImage, SUPPORTED_PLATFORM_VERSION, VirtualMachineRawConfig};
use crate::error::Error;
use crate::host::host_memory_mib;
use crate::image::{self, ImageKind};
use crate::kernel::{KernelPayload, kernel_layout};
use crate::layout::{
    FDT_ADDRESS, FDT_MAX_SIZE, FIRMWARE_ADDRESS, FIRMWARE_MAX_SIZE, IMAGE_ADDRESS, MAX_MEMORY_MIB,
    MIB, MIN_MEMORY_MIB, PKVM_DOUBLE_ADDRESS, RAM_START,
};
use crate::qemu::Machine;
use rustix::fs::{Access, OFlags};
use std::fs::{self, File};
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use vmbase::linux::{ImageError, ImageHeader};

/// The size of a disk sector: QEMU's raw disks are a whole number of them.
const SECTOR_SIZE: u64 = 512;

/// The largest `-icount` shift QEMU accepts.
const MAX_ICOUNT_SHIFT: u32 = 10;

/// The longest kernel command line, with its terminating NUL, that crosvm passes and arm64 Linux
/// takes (its `COMMAND_LINE_SIZE`); Linux would silently cut a longer one.
const KERNEL_COMMAND_LINE_MAX_SIZE: usize = 2048;

/// What a kernel boot's command line starts with, as under crosvm: a kernel panic resets the VM
/// at once (the host sees `Reboot`) instead of leaving it hung.
const KERNEL_BASE_PARAMS: &str = "panic=-1";

/// Everything a VM is started with, built once from a checked config
/// ([`VirtualMachineRawConfig::check`]): the machine QEMU builds, what it loads where, how the
/// guest is entered, and what to warn about.
#[derive(Debug)]
pub struct BootPlan {
    /// QEMU's `-name`.
    pub(crate) name: String,
    /// The machine: RAM, CPUs, and whether the guest runs under the pKVM double.
    pub(crate) machine: Machine,
    /// What is loaded where, and the entry state.
    pub(crate) placement: Placement,
    /// The device tree given in the config, loaded as it is instead of a generated one.
    pub(crate) given_device_tree: Option<InputFile>,
    /// Disk images, attached in order.
    pub(crate) disks: Vec<DiskImage>,
    /// The gdb stub's port on 127.0.0.1, if any.
    pub(crate) gdb_port: Option<u16>,
    /// The `-icount` shift, if QEMU counts instructions.
    pub(crate) icount_shift: Option<u32>,
    /// Whether the VM gets a virtio-rng device.
    pub(crate) rng: bool,
    /// The virtio console's host-side input and output, if the VM has one.
    pub(crate) virtio_console: Option<VirtioConsole>,
    /// The accelerator QEMU runs the VM with.
    pub(crate) accelerator: ChosenAccelerator,
    /// What may still go wrong although the config passed its checks.
    pub(crate) warnings: Vec<String>,
}

impl BootPlan {
    /// Warnings about what may still go wrong although the config passed every check: a
    /// bootloader or firmware image that starts neither like a vmbase binary nor like an arm64
    /// Linux `Image`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The accelerator QEMU runs the VM with, and with `auto`, why it is not KVM.
    pub fn accelerator(&self) -> &ChosenAccelerator {
        &self.accelerator
    }

    /// Checks everything about `config` that can be checked without running QEMU and plans
    /// the boot.
    pub(crate) fn new(config: &VirtualMachineRawConfig) -> Result<Self, Error> {
        let (placement, kind, given_device_tree) = place(config)?;
        let mut warnings = warnings(config, &placement, &kind);
        warnings.extend(disk_warnings(&config.disks));
        let tcg_only = if config.icount_shift.is_some() {
            Some(TcgOnly::InstructionCounting)
        } else if config.protected_vm {
            Some(TcgOnly::ProtectedVm)
        } else {
            None
        };
        let accelerator = accel::choose(config.accelerator, accel::host_kvm(), tcg_only)?;
        Ok(Self {
            name: config.name.clone(),
            machine: Machine {
                memory_mib: config.memory_mib,
                num_cpus: config.num_cpus,
                protected: config.protected_vm,
                kvm: accelerator.is_kvm(),
            },
            placement,
            given_device_tree,
            disks: config.disks.clone(),
            gdb_port: config.gdb_port,
            icount_shift: config.icount_shift,
            rng: config.rng,
            virtio_console: virtio_console(config)?,
            accelerator,
            warnings,
        })
    }
}

/// An input file checked through one open, and loaded from that open file: what is loaded is
/// what was checked, even if the file changes meanwhile.
#[derive(Debug)]
pub(crate) struct InputFile {
    /// What it is for, e.g. "initrd".
    pub(crate) role: &'static str,
    /// The path it was opened at.
    pub(crate) path: PathBuf,
    /// The open file.
    pub(crate) file: File,
    /// Its size when checked: what is loaded.
    pub(crate) size: u64,
}

impl InputFile {
    /// Writes the `size` bytes that were checked to `destination` (mode 0600), read through
    /// the open file; refuses a file that shrank since.
    pub(crate) fn copy_to(&self, destination: &Path) -> Result<(), Error> {
        let mut output = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(destination)
            .map_err(Error::io("copy an input file"))?;
        let mut buffer = vec![0; 1 << 20];
        let mut offset = 0;
        while offset < self.size {
            let wanted = buffer.len().min((self.size - offset) as usize);
            let count = match self.file.read_at(&mut buffer[..wanted], offset) {
                Ok(0) => {
                    return Err(Error::InputChanged {
                        role: self.role,
                        path: self.path.clone(),
                        size: self.size,
                        now: offset,
                    });
                }
                Ok(count) => count,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::ImageUnreadable {
                        role: self.role,
                        path: self.path.clone(),
                        source,
                    });
                }
            };
            output
                .write_all(&buffer[..count])
                .map_err(Error::io("copy an input file"))?;
            offset += count as u64;
        }
        Ok(())
    }
}

/// The host side of a virtio console: the file the guest reads and the one it writes
/// (`/dev/null` where the config names none).
#[derive(Debug)]
pub(crate) struct VirtioConsole {
    /// What the guest reads, as an absolute path.
    pub(crate) input: PathBuf,
    /// Where the guest's output goes, as an absolute path; created (emptied) when the VM starts.
    pub(crate) output: Option<PathBuf>,
}

/// The virtio console `config` asks for, if any, with its output checked not to be one of the
/// VM's inputs (creating it would empty that input).
fn virtio_console(config: &VirtualMachineRawConfig) -> Result<Option<VirtioConsole>, Error> {
    if config.console_in.is_none() && config.virtio_console.is_none() {
        return Ok(None);
    }
    let absolute = |path: &Path, action| std::path::absolute(path).map_err(Error::io(action));
    let input = match &config.console_in {
        Some(input) => {
            check_console_input(input)?;
            absolute(input, "find the virtio console input")?
        }
        None => PathBuf::from("/dev/null"),
    };
    let output = match &config.virtio_console {
        Some(output) => {
            refuse_input_as_output(config, output)?;
            Some(absolute(output, "find the virtio console output")?)
        }
        None => None,
    };
    Ok(Some(VirtioConsole { input, output }))
}

/// Checks the virtio console's input as QEMU's pipe backend will open it: a regular file, FIFO
/// or character device that may be opened for reading and writing (it is only read). It is
/// not opened here: opening a FIFO would let a writer waiting for a reader go ahead, and
/// closing it again would leave that writer without one.
fn check_console_input(path: &Path) -> Result<(), Error> {
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
fn refuse_input_as_output(config: &VirtualMachineRawConfig, output: &Path) -> Result<(), Error> {
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

/// Checks `config` and places what it boots; also says what kind of image runs first, and
/// gives the device tree to load instead of a generated one, if any.
fn place(
    config: &VirtualMachineRawConfig,
) -> Result<(Placement, ImageKind, Option<InputFile>), Error> {
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
    let given_device_tree = match &config.device_tree {
        Some(device_tree) => {
            let (tree, _) = regular_file_start("device tree", device_tree, 0)?;
            if tree.size > FDT_MAX_SIZE {
                return Err(Error::GivenDeviceTreeTooLarge {
                    path: device_tree.clone(),
                    size: tree.size,
                });
            }
            if config.params.is_some() {
                return Err(Error::ParamsWithGivenDeviceTree {
                    path: device_tree.clone(),
                });
            }
            Some(tree)
        }
        None => None,
    };
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
    Ok((placement, kind, given_device_tree))
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

/// The pKVM double's image: `out/pkvm_double.bin` of the repository `vm` was built from, which
/// `make guests` (and `make vm`) build.
fn pkvm_double() -> Result<InputFile, Error> {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../out/pkvm_double.bin"
    ));
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let path = path.components().collect::<PathBuf>();
    match regular_file_start("pKVM double", &path, 0) {
        Ok((double, _)) => Ok(double),
        Err(Error::NotAFile { path, .. }) => Err(Error::PkvmDoubleMissing {
            path,
            source: std::io::Error::other("not a regular file"),
        }),
        Err(Error::ImageUnreadable { path, source, .. }) => {
            Err(Error::PkvmDoubleMissing { path, source })
        }
        Err(other) => Err(other),
    }
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
    if let ImageKind::Arm64Image { .. } = kind {
        return Err(Error::KernelAsBootloader {
            path: bootloader.to_owned(),
        });
    }
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
fn disk_warnings(disks: &[DiskImage]) -> Vec<String> {
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
fn warnings(
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

/// Where to suggest writing the raw image made from ELF file `elf`: beside it, `.bin`.
fn raw_image_name(elf: &Path) -> PathBuf {
    let raw = elf.with_extension("bin");
    if raw == elf {
        elf.with_extension("raw.bin")
    } else {
        raw
    }
}

/// Checks `memory_mib` against the cap, and `host_memory_mib` when known.
fn validate_memory_mib(memory_mib: u32, host_memory_mib: Option<u64>) -> Result<(), Error> {
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

/// Opens the regular file at `path` (a `role`, for errors) for reading, once, and reads its
/// first `length` bytes (fewer if it is shorter) through that open. Nothing waits: a FIFO is
/// opened without blocking and refused, like anything else that is not a regular file.
fn regular_file_start(
    role: &'static str,
    path: &Path,
    length: usize,
) -> Result<(InputFile, Vec<u8>), Error> {
    let unreadable = |source| Error::ImageUnreadable {
        role,
        path: path.to_owned(),
        source,
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(unreadable)?;
    let metadata = file.metadata().map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(Error::NotAFile {
            role,
            path: path.to_owned(),
        });
    }
    let mut start = vec![0; length.min(usize::try_from(metadata.len()).unwrap_or(usize::MAX))];
    file.read_exact_at(&mut start, 0).map_err(unreadable)?;
    let input = InputFile {
        role,
        path: path.to_owned(),
        file,
        size: metadata.len(),
    };
    Ok((input, start))
}

/// What [`regular_file_start`] says of a file that it accepts and that is not empty.
fn non_empty_file_start(
    role: &'static str,
    path: &Path,
    length: usize,
) -> Result<(InputFile, Vec<u8>), Error> {
    match regular_file_start(role, path, length)? {
        (InputFile { size: 0, .. }, _) => Err(Error::FileEmpty {
            role,
            path: path.to_owned(),
        }),
        file_and_start => Ok(file_and_start),
    }
}

/// What kind of image `path` is from its first bytes, `start`: the image that runs first (the
/// bootloader or the firmware), loaded at `loaded_at`. Refused if it is an ELF file or a vmbase
/// image linked elsewhere.
fn inspect_first_image(
    role: &'static str,
    path: &Path,
    start: &[u8],
    loaded_at: u64,
) -> Result<ImageKind, Error> {
    let kind = image::inspect(start);
    if kind == ImageKind::Elf {
        return Err(Error::ImageIsElf {
            role,
            path: path.to_owned(),
            raw: raw_image_name(path),
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tests::header_bytes;

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
        assert!(matches!(error, Error::KernelAsBootloader { .. }), "{error}");
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
}
