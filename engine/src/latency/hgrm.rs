//! The `.hgrm` percentile distribution format, for plotting.
//!
//! This is the text layout the HdrHistogram family prints as its "percentile distribution" and
//! that the common plotting tools read: a header, then one row per percentile step with the
//! value (scaled to the output unit), the percentile as a fraction, the cumulative count and
//! `1/(1-percentile)` (left out on the 100% row, where it is infinite), then a footer with mean,
//! standard deviation, max, total count and the histogram's bucket layout. Steps halve the
//! remaining distance to 100% `ticks_per_half_distance` times each, so the tail gets the rows.

use std::io::{self, Write};

use hdrhistogram::Histogram;

/// Writes `hist`'s percentile distribution in `.hgrm` layout. Values are divided by
/// `value_scale` (1000.0 turns ns into µs) and printed with three decimals; the report uses 5
/// ticks per half distance, the usual choice.
pub fn write_percentiles(
    hist: &Histogram<u64>,
    ticks_per_half_distance: u32,
    value_scale: f64,
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0u64;
    if !hist.is_empty() {
        for step in hist.iter_quantiles(ticks_per_half_distance.max(1)) {
            total += step.count_since_last_iteration();
            let value = step.value_iterated_to() as f64 / value_scale;
            let q = step.quantile_iterated_to();
            if q < 1.0 {
                writeln!(
                    out,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                )?;
            } else {
                writeln!(out, "{value:12.3} {q:2.12} {total:10}")?;
            }
        }
    }
    writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        hist.mean() / value_scale,
        hist.stdev() / value_scale
    )?;
    writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        hist.max() as f64 / value_scale,
        hist.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        hist.buckets(),
        sub_bucket_count(hist.sigfig())
    )
}

/// The library sizes sub-buckets as the next power of two at or above `2 * 10^sigfig` (single
/// unit resolution up to that value); it does not expose the number, so it is derived here.
fn sub_bucket_count(sigfig: u8) -> u64 {
    (2 * 10u64.pow(u32::from(sigfig))).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::new_histogram;

    #[test]
    fn sub_buckets_match_the_library_layout_for_three_digits() {
        assert_eq!(sub_bucket_count(3), 2048);
        assert_eq!(sub_bucket_count(2), 256);
    }

    #[test]
    fn empty_histogram_writes_header_and_footer_only() {
        let h = new_histogram();
        let mut out = Vec::new();
        write_percentiles(&h, 5, 1.0, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
        assert_eq!(text.lines().filter(|l| l.starts_with("#[")).count(), 3);
        assert!(text.contains("Total count    =            0]"));
    }
}
