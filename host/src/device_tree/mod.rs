// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The guest's device tree: the one the config gives, or QEMU's own for the machine (`dump`)
//! with `/memory`, `/chosen` and, for a protected VM, `/psci` rewritten for the plan.

mod dump;

use crate::error::Error;
use crate::layout::{FDT_MAX_SIZE, MIB, RAM_START};
use crate::plan::{BootPlan, Machine};
use crate::qemu::MachineArgs;
use fdt::Fdt;
use fdt::node::FdtNode;
use rustix::rand::GetRandomFlags;
use std::fs;
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use vm_fdt::{FdtReserveEntry, FdtWriter};

/// Offset of `boot_cpuid_phys` in the FDT header (devicetree specification, table 5.1).
const BOOT_CPUID_PHYS_OFFSET: usize = 0x1c;

/// `/chosen` properties that carry entropy for the guest, drawn afresh for every VM, with the
/// size used when QEMU's tree has none: the KASLR seed is one 64-bit value, the RNG seed as
/// long as QEMU's (32 bytes).
const SEEDS: [(&str, usize); 2] = [("kaslr-seed", 8), ("rng-seed", 32)];

/// Writes the device tree the guest gets to `destination` (mode 0600: it holds the guest's
/// seeds): the plan's given tree, or QEMU's for `machine_args` (dumped with `boot_stub` through
/// `scratch`, unless cached) rewritten for the plan.
pub(crate) fn write_guest_device_tree(
    plan: &BootPlan,
    machine_args: &MachineArgs,
    boot_stub: &Path,
    scratch: &Path,
    destination: &Path,
    interrupt: &AtomicBool,
) -> Result<(), Error> {
    if let Some(given) = &plan.given_device_tree {
        return given.copy_to(destination);
    }
    let qemu_dtb =
        dump::qemu_device_tree(&plan.machine, machine_args, boot_stub, scratch, interrupt)?;
    let dtb = rewrite(
        &qemu_dtb,
        &plan.machine,
        plan.placement.bootargs.as_deref(),
        plan.placement.initrd.as_ref(),
    )?;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(destination)
        .and_then(|mut file| file.write_all(&dtb))
        .map_err(Error::io("write the device tree"))
}

/// Rewrites QEMU's device tree for crosvm's layout: RAM is `memory_mib` from `RAM_START`,
/// `/chosen/bootargs` is `bootargs` (or absent), `/chosen/linux,initrd-start` and
/// `linux,initrd-end` give `initrd` (or are absent), and `/chosen/kaslr-seed` and `rng-seed` are
/// fresh from the host's RNG. For a protected VM, `/psci` says `method = "hvc"`, the conduit a
/// guest has under pKVM (QEMU, whose PSCI then sits below the double's EL2, says "smc"). Every
/// other node and property is kept as is.
pub(crate) fn rewrite(
    qemu_dtb: &[u8],
    machine: &Machine,
    bootargs: Option<&str>,
    initrd: Option<&Range<u64>>,
) -> Result<Vec<u8>, Error> {
    let fdt = Fdt::new(qemu_dtb).map_err(|error| Error::DeviceTreeParse(error.to_string()))?;
    let reservations = fdt
        .memory_reservations()
        .map(|entry| FdtReserveEntry::new(entry.address() as u64, entry.size() as u64))
        .collect::<Result<Vec<_>, _>>()?;
    let mut writer = FdtWriter::new_with_mem_reserv(&reservations)?;
    let boot_cpuid_phys = qemu_dtb
        .get(BOOT_CPUID_PHYS_OFFSET..BOOT_CPUID_PHYS_OFFSET + 4)
        .and_then(|bytes| bytes.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| Error::DeviceTreeParse("truncated header".to_owned()))?;
    writer.set_boot_cpuid_phys(boot_cpuid_phys);

    let root = fdt
        .find_node("/")
        .ok_or_else(|| Error::DeviceTreeParse("no root node".to_owned()))?;
    let cells = root.cell_sizes();
    let memory_reg = [
        encode_cells(RAM_START, cells.address_cells)?,
        encode_cells(u64::from(machine.memory_mib) * MIB, cells.size_cells)?,
    ]
    .concat();

    let root_node = writer.begin_node("")?;
    copy_properties(&mut writer, root)?;
    // `/chosen` first, as crosvm writes it (QEMU writes it last): a guest looking for its
    // console finds `stdout-path` before walking past the devices.
    let qemu_chosen = root.children().find(|child| child.name == "chosen");
    write_chosen_node(&mut writer, qemu_chosen, bootargs, initrd)?;
    let mut memory_written = false;
    for child in root.children() {
        // `/chosen` is written above. QEMU's 32 virtio-mmio transports are left out: crosvm
        // has none, `vm` never attaches a device to them (its devices are on PCI), and they
        // were two thirds of QEMU's tree, which every guest walks at boot.
        if child.name == "chosen" || is_virtio_mmio_node(child) {
            continue;
        }
        if is_memory_node(child) {
            // QEMU describes its RAM from 0x4000_0000; the guest only gets ours.
            if !memory_written {
                write_memory_node(&mut writer, &memory_reg)?;
                memory_written = true;
            }
        } else if machine.protected && child.name == "psci" {
            write_psci_node_with_hvc(&mut writer, child)?;
        } else {
            copy_node(&mut writer, child)?;
        }
    }
    if !memory_written {
        write_memory_node(&mut writer, &memory_reg)?;
    }
    writer.end_node(root_node)?;

    let dtb = writer.finish()?;
    if dtb.len() as u64 > FDT_MAX_SIZE {
        return Err(Error::DeviceTreeTooLarge { size: dtb.len() });
    }
    Ok(dtb)
}

