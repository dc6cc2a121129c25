// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A handler that takes the wrong arguments does not build.

fn handle(_elr: u64, _spsr: u64) {}

vmbase::exception_handler!(irq_current, handle);

fn main() {}
