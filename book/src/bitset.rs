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
