// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The one error type of this crate: everything that can stop a VM from being created or started.

use crate::layout::MAX_MEMORY_MIB;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Why a VM could not be configured, created or started.
///
/// Every variant means the VM never ran: its death reason is [`crate::DeathReason::StartFailed`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config asks for a protected VM together with something the pKVM double cannot give
    /// one.
    #[error(
        "a protected VM (--protected, `\"protected\": true`) runs under vmbase's pKVM double, \
         which cannot give it {what}: {remedy}"
    )]
    ProtectedVmWith {
        /// What the config asks for.
        what: String,
        /// What to do instead.
        remedy: &'static str,
    },

    /// The pKVM double a protected VM runs under has not been built.
    #[error(
        "a protected VM runs under vmbase's pKVM double, {path}, which is not there ({source}): \
         build it with `make guests` in the vmbase repository"
    )]
    PkvmDoubleMissing {
        /// Where it was looked for.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },

    /// The config names both a bootloader and a kernel or initrd; crosvm boots one or the other.
    #[error(
        "the config names a `bootloader` and a `kernel` or `initrd`: give a bootloader, or a \
         kernel with an optional initrd, not both"
    )]
    BootloaderAndKernel,

    /// The config names no image to boot.
    #[error(
        "the config names no image to boot: set `bootloader` to a raw aarch64 image, or \
         `kernel` to a Linux kernel"
    )]
    NoImage,

    /// The config names an initrd but no kernel to give it to.
    #[error("the config names an `initrd` but no `kernel`: an initrd is only given to a kernel")]
    InitrdWithoutKernel,

    /// The config names a firmware but no kernel for it to boot.
    #[error(
        "the config names a `firmware` but no `kernel`: the firmware is entered with a kernel \
         to boot; give one"
    )]
    FirmwareWithoutKernel,

    /// A directly booted kernel is not a little-endian arm64 `Image`.
    #[error(
        "kernel {path} is not an arm64 Linux Image: {reason} (a kernel is the uncompressed \
         arch/arm64/boot/Image)"
    )]
    NotAKernelImage {
        /// The kernel file.
        path: PathBuf,
        /// What is wrong with its header.
        reason: String,
    },

    /// A kernel, initrd or firmware file is empty.
    #[error("{role} {path} is empty")]
    FileEmpty {
        /// What the file is for, e.g. "initrd".
        role: &'static str,
        /// The file.
        path: PathBuf,
    },

    /// The firmware does not fit its region.
    #[error(
        "firmware {path} is {size} bytes, more than its 4 MiB region at 0x7fc0_0000 \
         (crosvm's pVM-firmware region)"
    )]
    FirmwareTooLarge {
        /// The firmware file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },

    /// Kernel, initrd and device tree do not fit in the VM's RAM.
    #[error(
        "{payload} and the device tree need at least {required_mib} MiB of RAM but memory_mib \
         is {memory_mib}: the kernel goes at 0x8000_0000 plus its text_offset, the initrd at \
         the next 16 MiB boundary after it, and the device tree 2 MiB + 64 KiB below the end of \
         RAM; {}",
        memory_remedy(*.required_mib, "a smaller kernel or initrd")
    )]
    KernelDoesNotFit {
        /// The files that need the RAM, with their sizes: "kernel K (N bytes)", and "and initrd
        /// I (M bytes)" with one.
        payload: String,
        /// The configured RAM size.
        memory_mib: u32,
        /// The smallest `memory_mib` that fits.
        required_mib: u64,
    },

    /// A kernel's command line (`panic=-1` and `params`) is longer than arm64 Linux takes.
    #[error(
        "the kernel command line is {length} bytes with its terminating NUL, more than the \
         {limit} that arm64 Linux (and crosvm) take: shorten `params`"
    )]
    KernelCommandLineTooLong {
        /// Its length in bytes, with the NUL.
        length: usize,
        /// The most that is taken.
        limit: usize,
    },

    /// An image file (bootloader or disk) does not exist or cannot be read.
    #[error("cannot read {role} {path}: {source}")]
    ImageUnreadable {
        /// What the file is for, e.g. "bootloader image".
        role: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },

    /// An image path names something other than a regular file, e.g. a directory.
    #[error("cannot read {role} {path}: it is not a regular file")]
    NotAFile {
        /// What the file is for, e.g. "bootloader image".
        role: &'static str,
        /// The path.
        path: PathBuf,
    },

    /// The bootloader image is empty.
    #[error("bootloader image {path} is empty")]
    ImageEmpty {
        /// The image.
        path: PathBuf,
    },

    /// The bootloader image does not fit between its load address and the end of RAM.
    #[error(
        "bootloader image {path} is {size} bytes but only {available} bytes of RAM follow its \
         load address 0x8020_0000 with memory_mib {memory_mib}; {}",
        memory_remedy(*.required_mib, "a smaller image")
    )]
    ImageTooLarge {
        /// The image.
        path: PathBuf,
        /// The image's size in bytes.
        size: u64,
        /// The configured RAM size.
        memory_mib: u32,
        /// Bytes of RAM from the image load address to the end of RAM.
        available: u64,
        /// The smallest `memory_mib` that would fit the image.
        required_mib: u64,
    },

    /// `memory_mib` leaves no room for an image after the 2 MiB device tree region.
    #[error(
        "memory_mib {memory_mib} is too small: the device tree takes the first 2 MiB of RAM and \
         the image is loaded after it, so at least {minimum_mib} MiB are needed"
    )]
    MemoryTooSmall {
        /// The configured RAM size.
        memory_mib: u32,
        /// The smallest RAM size this image boots with.
        minimum_mib: u64,
    },

    /// A Linux kernel (an arm64 `Image`) was given as the image that runs first: the
    /// bootloader, or the firmware.
    #[error(
        "{role} {path} is an arm64 Linux Image: boot it with --kernel (`kernel` in a config); \
         the {role} is entered at its first byte with no kernel boot protocol"
    )]
    KernelAsFirstImage {
        /// "bootloader image" or "firmware".
        role: &'static str,
        /// The image.
        path: PathBuf,
    },

    /// An input file shrank between its check and its load.
    #[error(
        "{role} {path} changed while the VM was being prepared: it was {size} bytes when checked \
         but ends after {now}"
    )]
    InputChanged {
        /// What the file is for.
        role: &'static str,
        /// The file.
        path: PathBuf,
        /// Its size when checked.
        size: u64,
        /// Where it ends now.
        now: u64,
    },

    /// A writable disk is also one of the VM's other input files.
    #[error(
        "disk image {path} (disk {index}) is writable and is also the {input_role} {input}: the \
         guest could overwrite it; attach it read-only or use a copy"
    )]
    WritableDiskIsInput {
        /// The disk's path.
        path: PathBuf,
        /// Its index among the disks.
        index: usize,
        /// What the other input is for.
        input_role: &'static str,
        /// The other input's path.
        input: PathBuf,
    },

    /// The virtio console input cannot be opened as QEMU's pipe backend opens it.
    #[error(
        "cannot open virtio console input {path} for reading and writing, as QEMU's pipe backend \
         opens it (it is only read): {source}"
    )]
    ConsoleInputUnopenable {
        /// The file.
        path: PathBuf,
        /// Why it cannot be opened.
        source: io::Error,
    },

    /// `memory_mib` is more than the host can or should give.
    #[error("memory_mib {memory_mib} is more than the limit of {limit_mib} MiB ({limit})")]
    MemoryTooLarge {
        /// The configured RAM size.
        memory_mib: u32,
        /// The largest accepted RAM size.
        limit_mib: u64,
        /// Where the limit comes from.
        limit: &'static str,
    },

    /// `num_cpus` is zero.
    #[error("the VM needs at least one CPU")]
    NoCpus,

    /// The `-icount` shift is outside what QEMU accepts.
    #[error("icount shift {0} is out of range: QEMU accepts 0 to 10")]
    IcountShiftOutOfRange(u32),

    /// The config asks for KVM, which this host cannot give.
    #[error(
        "cannot run the VM under KVM (`--accel kvm`): {reason}; TCG (`--accel tcg` or `auto`) \
         runs it anywhere"
    )]
    KvmUnusable {
        /// Why KVM is unusable here.
        reason: crate::plan::accel::KvmUnusable,
    },

    /// The config asks for KVM and for something only TCG gives.
    #[error("{0} needs TCG, not KVM: drop `--accel kvm`, or what needs TCG")]
    NeedsTcg(crate::plan::accel::TcgOnly),

    /// The gdb port is 0, which would make QEMU pick a port nobody knows.
    #[error("gdb port 0 is not valid: give the TCP port the debugger will connect to")]
    GdbPortZero,

    /// `platform_version` is not a semver version requirement.
    #[error("platform_version {requested:?} is not a version requirement: {source}")]
    InvalidPlatformVersion {
        /// The requested platform version.
        requested: String,
        /// Why it does not parse.
        source: semver::Error,
    },

    /// `platform_version` does not match the platform this host provides.
    #[error(
        "platform_version {requested:?} does not accept this host's platform version {supported}"
    )]
    UnsupportedPlatformVersion {
        /// The requested platform version.
        requested: String,
        /// The platform version this host provides.
        supported: &'static str,
    },

    /// The VM config file cannot be read.
    #[error("cannot read VM config {path}: {source}")]
    ConfigUnreadable {
        /// The config file.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },

    /// The VM config file is not valid JSON or does not match the schema (e.g. an unknown field).
    #[error("malformed VM config {path} at line {line}, column {column}: {message}")]
    ConfigMalformed {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong there.
        message: String,
    },

    /// The VM config file is well-formed but contradicts itself.
    #[error("invalid VM config {path}: {reason}")]
    ConfigInvalid {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// `qemu-system-aarch64` is not installed.
    #[error(
        "qemu-system-aarch64 is not installed (not found in PATH); install it with \
         `apt-get install qemu-system-arm`"
    )]
    QemuNotFound,

    /// `qemu-system-aarch64` exists but could not be run.
    #[error("cannot run qemu-system-aarch64: {0}")]
    QemuSpawn(#[source] io::Error),

    /// QEMU ran but failed.
    #[error("qemu-system-aarch64 failed to {action} ({status}): {stderr}")]
    QemuFailed {
        /// What QEMU was asked to do.
        action: &'static str,
        /// How QEMU exited.
        status: ExitStatus,
        /// QEMU's own error output, or where to find it.
        stderr: String,
    },

    /// QEMU did not connect to its QMP monitor socket, or did not answer on it, in time.
    #[error("qemu-system-aarch64 did not connect or answer its QMP monitor within {0:?}")]
    QemuStartTimeout(Duration),

    /// QEMU's QMP monitor said something this crate does not understand.
    #[error("QMP protocol error: {0}")]
    Qmp(String),

    /// QEMU's device tree could not be parsed.
    #[error("QEMU's device tree cannot be parsed: {0}")]
    DeviceTreeParse(String),

    /// The rewritten device tree could not be built.
    #[error("cannot build the device tree: {0}")]
    DeviceTreeWrite(#[from] vm_fdt::Error),

    /// The rewritten device tree does not fit its 2 MiB region.
    #[error("the device tree is {size} bytes, more than its 2 MiB region: shorten `params`")]
    DeviceTreeTooLarge {
        /// The device tree's size in bytes.
        size: usize,
    },

    /// The device tree given instead of QEMU's (`device_tree`, `vm run --dtb`) is over 2 MiB.
    #[error("device tree {path} is {size} bytes, more than its 2 MiB region")]
    GivenDeviceTreeTooLarge {
        /// The device tree file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },

    /// `params` cannot be applied to a device tree that is given as it is.
    #[error(
        "`params` cannot be used with a given device tree ({path}), which is loaded unchanged: \
         put the command line in its /chosen/bootargs instead"
    )]
    ParamsWithGivenDeviceTree {
        /// The device tree file.
        path: PathBuf,
    },

    /// One file is attached as two disks, at least one of them writable.
    #[error(
        "disk image {path} is disk {second} and also disk {first} (the same file), and one of \
         them is writable: attach it once"
    )]
    DiskAttachedTwice {
        /// The second disk's path.
        path: PathBuf,
        /// The index of its first attachment.
        first: usize,
        /// The index of the second one.
        second: usize,
    },

    /// A text field holds a NUL byte, which neither QEMU's command line nor a device tree
    /// string can carry.
    #[error("`{field}` contains a NUL byte")]
    NulInText {
        /// The field, e.g. "name".
        field: &'static str,
    },

    /// A vmbase image was linked to run at another address than the one it would be loaded
    /// at; vmbase has no relocation, so its entry code would reset the VM before any console.
    #[error(
        "{role} {path} is a vmbase image linked at {linked_at:#x}, but a {role} is loaded at \
         {loaded_at:#x}: {hint}"
    )]
    ImageLinkedElsewhere {
        /// "bootloader image" or "firmware".
        role: &'static str,
        /// The image.
        path: PathBuf,
        /// Where its entry code says it was linked.
        linked_at: u64,
        /// Where this boot would load it.
        loaded_at: u64,
        /// What to do instead.
        hint: &'static str,
    },

    /// A bootloader image or firmware is an ELF file, which QEMU would load byte for byte and
    /// the guest would execute its header.
    #[error(
        "{role} {path} is an ELF file, not a raw image: convert it with \
         `llvm-objcopy -O binary {path} {raw}` and boot {raw}"
    )]
    ImageIsElf {
        /// What the file is for: "bootloader image" or "firmware".
        role: &'static str,
        /// The image.
        path: PathBuf,
        /// A suggested name for the raw image.
        raw: PathBuf,
    },

    /// The image needs RAM beyond what `memory_mib` gives (its `writable_data`, or an arm64
    /// `Image`'s `image_size`).
    #[error(
        "bootloader image {path} needs RAM up to {ram_end:#x} ({what}), but memory_mib \
         {memory_mib} ends RAM at {configured_end:#x}: set memory_mib to at least {required_mib}"
    )]
    ImageNeedsMoreMemory {
        /// The image.
        path: PathBuf,
        /// What the extra RAM is for.
        what: &'static str,
        /// The end of the RAM the image uses.
        ram_end: u64,
        /// The configured RAM size.
        memory_mib: u32,
        /// Where RAM ends with it.
        configured_end: u64,
        /// The smallest `memory_mib` that works.
        required_mib: u64,
    },

    /// An output file (console, log or virtio console) is one of the VM's input files.
    #[error(
        "the {output_role} file {output} is the {input_role} {input}: writing it would destroy \
         it; choose another file"
    )]
    OutputIsInput {
        /// "console", "log" or "virtio console".
        output_role: &'static str,
        /// The output path as given.
        output: PathBuf,
        /// What the input is for, e.g. "bootloader image".
        input_role: &'static str,
        /// The input path.
        input: PathBuf,
    },

    /// An output file (console, log or virtio console) cannot be opened for writing.
    #[error("cannot open the {role} file {path} for writing: {source}")]
    OutputUnwritable {
        /// "console", "log" or "virtio console".
        role: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it cannot be opened.
        source: io::Error,
    },

    /// QEMU did not finish something in time; it was killed.
    #[error("qemu-system-aarch64 did not {action} within {timeout:?}; it was killed")]
    QemuTimedOut {
        /// What QEMU was asked to do.
        action: &'static str,
        /// How long it was given.
        timeout: Duration,
    },

    /// The caller's interrupt flag was raised (`vm`: a signal) before the VM started.
    #[error("interrupted before the VM started")]
    Interrupted,

    /// An output could not be written while the VM ran; the rest of it was dropped.
    #[error("cannot write the VM's {output}: {source}")]
    OutputWrite {
        /// "console", "log" or "virtio console".
        output: &'static str,
        /// Why writing failed.
        source: io::Error,
    },

    /// A host file operation failed (temporary directory, QMP socket, ...).
    #[error("cannot {action}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        source: io::Error,
    },

    /// [`crate::VmInstance::start`] was called twice.
    #[error("the VM was already started")]
    AlreadyStarted,
}

/// What to do about RAM that is `required_mib` too small: raise `memory_mib` when that is
/// possible, else use `smaller`.
fn memory_remedy(required_mib: u64, smaller: &str) -> String {
    if required_mib <= u64::from(MAX_MEMORY_MIB) {
        format!("raise memory_mib to at least {required_mib}")
    } else {
        format!("that is more than the {MAX_MEMORY_MIB} MiB a VM can have: use {smaller}")
    }
}

impl Error {
    /// Wraps a host I/O error with what was being done.
    pub(crate) fn io(action: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Io { action, source }
    }
}

impl From<crate::plan::accel::KvmRefused> for Error {
    fn from(refusal: crate::plan::accel::KvmRefused) -> Self {
        match refusal {
            crate::plan::accel::KvmRefused::Unusable(reason) => Self::KvmUnusable { reason },
            crate::plan::accel::KvmRefused::NeedsTcg(what) => Self::NeedsTcg(what),
        }
    }
}
