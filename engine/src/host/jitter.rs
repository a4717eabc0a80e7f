//! The host's own stalls, measured: the floor under latency figures taken on it.
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
//! P(wait > d) = sum over gaps g of max(0, g - d) / wall time
//! ```
//!
//! (gaps shorter than the report's `min_gap_ns` count as no wait). [`JitterReport::wait_quantile`]
//! inverts that.
//!
//! Which core's wait bounds which figure: tick-to-trade starts at `t0`, stamped when the feed
//! thread releases a frame, so the feed core's wait before that shows in the feed's release
//! lateness, not in tick-to-trade. Each hop to another thread is an arrival at a random moment
//! for that thread: with placement `2`, the strategy+gateway core's wait is a floor under
//! tick-to-trade. If its p99 is above a goal, no code meets the goal at p99 on that host.

use std::thread;
use std::time::Duration;

use crate::latency::format_ns;
use crate::runtime::clock::now_ns;
use crate::runtime::placement::{PinOutcome, pin_current_thread};

/// Gaps shorter than this are the clock read itself and the loop, not stalls.
pub const DEFAULT_MIN_GAP_NS: u64 = 1_000;

/// The longest `min_gap_ns` allowed: the table's columns start at 2 µs.
pub const MAX_MIN_GAP_NS: u64 = 2_000;

/// Gaps kept per core (8 MiB, written once before the measurement so that no page fault lands
/// inside it). A run that fills it stops there; its report says so.
const MAX_GAPS: usize = 1 << 20;

/// What one core's clock-reading thread saw.
#[derive(Clone, Debug)]
pub struct JitterReport {
    /// The core the thread was meant to be pinned to.
    pub core: usize,
    /// Whether the pin took.
    pub pin: PinOutcome,
    /// Why there is no measurement (the thread could not be started or did not finish).
    pub error: Option<String>,
    /// From the first read to the last, in ns.
    pub wall_ns: u64,
    /// Clock reads.
    pub reads: u64,
    /// The gaps of at least `min_gap_ns`, in ns, in the order seen.
    pub gaps: Vec<u64>,
    /// The run filled the gap buffer and stopped before its time.
    pub stopped_early: bool,
    /// The shortest gap kept.
    pub min_gap_ns: u64,
}

impl JitterReport {
    /// A report of what was seen over `wall_ns`, pinned.
    fn from_gaps(wall_ns: u64, gaps: Vec<u64>, min_gap_ns: u64) -> Self {
        Self {
            core: 0,
            pin: PinOutcome::Pinned,
            error: None,
            wall_ns,
            reads: gaps.len() as u64 + 1,
            gaps,
            stopped_early: false,
            min_gap_ns,
        }
    }

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

    /// The probability that an event arriving at a random moment waits more than `d` ns for
    /// this thread to run again.
    pub fn p_wait_longer(&self, d: u64) -> f64 {
        let excess: u64 = self.gaps.iter().map(|&g| g.saturating_sub(d)).sum();
        excess as f64 / self.wall_ns.max(1) as f64
    }

    /// The `q`-quantile (0 to 1) of the wait of an event arriving at a random moment: the
    /// smallest `d` (ns) with `P(wait > d) <= 1 - q`. 0 when no gap reaches it, the longest gap
    /// for `q = 1`.
    pub fn wait_quantile(&self, q: f64) -> u64 {
        debug_assert!((0.0..=1.0).contains(&q), "quantile {q} outside 0..=1");
        let tail = 1.0 - q;
        // `p_wait_longer` falls as `d` grows and is 0 at the longest gap: bisect on it.
        let (mut lo, mut hi) = (0, self.max_gap_ns());
        if self.p_wait_longer(lo) <= tail {
            return 0;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.p_wait_longer(mid) <= tail {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }
}

/// Runs one clock-reading thread per core in `cores`, all at once, for `duration`, and returns
/// what each saw, in the order of `cores`. Gaps shorter than `min_gap_ns` are not kept. A core
/// the thread cannot be pinned to is still measured, unpinned, and its report says so.
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
                    // Written before the pin and the first read: no fault lands in the run.
                    let mut gaps = vec![1u64; MAX_GAPS];
                    gaps.clear();
                    let pin = pin_current_thread(core, &allowed);
                    let mut report = spin(gaps, duration, min_gap_ns);
                    report.core = core;
                    report.pin = pin;
                    report
                })
        })
        .collect();
    handles
        .into_iter()
        .zip(cores)
        .map(|(handle, &core)| {
            let failed = |why: String| JitterReport {
                core,
                pin: PinOutcome::Failed("not measured".into()),
                error: Some(why),
                wall_ns: 0,
                reads: 0,
                gaps: Vec::new(),
                stopped_early: false,
                min_gap_ns,
            };
            match handle {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|_| failed("the measuring thread panicked".into())),
                Err(e) => failed(format!("could not start the measuring thread: {e}")),
            }
        })
        .collect()
}

/// The measuring loop on the calling thread, keeping gaps in `gaps` (empty, with its capacity
/// already written).
fn spin(mut gaps: Vec<u64>, duration: Duration, min_gap_ns: u64) -> JitterReport {
    let capacity = gaps.capacity();
    let mut reads = 0u64;
    let mut stopped_early = false;
    let start = now_ns();
    let end = start.saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    let mut last = start;
    while last < end {
        let now = now_ns();
        reads += 1;
        let gap = now.saturating_sub(last);
        last = now;
        if gap >= min_gap_ns {
            gaps.push(gap);
            if gaps.len() == capacity {
                stopped_early = true;
                break;
            }
        }
    }
    let mut report = JitterReport::from_gaps(last.saturating_sub(start), gaps, min_gap_ns);
    report.reads = reads;
    report.stopped_early = stopped_early;
    report
}

