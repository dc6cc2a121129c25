// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links the baseline with aarch64-rt's image.ld and its own memory.ld.

fn main() {
    println!("cargo:rerun-if-changed=memory.ld");
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
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-T{manifest_dir}/memory.ld");
    println!("cargo:rustc-link-arg-bins=-Timage.ld");
}
