// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The firmware's layout checks, run on the host: the firmware's own module, built as a host test
//! by the vmclient package (the firmware itself builds for the VM only).

#[path = "../src/checks.rs"]
mod checks;
