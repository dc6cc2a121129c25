// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The VM's console: which UART it is, and the locked and lock-free ways of writing to it.
//!
//! [`init`] picks the UART once, from the FDT the VMM passed if it names a supported one, or the
//! 8250 at [`BASE_ADDRESS`] otherwise. [`println!`](crate::println) writes whole lines under a spin
//! lock, while [`emergency_write_str`] and [`eprintln!`](crate::eprintln) take that lock only if it
//! is free, so they work even when it is held or was never set up.
//!
//! Either way a driver for the UART exists only while one string is written, under a claim of the
//! device that is never held twice: so there is never more than one [`RegisterBlock`] owning the
//! UART's registers. Every wait on the device is bounded: a UART that never makes room for a byte
//! is given up on, and the console is silent from then on.

use crate::fdt::{Fdt, FdtError, StdoutDevice, StdoutError};
use crate::mmio::RegisterBlock;
use crate::uart;
use core::fmt::{self, Write};
use core::num::NonZeroUsize;
use core::ops::Range;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::{mutex::SpinMutex, Once};

/// Base address of the first 8250 UART that crosvm emulates: the console when the FDT names
/// none that vmbase supports.
pub const BASE_ADDRESS: usize = crate::layout::crosvm::UART_BASE;

/// The MMIO range where a console may live: crosvm's first GiB, which the example's idmap maps
/// as device memory. A UART the FDT places anywhere else is ignored.
pub const MMIO_RANGE: core::ops::Range<usize> = crate::layout::crosvm::MMIO_RANGE;

/// A UART vmbase can drive, with its base address.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum ConsoleDevice {
    /// An 8250/16550 UART (crosvm's console).
    Ns16550(NonZeroUsize),
    /// An Arm PL011 UART (QEMU virt's console).
    Pl011(NonZeroUsize),
}

/// Why [`ConsoleDevice::from_fdt`] fell back to the default console.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum ConsoleError {
    /// The VMM passed no usable FDT.
    NoFdt,
    /// The FDT names no console device vmbase can find ([`Fdt::stdout`]).
    Stdout(StdoutError),
    /// The console node is not compatible with a driver vmbase has.
    UnsupportedDevice,
    /// The console's registers are outside [`MMIO_RANGE`].
    OutsideMmio(u64),
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFdt => write!(f, "no device tree"),
            Self::Stdout(e) => write!(f, "{e}"),
            Self::UnsupportedDevice => write!(f, "the stdout-path device has no vmbase driver"),
            Self::OutsideMmio(address) => write!(f, "console address {address:#x} is not MMIO"),
        }
    }
}

#[cfg(has_core_error)]
impl core::error::Error for ConsoleError {}

impl From<FdtError> for ConsoleError {
    fn from(e: FdtError) -> Self {
        Self::Stdout(StdoutError::Fdt(e))
    }
}

impl From<StdoutError> for ConsoleError {
    fn from(e: StdoutError) -> Self {
        Self::Stdout(e)
    }
}

impl ConsoleDevice {
    /// The console when the FDT does not name one.
    pub const DEFAULT: Self = match NonZeroUsize::new(BASE_ADDRESS) {
        Some(base) => Self::Ns16550(base),
        None => panic!("the default console is at address 0"),
    };

    /// The console that `/chosen/stdout-path` of FDT `blob` names. `blob` is all this reads:
    /// the caller decides where the tree comes from and how much of memory it may span.
    pub fn from_fdt(blob: &[u8]) -> Result<Self, ConsoleError> {
        let fdt = Fdt::new(blob)?;
        let StdoutDevice { node, address } = fdt.stdout()?;
        let compatible = node.property(b"compatible")?.unwrap_or_default();
        // The first entry vmbase has a driver for: entries go from the most specific on.
        let device: fn(NonZeroUsize) -> Self = compatible
            .split(|&b| b == 0)
            .find_map(|entry| match entry {
                b"ns16550a" | b"ns16550" | b"ns8250" => {
                    Some(Self::Ns16550 as fn(NonZeroUsize) -> Self)
                }
                b"arm,pl011" => Some(Self::Pl011),
                _ => None,
            })
            .ok_or(ConsoleError::UnsupportedDevice)?;
        let outside = ConsoleError::OutsideMmio(address);
        let base = usize::try_from(address).map_err(|_| outside)?;
        let device = device(NonZeroUsize::new(base).ok_or(outside)?);
        // mmio_range saturates: registers past the end of the address space end past MMIO_RANGE.
        let registers = device.mmio_range();
        if !MMIO_RANGE.contains(&registers.start) || registers.end > MMIO_RANGE.end {
            return Err(outside);
        }
        Ok(device)
    }

