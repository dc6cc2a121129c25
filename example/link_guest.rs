// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

// How Cargo links the guests in this repository (`include!`d by their build scripts), the way
// Soong's cc_binary does: each binary with its own initial page table (an idmap source), then a
// memory layout (an image.ld) and vmbase's sections.ld.

/// Assembles each binary's idmap source with the assembler vmbase's build script chose (its
/// `links` metadata) and passes the object and the linker scripts to the linker. `idmaps` pairs
/// binary names with idmap sources; the paths are relative to the package.
fn link_guests(idmaps: &[(&str, &str)], image_ld: &str) {
    for (_, source) in idmaps {
        println!("cargo:rerun-if-changed={source}");
    }
    println!("cargo:rerun-if-changed={image_ld}");
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
    let assembler =
        std::env::var("DEP_VMBASE_ASSEMBLER").expect("vmbase's build script names its assembler");
    let objects = cc::Build::new()
        .compiler(assembler)
        .files(idmaps.iter().map(|(_, source)| source))
        .compile_intermediates();
    for ((bin, _), object) in idmaps.iter().zip(&objects) {
        println!("cargo:rustc-link-arg-bin={bin}={}", object.display());
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // image.ld (MEMORY) must come before sections.ld (SECTIONS), which refers to its regions.
    println!("cargo:rustc-link-arg-bins=-T{manifest_dir}/{image_ld}");
    println!("cargo:rustc-link-arg-bins=-Tsections.ld");
}
