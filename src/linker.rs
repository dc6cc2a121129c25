// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The symbols sections.ld defines, read into a [`Layout`].

use crate::layout::Layout;

extern "C" {
    static dtb_begin: u8;
    static dtb_end: u8;
    static text_begin: u8;
    static text_end: u8;
    static rodata_begin: u8;
    static rodata_end: u8;
    static data_begin: u8;
    static data_end: u8;
    static data_lma: u8;
    static bss_begin: u8;
    static bss_end: u8;
    static exception_stack_begin: u8;
    static exception_stack_end: u8;
    static boot_stack_begin: u8;
    static boot_stack_end: u8;
    static bin_end: u8;
}

/// The address of a linker symbol. Only the address is used: the symbols mark boundaries and
/// most of them have no object behind them.
macro_rules! address {
    ($symbol:ident) => {
        (&raw const $symbol) as usize
    };
}

pub(crate) fn layout() -> Layout {
    Layout {
        dtb: address!(dtb_begin)..address!(dtb_end),
        text: address!(text_begin)..address!(text_end),
        rodata: address!(rodata_begin)..address!(rodata_end),
        data: address!(data_begin)..address!(data_end),
        data_load_address: address!(data_lma),
        bss: address!(bss_begin)..address!(bss_end),
        exception_stack: address!(exception_stack_begin)..address!(exception_stack_end),
        boot_stack: address!(boot_stack_begin)..address!(boot_stack_end),
        image_end: address!(bin_end),
    }
}
