// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! QEMU command lines that reproduce crosvm's aarch64 machine (docs/contract.md, section 3).

pub(crate) mod boot_stub;

use crate::layout::QEMU_RAM_BELOW_RAM_START_MIB;
use crate::plan::BootPlan;
use crate::plan::Machine;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// The QEMU binary, looked up in `PATH`.
pub(crate) const QEMU: &str = "qemu-system-aarch64";

/// Files in the instance's temporary directory that QEMU reads or connects to.
pub(crate) struct RunFiles<'a> {
    /// The boot stub given as `-bios`.
    pub(crate) boot_stub: &'a Path,
    /// The rewritten device tree.
    pub(crate) device_tree: &'a Path,
    /// The base name of the virtio console's pipe backend: QEMU reads `BASE.in` and writes
    /// `BASE.out`.
    pub(crate) virtio_console: &'a Path,
}

/// The CPU model under TCG.
const CPU: &str = "max";

/// The CPU model under KVM: the host's own CPU, as crosvm gives its guests.
const KVM_CPU: &str = "host";

/// QEMU documents its architected pointer-authentication algorithm as slow under TCG;
/// `pauth-impdef=on` keeps the feature with a faster implementation-defined one, which takes
/// Debian's kernel to its init and back here in about 2 s instead of 6.5 s or more (vmbase
/// guests do not use pointer authentication, so their instruction counts do not change). It is
/// a global property of the `max` CPU type rather than part of `-cpu`, so that the model stays
/// one word that can be swapped for another (the property then applies to nothing).
const CPU_GLOBAL: &str = "max-arm-cpu.pauth-impdef=on";

/// QEMU's RAM limit with `highmem=off`: everything below 4 GiB, from `0x4000_0000`.
const HIGHMEM_OFF_MAX_RAM_MIB: u64 = 3 * 1024;

/// The options that define the machine, built once from the plan's [`Machine`] and used both
/// to dump its device tree and to run it, so that the two cannot differ.
///
/// `highmem=off` whenever the RAM fits below 4 GiB: QEMU then puts the PCI configuration space
/// (ECAM) and all PCI memory in the MMIO GiB below RAM, as crosvm does, instead of above 256 GiB
/// where vmbase's PCI does not reach (bigger VMs keep QEMU's high layout). Both uses add the
/// same `-bios` boot stub: QEMU's `virt` leaves out its PL061 GPIO when given `-bios`, so a tree
/// dumped without it would describe a device that is absent at run time, and Linux faults
/// probing it (and the same accelerator: under KVM the GIC and the CPUs are KVM's).
///
/// A protected VM's machine has EL2 (`virtualization=on`), where the pKVM double runs. QEMU then
/// describes PSCI with the SMC conduit (its PSCI is the firmware below EL2);
/// `device_tree::rewrite` puts back the HVC conduit a guest sees under pKVM.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct MachineArgs {
    /// Everything but the boot stub.
    args: Vec<OsString>,
}

impl MachineArgs {
    pub(crate) fn new(machine: &Machine) -> Self {
        let Machine {
            memory_mib,
            num_cpus,
            protected,
            kvm,
        } = *machine;
        let qemu_ram_mib = QEMU_RAM_BELOW_RAM_START_MIB + u64::from(memory_mib);
        let mut machine = OsString::from("virt,gic-version=3");
        if qemu_ram_mib <= HIGHMEM_OFF_MAX_RAM_MIB {
            machine.push(",highmem=off");
        }
        if protected {
            machine.push(",virtualization=on");
        }
        // Without `-accel`, QEMU uses TCG.
        let accelerator_args = if kvm {
            ["-accel", "kvm", "-cpu", KVM_CPU].as_slice()
        } else {
            ["-cpu", CPU, "-global", CPU_GLOBAL].as_slice()
        };
        let args = ["-M".into(), machine]
            .into_iter()
            .chain(accelerator_args.iter().map(OsString::from))
            .chain([
                "-m".into(),
                format!("{qemu_ram_mib}M").into(),
                "-smp".into(),
                num_cpus.to_string().into(),
                // Without -nodefaults QEMU adds a NIC whose option ROM may not be installed.
                "-nodefaults".into(),
                "-display".into(),
                "none".into(),
            ])
            .collect();
        Self { args }
    }

    /// The machine with `boot_stub` as its `-bios`.
    pub(crate) fn with_boot_stub(&self, boot_stub: &Path) -> Vec<OsString> {
        let mut args = self.args.clone();
        args.extend(["-bios".into(), boot_stub.into()]);
        args
    }

