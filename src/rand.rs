// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Entropy: the hypervisor's SMCCC TRNG (Arm DEN0098) where it offers one, else the CPU's `RNDR`
//! (FEAT_RNG), else a fallback the program registers once its devices are up (virtio-rng, with
//! [`set_fallback`]), else an error; never a made-up value.

use core::fmt;
use core::marker::PhantomData;
use smccc::Call;

/// `TRNG_VERSION` (SMC32): the interface's version, or NOT_SUPPORTED.
const TRNG_VERSION: u32 = 0x8400_0050;
/// `TRNG_FEATURES` (SMC32): whether the function whose ID is the argument is implemented.
const TRNG_FEATURES: u32 = 0x8400_0051;
/// `TRNG_RND64` (SMC64): up to 192 bits of entropy in x1 (high) to x3 (low).
const TRNG_RND64: u32 = 0xc400_0053;
/// The TRNG major version this code speaks.
const TRNG_MAJOR_VERSION: i32 = 1;
/// Bytes one `TRNG_RND64` call returns at most (192 bits).
const TRNG_RND64_MAX_BYTES: usize = 24;
/// `TRNG_RND64` calls in a row that may answer NO_ENTROPY before giving up.
const TRNG_ATTEMPTS: usize = 16;
/// `RNDR` reads in a row that may fail before giving up (the architecture allows transient
/// failures, for example while the generator reseeds).
const RNDR_ATTEMPTS: usize = 16;

/// `ID_AA64ISAR0_EL1.RNDR`, bits [63:60]: 0b0001 when `RNDR` and `RNDRRS` are implemented.
const ID_AA64ISAR0_RNDR_SHIFT: u64 = 60;

/// Where entropy comes from.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Source {
    /// The hypervisor's SMCCC TRNG (`TRNG_RND64`).
    Trng,
    /// The CPU's random number register (`RNDR`, FEAT_RNG).
    Rndr,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Trng => write!(f, "SMCCC TRNG"),
            Self::Rndr => write!(f, "RNDR"),
        }
    }
}

/// An error from the SMCCC TRNG, with the spec's codes.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum TrngError {
    /// NOT_SUPPORTED (-1).
    NotSupported,
    /// INVALID_PARAMETERS (-2).
    InvalidParameters,
    /// NO_ENTROPY (-3): none available right now.
    NoEntropy,
    /// Any other negative code.
    Unknown(i64),
}

impl fmt::Display for TrngError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NotSupported => write!(f, "not supported"),
            Self::InvalidParameters => write!(f, "invalid parameters"),
            Self::NoEntropy => write!(f, "no entropy available"),
            Self::Unknown(code) => write!(f, "unknown error {code}"),
        }
    }
}

#[cfg(has_core_error)]
impl core::error::Error for TrngError {}

impl From<i64> for TrngError {
    fn from(code: i64) -> Self {
        match code {
            -1 => Self::NotSupported,
            -2 => Self::InvalidParameters,
            -3 => Self::NoEntropy,
            _ => Self::Unknown(code),
        }
    }
}

impl From<TrngError> for i64 {
    fn from(error: TrngError) -> Self {
        match error {
            TrngError::NotSupported => -1,
            TrngError::InvalidParameters => -2,
            TrngError::NoEntropy => -3,
            TrngError::Unknown(code) => code,
        }
    }
}

/// Why no entropy was produced.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Error {
    /// The hypervisor offers no TRNG and the CPU has no `RNDR`.
    NoEntropySource,
    /// The TRNG failed.
    Trng(TrngError),
    /// `RNDR` reported failure on every attempt.
    RndrFailed,
    /// The fallback registered with [`set_fallback`] failed.
    FallbackFailed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NoEntropySource => {
                write!(f, "no entropy source (no SMCCC TRNG, no RNDR)")
            }
            Self::Trng(error) => write!(f, "SMCCC TRNG failed: {error}"),
            Self::RndrFailed => write!(f, "RNDR failed {RNDR_ATTEMPTS} times in a row"),
            Self::FallbackFailed => write!(f, "the fallback entropy source failed"),
        }
    }
}

#[cfg(has_core_error)]
impl core::error::Error for Error {}

impl From<TrngError> for Error {
    fn from(error: TrngError) -> Self {
        Self::Trng(error)
    }
}

