// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

// How Cargo links the guests in this repository (`include!`d by their build scripts), the way
// Soong's cc_binary does: each binary with its own initial page table (an idmap source), then a
// memory layout (an image.ld) and vmbase's sections.ld.

include!("guest_target.rs");

/// Assembles each binary's idmap source with the assembler vmbase's build script chose and
/// vmbase's assembler headers (its `links` metadata), and passes the object and the linker scripts to the linker. `idmaps` pairs
/// binary names with idmap sources; the paths are relative to the package.
fn link_guests(idmaps: &[(&str, &str)], image_ld: &str) {
    for (_, source) in idmaps {
        println!("cargo:rerun-if-changed={source}");
    }
    println!("cargo:rerun-if-changed={image_ld}");
    require_guest_target();
    let vmbase = |name| std::env::var(name).expect("vmbase's build script sets DEP_VMBASE_*");
    let vmbase_include = vmbase("DEP_VMBASE_INCLUDE");
    println!("cargo:rerun-if-changed={vmbase_include}");
    let objects = cc::Build::new()
        .compiler(vmbase("DEP_VMBASE_ASSEMBLER"))
        .include(vmbase_include)
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
