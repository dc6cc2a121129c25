// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The VM configuration a caller gives: `VirtualMachineRawConfig`, named after AOSP's.

mod json;

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// RAM given to a VM whose config does not say, in MiB: crosvm's default `--mem`.
pub const DEFAULT_MEMORY_MIB: u32 = 256;

/// The platform version this host provides; `platform_version` must accept it.
pub const SUPPORTED_PLATFORM_VERSION: &str = "1.0.0";

/// The platform version requirement used when a config does not give one.
pub(crate) const DEFAULT_PLATFORM_VERSION: &str = "~1.0";

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
    /// Whether the VM is protected (pKVM). QEMU has no pKVM: a protected VM runs under vmbase's
    /// pKVM double (`testing/pkvm_double`, docs/protected.md), which answers pKVM's hypercalls
    /// and enforces the MMIO guard and memory sharing, with the same memory map, registers and
    /// death reasons. At most one CPU and 2048 MiB, and no `device_tree`.
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
    /// The accelerator QEMU runs the VM with: by default KVM where the host can give it, else
    /// TCG. Not part of AOSP's JSON format.
    pub accelerator: Accelerator,
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
            accelerator: Accelerator::Auto,
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

impl VirtualMachineRawConfig {
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
}

/// The accelerator a config asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accelerator {
    /// KVM when the host is aarch64 and `/dev/kvm` is usable (and nothing needs TCG), else TCG.
    #[default]
    Auto,
    /// KVM (`-accel kvm -cpu host`): refused where the host cannot give it.
    Kvm,
    /// QEMU's TCG, which emulates every instruction: any host, and instruction counting.
    Tcg,
}

impl FromStr for Accelerator {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Self::Auto),
            "kvm" => Ok(Self::Kvm),
            "tcg" => Ok(Self::Tcg),
            _ => Err(format!(
                "{text:?} is not an accelerator: give kvm, tcg or auto"
            )),
        }
    }
}