fn is_memory_node(node: FdtNode) -> bool {
    node.name == "memory" || node.name.starts_with("memory@")
}

fn is_virtio_mmio_node(node: FdtNode) -> bool {
    node.compatible()
        .is_some_and(|compatible| compatible.all().any(|entry| entry == "virtio,mmio"))
}

fn write_memory_node(writer: &mut FdtWriter, reg: &[u8]) -> Result<(), Error> {
    let node = writer.begin_node(&format!("memory@{RAM_START:x}"))?;
    writer.property_string("device_type", "memory")?;
    writer.property("reg", reg)?;
    writer.end_node(node)?;
    Ok(())
}

/// `/chosen` properties this module writes, replacing QEMU's if it has them.
const REWRITTEN_CHOSEN_PROPERTIES: [&str; 3] =
    ["bootargs", "linux,initrd-start", "linux,initrd-end"];

fn write_chosen_node(
    writer: &mut FdtWriter,
    qemu_chosen: Option<FdtNode>,
    bootargs: Option<&str>,
    initrd: Option<&Range<u64>>,
) -> Result<(), Error> {
    let node = writer.begin_node("chosen")?;
    let is_replaced = |name: &str| {
        REWRITTEN_CHOSEN_PROPERTIES.contains(&name) || SEEDS.iter().any(|(seed, _)| *seed == name)
    };
    if let Some(qemu_chosen) = qemu_chosen {
        for property in qemu_chosen
            .properties()
            .filter(|property| !is_replaced(property.name))
        {
            writer.property(property.name, property.value)?;
        }
    }
    if let Some(bootargs) = bootargs {
        writer.property_string("bootargs", bootargs)?;
    }
    if let Some(initrd) = initrd {
        // 64-bit values, as crosvm writes them; Linux reads either width.
        writer.property_u64("linux,initrd-start", initrd.start)?;
        writer.property_u64("linux,initrd-end", initrd.end)?;
    }
    for (name, default_size) in SEEDS {
        let size = qemu_chosen
            .and_then(|chosen| chosen.property(name))
            .map_or(default_size, |seed| seed.value.len());
        writer.property(name, &random_bytes(size)?)?;
    }
    if let Some(qemu_chosen) = qemu_chosen {
        for child in qemu_chosen.children() {
            copy_node(writer, child)?;
        }
    }
    writer.end_node(node)?;
    Ok(())
}

/// QEMU's `/psci` with the HVC conduit: under the pKVM double, the guest's HVC reaches the
/// double, which passes PSCI calls on to QEMU.
fn write_psci_node_with_hvc(writer: &mut FdtWriter, psci: FdtNode) -> Result<(), Error> {
    let node = writer.begin_node(psci.name)?;
    for property in psci.properties() {
        match property.name {
            "method" => writer.property_string("method", "hvc")?,
            name => writer.property(name, property.value)?,
        }
    }
    for child in psci.children() {
        copy_node(writer, child)?;
    }
    writer.end_node(node)?;
    Ok(())
}

