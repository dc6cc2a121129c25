// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Assembles idmap.S and links the binary with image.ld, then vmbase's sections.ld.
//!
//! Self-contained on purpose: a copy of this crate depends on vmbase alone. (The guests inside the
//! vmbase repository share these steps through its `vmbase_guest_build` crate instead.)

fn main() {
    println!("cargo:rerun-if-changed=idmap.S");
    println!("cargo:rerun-if-changed=image.ld");
    // Build scripts also run for host builds (`cargo check` on the host), which link nothing.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("aarch64") {
        return;
    }
    // The assembler and archiver vmbase chose for its own .S files (clang and llvm-ar unless
    // CC/AR say otherwise), and where its assembler headers are (`#include <vmbase/crosvm.h>`),
    // handed over as its `links` metadata.
    let vmbase = |name| std::env::var(name).expect("vmbase's build script sets DEP_VMBASE_*");
    let vmbase_include = vmbase("DEP_VMBASE_INCLUDE");
    println!("cargo:rerun-if-changed={vmbase_include}");
    cc::Build::new()
        .compiler(vmbase("DEP_VMBASE_ASSEMBLER"))
        .archiver(vmbase("DEP_VMBASE_ARCHIVER"))
        .include(vmbase_include)
        .file("idmap.S")
        .cargo_metadata(false)
        .compile("idmap");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rustc-link-search=native={out_dir}");
    // Whole archive: only entry.S refers to `idmap`, so nothing else would pull it in.
    println!("cargo:rustc-link-lib=static:+whole-archive=idmap");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // image.ld (MEMORY) comes before sections.ld (SECTIONS), which places code in its regions.
    println!("cargo:rustc-link-arg-bins=-T{manifest_dir}/image.ld");
    println!("cargo:rustc-link-arg-bins=-Tsections.ld");
}
