//! [`BookSide`]: one side of the array book — a window of `2^k` ticks plus a bounded overflow.
//!
//! A side works on *keys*, not prices: a bid's key is its tick index, an ask's key the negated
//! tick index, so on both sides a higher key is a better level and one code path serves both.
//!
//! The window covers the keys `[base, base + N)`; key `k` lives in slot `k & (N - 1)`, so
//! moving the window (re-centring) leaves every level that stays inside it where it is and only
//! moves the levels that cross its edges. An occupancy bitset ([`SlotBits`]) finds the best and
//! next levels with bit scans.
//!
//! Invariants (checked by the property tests against the `BTreeMap` reference):
//! - a level is in exactly one place: in the window if `base <= key < base + N`, else in the
//!   overflow; the overflow never holds a key inside the window;
//! - a slot's bit is set exactly when its quantity is non-zero;
//! - `best` is the highest key held anywhere (window or overflow), or [`NO_KEY`] when empty, so
//!   the best level is right even when it sits in the overflow; `best_qty` is its quantity (0
//!   when empty), so reading the top of the book touches neither the window nor the overflow;
//! - nothing is lost until the overflow is full; then the worst level goes, and is counted;
//!
//! Re-centring happens at commit time (after a whole exchange message), when the best key has
//! drifted out of the middle band of the window: the window is re-anchored with the best key at
//! three quarters of its height, leaving most of the window for depth behind the touch.

use pinion_core::mem::{prefault_spare, resident_slice};

use crate::bitset::SlotBits;
use crate::overflow::{Overflow, Upsert};

/// The `best` value of an empty side. Keys are bounded well inside `i64` (see
/// [`crate::book::MAX_TICK`]), so it cannot be a real key.
pub(crate) const NO_KEY: i64 = i64::MIN;

/// One side of the array book. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct BookSide {
    /// Quantity per slot; 0 = empty.
    qty: Box<[i64]>,
    bits: SlotBits,
    /// `N - 1`, `N` the window length.
    mask: u64,
    /// `N`.
    span: i64,
    /// The key at the window's lowest position.
    base: i64,
    /// `N` once the window is anchored, 0 while it is not (created or cleared, until the first
    /// level arrives), so that one unsigned comparison answers "is this key in the window".
    reach: u64,
    overflow: Overflow,
    /// Room for the levels coming in from the overflow during a re-centre (its capacity).
    scratch: Vec<(i64, i64)>,
    /// The best key held anywhere, or [`NO_KEY`].
    best: i64,
    /// The quantity at `best`; 0 when the side is empty.
    best_qty: i64,
    /// Levels held in the window.
    in_window: usize,
    /// Levels lost because the overflow was full.
    dropped: u64,
    /// How many times the window moved.
    recentres: u64,
}

impl BookSide {
    /// A side with a window of `window` slots (a power of two, at least 64) and an overflow of
    /// `overflow` levels. All storage is allocated here.
    pub(crate) fn new(window: usize, overflow: usize) -> Self {
        Self {
            qty: resident_slice(0, window),
            bits: SlotBits::new(window),
            mask: window as u64 - 1,
            span: window as i64,
            base: 0,
            reach: 0,
            overflow: Overflow::new(overflow),
            scratch: {
                let mut v = Vec::with_capacity(overflow);
                prefault_spare(&mut v, (0, 0));
                v
            },
            best: NO_KEY,
            best_qty: 0,
            in_window: 0,
            dropped: 0,
            recentres: 0,
        }
    }

    #[inline]
    fn slot(&self, key: i64) -> usize {
        (key as u64 & self.mask) as usize
    }

    #[inline]
    fn in_window(&self, key: i64) -> bool {
        (key.wrapping_sub(self.base) as u64) < self.reach
    }

    #[inline]
    fn anchored(&self) -> bool {
        self.reach != 0
    }

    /// The best key and its quantity.
    #[inline]
    pub(crate) fn best(&self) -> Option<(i64, i64)> {
        (self.best != NO_KEY).then_some((self.best, self.best_qty))
    }

    /// The quantity held at `key` (0 if none).
    #[inline]
    pub(crate) fn qty_at(&self, key: i64) -> i64 {
        if self.in_window(key) {
            self.qty[self.slot(key)]
        } else {
            let i = self.overflow.position(key);
            if i < self.overflow.len() && self.overflow.at(i).0 == key {
                self.overflow.at(i).1
            } else {
                0
            }
        }
    }

