//! [`SlotBits`]: a two-level occupancy bitset over the slots of a book side's window.
//!
//! One bit per slot says whether the slot holds a level. A summary word level has one bit per
//! leaf word (set when the leaf word is non-zero), so finding the highest occupied slot in a
//! range reads at most two leaf words plus the summary words in between, with
//! leading/trailing-zero instructions, instead of walking the window.
//!
//! Invariant: summary bit `w` is set exactly when `leaves[w] != 0`.

use pinion_core::mem::resident_slice;

/// Bits per word.
const WORD: usize = 64;

/// Occupancy bits for `len` slots (`len` a power of two, at least 64).
#[derive(Debug, Clone)]
pub(crate) struct SlotBits {
    leaves: Box<[u64]>,
    summary: Box<[u64]>,
}

/// A mask of the bits at positions `>= lo` within a word.
#[inline]
fn from_bit(lo: usize) -> u64 {
    u64::MAX << lo
}

/// A mask of the bits at positions `<= hi` within a word.
#[inline]
fn through_bit(hi: usize) -> u64 {
    u64::MAX >> (WORD - 1 - hi)
}

/// The highest set bit position in `[lo, hi]` (inclusive, in bit positions across `words`),
/// scanning words from the top; used for the short summary array.
#[inline]
fn highest_in_words(words: &[u64], lo: usize, hi: usize) -> Option<usize> {
    if lo > hi {
        return None;
    }
    let (wlo, whi) = (lo / WORD, hi / WORD);
    let mut w = whi;
    loop {
        let mut m = words[w];
        if w == whi {
            m &= through_bit(hi % WORD);
        }
        if w == wlo {
            m &= from_bit(lo % WORD);
        }
        if m != 0 {
            return Some(w * WORD + (WORD - 1 - m.leading_zeros() as usize));
        }
        if w == wlo {
            return None;
        }
        w -= 1;
    }
}

impl SlotBits {
    /// All clear, for `len` slots. `len` must be a power of two and at least 64 (checked by
    /// the book's config).
    pub(crate) fn new(len: usize) -> Self {
        let n_leaves = len / WORD;
        let n_summary = n_leaves.div_ceil(WORD);
        Self {
            leaves: resident_slice(0, n_leaves),
            summary: resident_slice(0, n_summary),
        }
    }

    /// Marks `slot` occupied.
    #[inline]
    pub(crate) fn set(&mut self, slot: usize) {
        let w = slot / WORD;
        self.leaves[w] |= 1 << (slot % WORD);
        self.summary[w / WORD] |= 1 << (w % WORD);
    }

    /// The occupancy word holding slots `64 w ..= 64 w + 63`.
    #[inline]
    pub(crate) fn leaf(&self, w: usize) -> u64 {
        self.leaves[w]
    }

    /// Marks `slot` empty.
    #[inline]
    pub(crate) fn clear(&mut self, slot: usize) {
        let w = slot / WORD;
        self.leaves[w] &= !(1 << (slot % WORD));
        // Clear the summary bit only if the word emptied, without a branch.
        let emptied = u64::from(self.leaves[w] == 0);
        self.summary[w / WORD] &= !(emptied << (w % WORD));
    }

    /// Whether `slot` is occupied.
    #[cfg(test)]
    pub(crate) fn get(&self, slot: usize) -> bool {
        self.leaves[slot / WORD] & (1 << (slot % WORD)) != 0
    }

    /// Clears every slot, calling `visit` with each slot that was occupied. Touches only the
    /// non-empty leaf words.
    pub(crate) fn drain(&mut self, mut visit: impl FnMut(usize)) {
        for (sw, s) in self.summary.iter_mut().enumerate() {
            let mut words = *s;
            while words != 0 {
                let w = sw * WORD + words.trailing_zeros() as usize;
                let mut bits = self.leaves[w];
                while bits != 0 {
                    visit(w * WORD + bits.trailing_zeros() as usize);
                    bits &= bits - 1;
                }
                self.leaves[w] = 0;
                words &= words - 1;
            }
            *s = 0;
        }
    }

    /// The sum of `values[s]` over the occupied slots `s` in `[lo, hi]` (inclusive; `hi` below
    /// the length), saturating. `values` holds one value per slot, never negative (a book
    /// side's quantities).
    ///
    /// Reads one leaf word per 64 slots and takes its set bits in turn. A word's values are
    /// added wrapping and OR-ed on the way: below 2^57 each, 64 of them cannot overflow, so the
    /// word's sum is exact and only the total needs saturating (one dependent add per level
    /// instead of two); a word holding a larger value is summed again, saturating.
    pub(crate) fn sum_occupied(&self, lo: usize, hi: usize, values: &[i64]) -> i64 {
        let (wlo, whi) = (lo / WORD, hi / WORD);
        let mut total = 0i64;
        for w in wlo..=whi {
            let mut word = self.leaves[w];
            if w == wlo {
                word &= from_bit(lo % WORD);
            }
            if w == whi {
                word &= through_bit(hi % WORD);
            }
            let run = &values[w * WORD..(w + 1) * WORD];
            let (mut sum, mut any, mut m) = (0u64, 0u64, word);
            while m != 0 {
                let v = run[m.trailing_zeros() as usize] as u64;
                sum = sum.wrapping_add(v);
                any |= v;
                m &= m - 1;
            }
            if any < 1 << 57 {
                total = total.saturating_add(sum as i64);
            } else {
                let mut m = word;
                while m != 0 {
                    total = total.saturating_add(run[m.trailing_zeros() as usize]);
                    m &= m - 1;
                }
            }
        }
        total
    }

