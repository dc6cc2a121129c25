// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Boots a guest under the QEMU launcher (`vmclient`) and captures its console: the one helper
//! behind the host tests that boot guests and `make bench`. Guest images come from `make guests`,
//! run once per process, so that a test never boots a stale image and never skips for want of one.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::thread;
use std::time::Duration;
use vmbase::linux::{
    FLAG_PAGE_SIZE_4K, FLAG_PLACEMENT_ANYWHERE, IMAGE_HEADER_SIZE, RawImageHeader,
};
use vmclient::{DeathReason, VirtualMachineRawConfig, VmInstance};

pub mod disks;

pub use vmbase_console_check::assert_in_order;

/// The repository root.
pub fn repository_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The path of `out/NAME.bin`, after bringing every guest image up to date with `make guests`.
pub fn guest_image(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = Command::new("make")
            .args(["--no-print-directory", "-s", "guests"])
            .current_dir(repository_root())
            .status()
            .expect("run make guests");
        assert!(status.success(), "make guests failed: {status}");
    });
    let image = repository_root().join("out").join(format!("{name}.bin"));
    assert!(image.is_file(), "{} was not built", image.display());
    image
}

/// The `vm` executable, after bringing it up to date with `make vm` (once per process), for tests
/// of its command line outside its own package.
pub fn vm_executable() -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = Command::new("make")
            .args(["--no-print-directory", "-s", "vm"])
            .current_dir(repository_root())
            .status()
            .expect("run make vm");
        assert!(status.success(), "make vm failed: {status}");
    });
    let vm = repository_root().join("target/release/vm");
    assert!(vm.is_file(), "{} was not built", vm.display());
    vm
}

/// How one boot went.
#[derive(Debug)]
pub struct Boot {
    /// How the VM ended: `Killed` if it outlived the timeout.
    pub reason: DeathReason,
    /// Everything the guest wrote to its console.
    pub console: String,
    /// Guest instructions from reset to the end, when the config asked for `icount_shift` and
    /// the guest ended itself.
    pub instructions: Option<u64>,
}

impl Boot {
    /// The console, line by line.
    pub fn lines(&self) -> Vec<String> {
        self.console.lines().map(str::to_owned).collect()
    }
}

/// Boots `config` and waits for the VM to end, killing it after `timeout`. The console is read
/// through a pipe; QEMU's own messages go to an unnamed temporary file.
pub fn boot(config: &VirtualMachineRawConfig, timeout: Duration) -> Result<Boot, vmclient::Error> {
    let io = |action| move |source| vmclient::Error::Io { action, source };
    let (mut reader, writer) = std::io::pipe().map_err(io("create the console pipe"))?;
    let log = tempfile::tempfile().map_err(io("create the log file"))?;
    let mut vm = VmInstance::create(config, Some(File::from(OwnedFd::from(writer))), Some(log))?;
    let console = thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error ends the capture early; the assertions on the console then say so.
        let _ = reader.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    vm.start()?;
    let reason = vm
        .wait_for_death_with_timeout(timeout)
        .unwrap_or_else(|| vm.kill());
    let instructions = vm.instructions_executed();
    // Dropping the VM closes the last write end of the pipe, which ends the reader.
    drop(vm);
    Ok(Boot {
        reason,
        console: console.join().expect("console reader"),
        instructions,
    })
}

/// [`boot`] for a test: how the VM ended and its console lines, failing the test if the VM
/// cannot start.
pub fn boot_to_end(
    config: &VirtualMachineRawConfig,
    timeout: Duration,
) -> (DeathReason, Vec<String>) {
    let boot = boot(config, timeout).expect("start the guest");
    (boot.reason, boot.lines())
}

