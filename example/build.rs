// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links the example the way Soong's `vmbase_example` cc_binary does: with its own idmap.S and
//! image.ld, and vmbase's sections.ld (which vmbase's build script puts on the search path).

fn main() {
    vmbase_guest_build::link_guests(&[("vmbase_example", "idmap.S")], "image.ld");
}
