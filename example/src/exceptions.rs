// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The example's exception handlers: the eight C-ABI functions exceptions.S calls.
//!
//! vmbase has defaults for all of them; defining them shows the contract. Each one reports the
//! exception first (before anything else could fault and overwrite ESR_EL1 and FAR_EL1), then
//! names itself with a fixed line, then ends the VM as a failure.

use vmbase::console::emergency_write_str;
use vmbase::exceptions::{report, Vector};
use vmbase::power::reboot;

/// Defines a handler that reports the exception it was given and reboots.
macro_rules! report_and_reboot {
    ($name:ident, $vector:expr) => {
        #[no_mangle]
        extern "C" fn $name(elr: u64, spsr: u64) {
            report($vector, elr, spsr);
            emergency_write_str(concat!(stringify!($name), "\n"));
            reboot();
        }
    };
}

report_and_reboot!(sync_exception_current, Vector::SyncCurrent);
report_and_reboot!(irq_current, Vector::IrqCurrent);
report_and_reboot!(fiq_current, Vector::FiqCurrent);
report_and_reboot!(serr_current, Vector::SErrorCurrent);
report_and_reboot!(sync_lower, Vector::SyncLower);
report_and_reboot!(irq_lower, Vector::IrqLower);
report_and_reboot!(fiq_lower, Vector::FiqLower);
report_and_reboot!(serr_lower, Vector::SErrorLower);
