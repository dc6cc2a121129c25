// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The memory layout of the running binary, as sections.ld placed it, and the platform's
//! ([`crosvm`]).

pub mod crosvm;

use core::ops::Range;

/// Size of a translation granule: the unit of guard pages and page-table permissions.
pub const PAGE_SIZE: usize = 4096;

/// The ranges of a vmbase binary, from the symbols sections.ld defines.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Layout {
    /// The region reserved for the FDT (`dtb_begin..dtb_end`).
    pub dtb: Range<usize>,
    /// Code (`text_begin..text_end`).
    pub text: Range<usize>,
    /// Read-only data, including the initial idmap (`rodata_begin..rodata_end`).
    pub rodata: Range<usize>,
    /// Initialised writable data, at its run address (`data_begin..data_end`).
    pub data: Range<usize>,
    /// Where the image holds the initial values of `.data` (`data_lma`).
    pub data_load_address: usize,
    /// Zero-initialised data (`bss_begin..bss_end`).
    pub bss: Range<usize>,
    /// The stack exception handlers run on (`exception_stack_begin..exception_stack_end`).
    pub exception_stack: Range<usize>,
    /// The stack `main` runs on (`boot_stack_begin..boot_stack_end`).
    pub boot_stack: Range<usize>,
    /// End of the raw image: the last byte the VMM must load, plus one (`bin_end`).
    pub image_end: usize,
}

/// One of vmbase's two stacks, each with an unmapped guard page below it (not to be confused with
/// the stack protector's guard value, `entry::stack_guard`).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Stack {
    /// The boot stack, which `main` runs on.
    Boot,
    /// The exception stack, which exception handlers run on.
    Exception,
}

impl Layout {
    /// The layout of the running binary.
    ///
    /// sections.ld's `ASSERT`s guarantee, when the binary is linked, what vmbase relies on: code
    /// and read-only data start on a page (they are mapped with different permissions), each
    /// stack has a guard page below it, `.data` and `.bss` are aligned for entry.S's copy and
    /// zeroing loops, and the FDT region, the image and the writable data do not overlap. Nothing
    /// is re-checked at run time.
    ///
    /// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
    #[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
    pub fn current() -> Self {
        use crate::linker::*;
        /// The address of a linker symbol.
        macro_rules! address {
            ($symbol:ident) => {{
                // Taking an extern static's address needs `unsafe` before Rust 1.82 (Android
                // 15's rustc is 1.78); from 1.82 the block is redundant.
                #[allow(unused_unsafe)]
                // SAFETY: Only the address is taken; nothing is read through it.
                let address = unsafe { core::ptr::addr_of!($symbol) } as usize;
                address
            }};
        }
        Self {
            dtb: far_address(&DTB_BEGIN)..far_address(&DTB_END),
            text: address!(text_begin)..address!(text_end),
            rodata: address!(rodata_begin)..address!(rodata_end),
            data: address!(data_begin)..address!(data_end),
            data_load_address: address!(data_lma),
            bss: address!(bss_begin)..address!(bss_end),
            exception_stack: address!(exception_stack_begin)..address!(exception_stack_end),
            boot_stack: address!(boot_stack_begin)..address!(boot_stack_end),
            image_end: address!(bin_end),
        }
    }

    /// The image as loaded: code, read-only data and the initial values of `.data`.
    pub fn image(&self) -> Range<usize> {
        self.text.start..self.image_end
    }

    /// Writable memory that page tables must map read-write: `.data` and `.bss`.
    pub fn data_and_bss(&self) -> Range<usize> {
        self.data.start..self.bss.end
    }

    /// The unmapped page below each stack.
    pub fn guard_page(&self, stack: Stack) -> Range<usize> {
        let bottom = match stack {
            Stack::Boot => self.boot_stack.start,
            Stack::Exception => self.exception_stack.start,
        };
        bottom.saturating_sub(PAGE_SIZE)..bottom
    }

    /// The stack that overflowed, if `address` (a fault address) is in its guard page.
    pub fn overflowed_stack(&self, address: usize) -> Option<Stack> {
        [Stack::Boot, Stack::Exception]
            .into_iter()
            .find(|&stack| self.guard_page(stack).contains(&address))
    }
}

/// A linker symbol's address, held as data: a 64-bit absolute relocation reaches any address,
/// where code's PC-relative `ADRP` reaches only 4 GiB either way of the image. The FDT region
/// may lie farther (vmbase_linuxboot's is a window over up to 512 GiB of RAM).
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
struct FarSymbol(*const u8);

