// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links vmbase_hello with the example's idmap.S and image.ld.

include!("../../example/link_guest.rs");

fn main() {
    link_guests(
        &[("vmbase_hello", "../../example/idmap.S")],
        "../../example/image.ld",
    );
}