    /// The command line that makes QEMU write the machine's device tree to `dtb` and exit.
    pub(crate) fn dump_device_tree(&self, boot_stub: &Path, dtb: &Path) -> Vec<OsString> {
        let mut args = self.with_boot_stub(boot_stub);
        // QEMU merges every `-machine` into one set of machine options.
        args.extend([
            "-machine".into(),
            concat(&["dumpdtb=".as_ref(), &escape(dtb.as_os_str())]),
        ]);
        args
    }
}

/// The full command line that boots `plan` on `machine`, with the boot stub, device tree and copies of the
/// loaded files (in the plan's order) in `files`.
///
/// QEMU starts paused (`-S`): the VM only runs once the QMP client has negotiated capabilities
/// and sent `cont`, so no `SHUTDOWN` event can be missed. The console is QEMU's stdout
/// (`-serial stdio`). Paths and the name are given so that QEMU takes them literally: as values
/// of named options (`guest=`, `file.filename=`) with commas doubled, never where QEMU looks for
/// a protocol prefix (`file:`, `nbd:`) or an option name.
pub(crate) fn run_args(
    plan: &BootPlan,
    machine: &MachineArgs,
    files: &RunFiles,
    loaded: &[&Path],
) -> Vec<OsString> {
    let mut args = machine.with_boot_stub(files.boot_stub);
    args.extend(["-no-reboot".into(), "-S".into()]);
    if !plan.name.is_empty() {
        args.extend([
            "-name".into(),
            concat(&["guest=".as_ref(), &escape(plan.name.as_ref())]),
        ]);
    }
    let placement = &plan.placement;
    let device_tree = (files.device_tree, placement.fdt_address);
    let loaded = loaded
        .iter()
        .zip(&placement.files)
        .map(|(copy, file)| (*copy, file.address));
    for (file, address) in [device_tree].into_iter().chain(loaded) {
        args.push("-device".into());
        args.push(concat(&[
            "loader,file=".as_ref(),
            &escape(file.as_os_str()),
            format!(",addr={address:#x},force-raw=on").as_ref(),
        ]));
    }
    args.extend(["-serial".into(), "stdio".into()]);
    for (index, disk) in plan.disks.iter().enumerate() {
        let read_only = if disk.writable { "off" } else { "on" };
        args.push("-drive".into());
        args.push(concat(&[
            format!("format=raw,if=none,id=disk{index},readonly={read_only},").as_ref(),
            "file.driver=file,file.filename=".as_ref(),
            &escape(disk.image.as_os_str()),
        ]));
        args.extend([
            "-device".into(),
            format!("virtio-blk-pci,drive=disk{index}").into(),
        ]);
    }
    if plan.rng {
        args.extend(["-device".into(), "virtio-rng-pci".into()]);
    }
    if plan.virtio_console.is_some() {
        args.extend([
            "-chardev".into(),
            concat(&[
                "pipe,id=virtcon,path=".as_ref(),
                &escape(files.virtio_console.as_os_str()),
            ]),
            "-device".into(),
            "virtio-serial-pci".into(),
            "-device".into(),
            "virtconsole,chardev=virtcon".into(),
        ]);
    }
    if let Some(port) = plan.gdb_port {
        args.extend(["-gdb".into(), format!("tcp:127.0.0.1:{port}").into()]);
    }
    if let Some(shift) = plan.icount_shift {
        // -no-shutdown pauses QEMU when the guest powers off or resets, so that the monitor
        // can still ask how many instructions ran before it makes QEMU quit.
        args.extend([
            "-icount".into(),
            // sleep=off: virtual time follows instructions only, never the host's clock, so the
            // guest's counter (CNTVCT) is as reproducible as the instruction count.
            format!("shift={shift},sleep=off").into(),
            "-no-shutdown".into(),
        ]);
    }
    args
}

/// The options that connect QEMU's QMP monitor to `fd`, its end of a socket pair that it
/// inherits: unlike a socket in the file system, it needs no path (whose length Unix sockets
/// limit) and no other process can connect to it.
pub(crate) fn qmp_args(fd: i32) -> [OsString; 4] {
    [
        "-chardev".into(),
        format!("socket,id=qmp,fd={fd}").into(),
        "-mon".into(),
        "chardev=qmp,mode=control".into(),
    ]
}

/// Joins the pieces of one command-line argument.
fn concat(parts: &[&OsStr]) -> OsString {
    parts.iter().copied().collect()
}