    /// The addresses of the device's registers: what a page table must map as device memory
    /// for the console to keep working.
    pub fn mmio_range(self) -> Range<usize> {
        let (base, size) = match self {
            Self::Ns16550(base) => (base, uart::REGISTERS_SIZE),
            Self::Pl011(base) => (base, core::mem::size_of::<uart::Pl011Registers>()),
        };
        base.get()..base.get().saturating_add(size)
    }
}

/// The driver for a [`ConsoleDevice`], made for one write while the device is [`Claim`]ed.
enum ConsoleDriver {
    Ns16550(uart::Ns16550<'static>),
    Pl011(uart::Pl011<'static>),
}

impl ConsoleDriver {
    /// # Safety
    ///
    /// `device` must be the address of such a UART, mapped as device memory, and no other driver
    /// for it may exist while this one does (hold a [`Claim`]).
    unsafe fn new(device: ConsoleDevice) -> Self {
        match device {
            ConsoleDevice::Ns16550(base) => {
                // SAFETY: The caller promises that base is the address of this UART's registers,
                // mapped as device memory, and that no other driver for them exists.
                let registers = unsafe { RegisterBlock::new(registers_at(base)) };
                Self::Ns16550(uart::Ns16550::new(registers))
            }
            ConsoleDevice::Pl011(base) => {
                // SAFETY: As above.
                let registers = unsafe { RegisterBlock::new(registers_at(base)) };
                Self::Pl011(uart::Pl011::new(registers))
            }
        }
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), uart::DeviceStuck> {
        match self {
            Self::Ns16550(uart) => {
                bytes.iter().for_each(|&byte| uart.write_byte(byte));
                Ok(())
            }
            Self::Pl011(uart) => uart.write_bytes(bytes),
        }
    }
}

/// A pointer to registers at the physical address `base`, which the identity map makes their
/// virtual address too.
fn registers_at<R>(base: NonZeroUsize) -> NonNull<R> {
    // SAFETY: base is not zero.
    unsafe { NonNull::new_unchecked(base.get() as *mut R) }
}

/// The device chosen by [`init`].
static DEVICE: Once<ConsoleDevice> = Once::new();
/// Held for a whole `print!` or `println!`, so that lines do not interleave.
static LINES: SpinMutex<()> = SpinMutex::new(());
/// Set while some code has a driver for the console device; see [`Claim`].
static CLAIMED: AtomicBool = AtomicBool::new(false);
/// Set once the console device stopped taking bytes: nothing is written after that.
static GAVE_UP: AtomicBool = AtomicBool::new(false);

/// Attempts to claim the device before a write gives up: another CPU holds a claim for at most
/// one string, itself bounded; a claim held by the code an exception interrupted is never
/// released, and then the exception's output is lost rather than the VM hung.
const CLAIM_ATTEMPTS: u32 = 1 << 20;

/// The right to make the one driver for the console device; released when dropped.
struct Claim;

impl Claim {
    fn acquire() -> Option<Self> {
        (0..CLAIM_ATTEMPTS)
            .any(|_| {
                let free = CLAIMED
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok();
                core::hint::spin_loop();
                free
            })
            // Not then_some: a Claim made and dropped on failure would release the holder's.
            .then(|| Self)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        CLAIMED.store(false, Ordering::Release);
    }
}

/// The console device as a `fmt::Write`: each string is written under its own [`Claim`].
struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if GAVE_UP.load(Ordering::Relaxed) {
            return Err(fmt::Error);
        }
        let _claim = Claim::acquire().ok_or(fmt::Error)?;
        // SAFETY: device() is what init chose (mapped, as init's caller promised) or, before
        // that, the default 8250 that vmbase's idmap contract maps; the claim makes this the only
        // driver for it until the claim drops, at the end of this function.
        let mut uart = unsafe { ConsoleDriver::new(device()) };
        uart.write_bytes(s.as_bytes()).map_err(|uart::DeviceStuck| {
            GAVE_UP.store(true, Ordering::Relaxed);
            fmt::Error
        })
    }
}

/// The console device: the one [`init`] chose, or [`ConsoleDevice::DEFAULT`] before that.
pub fn device() -> ConsoleDevice {
    DEVICE.get().copied().unwrap_or(ConsoleDevice::DEFAULT)
}

