// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Architecture-specific primitives: the only place with inline assembly for system registers,
//! barriers, TLB and cache maintenance.

#[cfg(any(doc, target_arch = "aarch64"))]
pub mod aarch64;
