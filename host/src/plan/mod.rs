// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The boot plan: a config checked once, before anything is written or started, and turned into
//! the machine QEMU builds, what it loads where, and the registers the guest starts with.
//!
//! The checks that need no placement are in `checks`, the input files in `files`, memory
//! placement in `placement` (with `kernel` for a kernel boot's layout and `image` for what an
//! image's first bytes say), and the accelerator in `accel`.

pub(crate) mod accel;
mod checks;
pub(crate) mod files;
mod image;
mod kernel;
pub(crate) mod placement;
#[cfg(test)]
mod tests;

use crate::config::{DiskImage, VirtualMachineRawConfig};
use crate::error::Error;
use accel::{ChosenAccelerator, TcgOnly};
use files::InputFile;
use placement::Placement;
use std::path::{Path, PathBuf};

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
        checks::check_config(config)?;
        let given_device_tree = files::given_device_tree(config)?;
        let (placement, kind) = placement::place(config)?;
        let mut warnings = checks::warnings(config, &placement, &kind);
        warnings.extend(checks::disk_warnings(&config.disks));
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
            checks::check_console_input(input)?;
            absolute(input, "find the virtio console input")?
        }
        None => PathBuf::from("/dev/null"),
    };
    let output = match &config.virtio_console {
        Some(output) => {
            checks::refuse_input_as_output(config, output)?;
            Some(absolute(output, "find the virtio console output")?)
        }
        None => None,
    };
    Ok(Some(VirtioConsole { input, output }))
}

impl VirtualMachineRawConfig {
    /// Checks everything that can be checked without running QEMU, as
    /// [`crate::VmInstance::create`] does first, and plans the boot: what
    /// [`crate::VmInstance::create_from_plan`] starts, with [`BootPlan::warnings`] about what
    /// may still go wrong.
    pub fn check(&self) -> Result<BootPlan, Error> {
        BootPlan::new(self)
    }
}

/// What defines the machine QEMU builds, and so its device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Machine {
    /// RAM described to the guest, in MiB.
    pub(crate) memory_mib: u32,
    /// Number of virtual CPUs.
    pub(crate) num_cpus: u32,
    /// Whether the guest runs under the pKVM double, at EL1 below it.
    pub(crate) protected: bool,
    /// Whether QEMU runs it under KVM (with the host's CPU) rather than TCG.
    pub(crate) kvm: bool,
}