/// Sets up the console, once; vmbase calls it before `main`.
///
/// `fdt` is the device tree the VMM passed, if it looks like one. Returns why the FDT's console
/// was not used, if it was not, so the caller can report it once the console works.
///
/// # Safety
///
/// The device the FDT names (or the 8250 at [`BASE_ADDRESS`]) must be mapped as device memory for
/// the rest of the program, and nothing else may use its registers.
pub unsafe fn init(fdt: Option<&[u8]>) -> Result<ConsoleDevice, ConsoleError> {
    let chosen = match fdt {
        Some(blob) => ConsoleDevice::from_fdt(blob),
        None => Err(ConsoleError::NoFdt),
    };
    DEVICE.call_once(|| chosen.unwrap_or(ConsoleDevice::DEFAULT));
    chosen
}

/// Writes `args` and a newline while holding the console lock once. Used by
/// [`println!`](crate::println).
#[doc(hidden)]
pub fn write_line(args: fmt::Arguments) {
    write_locked(args, "\n");
}

/// Writes `args` while holding the console lock. Used by [`print!`](crate::print).
#[doc(hidden)]
pub fn write_args(args: fmt::Arguments) {
    write_locked(args, "");
}

fn write_locked(args: fmt::Arguments, end: &str) {
    let _line = LINES.lock();
    // Console output has nowhere to report its own failure.
    let _ = Console
        .write_fmt(args)
        .and_then(|()| Console.write_str(end));
}

/// Writes `s` to the console without waiting for its lock or allocating, so it works in
/// exception handlers and panics, even if the lock is held (then the output may interleave with
/// a `println!`).
pub fn emergency_write_str(s: &str) {
    let _line = LINES.try_lock();
    let _ = Console.write_str(s);
}

/// Formats `args` to the console like [`emergency_write_str`]. Used by
/// [`eprint!`](crate::eprint) and [`eprintln!`](crate::eprintln).
#[doc(hidden)]
pub fn emergency_write_args(args: fmt::Arguments) {
    let _line = LINES.try_lock();
    let _ = Console.write_fmt(args);
}

/// Prints to the console, holding its lock for the whole line.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::write_args(format_args!($($arg)*)));
}

/// Prints a line to the console, holding its lock for the whole line.
///
/// Do not use it in exception handlers: the interrupted code may hold the lock. Use
/// [`eprintln!`](crate::eprintln) there.
#[macro_export]
macro_rules! println {
    () => ($crate::console::write_line(format_args!("")));
    ($($arg:tt)*) => ($crate::console::write_line(format_args!($($arg)*)));
}

/// Prints to the console without locking; safe in exception handlers and panics.
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => ($crate::console::emergency_write_args(format_args!($($arg)*)));
}

