// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

// Shared by the build scripts of the test guests (`include!`d): links each binary with its own
// initial page table and with the example's memory layout (example/image.ld, then vmbase's
// sections.ld).

/// Assembles each binary's idmap source with clang (unless `CC` names another assembler) and
/// passes the object and the linker scripts to the linker. `idmaps` pairs binary names with
/// paths relative to the package.
fn link_guests(idmaps: &[(&str, &str)]) {
    for (_, source) in idmaps {
        println!("cargo:rerun-if-changed={source}");
    }
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("aarch64") {
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
    if std::env::var_os("CC_aarch64_unknown_none").is_none() && std::env::var_os("CC").is_none() {
        build.compiler("clang");
    }
    // `#include <vmbase/crosvm.h>`: vmbase's build script says where its headers are.
    let vmbase_include =
        std::env::var("DEP_VMBASE_INCLUDE").expect("vmbase sets DEP_VMBASE_INCLUDE");
    println!("cargo:rerun-if-changed={vmbase_include}");
    build.include(vmbase_include);
    let objects = build
        .files(idmaps.iter().map(|(_, source)| source))
        .compile_intermediates();
    for ((bin, _), object) in idmaps.iter().zip(&objects) {
        println!("cargo:rustc-link-arg-bin={bin}={}", object.display());
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{manifest_dir}/../../example/image.ld");
    println!("cargo:rustc-link-arg-bins=-Tsections.ld");
}
