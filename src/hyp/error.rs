// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! The one error type of [`crate::hyp`]: the hypervisor's SMCCC return codes, and what vmbase
//! refuses before asking.

use core::fmt;

/// SMCCC `NOT_SUPPORTED`.
pub const NOT_SUPPORTED: i64 = -1;
/// SMCCC `NOT_REQUIRED`.
pub const NOT_REQUIRED: i64 = -2;
/// SMCCC `INVALID_PARAMETER`.
pub const INVALID_PARAMETER: i64 = -3;

/// Why a hypervisor call failed or was not made.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Error {
    /// The hypervisor answered `NOT_SUPPORTED` (-1), or its features bitmap does not offer the
    /// function (then vmbase does not call it).
    NotSupported,
    /// The hypervisor answered `NOT_REQUIRED` (-2).
    NotRequired,
    /// The hypervisor answered `INVALID_PARAMETER` (-3): pKVM's answer to an address it refuses
    /// (not granule-aligned, not guest memory, shared twice, unshared while not shared).
    InvalidParameter,
    /// Any other answer where the call defines none (a negative code of no meaning, or a
    /// non-zero value where only 0 means success).
    Unknown(i64),
    /// The VM has no KVM hypervisor services: SMCCC older than 1.1, or a vendor-hypervisor UID
    /// other than KVM's (QEMU without a hypervisor, for one). Nothing was called.
    NoHypervisorServices,
    /// An address of the range is not a multiple of the hypervisor's granule. Nothing was called.
    Unaligned {
        /// The first misaligned address (the start or the end of the range).
        address: usize,
        /// The granule, in bytes.
        granule: usize,
    },
    /// The hypervisor gave a granule vmbase cannot use: not a power of two, smaller than a page,
    /// or (for the MMIO guard) not the 4 KiB pages vmbase maps.
    UnsupportedGranule(u64),
}

impl Error {
    /// The SMCCC return code this error stands for, if it came from the hypervisor.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::NotSupported => Some(NOT_SUPPORTED),
            Self::NotRequired => Some(NOT_REQUIRED),
            Self::InvalidParameter => Some(INVALID_PARAMETER),
            Self::Unknown(code) => Some(*code),
            Self::NoHypervisorServices | Self::Unaligned { .. } | Self::UnsupportedGranule(_) => {
                None
            }
        }
    }
}

/// A return code in `x0`, as the signed value the SMCCC defines.
impl From<i64> for Error {
    fn from(code: i64) -> Self {
        match code {
            NOT_SUPPORTED => Self::NotSupported,
            NOT_REQUIRED => Self::NotRequired,
            INVALID_PARAMETER => Self::InvalidParameter,
            _ => Self::Unknown(code),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NotSupported => write!(f, "the hypervisor answered NOT_SUPPORTED (-1)"),
            Self::NotRequired => write!(f, "the hypervisor answered NOT_REQUIRED (-2)"),
            Self::InvalidParameter => write!(f, "the hypervisor answered INVALID_PARAMETER (-3)"),
            Self::Unknown(code) => {
                write!(
                    f,
                    "the hypervisor answered {code} ({:#x}), which the call does not define",
                    *code as u64
                )
            }
            Self::NoHypervisorServices => write!(f, "the VM has no KVM hypervisor services"),
            Self::Unaligned { address, granule } => {
                write!(
                    f,
                    "address {address:#x} is not a multiple of the {granule:#x}-byte granule"
                )
            }
            Self::UnsupportedGranule(granule) => {
                write!(
                    f,
                    "the hypervisor's granule {granule:#x} is not one vmbase can use"
                )
            }
        }
    }
}

#[cfg(has_core_error)]
impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn spec_codes_convert_both_ways() {
        for (code, error) in [
            (-1, Error::NotSupported),
            (-2, Error::NotRequired),
            (-3, Error::InvalidParameter),
            (-7, Error::Unknown(-7)),
            (1, Error::Unknown(1)),
        ] {
            assert_eq!(Error::from(code), error);
            assert_eq!(error.code(), Some(code));
        }
        assert_eq!(Error::NoHypervisorServices.code(), None);
    }

    #[test]
    fn messages_name_the_code_and_the_address() {
        assert_eq!(
            Error::InvalidParameter.to_string(),
            "the hypervisor answered INVALID_PARAMETER (-3)"
        );
        assert_eq!(
            Error::Unaligned {
                address: 0x8000_0800,
                granule: 0x1000
            }
            .to_string(),
            "address 0x80000800 is not a multiple of the 0x1000-byte granule"
        );
        assert_eq!(
            Error::Unknown(-9).to_string(),
            "the hypervisor answered -9 (0xfffffffffffffff7), which the call does not define"
        );
    }
}
