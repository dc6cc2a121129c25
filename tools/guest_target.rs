// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

// Shared by the build scripts of this repository's guests (`include!`d; the template's build
// script stands alone, as it is copied out of the repository).

/// Stops the build script of a guest built for the host (`cargo build --workspace`), which would
/// only fail to compile, with a message that says how to build it.
fn require_guest_target() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("aarch64") {
        eprintln!(
            "{} runs in a VM: build it with `--target aarch64-unknown-none` (`make guests`). \
             On the host, `cargo build` and `cargo test` cover the host crates; `make test` runs \
             everything.",
            std::env::var("CARGO_PKG_NAME").unwrap_or_default()
        );
        std::process::exit(1);
    }
}