    /// Sets the absolute quantity at `key`; 0 removes the level.
    #[inline]
    pub(crate) fn set(&mut self, key: i64, qty: i64) {
        if qty == 0 {
            self.remove(key);
            return;
        }
        if !self.anchored() {
            self.base = key - self.anchor_offset();
            self.reach = self.span as u64;
        }
        if self.in_window(key) {
            // Branch-free: whether the level is new or an update is a coin flip on real feeds.
            let slot = self.slot(key);
            let old = std::mem::replace(&mut self.qty[slot], qty);
            self.in_window += usize::from(old == 0);
            self.bits.set(slot);
        } else {
            match self.overflow.upsert(key, qty) {
                Upsert::Stored => {}
                Upsert::StoredDroppedWorst => self.dropped += 1,
                Upsert::Dropped => {
                    // The worst level of all, and the best is above it: nothing else changes.
                    self.dropped += 1;
                    return;
                }
            }
        }
        if key >= self.best {
            self.best = key;
            self.best_qty = qty;
        }
    }

    #[inline]
    fn remove(&mut self, key: i64) {
        if self.in_window(key) {
            // A removal for a level we do not have is normal (the venue sends them); clearing
            // an empty slot is harmless, so no branch on it. The best level is always held, so
            // `key == best` below implies the slot was occupied.
            let slot = self.slot(key);
            let old = std::mem::replace(&mut self.qty[slot], 0);
            self.bits.clear(slot);
            self.in_window -= usize::from(old != 0);
        } else if !self.overflow.remove(key) {
            return;
        }
        if key == self.best {
            let in_window = self.window_highest_le(key - 1);
            let in_overflow = self
                .overflow
                .len()
                .checked_sub(1)
                .map(|i| self.overflow.at(i));
            (self.best, self.best_qty) = match (in_window, in_overflow) {
                (Some(k), Some((o, q))) if o > k => (o, q),
                (Some(k), _) => (k, self.qty[self.slot(k)]),
                (None, Some(level)) => level,
                (None, None) => (NO_KEY, 0),
            };
        }
    }

    /// Where in the window a freshly anchored best key goes: three quarters up.
    #[inline]
    fn anchor_offset(&self) -> i64 {
        self.span - self.span / 4
    }

    /// The highest key in the window that is `<= limit`.
    #[inline]
    pub(crate) fn window_highest_le(&self, limit: i64) -> Option<i64> {
        if !self.anchored() || limit < self.base || self.in_window == 0 {
            return None;
        }
        let n = self.span as usize;
        let off_hi = (limit - self.base).min(self.span - 1) as usize;
        let s0 = self.slot(self.base);
        let end = s0 + off_hi;
        let slot = if end < n {
            self.bits.highest_in(s0, end)
        } else {
            // The range wraps: its upper keys sit in the low slots.
            self.bits
                .highest_in(0, end - n)
                .or_else(|| self.bits.highest_in(s0, n - 1))
        }?;
        Some(self.base + (slot.wrapping_sub(s0) as u64 & self.mask) as i64)
    }

    /// Moves the window if the best key has drifted out of its middle band (or out of it).
    /// Called once per committed message.
    #[inline]
    pub(crate) fn maintain(&mut self) {
        if self.best == NO_KEY || !self.anchored() {
            return;
        }
        let off = self.best - self.base;
        if off < self.span / 2 || off >= self.span - self.span / 16 {
            self.recentre(self.best - self.anchor_offset());
        }
    }

    /// Re-anchors the window at `new_base`, moving levels between window and overflow.
    pub(crate) fn recentre(&mut self, new_base: i64) {
        let new_top = new_base + self.span - 1;
        // Overflow levels that fall inside the new window come out first, which also makes room
        // in the overflow for the levels the window is about to push out.
        self.overflow
            .take_range(new_base, new_top, &mut self.scratch);
        if self.anchored() {
            let old_top = self.base + self.span - 1;
            // Levels above the new top, then levels below the new base, best first.
            let mut limit = old_top;
            while let Some(k) = self.window_highest_le(limit) {
                if k <= new_top {
                    break;
                }
                self.evict(k);
                limit = k - 1;
            }
            limit = new_base - 1;
            while let Some(k) = self.window_highest_le(limit) {
                self.evict(k);
                limit = k - 1;
            }
        }
        self.base = new_base;
        self.reach = self.span as u64;
        // A scratch key cannot share a slot with a level still in the window: both lie in the
        // new window, which maps keys to slots one to one.
        for i in 0..self.scratch.len() {
            let (k, q) = self.scratch[i];
            let slot = self.slot(k);
            debug_assert_eq!(self.qty[slot], 0);
            self.qty[slot] = q;
            self.bits.set(slot);
            self.in_window += 1;
        }
        self.scratch.clear();
        self.recentres += 1;
    }

