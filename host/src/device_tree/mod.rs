// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The guest's device tree: QEMU's own, with `/memory` and `/chosen/bootargs` rewritten.

use crate::bounded_read::read_regular_file;
use crate::error::Error;
use crate::layout::{FDT_MAX_SIZE, MIB, RAM_START};
use crate::plan::Machine;
use crate::qemu;
use crate::supervise::{self, Waited};
use fdt::Fdt;
use fdt::node::FdtNode;
use rustix::rand::GetRandomFlags;
use std::env;
use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};
use vm_fdt::{FdtReserveEntry, FdtWriter};

/// Offset of `boot_cpuid_phys` in the FDT header (devicetree specification, table 5.1).
const BOOT_CPUID_PHYS_OFFSET: usize = 0x1c;

/// Where dumped device trees are kept, under the user's cache directory.
const CACHE_SUBDIRECTORY: &str = "vmclient";

/// The most dumps kept in the cache (one per QEMU binary and machine options: `--mem`,
/// `--cpus`); the least recently used go first.
const CACHE_LIMIT: usize = 32;

/// Prefix of a dump being written to the cache; the writer's pid follows, so that the file of a
/// writer that died (`SIGKILL`) is recognised and removed by the next store.
const CACHE_TEMP_PREFIX: &str = ".tmp-";

/// Part of every cache file's name, changed when what is cached changes: 2 since dumps are
/// stored without QEMU's free space.
const CACHE_FORMAT: u32 = 2;

/// How long QEMU may take to dump its device tree (it normally takes well under a second).
const DUMP_TIMEOUT: Duration = Duration::from_secs(30);

/// `/chosen` properties that carry entropy for the guest, drawn afresh for every VM, with the
/// size used when QEMU's tree has none: the KASLR seed is one 64-bit value, the RNG seed as
/// long as QEMU's (32 bytes).
const SEEDS: [(&str, usize); 2] = [("kaslr-seed", 8), ("rng-seed", 32)];

/// QEMU's device tree for the machine `qemu::machine_args` describes, with `boot_stub` as its
/// `-bios`: from the cache if this QEMU binary already dumped it for the same options, else
/// dumped now (through `scratch`) and cached.
///
/// A dump costs a whole QEMU start, as much as booting a small guest, so dumps are kept in
/// `$XDG_CACHE_HOME/vmclient` (or `~/.cache/vmclient`), named after the QEMU binary (path,
/// size, modification time) and the machine options; a new QEMU or other options miss the
/// cache. A cached tree that is not a complete, valid device tree is dumped again and replaced.
/// Without a usable cache directory every VM dumps afresh. Under KVM, where the tree also
/// depends on what the host kernel's KVM offers, the kernel's release is part of the name too.
/// The seeds in a dump are never used:
/// [`rewrite`] draws new ones for every VM.
///
/// The dump is killed after [`DUMP_TIMEOUT`], or as soon as `interrupt` is raised.
pub(crate) fn qemu_device_tree(
    machine: &Machine,
    boot_stub: &Path,
    scratch: &Path,
    interrupt: &AtomicBool,
) -> Result<Vec<u8>, Error> {
    let cached = cache_file(machine);
    if let Some(dtb) = cached
        .as_deref()
        .and_then(|path| read_regular_file(path, FDT_MAX_SIZE).ok())
        .filter(|dtb| check_dump(dtb).is_ok())
    {
        // Recently used: the last to be pruned.
        if let Some(path) = &cached {
            let _ = File::options()
                .write(true)
                .open(path)
                .and_then(|file| file.set_modified(SystemTime::now()));
        }
        return Ok(dtb);
    }
    let dump = dump_qemu_device_tree(machine, boot_stub, scratch, interrupt)?;
    let dtb = without_free_space(&dump).unwrap_or(dump);
    check_dump(&dtb).map_err(|reason| {
        Error::DeviceTreeParse(format!("QEMU's dump {}: {reason}", scratch.display()))
    })?;
    if let Some(path) = cached {
        // A cache that cannot be written only costs time.
        let _ = store(&path, &dtb);
    }
    Ok(dtb)
}

/// `dtb` cut after its last block, with `totalsize` saying so, when its memory reservations
/// come first (as in QEMU's dumps): QEMU pads its tree to 1 MiB of free space, which every VM's
/// start would otherwise read from the cache again, for a tree of a few KiB. `None` for other
/// layouts or inconsistent headers, which are kept as they are.
fn without_free_space(dtb: &[u8]) -> Option<Vec<u8>> {
    let field = |offset: usize| -> Option<usize> {
        let bytes = dtb.get(offset..offset + 4)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?) as usize)
    };
    let (structure, strings, reservations) = (field(8)?, field(12)?, field(16)?);
    let end = (structure.checked_add(field(36)?)?).max(strings.checked_add(field(32)?)?);
    if reservations > structure.min(strings) || end > dtb.len() {
        return None;
    }
    let mut packed = dtb[..end].to_vec();
    packed[4..8].copy_from_slice(&u32::try_from(end).ok()?.to_be_bytes());
    Some(packed)
}

