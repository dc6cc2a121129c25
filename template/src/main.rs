// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! my_vm: a starting point for a vmbase binary; it greets, shows its boot registers and powers off.

#![no_main]
#![no_std]

use log::{info, LevelFilter};
use vmbase::{configure_heap, logger, main, power};

// The global allocator's memory (`alloc`'s Box, Vec, ...), ready before `main`.
configure_heap!(64 * 4096);
main!(main);

/// Called by vmbase once the console is ready, with x0-x3 as the VMM set them.
fn main(fdt_address: u64, arg1: u64, arg2: u64, arg3: u64) {
    // Fails only if a logger is already set, which nothing else here does.
    logger::init(LevelFilter::Info).expect("the only logger");
    info!("Hello from my_vm");
    info!("device tree at {fdt_address:#x}; x1={arg1:#x}, x2={arg2:#x}, x3={arg3:#x}");
    // Success; `power::reboot()` reports a failure to the host.
    power::shutdown();
}
