// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! vmbase: what a `no_std` Rust binary needs to run bare-metal in an aarch64 VM under crosvm or
//! QEMU: entry point, exception vectors, console, heap, page tables and power control.
//!
//! A whole binary (with the `idmap.S`, `image.ld` and build script that README.md describes):
//!
//! ```no_run
//! #![no_main]
//! #![no_std]
//! # extern crate std; // a doctest is built for the host, which has no panic handler of vmbase's
//! use vmbase::{configure_heap, main, println};
//!
//! configure_heap!(64 * 4096); // `alloc` works from the start of `main`
//! main!(main);
//!
//! fn main(fdt_address: u64, _x1: u64, _x2: u64, _x3: u64) {
//!     println!("Hello world; the device tree is at {fdt_address:#x}");
//!     // Returning shuts the VM down; `vmbase::power::reboot()` reports a failure instead.
//! }
//! ```
//!
//! The API is built for aarch64; host builds (for unit tests, and for the `vm` launcher, which
//! uses [`layout::crosvm`] and [`linux`]) leave out what only runs in the VM, and say so in its
//! documentation. The runtime (entry point, panic handler, global allocator, exception
//! handlers) is built for aarch64 except on Linux hosts: for `aarch64-unknown-none` under
//! Cargo and for Soong's `android_arm64` `no_stdlibs` builds, but not into `vm` for arm64
//! Linux (`aarch64-unknown-linux-musl`), whose own standard library has all of these.

#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod arch;
pub mod console;
pub mod counter;
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
pub mod entry;
pub mod exceptions;
pub mod fdt;
pub mod heap;
pub mod hyp;
pub mod layout;
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
mod linker;
pub mod linux;
pub mod logger;
pub mod memory;
pub mod mmio;
pub mod paging;
#[cfg(any(doc, all(target_arch = "aarch64", not(target_os = "linux"), not(test))))]
pub mod payload;
pub mod pci;
pub mod power;
pub mod rand;
pub mod uart;
pub mod virtio;

/// Defines the function vmbase calls once the console and the heap are ready, with the four
/// registers the VMM passed (`x0` is the FDT address). When it returns, the VM shuts down.
///
/// ```no_run
/// #![no_main]
/// vmbase::configure_heap!(64 * 4096);
/// vmbase::main!(main);
///
/// fn main(fdt_address: u64, _x1: u64, _x2: u64, _x3: u64) {
///     vmbase::println!("Hello world; the device tree is at {fdt_address:#x}");
/// }
/// ```
#[macro_export]
macro_rules! main {
    ($name:path) => {
        /// Called by vmbase's rust_entry.
        #[export_name = "main"]
        pub fn __vmbase_main(arg0: u64, arg1: u64, arg2: u64, arg3: u64) {
            // Check the signature of the given function.
            const MAIN: fn(u64, u64, u64, u64) = $name;
            MAIN(arg0, arg1, arg2, arg3)
        }
    };
}

#[cfg(test)]
mod tests {
    /// Builds only if `E` is an error in the sense of `core::error::Error` (so also `Display`).
    #[cfg(has_core_error)]
    fn is_an_error<E: core::error::Error>() {}

    #[test]
    #[cfg(has_core_error)]
    fn every_public_error_type_implements_error() {
        is_an_error::<crate::console::ConsoleError>();
        is_an_error::<crate::fdt::FdtError>();
        is_an_error::<crate::hyp::Error>();
        is_an_error::<crate::linux::ImageError>();
        is_an_error::<crate::memory::MemoryTrackerError>();
        is_an_error::<crate::pci::PciSetupError>();
        is_an_error::<crate::pci::TransportError>();
        is_an_error::<crate::rand::Error>();
        is_an_error::<crate::rand::TrngError>();
        is_an_error::<crate::virtio::DeviceError>();
        is_an_error::<crate::virtio::DmaPoolError>();
    }
}
