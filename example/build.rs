// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links the example the way Soong's `vmbase_example` cc_binary does: with its own idmap.S and
//! image.ld, and vmbase's sections.ld (which vmbase's build script puts on the search path).

use std::env;

include!("../tools/guest_target.rs");
include!("../tools/guest_assembler.rs");

fn main() {
    for file in ["idmap.S", "image.ld"] {
        println!("cargo:rerun-if-changed={file}");
    }
    require_guest_target();
    let mut build = guest_assembler();
    build.file("idmap.S").cargo_metadata(false).compile("idmap");
    let out_dir = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rustc-link-search=native={out_dir}");
    println!("cargo:rustc-link-lib=static:+whole-archive=idmap");

    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // image.ld (MEMORY) must come before sections.ld (SECTIONS), which refers to its regions.
    println!("cargo:rustc-link-arg-bins=-T{manifest_dir}/image.ld");
    println!("cargo:rustc-link-arg-bins=-Tsections.ld");
}