/// Whether an `ID_AA64ISAR0_EL1` value says the CPU has `RNDR`.
pub fn cpu_has_rndr(id_aa64isar0_el1: u64) -> bool {
    (id_aa64isar0_el1 >> ID_AA64ISAR0_RNDR_SHIFT) & 0xf >= 1
}

/// An entropy source reached through the SMCCC conduit `C` (for the TRNG), chosen once.
#[derive(Clone, Copy, Debug)]
pub struct Entropy<C: Call> {
    source: Source,
    rndr: fn() -> Option<u64>,
    conduit: PhantomData<C>,
}

impl<C: Call> Entropy<C> {
    /// Picks the TRNG if the hypervisor implements version 1 with `TRNG_RND64`, else `RNDR` if
    /// the CPU has it (`rndr` reads it: one value, or `None` when it reports failure, as
    /// `arch::aarch64::rndr` does). [`Entropy::probe`] fills both in from the CPU; unit tests
    /// pass their own.
    // Only probe and unit tests call it.
    #[cfg_attr(not(any(test, target_arch = "aarch64")), allow(dead_code))]
    pub(crate) fn new(cpu_has_rndr: bool, rndr: fn() -> Option<u64>) -> Result<Self, Error> {
        let source = if trng_available::<C>() {
            Source::Trng
        } else if cpu_has_rndr {
            Source::Rndr
        } else {
            return Err(Error::NoEntropySource);
        };
        Ok(Self {
            source,
            rndr,
            conduit: PhantomData,
        })
    }

    /// The source chosen.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Fills `bytes` with entropy.
    pub fn fill(&self, bytes: &mut [u8]) -> Result<(), Error> {
        match self.source {
            Source::Trng => trng_fill::<C>(bytes),
            Source::Rndr => rndr_fill(self.rndr, bytes),
        }
    }
}

#[cfg(any(doc, target_arch = "aarch64"))]
impl<C: Call> Entropy<C> {
    /// Asks the hypervisor (through `C`) and the CPU which source exists.
    pub fn probe() -> Result<Self, Error> {
        let isar0 = crate::read_sysreg!("id_aa64isar0_el1");
        Self::new(cpu_has_rndr(isar0), crate::arch::aarch64::rndr)
    }
}

fn trng_available<C: Call>() -> bool {
    // Both answers are signed 32-bit values in w0.
    let version = C::call32(TRNG_VERSION, [0; 7])[0] as i32;
    if version < 0 || version >> 16 != TRNG_MAJOR_VERSION {
        return false;
    }
    let mut args = [0; 7];
    args[0] = TRNG_RND64;
    C::call32(TRNG_FEATURES, args)[0] as i32 >= 0
}

fn trng_fill<C: Call>(bytes: &mut [u8]) -> Result<(), Error> {
    for chunk in bytes.chunks_mut(TRNG_RND64_MAX_BYTES) {
        let mut args = [0; 17];
        args[0] = (chunk.len() * 8) as u64;
        let mut attempts = 0;
        let result = loop {
            let result = C::call64(TRNG_RND64, args);
            match result[0] as i64 {
                0 => break result,
                code => {
                    let error = TrngError::from(code);
                    attempts += 1;
                    if error != TrngError::NoEntropy || attempts == TRNG_ATTEMPTS {
                        return Err(error.into());
                    }
                }
            }
        };
        // The requested bits are the low ones: x3 holds bits [63:0], x2 [127:64], x1 [191:128].
        let mut entropy = [0; TRNG_RND64_MAX_BYTES];
        for (word, value) in entropy
            .chunks_exact_mut(8)
            .zip([result[3], result[2], result[1]])
        {
            word.copy_from_slice(&value.to_le_bytes());
        }
        chunk.copy_from_slice(&entropy[..chunk.len()]);
    }
    Ok(())
}

fn rndr_fill(rndr: fn() -> Option<u64>, bytes: &mut [u8]) -> Result<(), Error> {
    for chunk in bytes.chunks_mut(8) {
        let value = (0..RNDR_ATTEMPTS)
            .find_map(|_| rndr())
            .ok_or(Error::RndrFailed)?;
        chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
    }
    Ok(())
}

#[cfg(target_arch = "aarch64")]
static ENTROPY: spin::Once<Result<Entropy<smccc::Hvc>, Error>> = spin::Once::new();