/// Boots `config` paused for a debugger (`--gdb` on a free local port) and runs
/// `gdb-multiarch` on it in batch mode: `target remote`, then `script`, lines of a gdb script
/// (`commands … end` blocks included) that end by continuing the guest. Returns the [`Boot`],
/// killed after `timeout` like any other, and what gdb printed on its standard output.
pub fn boot_under_gdb(
    config: &VirtualMachineRawConfig,
    script: &[&str],
    timeout: Duration,
) -> (Boot, String) {
    // A free port, released just before QEMU takes it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port();
    let mut file = tempfile::NamedTempFile::new().expect("create the gdb script");
    let header = [
        "set pagination off".to_owned(),
        "set architecture aarch64".to_owned(),
        format!("target remote 127.0.0.1:{port}"),
    ];
    for line in header
        .iter()
        .map(String::as_str)
        .chain(script.iter().copied())
    {
        std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes())
            .expect("write the gdb script");
    }
    let script_path = file.path().to_owned();
    let debugger = thread::spawn(move || {
        Command::new("gdb-multiarch")
            .args(["-batch", "-nx", "-x"])
            .arg(&script_path)
            .stderr(std::process::Stdio::null())
            .output()
            .expect("run gdb-multiarch (apt-get install gdb-multiarch)")
    });
    let config = VirtualMachineRawConfig {
        gdb_port: Some(port),
        ..config.clone()
    };
    let boot = boot(&config, timeout).expect("start the guest");
    let output = debugger.join().expect("gdb-multiarch thread");
    drop(file);
    (boot, String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A `qemu-system-aarch64` that runs the real one (`$REAL_QEMU`) with `-cpu cortex-a57` instead of
/// `-cpu max`.
const QEMU_WITHOUT_RNG: &str = r#"#!/bin/sh
for arg in "$@"; do
    shift
    if [ "$arg" = max ]; then set -- "$@" cortex-a57; else set -- "$@" "$arg"; fi
done
exec "$REAL_QEMU" "$@"
"#;

/// Makes every later boot in this process run on a CPU without FEAT_RNG (QEMU's cortex-a57; QEMU
/// offers no SMCCC TRNG either), by putting a QEMU wrapper first on PATH. The wrapper lives in the
/// returned directory: keep it until the last boot.
///
/// # Safety
///
/// It changes the process environment, so no other thread may read or write the environment at
/// the same time: call it from a test binary of its own that holds a single test.
pub unsafe fn use_cpu_without_rng() -> tempfile::TempDir {
    let path = std::env::var_os("PATH").expect("PATH is set");
    let real_qemu = std::env::split_paths(&path)
        .map(|directory| directory.join("qemu-system-aarch64"))
        .find(|qemu| qemu.is_file())
        .expect("qemu-system-aarch64 on PATH");
    let directory = tempfile::tempdir().expect("create temporary directory");
    let wrapper = directory.path().join("qemu-system-aarch64");
    std::fs::write(&wrapper, QEMU_WITHOUT_RNG).expect("write QEMU wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .expect("make QEMU wrapper executable");
    let path = std::env::join_paths(
        std::iter::once(directory.path().to_owned()).chain(std::env::split_paths(&path)),
    )
    .expect("join PATH");
    // SAFETY: The caller promises that no other thread uses the environment meanwhile.
    unsafe {
        std::env::set_var("PATH", path);
        std::env::set_var("REAL_QEMU", real_qemu);
    }
    directory
}

/// Instructions [`stand_in_kernel`] executes up to and including its `hvc`.
pub const STAND_IN_KERNEL_INSTRUCTIONS: u64 = 4;

/// What a stand-in kernel runs once entered: PSCI `SYSTEM_OFF` over HVC, then spins.
const POWER_OFF: [u32; 4] = [
    0x5280_0100, // movz w0, #0x8
    0x72b0_8000, // movk w0, #0x8400, lsl #16: PSCI SYSTEM_OFF
    0xd400_0002, // hvc #0
    0x1400_0000, // b .
];

/// The instructions of [`POWER_OFF`] up to and including its `hvc`.
const POWER_OFF_INSTRUCTIONS: u64 = 3;

/// An arm64 `Image` of `file_size` bytes (zero-padded) whose first instruction is `first` and
/// whose header claims `image_size` bytes in memory, with [`POWER_OFF`] at `code`.
fn arm64_image(file_size: usize, image_size: u64, first: u32, code: usize) -> Vec<u8> {
    let mut image = vec![0; file_size.max(code + 4 * POWER_OFF.len())];
    // text_offset 0; little-endian, 4 KiB pages, anywhere in RAM.
    let mut header =
        RawImageHeader::new(0, image_size, FLAG_PAGE_SIZE_4K | FLAG_PLACEMENT_ANYWHERE);
    header.code0 = first;
    image[..IMAGE_HEADER_SIZE].copy_from_slice(&header.to_bytes());
    for (index, instruction) in POWER_OFF.iter().enumerate() {
        image[code + 4 * index..][..4].copy_from_slice(&instruction.to_le_bytes());
    }
    image
}

/// The smallest bootloader image: [`POWER_OFF`] alone, which powers the VM off from its first
/// instruction (for measuring what runs before a guest, such as the pKVM double).
pub fn power_off_bootloader() -> Vec<u8> {
    POWER_OFF
        .iter()
        .flat_map(|word| word.to_le_bytes())
        .collect()
}

/// A stand-in kernel for tests and benchmarks of a firmware: an arm64 `Image` whose code, after
/// the 64-byte header, powers the VM off (PSCI `SYSTEM_OFF` over HVC). The file is `file_size`
/// bytes (at least the 0x50 of header and code, padded with zeros); its header claims
/// `image_size` bytes in memory, which may be more than the file (its `.bss`).
pub fn stand_in_kernel(file_size: usize, image_size: u64) -> Vec<u8> {
    // b +0x40: over the header.
    arm64_image(file_size, image_size, 0x1400_0010, 0x40)
}

/// Instructions [`stand_in_efi_kernel`] executes up to and including its `hvc` when entered as
/// an arm64 `Image` (at its first byte, as vmbase_linuxboot and U-Boot's `booti` do), and when
/// entered as an EFI application (at its PE entry point, as EDK2 does).
pub const STAND_IN_EFI_KERNEL_INSTRUCTIONS: (u64, u64) =
    (2 + POWER_OFF_INSTRUCTIONS, POWER_OFF_INSTRUCTIONS);

/// Where [`stand_in_efi_kernel`]'s code starts, in the file and in memory: its one PE section,
/// page-aligned as firmware that maps an image's sections with their own permissions wants.
const EFI_CODE: usize = 0x1000;

/// A stand-in kernel that is both an arm64 `Image` and a PE32+ EFI application, as Linux's
/// EFI stub makes it: every firmware boots the same payload, which powers the VM off at once
/// (PSCI `SYSTEM_OFF` over HVC), the `Image` way from its first byte, the EFI way from its PE
/// entry point. The file is `file_size` bytes (at least two pages); its `Image` header claims
/// `image_size` bytes in memory.
pub fn stand_in_efi_kernel(file_size: usize, image_size: u64) -> Vec<u8> {
    /// `ccmp x18, #0, #0xd, pl`: harmless, and its first two bytes are the DOS magic "MZ".
    const MZ: u32 = 0xfa40_5a4d;
    /// Where the PE header starts: the `Image` header's last word, the DOS `e_lfanew`.
    const PE_HEADER: usize = 0x40;
    const OPTIONAL_HEADER_SIZE: usize = 112 + 16 * 8;
    const SECTION_TABLE: usize = PE_HEADER + 4 + 20 + OPTIONAL_HEADER_SIZE;
    let file_size = file_size.max(2 * EFI_CODE);
    let mut image = arm64_image(file_size, image_size, MZ, EFI_CODE);
    // The `Image`'s second instruction branches to the code.
    let branch = 0x1400_0000 | ((EFI_CODE - 4) / 4) as u32;
    let mut put =
        |offset: usize, bytes: &[u8]| image[offset..][..bytes.len()].copy_from_slice(bytes);
    put(4, &branch.to_le_bytes());
    put(0x3c, &(PE_HEADER as u32).to_le_bytes());
    let section_size = (EFI_CODE as u32).to_le_bytes();
    let code = (EFI_CODE as u32).to_le_bytes();
    let image_bytes = (2 * EFI_CODE as u32).to_le_bytes();
    let pe: &[&[u8]] = &[
        b"PE\0\0",
        // COFF header: machine ARM64, one section, no symbols, the optional header's size,
        // an executable image whose relocations are not stripped (it has none to apply).
        &0xaa64_u16.to_le_bytes(),
        &1_u16.to_le_bytes(),
        &[0; 12],
        &(OPTIONAL_HEADER_SIZE as u16).to_le_bytes(),
        &0x0206_u16.to_le_bytes(),
        // Optional header, PE32+: linker version, code size, no data, the entry point and the
        // base of code (both the section's start).
        &0x20b_u16.to_le_bytes(),
        &[0; 2],
        &section_size,
        &[0; 8],
        &code,
        &code,
        // Preferred base 0; section and file alignment one page; versions 0; image and header
        // sizes; no checksum; subsystem EFI application (10); no DLL characteristics; stack
        // and heap sizes 0; no loader flags; 16 data directories, all empty.
        &0_u64.to_le_bytes(),
        &code,
        &code,
        &[0; 16],
        &image_bytes,
        &code,
        &[0; 4],
        &10_u16.to_le_bytes(),
        &[0; 2],
        &[0; 32],
        &[0; 4],
        &16_u32.to_le_bytes(),
        &[0; 16 * 8],
        // The section: ".text", a page at offset and address EFI_CODE, code, readable and
        // executable.
        b".text\0\0\0",
        &section_size,
        &code,
        &section_size,
        &code,
        &[0; 12],
        &0x6000_0020_u32.to_le_bytes(),
    ];
    let mut offset = PE_HEADER;
    for field in pe {
        put(offset, field);
        offset += field.len();
    }
    assert_eq!(offset, SECTION_TABLE + 40, "PE header layout");
    image
}

/// Compiles device tree source `source` (text) to `dir/NAME.dtb` with dtc, which
/// `tools/install-deps.sh` installs, and returns that path; a test fails if dtc is missing or
/// refuses the source (its messages in the failure).
pub fn compiled_device_tree(dir: &Path, name: &str, source: &str) -> PathBuf {
    let dts = dir.join(format!("{name}.dts"));
    std::fs::write(&dts, source).expect("write the device tree source");
    compiled_fixture(dir, &dts)
}

/// Compiles the device tree source file `fixture` to `dir/STEM.dtb` with dtc, as
/// [`compiled_device_tree`] does, and returns that path. Its `/include/`s are found next to it.
pub fn compiled_fixture(dir: &Path, fixture: &Path) -> PathBuf {
    let mut name = fixture.file_stem().expect("a fixture is a file").to_owned();
    name.push(".dtb");
    let dtb = dir.join(name);
    let output = Command::new("dtc")
        .args(["-I", "dts", "-O", "dtb", "-o"])
        .arg(&dtb)
        .arg(fixture)
        .output()
        .expect("run dtc (tools/install-deps.sh installs it: device-tree-compiler)");
    assert!(
        output.status.success(),
        "dtc failed on {}: {}",
        fixture.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    dtb
}

/// A crosvm-like device tree for QEMU's `virt` machine as `vm` builds it, compiled from
/// `tests/data/crosvm-like-virt.dts` into `dir`: crosvm's node shapes with a console QEMU has
/// (the fixture says why). Its `/memory` is [`CROSVM_LIKE_TREE_MEMORY_MIB`] from `0x8000_0000`.
pub fn crosvm_like_device_tree(dir: &Path) -> PathBuf {
    compiled_fixture(
        dir,
        &repository_root().join("tests/data/crosvm-like-virt.dts"),
    )
}

/// The RAM that `tests/data/crosvm-like-virt.dts` describes, in MiB: `/memory` ends at
/// `0x92c0_0000`.
pub const CROSVM_LIKE_TREE_MEMORY_MIB: u32 = 300;

/// Where `tools/install-deps.sh linux` keeps Debian's arm64 kernel (`Image`) and `busybox`:
/// `$XDG_CACHE_HOME/vmbase/linux`, by default `~/.cache/vmbase/linux`; `None` if neither
/// variable is set.
pub fn linux_cache_dir() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(cache.join("vmbase/linux"))
}

/// A newc cpio archive (an initramfs) of `entries`, each a path, a mode (file type included) and
/// the contents, numbered from inode 1. `dev/console` is the console character device, 5:1.
pub fn newc_archive(entries: &[(&str, u32, &[u8])]) -> std::io::Result<Vec<u8>> {
    let mut archive = Vec::new();
    for (inode, &(name, mode, data)) in entries.iter().enumerate() {
        let mut builder = cpio::NewcBuilder::new(name)
            .ino(inode as u32 + 1)
            .mode(mode)
            .nlink(if mode & 0o040_000 != 0 { 2 } else { 1 });
        if name == "dev/console" {
            builder = builder.rdev_major(5).rdev_minor(1);
        }
        let mut writer = builder.write(&mut archive, data.len() as u32);
        std::io::Write::write_all(&mut writer, data)?;
        writer.finish()?;
    }
    cpio::newc::trailer(&mut archive)?;
    Ok(archive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::pe::{
        IMAGE_FILE_MACHINE_ARM64, IMAGE_SCN_MEM_EXECUTE, IMAGE_SUBSYSTEM_EFI_APPLICATION,
    };
    use object::read::pe::PeFile64;
    use object::{Object, ObjectSection};

    /// The word at `offset`.
    fn word(image: &[u8], offset: usize) -> u32 {
        u32::from_le_bytes(image[offset..offset + 4].try_into().unwrap())
    }

    #[test]
    fn stand_in_efi_kernel_is_an_image_and_an_efi_application() {
        let image = stand_in_efi_kernel(0, 0x2000);
        // As an arm64 Image: the magic, and a branch from the second word to the code.
        assert_eq!(&image[0x38..0x3c], b"ARM\x64");
        let branch = word(&image, 4);
        assert_eq!(branch >> 26, 0b000101, "b");
        assert_eq!(4 + 4 * (branch & 0x03ff_ffff) as usize, EFI_CODE);
        assert_eq!(word(&image, EFI_CODE), POWER_OFF[0]);
        // As a PE32+ EFI application for arm64, entered at the same code.
        let pe = PeFile64::parse(&*image).unwrap();
        let header = pe.nt_headers();
        assert_eq!(
            header.file_header.machine.get(object::LittleEndian),
            IMAGE_FILE_MACHINE_ARM64
        );
        let optional = &header.optional_header;
        assert_eq!(
            optional.subsystem.get(object::LittleEndian),
            IMAGE_SUBSYSTEM_EFI_APPLICATION
        );
        assert_eq!(pe.entry(), EFI_CODE as u64);
        let text = pe.section_by_name(".text").unwrap();
        assert_eq!(text.address(), EFI_CODE as u64);
        assert_eq!(text.data().unwrap()[..4], POWER_OFF[0].to_le_bytes());
        let flags = match text.flags() {
            object::SectionFlags::Coff { characteristics } => characteristics,
            flags => panic!("{flags:?}"),
        };
        assert!(flags.contains(IMAGE_SCN_MEM_EXECUTE), "{flags:?}");
    }
}
