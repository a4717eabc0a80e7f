//! Merging the stages' histograms by name and rendering them: an aligned table, JSON and
//! `.hgrm` files. Everything here runs after the stages have finished; it allocates freely.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::hgrm::write_percentiles;
use super::{NamedHistogram, new_histogram};
use crate::runtime::StageReport;

/// The percentiles every summary reports, as quantiles, with their column titles.
const QUANTILES: [(f64, &str); 5] = [
    (0.50, "p50"),
    (0.90, "p90"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (0.9999, "p99.99"),
];

/// One histogram's summary, in ns. The JSON form of the report is a list of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySummary {
    /// Histogram name.
    pub name: String,
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p99_9_ns: u64,
    /// 99.99th percentile.
    pub p99_99_ns: u64,
    /// Largest value.
    pub max_ns: u64,
}

impl LatencySummary {
    /// Summarises `hist` under `name`. Percentiles are the highest value equivalent to the
    /// recorded one at the histogram's precision (the HdrHistogram convention); all zero if empty.
    pub fn of(name: &str, hist: &Histogram<u64>) -> LatencySummary {
        let q = |x: f64| {
            if hist.is_empty() {
                0
            } else {
                hist.value_at_quantile(x)
            }
        };
        LatencySummary {
            name: name.to_owned(),
            count: hist.len(),
            p50_ns: q(QUANTILES[0].0),
            p90_ns: q(QUANTILES[1].0),
            p99_ns: q(QUANTILES[2].0),
            p99_9_ns: q(QUANTILES[3].0),
            p99_99_ns: q(QUANTILES[4].0),
            max_ns: if hist.is_empty() { 0 } else { hist.max() },
        }
    }

    fn columns(&self) -> [u64; 6] {
        [
            self.p50_ns,
            self.p90_ns,
            self.p99_ns,
            self.p99_9_ns,
            self.p99_99_ns,
            self.max_ns,
        ]
    }
}

/// The JSON document of a report: `{"unit": "ns", "histograms": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyJson {
    /// Unit of every value: always `"ns"`.
    pub unit: String,
    /// One summary per merged histogram, in first-seen order.
    pub histograms: Vec<LatencySummary>,
}

/// Histograms merged by name, in the order names were first seen.
#[derive(Debug, Clone, Default)]
pub struct LatencyReport {
    merged: Vec<NamedHistogram>,
    /// Histograms that could not be merged (a value beyond the merge target's range), by name.
    notes: Vec<String>,
}

impl LatencyReport {
    /// Merges `histograms` by name.
    pub fn from_histograms<'a>(
        histograms: impl IntoIterator<Item = &'a NamedHistogram>,
    ) -> LatencyReport {
        let mut report = LatencyReport::default();
        for h in histograms {
            report.add(h);
        }
        report
    }

    /// Merges all histograms of all `stages` by name.
    pub fn from_stage_reports(stages: &[StageReport]) -> LatencyReport {
        LatencyReport::from_histograms(stages.iter().flat_map(|s| s.histograms.iter()))
    }

    /// Adds one histogram, merging it into an existing one of the same name.
    pub fn add(&mut self, h: &NamedHistogram) {
        let target = match self.merged.iter_mut().position(|m| m.name == h.name) {
            Some(i) => &mut self.merged[i],
            None => {
                // Merge targets may grow: this is report time, and a histogram built elsewhere
                // with wider bounds must not be refused.
                let mut hist = new_histogram();
                hist.auto(true);
                self.merged.push(NamedHistogram {
                    name: h.name.clone(),
                    hist,
                });
                let last = self.merged.len() - 1;
                &mut self.merged[last]
            }
        };
        if let Err(e) = target.hist.add(&h.hist) {
            self.notes
                .push(format!("histogram {}: part not merged: {e:?}", h.name));
        }
    }

    /// The merged histograms.
    pub fn histograms(&self) -> &[NamedHistogram] {
        &self.merged
    }

    /// The merged histogram called `name`.
    pub fn get(&self, name: &str) -> Option<&NamedHistogram> {
        self.merged.iter().find(|m| m.name == name)
    }

    /// Problems met while merging (empty when all went in).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// One summary per merged histogram.
    pub fn summaries(&self) -> Vec<LatencySummary> {
        self.merged
            .iter()
            .map(|m| LatencySummary::of(&m.name, &m.hist))
            .collect()
    }

    /// The summaries as an aligned text table: name left-aligned, numbers right-aligned, each
    /// latency with its own unit (ns, µs, ms, s) at three significant digits.
    pub fn table(&self) -> String {
        let header: Vec<&str> = ["histogram", "count"]
            .into_iter()
            .chain(QUANTILES.iter().map(|&(_, t)| t))
            .chain(["max"])
            .collect();
        let rows: Vec<Vec<String>> = self
            .summaries()
            .iter()
            .map(|s| {
                let mut row = vec![s.name.clone(), s.count.to_string()];
                row.extend(s.columns().iter().map(|&v| format_ns(v)));
                row
            })
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut text = String::new();
            for (i, (cell, w)) in cells.zip(&widths).enumerate() {
                if i == 0 {
                    let _ = write!(text, "{cell:<w$}");
                } else {
                    let _ = write!(text, "  {cell:>w$}");
                }
            }
            out.push_str(&text);
            out.push('\n');
        };
        line(&mut header.iter().copied());
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        line(&mut rule.iter().map(String::as_str));
        for row in &rows {
            line(&mut row.iter().map(String::as_str));
        }
        out
    }

    /// The report as a JSON document ([`LatencyJson`]).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(&LatencyJson {
            unit: "ns".to_owned(),
            histograms: self.summaries(),
        })
    }

    /// Writes one `<name>.hgrm` percentile file per merged histogram into `dir` (created if
    /// missing), values in microseconds. Characters other than ASCII letters, digits, `.`, `-`
    /// and `_` in names become `_`. Returns the paths written.
    pub fn write_hgrm_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut paths = Vec::with_capacity(self.merged.len());
        for m in &self.merged {
            let path = dir.join(format!("{}.hgrm", file_stem(&m.name)));
            let mut out = BufWriter::new(File::create(&path)?);
            write_percentiles(&m.hist, 5, 1_000.0, &mut out)?;
            io::Write::flush(&mut out)?;
            paths.push(path);
        }
        Ok(paths)
    }
}

fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Never a hidden file, never `..`.
    if stem.is_empty() || stem.starts_with('.') {
        format!("h{stem}")
    } else {
        stem
    }
}

/// Formats a duration in ns with a unit that keeps three significant digits: `850 ns`,
/// `12.3 µs`, `4.56 ms`, `1.20 s`. Thresholds sit where rounding would carry into a fourth digit,
/// so 9 999 ns prints as `10.0 µs` and 999 999 ns as `1.00 ms`.
pub fn format_ns(ns: u64) -> String {
    if ns < 1_000 {
        return format!("{ns} ns");
    }
    let v = ns as f64;
    let (scaled, unit) = if v < 999_500.0 {
        (v / 1e3, "µs")
    } else if v < 999_500_000.0 {
        (v / 1e6, "ms")
    } else {
        (v / 1e9, "s")
    };
    let decimals = if scaled < 9.995 {
        2
    } else if scaled < 99.95 {
        1
    } else {
        0
    };
    format!("{scaled:.decimals$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_three_significant_digits() {
        assert_eq!(format_ns(0), "0 ns");
        assert_eq!(format_ns(850), "850 ns");
        assert_eq!(format_ns(12_345), "12.3 µs");
        assert_eq!(format_ns(4_560_000), "4.56 ms");
        assert_eq!(format_ns(1_200_000_000), "1.20 s");
        assert_eq!(format_ns(9_999), "10.0 µs");
        assert_eq!(format_ns(99_990), "100 µs");
        assert_eq!(format_ns(999_999), "1.00 ms");
        assert_eq!(format_ns(59_999_999_999), "60.0 s");
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("hop.feed_book"), "hop.feed_book");
        assert_eq!(file_stem("../etc/passwd"), "h.._etc_passwd");
        assert_eq!(file_stem("a b/c"), "a_b_c");
        assert_eq!(file_stem(""), "h");
    }

    #[test]
    fn merges_by_name_in_first_seen_order() {
        let mut a = NamedHistogram::new("book");
        let mut b = NamedHistogram::new("feed");
        let mut c = NamedHistogram::new("book");
        a.record(100);
        b.record(200);
        c.record(300);
        c.record(400);
        let r = LatencyReport::from_histograms([&a, &b, &c]);
        let names: Vec<&str> = r.histograms().iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["book", "feed"]);
        assert_eq!(r.get("book").map(|h| h.count()), Some(3));
        // Within the histograms' precision (2 significant digits).
        let max = r.summaries()[0].max_ns;
        assert!((400..=404).contains(&max), "{max}");
        assert!(r.notes().is_empty());
    }
}
