// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Checks on a guest's console lines, the same for every backend that boots it.

/// Asserts that `lines` contains lines starting with each of `expected`, in order.
pub fn assert_in_order(lines: &[String], expected: &[&str]) {
    let mut remaining = lines.iter();
    for want in expected {
        assert!(
            remaining.any(|line| line.starts_with(want)),
            "missing (or out of order) console line {want:?}; console was:\n{}",
            lines.join("\n")
        );
    }
}
