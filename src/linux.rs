// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The arm64 Linux `Image` header (Documentation/arch/arm64/booting.rst): checking it, and where
//! the kernel must sit to run.

use crate::memory::overlaps;
use core::fmt;
use core::ops::Range;

/// The kernel runs at `text_offset` above a base aligned to this (2 MiB).
pub const KERNEL_BASE_ALIGNMENT: usize = 2 << 20;
/// `text_offset` must be a multiple of this (a page): the entry is then 4-byte aligned, and the
/// kernel is mapped and moved in whole pages.
const TEXT_OFFSET_ALIGNMENT: u64 = 4096;
/// Bytes of the header.
pub const IMAGE_HEADER_SIZE: usize = 64;
/// The header's magic, at offset 0x38.
pub const IMAGE_MAGIC: [u8; 4] = *b"ARM\x64";

/// Flags bit 0: the kernel is big-endian.
pub const FLAG_BIG_ENDIAN: u64 = 1 << 0;
/// Flags bits 2:1: the kernel's page size (0 unspecified, 1 4K, 2 16K, 3 64K).
const FLAG_PAGE_SIZE_SHIFT: u64 = 1;
/// Flags bits 2:1 of a kernel with 4 KiB pages.
pub const FLAG_PAGE_SIZE_4K: u64 = 1 << FLAG_PAGE_SIZE_SHIFT;
/// Flags bit 3: the 2 MiB-aligned base may be anywhere in RAM (else as low as possible).
pub const FLAG_PLACEMENT_ANYWHERE: u64 = 1 << 3;

/// The 64-byte header at the start of an arm64 `Image`, field for field as booting.rst lays it
/// out (linux-loader's `arm64_image_header`). The fields hold the values; in the image each is
/// little-endian, and [`RawImageHeader::read`] and [`RawImageHeader::to_bytes`] convert. It is
/// read from an image's first bytes, and written by tests and tools that make stand-in kernels
/// ([`RawImageHeader::new`], then [`RawImageHeader::to_bytes`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct RawImageHeader {
    /// Executable code, usually a branch over the header (or, in an EFI-bootable kernel, the
    /// `MZ` signature as an instruction).
    pub code0: u32,
    /// Executable code.
    pub code1: u32,
    /// Where the kernel runs above its 2 MiB-aligned base; meaningful only with an `image_size`.
    pub text_offset: u64,
    /// Bytes the kernel uses from its start, `.bss` included; 0 in kernels older than 3.17.
    pub image_size: u64,
    /// `FLAG_*` bits.
    pub flags: u64,
    /// Reserved.
    pub res2: u64,
    /// Reserved.
    pub res3: u64,
    /// Reserved.
    pub res4: u64,
    /// [`IMAGE_MAGIC`].
    pub magic: [u8; 4],
    /// Reserved (the PE header's offset in an EFI-bootable kernel).
    pub res5: u32,
}

const _: () = assert!(core::mem::size_of::<RawImageHeader>() == IMAGE_HEADER_SIZE);

impl RawImageHeader {
    /// A header with these fields and the magic, everything else 0.
    pub fn new(text_offset: u64, image_size: u64, flags: u64) -> Self {
        Self {
            text_offset,
            image_size,
            flags,
            magic: IMAGE_MAGIC,
            ..Self::default()
        }
    }

    /// The header's 64 bytes, as they start an `Image`.
    pub fn to_bytes(&self) -> [u8; IMAGE_HEADER_SIZE] {
        let mut bytes = [0; IMAGE_HEADER_SIZE];
        let mut fields = bytes.chunks_exact_mut(8);
        let mut put = |value: [u8; 8]| fields.next().unwrap().copy_from_slice(&value);
        put(pair(self.code0, self.code1));
        for word in [
            self.text_offset,
            self.image_size,
            self.flags,
            self.res2,
            self.res3,
            self.res4,
        ] {
            put(word.to_le_bytes());
        }
        put(pair(u32::from_le_bytes(self.magic), self.res5));
        bytes
    }