fn copy_node(writer: &mut FdtWriter, node: FdtNode) -> Result<(), Error> {
    let copy = writer.begin_node(node.name)?;
    copy_properties(writer, node)?;
    for child in node.children() {
        copy_node(writer, child)?;
    }
    writer.end_node(copy)?;
    Ok(())
}

fn copy_properties(writer: &mut FdtWriter, node: FdtNode) -> Result<(), Error> {
    for property in node.properties() {
        writer.property(property.name, property.value)?;
    }
    Ok(())
}

/// `size` bytes from the host's random number generator (getrandom(2)), as crosvm draws its
/// seeds.
fn random_bytes(size: usize) -> Result<Vec<u8>, Error> {
    let mut bytes = vec![0; size];
    let mut filled = 0;
    while filled < size {
        filled += rustix::rand::getrandom(&mut bytes[filled..], GetRandomFlags::empty())
            .map_err(|errno| Error::io("read the host's random number generator")(errno.into()))?;
    }
    Ok(bytes)
}

/// `value` as `cells` big-endian 32-bit cells, as `reg` wants it.
fn encode_cells(value: u64, cells: usize) -> Result<Vec<u8>, Error> {
    match cells {
        1 => u32::try_from(value)
            .map(|value| value.to_be_bytes().to_vec())
            .map_err(|_| Error::DeviceTreeParse(format!("{value:#x} does not fit in one cell"))),
        2 => Ok(value.to_be_bytes().to_vec()),
        _ => Err(Error::DeviceTreeParse(format!(
            "unsupported cell count {cells}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::dump::{
        CACHE_TEMP_PREFIX, check_dump, dump_qemu_device_tree, prune_cache, without_free_space,
    };
    use super::*;
    use std::fs::File;
    use std::time::{Duration, SystemTime};

    #[test]
    fn the_cache_keeps_the_most_recent_dumps_and_drops_dead_writers_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        dead.wait().unwrap();
        let dead_writer = dir
            .path()
            .join(format!("{CACHE_TEMP_PREFIX}{}-x", dead.id()));
        let live_writer = dir
            .path()
            .join(format!("{CACHE_TEMP_PREFIX}{}-y", std::process::id()));
        let other = dir.path().join("unrelated");
        for path in [&dead_writer, &live_writer, &other] {
            fs::write(path, b"x").unwrap();
        }
        let dumps: Vec<_> = (0..5)
            .map(|index| {
                let path = dir.path().join(format!("qemu-virt-{index}.dtb"));
                let file = File::create(&path).unwrap();
                let used = SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + index);
                file.set_modified(used).unwrap();
                path
            })
            .collect();
        prune_cache(dir.path(), 3);
        let exists: Vec<bool> = dumps.iter().map(|path| path.exists()).collect();
        assert_eq!(exists, [false, false, true, true, true]);
        assert!(!dead_writer.exists());
        assert!(live_writer.exists());
        assert!(other.exists());
    }

    /// An unprotected machine with `memory_mib` of RAM and 2 CPUs.
    fn unprotected(memory_mib: u32) -> Machine {
        Machine {
            memory_mib,
            num_cpus: 2,
            protected: false,
            kvm: false,
        }
    }

    /// QEMU's real device tree for a 2-CPU VM with `memory_mib` of RAM, booted with a stub.
    fn qemu_dtb(memory_mib: u32) -> Vec<u8> {
        dump(&unprotected(memory_mib))
    }

    /// QEMU's real device tree for `machine`, booted with a stub.
    fn dump(machine: &Machine) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let stub = dir.path().join("stub.bin");
        fs::write(&stub, crate::boot_stub()).unwrap();
        dump_qemu_device_tree(
            &MachineArgs::new(machine),
            &stub,
            &dir.path().join("qemu.dtb"),
            &AtomicBool::new(false),
        )
        .expect("qemu-system-aarch64 is needed for this test (apt-get install qemu-system-arm)")
    }

    #[test]
    fn dump_has_no_pl061_because_the_boot_has_a_bios() {
        let dtb = qemu_dtb(16);
        let fdt = Fdt::new(&dtb).unwrap();
        assert!(fdt.find_node("/pl011@9000000").is_some());
        assert!(fdt.find_compatible(&["arm,pl061"]).is_none());
    }

    #[test]
    fn a_protected_guest_sees_the_hvc_conduit_as_under_pkvm() {
        let machine = Machine {
            protected: true,
            ..unprotected(16)
        };
        let qemu = dump(&machine);
        let method = |dtb: &[u8]| {
            let fdt = Fdt::new(dtb).unwrap();
            let psci = fdt.find_node("/psci").expect("QEMU describes PSCI");
            psci.property("method")
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(method(&qemu), "smc", "QEMU's PSCI is below EL2");
        let rewritten = rewrite(&qemu, &machine, None, None).unwrap();
        assert_eq!(method(&rewritten), "hvc");
        let fdt = Fdt::new(&rewritten).unwrap();
        assert!(fdt.find_node("/psci").unwrap().compatible().is_some());
        assert_eq!(
            method(&rewrite(&qemu_dtb(16), &unprotected(16), None, None).unwrap()),
            "hvc"
        );
    }

    #[test]
    fn dumps_are_kept_without_free_space() {
        let dump = qemu_dtb(16);
        let packed = without_free_space(&dump).unwrap();
        assert!(packed.len() < 16 << 10, "{} bytes", packed.len());
        assert!(packed.len() < dump.len());
        check_dump(&packed).unwrap();
        let nodes = |dtb: &[u8]| {
            Fdt::new(dtb)
                .unwrap()
                .all_nodes()
                .map(|node| (node.name.to_owned(), node.properties().count()))
                .collect::<Vec<_>>()
        };
        assert_eq!(nodes(&packed), nodes(&dump));
        // A header whose blocks run past the end is left alone.
        assert_eq!(without_free_space(&dump[..packed.len() - 1]), None);
    }

    #[test]
    fn initrd_goes_in_chosen() {
        let initrd = 0x8300_0000..0x8312_3456;
        let rewritten = rewrite(
            &qemu_dtb(64),
            &unprotected(64),
            Some("panic=-1"),
            Some(&initrd),
        )
        .unwrap();
        let fdt = Fdt::new(&rewritten).unwrap();
        let chosen = fdt.find_node("/chosen").unwrap();
        let value = |name| chosen.property(name).unwrap().value.to_vec();
        assert_eq!(value("linux,initrd-start"), 0x8300_0000_u64.to_be_bytes());
        assert_eq!(value("linux,initrd-end"), 0x8312_3456_u64.to_be_bytes());
        assert_eq!(fdt.chosen().bootargs(), Some("panic=-1"));
        // Rewriting a rewritten tree replaces the properties rather than adding more.
        let again = rewrite(&rewritten, &unprotected(64), None, None).unwrap();
        let fdt = Fdt::new(&again).unwrap();
        assert!(
            fdt.find_node("/chosen")
                .unwrap()
                .property("linux,initrd-start")
                .is_none()
        );
        assert_eq!(fdt.chosen().bootargs(), None);
    }

    fn memory_regions(dtb: &[u8]) -> Vec<(usize, Option<usize>)> {
        let fdt = Fdt::new(dtb).unwrap();
        fdt.memory()
            .regions()
            .map(|region| (region.starting_address as usize, region.size))
            .collect()
    }

    #[test]
    fn rewrites_memory_and_bootargs_and_keeps_the_rest() {
        let original = qemu_dtb(64);
        assert_eq!(
            memory_regions(&original),
            [(0x4000_0000, Some((1024 + 64) << 20))]
        );

        let rewritten = rewrite(
            &original,
            &unprotected(64),
            Some("console=ttyAMA0 panic=-1"),
            None,
        )
        .unwrap();
        assert_eq!(memory_regions(&rewritten), [(0x8000_0000, Some(64 << 20))]);
        let fdt = Fdt::new(&rewritten).unwrap();
        assert_eq!(fdt.chosen().bootargs(), Some("console=ttyAMA0 panic=-1"));
        assert_eq!(fdt.chosen().stdout().unwrap().name, "pl011@9000000");
        assert!(fdt.find_node("/memory@80000000").is_some());
        assert!(fdt.find_node("/memory@40000000").is_none());

        let pl011 = fdt.find_node("/pl011@9000000").unwrap();
        assert_eq!(pl011.compatible().unwrap().first(), "arm,pl011");
        assert_eq!(
            pl011.reg().unwrap().next().unwrap().starting_address as usize,
            0x0900_0000
        );
        let psci = fdt.find_node("/psci").unwrap();
        assert_eq!(psci.property("method").unwrap().as_str(), Some("hvc"));
        assert_eq!(fdt.cpus().count(), 2);

        // QEMU's virtio-mmio transports are gone; everything else but /memory and /chosen is
        // byte-for-byte QEMU's.
        let original_fdt = Fdt::new(&original).unwrap();
        assert_eq!(
            original_fdt.find_all_nodes("/virtio_mmio").count(),
            32,
            "QEMU's dump has its virtio-mmio transports"
        );
        assert_eq!(fdt.find_all_nodes("/virtio_mmio").count(), 0);
        // `/chosen` is the root's first child, as crosvm writes it; QEMU writes it last.
        let first_child = |fdt: &Fdt| {
            let root = fdt.find_node("/").unwrap();
            root.children().next().unwrap().name.to_owned()
        };
        assert_eq!(first_child(&fdt), "chosen");
        assert_ne!(first_child(&original_fdt), "chosen");
        let describe = |fdt: &Fdt| {
            fdt.all_nodes()
                .filter(|node| {
                    !is_memory_node(*node) && node.name != "chosen" && !is_virtio_mmio_node(*node)
                })
                .map(|node| {
                    let properties: Vec<_> = node
                        .properties()
                        .map(|p| (p.name.to_owned(), p.value.to_vec()))
                        .collect();
                    (node.name.to_owned(), properties)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(describe(&fdt), describe(&original_fdt));
        assert_eq!(
            original_fdt.chosen().stdout().unwrap().name,
            fdt.chosen().stdout().unwrap().name
        );
    }

    #[test]
    fn every_rewrite_draws_fresh_seeds() {
        let original = qemu_dtb(16);
        let seeds = |dtb: &[u8]| -> Vec<Vec<u8>> {
            let fdt = Fdt::new(dtb).unwrap();
            let chosen = fdt.find_node("/chosen").unwrap();
            SEEDS
                .iter()
                .map(|(name, _)| chosen.property(name).unwrap().value.to_vec())
                .collect()
        };
        let first = seeds(&rewrite(&original, &unprotected(16), None, None).unwrap());
        let second = seeds(&rewrite(&original, &unprotected(16), None, None).unwrap());
        let qemu = seeds(&original);
        assert_eq!(first[0].len(), 8);
        assert_eq!(first[1].len(), qemu[1].len());
        for (index, seed) in first.iter().enumerate() {
            assert_ne!(*seed, second[index]);
            assert_ne!(*seed, qemu[index]);
        }
    }

    #[test]
    fn truncated_or_garbage_dumps_are_invalid() {
        let dump = qemu_dtb(16);
        assert_eq!(check_dump(&dump), Ok(()));
        assert!(check_dump(&dump[..dump.len() / 2]).is_err());
        assert!(check_dump(&dump[..100]).is_err());
        let mut padded = dump.clone();
        padded.push(0);
        assert!(check_dump(&padded).is_err());
        let mut garbage = 0xd00d_feed_u32.to_be_bytes().to_vec();
        garbage.extend([0xff; 100]);
        assert!(check_dump(&garbage).is_err());
    }

    #[test]
    fn without_params_has_no_bootargs() {
        let rewritten = rewrite(&qemu_dtb(16), &unprotected(16), None, None).unwrap();
        assert_eq!(Fdt::new(&rewritten).unwrap().chosen().bootargs(), None);
    }

    #[test]
    fn rewritten_tree_is_compact_and_checked_against_two_mib() {
        let original = qemu_dtb(16);
        // QEMU pads its dump to 1 MiB; the rewritten tree only holds what it needs.
        assert!(
            rewrite(&original, &unprotected(16), None, None)
                .unwrap()
                .len()
                < 64 * 1024
        );
        let huge_params = "x".repeat(FDT_MAX_SIZE as usize);
        assert!(matches!(
            rewrite(&original, &unprotected(16), Some(&huge_params), None),
            Err(Error::DeviceTreeTooLarge { .. })
        ));
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            rewrite(&[0; 64], &unprotected(16), None, None),
            Err(Error::DeviceTreeParse(_))
        ));
    }

    #[test]
    fn cells() {
        assert_eq!(encode_cells(0x8000_0000, 1).unwrap(), [0x80, 0, 0, 0]);
        assert_eq!(
            encode_cells(0x8000_0000, 2).unwrap(),
            [0, 0, 0, 0, 0x80, 0, 0, 0]
        );
        assert!(encode_cells(1 << 32, 1).is_err());
        assert!(encode_cells(0, 3).is_err());
    }
}
