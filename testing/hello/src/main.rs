// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! vmbase_hello: the smallest useful vmbase binary, for `make bench`. It prints one line and
//! returns (vmbase then powers off). Its .bss and .data are padded to the baseline's sizes
//! (testing/baseline), so that both entry paths do the same work.

#![no_main]
#![no_std]

use core::hint::black_box;
use vmbase::{configure_heap, counter, main, println};

/// The heap every vmbase binary has; it is part of the baseline's 256 KiB of .bss.
const HEAP_SIZE: usize = 4 * 1024;

/// Padding, shared with the baseline: with the heap, 256 KiB of .bss, and 4 KiB of .data.
static mut BSS_PADDING: [u8; 256 * 1024 - HEAP_SIZE] = [0; 256 * 1024 - HEAP_SIZE];
static mut DATA_PADDING: [u8; 4096] = [1; 4096];

configure_heap!(HEAP_SIZE);
main!(main);

/// Prints the counter at `main`, then returns.
pub fn main(_: u64, _: u64, _: u64, _: u64) {
    // Keep the padding: the linker would drop statics nothing refers to.
    black_box((&raw const BSS_PADDING, &raw const DATA_PADDING));
    println!(
        "Hello world: reached Rust after {} ticks, main after {} ticks",
        counter::ticks_at_rust_entry(),
        counter::ticks_at_main()
    );
}
