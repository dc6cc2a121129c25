// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links vmbase_hello with the example's idmap.S and image.ld.

fn main() {
    vmbase_guest_build::link_guests(
        &[("vmbase_hello", "../../example/idmap.S")],
        "../../example/image.ld",
    );
}
