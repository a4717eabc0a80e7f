//! The host's own stalls, measured: the floor under every latency figure taken on it.
//!
//! A thread pinned to a core does nothing but read the engine's clock. Two reads normally lie a
//! few tens of nanoseconds apart; any longer gap is time the thread did not run: an interrupt,
//! another task, the hypervisor taking the virtual CPU, an SMI. A pipeline thread on that core
//! loses the same moments.
//!
//! What matters for a latency percentile is not how many gaps there are but how likely an event
//! is to arrive during one, and how long it then waits: an event arriving at a random moment
//! inside a gap of length `g` waits the rest of it, so
//!
//! ```text
//! P(wait >= d) = sum over gaps g of max(0, g - d) / wall time
//! ```
//!
//! [`JitterReport::wait_quantile`] inverts that. If the `p`-quantile of this wait is above a
//! latency goal on a core the event must pass, no code on that host meets the goal at `p`.

use std::thread;
use std::time::Duration;

use super::clock::now_ns;
use super::placement::{PinOutcome, pin_current_thread};

/// Gaps shorter than this are the clock read itself and the loop, not stalls.
pub const DEFAULT_MIN_GAP_NS: u64 = 1_000;

/// Gaps kept per core; a longer run counts the rest in [`JitterReport::gaps_not_kept`].
const MAX_GAPS: usize = 1 << 20;

/// What one core's clock-reading thread saw.
#[derive(Clone, Debug)]
pub struct JitterReport {
    /// The core the thread was pinned to.
    pub core: usize,
    /// Whether the pin took.
    pub pin: PinOutcome,
    /// From the first read to the last, in ns.
    pub wall_ns: u64,
    /// Clock reads.
    pub reads: u64,
    /// The gaps of at least `min_gap_ns`, in ns, in the order seen.
    pub gaps: Vec<u64>,
    /// Gaps beyond the first [`MAX_GAPS`] (counted, not kept).
    pub gaps_not_kept: u64,
    /// The shortest gap kept.
    pub min_gap_ns: u64,
}

impl JitterReport {
    /// The longest gap, in ns.
    pub fn max_gap_ns(&self) -> u64 {
        self.gaps.iter().copied().max().unwrap_or(0)
    }

    /// How many gaps were at least `d` ns long.
    pub fn gaps_at_least(&self, d: u64) -> usize {
        self.gaps.iter().filter(|&&g| g >= d).count()
    }

    /// The share of the wall time spent in gaps of at least `d` ns.
    pub fn lost_share(&self, d: u64) -> f64 {
        let lost: u64 = self.gaps.iter().filter(|&&g| g >= d).sum();
        lost as f64 / self.wall_ns.max(1) as f64
    }

    /// The probability that an event arriving at a random moment waits at least `d` ns for this
    /// thread to run again.
    pub fn p_wait_at_least(&self, d: u64) -> f64 {
        let excess: u64 = self.gaps.iter().map(|&g| g.saturating_sub(d)).sum();
        excess as f64 / self.wall_ns.max(1) as f64
    }

