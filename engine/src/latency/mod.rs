//! Latency histograms: owned by the stages while they run, merged only for the report.
//!
//! Each stage creates its [`Recorder`]s at start-up with fixed bounds ([`LOWEST_NS`] …
//! [`HIGHEST_NS`], [`SIGNIFICANT_DIGITS`] significant digits), so recording never allocates and
//! never fails: a value past the top is clamped to it (a one-minute latency is already far
//! outside anything the engine should see, and the report's max shows it). At the end each
//! recorder becomes a [`NamedHistogram`], an `hdrhistogram` with the same bounds. No histogram is
//! shared between threads while the run is going; [`LatencyReport`] merges them by name
//! afterwards and renders a table, JSON and `.hgrm` files.

mod hgrm;
mod recorder;
mod report;

use hdrhistogram::Histogram;

pub use hgrm::write_percentiles;
pub use recorder::{LatencyBuckets, LiveLatency, Recorder};
pub use report::{LatencyJson, LatencyReport, LatencySummary, format_ns};

/// Lowest value distinguished from zero, in ns.
pub const LOWEST_NS: u64 = 1;
/// Highest value recorded, in ns (60 s); anything larger is clamped to it.
pub const HIGHEST_NS: u64 = 60_000_000_000;
/// Value precision: 2 significant digits (values within 1 %; at 2 µs the buckets are 8 ns
/// wide). With 3 digits each histogram is 10× larger (about 200 KiB), the dozen histograms of a
/// fused replay no longer fit in L2 beside the rings and books, and recording into them was
/// 11 % of the thread's time in a profile of one; with 2 digits the hot buckets of all of them
/// take about 100 KiB.
pub const SIGNIFICANT_DIGITS: u8 = 2;

/// A latency histogram in nanoseconds with the name it is reported under (`"book.apply"`,
/// `"hop.feed_book"`, `"tick_to_trade"`). Histograms with the same name are merged in the report.
#[derive(Debug, Clone)]
pub struct NamedHistogram {
    /// Report name; the `.hgrm` file is named after it.
    pub name: String,
    /// The values, in ns.
    pub hist: Histogram<u64>,
}

impl NamedHistogram {
    /// A histogram with the engine's fixed bounds and auto-resize off. Allocates once, here
    /// (about 25 KiB).
    pub fn new(name: impl Into<String>) -> NamedHistogram {
        NamedHistogram {
            name: name.into(),
            hist: new_histogram(),
        }
    }

    /// Records one value in ns. Never allocates, never fails (values past [`HIGHEST_NS`] are
    /// clamped).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.hist.saturating_record(ns);
    }

    /// Records the time from `start_ns` to `end_ns` (engine clock); an end before the start
    /// (stamps from a clock that is not the engine's) records 0.
    #[inline]
    pub fn record_between(&mut self, start_ns: u64, end_ns: u64) {
        self.record(end_ns.saturating_sub(start_ns));
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }
}

/// An empty histogram with the engine's fixed bounds and auto-resize off.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy the library's preconditions (low >= 1,
    // high >= 2 * low, sigfig <= 5), so creation cannot fail.
    let mut h = match Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS) {
        Ok(h) => h,
        Err(e) => unreachable!("constant histogram bounds rejected: {e:?}"),
    };
    h.auto(false);
    // The counts are a zeroed allocation whose pages the kernel maps on first write: without
    // this, the first value landing in each 4 KiB of buckets takes a page fault mid-run. A
    // recorded value (a store the optimiser cannot prove redundant) and a full clear write
    // every count now, at start-up.
    h.saturating_record(std::hint::black_box(LOWEST_NS));
    h.reset();
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_within_bounds_and_clamps_outliers_without_growing() {
        let mut h = NamedHistogram::new("x");
        let size = h.hist.distinct_values();
        h.record(0);
        h.record(1_500);
        h.record(u64::MAX);
        h.record_between(10, 5);
        assert_eq!(h.count(), 4);
        assert!(!h.hist.is_auto_resize());
        assert_eq!(h.hist.distinct_values(), size);
        assert!(h.hist.equivalent(h.hist.max(), HIGHEST_NS));
        assert_eq!(h.hist.count_at(0), 2);
        assert!(h.hist.equivalent(h.hist.value_at_quantile(0.6), 1_500));
    }
}