    /// The header at the start of `bytes`, if they are long enough and carry the magic; its
    /// fields are not checked.
    pub fn read(bytes: &[u8]) -> Result<Self, ImageError> {
        let Some(bytes) = bytes.get(..IMAGE_HEADER_SIZE) else {
            return Err(ImageError::Truncated(bytes.len()));
        };
        let word =
            |offset: usize| u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap());
        let half =
            |offset: usize| u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap());
        let header = Self {
            code0: half(0x00),
            code1: half(0x04),
            text_offset: word(0x08),
            image_size: word(0x10),
            flags: word(0x18),
            res2: word(0x20),
            res3: word(0x28),
            res4: word(0x30),
            magic: half(0x38).to_le_bytes(),
            res5: half(0x3c),
        };
        if header.magic != IMAGE_MAGIC {
            return Err(ImageError::BadMagic(u32::from_le_bytes(header.magic)));
        }
        Ok(header)
    }
}

/// Two 32-bit fields as the 8 little-endian bytes they take in the header.
fn pair(low: u32, high: u32) -> [u8; 8] {
    (u64::from(low) | u64::from(high) << 32).to_le_bytes()
}

/// Why an `Image` was refused.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum ImageError {
    /// Fewer bytes than the 64-byte header.
    Truncated(usize),
    /// The magic at 0x38 is not `ARM\x64` (shown as a little-endian `u32`).
    BadMagic(u32),
    /// Flags bit 0: a big-endian kernel, which this little-endian firmware cannot enter.
    BigEndian,
    /// `image_size` is 0: a kernel older than 3.17. booting.rst says its `text_offset` is then
    /// 0x80000 and the memory it needs past its end is effectively unbounded; neither the host
    /// (which puts the initrd and device tree after the kernel) nor a firmware (which moves the
    /// kernel and puts the tree clear of it) can honour that, so both refuse it.
    NoImageSize,
    /// `image_size` is smaller than the image itself.
    ImageSizeTooSmall {
        /// `image_size` from the header.
        image_size: u64,
        /// Bytes of the image.
        file_size: u64,
    },
    /// `text_offset` and `image_size` do not fit in the address space.
    TooLarge,
    /// `text_offset` is not a multiple of 4 KiB: the kernel's entry (its base plus
    /// `text_offset`) would not be 4-byte aligned, or it could not be mapped or moved in whole
    /// pages. Kernels have 0, or 0x80000 before Linux 5.8.
    MisalignedTextOffset(u64),
    /// No 2 MiB-aligned base in RAM leaves room for the kernel without overlapping the ranges
    /// to avoid.
    NoRoom,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Truncated(size) => {
                write!(
                    f,
                    "{size} bytes is shorter than the {IMAGE_HEADER_SIZE}-byte Image header"
                )
            }
            Self::BadMagic(magic) => write!(f, "bad Image magic {magic:#010x}"),
            Self::BigEndian => write!(f, "big-endian kernel"),
            Self::NoImageSize => write!(f, "image_size is 0 (a kernel older than 3.17)"),
            Self::ImageSizeTooSmall {
                image_size,
                file_size,
            } => write!(
                f,
                "image_size {image_size:#x} is smaller than the image ({file_size:#x} bytes)"
            ),
            Self::TooLarge => write!(f, "text_offset + image_size overflow the address space"),
            Self::MisalignedTextOffset(offset) if offset % 4 != 0 => write!(
                f,
                "text_offset {offset:#x} would put the kernel's first instruction at an address \
                 that is not 4-byte aligned"
            ),
            Self::MisalignedTextOffset(offset) => write!(
                f,
                "text_offset {offset:#x} is not a multiple of the 4 KiB page"
            ),
            Self::NoRoom => write!(f, "no room in RAM to place the kernel"),
        }
    }
}

#[cfg(has_core_error)]
impl core::error::Error for ImageError {}

/// A checked `Image` header.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct ImageHeader {
    /// Where the kernel runs above its 2 MiB-aligned base.
    pub text_offset: usize,
    /// Bytes the kernel uses from its start, `.bss` included.
    pub image_size: usize,
    /// The header's flags (bits 4 and up are reserved and ignored).
    pub flags: u64,
}

impl ImageHeader {
    /// Checks the header of `image`, the kernel as loaded (its length is the file's).
    pub fn parse(image: &[u8]) -> Result<Self, ImageError> {
        Self::check(image, image.len() as u64)
    }

