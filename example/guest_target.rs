// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

// Shared by the guests' build scripts (`include!`d): they build for the VM only.

/// Stops a build of this guest for anything but aarch64 with a message saying how to build it: a
/// guest built for the host (`cargo build --workspace`) would only fail to compile.
fn require_guest_target() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("aarch64") {
        eprintln!(
            "{} runs in a VM: build it with `--target aarch64-unknown-none` (`make guests`). \
             On the host, `cargo build` and `cargo test` cover the host crates; `make test` runs \
             everything.",
            env!("CARGO_PKG_NAME")
        );
        std::process::exit(1);
    }
}