/// Prints a line to the console without locking; safe in exception handlers and panics.
#[macro_export]
macro_rules! eprintln {
    () => ($crate::console::emergency_write_str("\n"));
    ($($arg:tt)*) => ({
        $crate::console::emergency_write_args(format_args!($($arg)*));
        $crate::console::emergency_write_str("\n");
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdt::tests::{crosvm_like, qemu_virt, FdtBuilder};

    #[test]
    fn qemu_dtb_selects_pl011() {
        let blob = qemu_virt();
        assert_eq!(
            ConsoleDevice::from_fdt(&blob),
            Ok(ConsoleDevice::Pl011(NonZeroUsize::new(0x900_0000).unwrap()))
        );
    }

    #[test]
    fn crosvm_dtb_selects_8250() {
        assert_eq!(
            ConsoleDevice::from_fdt(&crosvm_like()),
            Ok(ConsoleDevice::DEFAULT)
        );
    }

    /// A tree builder inside the root node, after a `/chosen` whose `stdout-path` is `path`: the
    /// caller adds the rest and closes the root.
    fn root_with_stdout_path(path: &[u8]) -> FdtBuilder {
        let mut builder = FdtBuilder::new();
        builder
            .begin("")
            .begin("chosen")
            .prop("stdout-path", path)
            .end();
        builder
    }

    fn tree_with_console(compatible: &[u8], reg: &[u32]) -> Vec<u8> {
        root_with_stdout_path(b"/serial\0")
            .begin("serial")
            .prop("compatible", compatible)
            .prop_u32s("reg", reg)
            .end()
            .end()
            .build()
    }

    #[test]
    fn unsupported_or_misplaced_devices_fall_back() {
        let virtio = tree_with_console(b"virtio,console\0", &[0, 0x1000]);
        assert_eq!(
            ConsoleDevice::from_fdt(&virtio),
            Err(ConsoleError::UnsupportedDevice)
        );

        let in_ram = tree_with_console(b"arm,pl011\0", &[0, 0x8020_0000]);
        assert_eq!(
            ConsoleDevice::from_fdt(&in_ram),
            Err(ConsoleError::OutsideMmio(0x8020_0000))
        );

        let straddling = tree_with_console(b"ns16550a\0", &[0, 0x3fff_fffc]);
        assert_eq!(
            ConsoleDevice::from_fdt(&straddling),
            Err(ConsoleError::OutsideMmio(0x3fff_fffc))
        );
    }

    #[test]
    fn first_supported_compatible_entry_decides() {
        let pl011_first = tree_with_console(b"vendor,uart\0arm,pl011\0ns16550a\0", &[0, 0x1000]);
        assert_eq!(
            ConsoleDevice::from_fdt(&pl011_first),
            Ok(ConsoleDevice::Pl011(NonZeroUsize::new(0x1000).unwrap()))
        );
        let ns16550_first = tree_with_console(b"ns16550\0arm,pl011\0", &[0, 0x1000]);
        assert_eq!(
            ConsoleDevice::from_fdt(&ns16550_first),
            Ok(ConsoleDevice::Ns16550(NonZeroUsize::new(0x1000).unwrap()))
        );
    }

    /// Root children remembered on the way to `/chosen`: a full name finds its node wherever it
    /// is; a name without unit address finds the first node so named.
    #[test]
    fn remembered_children_found_by_full_or_short_name() {
        let tree = |stdout_path: &[u8]| {
            let mut builder = FdtBuilder::new();
            builder.begin("").prop_u32s("#address-cells", &[1]);
            for (name, address) in [("uart@1000", 0x1000u32), ("uart@2000", 0x2000), ("x", 0)] {
                builder
                    .begin(name)
                    .prop("compatible", b"arm,pl011\0")
                    .prop_u32s("reg", &[address])
                    .end();
            }
            builder
                .begin("chosen")
                .prop("stdout-path", stdout_path)
                .end();
            builder.end().build()
        };
        let pl011 = |address| Ok(ConsoleDevice::Pl011(NonZeroUsize::new(address).unwrap()));
        assert_eq!(
            ConsoleDevice::from_fdt(&tree(b"/uart@2000\0")),
            pl011(0x2000)
        );
        assert_eq!(
            ConsoleDevice::from_fdt(&tree(b"/uart@1000\0")),
            pl011(0x1000)
        );
        assert_eq!(ConsoleDevice::from_fdt(&tree(b"/uart\0")), pl011(0x1000));
        assert_eq!(
            ConsoleDevice::from_fdt(&tree(b"/uart@3000\0")),
            Err(ConsoleError::Stdout(StdoutError::NodeNotFound))
        );
    }

    /// While one driver for the device exists (its claim is held), no writer makes another: it
    /// gives up after a bounded wait without touching the device (which, on the host, is not
    /// there: a write would crash the test).
    #[test]
    fn children_after_chosen_found_by_full_or_short_name() {
        // /chosen first, as crosvm writes it: the console node is found by the second walk.
        let tree = |stdout_path: &[u8]| {
            // The root's default #address-cells, 2.
            let mut builder = root_with_stdout_path(stdout_path);
            for (name, address) in [
                ("x", 0x500u32),
                ("uart@1000", 0x1000),
                ("uart@2000", 0x2000),
                ("u@3000", 0x3000),
                ("uart", 0x4000),
            ] {
                builder
                    .begin(name)
                    .prop("compatible", b"arm,pl011\0")
                    .prop_u32s("reg", &[0, address])
                    .end();
            }
            builder.end().build()
        };
        let pl011 = |address| Ok(ConsoleDevice::Pl011(NonZeroUsize::new(address).unwrap()));
        for (path, address) in [
            (&b"/uart@2000\0"[..], 0x2000),
            (b"/uart@1000\0", 0x1000),
            (b"/uart\0", 0x1000),
            (b"/u\0", 0x3000),
            (b"/u@3000\0", 0x3000),
            (b"/x\0", 0x500),
        ] {
            assert_eq!(
                ConsoleDevice::from_fdt(&tree(path)),
                pl011(address),
                "{path:?}"
            );
        }
        assert_eq!(
            ConsoleDevice::from_fdt(&tree(b"/uart@3000\0")),
            Err(ConsoleError::Stdout(StdoutError::NodeNotFound))
        );
    }

    #[test]
    fn no_second_driver_while_one_exists() {
        let held = Claim::acquire().expect("nothing else claims the console in unit tests");
        assert_eq!(Console.write_str("lost"), Err(fmt::Error));
        emergency_write_str("lost too");
        drop(held);
        assert!(Claim::acquire().is_some());
    }

    #[test]
    fn register_ranges() {
        assert_eq!(ConsoleDevice::DEFAULT.mmio_range(), 0x3f8..0x400);
        let pl011 = ConsoleDevice::Pl011(NonZeroUsize::new(0x900_0000).unwrap());
        assert_eq!(pl011.mmio_range(), 0x900_0000..0x900_1000);
    }

    #[test]
    fn stdout_path_through_alias_with_options() {
        let blob = root_with_stdout_path(b"serial0:115200n8\0")
            .begin("aliases")
            .prop("serial0", b"/soc/uart@1000\0")
            .end()
            .begin("soc")
            .prop_u32s("#address-cells", &[1])
            .prop("ranges", b"")
            .begin("uart@1000")
            .prop("compatible", b"vendor,uart\0arm,pl011\0")
            .prop_u32s("reg", &[0x1000, 0x100])
            .end()
            .end()
            .end()
            .build();
        assert_eq!(
            ConsoleDevice::from_fdt(&blob),
            Ok(ConsoleDevice::Pl011(NonZeroUsize::new(0x1000).unwrap()))
        );
    }

    #[test]
    fn console_node_after_many_root_children() {
        let mut builder = FdtBuilder::new();
        builder.begin("");
        for _ in 0..2 * crate::fdt::REMEMBERED_NODES {
            builder.begin("filler").end();
        }
        builder
            .begin("serial@3f8")
            .prop("compatible", b"ns16550a\0")
            .prop_u32s("reg", &[0, 0x3f8, 0, 8])
            .end()
            .begin("chosen")
            .prop("stdout-path", b"/serial\0")
            .end();
        let blob = builder.end().build();
        assert_eq!(ConsoleDevice::from_fdt(&blob), Ok(ConsoleDevice::DEFAULT));
    }

    #[test]
    fn translated_bus_is_refused() {
        let blob = root_with_stdout_path(b"/bus/uart@0\0")
            .begin("bus")
            .prop_u32s("ranges", &[0, 0, 0x1000, 0, 0x1000])
            .begin("uart@0")
            .prop("compatible", b"ns16550a\0")
            .prop_u32s("reg", &[0, 0, 0, 8])
            .end()
            .end()
            .end()
            .build();
        assert_eq!(
            ConsoleDevice::from_fdt(&blob),
            Err(ConsoleError::Stdout(StdoutError::TranslatedAddress))
        );
    }

    #[test]
    fn missing_pieces_are_errors() {
        let no_chosen = FdtBuilder::new().begin("").end().build();
        assert_eq!(
            ConsoleDevice::from_fdt(&no_chosen),
            Err(ConsoleError::Stdout(StdoutError::NoStdoutPath))
        );

        // The tree has a node `/uart` without `reg`, and no aliases.
        let cases: [(&[u8], ConsoleError); 3] = [
            (
                b"/nowhere\0",
                ConsoleError::Stdout(StdoutError::NodeNotFound),
            ),
            (
                b"serial3\0",
                ConsoleError::Stdout(StdoutError::UnknownAlias),
            ),
            (b"/uart\0", ConsoleError::Stdout(StdoutError::NoReg)),
        ];
        for (stdout_path, error) in cases {
            let blob = root_with_stdout_path(stdout_path)
                .begin("uart")
                .end()
                .end()
                .build();
            assert_eq!(
                ConsoleDevice::from_fdt(&blob),
                Err(error),
                "stdout-path {stdout_path:?}"
            );
        }
    }

    /// Console selection on the regression inputs and on corrupted copies of QEMU's tree: a
    /// result every time, never a panic. Both kinds of result must occur, or the corpus tests
    /// nothing: corruptions QEMU's PL011 survives, and corruptions that are refused.
    #[test]
    fn hostile_trees_are_errors_not_panics() {
        let regressions = crate::fdt::tests::regression_inputs();
        let good = qemu_virt();
        let corrupted = (0..good.len()).step_by(3).flat_map(|index| {
            [0x00, 0x02, 0x04, 0xff].map(|value| {
                let mut blob = good.to_vec();
                blob[index] = value;
                blob
            })
        });
        let (mut chosen, mut refused) = (0, 0);
        for blob in regressions.into_iter().chain(corrupted) {
            match ConsoleDevice::from_fdt(&blob) {
                Ok(_) => chosen += 1,
                Err(_) => refused += 1,
            }
        }
        assert!(
            chosen > 0 && refused > 0,
            "{chosen} chosen, {refused} refused"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(ConsoleDevice::from_fdt(&[0xd0, 0x0d, 0xfe, 0xed]).is_err());
        assert!(ConsoleDevice::from_fdt(&[0xff; 4096]).is_err());
    }
}
