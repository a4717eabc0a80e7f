//! The engine clock: monotonic nanoseconds since the first call in the process.
//!
//! Every latency stamp (`t0` when a frame is read, each stage's exit, the order send) comes from
//! [`now_ns`], so differences between stamps taken on different threads are meaningful.
//! `Instant` reads `CLOCK_MONOTONIC` through the vDSO on Linux: no system call, tens of
//! nanoseconds. Stamps start near 0 so they fit comfortably in `u64` and print readably.

use std::sync::OnceLock;
use std::time::Instant;

static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// Monotonic nanoseconds of the engine clock. Never decreases within the process.
#[inline]
pub fn now_ns() -> u64 {
    let origin = *ORIGIN.get_or_init(Instant::now);
    // u64 nanoseconds cover 584 years of uptime, so the narrowing cannot lose anything real.
    Instant::now().duration_since(origin).as_nanos() as u64
}

/// Fixes the clock's origin now. Called at start-up so the first stamp on the hot path does not
/// pay for initialising it; harmless to call again.
pub fn start() {
    let _ = ORIGIN.get_or_init(Instant::now);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_advances_across_a_sleep() {
        start();
        let a = now_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = now_ns();
        assert!(b >= a + 2_000_000, "{a} -> {b}");
        let c = std::thread::spawn(now_ns).join().unwrap();
        assert!(c >= b);
    }
}
