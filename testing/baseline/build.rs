// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links the baseline with aarch64-rt's image.ld and its own memory.ld.

fn main() {
    println!("cargo:rerun-if-changed=memory.ld");
    vmbase_guest_build::require_guest_target();
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{manifest_dir}/memory.ld");
    println!("cargo:rustc-link-arg-bins=-Timage.ld");
}
