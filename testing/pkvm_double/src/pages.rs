// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! Sets of granule-sized pages over one range of IPAs, one bit per page.

/// The protection granule: what pKVM's `HYP_MEMINFO` and `MMIO_GUARD_INFO` report, and the unit
/// of every share and guard call.
pub const GRANULE: u64 = 4096;

/// A set of pages in `[base, base + 64 * GRANULE * bits.len())`.
pub struct PageSet<'a> {
    base: u64,
    bits: &'a mut [u64],
}

impl<'a> PageSet<'a> {
    /// An empty set over the pages `bits` has room for, from `base` (granule aligned). `bits`
    /// must be all zeros.
    pub fn new(base: u64, bits: &'a mut [u64]) -> Self {
        debug_assert!(base.is_multiple_of(GRANULE) && bits.iter().all(|&word| word == 0));
        Self { base, bits }
    }

    /// The page's bit (word index, mask), or `None` if `ipa` is outside the range.
    fn bit(&self, ipa: u64) -> Option<(usize, u64)> {
        let page = usize::try_from(ipa.checked_sub(self.base)? / GRANULE).ok()?;
        (page / 64 < self.bits.len()).then_some((page / 64, 1 << (page % 64)))
    }

    /// Whether `ipa` lies in the range the set covers.
    pub fn covers(&self, ipa: u64) -> bool {
        self.bit(ipa).is_some()
    }

    /// Whether the page holding `ipa` is in the set (`false` outside the range).
    pub fn contains(&self, ipa: u64) -> bool {
        self.bit(ipa)
            .is_some_and(|(word, mask)| self.bits[word] & mask != 0)
    }

    /// Whether every page that `[ipa, ipa + len)` touches is in the set; an empty range is.
    pub fn contains_range(&self, ipa: u64, len: u64) -> bool {
        if len == 0 {
            return true;
        }
        let Some(last) = ipa.checked_add(len - 1) else {
            return false;
        };
        (ipa / GRANULE..=last / GRANULE).all(|page| self.contains(page * GRANULE))
    }

    /// Adds the page holding `ipa`; `false` if it was there already or is outside the range.
    pub fn insert(&mut self, ipa: u64) -> bool {
        match self.bit(ipa) {
            Some((word, mask)) if self.bits[word] & mask == 0 => {
                self.bits[word] |= mask;
                true
            }
            _ => false,
        }
    }

    /// Removes the page holding `ipa`; `false` if it was not there.
    pub fn remove(&mut self, ipa: u64) -> bool {
        match self.bit(ipa) {
            Some((word, mask)) if self.bits[word] & mask != 0 => {
                self.bits[word] &= !mask;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_and_ranges() {
        let mut bits = [0; 2];
        let mut set = PageSet::new(0x8000_0000, &mut bits);
        assert!(!set.covers(0x7fff_ffff));
        assert!(set.covers(0x8000_0000 + 127 * GRANULE));
        assert!(!set.covers(0x8000_0000 + 128 * GRANULE));
        assert!(set.insert(0x8000_1000));
        assert!(!set.insert(0x8000_1fff), "the same page twice");
        assert!(set.insert(0x8000_2000));
        assert!(set.contains_range(0x8000_1800, 0x1000));
        assert!(
            !set.contains_range(0x8000_1800, 0x2000),
            "runs into the next page"
        );
        assert!(set.contains_range(0x8000_5000, 0));
        assert!(!set.contains_range(u64::MAX, 2), "wraps around");
        assert!(set.remove(0x8000_1000));
        assert!(!set.remove(0x8000_1000), "never there any more");
        assert!(!set.insert(0x9000_0000), "outside the range");
        assert!(!set.contains(0x8000_1000));
    }
}
