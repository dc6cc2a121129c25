// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! What the first bytes of an image say: an ELF file (not bootable), a vmbase entry, an arm64
//! Linux `Image` (whose header Linux's `Documentation/arch/arm64/booting.rst` defines), or
//! something else; and how much RAM the image needs.

use crate::layout::IMAGE_ADDRESS;
use vmbase::linux::{ImageError, RawImageHeader};

/// How many bytes of an image [`inspect`] looks at: the start of vmbase's entry code up to its
/// literal pool, and the arm64 `Image` header.
pub(crate) const INSPECTED_BYTES: usize = 4096;

/// The ELF magic number.
const ELF_MAGIC: &[u8] = b"\x7fELF";

/// Why `ImageHeader::check` refused a kernel, in the words of a refusal to boot it.
pub(crate) fn header_refusal(error: ImageError) -> String {
    match error {
        ImageError::Truncated(_) => "it is shorter than the 64-byte arm64 Image header".to_owned(),
        ImageError::BadMagic(_) => {
            "it lacks the arm64 Image magic \"ARM\\x64\" at offset 0x38".to_owned()
        }
        ImageError::BigEndian => "it is a big-endian kernel".to_owned(),
        other => other.to_string(),
    }
}

/// vmbase's entry installs its early vector table before anything else: `msr vbar_el1, Xt`
/// (the register in bits 4:0) then `isb`, within its first few instructions.
const MSR_VBAR_EL1: u32 = 0xd518_c000;
const ISB: u32 = 0xd503_3fdf;
const VECTOR_TABLE_SETUP_WINDOW: usize = 8;

/// What kind of image the first bytes show.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ImageKind {
    /// An ELF file: it must be turned into a raw image first.
    Elf,
    /// A vmbase binary; `ram_end` is the highest address its entry code computes (the end of
    /// its boot stack, at the end of `writable_data`), if that lies beyond the image itself, and
    /// `linked_at` the address it was linked to run at (its entry code's first literal).
    Vmbase {
        ram_end: Option<u64>,
        linked_at: Option<u64>,
    },
    /// An arm64 Linux `Image`, `image_size` bytes once loaded (0 when the header does not say).
    Arm64Image { image_size: u64 },
    /// Anything else: it may be a raw image of some other kind, or a mistake.
    Unknown,
}

/// Classifies an image from its first bytes (up to [`INSPECTED_BYTES`]).
pub(crate) fn inspect(start: &[u8]) -> ImageKind {
    if start.starts_with(ELF_MAGIC) {
        return ImageKind::Elf;
    }
    if let Ok(header) = RawImageHeader::read(start) {
        return ImageKind::Arm64Image {
            image_size: header.image_size,
        };
    }
    let words: Vec<u32> = start
        .chunks_exact(4)
        .map(|word| u32::from_le_bytes(word.try_into().unwrap_or_default()))
        .collect();
    let installs_vectors = words
        .windows(2)
        .take(VECTOR_TABLE_SETUP_WINDOW)
        .any(|pair| pair[0] & !0x1f == MSR_VBAR_EL1 && pair[1] == ISB);
    if installs_vectors {
        let (ram_end, first_literal) = scan_entry_code(&words);
        return ImageKind::Vmbase {
            ram_end,
            linked_at: first_literal.and_then(|index| read_u64(start, 4 * index)),
        };
    }
    ImageKind::Unknown
}

/// The end of RAM (an address) that an image of `size` bytes and kind `kind` needs.
pub(crate) fn ram_end_needed(kind: &ImageKind, size: u64) -> u64 {
    let loaded = IMAGE_ADDRESS + size;
    match *kind {
        ImageKind::Vmbase { ram_end, .. } => ram_end.unwrap_or(0).max(loaded),
        ImageKind::Arm64Image { image_size } => (IMAGE_ADDRESS + image_size).max(loaded),
        ImageKind::Elf | ImageKind::Unknown => loaded,
    }
}

