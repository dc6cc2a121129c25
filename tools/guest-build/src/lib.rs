// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! What the build scripts of this repository's guests share (a `[build-dependencies]` crate):
//! they build for the VM only, and Cargo links them the way Soong's cc_binary does, each binary
//! with its own initial page table (an idmap source), then a memory layout (an image.ld) and
//! vmbase's sections.ld.
//!
//! The functions read the environment Cargo gives the build script that calls them.

use std::env;

/// Stops a build of the calling guest for anything but aarch64 with a message saying how to
/// build it: a guest built for the host (`cargo build --workspace`) would only fail to compile.
pub fn require_guest_target() {
    if !is_guest_arch(env::var("CARGO_CFG_TARGET_ARCH").ok().as_deref()) {
        let package = env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
        eprintln!(
            "{package} runs in a VM: build it with `--target aarch64-unknown-none` (`make guests`). \
             On the host, `cargo build` and `cargo test` cover the host crates; `make test` runs \
             everything."
        );
        std::process::exit(1);
    }
}

/// Whether a build for the target architecture `arch` (Cargo's `CARGO_CFG_TARGET_ARCH`) is a
/// build for the VM.
fn is_guest_arch(arch: Option<&str>) -> bool {
    arch == Some("aarch64")
}

/// Links the calling package's binaries for the VM, after [`require_guest_target`]: assembles
/// each binary's idmap source with the assembler vmbase's build script chose and vmbase's
/// assembler headers (its `links` metadata), and passes the object, `image_ld` and vmbase's
/// sections.ld to the linker. `idmaps` pairs binary names with idmap sources; all paths are
/// relative to the package.
pub fn link_guests(idmaps: &[(&str, &str)], image_ld: &str) {
    for (_, source) in idmaps {
        println!("cargo:rerun-if-changed={source}");
    }
    println!("cargo:rerun-if-changed={image_ld}");
    require_guest_target();
    let vmbase = |name| env::var(name).expect("vmbase's build script sets DEP_VMBASE_*");
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
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // image.ld (MEMORY) must come before sections.ld (SECTIONS), which refers to its regions.
    println!("cargo:rustc-link-arg-bins=-T{manifest_dir}/{image_ld}");
    println!("cargo:rustc-link-arg-bins=-Tsections.ld");
}

#[cfg(test)]
mod tests {
    use super::is_guest_arch;

    #[test]
    fn only_aarch64_builds_are_for_the_vm() {
        assert!(is_guest_arch(Some("aarch64")));
        assert!(!is_guest_arch(Some("x86_64")));
        assert!(!is_guest_arch(None));
    }
}