    /// Checks the header at the start of `start`, the first bytes of an image of `file_size`
    /// bytes (a host looks at a file's first bytes only).
    pub fn check(start: &[u8], file_size: u64) -> Result<Self, ImageError> {
        let header = RawImageHeader::read(start)?;
        let flags = header.flags;
        if flags & FLAG_BIG_ENDIAN != 0 {
            return Err(ImageError::BigEndian);
        }
        let image_size = header.image_size;
        if image_size == 0 {
            return Err(ImageError::NoImageSize);
        }
        if image_size < file_size {
            return Err(ImageError::ImageSizeTooSmall {
                image_size,
                file_size,
            });
        }
        let text_offset = header.text_offset;
        if text_offset % TEXT_OFFSET_ALIGNMENT != 0 {
            return Err(ImageError::MisalignedTextOffset(text_offset));
        }
        let too_large = |value: u64| usize::try_from(value).map_err(|_| ImageError::TooLarge);
        let (text_offset, image_size) = (too_large(text_offset)?, too_large(image_size)?);
        text_offset
            .checked_add(image_size)
            .and_then(|end| end.checked_add(KERNEL_BASE_ALIGNMENT))
            .ok_or(ImageError::TooLarge)?;
        Ok(Self {
            text_offset,
            image_size,
            flags,
        })
    }

    /// The kernel's page size, if the header says.
    pub fn page_size(&self) -> Option<usize> {
        match (self.flags >> FLAG_PAGE_SIZE_SHIFT) & 0b11 {
            1 => Some(4 << 10),
            2 => Some(16 << 10),
            3 => Some(64 << 10),
            _ => None,
        }
    }

    /// Whether the kernel's base may be anywhere in RAM (flags bit 3); otherwise it should be as
    /// close to the start of RAM as possible, as memory below it is lost to the kernel.
    pub fn placement_anywhere(&self) -> bool {
        self.flags & FLAG_PLACEMENT_ANYWHERE != 0
    }

    /// Whether the kernel can run at `address`: `text_offset` above a 2 MiB-aligned base, with
    /// its `image_size` bytes inside `ram`.
    pub fn can_run_at(&self, address: usize, ram: &Range<usize>) -> bool {
        let Some(base) = address.checked_sub(self.text_offset) else {
            return false;
        };
        let Some(end) = address.checked_add(self.image_size) else {
            return false;
        };
        base % KERNEL_BASE_ALIGNMENT == 0 && ram.start <= address && end <= ram.end
    }

    /// Where to move a kernel that cannot run where it is: the lowest address (booting.rst
    /// wants the base as low as possible) that [`can_run_at`](Self::can_run_at) and whose
    /// `image_size` bytes overlap none of `avoid` (the FDT, initrd, firmware, ...). The kernel's
    /// current place need not be avoided: [`move_kernel`] copies like `memmove`.
    pub fn destination(
        &self,
        ram: &Range<usize>,
        avoid: &[Range<usize>],
    ) -> Result<usize, ImageError> {
        let first_base = ram
            .start
            .saturating_sub(self.text_offset)
            .checked_next_multiple_of(KERNEL_BASE_ALIGNMENT)
            .ok_or(ImageError::NoRoom)?;
        let mut base = first_base;
        loop {
            let start = base
                .checked_add(self.text_offset)
                .ok_or(ImageError::NoRoom)?;
            let end = start
                .checked_add(self.image_size)
                .ok_or(ImageError::NoRoom)?;
            if end > ram.end {
                return Err(ImageError::NoRoom);
            }
            let blocker = avoid
                .iter()
                .filter(|range| overlaps(range, &(start..end)))
                .map(|range| range.end)
                .max();
            match blocker {
                None => return Ok(start),
                // Skip straight past what is in the way.
                Some(blocked_until) => {
                    base = blocked_until
                        .saturating_sub(self.text_offset)
                        .checked_next_multiple_of(KERNEL_BASE_ALIGNMENT)
                        .ok_or(ImageError::NoRoom)?
                        .max(base + KERNEL_BASE_ALIGNMENT);
                }
            }
        }
    }
}

