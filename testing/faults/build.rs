// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links each fault guest with its own initial page table: the example's idmap for
//! `vmbase_faults`, and one without writable memory for `vmbase_faults_early`.

use std::env;

fn main() {
    let idmaps = [
        ("vmbase_faults", "../../example/idmap.S"),
        ("vmbase_faults_early", "idmap_no_data.S"),
    ];
    for (_, source) in idmaps {
        println!("cargo:rerun-if-changed={source}");
    }
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("aarch64") {
        return;
    }
    let mut build = cc::Build::new();
    if env::var_os("CC_aarch64_unknown_none").is_none() && env::var_os("CC").is_none() {
        build.compiler("clang");
    }
    let objects = build
        .files(idmaps.map(|(_, source)| source))
        .compile_intermediates();
    for ((bin, _), object) in idmaps.iter().zip(&objects) {
        println!("cargo:rustc-link-arg-bin={bin}={}", object.display());
    }
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{manifest_dir}/../../example/image.ld");
    println!("cargo:rustc-link-arg-bins=-Tsections.ld");
}
