// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

// Shared by the build scripts of the test guests (`include!`d): links each binary with its own
// initial page table and with the example's memory layout (example/image.ld, then vmbase's
// sections.ld).

include!("../tools/guest_target.rs");
include!("../tools/guest_assembler.rs");

/// Assembles each binary's idmap source and passes the object and the linker scripts to the linker. `idmaps` pairs binary names with
/// paths relative to the package.
fn link_guests(idmaps: &[(&str, &str)]) {
    for (_, source) in idmaps {
        println!("cargo:rerun-if-changed={source}");
    }
    require_guest_target();
    let objects = guest_assembler()
        .files(idmaps.iter().map(|(_, source)| source))
        .compile_intermediates();
    for ((bin, _), object) in idmaps.iter().zip(&objects) {
        println!("cargo:rustc-link-arg-bin={bin}={}", object.display());
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{manifest_dir}/../../example/image.ld");
    println!("cargo:rustc-link-arg-bins=-Tsections.ld");
}