    /// Moves the window level at `key` to the overflow.
    fn evict(&mut self, key: i64) {
        let slot = self.slot(key);
        let q = self.qty[slot];
        self.qty[slot] = 0;
        self.bits.clear(slot);
        self.in_window -= 1;
        match self.overflow.upsert(key, q) {
            Upsert::Stored => {}
            Upsert::StoredDroppedWorst | Upsert::Dropped => self.dropped += 1,
        }
    }

    /// Removes every level; the window is re-anchored by the next level set.
    pub(crate) fn clear(&mut self) {
        let qty = &mut self.qty;
        self.bits.drain(|slot| qty[slot] = 0);
        self.overflow.clear();
        self.in_window = 0;
        self.reach = 0;
        self.best = NO_KEY;
        self.best_qty = 0;
    }

    /// The number of levels held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.in_window + self.overflow.len()
    }

    /// The number of levels held in the overflow.
    #[inline]
    pub(crate) fn overflow_len(&self) -> usize {
        self.overflow.len()
    }

    /// Levels lost because the overflow was full.
    #[inline]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// How many times the window has moved.
    #[inline]
    pub(crate) fn recentres(&self) -> u64 {
        self.recentres
    }

    /// The window's key range `[base, base + N)`, when anchored.
    #[inline]
    pub(crate) fn window(&self) -> Option<(i64, i64)> {
        self.anchored()
            .then_some((self.base, self.base + self.span))
    }

    /// Calls `f` with the best `max` levels as `(key, qty)`, best first; returns how many.
    ///
    /// The same levels as the first `max` of [`BookSide::iter`], found faster for the top of a
    /// book: it reads the window's occupancy a word (64 keys) at a time down from the best key
    /// and takes every set bit of a word in turn, where the iterator searches afresh for each
    /// level. A run of empty words is skipped with one search.
    #[inline]
    pub(crate) fn top(&self, max: usize, f: impl FnMut(i64, i64)) -> usize {
        self.top_at_or_below(i64::MAX, max, f)
    }

    /// [`BookSide::top`] for the levels with keys at or below `limit` only.
    #[inline]
    pub(crate) fn top_at_or_below(
        &self,
        limit: i64,
        max: usize,
        mut f: impl FnMut(i64, i64),
    ) -> usize {
        if max == 0 || self.best == NO_KEY {
            return 0;
        }
        if !self.in_window(self.best) {
            // The best is in the overflow above the window (until the next re-centre).
            let mut n = 0;
            for (k, q) in self.iter().filter(|&(k, _)| k <= limit).take(max) {
                f(k, q);
                n += 1;
            }
            return n;
        }
        // `best` is the highest key held anywhere, so nothing lies above it: start at the
        // highest window key within the limit, or in the overflow below the window.
        let mut n = 0;
        let mut next = if limit >= self.best {
            Some(self.best)
        } else {
            self.window_highest_le(limit)
        };
        while let Some(key) = next {
            let slot = self.slot(key);
            let bit = slot % 64;
            // The word's 64 slots hold 64 consecutive keys ending at `key - bit + 63`; those
            // below the window's base belong to the top of the window (wrapped) and are masked.
            let word_low = key - bit as i64;
            let mut m = self.bits.leaf(slot / 64) & (u64::MAX >> (63 - bit));
            if word_low < self.base {
                m &= u64::MAX << (self.base - word_low);
            }
            while m != 0 {
                let b = 63 - m.leading_zeros() as usize;
                f(word_low + b as i64, self.qty[slot - bit + b]);
                n += 1;
                if n == max {
                    return n;
                }
                m &= !(1 << b);
            }
            next = self.window_highest_le(word_low - 1);
        }
        // The window is exhausted: the rest from the overflow below it, best first.
        let mut i = self
            .overflow
            .position(self.base.min(limit.saturating_add(1)));
        while n < max && i > 0 {
            i -= 1;
            let (k, q) = self.overflow.at(i);
            f(k, q);
            n += 1;
        }
        n
    }

    /// The total quantity of the levels with keys at or above `limit` (saturating; quantities
    /// are never negative).
    ///
    /// No generic level walk: the window's part reads the occupancy words over the range and
    /// adds the quantities of their set bits (no per-level bookkeeping on the update path). Overflow levels in range (all outside the window) are summed from their sorted
    /// store, which is skipped with one comparison when none reaches `limit`.
    pub(crate) fn depth_at_or_above(&self, limit: i64) -> i64 {
        if limit > self.best {
            // Also the empty side: `best` is then `NO_KEY`, below any limit but its own.
            return 0;
        }
        let mut sum = 0;
        if self.overflow.max_key().is_some_and(|k| k >= limit) {
            sum = self.overflow.sum_from(self.overflow.position(limit));
        }
        if !self.anchored() || self.in_window == 0 {
            return sum;
        }
        // `best` is the highest key anywhere: nothing in the window lies above it.
        let lo = limit.max(self.base);
        let hi = self.best.min(self.base + self.span - 1);
        if lo > hi {
            return sum;
        }
        let (a, b) = (self.slot(lo), self.slot(hi));
        let window = if a <= b {
            self.window_sum(a, b)
        } else {
            // The range wraps: its upper keys sit in the low slots.
            let n = self.span as usize;
            self.window_sum(a, n - 1)
                .saturating_add(self.window_sum(0, b))
        };
        sum.saturating_add(window)
    }

    /// The total quantity of window slots `[a, b]` (`a <= b`), saturating.
    #[inline]
    fn window_sum(&self, a: usize, b: usize) -> i64 {
        self.bits.sum_occupied(a, b, &self.qty)
    }

    /// All levels as `(key, qty)`, best (highest key) first.
    pub(crate) fn iter(&self) -> SideLevels<'_> {
        let (above_start, limit) = if self.anchored() {
            let top = self.base + self.span - 1;
            (self.overflow.position(top + 1), top)
        } else {
            (0, NO_KEY)
        };
        SideLevels {
            side: self,
            stage: Stage::Above,
            next: self.overflow.len(),
            stop: above_start,
            limit,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Overflow levels above the window.
    Above,
    /// Window levels.
    Window,
    /// Overflow levels below the window.
    Below,
}

