//! The engine clock: monotonic nanoseconds since the clock was started.
//!
//! Every latency stamp (`t0` when a frame is read, each stage's exit, the order send) comes from
//! [`now_ns`], so differences between stamps taken on different threads are meaningful.
//!
//! Where the CPU's time-stamp counter is invariant (x86-64 with `constant_tsc` and
//! `nonstop_tsc`: one rate on every core, through frequency changes and idle states), the clock
//! reads it directly and scales the ticks to ns with one 128-bit multiply. That is what the
//! kernel's vDSO `clock_gettime` does too when its clocksource is the TSC, minus the sequence
//! lock, the `timespec` split and its re-joining: a fused replay stamps about ten times per
//! message, and in a profile of one the vDSO call and the `Duration` arithmetic around it were
//! 12 % of the thread's time. Elsewhere the clock is [`Instant`] (`CLOCK_MONOTONIC`).
//!
//! The scale is measured against `CLOCK_MONOTONIC` at [`start`] over [`CALIBRATION`]; its error
//! (a few ppm) changes a 2 µs latency by picoseconds. Stamps start near 0, so they fit `u64`
//! and print readably.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long [`start`] measures the counter's rate against the monotonic clock.
pub const CALIBRATION: Duration = Duration::from_millis(20);

/// How the clock reads time.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The invariant time-stamp counter: ns = (ticks - `base`) × `ns_per_tick_q32` / 2^32.
    #[cfg(target_arch = "x86_64")]
    Tsc { base: u64, ns_per_tick_q32: u64 },
    /// `Instant` since `origin`.
    Monotonic { origin: Instant },
}

static SOURCE: OnceLock<Source> = OnceLock::new();

/// Monotonic nanoseconds of the engine clock. Never decreases within a thread, and stamps from
/// different threads are comparable.
#[inline]
pub fn now_ns() -> u64 {
    read(*SOURCE.get_or_init(calibrate))
}

/// Starts the clock (and calibrates it) now, so the first stamp on the hot path does not pay
/// for it; harmless to call again.
pub fn start() {
    let _ = SOURCE.get_or_init(calibrate);
}

/// Which source the clock uses, for the start-up report: `"tsc"` or `"monotonic"`.
pub fn source_name() -> &'static str {
    match *SOURCE.get_or_init(calibrate) {
        #[cfg(target_arch = "x86_64")]
        Source::Tsc { .. } => "tsc",
        Source::Monotonic { .. } => "monotonic",
    }
}

#[inline]
fn read(source: Source) -> u64 {
    match source {
        #[cfg(target_arch = "x86_64")]
        Source::Tsc {
            base,
            ns_per_tick_q32,
        } => {
            let ticks = tsc().saturating_sub(base);
            ((u128::from(ticks) * u128::from(ns_per_tick_q32)) >> 32) as u64
        }
        // u64 nanoseconds cover 584 years, so the narrowing cannot lose anything real.
        Source::Monotonic { origin } => origin.elapsed().as_nanos() as u64,
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn tsc() -> u64 {
    // SAFETY: `rdtsc` exists on every x86-64 CPU and only reads the counter.
    unsafe { std::arch::x86_64::_rdtsc() }
}

/// Whether `/proc/cpuinfo` says the TSC runs at one rate on every core in every state.
#[cfg(target_arch = "x86_64")]
fn tsc_is_invariant() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return false;
    };
    info.lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|flags| {
            let has = |w: &str| flags.split_whitespace().any(|f| f == w);
            has("constant_tsc") && has("nonstop_tsc")
        })
}

fn calibrate() -> Source {
    #[cfg(target_arch = "x86_64")]
    if tsc_is_invariant()
        && let Some(ns_per_tick_q32) = measure_tsc_rate()
    {
        return Source::Tsc {
            base: tsc(),
            ns_per_tick_q32,
        };
    }
    Source::Monotonic {
        origin: Instant::now(),
    }
}

/// ns per TSC tick in 32.32 fixed point, measured against `Instant` over [`CALIBRATION`];
/// `None` when the counter did not advance sensibly (a broken virtual TSC).
#[cfg(target_arch = "x86_64")]
fn measure_tsc_rate() -> Option<u64> {
    let (t0, c0) = (Instant::now(), tsc());
    std::thread::sleep(CALIBRATION);
    let (t1, c1) = (Instant::now(), tsc());
    let ns = t1.duration_since(t0).as_nanos();
    let ticks = u128::from(c1.checked_sub(c0)?);
    // Between 10 MHz and 100 GHz: anything else is not a usable counter.
    if ticks == 0 || ns == 0 || ticks * 100 < ns || ticks > ns * 100 {
        return None;
    }
    u64::try_from((ns << 32) / ticks).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_advances_across_a_sleep() {
        start();
        let a = now_ns();
        std::thread::sleep(Duration::from_millis(2));
        let b = now_ns();
        assert!(b >= a + 2_000_000, "{a} -> {b}");
        let c = std::thread::spawn(now_ns).join().unwrap();
        assert!(c >= b);
    }

    #[test]
    fn clock_keeps_pace_with_the_monotonic_clock() {
        start();
        let (i0, n0) = (Instant::now(), now_ns());
        std::thread::sleep(Duration::from_millis(50));
        let (i1, n1) = (Instant::now(), now_ns());
        let mono = i1.duration_since(i0).as_nanos() as f64;
        let ours = (n1 - n0) as f64;
        // The calibration's error is ppm; 1 % leaves room for scheduling between the reads.
        assert!(
            (ours / mono - 1.0).abs() < 0.01,
            "{} clock: {ours} ns against {mono} ns",
            source_name()
        );
    }
}
