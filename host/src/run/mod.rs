// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The last stage: QEMU started with the finished command line and supervised (its QMP monitor,
//! the guest's outputs, why the VM ended).

pub(crate) mod death_reason;
pub(crate) mod instance;
mod monitor;
pub(crate) mod output;
mod qmp;