/// Checks that `dtb` is a whole device tree with a root node, as a dump (or a cached dump,
/// which may have been truncated or overwritten) must be.
fn check_dump(dtb: &[u8]) -> Result<(), String> {
    let fdt = Fdt::new(dtb).map_err(|error| error.to_string())?;
    if fdt.total_size() != dtb.len() {
        return Err(format!(
            "its header says {} bytes but it has {}",
            fdt.total_size(),
            dtb.len()
        ));
    }
    fdt.find_node("/").ok_or("it has no root node")?;
    Ok(())
}

/// The cache file for these options, if QEMU is on `PATH` and there is a cache directory.
fn cache_file(machine: &Machine) -> Option<PathBuf> {
    let qemu = env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(qemu::QEMU))
        .find(|path| path.is_file())?;
    let metadata = fs::metadata(&qemu).ok()?;
    // The XDG base directory specification: a relative path is invalid and ignored.
    let absolute = |variable| {
        env::var_os(variable)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    let directory =
        absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|home| home.join(".cache")))?;
    let mut hasher = DefaultHasher::new();
    CACHE_FORMAT.hash(&mut hasher);
    (qemu, metadata.len(), metadata.modified().ok()).hash(&mut hasher);
    // Which stub file is given does not change the tree; that there is one does.
    qemu::machine_args(machine, Path::new("boot-stub"), None).hash(&mut hasher);
    // Under KVM the tree also depends on the host's kernel (its GIC and CPU features).
    if machine.kvm {
        fs::read("/proc/sys/kernel/osrelease")
            .ok()?
            .hash(&mut hasher);
    }
    let name = format!("qemu-virt-{:016x}.dtb", hasher.finish());
    Some(directory.join(CACHE_SUBDIRECTORY).join(name))
}

/// Writes `dtb` to `path` atomically, so that VMs starting in parallel never read half a file,
/// then prunes the cache: files of writers that died, and the least recently used dumps beyond
/// [`CACHE_LIMIT`].
fn store(path: &Path, dtb: &[u8]) -> std::io::Result<()> {
    let directory = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(directory)?;
    let mut file = tempfile::Builder::new()
        .prefix(&format!(
            "{CACHE_TEMP_PREFIX}{}-",
            rustix::process::getpid().as_raw_nonzero()
        ))
        .tempfile_in(directory)?;
    file.write_all(dtb)?;
    file.persist(path)?;
    prune_cache(directory, CACHE_LIMIT);
    Ok(())
}

/// Removes from the cache `directory` the files of writers that no longer exist, and all but
/// the `limit` most recently used dumps. Failures (a race with another run) are left alone.
fn prune_cache(directory: &Path, limit: usize) {
    let Ok(entries) = fs::read_dir(directory) else {
        return;
    };
    let mut dumps = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(owner) = supervise::owner_pid(name, CACHE_TEMP_PREFIX) {
            if !supervise::process_exists(owner) {
                let _ = fs::remove_file(entry.path());
            }
        } else if name.starts_with("qemu-virt-") && name.ends_with(".dtb") {
            let used = entry.metadata().and_then(|metadata| metadata.modified());
            dumps.push((used.unwrap_or(SystemTime::UNIX_EPOCH), entry.path()));
        }
    }
    dumps.sort_unstable_by(|a, b| b.cmp(a));
    for (_, path) in dumps.iter().skip(limit) {
        let _ = fs::remove_file(path);
    }
}

/// Asks QEMU for the device tree of the machine `qemu::machine_args` describes, giving up
/// after [`DUMP_TIMEOUT`] or when `interrupt` is raised.
fn dump_qemu_device_tree(
    machine: &Machine,
    boot_stub: &Path,
    output: &Path,
    interrupt: &AtomicBool,
) -> Result<Vec<u8>, Error> {
    let stderr_path = output.with_extension("log");
    let stderr = File::create(&stderr_path).map_err(Error::io("create QEMU's log"))?;
    let spawned = supervise::spawn_tied_to_this_thread(
        Command::new(qemu::QEMU)
            .args(qemu::machine_args(machine, boot_stub, Some(output)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr),
    );
    let mut child = match spawned {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::QemuNotFound);
        }
        spawned => spawned.map_err(Error::QemuSpawn)?,
    };
    let deadline = supervise::deadline_after(DUMP_TIMEOUT);
    let waited = supervise::wait_bounded(&mut child, deadline, interrupt);
    let status = match waited {
        Ok(Waited::Exited(status)) => status,
        other => {
            supervise::kill_and_reap(&mut child);
            return Err(match other {
                Ok(Waited::Interrupted) => Error::Interrupted,
                Err(error) => Error::io("wait for QEMU")(error),
                Ok(_) => Error::QemuTimedOut {
                    action: "dump its device tree",
                    timeout: DUMP_TIMEOUT,
                },
            });
        }
    };
    if !status.success() {
        return Err(Error::QemuFailed {
            action: "dump its device tree",
            status,
            stderr: fs::read_to_string(&stderr_path)
                .unwrap_or_default()
                .trim()
                .to_owned(),
        });
    }
    fs::read(output).map_err(Error::io("read QEMU's device tree"))
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
    use super::*;

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
            machine,
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
