// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links the double with its own linker script when it is built for the VM. On the host only its
//! unit tests build (`cargo test -p pkvm_double`), so there is nothing to link.

fn main() {
    println!("cargo:rerun-if-changed=double.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let manifest_dir =
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{manifest_dir}/double.ld");
    }
}