/// Chooses the entropy source once (the TRNG through HVC, else `RNDR`); later calls return the
/// same answer. vmbase calls it before `main`, to make the stack protector's guard.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub fn init() -> Result<Source, Error> {
    let entropy = ENTROPY.call_once(Entropy::probe);
    entropy
        .as_ref()
        .map(Entropy::source)
        .map_err(|error| *error)
}

/// A source of entropy found at run time; `false` when it failed.
pub type Fallback = fn(&mut [u8]) -> bool;

static FALLBACK: spin::Once<Fallback> = spin::Once::new();

/// Registers `fill` as the source of entropy for when the hypervisor and the CPU offer none
/// (`vmbase::virtio::rng::use_as_fallback` registers a virtio-rng device). Only the first
/// registration counts; returns whether this one did.
pub fn set_fallback(fill: Fallback) -> bool {
    let mut registered = false;
    FALLBACK.call_once(|| {
        registered = true;
        fill
    });
    registered
}

/// Fills `bytes` with entropy from the source [`init`] chose, or from the fallback when
/// there was none.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub fn fill_with_entropy(bytes: &mut [u8]) -> Result<(), Error> {
    match (ENTROPY.call_once(Entropy::probe), FALLBACK.get()) {
        (Ok(entropy), _) => entropy.fill(bytes),
        (Err(Error::NoEntropySource), Some(fallback)) => {
            fallback(bytes).then_some(()).ok_or(Error::FallbackFailed)
        }
        (Err(error), _) => Err(*error),
    }
}