// SAFETY: Only the address is read; nothing is ever read through it.
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
unsafe impl Sync for FarSymbol {}

#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
// Unsafe only before Rust 1.82, as in `address!`.
#[allow(unused_unsafe)]
// SAFETY: Only the address is taken; nothing is read through it.
static DTB_BEGIN: FarSymbol = FarSymbol(unsafe { core::ptr::addr_of!(crate::linker::dtb_begin) });
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
// Unsafe only before Rust 1.82, as in `address!`.
#[allow(unused_unsafe)]
// SAFETY: Only the address is taken; nothing is read through it.
static DTB_END: FarSymbol = FarSymbol(unsafe { core::ptr::addr_of!(crate::linker::dtb_end) });

/// The address `symbol` holds. A volatile load: folded into the code, it would be `ADRP` again.
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
fn far_address(symbol: &'static FarSymbol) -> usize {
    // SAFETY: `symbol` is a valid, aligned static that nothing writes.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(symbol.0)) as usize }
}

#[cfg(test)]
impl Layout {
    /// The unit tests' fixture: what sections.ld produces for the example's image.ld.
    pub(crate) fn example() -> Self {
        Self {
            dtb: 0x8000_0000..0x8020_0000,
            text: 0x8020_0000..0x8020_5000,
            rodata: 0x8020_6000..0x8020_8000,
            data: 0x8040_0000..0x8040_0020,
            data_load_address: 0x8020_8000,
            bss: 0x8040_0020..0x8042_0000,
            exception_stack: 0x8042_1000..0x8042_5000,
            boot_stack: 0x8042_6000..0x8044_e000,
            image_end: 0x8020_8020,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn image_and_writable_ranges() {
        assert_eq!(Layout::example().image(), 0x8020_0000..0x8020_8020);
        assert_eq!(Layout::example().data_and_bss(), 0x8040_0000..0x8042_0000);
    }

    #[test]
    fn guard_pages_sit_below_the_stacks() {
        let layout = Layout::example();
        assert_eq!(layout.guard_page(Stack::Boot), 0x8042_5000..0x8042_6000);
        assert_eq!(layout.overflowed_stack(0x8042_5ff8), Some(Stack::Boot));
        assert_eq!(layout.overflowed_stack(0x8042_0000), Some(Stack::Exception));
        assert_eq!(layout.overflowed_stack(0x8042_6000), None);
        assert_eq!(layout.overflowed_stack(0x8042_1000), None);
    }

    /// The `#define NAME VALUE` lines of an assembler header whose value is a hexadecimal literal.
    pub(crate) fn defines(header: &str) -> std::collections::HashMap<&str, u64> {
        header
            .lines()
            .filter_map(|line| {
                let mut words = line.strip_prefix("#define ")?.split_whitespace();
                let name = words.next()?;
                let value = words.next()?;
                let value = u64::from_str_radix(value.strip_prefix("0x")?, 16).ok()?;
                Some((name, value))
            })
            .collect()
    }

    #[test]
    fn assembler_header_agrees_with_the_rust_constants() {
        let header = defines(include_str!("../../include/vmbase/crosvm.h"));
        let expected: [(&str, u64); 12] = [
            ("CROSVM_MMIO_START", crosvm::MMIO_START as u64),
            ("CROSVM_MMIO_END", crosvm::MMIO_END as u64),
            ("CROSVM_MEM_START", crosvm::MEM_START as u64),
            ("CROSVM_FDT_START", crosvm::FDT_START as u64),
            ("CROSVM_FDT_MAX_SIZE", crosvm::FDT_MAX_SIZE as u64),
            ("CROSVM_BOOTLOADER_START", crosvm::BOOTLOADER_START as u64),
            ("CROSVM_FIRMWARE_START", crosvm::FIRMWARE_START as u64),
            ("CROSVM_FIRMWARE_MAX_SIZE", crosvm::FIRMWARE_MAX_SIZE as u64),
            ("CROSVM_UART_BASE", crosvm::UART_BASE as u64),
            ("PSCI_SYSTEM_OFF", smccc::psci::PSCI_SYSTEM_OFF.into()),
            ("PSCI_SYSTEM_RESET", smccc::psci::PSCI_SYSTEM_RESET.into()),
            ("FDT_MAGIC", crate::fdt::FDT_MAGIC.into()),
        ];
        assert_eq!(header, expected.into());
    }
}
