// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Links each fault guest with its own initial page table: the example's idmap for
//! `vmbase_faults`, and one without writable memory for `vmbase_faults_early`.

fn main() {
    vmbase_guest_build::link_guests(
        &[
            ("vmbase_faults", "../../example/idmap.S"),
            ("vmbase_faults_early", "idmap_no_data.S"),
        ],
        "../../example/image.ld",
    );
}
