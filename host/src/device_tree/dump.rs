// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! QEMU's own device tree for a machine: dumped by a QEMU run with the machine's arguments
//! (`dumpdtb`), and cached, since a dump costs a whole QEMU start.

use crate::bounded_read::read_regular_file;
use crate::error::Error;
use crate::layout::FDT_MAX_SIZE;
use crate::plan::Machine;
use crate::qemu::{self, MachineArgs};
use crate::supervise::{self, Waited};
use fdt::Fdt;
use std::env;
use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

/// Where dumped device trees are kept, under the user's cache directory.
const CACHE_SUBDIRECTORY: &str = "vmclient";

/// The most dumps kept in the cache (one per QEMU binary and machine options: `--mem`,
/// `--cpus`); the least recently used go first.
const CACHE_LIMIT: usize = 32;

/// Prefix of a dump being written to the cache; the writer's pid follows, so that the file of a
/// writer that died (`SIGKILL`) is recognised and removed by the next store.
pub(super) const CACHE_TEMP_PREFIX: &str = ".tmp-";

/// Part of every cache file's name, changed when what is cached changes: 2 since dumps are
/// stored without QEMU's free space.
const CACHE_FORMAT: u32 = 2;

/// How long QEMU may take to dump its device tree (it normally takes well under a second).
const DUMP_TIMEOUT: Duration = Duration::from_secs(30);

/// QEMU's device tree for `machine` (whose arguments are `args`), with `boot_stub` as its
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
pub(super) fn qemu_device_tree(
    machine: &Machine,
    args: &MachineArgs,
    boot_stub: &Path,
    scratch: &Path,
    interrupt: &AtomicBool,
) -> Result<Vec<u8>, Error> {
    let cached = cache_file(machine, args);
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
    let dump = dump_qemu_device_tree(args, boot_stub, scratch, interrupt)?;
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
pub(super) fn without_free_space(dtb: &[u8]) -> Option<Vec<u8>> {
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
pub(super) fn check_dump(dtb: &[u8]) -> Result<(), String> {
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
fn cache_file(machine: &Machine, args: &MachineArgs) -> Option<PathBuf> {
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
    // Which stub file is given does not change the tree (that there is one does, and there
    // always is).
    args.hash(&mut hasher);
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
pub(super) fn prune_cache(directory: &Path, limit: usize) {
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

/// Asks QEMU for the device tree of the machine `args` describe, giving up after
/// [`DUMP_TIMEOUT`] or when `interrupt` is raised.
pub(super) fn dump_qemu_device_tree(
    args: &MachineArgs,
    boot_stub: &Path,
    output: &Path,
    interrupt: &AtomicBool,
) -> Result<Vec<u8>, Error> {
    let stderr_path = output.with_extension("log");
    let stderr = File::create(&stderr_path).map_err(Error::io("create QEMU's log"))?;
    let spawned = supervise::spawn_tied_to_this_thread(
        Command::new(qemu::QEMU)
            .args(args.dump_device_tree(boot_stub, output))
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