/// Escapes a value inside a QEMU option list, where `,` separates options and `,,` is a comma.
fn escape(value: &OsStr) -> OsString {
    let mut escaped = Vec::with_capacity(value.len());
    for &byte in value.as_bytes() {
        escaped.push(byte);
        if byte == b',' {
            escaped.push(b',');
        }
    }
    OsString::from_vec(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DiskImage;
    use crate::plan::VirtioConsole;
    use crate::plan::accel::ChosenAccelerator;
    use crate::plan::files::InputFile;
    use crate::plan::placement::EntryState;
    use crate::plan::placement::{LoadedFile, Placement};
    use std::fs::File;
    use std::path::PathBuf;

    /// `path`, as a file loaded at `address` (its contents are not looked at).
    fn load(path: &str, address: u64) -> LoadedFile {
        LoadedFile {
            input: InputFile {
                role: "test",
                path: PathBuf::from(path),
                file: File::open("/dev/null").unwrap(),
                size: 0,
            },
            address,
        }
    }

    /// The plan of a 16 MiB, one-CPU VM named `vm` that loads `placement`.
    fn plan(placement: Placement) -> BootPlan {
        BootPlan {
            name: "vm".to_owned(),
            machine: Machine {
                memory_mib: 16,
                num_cpus: 1,
                protected: false,
                kvm: false,
            },
            placement,
            given_device_tree: None,
            disks: Vec::new(),
            gdb_port: None,
            icount_shift: None,
            rng: true,
            virtio_console: None,
            accelerator: ChosenAccelerator::Tcg {
                instead_of_kvm: None,
            },
            warnings: Vec::new(),
        }
    }

    fn bootloader(path: &str) -> BootPlan {
        plan(Placement {
            files: vec![load(path, 0x8020_0000)],
            fdt_address: 0x8000_0000,
            entry: EntryState::BOOTLOADER,
            bootargs: None,
            initrd: None,
        })
    }

    fn joined(args: &[OsString]) -> String {
        args.iter()
            .map(|arg| arg.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A TCG machine.
    fn machine(memory_mib: u32, num_cpus: u32, protected: bool) -> Machine {
        Machine {
            memory_mib,
            num_cpus,
            protected,
            kvm: false,
        }
    }

    #[test]
    fn machine_matches_design() {
        let stub = Path::new("/t/stub.bin");
        let args = MachineArgs::new(&machine(300, 2, false));
        assert_eq!(
            joined(&args.with_boot_stub(stub)),
            "-M virt,gic-version=3,highmem=off -cpu max -global max-arm-cpu.pauth-impdef=on -m 1324M -smp 2 \
             -nodefaults -display none -bios /t/stub.bin"
        );
        // The dump is the same machine, and only adds where to write the tree.
        assert_eq!(
            joined(&args.dump_device_tree(stub, Path::new("/t/q,1.dtb"))),
            format!(
                "{} -machine dumpdtb=/t/q,,1.dtb",
                joined(&args.with_boot_stub(stub))
            )
        );
    }

    #[test]
    fn kvm_runs_the_same_machine_on_the_host_cpu() {
        let stub = Path::new("/t/stub.bin");
        let kvm = MachineArgs::new(&Machine {
            kvm: true,
            ..machine(300, 2, false)
        });
        assert_eq!(
            joined(&kvm.with_boot_stub(stub)),
            "-M virt,gic-version=3,highmem=off -accel kvm -cpu host -m 1324M -smp 2 \
             -nodefaults -display none -bios /t/stub.bin"
        );
    }

    /// The `-M` option of `machine`.
    fn machine_option(machine: &Machine) -> OsString {
        MachineArgs::new(machine).args[1].clone()
    }

    #[test]
    fn highmem_stays_on_when_ram_does_not_fit_below_four_gib() {
        let option = |memory_mib| machine_option(&machine(memory_mib, 1, false));
        assert_eq!(option(2048), "virt,gic-version=3,highmem=off");
        assert_eq!(option(2049), "virt,gic-version=3");
    }

    #[test]
    fn a_protected_vm_gets_el2() {
        assert_eq!(
            machine_option(&machine(64, 1, true)),
            "virt,gic-version=3,highmem=off,virtualization=on"
        );
    }

    fn files() -> RunFiles<'static> {
        RunFiles {
            boot_stub: Path::new("/t/boot-stub.bin"),
            device_tree: Path::new("/t/fdt.dtb"),
            virtio_console: Path::new("/t/virt,con"),
        }
    }

    #[test]
    fn minimal_run() {
        assert_eq!(
            joined(&run_args(
                &bootloader("/images/a.bin"),
                &MachineArgs::new(&bootloader("/images/a.bin").machine),
                &files(),
                &[Path::new("/t/load,0.bin")]
            )),
            "-M virt,gic-version=3,highmem=off -cpu max -global max-arm-cpu.pauth-impdef=on -m 1040M -smp 1 \
             -nodefaults -display none -bios /t/boot-stub.bin -no-reboot -S -name guest=vm \
             -device loader,file=/t/fdt.dtb,addr=0x80000000,force-raw=on \
             -device loader,file=/t/load,,0.bin,addr=0x80200000,force-raw=on \
             -serial stdio -device virtio-rng-pci"
        );
        assert_eq!(
            joined(&qmp_args(7)),
            "-chardev socket,id=qmp,fd=7 -mon chardev=qmp,mode=control"
        );
    }

    #[test]
    fn names_and_disk_paths_are_taken_literally() {
        let plan = BootPlan {
            name: "process=x,debug-threads=on".to_owned(),
            disks: vec![DiskImage {
                image: "d:1,x.img".into(),
                writable: false,
            }],
            ..bootloader("/a.bin")
        };
        let command_line = joined(&run_args(
            &plan,
            &MachineArgs::new(&plan.machine),
            &files(),
            &[Path::new("/t/load-0.bin")],
        ));
        assert!(
            command_line.contains(" -name guest=process=x,,debug-threads=on "),
            "{command_line}"
        );
        assert!(
            command_line.contains(
                " -drive format=raw,if=none,id=disk0,readonly=on,file.driver=file,\
                 file.filename=d:1,,x.img "
            ),
            "{command_line}"
        );
    }

    #[test]
    fn optional_features() {
        let plan = BootPlan {
            name: String::new(),
            disks: vec![
                DiskImage {
                    image: "/d/ro.img".into(),
                    writable: false,
                },
                DiskImage {
                    image: "/d/rw.img".into(),
                    writable: true,
                },
            ],
            gdb_port: Some(1234),
            icount_shift: Some(3),
            rng: false,
            virtio_console: Some(VirtioConsole {
                input: "/c/in".into(),
                output: Some("/c/out".into()),
            }),
            ..bootloader("/a.bin")
        };
        let command_line = joined(&run_args(
            &plan,
            &MachineArgs::new(&plan.machine),
            &files(),
            &[Path::new("/t/load-0.bin")],
        ));
        assert!(!command_line.contains("-name"), "{command_line}");
        assert!(command_line.ends_with(
            "-drive format=raw,if=none,id=disk0,readonly=on,file.driver=file,file.filename=/d/ro.img \
             -device virtio-blk-pci,drive=disk0 \
             -drive format=raw,if=none,id=disk1,readonly=off,file.driver=file,file.filename=/d/rw.img \
             -device virtio-blk-pci,drive=disk1 \
             -chardev pipe,id=virtcon,path=/t/virt,,con \
             -device virtio-serial-pci -device virtconsole,chardev=virtcon \
             -gdb tcp:127.0.0.1:1234 -icount shift=3,sleep=off -no-shutdown"
        ));
    }

    #[test]
    fn kernel_initrd_and_firmware_are_loaded_where_the_layout_says() {
        let plan = plan(Placement {
            files: vec![
                load("/k/Image", 0x8000_0000),
                load("/k/initrd", 0x8300_0000),
                load("/k/fw.bin", 0x7fc0_0000),
            ],
            fdt_address: 0x9fdf_0000,
            entry: EntryState {
                pc: 0x7fc0_0000,
                x0: 0x9fdf_0000,
                x1: 0x8000_0000,
                x2: 0x1000,
                x3: 0,
            },
            bootargs: Some("panic=-1".to_owned()),
            initrd: Some(0x8300_0000..0x8300_1000),
        });
        let copies = ["/t/load-0.bin", "/t/load-1.bin", "/t/load-2.bin"].map(Path::new);
        let command_line = joined(&run_args(
            &plan,
            &MachineArgs::new(&plan.machine),
            &files(),
            &copies,
        ));
        assert!(
            command_line.contains(
                " -device loader,file=/t/fdt.dtb,addr=0x9fdf0000,force-raw=on \
                 -device loader,file=/t/load-0.bin,addr=0x80000000,force-raw=on \
                 -device loader,file=/t/load-1.bin,addr=0x83000000,force-raw=on \
                 -device loader,file=/t/load-2.bin,addr=0x7fc00000,force-raw=on "
            ),
            "{command_line}"
        );
    }
}
