// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

// Shared by the build scripts of this repository's guests that assemble an idmap (`include!`d;
// the template's build script stands alone, as it is copied out of the repository).

/// A `cc::Build` for a guest's `.S` files: clang's integrated assembler and llvm-ar (unless `CC`
/// or `AR` name others), and vmbase's headers (`#include <vmbase/crosvm.h>`).
fn guest_assembler() -> cc::Build {
    let mut build = cc::Build::new();
    if std::env::var_os("CC_aarch64_unknown_none").is_none() && std::env::var_os("CC").is_none() {
        build.compiler("clang");
    }
    if std::env::var_os("AR_aarch64_unknown_none").is_none() && std::env::var_os("AR").is_none() {
        build.archiver("llvm-ar");
    }
    let vmbase_include =
        std::env::var("DEP_VMBASE_INCLUDE").expect("vmbase sets DEP_VMBASE_INCLUDE");
    println!("cargo:rerun-if-changed={vmbase_include}");
    build.include(vmbase_include);
    build
}
