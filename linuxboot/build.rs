// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links the firmware the way Soong's `vmbase_linuxboot` cc_binary does: with its own idmap.S and
//! image.ld, and vmbase's sections.ld (which vmbase's build script puts on the search path).

use std::env;

fn main() {
    for file in ["idmap.S", "image.ld"] {
        println!("cargo:rerun-if-changed={file}");
    }
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("aarch64") {
        // A guest built for the host (`cargo build --workspace`) would only fail to compile.
        eprintln!(
            "{} runs in a VM: build it with `--target aarch64-unknown-none` (`make guests`). \
             On the host, `cargo build` and `cargo test` cover the host crates; `make test` runs \
             everything.",
            env!("CARGO_PKG_NAME")
        );
        std::process::exit(1);
    }
    let mut build = cc::Build::new();
    if env::var_os("CC_aarch64_unknown_none").is_none() && env::var_os("CC").is_none() {
        build.compiler("clang");
    }
    if env::var_os("AR_aarch64_unknown_none").is_none() && env::var_os("AR").is_none() {
        build.archiver("llvm-ar");
    }
    build.file("idmap.S").cargo_metadata(false).compile("idmap");
    let out_dir = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rustc-link-search=native={out_dir}");
    println!("cargo:rustc-link-lib=static:+whole-archive=idmap");

    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // image.ld (MEMORY) must come before sections.ld (SECTIONS), which refers to its regions.
    println!("cargo:rustc-link-arg-bins=-T{manifest_dir}/image.ld");
    println!("cargo:rustc-link-arg-bins=-Tsections.ld");
}
