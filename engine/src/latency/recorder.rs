//! [`Recorder`]: the hot path's side of a latency histogram.
//!
//! Why: a stage records a dozen values per message, and `hdrhistogram`'s `record` is general
//! (any bounds, any precision, resizing, min/max and total upkeep): about 45 instructions a
//! value, 6 % of a fused replay's instructions in a profile. A recorder keeps only the count
//! array, laid out exactly as an `hdrhistogram` with the engine's fixed bounds lays out its own
//! ([`LOWEST_NS`] = 1, [`SIGNIFICANT_DIGITS`] = 2: buckets of 128 sub-buckets, each bucket twice
//! as wide as the one before), so a value's slot is a few shifts away and recording is an
//! increment. [`Recorder::take`] turns the counts into the `hdrhistogram` the report reads,
//! by recording each slot's lowest value with its count: the result is the histogram that
//! recording every value into it would have given (a test holds the two equal).

use hdrhistogram::Histogram;

#[cfg(test)]
use super::HIGHEST_NS;
use super::{LOWEST_NS, NamedHistogram, SIGNIFICANT_DIGITS, new_histogram};

/// log2 of the sub-buckets per bucket: 2 significant digits need 200 distinct values in the
/// first bucket, so 256.
const SUB_BUCKET_BITS: u32 = 8;
/// Values below this share bucket 0 with unit resolution.
const SUB_BUCKET_MASK: u64 = (1 << SUB_BUCKET_BITS) - 1;
/// Sub-buckets used per bucket after the first (the lower half repeats the bucket before).
const HALF_BITS: u32 = SUB_BUCKET_BITS - 1;

// The layout below is that of these bounds and precision.
const _: () = assert!(LOWEST_NS == 1 && SIGNIFICANT_DIGITS == 2);

/// The count slot of `value` (at most [`HIGHEST_NS`]): bucket `b` is the value's magnitude
/// above the first bucket's, and the slot is `b` half-buckets in, plus the value's top bits.
#[inline]
fn slot(value: u64) -> usize {
    let bucket = (64 - SUB_BUCKET_BITS) - (value | SUB_BUCKET_MASK).leading_zeros();
    ((bucket << HALF_BITS) as usize) + (value >> bucket) as usize
}

/// The lowest value that lands in `slot`.
fn slot_value(slot: usize) -> u64 {
    let first = 1usize << SUB_BUCKET_BITS;
    if slot < first {
        return slot as u64;
    }
    let bucket = (slot >> HALF_BITS) - 1;
    let sub = (slot & ((1 << HALF_BITS) - 1)) + (1 << HALF_BITS);
    (sub as u64) << bucket
}

/// Latency counts in ns, recorded on the hot path; see the module docs. Never allocates after
/// [`Recorder::new`], never fails: a value past the last slot counts as [`HIGHEST_NS`](super::HIGHEST_NS), as
/// `hdrhistogram` clamps it.
#[derive(Debug, Clone)]
pub struct Recorder {
    name: String,
    counts: Box<[u64]>,
    /// Where a value past the last slot counts: the slot of the histogram's highest trackable
    /// value, as `hdrhistogram` clamps.
    clamp_slot: usize,
    total: u64,
}

impl Recorder {
    /// An empty recorder reported as `name`. Allocates its counts here (about 30 KiB), and
    /// writes them once so their pages are mapped before the run.
    pub fn new(name: impl Into<String>) -> Recorder {
        let shape = new_histogram();
        Recorder {
            name: name.into(),
            counts: pinion_core::mem::resident_slice(0u64, shape.distinct_values()),
            clamp_slot: slot(shape.high()),
            total: 0,
        }
    }

    /// Records one value in ns.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        let i = slot(ns);
        let i = if i < self.counts.len() {
            i
        } else {
            self.clamp_slot
        };
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.total += 1;
    }

    /// Records the time from `start_ns` to `end_ns` (engine clock); an end before the start
    /// records 0.
    #[inline]
    pub fn record_between(&mut self, start_ns: u64, end_ns: u64) {
        self.record(end_ns.saturating_sub(start_ns));
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The values recorded so far as a report histogram; the recorder starts again empty.
    /// Off the hot path (at the end of a run): builds an `hdrhistogram`.
    pub fn take(&mut self) -> NamedHistogram {
        let mut hist: Histogram<u64> = new_histogram();
        for (i, c) in self.counts.iter_mut().enumerate() {
            if *c != 0 {
                hist.saturating_record_n(slot_value(i), *c);
                *c = 0;
            }
        }
        self.total = 0;
        NamedHistogram {
            name: self.name.clone(),
            hist,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The same values recorded straight into an `hdrhistogram`.
    fn direct(values: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram();
        for &v in values {
            h.saturating_record(v);
        }
        h
    }

    fn via_recorder(values: &[u64]) -> Histogram<u64> {
        let mut r = Recorder::new("r");
        for &v in values {
            r.record(v);
        }
        assert_eq!(r.count(), values.len() as u64);
        let h = r.take().hist;
        assert_eq!(r.count(), 0);
        h
    }

    fn same(a: &Histogram<u64>, b: &Histogram<u64>) {
        assert_eq!(a.len(), b.len());
        assert_eq!(a.min(), b.min());
        assert_eq!(a.max(), b.max());
        assert_eq!(a.mean(), b.mean());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0] {
            assert_eq!(a.value_at_quantile(q), b.value_at_quantile(q), "at {q}");
        }
        let counts = |h: &Histogram<u64>| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(a), counts(b));
    }

    #[test]
    fn slots_are_hdrhistograms_own() {
        let h = new_histogram();
        for v in (0..5_000).chain([
            HIGHEST_NS,
            HIGHEST_NS - 1,
            1 << 20,
            (1 << 20) - 1,
            (1 << 20) + 1,
            123_456_789,
        ]) {
            let s = slot(v);
            assert!(h.equivalent(slot_value(s), v), "{v} in slot {s}");
            assert_eq!(h.lowest_equivalent(v), slot_value(s), "{v}");
        }
        assert!(slot(h.high()) < h.distinct_values());
        assert!(h.high() >= HIGHEST_NS);
    }

    #[test]
    fn edges_and_clamping() {
        let values = [0, 1, 255, 256, 257, 511, 512, 1_500, HIGHEST_NS, u64::MAX];
        same(&via_recorder(&values), &direct(&values));
        let mut r = Recorder::new("r");
        r.record_between(10, 5);
        assert_eq!(r.take().hist.count_at(0), 1);
    }

    proptest! {
        #[test]
        fn as_if_recorded_into_hdrhistogram(
            values in proptest::collection::vec(
                prop_oneof![0u64..2_000, 0u64..200_000, 0u64..100_000_000_000, any::<u64>()],
                1..300,
            ),
        ) {
            same(&via_recorder(&values), &direct(&values));
        }
    }
}
