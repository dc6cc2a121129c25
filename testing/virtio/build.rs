// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links the virtio test guest with the example's initial page table and memory layout.

fn main() {
    vmbase_guest_build::link_guests(
        &[("vmbase_virtio", "../../example/idmap.S")],
        "../../example/image.ld",
    );
}
