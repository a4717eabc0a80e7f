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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
///
/// The counts are atomics with one writer (the recorder's stage), each incremented by a relaxed
/// load and store, which compile to the plain increment a `u64` would; [`Recorder::live`]
/// shares them read-only with the metrics thread, which reads them while the run goes.
#[derive(Debug)]
pub struct Recorder {
    name: String,
    counts: Arc<[AtomicU64]>,
    /// Where a value past the last slot counts: the slot of the histogram's highest trackable
    /// value, as `hdrhistogram` clamps.
    clamp_slot: usize,
    total: u64,
}

/// Counts allocated and written once, so their pages are mapped before the run.
fn resident_counts(len: usize) -> Arc<[AtomicU64]> {
    (0..len).map(|_| AtomicU64::new(0)).collect()
}

impl Clone for Recorder {
    /// A recorder with the same name and counts so far, counting apart from this one from now on.
    fn clone(&self) -> Recorder {
        let counts = resident_counts(self.counts.len());
        for (to, from) in counts.iter().zip(self.counts.iter()) {
            to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        Recorder {
            name: self.name.clone(),
            counts,
            clamp_slot: self.clamp_slot,
            total: self.total,
        }
    }
}

impl Recorder {
    /// An empty recorder reported as `name`. Allocates its counts here (about 30 KiB), and
    /// writes them once so their pages are mapped before the run.
    pub fn new(name: impl Into<String>) -> Recorder {
        let shape = new_histogram();
        Recorder {
            name: name.into(),
            counts: resident_counts(shape.distinct_values()),
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
        if let Some(c) = self.counts.get(i) {
            // One writer: a load and a store, not a read-modify-write.
            c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
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

    /// A read-only view of the counts as they are being recorded, for the metrics thread.
    pub fn live(&self) -> LiveLatency {
        LiveLatency {
            name: self.name.clone(),
            counts: Arc::clone(&self.counts),
        }
    }

    /// The values recorded so far as a report histogram; the recorder starts again empty.
    /// Off the hot path (at the end of a run): builds an `hdrhistogram`.
    pub fn take(&mut self) -> NamedHistogram {
        let mut hist: Histogram<u64> = new_histogram();
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.swap(0, Ordering::Relaxed);
            if n != 0 {
                hist.saturating_record_n(slot_value(i), n);
            }
        }
        self.total = 0;
        NamedHistogram {
            name: self.name.clone(),
            hist,
        }
    }
}

/// A [`Recorder`]'s counts read while it records (see [`Recorder::live`]): each slot is read
/// on its own, so a read taken while values arrive may count a value in one slot and not yet
/// in another — right for monitoring, which is its use.
#[derive(Debug, Clone)]
pub struct LiveLatency {
    name: String,
    counts: Arc<[AtomicU64]>,
}

/// A [`LiveLatency`] read into cumulative buckets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LatencyBuckets {
    /// Per upper bound given, the values at or below it (each slot counted at its lowest
    /// value, 1 % resolution).
    pub cumulative: Vec<u64>,
    /// Values recorded.
    pub count: u64,
    /// Their sum, ns (each slot's values at its lowest value).
    pub sum_ns: u128,
}

impl LatencyBuckets {
    /// Adds `other`'s counts (read at the same bounds) to these.
    pub fn add(&mut self, other: &LatencyBuckets) {
        if self.cumulative.len() < other.cumulative.len() {
            self.cumulative.resize(other.cumulative.len(), 0);
        }
        for (a, b) in self.cumulative.iter_mut().zip(&other.cumulative) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
    }
}

impl LiveLatency {
    /// The recorder's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The counts now, cumulated at each of `bounds_ns` (ascending).
    pub fn buckets(&self, bounds_ns: &[u64]) -> LatencyBuckets {
        let mut cumulative = vec![0u64; bounds_ns.len()];
        let (mut count, mut sum_ns) = (0u64, 0u128);
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let v = slot_value(i);
            count += n;
            sum_ns += u128::from(v) * u128::from(n);
            for (b, cum) in bounds_ns.iter().zip(cumulative.iter_mut()) {
                if v <= *b {
                    *cum += n;
                }
            }
        }
        LatencyBuckets {
            cumulative,
            count,
            sum_ns,
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

    #[test]
    fn the_live_view_reads_the_counts_as_they_are_recorded() {
        let mut r = Recorder::new("r");
        let live = r.live();
        assert_eq!(live.name(), "r");
        for v in [100, 900, 1_000, 5_000, 2_000_000] {
            r.record(v);
        }
        let b = live.buckets(&[1_000, 10_000, 1_000_000_000]);
        assert_eq!(b.count, 5);
        assert_eq!(b.cumulative, [3, 4, 5]);
        // Each value at its slot's lowest value: within 1 %.
        let exact = 100 + 900 + 1_000 + 5_000 + 2_000_000;
        assert!(
            b.sum_ns <= exact && b.sum_ns * 100 >= exact * 99,
            "{}",
            b.sum_ns
        );
        // A clone counts apart; taking the report empties what the live view sees.
        let mut c = r.clone();
        c.record(1);
        assert_eq!(live.buckets(&[]).count, 5);
        let _ = r.take();
        assert_eq!(live.buckets(&[]).count, 0);
        assert_eq!(c.take().hist.len(), 6);
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
