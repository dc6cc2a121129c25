// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A vector exceptions.S does not call (a misspelt `sync_exception_current`) does not build.

use vmbase::exceptions::ExceptionFrame;

fn handle(_elr: u64, _spsr: u64, _frame: &mut ExceptionFrame) {}

vmbase::exception_handler!(sync_current, handle);

fn main() {}
