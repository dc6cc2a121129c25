// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Assembles entry.S, exceptions.S, exceptions_panic.S and payload.S into libvmbase_entry.a
//! (what Soong's `libvmbase_entry` is) and hands sections.ld, the assembler headers (`include/`)
//! and the chosen assembler and archiver to the binaries that depend on vmbase. On a host (any
//! target with an OS) it does nothing.

use std::env;
use std::path::PathBuf;

const ASSEMBLY: [&str; 4] = ["entry.S", "exceptions.S", "exceptions_panic.S", "payload.S"];

fn main() {
    // `core::error::Error` is stable from Rust 1.81; Android 15's rustc (1.78) lacks it, and
    // Soong runs no build script, so there the cfg is off and the error types implement only
    // `Display` and `Debug`.
    println!("cargo:rustc-check-cfg=cfg(has_core_error)");
    let mut probe = autocfg::new();
    probe.set_edition(Some("2021".into()));
    if probe.probe_path("core::error::Error") {
        println!("cargo:rustc-cfg=has_core_error");
    }
    for file in ASSEMBLY.iter().chain(&["sections.ld", "include"]) {
        println!("cargo:rerun-if-changed={file}");
    }
    // Host builds (unit tests, and the launcher on arm64 Linux, which depends on vmbase) have
    // no entry point to assemble: the runtime is for aarch64 outside a Linux host only, as in
    // src/lib.rs.
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("aarch64")
        || env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
    {
        return;
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    let mut build = cc::Build::new();
    // The .S files are written for clang's integrated assembler, whatever CC says.
    if env::var_os("CC_aarch64_unknown_none").is_none() && env::var_os("CC").is_none() {
        build.compiler("clang");
    }
    if env::var_os("AR_aarch64_unknown_none").is_none() && env::var_os("AR").is_none() {
        build.archiver("llvm-ar");
    }
    // Dependent binaries assemble their idmap.S with the same tools: `links` metadata, which
    // their build scripts read as DEP_VMBASE_ASSEMBLER and DEP_VMBASE_ARCHIVER.
    println!("cargo:assembler={}", build.get_compiler().path().display());
    let archiver = build.get_archiver();
    println!(
        "cargo:archiver={}",
        archiver.get_program().to_string_lossy()
    );
    let include =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("include");
    build
        .include(&include)
        .files(ASSEMBLY)
        .cargo_metadata(false)
        .compile("vmbase_entry");
    println!("cargo:rustc-link-search=native={}", out_dir.display());
    // Whole archive: the entry point and vectors are reached from the linker script and from
    // each other, not from Rust, so nothing would pull them in otherwise.
    println!("cargo:rustc-link-lib=static:+whole-archive=vmbase_entry");

    // Dependent build scripts find vmbase's assembler headers in DEP_VMBASE_INCLUDE (`links`).
    println!("cargo:include={}", include.display());

    // Dependent binaries link with `-Tsections.ld`, found through the search path above.
    std::fs::copy("sections.ld", out_dir.join("sections.ld")).expect("copy sections.ld to OUT_DIR");
}
