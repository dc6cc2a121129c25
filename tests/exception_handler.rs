// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! `exception_handler!` accepts a handler of the right signature for a vector exceptions.S calls,
//! and refuses to build anything else, with a message that says what is wrong.

#[test]
fn exception_handlers_are_checked_at_build_time() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/exception_handler/every_vector.rs");
    cases.compile_fail("tests/exception_handler/wrong_signature.rs");
    cases.compile_fail("tests/exception_handler/unknown_vector.rs");
}
