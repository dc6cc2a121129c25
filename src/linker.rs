// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The symbols sections.ld defines. Only their addresses mean anything: they mark boundaries and
//! most have no object behind them. [`crate::layout`] reads them.

extern "C" {
    pub(crate) static dtb_begin: u8;
    pub(crate) static dtb_end: u8;
    pub(crate) static text_begin: u8;
    pub(crate) static text_end: u8;
    pub(crate) static rodata_begin: u8;
    pub(crate) static rodata_end: u8;
    pub(crate) static data_begin: u8;
    pub(crate) static data_end: u8;
    pub(crate) static data_lma: u8;
    pub(crate) static bss_begin: u8;
    pub(crate) static bss_end: u8;
    pub(crate) static exception_stack_begin: u8;
    pub(crate) static exception_stack_end: u8;
    pub(crate) static boot_stack_begin: u8;
    pub(crate) static boot_stack_end: u8;
    pub(crate) static bin_end: u8;
}
