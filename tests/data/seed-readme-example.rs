// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The seed README's example, exactly as it gives it (no `configure_heap!`): `make test` builds
//! it as a crate of its own, outside the repository, and boots it (tools/test-template.sh).

#![no_main]
#![no_std]

use vmbase::{main, println};

main!(main);

pub fn main(arg0: u64, arg1: u64, arg2: u64, arg3: u64) {
    println!("Hello world");
}
