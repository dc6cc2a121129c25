// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! vmbase_faults_early: never gets here. Its idmap leaves writable memory unmapped, so the
//! fault in entry.S must reset the VM through the early (panic) vector table.

#![no_main]
#![no_std]

vmbase::configure_heap!(4096);
vmbase::main!(main);

/// Only reached if the early fault did not happen.
pub fn main(_: u64, _: u64, _: u64, _: u64) {
    vmbase::println!("vmbase_faults_early: entry.S did not fault");
}
