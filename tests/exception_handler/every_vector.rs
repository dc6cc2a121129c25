// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A handler for each of the eight vectors builds, and each defines the C-ABI symbol exceptions.S
//! calls.

use vmbase::exceptions::ExceptionFrame;

fn handle(_elr: u64, _spsr: u64, _frame: &mut ExceptionFrame) {}

vmbase::exception_handler!(sync_exception_current, handle);
vmbase::exception_handler!(irq_current, handle);
vmbase::exception_handler!(fiq_current, handle);
vmbase::exception_handler!(serr_current, handle);
vmbase::exception_handler!(sync_lower, handle);
vmbase::exception_handler!(irq_lower, handle);
vmbase::exception_handler!(fiq_lower, handle);
vmbase::exception_handler!(serr_lower, handle);

extern "C" {
    fn sync_exception_current(elr: u64, spsr: u64, frame: &mut ExceptionFrame);
    fn irq_current(elr: u64, spsr: u64, frame: &mut ExceptionFrame);
    fn fiq_current(elr: u64, spsr: u64, frame: &mut ExceptionFrame);
    fn serr_current(elr: u64, spsr: u64, frame: &mut ExceptionFrame);
    fn sync_lower(elr: u64, spsr: u64, frame: &mut ExceptionFrame);
    fn irq_lower(elr: u64, spsr: u64, frame: &mut ExceptionFrame);
    fn fiq_lower(elr: u64, spsr: u64, frame: &mut ExceptionFrame);
    fn serr_lower(elr: u64, spsr: u64, frame: &mut ExceptionFrame);
}

fn main() {
    // Linking fails if any symbol is missing.
    let symbols: [unsafe extern "C" fn(u64, u64, &mut ExceptionFrame); 8] = [
        sync_exception_current,
        irq_current,
        fiq_current,
        serr_current,
        sync_lower,
        irq_lower,
        fiq_lower,
        serr_lower,
    ];
    std::hint::black_box(symbols);
}