    /// The highest occupied slot in `[lo, hi]` (inclusive; `hi` below the length).
    #[inline]
    pub(crate) fn highest_in(&self, lo: usize, hi: usize) -> Option<usize> {
        if lo > hi {
            return None;
        }
        let (wlo, whi) = (lo / WORD, hi / WORD);
        // The top leaf word, masked to the range: the usual hit, since the search starts at
        // the best level and the next level is normally close by.
        let mut m = self.leaves[whi] & through_bit(hi % WORD);
        if whi == wlo {
            m &= from_bit(lo % WORD);
        }
        if m != 0 {
            return Some(whi * WORD + (WORD - 1 - m.leading_zeros() as usize));
        }
        if whi == wlo {
            return None;
        }
        // Whole leaf words strictly between, found through the summary.
        if whi > wlo + 1
            && let Some(w) = highest_in_words(&self.summary, wlo + 1, whi - 1)
        {
            let m = self.leaves[w];
            return Some(w * WORD + (WORD - 1 - m.leading_zeros() as usize));
        }
        let m = self.leaves[wlo] & from_bit(lo % WORD);
        (m != 0).then(|| wlo * WORD + (WORD - 1 - m.leading_zeros() as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_highest(set: &[bool], lo: usize, hi: usize) -> Option<usize> {
        (lo..=hi).rev().find(|&i| set[i])
    }

    #[test]
    fn highest_in_matches_a_scan() {
        let len = 1 << 13;
        let mut bits = SlotBits::new(len);
        let mut set = vec![false; len];
        // A deterministic spread of slots: some dense, some isolated, word edges included.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let s = (x as usize) % len;
            bits.set(s);
            set[s] = true;
        }
        for s in [0, 63, 64, 4095, 4096, len - 1] {
            bits.set(s);
            set[s] = true;
        }
        for s in [64, 100, 200] {
            bits.clear(s);
            set[s] = false;
        }
        for lo in (0..len).step_by(97).chain([0, 63, 64, 4096]) {
            for hi in (lo..len).step_by(131).chain([lo, len - 1]) {
                assert_eq!(
                    bits.highest_in(lo, hi),
                    naive_highest(&set, lo, hi),
                    "{lo}..={hi}"
                );
            }
        }
        for (s, &want) in set.iter().enumerate() {
            assert_eq!(bits.get(s), want);
        }
    }

    #[test]
    fn sum_occupied_matches_a_scan_and_saturates() {
        let len = 1 << 10;
        let mut bits = SlotBits::new(len);
        let mut values = vec![0i64; len];
        // Dense words, sparse ones, and empty ones.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for s in (0..300).chain(500..520).chain([700, 763, 764, 1023]) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if s >= 300 || !x.is_multiple_of(4) {
                bits.set(s);
                values[s] = 1 + (x % 1_000) as i64;
            }
        }
        let naive =
            |v: &[i64], lo: usize, hi: usize| (lo..=hi).fold(0i64, |t, s| t.saturating_add(v[s]));
        for lo in (0..len).step_by(37).chain([0, 63, 64, 512]) {
            for hi in (lo..len).step_by(53).chain([lo, len - 1]) {
                assert_eq!(
                    bits.sum_occupied(lo, hi, &values),
                    naive(&values, lo, hi),
                    "{lo}..={hi}"
                );
            }
        }
        // Values too large to sum a word without overflow: summed again, saturating.
        for s in [0, 5, 64, 65, 100] {
            bits.set(s);
            values[s] = i64::MAX / 3;
        }
        for (lo, hi) in [(0, 63), (0, 1023), (60, 130), (64, 64)] {
            assert_eq!(bits.sum_occupied(lo, hi, &values), naive(&values, lo, hi));
        }
        assert_eq!(bits.sum_occupied(0, len - 1, &values), i64::MAX);
    }

    #[test]
    fn summary_tracks_emptied_words() {
        let mut bits = SlotBits::new(1 << 12);
        bits.set(130);
        bits.set(3000);
        assert_eq!(bits.highest_in(0, 2999), Some(130));
        bits.clear(130);
        assert_eq!(bits.highest_in(0, 2999), None);
        assert_eq!(bits.highest_in(0, 4095), Some(3000));
        bits.set(4095);
        let mut seen = Vec::new();
        bits.drain(|s| seen.push(s));
        assert_eq!(seen, [3000, 4095]);
        assert_eq!(bits.highest_in(0, 4095), None);
    }
}