/// The levels of a side, best first: the overflow above the window, the window, then the
/// overflow below it. Allocates nothing.
#[derive(Debug, Clone)]
pub(crate) struct SideLevels<'a> {
    side: &'a BookSide,
    stage: Stage,
    /// One past the next overflow index to yield (counting down).
    next: usize,
    /// The overflow index at which the current overflow stage ends.
    stop: usize,
    /// The highest window key still to visit.
    limit: i64,
}

impl Iterator for SideLevels<'_> {
    type Item = (i64, i64);

    #[inline]
    fn next(&mut self) -> Option<(i64, i64)> {
        loop {
            match self.stage {
                Stage::Above => {
                    if self.next > self.stop {
                        self.next -= 1;
                        return Some(self.side.overflow.at(self.next));
                    }
                    self.stage = Stage::Window;
                }
                Stage::Window => {
                    if let Some(k) = self.side.window_highest_le(self.limit) {
                        self.limit = k - 1;
                        return Some((k, self.side.qty[self.side.slot(k)]));
                    }
                    self.stage = Stage::Below;
                    self.next = if self.side.anchored() {
                        self.side.overflow.position(self.side.base)
                    } else {
                        0
                    };
                }
                Stage::Below => {
                    if self.next > 0 {
                        self.next -= 1;
                        return Some(self.side.overflow.at(self.next));
                    }
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(s: &BookSide) -> Vec<(i64, i64)> {
        s.iter().collect()
    }

    #[test]
    fn best_follows_inserts_and_removals_across_window_and_overflow() {
        let mut s = BookSide::new(64, 16);
        s.set(1000, 5); // anchors: base = 1000 - 48
        assert_eq!(s.window(), Some((952, 1016)));
        s.set(990, 1);
        s.set(2000, 7); // far above the window: overflow, and the new best
        s.set(10, 3); // far below: overflow
        assert_eq!(s.best(), Some((2000, 7)));
        assert_eq!(s.overflow_len(), 2);
        assert_eq!(levels(&s), [(2000, 7), (1000, 5), (990, 1), (10, 3)]);
        s.set(2000, 0);
        assert_eq!(s.best(), Some((1000, 5)));
        s.set(1000, 0);
        s.set(990, 0);
        assert_eq!(s.best(), Some((10, 3)));
        s.set(10, 0);
        assert_eq!(s.best(), None);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn recentre_moves_levels_both_ways_and_keeps_them_all() {
        let mut s = BookSide::new(64, 64);
        for k in 100..140 {
            s.set(k, k);
        }
        s.set(300, 1);
        s.set(301, 2);
        let before = levels(&s);
        s.maintain(); // best 301 is far above the window
        let (base, top) = s.window().unwrap();
        assert!(base <= 301 && 301 < top, "window {base}..{top}");
        assert_eq!(levels(&s), before);
        assert_eq!(s.recentres(), 1);
        // Everything from 100..140 is now below the window, in the overflow.
        assert_eq!(s.overflow_len(), 40);
        s.set(301, 0);
        s.set(300, 0);
        s.maintain(); // best 139 is below the window: back down
        assert_eq!(s.overflow_len(), 0);
        assert_eq!(s.best(), Some((139, 139)));
        assert_eq!(levels(&s).len(), 40);
    }

    #[test]
    fn full_overflow_drops_the_worst_and_counts_it() {
        let mut s = BookSide::new(64, 2);
        s.set(1000, 1);
        for k in [10, 20, 30] {
            s.set(k, 1);
        }
        assert_eq!(s.dropped(), 1);
        assert_eq!(levels(&s), [(1000, 1), (30, 1), (20, 1)]);
    }

    /// Depth at or above each key of `s`, against a sum over its levels.
    fn assert_depths(s: &BookSide) {
        let all = levels(s);
        for &(limit, _) in &all {
            let want = all
                .iter()
                .filter(|&&(k, _)| k >= limit)
                .fold(0i64, |t, &(_, q)| t.saturating_add(q));
            assert_eq!(s.depth_at_or_above(limit), want, "limit {limit}");
        }
    }

    #[test]
    fn depth_sums_the_occupied_slots_and_saturates_on_huge_quantities() {
        let mut s = BookSide::new(1024, 256);
        for k in (1000..1700).step_by(3) {
            s.set(k, k);
        }
        s.set(5, 1); // far below: overflow
        assert_depths(&s);
        assert_eq!(
            s.depth_at_or_above(i64::MIN + 1),
            (1000..1700).step_by(3).sum::<i64>() + 1
        );
        for k in (1000..1700).step_by(30) {
            s.set(k, 0);
        }
        s.maintain();
        assert_depths(&s);
        // Quantities whose sum overflows: the total saturates.
        for k in [1002, 1300, 1301, 1303, 1600] {
            s.set(k, i64::MAX / 3);
        }
        assert_depths(&s);
        assert_eq!(s.depth_at_or_above(1000), i64::MAX);
        s.clear();
        s.set(10, 2);
        s.set(700, 3);
        assert_depths(&s);
        // A huge quantity set in the overflow, brought into the window by a re-centre.
        s.set(5_000, i64::MAX / 3);
        s.set(5_001, i64::MAX / 3);
        s.set(5_002, i64::MAX / 3);
        s.maintain();
        assert_eq!(
            s.window().map(|(lo, hi)| lo <= 5_000 && 5_002 < hi),
            Some(true)
        );
        assert_depths(&s);
        assert_eq!(s.depth_at_or_above(700), i64::MAX);
    }

    #[test]
    fn clear_forgets_everything_and_re_anchors() {
        let mut s = BookSide::new(64, 4);
        s.set(5, 1);
        s.set(500, 1);
        s.clear();
        assert_eq!(s.best(), None);
        assert_eq!(s.len(), 0);
        assert!(s.window().is_none());
        s.set(-7, 2);
        assert_eq!(levels(&s), [(-7, 2)]);
        assert_eq!(s.window(), Some((-55, 9)));
    }
}
