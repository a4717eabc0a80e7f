//! [`Overflow`]: the bounded, sorted store for the levels of a book side that lie outside its
//! window.
//!
//! Levels are `(key, qty)` pairs kept sorted by key, ascending, in storage allocated once at
//! construction. The key is the side's ordering key (see [`crate::side`]): higher is better, so
//! the best overflow level is the last one and the worst the first.
//!
//! When the store is full, the worst level (lowest key, counting the one being inserted) is
//! dropped and counted: the book then lacks a level far from the touch, never one near it.
//! Invariant: `len <= capacity`, keys strictly increasing, no zero quantity.

use pinion_core::mem::prefault_spare;

/// A bounded sorted array of `(key, qty)` levels.
#[derive(Debug, Clone)]
pub(crate) struct Overflow {
    keys: Vec<i64>,
    qtys: Vec<i64>,
    capacity: usize,
}

/// What happened to a level offered to a full store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upsert {
    /// Stored (inserted or updated), nothing lost.
    Stored,
    /// Stored, and the previously worst level was dropped to make room.
    StoredDroppedWorst,
    /// Not stored: it was the worst of all and the store is full.
    Dropped,
}

impl Overflow {
    /// An empty store of `capacity` levels; the only allocation it ever makes.
    pub(crate) fn new(capacity: usize) -> Self {
        let mut keys = Vec::with_capacity(capacity);
        let mut qtys = Vec::with_capacity(capacity);
        prefault_spare(&mut keys, 0);
        prefault_spare(&mut qtys, 0);
        Self {
            keys,
            qtys,
            capacity,
        }
    }

    /// The number of levels held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key and quantity at position `i` (ascending key order).
    #[inline]
    pub(crate) fn at(&self, i: usize) -> (i64, i64) {
        (self.keys[i], self.qtys[i])
    }

    /// The highest key held.
    #[inline]
    pub(crate) fn max_key(&self) -> Option<i64> {
        self.keys.last().copied()
    }

    /// The number of keys below `key`: the position where `key` is or would be.
    #[inline]
    pub(crate) fn position(&self, key: i64) -> usize {
        self.keys.partition_point(|&k| k < key)
    }

    /// The total quantity of the levels from position `i` up (saturating).
    #[inline]
    pub(crate) fn sum_from(&self, i: usize) -> i64 {
        self.qtys[i..].iter().fold(0, |s, &q| s.saturating_add(q))
    }

    /// Sets the quantity at `key` (`qty > 0`), inserting it if absent.
    pub(crate) fn upsert(&mut self, key: i64, qty: i64) -> Upsert {
        let i = self.position(key);
        if i < self.keys.len() && self.keys[i] == key {
            self.qtys[i] = qty;
            return Upsert::Stored;
        }
        if self.keys.len() < self.capacity {
            self.keys.insert(i, key);
            self.qtys.insert(i, qty);
            return Upsert::Stored;
        }
        if i == 0 {
            return Upsert::Dropped;
        }
        // Drop the worst (index 0) and insert at i-1 in the shifted array: one memmove.
        self.keys.copy_within(1..i, 0);
        self.qtys.copy_within(1..i, 0);
        self.keys[i - 1] = key;
        self.qtys[i - 1] = qty;
        Upsert::StoredDroppedWorst
    }

    /// Removes `key`; returns whether it was there.
    pub(crate) fn remove(&mut self, key: i64) -> bool {
        let i = self.position(key);
        if i < self.keys.len() && self.keys[i] == key {
            self.keys.remove(i);
            self.qtys.remove(i);
            true
        } else {
            false
        }
    }

    /// The quantity at `key`, if held.
    #[cfg(test)]
    pub(crate) fn get(&self, key: i64) -> Option<i64> {
        let i = self.position(key);
        (i < self.keys.len() && self.keys[i] == key).then(|| self.qtys[i])
    }

    /// Moves the levels with keys in `[lo, hi]` out into `out` (cleared first), keeping order.
    /// `out` must have room for `capacity` levels so this never allocates.
    pub(crate) fn take_range(&mut self, lo: i64, hi: i64, out: &mut Vec<(i64, i64)>) {
        out.clear();
        let a = self.position(lo);
        let b = self.keys.partition_point(|&k| k <= hi);
        if a >= b {
            return;
        }
        out.extend(
            self.keys[a..b]
                .iter()
                .copied()
                .zip(self.qtys[a..b].iter().copied()),
        );
        self.keys.drain(a..b);
        self.qtys.drain(a..b);
    }

    /// Removes every level.
    pub(crate) fn clear(&mut self) {
        self.keys.clear();
        self.qtys.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_sorted_and_updates_in_place() {
        let mut o = Overflow::new(8);
        for k in [5, -3, 9, 0] {
            assert_eq!(o.upsert(k, k.abs() + 1), Upsert::Stored);
        }
        assert_eq!(o.upsert(9, 42), Upsert::Stored);
        let keys: Vec<i64> = (0..o.len()).map(|i| o.at(i).0).collect();
        assert_eq!(keys, [-3, 0, 5, 9]);
        assert_eq!(o.get(9), Some(42));
        assert!(o.remove(0));
        assert!(!o.remove(0));
        assert_eq!(o.max_key(), Some(9));
    }

    #[test]
    fn full_store_drops_the_worst_level() {
        let mut o = Overflow::new(3);
        for k in [10, 20, 30] {
            o.upsert(k, 1);
        }
        // Worse than everything held: not stored.
        assert_eq!(o.upsert(5, 1), Upsert::Dropped);
        // Better than the worst: the worst (10) goes.
        assert_eq!(o.upsert(25, 2), Upsert::StoredDroppedWorst);
        let keys: Vec<i64> = (0..o.len()).map(|i| o.at(i).0).collect();
        assert_eq!(keys, [20, 25, 30]);
        assert_eq!(o.upsert(40, 3), Upsert::StoredDroppedWorst);
        let keys: Vec<i64> = (0..o.len()).map(|i| o.at(i).0).collect();
        assert_eq!(keys, [25, 30, 40]);
        assert_eq!(o.get(40), Some(3));
    }

    #[test]
    fn take_range_moves_a_slice_out() {
        let mut o = Overflow::new(8);
        for k in [1, 4, 6, 8, 12] {
            o.upsert(k, k);
        }
        let mut out = Vec::with_capacity(8);
        o.take_range(4, 8, &mut out);
        assert_eq!(out, [(4, 4), (6, 6), (8, 8)]);
        assert_eq!(o.len(), 2);
        o.take_range(13, 20, &mut out);
        assert!(out.is_empty());
    }
}