/// Copies the kernel (`size` bytes from `source`) to `destination`, as `memmove` (the two may
/// overlap), then cleans the destination to the point of coherency so the kernel, entered with
/// the MMU and caches off, sees it.
///
/// # Safety
///
/// `source..source + size` must be mapped readable and `destination..destination + size`
/// mapped writable, and nothing else may use the destination.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub unsafe fn move_kernel(source: usize, size: usize, destination: usize) {
    // SAFETY: The caller promises both ranges are mapped with the access they need and that
    // nothing else uses the destination; `copy` allows overlap.
    unsafe { core::ptr::copy(source as *const u8, destination as *mut u8, size) };
    crate::memory::clean_range(&(destination..destination + size));
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const MIB: usize = 1 << 20;
    const RAM: Range<usize> = 0x8000_0000..0x9000_0000;

    /// An image of `file_size` bytes with the given header fields.
    fn image(text_offset: u64, image_size: u64, flags: u64, file_size: usize) -> Vec<u8> {
        let header = RawImageHeader {
            code0: 0x1400_0010, // b +64
            ..RawImageHeader::new(text_offset, image_size, flags)
        };
        let mut image = header.to_bytes().to_vec();
        image.resize(file_size, 0);
        image
    }

    #[test]
    fn the_raw_header_is_laid_out_as_booting_rst_says() {
        use core::mem::offset_of;
        assert_eq!(offset_of!(RawImageHeader, text_offset), 0x08);
        assert_eq!(offset_of!(RawImageHeader, image_size), 0x10);
        assert_eq!(offset_of!(RawImageHeader, flags), 0x18);
        assert_eq!(offset_of!(RawImageHeader, magic), 0x38);
        let bytes = image(0x8_0000, 0x1234_5678, 0b1010, 64);
        assert_eq!(bytes[0x08..0x10], 0x8_0000_u64.to_le_bytes());
        assert_eq!(bytes[0x10..0x18], 0x1234_5678_u64.to_le_bytes());
        assert_eq!(&bytes[0x38..0x3c], b"ARM\x64");
        assert_eq!(bytes[0..4], 0x1400_0010_u32.to_le_bytes());
        let header = RawImageHeader::read(&bytes).unwrap();
        assert_eq!(header.image_size, 0x1234_5678);
        assert_eq!(header.flags, 0b1010);
    }

    #[test]
    fn every_field_survives_writing_and_reading_back() {
        let header = RawImageHeader {
            code0: 0x0102_0304,
            code1: 0x0506_0708,
            text_offset: 0x1111_2222_3333_4444,
            image_size: 0x5555_6666_7777_8888,
            flags: 0x9999_aaaa_bbbb_cccc,
            res2: 2,
            res3: 3,
            res4: 4,
            magic: IMAGE_MAGIC,
            res5: 0xdddd_eeee,
        };
        let bytes = header.to_bytes();
        assert_eq!(bytes[0x3c..0x40], 0xdddd_eeee_u32.to_le_bytes());
        assert_eq!(RawImageHeader::read(&bytes), Ok(header));
    }

    /// What a Debian kernel says: text_offset 0, 4K pages, placement anywhere.
    fn debian_like() -> Vec<u8> {
        image(0, 0x200_0000, 0b1010, 0x1000)
    }

    #[test]
    fn a_modern_kernel_header_is_accepted() {
        let header = ImageHeader::parse(&debian_like()).unwrap();
        assert_eq!(
            header,
            ImageHeader {
                text_offset: 0,
                image_size: 0x200_0000,
                flags: 0b1010
            }
        );
        assert_eq!(header.page_size(), Some(4096));
        assert!(header.placement_anywhere());
    }

    #[test]
    fn truncated_images_are_refused() {
        for size in [0, 1, 0x38, IMAGE_HEADER_SIZE - 1] {
            assert_eq!(
                ImageHeader::parse(&debian_like()[..size]),
                Err(ImageError::Truncated(size))
            );
        }
    }

    #[test]
    fn a_bad_magic_is_refused() {
        let mut bytes = debian_like();
        bytes[0x38] = b'X';
        assert!(matches!(
            ImageHeader::parse(&bytes),
            Err(ImageError::BadMagic(0x644d_5258))
        ));
        assert_eq!(
            ImageHeader::parse(&[0x7f; 4096]),
            Err(ImageError::BadMagic(0x7f7f_7f7f))
        );
    }

    #[test]
    fn flags_are_decoded_and_big_endian_refused() {
        assert_eq!(
            ImageHeader::parse(&image(0, MIB as u64, 1, 64)),
            Err(ImageError::BigEndian)
        );
        let header = ImageHeader::parse(&image(0, MIB as u64, 0b0110 | 1 << 40, 64)).unwrap();
        assert_eq!(header.page_size(), Some(64 << 10));
        assert!(!header.placement_anywhere());
        let header = ImageHeader::parse(&image(0, MIB as u64, 0, 64)).unwrap();
        assert_eq!(header.page_size(), None);
    }

    #[test]
    fn absurd_sizes_are_refused() {
        // booting.rst's rule for image_size 0, whatever text_offset says.
        for text_offset in [0, 0x80000] {
            assert_eq!(
                ImageHeader::parse(&image(text_offset, 0, 0, 64)),
                Err(ImageError::NoImageSize)
            );
        }
        assert_eq!(
            ImageHeader::parse(&image(0, 0x100, 0, 0x200)),
            Err(ImageError::ImageSizeTooSmall {
                image_size: 0x100,
                file_size: 0x200
            })
        );
        for (text_offset, image_size) in [(!0xfff, MIB as u64), (0, u64::MAX), (1 << 63, 1 << 63)] {
            assert_eq!(
                ImageHeader::parse(&image(text_offset, image_size, 0, 64)),
                Err(ImageError::TooLarge),
                "{text_offset:#x} + {image_size:#x}"
            );
        }
    }

    #[test]
    fn a_text_offset_that_is_not_whole_pages_is_refused_with_the_reason() {
        let refused = [0x8_0002_u64, 0x1001, 0x80_0800, 0x800];
        for text_offset in refused {
            assert_eq!(
                ImageHeader::parse(&image(text_offset, 16 * MIB as u64, 0, 64)),
                Err(ImageError::MisalignedTextOffset(text_offset)),
                "{text_offset:#x}"
            );
        }
        assert_eq!(
            ImageError::MisalignedTextOffset(0x8_0002).to_string(),
            "text_offset 0x80002 would put the kernel's first instruction at an address that is \
             not 4-byte aligned"
        );
        assert_eq!(
            ImageError::MisalignedTextOffset(0x800).to_string(),
            "text_offset 0x800 is not a multiple of the 4 KiB page"
        );
        for text_offset in [0, 0x1000, 0x8_0000, 0x1f_f000] {
            assert!(ImageHeader::parse(&image(text_offset, 16 * MIB as u64, 0, 64)).is_ok());
        }
    }

    #[test]
    fn a_kernel_runs_above_a_2_mib_aligned_base_inside_ram() {
        let header = ImageHeader::parse(&image(0x80000, 16 * MIB as u64, 0, 64)).unwrap();
        assert!(header.can_run_at(0x8008_0000, &RAM));
        assert!(header.can_run_at(0x8028_0000, &RAM));
        assert!(!header.can_run_at(0x8000_0000, &RAM), "base not aligned");
        assert!(!header.can_run_at(0x7fe8_0000, &RAM), "below RAM");
        assert!(
            !header.can_run_at(0x8f08_0000, &RAM),
            "runs past the end of RAM"
        );
        assert!(!header.can_run_at(0x40000, &RAM));
        assert!(!header.can_run_at(usize::MAX, &RAM));
    }

    #[test]
    fn the_destination_is_the_lowest_place_that_avoids_the_rest() {
        let header = ImageHeader::parse(&image(0x80000, 16 * MIB as u64, 0, 64)).unwrap();
        assert_eq!(header.destination(&RAM, &[]), Ok(0x8008_0000));
        // An FDT at the start of RAM: the next base past it.
        let fdt = 0x8000_0000..0x8020_0000;
        assert_eq!(
            header.destination(&RAM, core::slice::from_ref(&fdt)),
            Ok(0x8028_0000)
        );
        // An initrd in the way of the first candidates, and the firmware higher up.
        let avoid = [
            0x8000_0000..0x8010_0000,
            0x8100_0000..0x8180_0000,
            0x8f00_0000..0x9000_0000,
        ];
        let destination = header.destination(&RAM, &avoid).unwrap();
        assert_eq!(destination, 0x8188_0000);
        assert!(header.can_run_at(destination, &RAM));
    }

    #[test]
    fn no_room_is_an_error() {
        let header = ImageHeader::parse(&image(0, 0x1000_0000, 0, 64)).unwrap();
        let at_the_end = 0x8fff_f000..0x9000_0000;
        assert_eq!(
            header.destination(&RAM, core::slice::from_ref(&at_the_end)),
            Err(ImageError::NoRoom)
        );
        let header = ImageHeader::parse(&image(0, 0x1000_0001, 0, 64)).unwrap();
        assert_eq!(header.destination(&RAM, &[]), Err(ImageError::NoRoom));
        let huge = ImageHeader {
            text_offset: usize::MAX - 10,
            image_size: 1,
            flags: 0,
        };
        assert_eq!(huge.destination(&RAM, &[]), Err(ImageError::NoRoom));
    }
}
