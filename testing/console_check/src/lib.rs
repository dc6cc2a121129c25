// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Checks on a guest's console lines, the same for every backend that boots it: the Cargo tests
//! reach it through `vmbase_test_harness`, Soong's `vmbase_example.integration_test` (which has
//! no harness) as `libvmbase_console_check`.

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

#[cfg(test)]
mod tests {
    use super::assert_in_order;

    fn console() -> Vec<String> {
        ["boot", "[INFO] Hello world", "[INFO] Activated.", "done"]
            .map(str::to_owned)
            .to_vec()
    }

    #[test]
    fn accepts_prefixes_in_order_with_lines_between() {
        assert_in_order(&console(), &["[INFO] Hello", "done"]);
    }

    #[test]
    #[should_panic(expected = "missing (or out of order) console line \"boot\"")]
    fn refuses_lines_out_of_order() {
        assert_in_order(&console(), &["[INFO] Hello world", "boot"]);
    }

    #[test]
    #[should_panic(expected = "missing (or out of order) console line \"absent\"")]
    fn refuses_a_missing_line() {
        assert_in_order(&console(), &["absent"]);
    }

    #[test]
    #[should_panic(expected = "console line \"done\"")]
    fn a_line_matches_one_expectation_only() {
        assert_in_order(&console(), &["done", "done"]);
    }
}