/// The reports as an aligned table: per core, the gaps and the wait of a random arrival.
pub fn table(reports: &[JitterReport]) -> String {
    let mut out = format!(
        "{:<5} {:>5} {:>11} {:>7} {:>7} {:>10} {:>9} {:>9} {:>10} {:>8} {:>9}  pin\n",
        "core",
        "secs",
        "reads",
        ">=10µs",
        ">=100µs",
        "lost>=10µs",
        "max gap",
        "wait p99",
        "wait p99.9",
        "P(>2µs)",
        "P(>10µs)",
    );
    for r in reports {
        if let Some(e) = &r.error {
            out.push_str(&format!("{:<5} not measured: {e}\n", r.core));
            continue;
        }
        out.push_str(&format!(
            "{:<5} {:>5.1} {:>11} {:>7} {:>7} {:>9.3}% {:>9} {:>9} {:>10} {:>7.3}% {:>8.3}%  {}{}\n",
            r.core,
            r.wall_ns as f64 / 1e9,
            r.reads,
            r.gaps_at_least(10_000),
            r.gaps_at_least(100_000),
            100.0 * r.lost_share(10_000),
            format_ns(r.max_gap_ns()),
            format_ns(r.wait_quantile(0.99)),
            format_ns(r.wait_quantile(0.999)),
            100.0 * r.p_wait_longer(2_000),
            100.0 * r.p_wait_longer(10_000),
            r.pin,
            if r.stopped_early {
                " (gap buffer full: stopped early)"
            } else {
                ""
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_random_arrival_waits_the_rest_of_its_gap() {
        // 1 s of wall time with one 20 ms gap: an arrival lands in it with probability 2 %, and
        // waits more than 10 ms in half of those cases.
        let r = JitterReport::from_gaps(1_000_000_000, vec![20_000_000], DEFAULT_MIN_GAP_NS);
        assert!((r.p_wait_longer(0) - 0.02).abs() < 1e-12);
        assert!((r.p_wait_longer(10_000_000) - 0.01).abs() < 1e-12);
        assert_eq!(r.p_wait_longer(20_000_000), 0.0);
        // P(wait > d) = (20 ms - d) / 1 s is at most 1 % from d = 10 ms on.
        assert_eq!(r.wait_quantile(0.99), 10_000_000);
        assert_eq!(r.wait_quantile(0.999), 19_000_000);
        assert_eq!(r.wait_quantile(1.0), 20_000_000);
        // With 2 % of the time in the gap, the median arrival does not wait.
        assert_eq!(r.wait_quantile(0.5), 0);
        assert!((r.lost_share(1_000) - 0.02).abs() < 1e-12);
        assert_eq!(r.lost_share(30_000_000), 0.0);
    }

    #[test]
    fn many_short_gaps_against_one_long_one() {
        // 1,000 gaps of 20 µs in 1 s (2 % of the time) put the p99 wait at 10 µs; one 2 ms gap
        // (0.2 %) leaves the p99 at 0 and puts the p99.9 at 1 ms.
        let short = JitterReport::from_gaps(1_000_000_000, vec![20_000; 1_000], 1_000);
        assert_eq!(short.wait_quantile(0.99), 10_000);
        assert_eq!(short.gaps_at_least(10_000), 1_000);
        assert_eq!(short.gaps_at_least(20_001), 0);
        let long = JitterReport::from_gaps(1_000_000_000, vec![2_000_000], 1_000);
        assert_eq!(long.wait_quantile(0.99), 0);
        assert_eq!(long.wait_quantile(0.999), 1_000_000);
        assert_eq!(long.gaps_at_least(100_000), 1);
        // The bisection ends on the exact boundary: one more nanosecond of gap moves it.
        let longer = JitterReport::from_gaps(1_000_000_000, vec![2_000_001], 1_000);
        assert_eq!(longer.wait_quantile(0.999), 1_000_001);
    }

    #[test]
    fn a_full_gap_buffer_stops_the_run_and_says_so() {
        // A zero threshold keeps every read as a gap, so a 16-gap buffer fills at once.
        let r = spin(Vec::with_capacity(16), Duration::from_secs(10), 0);
        assert!(r.stopped_early);
        assert_eq!(r.gaps.len(), 16);
        assert_eq!(r.reads, 16);
        assert!(r.wall_ns < 1_000_000_000, "ran {} ns", r.wall_ns);
        assert!(table(&[r]).contains("stopped early"));
    }

    #[test]
    fn measures_this_host() {
        let allowed = crate::runtime::placement::allowed_cores();
        let core = allowed.first().copied().unwrap_or(0);
        let reports = measure(
            &[core],
            &allowed,
            Duration::from_millis(50),
            DEFAULT_MIN_GAP_NS,
        );
        let r = &reports[0];
        assert_eq!(r.core, core);
        assert_eq!(r.error, None);
        assert!(!r.stopped_early);
        assert!(r.wall_ns >= 50_000_000, "ran {} ns", r.wall_ns);
        assert!(r.reads > 100, "only {} clock reads", r.reads);
        assert!(r.gaps.iter().all(|&g| g >= DEFAULT_MIN_GAP_NS));
        assert_eq!(table(&reports).lines().count(), 2);
    }

    #[test]
    fn a_thread_that_never_ran_is_not_a_perfect_core() {
        let mut r = JitterReport::from_gaps(0, Vec::new(), DEFAULT_MIN_GAP_NS);
        r.core = 7;
        r.error = Some("could not start the measuring thread: test".into());
        let t = table(&[r]);
        assert!(t.contains("7     not measured: could not start"), "{t}");
        assert!(!t.contains("0 ns"), "{t}");
    }
}