/// `N` bytes of entropy.
///
/// Only on aarch64: the VM's architecture (host builds have it in their documentation only).
#[cfg(any(doc, target_arch = "aarch64"))]
pub fn random_array<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0; N];
    fill_with_entropy(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::vec::Vec;

    /// What the fake hypervisor answers, and the calls it saw.
    #[derive(Default)]
    struct Hypervisor {
        version: i32,
        rnd64_feature: i32,
        /// Status codes for successive TRNG_RND64 calls (0 once these run out).
        rnd64_status: Vec<i64>,
        calls: Vec<(u32, u64)>,
    }

    std::thread_local! {
        static HYPERVISOR: RefCell<Hypervisor> = RefCell::default();
    }

    fn with_hypervisor(hypervisor: Hypervisor) {
        HYPERVISOR.with(|h| *h.borrow_mut() = hypervisor);
    }

    fn calls() -> Vec<(u32, u64)> {
        HYPERVISOR.with(|h| h.borrow().calls.clone())
    }

    /// A fake SMCCC conduit with a TRNG whose entropy is the byte sequence 1, 2, 3, ...
    struct FakeConduit;

    impl Call for FakeConduit {
        fn call32(function: u32, args: [u32; 7]) -> [u32; 8] {
            HYPERVISOR.with(|h| {
                let mut h = h.borrow_mut();
                h.calls.push((function, args[0].into()));
                let answer = match function {
                    TRNG_VERSION => h.version,
                    TRNG_FEATURES if args[0] == TRNG_RND64 => h.rnd64_feature,
                    _ => -1,
                };
                let mut result = [0; 8];
                result[0] = answer as u32;
                result
            })
        }

        fn call64(function: u32, args: [u64; 17]) -> [u64; 18] {
            HYPERVISOR.with(|h| {
                let mut h = h.borrow_mut();
                h.calls.push((function, args[0]));
                let mut result = [0; 18];
                if function != TRNG_RND64 {
                    result[0] = -1i64 as u64;
                    return result;
                }
                let status = if h.rnd64_status.is_empty() {
                    0
                } else {
                    h.rnd64_status.remove(0)
                };
                result[0] = status as u64;
                if status == 0 {
                    let bytes: Vec<u8> = (1..=24).collect();
                    // Bit 0 of the entropy is bit 0 of x3.
                    for (register, word) in [3, 2, 1].into_iter().zip(bytes.chunks(8)) {
                        result[register] = u64::from_le_bytes(word.try_into().unwrap());
                    }
                }
                result
            })
        }
    }

    fn no_rndr() -> Option<u64> {
        panic!("RNDR read while the TRNG was chosen")
    }

    fn counting_rndr() -> Option<u64> {
        Some(0x0807_0605_0403_0201)
    }

    fn failing_rndr() -> Option<u64> {
        None
    }

    const TRNG_1_0: i32 = 1 << 16;

    #[test]
    fn the_trng_is_preferred_when_offered() {
        with_hypervisor(Hypervisor {
            version: TRNG_1_0,
            ..Default::default()
        });
        let entropy = Entropy::<FakeConduit>::new(true, no_rndr).unwrap();
        assert_eq!(entropy.source(), Source::Trng);
        let mut bytes = [0; 30];
        entropy.fill(&mut bytes).unwrap();
        let expected: Vec<u8> = (1..=24).chain(1..=6).collect();
        assert_eq!(bytes.as_slice(), expected);
        assert_eq!(
            calls()[2..],
            [(TRNG_RND64, 192), (TRNG_RND64, 48)],
            "bits requested per call"
        );
    }

    #[test]
    fn rndr_is_used_without_a_trng() {
        with_hypervisor(Hypervisor {
            version: -1,
            ..Default::default()
        });
        let entropy = Entropy::<FakeConduit>::new(true, counting_rndr).unwrap();
        assert_eq!(entropy.source(), Source::Rndr);
        let mut bytes = [0; 11];
        entropy.fill(&mut bytes).unwrap();
        assert_eq!(bytes, [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3]);
        assert_eq!(calls(), [(TRNG_VERSION, 0)]);
    }

    #[test]
    fn a_trng_without_rnd64_or_of_another_major_version_is_not_used() {
        for (version, rnd64_feature) in [(TRNG_1_0, -1), (2 << 16, 0)] {
            with_hypervisor(Hypervisor {
                version,
                rnd64_feature,
                ..Default::default()
            });
            let entropy = Entropy::<FakeConduit>::new(true, counting_rndr).unwrap();
            assert_eq!(entropy.source(), Source::Rndr, "version {version:#x}");
        }
    }

    #[test]
    fn neither_source_is_an_error() {
        with_hypervisor(Hypervisor {
            version: -1,
            ..Default::default()
        });
        assert_eq!(
            Entropy::<FakeConduit>::new(false, no_rndr).map(|e| e.source()),
            Err(Error::NoEntropySource)
        );
    }

    #[test]
    fn rndr_failures_are_retried_then_reported() {
        with_hypervisor(Hypervisor {
            version: -1,
            ..Default::default()
        });
        let entropy = Entropy::<FakeConduit>::new(true, failing_rndr).unwrap();
        assert_eq!(entropy.fill(&mut [0; 8]), Err(Error::RndrFailed));
        assert_eq!(entropy.fill(&mut []), Ok(()));
    }

    #[test]
    fn trng_no_entropy_is_retried_and_other_errors_are_reported() {
        with_hypervisor(Hypervisor {
            version: TRNG_1_0,
            rnd64_status: [-3, -3].into(),
            ..Default::default()
        });
        let entropy = Entropy::<FakeConduit>::new(false, no_rndr).unwrap();
        let mut bytes = [0; 4];
        entropy.fill(&mut bytes).unwrap();
        assert_eq!(bytes, [1, 2, 3, 4]);

        with_hypervisor(Hypervisor {
            version: TRNG_1_0,
            rnd64_status: [-2].into(),
            ..Default::default()
        });
        assert_eq!(
            entropy.fill(&mut bytes),
            Err(Error::Trng(TrngError::InvalidParameters))
        );

        with_hypervisor(Hypervisor {
            version: TRNG_1_0,
            rnd64_status: [-3; TRNG_ATTEMPTS].into(),
            ..Default::default()
        });
        assert_eq!(
            entropy.fill(&mut bytes),
            Err(Error::Trng(TrngError::NoEntropy))
        );
    }

    #[test]
    fn trng_codes_round_trip() {
        for code in [-1, -2, -3, -7] {
            assert_eq!(i64::from(TrngError::from(code)), code);
        }
        assert_eq!(TrngError::from(-7), TrngError::Unknown(-7));
    }

    #[test]
    fn trng_failures_read_as_the_spec_names_them() {
        assert_eq!(
            Error::Trng(TrngError::NoEntropy).to_string(),
            "SMCCC TRNG failed: no entropy available"
        );
        assert_eq!(
            Error::Trng(TrngError::from(-7)).to_string(),
            "SMCCC TRNG failed: unknown error -7"
        );
    }

    #[test]
    fn rndr_feature_field() {
        assert!(!cpu_has_rndr(0x0000_1100_1021_1120));
        assert!(cpu_has_rndr(0x1000_0000_0000_0000));
        assert!(cpu_has_rndr(0x2000_0000_0000_0000));
    }
}
