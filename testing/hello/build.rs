// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links vmbase_hello with the example's idmap.S and image.ld.

use std::env;

fn main() {
    let idmap = "../../example/idmap.S";
    println!("cargo:rerun-if-changed={idmap}");
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("aarch64") {
        return;
    }
    let mut build = cc::Build::new();
    if env::var_os("CC_aarch64_unknown_none").is_none() && env::var_os("CC").is_none() {
        build.compiler("clang");
    }
    for object in build.file(idmap).compile_intermediates() {
        println!("cargo:rustc-link-arg-bins={}", object.display());
    }
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{manifest_dir}/../../example/image.ld");
    println!("cargo:rustc-link-arg-bins=-Tsections.ld");
}
