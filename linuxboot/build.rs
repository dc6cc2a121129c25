// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links the firmware the way Soong's `vmbase_linuxboot` cc_binary does: with its own idmap.S and
//! image.ld, and vmbase's sections.ld (which vmbase's build script puts on the search path).

fn main() {
    vmbase_guest_build::link_guests(&[("vmbase_linuxboot", "idmap.S")], "image.ld");
}