/// The little-endian `u64` at `offset`, if `bytes` reach that far.
fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(offset..offset.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Scans the entry code from the first instruction up to the first literal that an `ldr`
/// (literal) loads, the code before the literal pool, for the highest address it forms with
/// `adr` or `adrp` (+ `add`), and for the word index of the first 64-bit literal it loads.
/// vmbase's entry forms the addresses of `.data`, `.bss` and both stacks this way (the boot
/// stack ends `writable_data`), and its first literal is its own link address (`ldr x, =entry`,
/// the check that it runs where it was linked).
fn scan_entry_code(words: &[u32]) -> (Option<u64>, Option<usize>) {
    let mut end_of_code = words.len();
    let mut page_of = [None; 32];
    let mut highest = None;
    let mut first_literal = None;
    let mut index = 0;
    while index < end_of_code {
        let word = words[index];
        let pc = IMAGE_ADDRESS + 4 * index as u64;
        let rd = (word & 0x1f) as usize;
        let mut formed = None;
        if word & 0x9f00_0000 == 0x1000_0000 {
            // ADR Xd, label: PC + a signed 21-bit offset.
            formed = Some(pc.wrapping_add_signed(adr_immediate(word)));
            page_of[rd] = None;
        } else if word & 0x9f00_0000 == 0x9000_0000 {
            // ADRP Xd, label: the 4 KiB page at PC's page + a signed 21-bit page offset.
            let page = (pc & !0xfff).wrapping_add_signed(adr_immediate(word) << 12);
            page_of[rd] = Some(page);
            formed = Some(page);
        } else if word & 0xffc0_0000 == 0x9100_0000 {
            // ADD Xd, Xn, #imm12 (no shift): completes an ADRP into Xn.
            let rn = ((word >> 5) & 0x1f) as usize;
            formed = page_of[rn].map(|page| page + u64::from((word >> 10) & 0xfff));
            page_of[rd] = None;
        } else if word & 0xbf00_0000 == 0x1800_0000 {
            // LDR Xt/Wt, literal: the literal pool starts no later than this literal.
            let offset = i64::from(((word >> 5) & 0x7_ffff) as i32) << 45 >> 43;
            let literal = (4 * index as i64 + offset) / 4;
            if literal > index as i64 {
                end_of_code = end_of_code.min(literal as usize);
                // Bit 30: a 64-bit (X register) load.
                if word & 0x4000_0000 != 0 && first_literal.is_none() {
                    first_literal = Some(literal as usize);
                }
            }
        }
        if let Some(address) = formed {
            highest = highest.max(Some(address));
        }
        index += 1;
    }
    (highest, first_literal)
}

/// The signed 21-bit immediate of ADR/ADRP (immhi at bits 23:5, immlo at bits 30:29).
fn adr_immediate(word: u32) -> i64 {
    let immediate = ((word >> 5) & 0x7_ffff) << 2 | ((word >> 29) & 0x3);
    i64::from((immediate << 11) as i32 >> 11)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vmbase::linux::ImageHeader;

    fn words(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|word| word.to_le_bytes()).collect()
    }

    /// An arm64 `Image` header with these fields, and nothing after it.
    pub(crate) fn header_bytes(text_offset: u64, image_size: u64, flags: u64) -> Vec<u8> {
        RawImageHeader::new(text_offset, image_size, flags)
            .to_bytes()
            .to_vec()
    }

    #[test]
    fn header_refusals_say_what_is_wrong() {
        let refusal = |bytes: &[u8]| header_refusal(ImageHeader::check(bytes, 64).unwrap_err());
        assert!(refusal(&[0; 63]).contains("shorter"));
        assert!(refusal(&[0; 64]).contains("magic"));
        assert!(refusal(&header_bytes(0, 0x1000, 1)).contains("big-endian"));
        assert!(refusal(&header_bytes(0x8_0000, 0, 0)).contains("older than 3.17"));
    }

    #[test]
    fn elf_and_arm64_image() {
        assert_eq!(inspect(b"\x7fELF\x02\x01\x01"), ImageKind::Elf);
        let kind = inspect(&header_bytes(0, 0x30_0000, 0));
        assert_eq!(
            kind,
            ImageKind::Arm64Image {
                image_size: 0x30_0000
            }
        );
        assert_eq!(ram_end_needed(&kind, 64), 0x8050_0000);
    }

    #[test]
    fn the_vector_table_setup_must_come_early() {
        let late = words(
            &[0xd503_201f; VECTOR_TABLE_SETUP_WINDOW]
                .iter()
                .copied()
                .chain([MSR_VBAR_EL1 | 1, ISB])
                .collect::<Vec<_>>(),
        );
        assert_eq!(inspect(&late), ImageKind::Unknown);
        let early = words(&[0xd503_201f, MSR_VBAR_EL1 | 1, ISB]);
        assert_eq!(
            inspect(&early),
            ImageKind::Vmbase {
                ram_end: None,
                linked_at: None
            }
        );
    }

    #[test]
    fn text_zeros_and_other_code_are_unknown() {
        assert_eq!(inspect(b"hello, world\n"), ImageKind::Unknown);
        assert_eq!(inspect(&[0; 64]), ImageKind::Unknown);
        assert_eq!(inspect(&[]), ImageKind::Unknown);
        let kind = inspect(&[0xff; 100]);
        assert_eq!(kind, ImageKind::Unknown);
        assert_eq!(ram_end_needed(&kind, 100), 0x8020_0064);
    }

    #[test]
    fn vmbase_entry_and_its_highest_address() {
        // As the linker relaxes it: nop; adr x30, vectors; msr vbar_el1, x30; isb; then
        // adrp x29, 0x8040_1000 + add #0; adrp x30, 0x8044_2000 + add #1024; ldr x29, =lit.
        let image = words(&[
            0xd503_201f,
            0x1005_bffe,
            MSR_VBAR_EL1 | 30,
            ISB,
            0xb000_101d, // adrp x29, 0x80401000 (at 0x8020_0010)
            0x9100_03bd, // add x29, x29, #0
            0xd000_121e, // adrp x30, 0x80442000 (at 0x8020_0018)
            0x9110_03de, // add x30, x30, #1024
            0x5800_005d, // ldr x29, #8 (the literal two words on)
            0xd503_201f,
            // The literal pool (=entry, the link address): data that would decode as a far
            // adrp must be ignored.
            0x8020_0000,
            0x0000_0000,
        ]);
        let kind = inspect(&image);
        assert_eq!(
            kind,
            ImageKind::Vmbase {
                ram_end: Some(0x8044_2400),
                linked_at: Some(0x8020_0000),
            }
        );
        assert_eq!(ram_end_needed(&kind, 48), 0x8044_2400);
    }
}