    /// The smallest wait `d` (in ns) with `P(wait >= d) <= 1 - q`: the `q`-quantile of the wait
    /// of an event arriving at a random moment (0 when no gap reaches it).
    pub fn wait_quantile(&self, q: f64) -> u64 {
        let tail = 1.0 - q;
        // `p_wait_at_least` falls as `d` grows: bisect on it.
        let (mut lo, mut hi) = (0, self.max_gap_ns());
        if self.p_wait_at_least(lo) <= tail {
            return 0;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.p_wait_at_least(mid) <= tail {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }
}

/// Runs one clock-reading thread per core in `cores`, all at once, for `duration`, and returns
/// what each saw. Gaps shorter than `min_gap_ns` are not kept.
pub fn measure(
    cores: &[usize],
    allowed: &[usize],
    duration: Duration,
    min_gap_ns: u64,
) -> Vec<JitterReport> {
    let handles: Vec<_> = cores
        .iter()
        .map(|&core| {
            let allowed = allowed.to_vec();
            thread::Builder::new()
                .name(format!("jitter-{core}"))
                .spawn(move || {
                    let pin = pin_current_thread(core, &allowed);
                    spin(core, pin, duration, min_gap_ns)
                })
        })
        .collect();
    handles
        .into_iter()
        .zip(cores)
        .map(|(handle, &core)| {
            let failed = |why: String| JitterReport {
                core,
                pin: PinOutcome::Failed(why),
                wall_ns: 0,
                reads: 0,
                gaps: Vec::new(),
                gaps_not_kept: 0,
                min_gap_ns,
            };
            match handle {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|_| failed("the measuring thread panicked".into())),
                Err(e) => failed(format!("spawning the measuring thread: {e}")),
            }
        })
        .collect()
}

/// The measuring loop on the calling thread.
fn spin(core: usize, pin: PinOutcome, duration: Duration, min_gap_ns: u64) -> JitterReport {
    let mut gaps = Vec::with_capacity(MAX_GAPS);
    let mut gaps_not_kept = 0;
    let mut reads = 0u64;
    let start = now_ns();
    let end = start.saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    let mut last = start;
    while last < end {
        let now = now_ns();
        reads += 1;
        let gap = now.saturating_sub(last);
        if gap >= min_gap_ns {
            if gaps.len() < MAX_GAPS {
                gaps.push(gap);
            } else {
                gaps_not_kept += 1;
            }
        }
        last = now;
    }
    JitterReport {
        core,
        pin,
        wall_ns: last - start,
        reads,
        gaps,
        gaps_not_kept,
        min_gap_ns,
    }
}

/// The reports as an aligned table: per core, the gaps and the wait of a random arrival.
pub fn table(reports: &[JitterReport]) -> String {
    let us = |ns: u64| format!("{:.1} µs", ns as f64 / 1e3);
    let mut out = format!(
        "{:<5} {:>5} {:>10} {:>8} {:>8} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10}  pin\n",
        "core",
        "secs",
        "reads",
        ">=10µs",
        ">=100µs",
        "lost>=10µs",
        "max gap",
        "wait p99",
        "wait p99.9",
        "P(>=2µs)",
        "P(>=10µs)",
    );
    for r in reports {
        out.push_str(&format!(
            "{:<5} {:>5.1} {:>10} {:>8} {:>8} {:>9.3}% {:>9} {:>10} {:>10} {:>9.3}% {:>9.3}%  {}\n",
            r.core,
            r.wall_ns as f64 / 1e9,
            r.reads,
            r.gaps_at_least(10_000),
            r.gaps_at_least(100_000),
            100.0 * r.lost_share(10_000),
            us(r.max_gap_ns()),
            us(r.wait_quantile(0.99)),
            us(r.wait_quantile(0.999)),
            100.0 * r.p_wait_at_least(2_000),
            100.0 * r.p_wait_at_least(10_000),
            r.pin,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(wall_ns: u64, gaps: Vec<u64>) -> JitterReport {
        JitterReport {
            core: 0,
            pin: PinOutcome::Pinned,
            wall_ns,
            reads: 1,
            gaps,
            gaps_not_kept: 0,
            min_gap_ns: DEFAULT_MIN_GAP_NS,
        }
    }

    #[test]
    fn a_random_arrival_waits_the_rest_of_its_gap() {
        // 1 s of wall time with one 20 ms gap: an arrival lands in it with probability 2 %, and
        // waits at least 10 ms in half of those cases.
        let r = report(1_000_000_000, vec![20_000_000]);
        assert!((r.p_wait_at_least(0) - 0.02).abs() < 1e-12);
        assert!((r.p_wait_at_least(10_000_000) - 0.01).abs() < 1e-12);
        assert_eq!(r.p_wait_at_least(20_000_000), 0.0);
        // P(wait >= d) = (20 ms - d) / 1 s <= 1 % from d = 10 ms on.
        assert_eq!(r.wait_quantile(0.99), 10_000_000);
        assert_eq!(r.wait_quantile(0.999), 19_000_000);
        // Below 2 % of the time in the gap, the median arrival does not wait.
        assert_eq!(r.wait_quantile(0.5), 0);
        assert!((r.lost_share(1_000) - 0.02).abs() < 1e-12);
        assert_eq!(r.lost_share(30_000_000), 0.0);
    }

    #[test]
    fn many_short_gaps_against_one_long_one() {
        // 1,000 gaps of 20 µs in 1 s (2 % of the time) keep the p99 wait near 10 µs; one 2 ms gap
        // (0.2 %) leaves the p99 at 0 and puts the p99.9 at 1 ms.
        let short = report(1_000_000_000, vec![20_000; 1_000]);
        assert_eq!(short.wait_quantile(0.99), 10_000);
        assert_eq!(short.gaps_at_least(10_000), 1_000);
        let long = report(1_000_000_000, vec![2_000_000]);
        assert_eq!(long.wait_quantile(0.99), 0);
        assert_eq!(long.wait_quantile(0.999), 1_000_000);
        assert_eq!(long.gaps_at_least(100_000), 1);
    }

    #[test]
    fn measures_this_host() {
        let allowed = super::super::placement::allowed_cores();
        let core = allowed.first().copied().unwrap_or(0);
        let reports = measure(
            &[core],
            &allowed,
            Duration::from_millis(50),
            DEFAULT_MIN_GAP_NS,
        );
        let r = &reports[0];
        assert_eq!(r.core, core);
        assert!(r.wall_ns >= 50_000_000, "ran {} ns", r.wall_ns);
        assert!(r.reads > 1_000, "only {} clock reads", r.reads);
        // The gaps are part of the wall time.
        assert!(r.gaps.iter().sum::<u64>() <= r.wall_ns);
        assert!(table(&reports).lines().count() == 2);
    }
}
